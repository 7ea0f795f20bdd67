//! The only place that names concrete Burn backends: devices and precision, the execution plan
//! of a run, tensor creation, and the backend implementations of the fused operations.

mod context;
mod cuda;
mod device;
mod graph;
mod mode;
mod ops;
mod plan;
mod wgpu;

pub use context::TensorContext;
pub use device::{DeviceError, DeviceKind, Precision};
pub use graph::{GraphError, StepGraph};
pub use mode::Mode;
pub use ops::batch_rows::batch_rows;
pub use ops::irk_misfit::irk_misfit;
pub use ops::jet_layer::{dense, jet_activation, jet_layer};
pub use plan::{ExecutionPlan, PlanOptions};

use burn::tensor::Tensor;

/// Reads a tensor back to the host as `f64` values (row-major).
pub fn to_vec(t: &Tensor<2>) -> Vec<f64> {
    t.to_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap_or_default()
}

/// Reads a single-element tensor.
pub fn to_scalar(t: &Tensor<1>) -> f64 {
    t.to_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f64::NAN)
}
