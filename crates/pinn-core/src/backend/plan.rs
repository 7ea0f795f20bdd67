//! How a run executes, decided once: which operations are fused, in which precision the
//! products run, whether the step is replayed as a graph, how forward passes are grouped. Every
//! other module reads these decisions from the [`ExecutionPlan`] instead of decoding the mode
//! and device itself.

use super::{DeviceError, DeviceKind, Mode};

/// Choices of a run that refine its mode (`[run]` keys and command-line flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Whether the fused modes run the hidden layers (and the IRK term) as fused operations;
    /// `false` keeps the rest of the mode (on a GPU, Burn's kernel fusion) with those op by op,
    /// which measures what the fused operations add (`run.fuse_layers`).
    pub fuse_layers: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { fuse_layers: true }
    }
}

/// The execution decisions of one run, resolved from the device, the mode and the options.
///
/// Built only by [`ExecutionPlan::resolve`], so a plan is always one the device can run (graph
/// replay only on CUDA; fused layers and bf16 products never together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionPlan {
    kind: DeviceKind,
    mode: Mode,
    fused_layers: bool,
    fused_irk: bool,
    half_matmuls: bool,
    burn_fusion: bool,
    graph_replay: bool,
    stacked_passes: bool,
    cut_before_wide_output: bool,
}

impl ExecutionPlan {
    /// The plan of `mode` on `kind` with `options`, or why the device cannot run the mode.
    pub fn resolve(
        kind: DeviceKind,
        mode: Mode,
        options: PlanOptions,
    ) -> Result<Self, DeviceError> {
        if let Some(why) = mode.unavailable_on(kind) {
            return Err(DeviceError::Mode(mode, kind, why));
        }
        Ok(Self::decide(kind, mode, options))
    }

    /// The default (`fused`) plan on the CPU, which every build can run.
    pub fn cpu() -> Self {
        Self::decide(DeviceKind::Cpu, Mode::default(), PlanOptions::default())
    }

    /// The decisions themselves, for a mode the device can run.
    fn decide(kind: DeviceKind, mode: Mode, options: PlanOptions) -> Self {
        let fused = mode.fuses_layers() && options.fuse_layers;
        let gpu = kind.launches_kernels();
        Self {
            kind,
            mode,
            fused_layers: fused,
            fused_irk: fused,
            half_matmuls: mode.uses_half_matmuls(),
            burn_fusion: mode.fuses_layers(),
            graph_replay: mode.replays_graph(),
            // A GPU pays per launch, so terms whose points stack at little extra work share a
            // forward pass there; on the CPU stacking costs more than it saves (passes.rs).
            stacked_passes: gpu,
            // On the CPU the fused layer's streams are cut apart before an output product
            // wider than the last hidden layer (mlp.rs); on a GPU one wide product is cheaper.
            cut_before_wide_output: !gpu,
        }
    }

    /// The device the plan is for.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The mode the plan was resolved from.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether hidden layers run as fused jet operations where the activation has a fused rule.
    pub fn fused_layers(&self) -> bool {
        self.fused_layers
    }

    /// Whether the discrete-time (IRK) loss term runs as one fused operation.
    pub fn fused_irk(&self) -> bool {
        self.fused_irk
    }

    /// Whether the network's matrix products run in bf16 (mixed precision).
    pub fn half_matmuls(&self) -> bool {
        self.half_matmuls
    }

    /// Whether Burn fuses element-wise kernels (GPU backends; one setting per process).
    pub fn burn_fusion(&self) -> bool {
        self.burn_fusion
    }

    /// Whether the training step is captured once and replayed as a graph.
    pub fn graph_replay(&self) -> bool {
        self.graph_replay
    }

    /// Whether terms at different points may stack them into one forward pass.
    pub fn stacked_passes(&self) -> bool {
        self.stacked_passes
    }

    /// Whether a fused forward cuts the jet streams apart before an output product wider than
    /// the last hidden layer.
    pub fn cut_before_wide_output(&self) -> bool {
        self.cut_before_wide_output
    }
}

impl std::fmt::Display for ExecutionPlan {
    /// One line naming what the plan turns on, as `pinn run` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = [
            (self.fused_layers, "fused layers"),
            (self.fused_irk, "fused IRK term"),
            (self.half_matmuls, "bf16 products"),
            (
                self.burn_fusion && self.kind.launches_kernels(),
                "kernel fusion",
            ),
            (self.stacked_passes, "stacked passes"),
            (self.graph_replay, "graph replay"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let what = if parts.is_empty() {
            "op by op".to_string()
        } else {
            parts.join(", ")
        };
        write!(f, "{} on {}: {what}", self.mode, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_mode_device_and_options() {
        let cpu = ExecutionPlan::cpu();
        assert!(cpu.fused_layers() && cpu.fused_irk() && !cpu.half_matmuls());
        assert!(!cpu.graph_replay() && !cpu.stacked_passes() && cpu.cut_before_wide_output());
        assert_eq!(
            cpu.to_string(),
            "fused on cpu: fused layers, fused IRK term"
        );

        let eager = ExecutionPlan::resolve(DeviceKind::Cpu, Mode::Eager, PlanOptions::default())
            .expect("eager runs on the CPU");
        assert_eq!(eager.to_string(), "eager on cpu: op by op");

        let layers_off = PlanOptions { fuse_layers: false };
        let unfused = ExecutionPlan::resolve(DeviceKind::Cuda, Mode::GraphFused, layers_off)
            .expect("graph replay runs on CUDA");
        assert!(!unfused.fused_layers() && !unfused.fused_irk());
        assert!(unfused.burn_fusion() && unfused.graph_replay() && unfused.stacked_passes());
        assert!(!unfused.cut_before_wide_output());

        for mode in Mode::ALL {
            for kind in DeviceKind::ALL {
                let Ok(plan) = ExecutionPlan::resolve(kind, mode, PlanOptions::default()) else {
                    assert!(
                        mode.replays_graph() && kind != DeviceKind::Cuda,
                        "{mode} {kind}"
                    );
                    continue;
                };
                assert!(!(plan.fused_layers() && plan.half_matmuls()), "{plan}");
                assert_eq!(plan.graph_replay(), mode.replays_graph(), "{plan}");
                assert_eq!(plan.stacked_passes(), kind.launches_kernels(), "{plan}");
            }
        }
        let err = ExecutionPlan::resolve(DeviceKind::Wgpu, Mode::Graph, PlanOptions::default())
            .expect_err("graph replay is CUDA's")
            .to_string();
        assert!(err.contains("graph") && err.contains("CUDA"), "{err}");
    }
}
