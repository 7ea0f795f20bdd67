//! The problem file: every section of a `problems/*.toml`, as typed, validated structures.
//!
//! See `docs/toml.md` for the reference of every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod domain;
mod fit;
mod geometry;
mod limits;
mod loss;
mod network;
mod optimizer;
mod points;
mod run;
mod spans;
mod time;
mod validate;

pub use domain::{DatasetConfig, DomainConfig};
pub use fit::{FitEntry, FitTarget, Fits};
pub use geometry::{GeometryConfig, ShapeConfig};
pub use limits::{MAX_PARAMETERS, MAX_POINTS, MAX_STAGES, MAX_WIDTH, grid_points};
pub use loss::{LossBalanceConfig, LossBalanceKind, LossConfig, PeriodicConfig, Reduction};
pub use network::{Activation, Init, NetworkConfig, Transform, UnknownConfig};
pub use optimizer::{LbfgsConfig, LrDecay, OptimizerConfig};
pub use points::{Faces, GridSpec, NamedPointSet, OnSpec, PointSetConfig};
pub use run::{EvaluateConfig, RunConfig};
pub use time::{IrkMode, Snapshot, TimeConfig};

use spans::toml_error;

/// A configuration error, naming the file and the field or position.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read problem file `{path}`: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Malformed TOML or a key of the wrong type (the message has line and column).
    #[error("invalid problem file `{path}`: {message}")]
    Toml {
        /// File path.
        path: PathBuf,
        /// Parser message with line and column.
        message: String,
    },
    /// A semantically invalid value.
    #[error("invalid problem file `{path}`: field `{field}`: {message}")]
    Invalid {
        /// File path.
        path: PathBuf,
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A complete problem description.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemConfig {
    /// Short name, used for the output folder.
    pub name: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw (points, initial weights).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Input coordinates and their bounds.
    pub domain: DomainConfig,
    /// The region the problem lives on, when it is not the box of `[domain]`.
    #[serde(default)]
    pub geometry: Option<GeometryConfig>,
    /// Reference data (optional for problems without data).
    #[serde(default)]
    pub dataset: Option<DatasetConfig>,
    /// The network.
    pub network: NetworkConfig,
    /// Named constants usable in expressions.
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
    /// Discrete-time model (absent: continuous time).
    #[serde(default)]
    pub time: Option<TimeConfig>,
    /// Unknown scalar parameters learned with the network (inverse problems).
    #[serde(default)]
    pub unknowns: BTreeMap<String, UnknownConfig>,
    /// Derived outputs: `name = "expression"` of outputs and their derivatives.
    #[serde(default)]
    pub derived: BTreeMap<String, String>,
    /// PDE residuals: `name = "expression"`, driven to zero at collocation points.
    #[serde(default)]
    pub residuals: BTreeMap<String, String>,
    /// Named point sets, built in the order given.
    #[serde(default)]
    pub points: toml::Table,
    /// Loss terms, summed with their weights.
    #[serde(default)]
    pub loss: Vec<LossConfig>,
    /// The optimiser.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Loss weights that balance themselves while training (off by default).
    #[serde(default)]
    pub loss_balance: Option<LossBalanceConfig>,
    /// What to report at the end.
    #[serde(default)]
    pub evaluate: EvaluateConfig,
    /// Device, precision and logging.
    #[serde(default)]
    pub run: RunConfig,
}

fn default_seed() -> u64 {
    1234
}

impl ProblemConfig {
    /// Parses a problem from TOML text; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: ProblemConfig = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        cfg.finish(path)
    }

    /// Builds a problem from a TOML table (the builder API); `path` names it in messages.
    pub fn from_table(table: toml::Table, path: &Path) -> Result<Self, ConfigError> {
        let cfg: ProblemConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Toml {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?;
        cfg.finish(path)
    }

    fn finish(mut self, path: &Path) -> Result<Self, ConfigError> {
        self.optimizer
            .apply_schedule()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                field: "optimizer.schedule".into(),
                message,
            })?;
        self.validate(path)?;
        Ok(self)
    }

    /// Reads and parses a problem file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The `[points]` sets, parsed, in file order.
    pub fn point_sets(&self, path: &Path) -> Result<Vec<NamedPointSet>, ConfigError> {
        self.points
            .iter()
            .map(|(name, value)| {
                let spec: PointSetConfig =
                    value.clone().try_into().map_err(|e: toml::de::Error| {
                        ConfigError::Invalid {
                            path: path.to_path_buf(),
                            field: format!("points.{name}"),
                            message: e.message().to_string(),
                        }
                    })?;
                Ok(NamedPointSet {
                    name: name.clone(),
                    spec,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
