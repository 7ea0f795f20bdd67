//! The training loop: Adam steps on the problem's loss, with logging, NaN detection and a
//! final report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Tensor;
use pinn_core::Precision;
use pinn_core::backend::{GraphError, StepGraph, to_scalar, to_vec};
use serde::Serialize;
use thiserror::Error;

use crate::balance::LossBalance;
use crate::optim::Adam;
use crate::problem::{Evaluation, LossValue, Problem};

/// Errors that end a training run.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at iteration {iteration}: loss term `{term}` (field `{entry}`) is {value}{}; metrics, and the parameters after iteration {kept}, are kept in `{out}`",
        if *iteration == 1 { " at the initial parameters: check the constants, unknowns' `init` and targets it reads" } else { "" }
    )]
    NonFinite {
        /// Iteration (1-based) whose loss was not finite.
        iteration: usize,
        /// The `[[loss]]` entry the term comes from (`loss[2]`).
        entry: String,
        /// Iteration after which the saved parameters were taken (the one before, or with graph
        /// replay the last logged one).
        kept: usize,
        /// First non-finite component.
        term: String,
        /// Its value.
        value: f64,
        /// Output folder.
        out: PathBuf,
    },
    /// Training was stopped on request; the checkpoint allows `--resume`.
    #[error(
        "interrupted after iteration {iteration}; continue with --resume (checkpoint in `{out}`)"
    )]
    Interrupted {
        /// Last completed iteration.
        iteration: usize,
        /// Output folder with the checkpoint.
        out: PathBuf,
    },
    /// A checkpoint could not be used.
    #[error("cannot resume from `{path}`: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing outputs failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Receives progress while training (the CLI draws a progress bar).
pub trait Progress {
    /// Called after every iteration with the total loss.
    fn iteration(&mut self, iteration: usize, loss: f64);
    /// Called once at the end.
    fn finish(&mut self) {}
    /// Polled every iteration: `true` stops training after a checkpoint (e.g. on Ctrl-C).
    fn should_stop(&self) -> bool {
        false
    }
}

/// No progress output.
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn iteration(&mut self, _: usize, _: f64) {}
}

/// The report written at the end of a run (`report.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Problem name.
    pub problem: String,
    /// Network description.
    pub network: String,
    /// Seed.
    pub seed: u64,
    /// Device.
    pub device: String,
    /// Precision.
    pub precision: String,
    /// Iterations run.
    pub iterations: usize,
    /// Final total loss.
    pub final_loss: f64,
    /// Final loss components.
    pub final_components: std::collections::BTreeMap<String, f64>,
    /// Errors and identified parameters.
    pub evaluation: Evaluation,
    /// Median wall time of one Adam iteration, in milliseconds (0 when only L-BFGS ran).
    pub median_ms_per_iteration: f64,
    /// Total training wall time, in seconds.
    pub training_seconds: f64,
    /// The L-BFGS phase, if configured.
    pub lbfgs: Option<LbfgsSummary>,
    /// How the graph modes ran the steps (absent in the other modes): replayed as a graph, or
    /// why not.
    pub graph_replay: Option<String>,
    /// The final loss-balancing weight of each component (with `[loss_balance]`).
    pub loss_weights: Option<std::collections::BTreeMap<String, f64>>,
}

/// What the L-BFGS phase did.
#[derive(Clone, Debug, Serialize)]
pub struct LbfgsSummary {
    /// Iterations done.
    pub iterations: usize,
    /// Loss and gradient evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub stop_reason: crate::lbfgs::StopReason,
    /// Loss at the end.
    pub final_loss: f64,
}

fn raw_values(raw: &[Tensor<2>]) -> Vec<f64> {
    raw.iter()
        .map(|t| to_vec(t).first().copied().unwrap_or(f64::NAN))
        .collect()
}

/// Trains a problem's parameters with Adam.
pub struct Trainer<'a> {
    problem: &'a Problem,
    params: Vec<Tensor<2>>,
    adam: Adam,
    /// Self-balancing loss weights (`[loss_balance]`), if on.
    balance: Option<LossBalance>,
    /// Adam iterations already done (non-zero when resumed).
    start: usize,
    replay: Replay,
}

