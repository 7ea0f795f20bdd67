//! Errors that end a training run.

use super::*;

/// Errors that end a training run.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at iteration {iteration}: loss term `{term}` (field `{entry}`) is {value}{}; metrics, and the parameters after iteration {kept}, are kept in `{out}`",
        if *iteration == 1 { " at the initial parameters: check the constants, unknowns' `init` and targets it reads" } else { "" }
    )]
    NonFinite {
        /// Iteration (1-based) whose loss was not finite.
        iteration: usize,
        /// The `[[loss]]` entry the term comes from (`loss[2]`).
        entry: String,
        /// Iteration after which the saved parameters were taken (the one before, or with graph
        /// replay the last logged one).
        kept: usize,
        /// First non-finite component.
        term: String,
        /// Its value.
        value: f64,
        /// Output folder.
        out: PathBuf,
    },
    /// Training was stopped on request; the checkpoint allows `--resume`.
    #[error(
        "interrupted after iteration {iteration}; continue with --resume (checkpoint in `{out}`)"
    )]
    Interrupted {
        /// Last completed iteration.
        iteration: usize,
        /// Output folder with the checkpoint.
        out: PathBuf,
    },
    /// A checkpoint could not be used.
    #[error("cannot resume from `{path}`: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing outputs failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
