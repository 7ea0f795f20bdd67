//! A problem ready to train: a validated [`ProblemConfig`] becomes compiled expressions, point
//! sets on the device, a network, and a loss function of the parameters. One file per job:
//! `assembly` builds it, `points` lays out the point sets, `batch` draws their mini-batches,
//! `terms` builds the loss terms, `discrete` holds the Runge-Kutta maps, `residuals` the
//! residuals and what they read, `loss` evaluates the loss, `evaluation` the errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{
    ConfigError, DomainConfig, FitTarget, GridSpec, IrkMode, LbfgsConfig, LossConfig, MAX_POINTS,
    OnSpec, PointSetConfig, ProblemConfig, Reduction, Snapshot, TimeConfig, Transform, grid_points,
};
use crate::table::PointTable;
use burn::tensor::{Int, Tensor};
use pinn_core::backend::{self, DeviceError, ExecutionPlan, PlanOptions, to_vec};
use pinn_core::data::{DataError, GridData};
use pinn_core::expr::{Environment, Expression, FieldId, Symbols, Value};
use pinn_core::geometry::Region;
use pinn_core::sampling::{
    BatchRows, Face, Layout, SeededRng, choose, draw_accepted, lay_out, rng_from_seed,
    standard_normal, stream_key,
};
use pinn_core::{
    DerivativeSet, DeviceKind, Jet, JetNetwork, Mode, Partial, Precision, TensorContext,
};
use pinn_nn::{Mlp, MlpSpec};
use pinn_rk::{ButcherTable, stages_for_step};
use thiserror::Error;

use crate::passes::{TermPoints, plan_passes};
use crate::reference::{DatasetStore, StoreError};

mod assembly;
mod batch;
mod discrete;
mod evaluation;
mod loss;
mod points;
mod residuals;
mod terms;

use batch::*;
use discrete::*;
use evaluation::{exact_grid, grid_slice, project};
use points::*;
use residuals::*;
use terms::*;

pub use evaluation::{Evaluation, EvaluationGrid, PredictError, UnknownReport, relative_l2};
pub use loss::LossValue;
pub(crate) use loss::add_weighted;
pub use residuals::{Fields, ResidualFn};

/// Errors while building a problem.
#[derive(Debug, Error)]
pub enum ProblemError {
    /// Invalid problem file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Missing or malformed data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Dataset generation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to load a problem: where datasets live and command-line overrides.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Root of the generated-dataset cache.
    pub datasets: PathBuf,
    /// Overrides `seed`.
    pub seed: Option<u64>,
    /// Overrides `run.device`.
    pub device: Option<DeviceKind>,
    /// Overrides `run.precision`.
    pub precision: Option<Precision>,
    /// Overrides `run.mode`.
    pub mode: Option<Mode>,
    /// Overrides `run.fuse_layers`.
    pub fuse_layers: Option<bool>,
    /// Iterations of an L-BFGS phase after Adam: overrides `optimizer.lbfgs.iterations`, or adds
    /// the phase with default settings; 0 removes it.
    pub lbfgs: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            datasets: PathBuf::from("datasets"),
            seed: None,
            device: None,
            precision: None,
            mode: None,
            fuse_layers: None,
            lbfgs: None,
        }
    }
}

/// An unknown scalar of an inverse problem.
#[derive(Clone, Debug)]
pub struct Unknown {
    /// Name.
    pub name: String,
    /// Initial trained value.
    pub init: f64,
    /// Representation while training.
    pub transform: Transform,
    /// True value, if known.
    pub truth: Option<f64>,
}

impl Unknown {
    /// Physical value of a trained value.
    pub fn physical(&self, raw: f64) -> f64 {
        match self.transform {
            Transform::Identity => raw,
            Transform::Exp => raw.exp(),
        }
    }
}

/// A problem ready to train: compiled residuals, point sets on the device and a network.
pub struct Problem {
    config: ProblemConfig,
    source: PathBuf,
    ctx: TensorContext,
    symbols: Symbols,
    network: Box<dyn JetNetwork>,
    derived: Vec<Expression>,
    derived_order: Vec<usize>,
    residuals: Vec<Residual>,
    unknowns: Vec<Unknown>,
    terms: Vec<LossTerm>,
    passes: Vec<ForwardPass>,
    /// The point sets read in mini-batches, in `[points]` order.
    batches: Vec<BatchedSet>,
    dataset: Option<GridData>,
    /// The exact solutions of `evaluate.exact` on their even grid.
    exact: Option<GridData>,
    evaluated: Vec<(String, FieldId)>,
    /// Grid points of the evaluation (`evaluate.at`), all when `None`.
    evaluation_points: Option<Vec<usize>>,
    initial: Vec<Tensor<2>>,
    input_axes: Vec<usize>,
    discrete: Option<Discrete>,
    /// The region of `[geometry]`, if the problem has one.
    geometry: Option<Geometry>,
    /// Scattered reference points (`[evaluate] points`), when they are the reference.
    scattered: Option<ScatteredReference>,
}

