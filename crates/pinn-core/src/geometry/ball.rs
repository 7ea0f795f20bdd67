//! Disks (2-D) and spheres (3-D).

use std::f64::consts::PI;

use super::{GeometryError, Primitive, finite, positive};
use crate::sampling::{SeededRng, standard_normal};

/// The closed ball of `radius` around `center`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ball {
    center: Vec<f64>,
    radius: f64,
}

impl Ball {
    /// A disk (a 2-D center) or a sphere (3-D); `name` is used in errors.
    pub fn new(name: &str, center: &[f64], radius: f64) -> Result<Self, GeometryError> {
        finite(name, "center", center)?;
        positive(name, "radius", &[radius])?;
        if !(2..=3).contains(&center.len()) {
            return Err(GeometryError::Shape {
                name: name.into(),
                message: format!(
                    "a disk or sphere needs a center of 2 or 3 coordinates (got {})",
                    center.len()
                ),
            });
        }
        Ok(Self {
            center: center.to_vec(),
            radius,
        })
    }
}

impl Primitive for Ball {
    fn dim(&self) -> usize {
        self.center.len()
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        (
            self.center.iter().map(|c| c - self.radius).collect(),
            self.center.iter().map(|c| c + self.radius).collect(),
        )
    }

    fn signed_distance(&self, p: &[f64]) -> f64 {
        let r2: f64 = p
            .iter()
            .zip(&self.center)
            .map(|(x, c)| (x - c).powi(2))
            .sum();
        r2.sqrt() - self.radius
    }

    fn boundary_measure(&self) -> f64 {
        match self.dim() {
            2 => 2.0 * PI * self.radius,
            _ => 4.0 * PI * self.radius * self.radius,
        }
    }

    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        // A standard normal vector, normalised, is uniform on the sphere.
        let mut norm = 0.0;
        while norm < 1e-12 {
            for n in normal.iter_mut() {
                *n = standard_normal(rng);
            }
            norm = normal.iter().map(|n| n * n).sum::<f64>().sqrt();
        }
        for ((p, n), c) in point.iter_mut().zip(normal.iter_mut()).zip(&self.center) {
            *n /= norm;
            *p = c + self.radius * *n;
        }
    }
}
