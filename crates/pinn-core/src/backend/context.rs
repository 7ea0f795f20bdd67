//! The tensor context of a run: its device, precision and execution plan, and how tensors are
//! made on it.

use burn::tensor::{Device, Tensor, TensorData};

use super::{DeviceError, DeviceKind, ExecutionPlan, Mode, PlanOptions, Precision, cuda, wgpu};

/// A device plus the dtype every tensor of a run is created with, and the plan it runs by.
#[derive(Clone, Debug)]
pub struct TensorContext {
    device: Device,
    precision: Precision,
    plan: ExecutionPlan,
}

impl TensorContext {
    /// Opens the plan's device with autodiff enabled (one level of reverse mode).
    ///
    /// On CUDA and wgpu the first device opened in a process fixes whether Burn fuses kernels
    /// ([`ExecutionPlan::burn_fusion`]).
    pub fn open(plan: ExecutionPlan, precision: Precision) -> Result<Self, DeviceError> {
        let kind = plan.kind();
        let device = match kind {
            DeviceKind::Cpu => Device::flex(),
            DeviceKind::Cuda => cuda::open(&plan).map_err(|why| DeviceError::Device(kind, why))?,
            DeviceKind::Wgpu => wgpu::open(&plan).map_err(|why| DeviceError::Device(kind, why))?,
        };
        Ok(Self {
            device: device.autodiff(),
            precision,
            plan,
        })
    }

    /// Opens a device for a mode with the default [`PlanOptions`].
    pub fn new(kind: DeviceKind, precision: Precision, mode: Mode) -> Result<Self, DeviceError> {
        Self::open(
            ExecutionPlan::resolve(kind, mode, PlanOptions::default())?,
            precision,
        )
    }

    /// The CPU device in the given precision, in the default (`fused`) mode.
    pub fn cpu(precision: Precision) -> Self {
        Self {
            device: Device::flex().autodiff(),
            precision,
            plan: ExecutionPlan::cpu(),
        }
    }

    /// How this run executes.
    pub fn plan(&self) -> &ExecutionPlan {
        &self.plan
    }

    /// The mode this context runs in.
    pub fn mode(&self) -> Mode {
        self.plan.mode()
    }

    /// The kind of device.
    pub fn kind(&self) -> DeviceKind {
        self.plan.kind()
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
        match self.kind() {
            DeviceKind::Cpu => rayon::scope(|_| work()),
            DeviceKind::Cuda | DeviceKind::Wgpu => work(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::to_vec;

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
}
