//! The only place that names concrete Burn backends: device selection, tensor creation and the
//! backend implementations of fused operations.

mod fused_ops;

use std::sync::Arc;

use crate::fused::JetActivation;

use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where tensors live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Burn's pure-Rust `flex` CPU backend (multi-threaded, SIMD).
    #[default]
    Cpu,
    /// Burn's CUDA backend (requires the `cuda` feature and an NVIDIA GPU).
    Cuda,
}

/// Floating-point precision of all tensors of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats, as the paper's runs.
    #[default]
    F32,
    /// 64-bit floats (tests and references).
    F64,
}

impl Precision {
    /// The Burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }
}

/// The requested device is not available in this build or on this machine.
#[derive(Debug, Error)]
#[error("device `{0:?}` is not available: {1}")]
pub struct DeviceError(pub DeviceKind, pub String);

/// A device plus the dtype every tensor of a run is created with.
#[derive(Clone, Debug)]
pub struct TensorContext {
    kind: DeviceKind,
    device: Device,
    precision: Precision,
}

impl TensorContext {
    /// Opens a device with autodiff enabled (one level of reverse mode).
    pub fn new(kind: DeviceKind, precision: Precision) -> Result<Self, DeviceError> {
        let device = match kind {
            DeviceKind::Cpu => Device::flex(),
            DeviceKind::Cuda => {
                return Err(DeviceError(
                    kind,
                    "this build has no CUDA support (rebuild with `--features cuda`)".into(),
                ));
            }
        };
        Ok(Self {
            kind,
            device: device.autodiff(),
            precision,
        })
    }

    /// The CPU device in the given precision.
    pub fn cpu(precision: Precision) -> Self {
        Self {
            kind: DeviceKind::Cpu,
            device: Device::flex().autodiff(),
            precision,
        }
    }

    /// The kind of device.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// Whether this device runs the fused jet activation ([`jet_activation`]).
    pub fn has_fused_jets(&self) -> bool {
        matches!(self.kind, DeviceKind::Cpu)
    }

    /// The Burn device (autodiff-enabled).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision of created tensors.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// A `[rows, cols]` tensor from row-major values (without gradient tracking).
    pub fn matrix(&self, values: &[f64], rows: usize, cols: usize) -> Tensor<2> {
        debug_assert_eq!(values.len(), rows * cols);
        let data = match self.precision {
            Precision::F64 => TensorData::new(values.to_vec(), [rows, cols]),
            Precision::F32 => TensorData::new(
                values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                [rows, cols],
            ),
        };
        Tensor::from_data(data, (&self.device, self.precision.dtype())).without_autodiff()
    }

    /// A `[1, 1]` tensor.
    pub fn scalar(&self, value: f64) -> Tensor<2> {
        self.matrix(&[value], 1, 1)
    }
}

/// The fused jet activation (see [`crate::fused`]): `σ` of the stacked jet `z + bias`, with
/// `z: [streams · points, width]` and `bias: [1, width]` added to the value rows.
///
/// Only for tensors on a device whose [`TensorContext::has_fused_jets`] is true.
pub fn jet_activation(z: Tensor<2>, bias: Tensor<2>, program: &Arc<JetActivation>) -> Tensor<2> {
    fused_ops::jet_activation(z, bias, program)
}

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
