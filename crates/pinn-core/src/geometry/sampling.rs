//! Seeded points inside a region and on its boundary (with outward normals), in exactly the
//! number asked.

use rand::Rng;

use super::csg::Class;
use super::{GeometryError, Region};
use crate::sampling::{SeededRng, draw_accepted, even_grid, latin_hypercube, uniform_box};

/// How interior points are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum InteriorLayout {
    /// `n` points: Latin hypercubes of the bounding box, their points inside the region kept,
    /// drawn until there are `n` (the first `n` in draw order).
    Lhs(usize),
    /// `n` independent uniform points of the region (the box's, kept when inside).
    Uniform(usize),
    /// The even grid of the bounding box with these counts per axis, its points inside the
    /// region (as many as fall inside).
    Grid(Vec<usize>),
}

/// Points on a region's boundary: rows of coordinates, the outward unit normal of each, and
/// the shape each lies on (an index into [`Region::names`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundaryPoints {
    /// `rows × dim` coordinates, row-major.
    pub points: Vec<f64>,
    /// `rows × dim` outward unit normals, row-major.
    pub normals: Vec<f64>,
    /// The shape of each row.
    pub parts: Vec<usize>,
}

/// Draws before an empty region (or a part that bounds nothing) is declared.
const PROBE: usize = 100_000;

impl Region {
    /// Fraction of the bounding box inside the region, estimated from `PROBE` uniform draws of
    /// a generator of its own (so that it does not move the caller's draws).
    fn fill_fraction(&self) -> Result<f64, GeometryError> {
        let (lower, upper) = self.bounds();
        if lower.iter().zip(upper).any(|(l, u)| l >= u) {
            return Err(GeometryError::Empty(self.text().into()));
        }
        let mut rng = crate::sampling::rng_from_seed(0x6765_6f6d);
        let inside = uniform_box(&mut rng, PROBE, lower, upper)
            .iter()
            .filter(|p| self.contains(p))
            .count();
        if inside == 0 {
            return Err(GeometryError::Empty(self.text().into()));
        }
        Ok(inside as f64 / PROBE as f64)
    }

    /// `Err` when no point of the region's bounding box lies inside it (operations that
    /// leave nothing, as `inner - outer` of two nested disks).
    pub fn check_not_empty(&self) -> Result<(), GeometryError> {
        self.fill_fraction().map(|_| ())
    }

    /// Points inside the region, `rows × dim` row-major.
    pub fn interior_points(
        &self,
        layout: &InteriorLayout,
        rng: &mut SeededRng,
    ) -> Result<Vec<f64>, GeometryError> {
        let (lower, upper) = self.bounds();
        let points = match layout {
            InteriorLayout::Grid(counts) => even_grid(counts, lower, upper)
                .into_iter()
                .filter(|p| self.contains(p))
                .collect(),
            InteriorLayout::Lhs(n) | InteriorLayout::Uniform(n) => {
                let draw = |count| match layout {
                    InteriorLayout::Lhs(_) => latin_hypercube(rng, count, lower, upper),
                    _ => uniform_box(rng, count, lower, upper),
                };
                // The region's share of its box, measured once, sizes the first round.
                let fraction = self.fill_fraction()?;
                draw_accepted(*n, fraction, PROBE, draw, |p| self.contains(p))
                    .ok_or_else(|| GeometryError::Empty(self.text().into()))?
            }
        };
        Ok(points.into_iter().flatten().collect())
    }

    /// `n` points drawn uniformly (by length or area) on the region's boundary, or on the part
    /// of it that the shapes `parts` form (all shapes of the expression when `None`): a
    /// shape's boundary counts where it bounds the region (a hole's circle does, an arc of a
    /// shape outside the region does not).
    pub fn boundary_points(
        &self,
        parts: Option<&[String]>,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<BoundaryPoints, GeometryError> {
        let used = self.used();
        let sources: Vec<usize> = match parts {
            None => used,
            Some(names) => names
                .iter()
                .map(|name| {
                    self.names()
                        .iter()
                        .position(|m| m == name)
                        .filter(|i| used.contains(i))
                        .ok_or_else(|| GeometryError::NotABoundary {
                            part: name.clone(),
                            region: self.text().into(),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let measures: Vec<f64> = sources
            .iter()
            .map(|&i| self.shapes[i].boundary_measure())
            .collect();
        let total: f64 = measures.iter().sum();
        let dim = self.dim();
        let mut out = BoundaryPoints {
            points: Vec::with_capacity(n * dim),
            normals: Vec::with_capacity(n * dim),
            parts: Vec::with_capacity(n),
        };
        let (mut point, mut normal) = (vec![0.0; dim], vec![0.0; dim]);
        let mut hits = vec![0usize; sources.len()];
        let mut draws = 0usize;
        while out.parts.len() < n {
            let mut pick = rng.random::<f64>() * total;
            let mut k = sources.len() - 1;
            for (j, m) in measures.iter().enumerate() {
                if pick < *m {
                    k = j;
                    break;
                }
                pick -= m;
            }
            let source = sources[k];
            self.shapes[source].boundary_point(rng, &mut point, &mut normal);
            draws += 1;
            if let Class::On(sign) = self.classify(&point, Some(source)) {
                hits[k] += 1;
                out.points.extend_from_slice(&point);
                out.normals.extend(normal.iter().map(|v| sign * v));
                out.parts.push(source);
            }
            // A part named that never lies on the boundary, or a region without one.
            if draws == PROBE * sources.len() {
                let silent = match parts {
                    Some(_) => hits.iter().position(|&h| h == 0),
                    None => hits.iter().all(|&h| h == 0).then_some(0),
                };
                if let Some(k) = silent {
                    return Err(match parts {
                        Some(_) => GeometryError::NotABoundary {
                            part: self.names()[sources[k]].clone(),
                            region: self.text().into(),
                        },
                        None => GeometryError::Empty(self.text().into()),
                    });
                }
            }
        }
        Ok(out)
    }
}
