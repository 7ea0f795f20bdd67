//! `[domain]` and `[dataset]`: the inputs' box and where the reference data comes from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Input coordinates and the box they live in (also used to scale network inputs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Names of the input coordinates, e.g. `["x", "t"]`.
    pub inputs: Vec<String>,
    /// Lower bounds, one per input.
    pub lower: Vec<f64>,
    /// Upper bounds, one per input.
    pub upper: Vec<f64>,
}

/// Where a problem's reference data comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Built-in generator (e.g. `"burgers"`): the data is generated into `datasets/<name>/`
    /// on first use.
    #[serde(default)]
    pub generator: Option<String>,
    /// A folder holding the `.npy` files (relative to the problem file); overrides `generator`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `.npy` file stem of each grid axis, in the order of the field arrays' dimensions
    /// (`{ x = "x", t = "tt" }`). Every input needs an axis; extra axes (the time axis of a
    /// discrete-time problem) may be sliced but are not network inputs.
    pub axes: toml::Table,
    /// `.npy` file stem of each field (`u = "usol"`).
    pub fields: BTreeMap<String, String>,
    /// Allows input axes that reach outside `[domain]` (refused by default: the network would
    /// be evaluated outside the box its inputs are scaled from).
    #[serde(default)]
    pub outside_domain: bool,
}

impl DatasetConfig {
    /// The axes in file order as `(name, file stem)`.
    pub fn axis_list(&self) -> Result<Vec<(String, String)>, String> {
        self.axes
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(stem) => Ok((k.clone(), stem.to_string())),
                None => Err(format!("the file stem of axis `{k}` must be a string")),
            })
            .collect()
    }
}
