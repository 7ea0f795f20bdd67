//! The acceleration modes of the paper's Table 1, by name. What a mode means for a run on a
//! given device is decided in one place, the [`ExecutionPlan`](super::ExecutionPlan).

use serde::{Deserialize, Serialize};

use super::DeviceKind;

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
    pub(super) fn fuses_layers(self) -> bool {
        matches!(self, Mode::Fused | Mode::GraphFused)
    }

    /// Whether training steps are captured once and replayed as a graph.
    pub(super) fn replays_graph(self) -> bool {
        matches!(self, Mode::Graph | Mode::GraphAmp | Mode::GraphFused)
    }

    /// Whether the network's matrix products run in bf16 (mixed precision).
    pub(super) fn uses_half_matmuls(self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip_through_text_and_serde() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
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
