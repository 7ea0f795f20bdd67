//! Where a run's tensors live and in which precision, and why a device cannot be had.

use burn::tensor::DType;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Mode;

/// Where tensors live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Burn's pure-Rust `flex` CPU backend (multi-threaded, SIMD).
    #[default]
    Cpu,
    /// Burn's CUDA backend (requires the `cuda` feature and an NVIDIA GPU).
    Cuda,
    /// Burn's wgpu backend on the system's default adapter: Vulkan, Metal or DirectX GPUs, and
    /// Mesa's lavapipe on a machine without one (requires the `wgpu` feature). Runs the same
    /// CubeCL kernels as CUDA; graph replay is CUDA's only.
    Wgpu,
}

impl DeviceKind {
    /// Every device kind.
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Cpu, DeviceKind::Cuda, DeviceKind::Wgpu];

    /// The name used in problem files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Wgpu => "wgpu",
        }
    }

    /// Whether every tensor operation is a kernel launch (the GPUs): there, fewer and larger
    /// operations pay even when they do some needless arithmetic.
    pub fn launches_kernels(self) -> bool {
        !matches!(self, DeviceKind::Cpu)
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceKind::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown device `{s}` (expected cpu, cuda or wgpu)"))
    }
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

/// The requested device or mode is not available in this build or on this machine.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// The device cannot be opened.
    #[error("device `{0}` is not available: {1}")]
    Device(DeviceKind, String),
    /// The device cannot run the mode.
    #[error("mode `{0}` is not available on device `{1}`: {2}")]
    Mode(Mode, DeviceKind, &'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip_through_text() {
        for kind in DeviceKind::ALL {
            assert_eq!(kind.name().parse::<DeviceKind>(), Ok(kind));
        }
        let err = "tpu".parse::<DeviceKind>().expect_err("unknown");
        assert!(err.contains("tpu") && err.contains("wgpu"), "{err}");
    }
}
