//! Core of the `pinn` framework.
//!
//! - [`jet`]: Taylor-mode derivative propagation on Burn tensors (the derivative engine);
//! - [`partial`]: multi-indices of partial derivatives and closed derivative sets;
//! - [`expr`]: residual expressions, parsed from strings and evaluated on jets;
//! - [`fused`]: the fused jet activation (one operation per layer, hand-written backward);
//! - [`irk_misfit`]: the discrete-time loss term as one kernel pair;
//! - [`unrolled`]: the same rule as flat product lists, the form GPU kernels are built from;
//! - [`network`]: the trait a network implements;
//! - [`config`], [`data`], [`sampling`]: problem files, `.npy` data and random draws;
//! - [`backend`]: device and precision selection (the only module naming a backend).

pub mod activation;
pub mod backend;
pub mod config;
pub mod data;
pub mod expr;
pub mod jet;
pub mod kernels;
pub mod network;
pub mod partial;
pub mod sampling;

pub use activation::Activation;
pub use backend::{DeviceKind, Mode, Precision, TensorContext};
pub use jet::Jet;
pub use network::JetNetwork;
pub use partial::{DerivativeSet, MAX_ORDER, Partial};

/// Re-export of the Burn tensor types used in public signatures.
pub use burn::tensor::{Device, Tensor};
