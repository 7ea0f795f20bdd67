//! # pinn
//!
//! Physics-informed neural networks on [Burn](https://burn.dev): write a problem as a TOML
//! file or in Rust, train a network that fits the data and satisfies the PDE, forward or
//! inverse, in continuous or discrete time, and get the errors, the identified parameters and
//! predictions anywhere. Input derivatives come from Taylor-mode jets inside one level of
//! Burn's reverse-mode autodiff (`docs/derivatives.md` in the repository).
//!
//! ## A problem in code, trained, asked and evaluated
//!
//! `u_xx = -π² sin(πx)` on `[-1, 1]` with `u = 0` at both ends (the solution is `sin(πx)`):
//!
//! ```
//! use pinn::{ProblemBuilder, Silent, Trainer};
//!
//! let problem = ProblemBuilder::new("poisson")
//!     .domain(&["x"], &[-1.0], &[1.0])
//!     .network(&[16, 16], &["u"])
//!     .residual("f", "u_xx + pi^2*sin(pi*x)") // or a Rust closure: `residual_fn`
//!     .points_lhs("inside", 128)
//!     .points_on("ends", &[("x", &[-1.0, 1.0])], 2)
//!     .fit_value("ends", "u", 0.0)
//!     .residual_loss("inside", &["f"])
//!     .exact("u", "sin(pi*x)") // the reference of the reported error
//!     .adam(1500, 1e-2)
//!     .build()?;
//! let out = std::env::temp_dir().join("pinn-doc-poisson");
//! let trained = Trainer::new(&problem).run(1500, &out, &mut Silent)?;
//! // `out` now holds metrics.csv, report.json, params.json and checkpoint.json.
//! let error = trained.report.evaluation.relative_l2["u"];
//! assert!(error < 0.1, "relative L2 error {error}");
//! // The trained field and its derivatives at points of your own:
//! let at = [0.5, -0.25];
//! let [u, u_x] = <[Vec<f64>; 2]>::try_from(problem.predict(&trained.params, &at, &["u", "u_x"])?)
//!     .expect("two quantities asked");
//! assert!((u[0] - 1.0).abs() < 0.1 && u_x[1].is_finite());
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The parts
//!
//! | to | use |
//! | --- | --- |
//! | load a problem file, or its text | [`Problem::from_file`], [`Problem::from_toml`] (the format: `docs/toml.md`) |
//! | build a problem in code, with closures and data in memory | [`ProblemBuilder`], [`ResidualFn`] |
//! | train (Adam, then L-BFGS if configured), with a callback | [`Trainer::run`], [`Progress`] |
//! | stop early and resume exactly | [`Progress::should_stop`], [`Trainer::resume`] |
//! | predict fields, derivatives or expressions at any points | [`Problem::predict`] |
//! | errors and identified parameters | [`Report`], [`Evaluation`] |
//! | load trained parameters from a run folder | [`train::load_parameters`] |
//! | read and write tables of points (CSV, text, `.npy`) | [`table::PointTable`] |
//! | reference solutions (Burgers, KdV, ...) | [`mod@reference`] |
//! | plots of a run | [`plot`] |
//! | the derivative engine, expressions, sampling, backends | [`core`] (`pinn-core`) |
//! | networks; Runge-Kutta tables | [`nn`] (`pinn-nn`); [`rk`] (`pinn-rk`) |
//!
//! ## Features
//!
//! - `cli` (default): the `pinn` command. A crate that uses pinn as a library can turn it off
//!   (`default-features = false`) and skip the command's dependencies.
//! - `cuda`: Burn's CUDA backend (`[run] device = "cuda"`), with the fused kernels and graph
//!   replay. A dependent crate adds one `[patch.crates-io]` line for it: see
//!   `docs/embedding.md` in the repository.
//! - `wgpu`: Burn's wgpu backend (Vulkan, Metal, DirectX).

#![warn(missing_docs)]

pub(crate) mod balance;
pub mod builder;
pub mod config;
pub(crate) mod lbfgs;
pub(crate) mod optim;
mod passes;
pub mod plot;
pub mod problem;
pub mod reference;
pub mod stats;
pub mod table;
pub mod train;

pub use builder::ProblemBuilder;
pub use pinn_core as core;
pub use pinn_core::{
    DerivativeSet, DeviceKind, Jet, JetNetwork, Mode, Partial, Precision, TensorContext,
};
pub use pinn_nn as nn;
pub use pinn_rk as rk;
pub use problem::{
    Evaluation, EvaluationGrid, Fields, InCode, LoadOptions, LossValue, PredictError, Problem,
    ProblemError, ResidualFn, relative_l2,
};
pub use train::{Progress, ReplayStatus, Report, Silent, TrainError, Trained, Trainer};

/// The crate README's example, compiled with the doc tests so that it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
