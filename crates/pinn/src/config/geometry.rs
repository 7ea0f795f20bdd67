//! `[geometry]`: the region a problem lives on, when it is not the box of `[domain]`: named
//! primitives over the spatial inputs and an expression that combines them.
//!
//! ```toml
//! [geometry]
//! region = "plate - hole"
//! [geometry.shapes]
//! plate = { rectangle = { lower = [0.0, 0.0], upper = [1.0, 1.0] } }
//! hole = { disk = { center = [0.5, 0.5], radius = 0.2 } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use pinn_core::geometry::{Ball, Cuboid, Cylinder, Ellipse, Polygon, Region, Shape};
use serde::{Deserialize, Serialize};

use super::{ConfigError, DomainConfig};

/// The `[geometry]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryConfig {
    /// The region: an expression over the shapes' names with `+` or `|` (union), `-`
    /// (difference), `&` (intersection) and parentheses. Required (checked with the rest, so
    /// that its absence is named like any other mistake).
    #[serde(default)]
    pub region: Option<String>,
    /// The spatial inputs the shapes live in, in their coordinates' order; by default every
    /// input but `t`.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// The primitives, by name.
    pub shapes: BTreeMap<String, ShapeConfig>,
}

/// One primitive: `{ disk = { center = [0.5, 0.5], radius = 0.2 } }` and the like.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ShapeConfig {
    /// `[lower, upper]` on one input.
    Interval {
        /// Lower end.
        lower: f64,
        /// Upper end.
        upper: f64,
    },
    /// An axis-aligned rectangle (2-D).
    Rectangle {
        /// Lower corner.
        lower: Vec<f64>,
        /// Upper corner.
        upper: Vec<f64>,
    },
    /// An axis-aligned box (3-D).
    Box {
        /// Lower corner.
        lower: Vec<f64>,
        /// Upper corner.
        upper: Vec<f64>,
    },
    /// A disk (2-D).
    Disk {
        /// Center.
        center: Vec<f64>,
        /// Radius.
        radius: f64,
    },
    /// A ball (3-D).
    Sphere {
        /// Center.
        center: Vec<f64>,
        /// Radius.
        radius: f64,
    },
    /// An axis-aligned ellipse (2-D).
    Ellipse {
        /// Center.
        center: Vec<f64>,
        /// Semi-axes along the two inputs.
        semi_axes: Vec<f64>,
    },
    /// A simple polygon (2-D): at least 3 vertices, edges that do not cross.
    Polygon {
        /// `[[x, y], ...]`, in either order.
        vertices: Vec<Vec<f64>>,
    },
    /// A circular cylinder with flat caps (3-D), its axis along one of the inputs.
    Cylinder {
        /// Center (the middle of its axis).
        center: Vec<f64>,
        /// Radius.
        radius: f64,
        /// Length along its axis.
        height: f64,
        /// The input its axis runs along (default: the third spatial input).
        #[serde(default)]
        axis: Option<String>,
    },
}

