//! The only place that names concrete Burn backends: device selection, tensor creation and the
//! backend implementations of fused operations.

mod cuda;
mod graph;
mod ops;
mod wgpu;

pub use graph::{GraphError, StepGraph};

use std::sync::Arc;

use crate::kernels::JetActivation;

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

/// How a training step is executed: the acceleration modes of the paper's Table 1.
///
/// `Eager` is the plain reference (every jet rule and its backward as separate tensor ops, and
/// on CUDA no kernel fusion). `Fused` runs each hidden layer as one fused jet operation where the
/// device has one, and on CUDA lets Burn fuse the remaining element-wise work (our stand-in for
/// PyTorch's JIT). `Amp` is the eager network with its matrix products in bf16. The graph modes
/// record one whole training step of their base mode and replay it every iteration (CUDA
/// graphs; the CPU backend has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Op by op, no fusion.
    #[serde(rename = "eager")]
    Eager,
    /// Fused jet layers and backend kernel fusion.
    #[default]
    #[serde(rename = "fused")]
    Fused,
    /// Half-precision matrix work, `f32` losses and optimiser state.
    #[serde(rename = "amp")]
    Amp,
    /// One captured training step replayed every iteration.
    #[serde(rename = "graph")]
    Graph,
    /// Graph replay with mixed precision.
    #[serde(rename = "graph+amp")]
    GraphAmp,
    /// Graph replay of the fused step.
    #[serde(rename = "graph+fused")]
    GraphFused,
}

impl Mode {
    /// Every mode, in the order of the paper's tables.
    pub const ALL: [Mode; 6] = [
        Mode::Eager,
        Mode::Fused,
        Mode::Amp,
        Mode::Graph,
        Mode::GraphAmp,
        Mode::GraphFused,
    ];

    /// The name used in problem files, on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Eager => "eager",
            Mode::Fused => "fused",
            Mode::Amp => "amp",
            Mode::Graph => "graph",
            Mode::GraphAmp => "graph+amp",
            Mode::GraphFused => "graph+fused",
        }
    }

    /// Whether the network runs its hidden layers as fused jet operations (and, on CUDA, Burn
    /// fuses kernels).
    pub fn fuses_layers(self) -> bool {
        matches!(self, Mode::Fused | Mode::GraphFused)
    }

    /// Whether training steps are captured once and replayed as a graph.
    pub fn replays_graph(self) -> bool {
        matches!(self, Mode::Graph | Mode::GraphAmp | Mode::GraphFused)
    }

    /// Whether the network's matrix products run in bf16 (mixed precision).
    pub fn uses_half_matmuls(self) -> bool {
        matches!(self, Mode::Amp | Mode::GraphAmp)
    }

    /// Why `kind` cannot run this mode, or `None` when it can.
    pub fn unavailable_on(self, kind: DeviceKind) -> Option<&'static str> {
        (self.replays_graph() && !matches!(kind, DeviceKind::Cuda))
            .then_some("graph replay needs the CUDA backend")
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mode `{s}` (expected one of {})", names.join(", "))
            })
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

/// A device plus the dtype every tensor of a run is created with, and the mode it runs in.
#[derive(Clone, Debug)]
pub struct TensorContext {
    kind: DeviceKind,
    device: Device,
    precision: Precision,
    mode: Mode,
}

impl TensorContext {
    /// Opens a device with autodiff enabled (one level of reverse mode) for a mode.
    ///
    /// On CUDA the first device opened in a process fixes whether Burn fuses kernels: on for
    /// the fused modes, off for the others.
    pub fn new(kind: DeviceKind, precision: Precision, mode: Mode) -> Result<Self, DeviceError> {
        if let Some(why) = mode.unavailable_on(kind) {
            return Err(DeviceError::Mode(mode, kind, why));
        }
        let device = match kind {
            DeviceKind::Cpu => Device::flex(),
            DeviceKind::Cuda => cuda::open(mode).map_err(|why| DeviceError::Device(kind, why))?,
            DeviceKind::Wgpu => wgpu::open(mode).map_err(|why| DeviceError::Device(kind, why))?,
        };
        Ok(Self {
            kind,
            device: device.autodiff(),
            precision,
            mode,
        })
    }

    /// The CPU device in the given precision, in the default (`fused`) mode.
    pub fn cpu(precision: Precision) -> Self {
        Self {
            kind: DeviceKind::Cpu,
            device: Device::flex().autodiff(),
            precision,
            mode: Mode::default(),
        }
    }

    /// The mode this context runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The kind of device.
    pub fn kind(&self) -> DeviceKind {
        self.kind
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

    /// Runs `work` (a training step, a loss and its gradient) where this device's work starts
    /// cheapest. On the CPU that is a thread of the compute pool: the step's many parallel
    /// sections (matrix products, fused layers) then fork from inside the pool, where the
    /// other threads pick them up from a queue, instead of each one waking the pool from
    /// outside and putting the caller to sleep until it is done (about 100 context switches
    /// per discrete Burgers step; steps 3-15 % faster, docs/status.md). On the GPUs the calling
    /// thread only launches kernels, and stays the one that does.
    pub fn on_compute_threads<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match self.kind {
            DeviceKind::Cpu => rayon::scope(|_| work()),
            DeviceKind::Cuda | DeviceKind::Wgpu => work(),
        }
    }
}

