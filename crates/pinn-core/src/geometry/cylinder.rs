//! Circular cylinders with flat caps (3-D), their axis along x, y or z.

use std::f64::consts::PI;

use rand::Rng;

use super::{GeometryError, Primitive, finite, positive};
use crate::sampling::SeededRng;

/// The cylinder of `radius` around the line through `center` along axis `axis` (0, 1, 2),
/// `height` long and centred on `center` along it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cylinder {
    center: [f64; 3],
    radius: f64,
    height: f64,
    axis: usize,
}

impl Cylinder {
    /// The cylinder; `axis` is 0, 1 or 2 (x, y, z); `name` is used in errors.
    pub fn new(
        name: &str,
        center: &[f64],
        radius: f64,
        height: f64,
        axis: usize,
    ) -> Result<Self, GeometryError> {
        finite(name, "center", center)?;
        positive(name, "radius and height", &[radius, height])?;
        let center: [f64; 3] = center.try_into().map_err(|_| GeometryError::Shape {
            name: name.into(),
            message: format!("a cylinder needs a 3-D center (got {})", center.len()),
        })?;
        if axis > 2 {
            return Err(GeometryError::Shape {
                name: name.into(),
                message: format!("axis {axis} is not 0, 1 or 2"),
            });
        }
        Ok(Self {
            center,
            radius,
            height,
            axis,
        })
    }

    /// The two axes across the cylinder's axis.
    fn across(&self) -> [usize; 2] {
        [(self.axis + 1) % 3, (self.axis + 2) % 3]
    }
}

impl Primitive for Cylinder {
    fn dim(&self) -> usize {
        3
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let half = |d: usize| {
            if d == self.axis {
                self.height / 2.0
            } else {
                self.radius
            }
        };
        (
            (0..3).map(|d| self.center[d] - half(d)).collect(),
            (0..3).map(|d| self.center[d] + half(d)).collect(),
        )
    }

    fn signed_distance(&self, p: &[f64]) -> f64 {
        let [u, v] = self.across();
        let radial = (p[u] - self.center[u]).hypot(p[v] - self.center[v]) - self.radius;
        let axial = (p[self.axis] - self.center[self.axis]).abs() - self.height / 2.0;
        radial.max(axial)
    }

    fn boundary_measure(&self) -> f64 {
        2.0 * PI * self.radius * (self.height + self.radius)
    }

    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        let [u, v] = self.across();
        let side = 2.0 * PI * self.radius * self.height;
        let pick = rng.random::<f64>() * self.boundary_measure();
        let theta = 2.0 * PI * rng.random::<f64>();
        let (s, c) = theta.sin_cos();
        normal.iter_mut().for_each(|n| *n = 0.0);
        if pick < side {
            let along = (rng.random::<f64>() - 0.5) * self.height;
            point[self.axis] = self.center[self.axis] + along;
            point[u] = self.center[u] + self.radius * c;
            point[v] = self.center[v] + self.radius * s;
            normal[u] = c;
            normal[v] = s;
        } else {
            // A cap: uniform on the disk (radius ∝ √uniform).
            let top = pick - side < PI * self.radius * self.radius;
            let r = self.radius * rng.random::<f64>().sqrt();
            let sign = if top { 1.0 } else { -1.0 };
            point[self.axis] = self.center[self.axis] + sign * self.height / 2.0;
            point[u] = self.center[u] + r * c;
            point[v] = self.center[v] + r * s;
            normal[self.axis] = sign;
        }
    }
}
