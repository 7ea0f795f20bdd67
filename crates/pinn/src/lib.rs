//! # pinn
//!
//! Physics-informed neural networks on [Burn](https://burn.dev): write a problem as a TOML
//! file (or in Rust), train a network that fits the data and satisfies the PDE, and get the
//! paper's error metrics.
//!
//! ```no_run
//! use pinn::{LoadOptions, Problem, Silent, Trainer};
//! let problem = Problem::from_file("problems/burgers_cont_fwd.toml".as_ref(), &LoadOptions::default())?;
//! let trained = Trainer::new(&problem).run(1000, "runs/burgers".as_ref(), &mut Silent)?;
//! println!("{:?}", trained.report.evaluation.relative_l2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod balance;
pub mod builder;
pub mod config;
pub mod lbfgs;
pub mod optim;
mod passes;
pub mod plot;
pub mod problem;
pub mod reference;
pub mod stats;
pub mod train;

pub use builder::ProblemBuilder;
pub use pinn_core as core;
pub use pinn_core::{
    DerivativeSet, DeviceKind, Jet, JetNetwork, Mode, Partial, Precision, TensorContext,
};
pub use pinn_nn as nn;
pub use pinn_rk as rk;
pub use problem::{
    Evaluation, EvaluationGrid, Fields, InCode, LoadOptions, LossValue, Problem, ProblemError,
    ResidualFn, relative_l2,
};
pub use train::{Progress, ReplayStatus, Report, Silent, TrainError, Trained, Trainer};
