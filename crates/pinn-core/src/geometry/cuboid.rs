//! Axis-aligned boxes in any dimension: the interval (1-D), the rectangle (2-D) and the box
//! (3-D).

use rand::Rng;

use super::{GeometryError, Primitive, finite, positive};
use crate::sampling::SeededRng;

/// An axis-aligned box `[lower, upper]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cuboid {
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl Cuboid {
    /// The box `[lower, upper]`; `name` is used in errors. Every side must be longer than 0.
    pub fn new(name: &str, lower: &[f64], upper: &[f64]) -> Result<Self, GeometryError> {
        finite(name, "corners", lower)?;
        finite(name, "corners", upper)?;
        if lower.len() != upper.len() || lower.is_empty() || lower.len() > 3 {
            return Err(GeometryError::Shape {
                name: name.into(),
                message: format!(
                    "`lower` and `upper` need 1 to 3 coordinates each (got {} and {})",
                    lower.len(),
                    upper.len()
                ),
            });
        }
        let sides: Vec<f64> = lower.iter().zip(upper).map(|(l, u)| u - l).collect();
        positive(name, "every side (upper - lower)", &sides)?;
        Ok(Self {
            lower: lower.to_vec(),
            upper: upper.to_vec(),
        })
    }

    /// Area (or length, or point count) of the face normal to axis `d`: one of its two.
    fn face(&self, d: usize) -> f64 {
        (0..self.lower.len())
            .filter(|&k| k != d)
            .map(|k| self.upper[k] - self.lower[k])
            .product()
    }
}

impl Primitive for Cuboid {
    fn dim(&self) -> usize {
        self.lower.len()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        (self.lower.clone(), self.upper.clone())
    }

    fn signed_distance(&self, p: &[f64]) -> f64 {
        // Inside: minus the distance to the nearest face; outside, the largest excess over a
        // face (the distance's sign and, near a face, its value).
        p.iter()
            .zip(self.lower.iter().zip(&self.upper))
            .map(|(x, (l, u))| (l - x).max(x - u))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    fn boundary_measure(&self) -> f64 {
        (0..self.dim()).map(|d| 2.0 * self.face(d)).sum()
    }

    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        let mut pick = rng.random::<f64>() * self.boundary_measure();
        let mut axis = self.dim() - 1;
        for d in 0..self.dim() {
            let two = 2.0 * self.face(d);
            if pick < two {
                axis = d;
                break;
            }
            pick -= two;
        }
        let upper_face = rng.random::<bool>();
        for d in 0..self.dim() {
            normal[d] = 0.0;
            point[d] = if d == axis {
                if upper_face {
                    self.upper[d]
                } else {
                    self.lower[d]
                }
            } else {
                self.lower[d] + (self.upper[d] - self.lower[d]) * rng.random::<f64>()
            };
        }
        normal[axis] = if upper_face { 1.0 } else { -1.0 };
    }
}