impl ShapeConfig {
    /// The dimension this kind of shape has (an interval 1, a rectangle 2, ...).
    fn dim(&self) -> usize {
        match self {
            ShapeConfig::Interval { .. } => 1,
            ShapeConfig::Rectangle { .. }
            | ShapeConfig::Disk { .. }
            | ShapeConfig::Ellipse { .. }
            | ShapeConfig::Polygon { .. } => 2,
            ShapeConfig::Box { .. } | ShapeConfig::Sphere { .. } | ShapeConfig::Cylinder { .. } => {
                3
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ShapeConfig::Interval { .. } => "an interval",
            ShapeConfig::Rectangle { .. } => "a rectangle",
            ShapeConfig::Box { .. } => "a box",
            ShapeConfig::Disk { .. } => "a disk",
            ShapeConfig::Sphere { .. } => "a sphere",
            ShapeConfig::Ellipse { .. } => "an ellipse",
            ShapeConfig::Polygon { .. } => "a polygon",
            ShapeConfig::Cylinder { .. } => "a cylinder",
        }
    }

    /// The primitive, checked; `inputs` are the spatial inputs (the cylinder's axis names
    /// one).
    fn shape(&self, name: &str, inputs: &[String]) -> Result<Shape, String> {
        let shape = match self {
            ShapeConfig::Interval { lower, upper } => {
                Cuboid::new(name, &[*lower], &[*upper]).map(Shape::Cuboid)
            }
            ShapeConfig::Rectangle { lower, upper } | ShapeConfig::Box { lower, upper } => {
                Cuboid::new(name, lower, upper).map(Shape::Cuboid)
            }
            ShapeConfig::Disk { center, radius } | ShapeConfig::Sphere { center, radius } => {
                Ball::new(name, center, *radius).map(Shape::Ball)
            }
            ShapeConfig::Ellipse { center, semi_axes } => {
                Ellipse::new(name, center, semi_axes).map(Shape::Ellipse)
            }
            ShapeConfig::Polygon { vertices } => Polygon::new(name, vertices).map(Shape::Polygon),
            ShapeConfig::Cylinder {
                center,
                radius,
                height,
                axis,
            } => {
                let axis = match axis {
                    None => 2,
                    Some(a) => inputs.iter().position(|i| i == a).ok_or_else(|| {
                        format!(
                            "`axis = \"{a}\"` is not a spatial input ({})",
                            inputs.join(", ")
                        )
                    })?,
                };
                Cylinder::new(name, center, *radius, *height, axis).map(Shape::Cylinder)
            }
        };
        let shape = shape.map_err(|e| match e {
            pinn_core::geometry::GeometryError::Shape { message, .. } => message,
            other => other.to_string(),
        })?;
        if shape.dim() != self.dim() {
            return Err(format!(
                "{} is {}-D: its points need {} coordinates, not {}",
                self.kind(),
                self.dim(),
                self.dim(),
                shape.dim()
            ));
        }
        Ok(shape)
    }
}

impl GeometryConfig {
    /// The spatial inputs: `inputs`, or every input of the domain but `t`.
    pub fn spatial_inputs(&self, domain: &DomainConfig) -> Vec<String> {
        self.inputs.clone().unwrap_or_else(|| {
            domain
                .inputs
                .iter()
                .filter(|i| i.as_str() != "t")
                .cloned()
                .collect()
        })
    }

    /// The region, every shape and the expression checked, errors naming their key, and the
    /// input column of each of its coordinates; the region must lie in the domain's box.
    pub fn region(
        &self,
        domain: &DomainConfig,
        path: &Path,
    ) -> Result<(Region, Vec<usize>), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            message,
        };
        let inputs = self.spatial_inputs(domain);
        let mut axes = Vec::with_capacity(inputs.len());
        for input in &inputs {
            axes.push(
                domain
                    .inputs
                    .iter()
                    .position(|i| i == input)
                    .ok_or_else(|| {
                        invalid(
                            "geometry.inputs".into(),
                            format!("`{input}` is not an input ({})", domain.inputs.join(", ")),
                        )
                    })?,
            );
        }
        if inputs.is_empty() || inputs.len() > 3 {
            return Err(invalid(
                "geometry.inputs".into(),
                format!(
                    "a geometry lives on 1 to 3 spatial inputs, not {} ({})",
                    inputs.len(),
                    inputs.join(", ")
                ),
            ));
        }
        let mut shapes = Vec::with_capacity(self.shapes.len());
        for (name, config) in &self.shapes {
            let field = format!("geometry.shapes.{name}");
            if config.dim() != inputs.len() {
                return Err(invalid(
                    field,
                    format!(
                        "{} is {}-D, but the geometry's inputs are {} ({})",
                        config.kind(),
                        config.dim(),
                        inputs.len(),
                        inputs.join(", ")
                    ),
                ));
            }
            let shape = config.shape(name, &inputs).map_err(|m| invalid(field, m))?;
            shapes.push((name.clone(), shape));
        }
        let text = self.region.as_deref().ok_or_else(|| {
            invalid(
                "geometry.region".into(),
                "missing: the expression that combines the shapes (`region = \"plate - hole\"`)"
                    .into(),
            )
        })?;
        let region = Region::new(text, shapes)
            .and_then(|r| r.check_not_empty().map(|()| r))
            .map_err(|e| invalid("geometry.region".into(), e.to_string()))?;
        let (lower, upper) = region.bounds();
        for (k, &axis) in axes.iter().enumerate() {
            let slack = 1e-9 * (domain.upper[axis] - domain.lower[axis]);
            if lower[k] < domain.lower[axis] - slack || upper[k] > domain.upper[axis] + slack {
                return Err(invalid(
                    "geometry.region".into(),
                    format!(
                        "reaches [{}, {}] along `{}`, outside the domain's [{}, {}] (the network's \
                         inputs are scaled from [domain])",
                        lower[k], upper[k], inputs[k], domain.lower[axis], domain.upper[axis]
                    ),
                ));
            }
        }
        Ok((region, axes))
    }
}
