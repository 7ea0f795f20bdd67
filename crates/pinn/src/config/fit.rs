//! `fit` of a `[[loss]]` term: the fitted quantities and what each is fitted to.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The quantities a loss term fits, in file order. Written as a list of fields fitted to the
/// point set's data (`fit = ["u"]`, or to `fit_value`), or as a table of targets
/// (`fit = { u = "sin(pi*x)", u_t = 0.0 }`) whose keys may be derivatives of fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fits(pub Vec<FitEntry>);

/// One fitted quantity.
#[derive(Clone, Debug, PartialEq)]
pub struct FitEntry {
    /// A field or a derivative of one, spelled as in expressions (`u`, `u_t`).
    pub quantity: String,
    /// What it is fitted to.
    pub target: FitTarget,
}

/// The target of a fitted quantity.
#[derive(Clone, Debug, PartialEq)]
pub enum FitTarget {
    /// The point set's data values (or the term's `fit_value`).
    Data,
    /// A number.
    Value(f64),
    /// An expression of the inputs and constants, evaluated at each point.
    Expression(String),
}

impl Fits {
    /// Number of fitted quantities.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is fitted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, FitEntry> {
        self.0.iter()
    }

    /// Whether any target is given in the file (the table form).
    pub fn has_targets(&self) -> bool {
        self.0.iter().any(|f| f.target != FitTarget::Data)
    }
}

impl<'de> Deserialize<'de> for Fits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(deserializer)?;
        let entries = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(quantity) => Ok(FitEntry {
                        quantity,
                        target: FitTarget::Data,
                    }),
                    other => Err(D::Error::custom(format!(
                        "expected field names, got {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            toml::Value::Table(table) => table
                .into_iter()
                .map(|(quantity, v)| {
                    let target = match v {
                        toml::Value::String(text) => FitTarget::Expression(text),
                        toml::Value::Float(x) => FitTarget::Value(x),
                        toml::Value::Integer(i) => FitTarget::Value(i as f64),
                        other => {
                            return Err(D::Error::custom(format!(
                                "the target of `{quantity}` must be a number or an expression \
                                 string, got {other}"
                            )));
                        }
                    };
                    Ok(FitEntry { quantity, target })
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a list of fields (`[\"u\"]`) or a table of targets \
                     (`{{ u = \"sin(pi*x)\" }}`), got {other}"
                )));
            }
        };
        Ok(Fits(entries))
    }
}

impl Serialize for Fits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if self.has_targets() {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for f in &self.0 {
                match &f.target {
                    FitTarget::Value(x) => map.serialize_entry(&f.quantity, x)?,
                    FitTarget::Expression(e) => map.serialize_entry(&f.quantity, e)?,
                    FitTarget::Data => map.serialize_entry(&f.quantity, "data")?,
                }
            }
            map.end()
        } else {
            let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
            for f in &self.0 {
                seq.serialize_element(&f.quantity)?;
            }
            seq.end()
        }
    }
}