/// A step's total loss and its components.
type StepOutputs = (Tensor<1>, Vec<Tensor<1>>);

/// Plain steps before a step is captured: every kernel compiled and autotuned, Burn's fusion at
/// its steady state and the allocation pool filled, so the capture allocates nothing.
const WARM_UP_STEPS: usize = 3;

/// Graph replay of the training step (the graph modes).
enum Replay {
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
    fn is_active(&self) -> bool {
        matches!(self, Replay::WarmingUp(_) | Replay::Replaying(_))
    }
}

/// A captured step and the tensors whose buffers its replays write the step's outputs to.
struct Replayed {
    graph: StepGraph,
    outputs: StepOutputs,
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

/// The parameters and Adam state copied to the host: what a failed capture or a diverged
/// replay falls back to.
///
/// It is also what a checkpoint holds ([`StateSnapshot::checkpoint`]).
struct StateSnapshot {
    params: HostTensors,
    step: u64,
    first: HostTensors,
    second: HostTensors,
}

impl StateSnapshot {
    fn take(params: &[Tensor<2>], adam: &Adam) -> Self {
        let (step, first, second) = adam.state();
        Self {
            params: to_host(params),
            step,
            first: to_host(first),
            second: to_host(second),
        }
    }

    /// Fresh tensors (new buffers) holding the snapshot.
    fn restore(&self, problem: &Problem) -> (Vec<Tensor<2>>, Adam) {
        let params = to_device(&self.params, problem);
        let mut adam = Adam::new(&problem.config().optimizer, &params);
        adam.restore(
            self.step,
            to_device(&self.first, problem),
            to_device(&self.second, problem),
        );
        (params, adam)
    }

    /// The checkpoint document of this state after Adam iteration `iteration`.
    fn checkpoint(&self, iteration: usize) -> serde_json::Value {
        serde_json::json!({
            "iteration": iteration,
            "params": host_to_json(&self.params),
            "adam_step": self.step,
            "adam_first": host_to_json(&self.first),
            "adam_second": host_to_json(&self.second),
        })
    }

    /// Reads a [`checkpoint`](Self::checkpoint) document whose tensors have the given shapes,
    /// with the iteration it was taken after.
    fn from_checkpoint(
        doc: &serde_json::Value,
        shapes: &[[usize; 2]],
    ) -> Result<(Self, usize), String> {
        let state = Self {
            params: host_from_json(&doc["params"], shapes)?,
            step: doc["adam_step"].as_u64().ok_or("no adam_step")?,
            first: host_from_json(&doc["adam_first"], shapes)?,
            second: host_from_json(&doc["adam_second"], shapes)?,
        };
        let iteration = doc["iteration"].as_u64().ok_or("no iteration")? as usize;
        Ok((state, iteration))
    }

