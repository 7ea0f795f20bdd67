//! Constructive solid geometry over a problem's spatial inputs: primitives (interval, rectangle
//! and box; disk and sphere; ellipse; polygon; cylinder), combined by union, difference and
//! intersection into a [`Region`], and seeded points inside it and on its boundary, each
//! boundary point with its outward unit normal and the primitive it lies on.
//!
//! Everything here is plain `f64` on the host, independent of any device: a problem's
//! description holds its region, and the points it lays out become tensors later.
//!
//! Membership is decided by each primitive's signed distance (negative inside), within a
//! tolerance of `1e-9` of the region's size, so that a boundary shared by two primitives (the
//! common edge of the two rectangles of an L-shape) counts as neither inside nor outside and is
//! left out of the region's boundary, as it is interior to the region.

mod ball;
mod csg;
mod cuboid;
mod cylinder;
mod ellipse;
mod polygon;
mod sampling;

pub use ball::Ball;
pub use csg::{Region, RegionExpr};
pub use cuboid::Cuboid;
pub use cylinder::Cylinder;
pub use ellipse::Ellipse;
pub use polygon::Polygon;
pub use sampling::{BoundaryPoints, InteriorLayout};

use crate::sampling::SeededRng;
use thiserror::Error;

/// Why a shape or region was refused, or its points could not be laid out.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GeometryError {
    /// A primitive's parameters do not describe a shape (a radius ≤ 0, too few vertices,
    /// crossing edges, points of the wrong dimension).
    #[error("shape `{name}`: {message}")]
    Shape {
        /// The primitive's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The region's expression does not parse, or names an unknown shape.
    #[error("region `{text}`: {message}")]
    Expression {
        /// The expression.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// The operations leave no region (no point of many drawn lies inside it).
    #[error("region `{0}` is empty: no point of its bounding box lies inside it")]
    Empty(String),
    /// A named part of the boundary does not bound the region (it lies inside another shape
    /// or outside the region).
    #[error(
        "`{part}` does not bound the region `{region}`: no point of its boundary lies on the region's boundary"
    )]
    NotABoundary {
        /// The part.
        part: String,
        /// The region.
        region: String,
    },
}

/// A primitive shape in `dim()` dimensions.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// An interval (1-D), rectangle (2-D) or box (3-D), axis-aligned.
    Cuboid(Cuboid),
    /// A disk (2-D) or sphere (3-D).
    Ball(Ball),
    /// An axis-aligned ellipse (2-D).
    Ellipse(Ellipse),
    /// A simple polygon (2-D).
    Polygon(Polygon),
    /// An axis-aligned circular cylinder with flat caps (3-D).
    Cylinder(Cylinder),
}

/// What every primitive gives the regions built from it.
pub(crate) trait Primitive {
    /// Dimension of its space.
    fn dim(&self) -> usize;
    /// Its bounding box.
    fn bounds(&self) -> (Vec<f64>, Vec<f64>);
    /// Negative inside, positive outside, zero on the boundary; the distance to the boundary
    /// or a function of the same sign that is comparable to it near the boundary.
    fn signed_distance(&self, p: &[f64]) -> f64;
    /// Length (2-D), area (3-D) or point count (1-D) of the boundary.
    fn boundary_measure(&self) -> f64;
    /// A point drawn uniformly (by measure) on the boundary, and its outward unit normal.
    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]);
}

impl Shape {
    fn primitive(&self) -> &dyn Primitive {
        match self {
            Shape::Cuboid(s) => s,
            Shape::Ball(s) => s,
            Shape::Ellipse(s) => s,
            Shape::Polygon(s) => s,
            Shape::Cylinder(s) => s,
        }
    }

    /// Dimension of the shape's space.
    pub fn dim(&self) -> usize {
        self.primitive().dim()
    }

    /// Its bounding box `(lower, upper)`.
    pub fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.primitive().bounds()
    }

    /// Negative inside, positive outside, zero on the boundary.
    pub fn signed_distance(&self, p: &[f64]) -> f64 {
        self.primitive().signed_distance(p)
    }

    /// Length (2-D), area (3-D) or point count (1-D) of the boundary.
    pub fn boundary_measure(&self) -> f64 {
        self.primitive().boundary_measure()
    }

    /// A point drawn uniformly (by measure) on the boundary, and its outward unit normal.
    pub fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        self.primitive().boundary_point(rng, point, normal);
    }
}

/// `Err` naming `name` unless every value is finite and positive.
pub(crate) fn positive(name: &str, what: &str, values: &[f64]) -> Result<(), GeometryError> {
    match values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        Some(v) => Err(GeometryError::Shape {
            name: name.to_string(),
            message: format!("{what} must be finite and > 0 (got {v})"),
        }),
        None => Ok(()),
    }
}

/// `Err` naming `name` unless every value is finite.
pub(crate) fn finite(name: &str, what: &str, values: &[f64]) -> Result<(), GeometryError> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(GeometryError::Shape {
            name: name.to_string(),
            message: format!("{what} must be finite (got {v})"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
