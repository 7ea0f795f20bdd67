//! One training step: the loss and its gradient, the Adam update, and the graph replay of the whole step.

use super::*;

/// A step's total loss and its components.
pub(super) type StepOutputs = (Tensor<1>, Vec<Tensor<1>>);

/// Plain steps before a step is captured: every kernel compiled and autotuned, Burn's fusion at
/// its steady state and the allocation pool filled, so the capture allocates nothing.
pub(super) const WARM_UP_STEPS: usize = 3;

/// Graph replay of the training step (the graph modes).
pub(super) enum Replay {
    /// Plain steps only.
    Off,
    /// Plain steps left before the capture.
    WarmingUp(usize),
    /// Every step replays the captured one.
    Replaying(Box<Replayed>),
    /// Capture was tried and is not used (plain steps from then on): why.
    Abandoned(String),
}

impl Replay {
    /// Whether graph replay is (or is about to be) in use: requested and not abandoned.
    pub(super) fn is_active(&self) -> bool {
        matches!(self, Replay::WarmingUp(_) | Replay::Replaying(_))
    }
}

/// A captured step and the tensors whose buffers its replays write the step's outputs to.
pub(super) struct Replayed {
    pub(super) graph: StepGraph,
    pub(super) outputs: StepOutputs,
}

/// Where graph replay of the training step stands ([`Trainer::replay_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStatus {
    /// Not requested.
    Off,
    /// Requested; the step is not captured yet (warm-up).
    Pending,
    /// Steps are replayed as a recorded graph.
    Replaying,
    /// Requested but not used, and why (no graph support on the device, a failed capture, or a
    /// replayed step that did not match a plain one).
    Abandoned(String),
}

/// The total loss to minimise: the problem's, or with loss balancing its balanced total.
fn objective(loss: &LossValue, balance: Option<&LossBalance>) -> Tensor<1> {
    match balance {
        Some(b) => b.total(loss),
        None => loss.total.clone(),
    }
}

/// The counter a batched problem's step draws its mini-batches from: Adam's step count on the
/// device (`None` for a problem without `batch`). Drop it before the update advances the count.
pub(super) fn batch_counter(problem: &Problem, adam: &Adam) -> Option<Tensor<2>> {
    problem.is_batched().then(|| {
        adam.step_counter()
            .cloned()
            .unwrap_or_else(|| problem.context().scalar(adam.steps() as f64))
    })
}

/// The loss at `params` on the mini-batches of the iteration `counter` holds (see
/// [`Problem::loss_drawn`]; balanced by `balance`, if given), its components, and its gradient
/// with respect to every parameter tensor (zeros for one the loss does not reach): the one
/// backward pass of training, for Adam steps and L-BFGS alike.
pub(super) fn loss_and_gradient(
    problem: &Problem,
    params: &[Tensor<2>],
    counter: Option<&Tensor<2>>,
    balance: Option<&LossBalance>,
) -> StepLoss {
    let tracked: Vec<Tensor<2>> = params
        .iter()
        .map(|p| p.clone().autodiff().require_grad())
        .collect();
    let loss = problem.loss_drawn(&tracked, counter);
    let total = objective(&loss, balance);
    let grads = total.backward();
    let gradient = tracked
        .iter()
        .zip(params)
        .map(|(t, p)| t.grad(&grads).unwrap_or_else(|| p.zeros_like()))
        .collect();
    let components = loss
        .components
        .into_iter()
        .map(Tensor::without_autodiff)
        .collect();
    // The autodiff copies share the parameters' buffers: dropped here, so that an update can
    // rewrite them.
    (total.without_autodiff(), components, gradient)
}

/// A loss, its components and its gradient ([`loss_and_gradient`]).
pub(super) type StepLoss = (Tensor<1>, Vec<Tensor<1>>, Vec<Tensor<2>>);

/// One Adam step on `params` from the problem's loss (balanced by `balance`, if given) on the
/// mini-batches of the step's iteration (Adam's step count, read on the device); returns the
/// loss before the update.
pub(super) fn plain_step(
    problem: &Problem,
    params: &mut [Tensor<2>],
    adam: &mut Adam,
    balance: Option<&LossBalance>,
) -> StepOutputs {
    let counter = batch_counter(problem, adam);
    let (total, components, gradient) =
        loss_and_gradient(problem, params, counter.as_ref(), balance);
    drop(counter);
    adam.update(params, gradient);
    (total, components)
}