    /// Largest difference between the parameters of two snapshots, relative to the largest
    /// parameter.
    fn parameter_difference(&self, other: &Self) -> f64 {
        let mut scale = f64::MIN_POSITIVE;
        let mut worst = 0.0f64;
        for ((a, _), (b, _)) in self.params.iter().zip(&other.params) {
            for (x, y) in a.iter().zip(b) {
                scale = scale.max(x.abs());
                worst = worst.max((x - y).abs());
            }
        }
        worst / scale
    }
}

/// The total loss to minimise: the problem's, or with loss balancing its balanced total.
fn objective(problem: &Problem, loss: &LossValue, balance: Option<&LossBalance>) -> Tensor<1> {
    match balance {
        Some(b) => b.total(problem, loss),
        None => loss.total.clone(),
    }
}

/// One Adam step on `params` from the problem's loss (balanced by `balance`, if given); returns
/// the loss before the update.
fn plain_step(
    problem: &Problem,
    params: &mut [Tensor<2>],
    adam: &mut Adam,
    balance: Option<&LossBalance>,
) -> StepOutputs {
    let tracked: Vec<Tensor<2>> = params
        .iter()
        .map(|p| p.clone().autodiff().require_grad())
        .collect();
    let loss = problem.loss(&tracked);
    let total = objective(problem, &loss, balance);
    let grads = total.backward();
    let g: Vec<Tensor<2>> = tracked
        .iter()
        .zip(params.iter())
        .map(|(t, p)| t.grad(&grads).unwrap_or_else(|| p.zeros_like()))
        .collect();
    let total = total.without_autodiff();
    let components = loss
        .components
        .into_iter()
        .map(Tensor::without_autodiff)
        .collect();
    // The autodiff copies share the parameters' buffers: gone, the update can rewrite them.
    drop(grads);
    drop(tracked);
    adam.update(params, g);
    (total, components)
}

/// Name of the checkpoint file in a run folder.
pub const CHECKPOINT: &str = "checkpoint.json";

/// Tensors copied to the host: each one's values (row-major) and shape.
type HostTensors = Vec<(Vec<f64>, [usize; 2])>;

fn to_host(tensors: &[Tensor<2>]) -> HostTensors {
    tensors.iter().map(|t| (to_vec(t), t.dims())).collect()
}

/// New device tensors (fresh buffers) holding `host`.
fn to_device(host: &[(Vec<f64>, [usize; 2])], problem: &Problem) -> Vec<Tensor<2>> {
    host.iter()
        .map(|(values, [rows, cols])| problem.context().matrix(values, *rows, *cols))
        .collect()
}

fn host_to_json(host: &[(Vec<f64>, [usize; 2])]) -> serde_json::Value {
    host.iter()
        .map(|(values, shape)| serde_json::json!({ "shape": shape, "values": values }))
        .collect()
}

/// Reads tensors written by [`host_to_json`], which must have the given shapes.
fn host_from_json(value: &serde_json::Value, shapes: &[[usize; 2]]) -> Result<HostTensors, String> {
    let list = value.as_array().ok_or("expected a list of tensors")?;
    if list.len() != shapes.len() {
        return Err(format!(
            "{} tensors, the problem has {}",
            list.len(),
            shapes.len()
        ));
    }
    list.iter()
        .zip(shapes)
        .map(|(v, &[rows, cols])| {
            let values: Vec<f64> = serde_json::from_value(v["values"].clone())
                .map_err(|e| format!("bad tensor values: {e}"))?;
            if values.len() != rows * cols {
                return Err(format!(
                    "a tensor has {} values, expected {}",
                    values.len(),
                    rows * cols
                ));
            }
            Ok((values, [rows, cols]))
        })
        .collect()
}

/// Outcome of a run: the report and the trained parameters.
pub struct Trained {
    /// The report.
    pub report: Report,
    /// Trained parameters (network, then unknowns).
    pub params: Vec<Tensor<2>>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes parameters as JSON (`[{shape, values}]` plus named unknowns).
pub fn save_parameters(
    problem: &Problem,
    params: &[Tensor<2>],
    path: &Path,
) -> Result<(), TrainError> {
    let n = problem.network_parameter_count();
    let network = host_to_json(&to_host(&params[..n]));
    let unknowns: serde_json::Map<String, serde_json::Value> = problem
        .unknowns()
        .iter()
        .zip(&params[n..])
        .map(|(u, raw)| {
            let raw = to_vec(raw).first().copied().unwrap_or(f64::NAN);
            (
                u.name.clone(),
                serde_json::json!({ "trained": raw, "value": u.physical(raw) }),
            )
        })
        .collect();
    let doc = serde_json::json!({ "network": network, "unknowns": unknowns });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string(&doc).unwrap_or_default()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads the parameters that [`save_parameters`] wrote (`params.json` of a run).
pub fn load_parameters(problem: &Problem, path: &Path) -> Result<Vec<Tensor<2>>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let initial = problem.initial_parameters();
    let n = problem.network_parameter_count();
    let shapes: Vec<[usize; 2]> = initial[..n].iter().map(|t| t.dims()).collect();
    let network = host_from_json(&doc["network"], &shapes).map_err(bad)?;
    let mut params = to_device(&network, problem);
    for u in problem.unknowns() {
        let raw = doc["unknowns"][&u.name]["trained"]
            .as_f64()
            .ok_or_else(|| bad(format!("no trained value of unknown `{}`", u.name)))?;
        params.push(problem.context().scalar(raw));
    }
    Ok(params)
}

impl<'a> Trainer<'a> {
    /// Starts from the problem's initial parameters.
    pub fn new(problem: &'a Problem) -> Self {
        let params = problem.initial_parameters();
        let adam = Adam::new(&problem.config().optimizer, &params);
        let balance = problem
            .config()
            .loss_balance
            .as_ref()
            .map(|b| LossBalance::new(b, problem));
        let trainer = Self {
            problem,
            params,
            adam,
            balance,
            start: 0,
            replay: Replay::Off,
        };
        if problem.context().mode().replays_graph() {
            trainer.with_graph_replay()
        } else {
            trainer
        }
    }

