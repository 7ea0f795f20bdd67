//! Simple polygons (2-D): at least three vertices, edges that do not cross.

use rand::Rng;

use super::{GeometryError, Primitive, finite};
use crate::sampling::SeededRng;

/// A simple polygon, its vertices in either order (kept counter-clockwise).
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    vertices: Vec<[f64; 2]>,
    /// Edge lengths, edge `i` from vertex `i` to `i + 1`.
    lengths: Vec<f64>,
    perimeter: f64,
}

fn cross(o: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Whether segments `pq` and `rs` share a point.
fn segments_meet(p: [f64; 2], q: [f64; 2], r: [f64; 2], s: [f64; 2]) -> bool {
    let (d1, d2) = (cross(r, s, p), cross(r, s, q));
    let (d3, d4) = (cross(p, q, r), cross(p, q, s));
    let on = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        c[0] >= a[0].min(b[0])
            && c[0] <= a[0].max(b[0])
            && c[1] >= a[1].min(b[1])
            && c[1] <= a[1].max(b[1])
    };
    ((d1 > 0.0) != (d2 > 0.0) && (d3 > 0.0) != (d4 > 0.0) && d1 != 0.0 && d2 != 0.0)
        || (d1 == 0.0 && on(r, s, p))
        || (d2 == 0.0 && on(r, s, q))
        || (d3 == 0.0 && on(p, q, r))
        || (d4 == 0.0 && on(p, q, s))
}

impl Polygon {
    /// The polygon through `vertices` (`[x, y]` pairs); `name` is used in errors.
    pub fn new(name: &str, vertices: &[Vec<f64>]) -> Result<Self, GeometryError> {
        let bad = |message: String| GeometryError::Shape {
            name: name.into(),
            message,
        };
        if vertices.len() < 3 {
            return Err(bad(format!(
                "a polygon needs at least 3 vertices (got {})",
                vertices.len()
            )));
        }
        let mut points = Vec::with_capacity(vertices.len());
        for (i, v) in vertices.iter().enumerate() {
            finite(name, "vertices", v)?;
            match v.as_slice() {
                [x, y] => points.push([*x, *y]),
                _ => {
                    return Err(bad(format!(
                        "vertex {i} has {} coordinates, not 2",
                        v.len()
                    )));
                }
            }
        }
        let n = points.len();
        for i in 0..n {
            for j in i + 1..n {
                let adjacent = j == i + 1 || (i == 0 && j == n - 1);
                let (p, q) = (points[i], points[(i + 1) % n]);
                let (r, s) = (points[j], points[(j + 1) % n]);
                if !adjacent && segments_meet(p, q, r, s) {
                    return Err(bad(format!("edges {i} and {j} cross or touch")));
                }
            }
        }
        let area2: f64 = (0..n)
            .map(|i| {
                let (a, b) = (points[i], points[(i + 1) % n]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        if area2.abs() <= f64::EPSILON {
            return Err(bad("the vertices enclose no area".into()));
        }
        if area2 < 0.0 {
            points.reverse();
        }
        let lengths: Vec<f64> = (0..n)
            .map(|i| {
                let (a, b) = (points[i], points[(i + 1) % n]);
                (b[0] - a[0]).hypot(b[1] - a[1])
            })
            .collect();
        if lengths.contains(&0.0) {
            return Err(bad("two consecutive vertices coincide".into()));
        }
        Ok(Self {
            perimeter: lengths.iter().sum(),
            vertices: points,
            lengths,
        })
    }

    fn edge(&self, i: usize) -> ([f64; 2], [f64; 2]) {
        (
            self.vertices[i],
            self.vertices[(i + 1) % self.vertices.len()],
        )
    }
}

impl Primitive for Polygon {
    fn dim(&self) -> usize {
        2
    }

    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let fold = |f: fn(f64, f64) -> f64, start: f64, d: usize| {
            self.vertices.iter().map(|v| v[d]).fold(start, f)
        };
        (
            vec![
                fold(f64::min, f64::INFINITY, 0),
                fold(f64::min, f64::INFINITY, 1),
            ],
            vec![
                fold(f64::max, f64::NEG_INFINITY, 0),
                fold(f64::max, f64::NEG_INFINITY, 1),
            ],
        )
    }

    fn signed_distance(&self, p: &[f64]) -> f64 {
        let (x, y) = (p[0], p[1]);
        let mut distance2 = f64::INFINITY;
        let mut inside = false;
        for i in 0..self.vertices.len() {
            let (a, b) = self.edge(i);
            let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
            let t = (((x - a[0]) * ex + (y - a[1]) * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0);
            let (dx, dy) = (x - a[0] - t * ex, y - a[1] - t * ey);
            distance2 = distance2.min(dx * dx + dy * dy);
            // Crossing number of a ray to +x.
            if (a[1] > y) != (b[1] > y) && x < a[0] + (y - a[1]) / (b[1] - a[1]) * ex {
                inside = !inside;
            }
        }
        let distance = distance2.sqrt();
        if inside { -distance } else { distance }
    }

    fn boundary_measure(&self) -> f64 {
        self.perimeter
    }

    fn boundary_point(&self, rng: &mut SeededRng, point: &mut [f64], normal: &mut [f64]) {
        let mut along = rng.random::<f64>() * self.perimeter;
        let mut edge = self.vertices.len() - 1;
        for (i, &l) in self.lengths.iter().enumerate() {
            if along < l {
                edge = i;
                break;
            }
            along -= l;
        }
        let (a, b) = self.edge(edge);
        let l = self.lengths[edge];
        let t = (along / l).clamp(0.0, 1.0);
        point[0] = a[0] + t * (b[0] - a[0]);
        point[1] = a[1] + t * (b[1] - a[1]);
        // Counter-clockwise vertices: the outward normal is the edge turned clockwise.
        normal[0] = (b[1] - a[1]) / l;
        normal[1] = -(b[0] - a[0]) / l;
    }
}
