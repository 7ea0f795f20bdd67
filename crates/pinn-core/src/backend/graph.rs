//! Graph capture and replay of a whole training step (CUDA graphs): the step's kernels are
//! recorded once and then launched as one graph per iteration.
//!
//! Burn 0.22 exposes backend-level capture (`graph_prepare`, `graph_start_capture`,
//! `graph_stop_capture`, `graph_replay`); its autodiff backend refuses it (a replay would not
//! re-record the tape), so the capture runs on the inner device, under the autodiff step. A
//! backend without hardware graphs (the CPU) answers [`GraphError::Unsupported`] and the caller
//! keeps running plain steps.

#![allow(unsafe_code)] // `graph_replay`, whose buffer contract is stated on `StepGraph::replay`

use burn::backend::{Backend, BackendGraph, Dispatch};
use burn::tensor::Device;
use thiserror::Error;

use super::TensorContext;

/// Why a step is not replayed as a graph.
#[derive(Debug, Error)]
pub enum GraphError {
    /// The device has no hardware graphs; nothing was recorded or run.
    #[error("this device has no graph capture: {0}")]
    Unsupported(String),
    /// Recording started but failed: the step's work was recorded, not run, and is lost.
    #[error("capturing the step failed: {0}")]
    Capture(String),
    /// Replaying a recorded step failed.
    #[error("replaying the step failed: {0}")]
    Replay(String),
}

/// One recorded training step.
pub struct StepGraph {
    graph: BackendGraph<Dispatch>,
    device: Device,
}

impl std::fmt::Debug for StepGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepGraph")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl TensorContext {
    /// The inner (non-autodiff) device, where kernels are launched and captured.
    fn launch_device(&self) -> Device {
        self.device().clone().inner()
    }

    /// Prepares the device for a capture: from now on its allocations come from a pool that a
    /// graph can pin. Call before the warm-up steps that precede [`capture_step`](Self::capture_step).
    pub fn prepare_graph(&self) -> Result<(), GraphError> {
        let device = self.launch_device();
        Dispatch::graph_prepare(device.as_dispatch())
            .map_err(|e| GraphError::Unsupported(e.to_string()))
    }

    /// Records the kernels that `step` launches into a graph. The work is recorded, not run:
    /// replay the graph once to perform this step. The returned output's buffers are the ones
    /// every replay writes.
    pub fn capture_step<T>(&self, step: impl FnOnce() -> T) -> Result<(T, StepGraph), GraphError> {
        let device = self.launch_device();
        let dispatch = device.as_dispatch();
        Dispatch::graph_start_capture(dispatch)
            .map_err(|e| GraphError::Unsupported(e.to_string()))?;
        let output = step();
        let graph = Dispatch::graph_stop_capture(dispatch)
            .map_err(|e| GraphError::Capture(e.to_string()))?;
        Ok((output, StepGraph { graph, device }))
    }
}

impl StepGraph {
    /// Launches the recorded step again, on the buffers it was recorded with.
    ///
    /// # Safety
    /// Every tensor the recorded step read or wrote must still be alive (parameters, optimiser
    /// state, point sets and data, the step's outputs), none of them may be used concurrently
    /// from another thread, and the step must have updated its state in place (each state
    /// tensor's buffer rewritten, not replaced), or the replay reads stale buffers.
    pub unsafe fn replay(&self) -> Result<(), GraphError> {
        // SAFETY: forwarded from this function's contract.
        unsafe { Dispatch::graph_replay(self.device.as_dispatch(), &self.graph) }
            .map_err(|e| GraphError::Replay(e.to_string()))
    }
}
