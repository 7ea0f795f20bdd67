//! Axis-aligned ellipses (2-D).

use std::f64::consts::PI;

use rand::Rng;

use super::{GeometryError, Primitive, finite, positive};
use crate::sampling::SeededRng;

/// The ellipse `((x - cx) / a)² + ((y - cy) / b)² ≤ 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ellipse {
    center: [f64; 2],
    semi_axes: [f64; 2],
    perimeter: f64,
}

/// Points of the numerical integration of the perimeter (exact to about 1e-12 relative for
/// any aspect ratio up to 100: the integrand is smooth and periodic).
const PERIMETER_STEPS: usize = 4096;

impl Ellipse {
    /// The ellipse with the given center and semi-axes along x and y; `name` is used in errors.
    pub fn new(name: &str, center: &[f64], semi_axes: &[f64]) -> Result<Self, GeometryError> {
        finite(name, "center", center)?;
        positive(name, "semi-axes", semi_axes)?;
        if center.len() != 2 || semi_axes.len() != 2 {
            return Err(GeometryError::Shape {
                name: name.into(),
                message: "an ellipse needs a 2-D center and two semi-axes".into(),
            });
        }
        let [a, b] = [semi_axes[0], semi_axes[1]];
        let perimeter = (0..PERIMETER_STEPS)
            .map(|k| speed(a, b, 2.0 * PI * k as f64 / PERIMETER_STEPS as f64))
            .sum::<f64>()
            * 2.0
            * PI
            / PERIMETER_STEPS as f64;
        Ok(Self {
            center: [center[0], center[1]],
            semi_axes: [a, b],
            perimeter,
        })
    }
}

/// `|d(a cos θ, b sin θ)/dθ|`.
fn speed(a: f64, b: f64, theta: f64) -> f64 {
    (a * a * theta.sin().powi(2) + b * b * theta.cos().powi(2)).sqrt()
}

impl Primitive for Ellipse {
    fn dim(&self) -> usize {
        2
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let [cx, cy] = self.center;
        let [a, b] = self.semi_axes;
        (vec![cx - a, cy - b], vec![cx + a, cy + b])
    }

    fn signed_distance(&self, p: &[f64]) -> f64 {
        // (ρ − 1) · min(a, b) with ρ the ellipse's own radius: the distance's sign, and within
        // the axes' ratio of its value.
        let [cx, cy] = self.center;
        let [a, b] = self.semi_axes;
        let rho = (((p[0] - cx) / a).powi(2) + ((p[1] - cy) / b).powi(2)).sqrt();
        (rho - 1.0) * a.min(b)
    }

    fn boundary_measure(&self) -> f64 {
        self.perimeter
    }

    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        // Uniform by arc length: an angle accepted with probability speed / max speed.
        let [a, b] = self.semi_axes;
        let top = a.max(b);
        let theta = loop {
            let theta = 2.0 * PI * rng.random::<f64>();
            if rng.random::<f64>() * top <= speed(a, b, theta) {
                break theta;
            }
        };
        let (s, c) = theta.sin_cos();
        point[0] = self.center[0] + a * c;
        point[1] = self.center[1] + b * s;
        let (nx, ny) = (c / a, s / b);
        let norm = (nx * nx + ny * ny).sqrt();
        normal[0] = nx / norm;
        normal[1] = ny / norm;
    }
}