/// Reference values at scattered points: `rows × inputs` coordinates and a column per field.
#[derive(Clone, Debug)]
pub(super) struct ScatteredReference {
    coords: Vec<f64>,
    values: BTreeMap<String, Vec<f64>>,
}

impl std::fmt::Debug for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Problem")
            .field("name", &self.config.name)
            .field("network", &self.network.describe())
            .finish_non_exhaustive()
    }
}

/// Parts of a problem given in code rather than in the problem file.
#[derive(Clone, Debug, Default)]
pub struct InCode {
    /// Residual closures by name (used like `[residuals]` entries).
    pub residuals: Vec<(String, ResidualFn)>,
    /// A reference solution in memory, used instead of `[dataset]`'s files; `[dataset]` still
    /// names its axes and fields when present.
    pub data: Option<GridData>,
}

impl Problem {
    /// The parsed configuration (after overrides).
    pub fn config(&self) -> &ProblemConfig {
        &self.config
    }

    /// Stage count and step of a discrete-time model.
    pub fn irk_stages(&self) -> Option<(usize, f64)> {
        self.discrete.as_ref().map(|d| (d.stages, d.dt))
    }

    /// The tensor context (device and precision).
    pub fn context(&self) -> &TensorContext {
        &self.ctx
    }

    /// The network.
    pub fn network(&self) -> &dyn JetNetwork {
        self.network.as_ref()
    }

    /// The unknown parameters, in the order they follow the network parameters.
    pub fn unknowns(&self) -> &[Unknown] {
        &self.unknowns
    }

    /// Initial parameters: the network's, then one `[1, 1]` tensor per unknown.
    pub fn initial_parameters(&self) -> Vec<Tensor<2>> {
        self.initial.clone()
    }

    /// Number of network parameter tensors (the unknowns follow them).
    pub fn network_parameter_count(&self) -> usize {
        self.initial.len() - self.unknowns.len()
    }

    /// Names of the loss components, as logged.
    pub fn component_names(&self) -> Vec<String> {
        self.terms
            .iter()
            .flat_map(|t| t.components.iter().map(|(n, _)| n.clone()))
            .collect()
    }

    /// The problem file's weight of each component (its term's `weight`), in the order of
    /// [`Problem::component_names`].
    pub fn component_weights(&self) -> Vec<f64> {
        self.terms
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.weight, t.components.len()))
            .collect()
    }

    /// For each component (in the order of [`Problem::component_names`]), the index of the
    /// `[[loss]]` entry it comes from.
    pub fn component_loss_entries(&self) -> Vec<usize> {
        self.terms
            .iter()
            .enumerate()
            .flat_map(|(i, t)| std::iter::repeat_n(i, t.components.len()))
            .collect()
    }

    /// Number of points each loss term reads per iteration (a batched term: its batch).
    pub fn term_sizes(&self) -> Vec<usize> {
        self.terms
            .iter()
            .map(|t| match t.pick {
                Some(pick) => pick.copies * self.batches[pick.set].size,
                None => t.inputs.dims()[0],
            })
            .collect()
    }

    /// For each loss term read in mini-batches, the points its batches are drawn from (as many
    /// as [`Problem::term_sizes`] counts per batch); `None` for a term that reads all its points.
    pub fn term_pools(&self) -> Vec<Option<usize>> {
        self.terms
            .iter()
            .map(|t| t.pick.map(|p| p.copies * self.batches[p.set].pool))
            .collect()
    }

    /// The points of loss term `term` (`rows × inputs`, row-major, the whole pool of a
    /// batched term) and, for points on a `[geometry]` boundary whose term reads them, their
    /// outward unit normals (`rows × spatial inputs`); `None` for a term that does not exist.
    pub fn term_points(&self, term: usize) -> Option<(Vec<f64>, Option<Vec<f64>>)> {
        let t = self.terms.get(term)?;
        Some((to_vec(&t.inputs), t.normals.as_ref().map(to_vec)))
    }

    /// The derivative streams the network propagates for each loss term.
    pub fn term_derivatives(&self) -> Vec<DerivativeSet> {
        self.terms
            .iter()
            .map(|t| (*t.plan.network).clone())
            .collect()
    }

    /// The loss terms (by index) that each forward pass of the network serves: terms at the
    /// same points share a pass, and on a GPU so do terms whose points stack at little extra
    /// cost.
    pub fn forward_passes(&self) -> Vec<Vec<usize>> {
        let mut terms = vec![Vec::new(); self.passes.len()];
        for (t, term) in self.terms.iter().enumerate() {
            terms[term.pass.0].push(t);
        }
        terms
    }
}

#[cfg(test)]
mod tests;
