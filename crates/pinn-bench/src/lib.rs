//! Benchmark helpers: load a shipped problem by name for timing its training step.

use std::path::PathBuf;

use pinn::{LoadOptions, Problem, ProblemError};

/// Root of the workspace (where `problems/` and `datasets/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads `problems/<name>.toml` with the workspace's dataset cache, with layers fused or op by
/// op.
pub fn load_problem(name: &str, fuse_layers: bool) -> Result<Problem, ProblemError> {
    let root = workspace_root();
    Problem::from_file(
        &root.join("problems").join(format!("{name}.toml")),
        &LoadOptions {
            datasets: root.join("datasets"),
            fuse_layers: Some(fuse_layers),
            ..Default::default()
        },
    )
}
