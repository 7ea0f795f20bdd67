//! Core of the `pinn` framework.
//!
//! - [`jet`]: Taylor-mode derivative propagation on Burn tensors (the derivative engine);
//! - [`partial`]: multi-indices of partial derivatives and closed derivative sets;
//! - [`expr`]: residual expressions, parsed from strings and evaluated on jets;
//! - [`activation`]: the hidden-layer activations and their derivative rules;
//! - [`kernels`]: the fused jet layer and the IRK misfit as CPU kernels, and the rule compiler
//!   the GPU kernels are built from;
//! - [`network`]: the trait a network implements;
//! - [`data`], [`sampling`]: `.npy` data and seeded random draws;
//! - [`backend`]: devices, precision, the execution plan of a run and the backend operations
//!   (the only module naming a backend).

pub mod activation;
pub mod backend;
pub mod data;
pub mod expr;
pub mod geometry;
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
