//! The training loop: Adam steps on the problem's loss, with logging, NaN detection and a
//! final report. One file per job: `step` (a step and its graph replay), `checkpoint` (state
//! on the host and in files), `metrics` (`metrics.csv`), `report`, `progress` and `error`.

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
use crate::stats::median;

mod checkpoint;
mod error;
mod metrics;
mod progress;
mod report;
mod step;

use checkpoint::*;
use error::*;
use metrics::*;
use step::*;

pub use crate::lbfgs::StopReason;
pub use checkpoint::{CHECKPOINT, load_parameters, save_parameters};
pub use error::TrainError;
pub use progress::{Progress, Silent};
pub use report::{LbfgsSummary, Report, Trained};
pub use step::ReplayStatus;

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
        if problem.context().plan().graph_replay() {
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
                    let counter = batch_counter(problem, adam);
                    b.update(problem, params, counter.as_ref());
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
            // report's loss is that of the parameters as they stand (on the batches of the
            // next iteration).
            let next = self.adam.steps() as usize;
            let loss = self.problem.loss_at(&self.params, next);
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
            execution: self.problem.context().plan().to_string(),
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
        config: &crate::config::LbfgsConfig,
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
        // L-BFGS minimises the loss with the balancing weights as Adam left them, and on one
        // set of mini-batches (those of the iteration after Adam's last): its line searches
        // compare losses, which must be of one function.
        let balance = self.balance.as_ref();
        let counter = problem
            .is_batched()
            .then(|| problem.context().scalar(self.adam.steps() as f64));
        let mut objective = |x: &[f64]| -> (f64, Vec<f64>) {
            let params = unflatten(x);
            let (total, parts, gradient) = problem.context().on_compute_threads(|| {
                let (total, parts, grads) =
                    loss_and_gradient(problem, &params, counter.as_ref(), balance);
                (
                    to_scalar(&total),
                    parts.iter().map(to_scalar).collect::<Vec<f64>>(),
                    grads.iter().flat_map(to_vec).collect::<Vec<f64>>(),
                )
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

#[cfg(test)]
mod tests;
