//! Seeded random draws: Latin hypercube designs, subsets without replacement, and the rows of
//! mini-batches ([`batch_rows`]).

pub mod batch_rows;

pub use batch_rows::{BatchRows, stream_key};

use rand::Rng;
use rand::seq::index::sample;

/// A seeded, portable random generator (ChaCha8): same draws on every platform.
pub type SeededRng = rand_chacha::ChaCha8Rng;

/// Creates the framework's generator from a seed.
pub fn rng_from_seed(seed: u64) -> SeededRng {
    use rand::SeedableRng;
    SeededRng::seed_from_u64(seed)
}

/// `n` points of a Latin hypercube in the box `[lower, upper]` (classic LHS: one point per
/// stratum on every axis, strata permuted independently, uniform within a stratum).
pub fn latin_hypercube(
    rng: &mut impl Rng,
    n: usize,
    lower: &[f64],
    upper: &[f64],
) -> Vec<Vec<f64>> {
    let dims = lower.len();
    let mut points = vec![vec![0.0; dims]; n];
    for d in 0..dims {
        let perm = sample(rng, n, n).into_vec();
        for (i, p) in points.iter_mut().enumerate() {
            let u: f64 = rng.random();
            let unit = (perm[i] as f64 + u) / n as f64;
            p[d] = lower[d] + (upper[d] - lower[d]) * unit;
        }
    }
    points
}

/// `n` independent uniform points in the box `[lower, upper]`.
pub fn uniform_box(rng: &mut impl Rng, n: usize, lower: &[f64], upper: &[f64]) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| {
            lower
                .iter()
                .zip(upper)
                .map(|(lo, hi)| lo + (hi - lo) * rng.random::<f64>())
                .collect()
        })
        .collect()
}

/// The even grid of the box with `counts[d]` points along input `d` (both ends included; a
/// count of 1 is the lower end), in C order (the last input varies fastest).
pub fn even_grid(counts: &[usize], lower: &[f64], upper: &[f64]) -> Vec<Vec<f64>> {
    let axes: Vec<Vec<f64>> = counts
        .iter()
        .zip(lower.iter().zip(upper))
        .map(|(&n, (&lo, &hi))| linspace(lo, hi, n))
        .collect();
    let total: usize = axes.iter().map(Vec::len).product();
    (0..total)
        .map(|mut flat| {
            let mut point = vec![0.0; axes.len()];
            for (d, axis) in axes.iter().enumerate().rev() {
                point[d] = axis[flat % axis.len()];
                flat /= axis.len();
            }
            point
        })
        .collect()
}

/// `n` evenly spaced values from `lo` to `hi` (both included; `[lo]` for `n = 1`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| {
                // The last value is `hi` exactly, so that grid ends lie on the domain's faces.
                if i == n - 1 {
                    hi
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                }
            })
            .collect(),
    }
}

/// A face of a box: input `axis` held at `value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// The fixed input.
    pub axis: usize,
    /// Its value.
    pub value: f64,
}

/// How the points of a set are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// A Latin hypercube of this many points.
    Lhs(usize),
    /// This many independent uniform points.
    Uniform(usize),
    /// An even grid with this many points per input.
    Grid(Vec<usize>),
}

/// Points laid out by `layout` in the box `[lower, upper]`, or, when `faces` is not empty, on
/// the union of those faces. Random layouts share their count among the faces in proportion to
/// the faces' areas (the widths of their free inputs); a grid is laid on every face with the
/// counts of its free inputs, and a point on several faces (an edge or corner) is kept once,
/// on the first.
pub fn lay_out(
    rng: &mut impl Rng,
    layout: &Layout,
    faces: &[Face],
    lower: &[f64],
    upper: &[f64],
) -> Vec<Vec<f64>> {
    let in_box = |rng: &mut _, n: usize, lower: &[f64], upper: &[f64]| match layout {
        Layout::Lhs(_) => latin_hypercube(rng, n, lower, upper),
        Layout::Uniform(_) => uniform_box(rng, n, lower, upper),
        Layout::Grid(counts) => even_grid(counts, lower, upper),
    };
    if faces.is_empty() {
        let n = match layout {
            Layout::Lhs(n) | Layout::Uniform(n) => *n,
            Layout::Grid(_) => 0,
        };
        return in_box(rng, n, lower, upper);
    }
    let face_box = |f: &Face| {
        let (mut lo, mut hi) = (lower.to_vec(), upper.to_vec());
        lo[f.axis] = f.value;
        hi[f.axis] = f.value;
        (lo, hi)
    };
    let counts: Vec<usize> = match layout {
        Layout::Lhs(n) | Layout::Uniform(n) => {
            let area = |f: &Face| -> f64 {
                (0..lower.len())
                    .filter(|&d| d != f.axis)
                    .map(|d| upper[d] - lower[d])
                    .product()
            };
            let areas: Vec<f64> = faces.iter().map(area).collect();
            share(*n, &areas)
        }
        Layout::Grid(_) => vec![0; faces.len()],
    };
    let mut points: Vec<Vec<f64>> = Vec::new();
    for (k, face) in faces.iter().enumerate() {
        let (lo, hi) = face_box(face);
        let on_face = match layout {
            Layout::Grid(grid) => {
                let mut counts = grid.clone();
                counts[face.axis] = 1;
                even_grid(&counts, &lo, &hi)
                    .into_iter()
                    .filter(|p| {
                        // Kept on the first face it lies on.
                        !faces[..k].iter().any(|g| {
                            let tol = 1e-12 * (upper[g.axis] - lower[g.axis]).abs().max(1.0);
                            (p[g.axis] - g.value).abs() <= tol
                        })
                    })
                    .collect()
            }
            _ => in_box(rng, counts[k], &lo, &hi),
        };
        points.extend(on_face);
    }
    points
}