    /// Captures the training step once, after a short warm-up, and replays it as one graph
    /// launch per iteration (what the graph modes do; `new` turns it on for them). The first
    /// replay is checked against a plain step from the same state, and any failure (a device
    /// without graphs, such as the CPU, a failed capture, a mismatch) falls back to plain steps
    /// with the reason in [`Trainer::replay_status`].
    pub fn with_graph_replay(mut self) -> Self {
        if self.balance.is_some() {
            self.replay = Replay::Abandoned(
                "[loss_balance] changes the loss weights during the run, and a replayed step \
                 would keep the captured ones"
                    .into(),
            );
            return self;
        }
        self.replay = match self.problem.context().prepare_graph() {
            Ok(()) => Replay::WarmingUp(WARM_UP_STEPS),
            Err(e) => Replay::Abandoned(e.to_string()),
        };
        self
    }

    /// Where graph replay of the training step stands.
    pub fn replay_status(&self) -> ReplayStatus {
        match &self.replay {
            Replay::Off => ReplayStatus::Off,
            Replay::WarmingUp(_) => ReplayStatus::Pending,
            Replay::Replaying(_) => ReplayStatus::Replaying,
            Replay::Abandoned(why) => ReplayStatus::Abandoned(why.clone()),
        }
    }

    /// Continues from the checkpoint in a run folder written by an earlier [`Trainer::run`].
    pub fn resume(problem: &'a Problem, run_dir: &Path) -> Result<Self, TrainError> {
        let path = run_dir.join(CHECKPOINT);
        let bad = |message: String| TrainError::Checkpoint {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut trainer = Self::new(problem);
        let shapes: Vec<[usize; 2]> = trainer.params.iter().map(|p| p.dims()).collect();
        let (state, iteration) = StateSnapshot::from_checkpoint(&doc, &shapes).map_err(bad)?;
        (trainer.params, trainer.adam) = state.restore(problem);
        if let Some(balance) = trainer.balance.as_mut() {
            let weights: Option<Vec<f64>> = doc["loss_weights"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect());
            if !weights.is_some_and(|w| balance.restore(w)) {
                return Err(bad(format!(
                    "no `loss_weights` for the {} loss components ([loss_balance] is on)",
                    balance.weights().len()
                )));
            }
        }
        trainer.start = iteration;
        Ok(trainer)
    }

    /// Writes `checkpoint.json` (parameters, Adam state, iteration) atomically.
    fn save_checkpoint(&self, out: &Path, iteration: usize) -> Result<(), TrainError> {
        let mut doc = StateSnapshot::take(&self.params, &self.adam).checkpoint(iteration);
        if let Some(balance) = &self.balance {
            doc["loss_weights"] = serde_json::json!(balance.weights());
        }
        let path = out.join(CHECKPOINT);
        let tmp = out.join(format!("{CHECKPOINT}.tmp"));
        std::fs::write(&tmp, doc.to_string()).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// Adam iterations already done (non-zero after [`Trainer::resume`]).
    pub fn start_iteration(&self) -> usize {
        self.start
    }

    /// Current parameters. With graph replay later steps rewrite these tensors' buffers in
    /// place: read them (or copy them to the host) to keep a state.
    pub fn parameters(&self) -> &[Tensor<2>] {
        &self.params
    }

    /// One Adam step; returns the loss components *before* the update.
    pub fn step(&mut self) -> StepOutputs {
        match std::mem::replace(&mut self.replay, Replay::Off) {
            Replay::Off => self.plain_step(),
            Replay::Abandoned(why) => {
                self.replay = Replay::Abandoned(why);
                self.plain_step()
            }
            Replay::WarmingUp(0) => self.capture_step(),
            Replay::WarmingUp(left) => {
                self.replay = Replay::WarmingUp(left - 1);
                self.plain_step()
            }
            Replay::Replaying(replayed) => {
                // SAFETY: the graph was recorded from `plain_step` on this trainer's parameters
                // and Adam state, which live in `self` (updated in place, as the check after the
                // capture confirmed), on the problem's data and points, which `self.problem`
                // keeps alive, and on the step outputs held here; the trainer is used from one
                // thread.
                #[allow(unsafe_code)]
                let result = unsafe { replayed.graph.replay() };
                match result {
                    Ok(()) => {
                        let step = replayed.outputs.clone();
                        self.replay = Replay::Replaying(replayed);
                        step
                    }
                    Err(e) => {
                        self.replay = Replay::Abandoned(e.to_string());
                        self.plain_step()
                    }
                }
            }
        }
    }

    fn plain_step(&mut self) -> StepOutputs {
        let (problem, params, adam) = (self.problem, &mut self.params, &mut self.adam);
        let balance = self.balance.as_mut();
        problem.context().on_compute_threads(|| {
            let balance = balance.map(|b| {
                if b.due(adam.steps() as usize + 1) {
                    b.update(problem, params);
                }
                &*b
            });
            plain_step(problem, params, adam, balance)
        })
    }

    /// The loss weights set by `[loss_balance]`, one per component (`None` when it is off).
    pub fn loss_weights(&self) -> Option<&[f64]> {
        self.balance.as_ref().map(LossBalance::weights)
    }

    /// Records this step as a graph, runs it once by replaying it, and keeps the graph if the
    /// result matches a plain step from the same state.
    fn capture_step(&mut self) -> StepOutputs {
        let problem = self.problem;
        let before = StateSnapshot::take(&self.params, &self.adam);
        let (params, adam) = (&mut self.params, &mut self.adam);
        let captured = problem
            .context()
            .capture_step(|| plain_step(problem, params, adam, None));
        let (outputs, graph) = match captured {
            Ok(captured) => captured,
            Err(e) => {
                // Recorded work never ran: start again from the state before it.
                if !matches!(e, GraphError::Unsupported(_)) {
                    (self.params, self.adam) = before.restore(problem);
                }
                self.replay = Replay::Abandoned(e.to_string());
                return self.plain_step();
            }
        };
        // SAFETY: as in `step`; this is the first replay, right after the capture.
        #[allow(unsafe_code)]
        let replayed = unsafe { graph.replay() };
        let (mut params, mut adam) = before.restore(problem);
        let plain = plain_step(problem, &mut params, &mut adam, None);
        let difference = replayed.as_ref().map(|()| {
            StateSnapshot::take(&self.params, &self.adam)
                .parameter_difference(&StateSnapshot::take(&params, &adam))
        });
        let tolerance = match problem.context().precision() {
            Precision::F64 => 1e-9,
            Precision::F32 => 1e-3,
        };
        match difference {
            Ok(d) if d <= tolerance => {
                self.replay = Replay::Replaying(Box::new(Replayed {
                    graph,
                    outputs: outputs.clone(),
                }));
                outputs
            }
            other => {
                self.params = params;
                self.adam = adam;
                self.replay = Replay::Abandoned(match other {
                    Ok(d) => format!(
                        "the replayed step differs from a plain one by {d:.2e} (relative); the step does not update its state in place"
                    ),
                    Err(e) => e.to_string(),
                });
                plain
            }
        }
    }

    /// Runs `iterations` steps, logging to `out/metrics.csv`, and writes `out/report.json`
    /// and `out/params.json`.
    pub fn run(
        mut self,
        iterations: usize,
        out: &Path,
        progress: &mut dyn Progress,
    ) -> Result<Trained, TrainError> {
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        let names = self.problem.component_names();
        let start = Instant::now();
        let mut metrics = MetricsLog::open(
            &out.join("metrics.csv"),
            &names,
            self.problem.unknowns(),
            self.loss_weights(),
            self.start,
            start,
        )?;
        let params_path = out.join("params.json");
        let checkpoint_every = self.problem.config().run.checkpoint_every;
        let log_every = self.problem.config().run.log_every;
        let mut times = Vec::with_capacity(iterations);
        let mut last_components: Vec<f64> = vec![f64::NAN; names.len()];
        let mut last_total = f64::NAN;
        // With graph replay the parameters' buffers are rewritten in place, so the fallback
        // on divergence is a host copy taken at each logged iteration instead of the previous
        // step's tensors.
        let mut logged_state = self
            .replay
            .is_active()
            .then(|| (self.start, StateSnapshot::take(&self.params, &self.adam)));
        for it in (self.start + 1)..=iterations {
            let replaying = self.replay.is_active();
            let previous = (!replaying).then(|| self.params.clone());
            let t0 = Instant::now();
            let (total, components) = self.step();
            let total = to_scalar(&total);
            times.push(t0.elapsed().as_secs_f64());
            let log_now = it.is_multiple_of(log_every) || it == iterations || it == 1;
            let finite = total.is_finite();
            let stop = finite && progress.should_stop();
            // Every row written below has the terms of its own iteration (a Ctrl-C row too).
            if log_now || !finite || stop {
                last_components = components.iter().map(to_scalar).collect();
            }
            let mut kept = it - 1;
            if !finite {
                if let Some(previous) = previous {
                    self.params = previous;
                } else if let Some((at, state)) = &logged_state {
                    self.params = state.restore(self.problem).0;
                    kept = *at;
                }
            } else if replaying && log_now {
                logged_state = Some((it, StateSnapshot::take(&self.params, &self.adam)));
            }
            if log_now || !finite || stop {
                if let Some(weights) = self.loss_weights() {
                    metrics.weights = weights.to_vec();
                }
                metrics.row(it, total, &last_components, self.unknown_values())?;
            }
            if !finite {
                let entries = self.problem.component_loss_entries();
                let (term, entry, value) = names
                    .iter()
                    .zip(&entries)
                    .zip(&last_components)
                    .find(|(_, v)| !v.is_finite())
                    .map(|((n, e), v)| (n.clone(), format!("loss[{e}]"), *v))
                    .unwrap_or_else(|| ("total".into(), "loss".into(), total));
                save_parameters(self.problem, &self.params, &params_path)?;
                progress.finish();
                return Err(TrainError::NonFinite {
                    iteration: it,
                    entry,
                    kept,
                    term,
                    value,
                    out: out.to_path_buf(),
                });
            }
            last_total = total;
            if stop
                || (checkpoint_every > 0
                    && (it.is_multiple_of(checkpoint_every) || it == iterations))
            {
                self.save_checkpoint(out, it)?;
            }
            if stop {
                save_parameters(self.problem, &self.params, &params_path)?;
                progress.finish();
                return Err(TrainError::Interrupted {
                    iteration: it,
                    out: out.to_path_buf(),
                });
            }
            progress.iteration(it, total);
        }
        if last_total.is_nan() {
            // No Adam step ran in this call (a run resumed at its budget, or `--iters 0`): the
            // report's loss is that of the parameters as they stand.
            let loss = self.problem.loss(&self.params);
            last_total = to_scalar(&loss.total.without_autodiff());
            last_components = loss
                .components
                .into_iter()
                .map(|c| to_scalar(&c.without_autodiff()))
                .collect();
        }
        let lbfgs = match self.problem.config().optimizer.lbfgs.clone() {
            None => None,
            Some(config) => {
                let (summary, components) =
                    self.polish_with_lbfgs(&config, iterations, &mut metrics, progress)?;
                last_total = summary.final_loss;
                last_components = components;
                Some(summary)
            }
        };
        progress.finish();
        let training_seconds = start.elapsed().as_secs_f64();
        save_parameters(self.problem, &self.params, &params_path)?;
        let evaluation = self.problem.evaluate(&self.params);
        let cfg = self.problem.config();
        let report = Report {
            problem: cfg.name.clone(),
            network: self.problem.network().describe(),
            seed: cfg.seed,
            device: format!("{:?}", cfg.run.device).to_lowercase(),
            precision: format!("{:?}", cfg.run.precision).to_lowercase(),
            iterations,
            final_loss: last_total,
            final_components: names.iter().cloned().zip(last_components).collect(),
            evaluation,
            median_ms_per_iteration: median(&mut times) * 1e3,
            training_seconds,
            lbfgs,
            graph_replay: match self.replay_status() {
                ReplayStatus::Off => None,
                ReplayStatus::Pending => Some("not reached: too few iterations".into()),
                ReplayStatus::Replaying => Some(format!(
                    "replayed as one graph per step from iteration {}",
                    self.start + WARM_UP_STEPS + 1
                )),
                ReplayStatus::Abandoned(why) => Some(format!("not used: {why}")),
            },
            loss_weights: self
                .loss_weights()
                .map(|w| names.iter().cloned().zip(w.iter().copied()).collect()),
        };
        let report_path = out.join("report.json");
        std::fs::write(
            &report_path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
        .map_err(io_err(&report_path))?;
        Ok(Trained {
            report,
            params: self.params,
        })
    }

    /// The raw values of the unknown physical parameters (the tail of the parameter list).
    fn unknown_values(&self) -> Vec<f64> {
        raw_values(&self.params[self.problem.network_parameter_count()..])
    }

    /// The L-BFGS phase after Adam: minimises the loss from the current parameters, logging
    /// after iteration `adam_iterations`. Returns its summary and the final loss components.
    fn polish_with_lbfgs(
        &mut self,
        config: &pinn_core::config::LbfgsConfig,
        adam_iterations: usize,
        metrics: &mut MetricsLog,
        progress: &mut dyn Progress,
    ) -> Result<(LbfgsSummary, Vec<f64>), TrainError> {
        let problem = self.problem;
        let log_every = problem.config().run.log_every;
        let n_unknowns = problem.unknowns().len();
        let shapes: Vec<[usize; 2]> = self.params.iter().map(|p| p.dims()).collect();
        let x0: Vec<f64> = self.params.iter().flat_map(to_vec).collect();
        let unflatten = |x: &[f64]| -> Vec<Tensor<2>> {
            let mut offset = 0;
            shapes
                .iter()
                .map(|&[r, c]| {
                    let t = problem.context().matrix(&x[offset..offset + r * c], r, c);
                    offset += r * c;
                    t
                })
                .collect()
        };
        let components = std::cell::RefCell::new(Vec::new());
        let unknowns = std::cell::RefCell::new(self.unknown_values());
        // L-BFGS minimises the loss with the balancing weights as Adam left them.
        let balance = self.balance.as_ref();
        let mut objective = |x: &[f64]| -> (f64, Vec<f64>) {
            let tracked: Vec<Tensor<2>> = unflatten(x)
                .into_iter()
                .map(|p| p.autodiff().require_grad())
                .collect();
            let (total, parts, gradient) = problem.context().on_compute_threads(|| {
                let loss = problem.loss(&tracked);
                let total = objective(problem, &loss, balance);
                let grads = total.backward();
                let gradient: Vec<f64> = tracked
                    .iter()
                    .flat_map(|t| match t.grad(&grads) {
                        Some(g) => to_vec(&g),
                        None => vec![0.0; t.dims()[0] * t.dims()[1]],
                    })
                    .collect();
                let parts: Vec<f64> = loss
                    .components
                    .into_iter()
                    .map(|c| to_scalar(&c.without_autodiff()))
                    .collect();
                (to_scalar(&total.without_autodiff()), parts, gradient)
            });
            *components.borrow_mut() = parts;
            *unknowns.borrow_mut() = x[x.len() - n_unknowns..].to_vec();
            (total, gradient)
        };
        let mut log_error = None;
        let result = crate::lbfgs::minimize(&mut objective, x0, config, &mut |k, loss| {
            let it = adam_iterations + k;
            if (k.is_multiple_of(log_every) || k == 1)
                && let Err(e) =
                    metrics.row(it, loss, &components.borrow(), unknowns.borrow().clone())
            {
                log_error.get_or_insert(e);
            }
            progress.iteration(it, loss);
        });
        if let Some(e) = log_error {
            return Err(e);
        }
        self.params = unflatten(&result.x);
        let components = components.into_inner();
        metrics.row(
            adam_iterations + result.iterations,
            result.loss,
            &components,
            result.x[result.x.len() - n_unknowns..].to_vec(),
        )?;
        let summary = LbfgsSummary {
            iterations: result.iterations,
            evaluations: result.evaluations,
            stop_reason: result.reason,
            final_loss: result.loss,
        };
        Ok((summary, components))
    }
}

/// A run's `metrics.csv`: a header, then one row per logged iteration (loss, its components,
/// the unknowns in physical units, wall seconds).
struct MetricsLog {
    path: PathBuf,
    writer: std::io::BufWriter<std::fs::File>,
    unknowns: Vec<crate::problem::Unknown>,
    /// The loss-balancing weights written with each row (empty without balancing).
    weights: Vec<f64>,
    start: Instant,
}

impl MetricsLog {
    /// Writes the header, keeping the rows up to iteration `resumed_after` of an earlier
    /// run (0 for a fresh one), and opens the file for appending.
    /// With `weights` (loss balancing on) each row ends with a `weight:<component>` column per
    /// component.
    fn open(
        path: &Path,
        components: &[String],
        unknowns: &[crate::problem::Unknown],
        weights: Option<&[f64]>,
        resumed_after: usize,
        start: Instant,
    ) -> Result<Self, TrainError> {
        let mut header = vec!["iteration".to_string(), "loss".to_string()];
        header.extend(components.iter().cloned());
        header.extend(unknowns.iter().map(|u| u.name.clone()));
        if weights.is_some() {
            header.extend(components.iter().map(|c| format!("weight:{c}")));
        }
        header.push("wall_s".into());
        let mut kept = header.join(",") + "\n";
        if resumed_after > 0
            && let Ok(old) = std::fs::read_to_string(path)
        {
            for line in old.lines().skip(1) {
                let it: Option<usize> = line.split(',').next().and_then(|v| v.parse().ok());
                if it.is_some_and(|it| it <= resumed_after) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        std::fs::write(path, kept).map_err(io_err(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: std::io::BufWriter::new(file),
            unknowns: unknowns.to_vec(),
            weights: weights.map(<[f64]>::to_vec).unwrap_or_default(),
            start,
        })
    }

    /// Appends (and flushes) the row of iteration `it`; `raw_unknowns` are the optimiser's values.
    fn row(
        &mut self,
        it: usize,
        total: f64,
        components: &[f64],
        raw_unknowns: Vec<f64>,
    ) -> Result<(), TrainError> {
        let mut row = vec![it.to_string(), format!("{total:e}")];
        row.extend(components.iter().map(|c| format!("{c:e}")));
        for (u, raw) in self.unknowns.iter().zip(raw_unknowns) {
            row.push(format!("{:e}", u.physical(raw)));
        }
        row.extend(self.weights.iter().map(|w| format!("{w:e}")));
        row.push(format!("{:.3}", self.start.elapsed().as_secs_f64()));
        writeln!(self.writer, "{}", row.join(","))
            .and_then(|()| self.writer.flush())
            .map_err(io_err(&self.path))
    }
}

/// Median of a sample (0 for an empty one).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProblemBuilder;

    /// A small problem with an unknown: Poisson-like residual with a trainable coefficient.
    fn problem() -> Problem {
        ProblemBuilder::new("snapshot")
            .domain(&["x", "y"], &[0.0, 0.0], &[1.0, 1.0])
            .network(&[8, 8], &["u"])
            .unknown("a", 0.5, None)
            .residual("f", "u_xx + a*u_yy - x*y")
            .points_lhs("inside", 64)
            .residual_loss("inside", &["f"])
            .adam(10, 1e-2)
            .f64()
            .build()
            .expect("a valid problem")
    }

    /// What the graph replay falls back to: the host copy of the state, restored into new
    /// tensors, continues exactly as the original does.
    #[test]
    fn a_restored_snapshot_continues_like_the_original() {
        let problem = problem();
        let mut trainer = Trainer::new(&problem);
        for _ in 0..3 {
            trainer.step();
        }
        let snapshot = StateSnapshot::take(&trainer.params, &trainer.adam);
        let (mut params, mut adam) = snapshot.restore(&problem);
        assert_eq!(adam.steps(), 3);
        for _ in 0..4 {
            let (a, _) = trainer.step();
            let (b, _) = plain_step(&problem, &mut params, &mut adam, None);
            assert_eq!(to_scalar(&a), to_scalar(&b));
        }
        let after = StateSnapshot::take(&trainer.params, &trainer.adam);
        let restored = StateSnapshot::take(&params, &adam);
        assert_eq!(after.parameter_difference(&restored), 0.0);
        assert!(after.parameter_difference(&snapshot) > 1e-6);
    }
}