/// The fused jet layer: the jet activation `σ(z + bias)` of a stacked jet `z: [streams · points,
/// width]` (see [`crate::kernels`]) followed by the product with the next layer's `weight: [width,
/// next]`, as one operation with one hand-written backward, on every device (the CPU kernels,
/// or the CubeCL ones on CUDA and wgpu).
pub fn jet_layer(
    z: Tensor<2>,
    bias: Tensor<2>,
    weight: Tensor<2>,
    program: &Arc<JetActivation>,
) -> Tensor<2> {
    ops::jet_layer::jet_layer(z, bias, weight, program)
}

/// The activated stacked jet `σ(z + bias)` alone (bias on the value rows only): the fused
/// activation without the next layer's product, for the last hidden layer of a network whose
/// output is wider than it. Only for devices whose context has fused jets.
pub fn jet_activation(z: Tensor<2>, bias: Tensor<2>, program: &Arc<JetActivation>) -> Tensor<2> {
    ops::jet_layer::jet_activation(z, bias, program)
}

/// A network layer's matrix product `a · b` with a hand-written backward: on the CPU the fused
/// layer's row-tiled product (several times faster than the backend's for a layer's small
/// inner dimension), on the CubeCL backend its own. Only for devices whose context has fused
/// jets.
pub fn dense(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    ops::jet_layer::dense(a, b)
}

/// The discrete-time loss term `Σ (u + f[:, ..q] · map − target)²` (shape `[1]`) as one
/// operation with a hand-written backward for `u` and `f` (`map` and `target` are constants):
/// `u: [rows, cols]`, `f: [rows, ≥ q]` (its first `q` columns enter), `map: [q, cols]`, the
/// target `[rows | 1, cols | 1]`, broadcast. See [`crate::irk_misfit`].
///
/// # Panics
/// When the shapes disagree ([`crate::kernels::irk_misfit::IrkShape::new`] checks them).
pub fn irk_misfit(u: Tensor<2>, f: Tensor<2>, map: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    ops::irk_misfit::irk_misfit(u, f, map, target)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip_through_text_and_serde() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
            for kind in DeviceKind::ALL {
                assert_eq!(kind.name().parse::<DeviceKind>(), Ok(kind));
            }
            let toml_text = toml::to_string(&std::collections::BTreeMap::from([("mode", mode)]))
                .expect("serialises");
            assert_eq!(toml_text.trim(), format!("mode = \"{}\"", mode.name()));
        }
        let err = "turbo".parse::<Mode>().expect_err("unknown");
        assert!(
            err.contains("turbo") && err.contains("graph+fused"),
            "{err}"
        );
    }

    #[test]
    fn devices_missing_from_the_build_are_errors_that_say_how_to_get_them() {
        for (kind, built, feature) in [
            (DeviceKind::Cuda, cfg!(feature = "cuda"), "--features cuda"),
            (DeviceKind::Wgpu, cfg!(feature = "wgpu"), "--features wgpu"),
        ] {
            if built {
                continue;
            }
            let err = TensorContext::new(kind, Precision::F32, Mode::Fused)
                .expect_err("not in this build")
                .to_string();
            assert!(err.contains(kind.name()) && err.contains(feature), "{err}");
        }
        let err = TensorContext::new(DeviceKind::Wgpu, Precision::F32, Mode::Graph)
            .expect_err("graph replay is CUDA's")
            .to_string();
        assert!(err.contains("graph") && err.contains("CUDA"), "{err}");
    }

    #[test]
    fn cpu_work_runs_on_a_thread_of_the_compute_pool() {
        let ctx = TensorContext::cpu(Precision::F32);
        assert_eq!(
            rayon::current_thread_index(),
            None,
            "tests run outside the pool"
        );
        let (index, sum) = ctx.on_compute_threads(|| {
            let t = ctx.matrix(&[1.0, 2.0, 3.0, 4.0], 2, 2);
            (rayon::current_thread_index(), to_vec(&t.clone().matmul(t)))
        });
        assert!(index.is_some(), "ran on the calling thread");
        assert_eq!(sum, vec![7.0, 10.0, 15.0, 22.0]);
    }

    #[test]
    fn modes_say_what_they_run() {
        assert!(Mode::Fused.fuses_layers() && Mode::GraphFused.fuses_layers());
        assert!(!Mode::Eager.fuses_layers() && !Mode::Amp.fuses_layers());
        assert!(Mode::Amp.uses_half_matmuls() && Mode::GraphAmp.uses_half_matmuls());
        assert!(!Mode::Fused.uses_half_matmuls());
        for mode in Mode::ALL {
            assert_eq!(mode.unavailable_on(DeviceKind::Cuda), None, "{mode}");
            let graph = matches!(mode, Mode::Graph | Mode::GraphAmp | Mode::GraphFused);
            assert_eq!(mode.replays_graph(), graph, "{mode}");
            for kind in [DeviceKind::Cpu, DeviceKind::Wgpu] {
                assert_eq!(
                    mode.unavailable_on(kind).is_some(),
                    graph,
                    "{mode} on {kind}"
                );
            }
        }
    }
}