/// Exactly `n` points that `accept` keeps, in draw order, from rounds of `draw(count)`: each
/// round draws, at the rate kept so far (`first_rate` before any), enough for what is
/// missing. `None` when the first `give_up` points drawn are all refused (an empty region).
pub fn draw_accepted(
    n: usize,
    first_rate: f64,
    give_up: usize,
    mut draw: impl FnMut(usize) -> Vec<Vec<f64>>,
    accept: impl Fn(&[f64]) -> bool,
) -> Option<Vec<Vec<f64>>> {
    let (mut kept, mut drawn, mut accepted) = (Vec::with_capacity(n), 0usize, 0usize);
    while kept.len() < n {
        let missing = n - kept.len();
        let rate = if drawn == 0 {
            first_rate
        } else {
            (accepted as f64 / drawn as f64).max(1e-3)
        };
        let points = draw(((missing as f64 / rate) * 1.1).ceil() as usize + 16);
        drawn += points.len();
        for p in points.into_iter().filter(|p| accept(p)) {
            accepted += 1;
            if kept.len() < n {
                kept.push(p);
            }
        }
        if accepted == 0 && drawn >= give_up {
            return None;
        }
    }
    Some(kept)
}

/// `n` split into parts proportional to `weights` (largest remainders; ties to the first).
fn share(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights
        .iter()
        .map(|w| {
            if total > 0.0 {
                n as f64 * w / total
            } else {
                n as f64 / weights.len() as f64
            }
        })
        .collect();
    let mut parts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - parts[a] as f64, exact[b] - parts[b] as f64);
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let missing = n - parts.iter().sum::<usize>();
    for &i in order.iter().take(missing) {
        parts[i] += 1;
    }
    parts
}

/// `k` distinct indices out of `0..n`, in random order.
pub fn choose(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    sample(rng, n, k.min(n)).into_vec()
}

/// A standard normal draw (Box-Muller; portable across versions of `rand_distr`).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    loop {
        let u1: f64 = rng.random();
        let u2: f64 = rng.random();
        if u1 > f64::MIN_POSITIVE {
            return (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lhs_puts_one_point_in_every_stratum() {
        let mut rng = rng_from_seed(7);
        let pts = latin_hypercube(&mut rng, 50, &[-1.0, 0.0], &[1.0, 2.0]);
        for d in 0..2 {
            let (lo, hi) = ([-1.0, 0.0][d], [1.0, 2.0][d]);
            let mut strata: Vec<usize> = pts
                .iter()
                .map(|p| (((p[d] - lo) / (hi - lo)) * 50.0).floor() as usize)
                .collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..50).collect::<Vec<_>>());
        }
    }

    #[test]
    fn faces_hold_their_points_and_corners_come_once() {
        let (lower, upper) = ([0.0, -1.0], [2.0, 1.0]);
        let square = [
            Face {
                axis: 0,
                value: 0.0,
            },
            Face {
                axis: 0,
                value: 2.0,
            },
            Face {
                axis: 1,
                value: -1.0,
            },
            Face {
                axis: 1,
                value: 1.0,
            },
        ];
        let mut rng = rng_from_seed(3);
        // A 5 × 3 grid's boundary: 2·3 points on the x faces, 2·(5 − 2) more on the y faces.
        let grid = lay_out(&mut rng, &Layout::Grid(vec![5, 3]), &square, &lower, &upper);
        assert_eq!(grid.len(), 6 + 6);
        let mut keys: Vec<(i64, i64)> = grid
            .iter()
            .map(|p| ((p[0] * 1e6) as i64, (p[1] * 1e6) as i64))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 12, "a corner appears twice: {grid:?}");
        let on_boundary = |p: &Vec<f64>| p[0] == 0.0 || p[0] == 2.0 || p[1] == -1.0 || p[1] == 1.0;
        assert!(grid.iter().all(on_boundary));
        // Random points: shared by area (the x faces are 2 wide in y, the y faces 2 in x).
        for layout in [Layout::Lhs(101), Layout::Uniform(101)] {
            let pts = lay_out(&mut rng, &layout, &square, &lower, &upper);
            assert_eq!(pts.len(), 101);
            assert!(pts.iter().all(on_boundary));
            let on_left = pts.iter().filter(|p| p[0] == 0.0).count();
            assert!((25..=26).contains(&on_left), "{on_left}");
            assert!(
                pts.iter()
                    .all(|p| (0.0..=2.0).contains(&p[0]) && (-1.0..=1.0).contains(&p[1]))
            );
        }
        // A slice inside the box, and the whole box.
        let slice = lay_out(
            &mut rng,
            &Layout::Lhs(40),
            &[Face {
                axis: 1,
                value: 0.25,
            }],
            &lower,
            &upper,
        );
        assert!(slice.len() == 40 && slice.iter().all(|p| p[1] == 0.25));
        let whole = lay_out(&mut rng, &Layout::Grid(vec![3, 2]), &[], &lower, &upper);
        assert_eq!(
            whole,
            vec![
                vec![0.0, -1.0],
                vec![0.0, 1.0],
                vec![1.0, -1.0],
                vec![1.0, 1.0],
                vec![2.0, -1.0],
                vec![2.0, 1.0],
            ]
        );
        assert_eq!(share(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
    }

    #[test]
    fn choose_is_distinct_and_seeded() {
        let a = choose(&mut rng_from_seed(1), 100, 30);
        let b = choose(&mut rng_from_seed(1), 100, 30);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|&i| i < 100));
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = rng_from_seed(3);
        let v: Vec<f64> = (0..20000).map(|_| standard_normal(&mut rng)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
