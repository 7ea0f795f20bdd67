//! `[points.<name>]`: where a loss term's points come from.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point set: exactly one source (`grid`, `lhs`, `uniform`, `coords`, `file`, `from` or
/// `union`), optionally
/// restricted to faces of the domain (`on`), sub-sampled, and read in mini-batches (`batch`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointSetConfig {
    /// Grid points: dataset slices (`[{ t = 0 }, { x = -1 }]`) or an even grid of the domain
    /// with a count per input (`[101, 51]`).
    #[serde(default)]
    pub grid: Option<GridSpec>,
    /// Latin-hypercube points in the domain (or, with `on`, in its faces).
    #[serde(default)]
    pub lhs: Option<usize>,
    /// Independent uniform random points in the domain (or, with `on`, in its faces).
    #[serde(default)]
    pub uniform: Option<usize>,
    /// Where on the domain the points lie: faces of its box, `{ t = 0.0 }` (one face),
    /// `{ x = [0.0, 1.0] }` (both ends; several inputs give the union of their faces, each
    /// point once); or, with a `[geometry]`, the region's boundary (`"boundary"`) or the parts
    /// of it that named shapes form (`"hole"`, `["hole1", "hole2"]`), each point with its
    /// outward unit normal.
    #[serde(default)]
    pub on: Option<OnSpec>,
    /// Inputs held at one value each, together: `{ t = 0.0, x = 0.0 }` is the edge where both
    /// hold (an intersection, where `on` takes the union of faces); every input held is a
    /// corner. The layout (`lhs`, `uniform`, `grid`) covers the other inputs.
    #[serde(default)]
    pub at: Option<BTreeMap<String, f64>>,
    /// Given points, one `[x, y, ...]` per point in `[domain] inputs` order (a pressure pin, a
    /// probe).
    #[serde(default)]
    pub coords: Option<Vec<Vec<f64>>>,
    /// Scattered points from a table (relative to the problem file): CSV or whitespace text
    /// whose header names the inputs and, in other columns, field values (sensor readings),
    /// or an `.npy` array whose columns `columns` names.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
    /// A built-in generator whose dataset holds `file` (made on first use, in the dataset
    /// cache), instead of a path next to the problem file: `generator = "sensors"`.
    #[serde(default)]
    pub generator: Option<String>,
    /// The columns of an `.npy` `file`, in order (inputs and fields).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Allows points of a `file` outside the domain (or its `[geometry]` region); refused by
    /// default.
    #[serde(default)]
    pub outside: bool,
    /// Another point set.
    #[serde(default)]
    pub from: Option<String>,
    /// Concatenation of other point sets (in order).
    #[serde(default)]
    pub union: Option<Vec<String>>,
    /// Random subset of this size, drawn without replacement.
    #[serde(default)]
    pub sample: Option<usize>,
    /// Mini-batches: every training iteration reads this many of the set's points (and their
    /// data), a fresh random draw without replacement each iteration, seeded by the problem's
    /// `seed`, the set and the iteration (so a resumed run draws the same batches).
    #[serde(default)]
    pub batch: Option<usize>,
    /// Gaussian noise added to the data values, relative to each field's standard deviation.
    #[serde(default)]
    pub noise: Option<f64>,
    /// Gaussian noise added to the data values, of this absolute standard deviation.
    #[serde(default)]
    pub noise_sigma: Option<f64>,
}

/// A named point set from the `[points]` table.
#[derive(Clone, Debug)]
pub struct NamedPointSet {
    /// Name.
    pub name: String,
    /// Definition.
    pub spec: PointSetConfig,
}

/// The two spellings of `grid`.
#[derive(Clone, Debug, PartialEq)]
pub enum GridSpec {
    /// Dataset grid points: the union of the slices with the given axis indices fixed
    /// (negative indices count from the end); an empty list is the whole dataset grid.
    Slices(Vec<BTreeMap<String, i64>>),
    /// An even grid over the domain (endpoints included) with this many points per input,
    /// in input order.
    Counts(Vec<usize>),
}

impl<'de> Deserialize<'de> for GridSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(deserializer)?;
        let expected = "an array of dataset slices (`[{ t = 0 }]`) or of point counts per input \
                        (`[101, 51]`)";
        let toml::Value::Array(items) = &value else {
            return Err(D::Error::custom(format!("expected {expected}")));
        };
        if items.iter().all(toml::Value::is_table) {
            return value
                .try_into()
                .map(GridSpec::Slices)
                .map_err(|e: toml::de::Error| D::Error::custom(e.message()));
        }
        items
            .iter()
            .map(|v| match v.as_integer() {
                Some(n) if n >= 1 => Ok(n as usize),
                _ => Err(D::Error::custom(format!(
                    "expected {expected}; a count must be an integer >= 1, got {v}"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(GridSpec::Counts)
    }
}

impl Serialize for GridSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GridSpec::Slices(slices) => slices.serialize(serializer),
            GridSpec::Counts(counts) => counts.serialize(serializer),
        }
    }
}

/// What `on` names: faces of the domain's box, or parts of a geometry's boundary.
#[derive(Clone, Debug, PartialEq)]
pub enum OnSpec {
    /// Input name → the values it is held at.
    Faces(BTreeMap<String, Faces>),
    /// Shape names of `[geometry]` (`"boundary"`: all of them).
    Parts(Vec<String>),
}

impl OnSpec {
    /// The faces named (none for boundary parts).
    pub fn faces(&self) -> Option<&BTreeMap<String, Faces>> {
        match self {
            OnSpec::Faces(f) => Some(f),
            OnSpec::Parts(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for OnSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(deserializer)?;
        let expected = "a table of faces (`{ t = 0.0 }`), a shape of [geometry] (`\"hole\"`, \
                        `\"boundary\"`) or a list of shapes";
        match &value {
            toml::Value::Table(_) => value
                .try_into()
                .map(OnSpec::Faces)
                .map_err(|e: toml::de::Error| D::Error::custom(e.message())),
            toml::Value::String(part) => Ok(OnSpec::Parts(vec![part.clone()])),
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(OnSpec::Parts)
                .ok_or_else(|| D::Error::custom(format!("expected {expected}, got {value}"))),
            _ => Err(D::Error::custom(format!(
                "expected {expected}, got {value}"
            ))),
        }
    }
}

impl Serialize for OnSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OnSpec::Faces(faces) => faces.serialize(serializer),
            OnSpec::Parts(parts) => parts.serialize(serializer),
        }
    }
}

/// The values an input is fixed at in `on`: one number or a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Faces(pub Vec<f64>);

impl<'de> Deserialize<'de> for Faces {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let number = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
        let value = toml::Value::deserialize(deserializer)?;
        let values = match &value {
            toml::Value::Array(items) => items.iter().map(number).collect::<Option<Vec<_>>>(),
            v => number(v).map(|x| vec![x]),
        };
        match values {
            Some(v) if !v.is_empty() => Ok(Faces(v)),
            _ => Err(D::Error::custom(format!(
                "expected a number or a non-empty array of numbers, got {value}"
            ))),
        }
    }
}

impl Serialize for Faces {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}
