//! Gauss-Legendre collocation tables built stably in `f64` (no Vandermonde solve).

/// The Butcher table of the q-stage Gauss-Legendre method (order 2q, A-stable).
#[derive(Clone, Debug, PartialEq)]
pub struct ButcherTable {
    /// Number of stages.
    pub stages: usize,
    /// Stage matrix, row-major `q × q`: `a[i*q + j] = ∫₀^{c_i} ℓ_j`.
    pub a: Vec<f64>,
    /// Weights `b_j`.
    pub b: Vec<f64>,
    /// Nodes `c_i` in `(0, 1)`, ascending.
    pub c: Vec<f64>,
}

/// Legendre polynomials `P_0..=P_n` at `x` by the three-term recurrence.
fn legendre_all(n: usize, x: f64) -> Vec<f64> {
    let mut p = vec![0.0; n + 1];
    p[0] = 1.0;
    if n >= 1 {
        p[1] = x;
    }
    for k in 1..n {
        p[k + 1] = ((2 * k + 1) as f64 * x * p[k] - k as f64 * p[k - 1]) / (k + 1) as f64;
    }
    p
}

/// `(P_q(x), P_{q-1}(x))`.
fn legendre_pair(q: usize, x: f64) -> (f64, f64) {
    let (mut prev, mut cur) = (1.0, x);
    for k in 1..q {
        let next = ((2 * k + 1) as f64 * x * cur - k as f64 * prev) / (k + 1) as f64;
        prev = cur;
        cur = next;
    }
    (cur, prev)
}

impl ButcherTable {
    /// The q-stage Gauss-Legendre table.
    ///
    /// # Panics
    /// If `q` is zero.
    pub fn gauss_legendre(q: usize) -> Self {
        assert!(q >= 1, "a Runge-Kutta method needs at least one stage");
        // Nodes on [-1, 1]: Newton on P_q from the asymptotic guesses, descending order.
        let mut xi = vec![0.0; q];
        let mut w = vec![0.0; q];
        for i in 0..q {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (q as f64 + 0.5)).cos();
            for iter in 0..100 {
                let (p, pm1) = legendre_pair(q, x);
                let dp = q as f64 * (x * p - pm1) / (x * x - 1.0);
                let dx = p / dp;
                x -= dx;
                if dx.abs() < 1e-16 * x.abs().max(1.0) && iter > 1 {
                    break;
                }
            }
            let (p, pm1) = legendre_pair(q, x);
            let dp = q as f64 * (x * p - pm1) / (x * x - 1.0);
            xi[i] = x;
            w[i] = 2.0 / ((1.0 - x * x) * dp * dp);
        }
        // Ascending nodes.
        xi.reverse();
        w.reverse();
        let c: Vec<f64> = xi.iter().map(|x| 0.5 * (1.0 + x)).collect();
        let b: Vec<f64> = w.iter().map(|w| 0.5 * w).collect();
        // A = I Φᵀ diag(b) with Φ_ik = φ_k(c_i) (orthonormal shifted Legendre) and
        // I_ik = ∫₀^{c_i} φ_k.
        let mut phi = vec![0.0; q * q];
        let mut integral = vec![0.0; q * q];
        for i in 0..q {
            let p = legendre_all(q, xi[i]);
            for k in 0..q {
                let norm = ((2 * k + 1) as f64).sqrt();
                phi[i * q + k] = norm * p[k];
                integral[i * q + k] = if k == 0 {
                    c[i]
                } else {
                    (p[k + 1] - p[k - 1]) / (2.0 * norm)
                };
            }
        }
        let mut a = vec![0.0; q * q];
        for i in 0..q {
            for j in 0..q {
                let s: f64 = (0..q).map(|k| integral[i * q + k] * phi[j * q + k]).sum();
                a[i * q + j] = s * b[j];
            }
        }
        Self { stages: q, a, b, c }
    }

    /// Entry `a_ij`.
    pub fn a(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.stages + j]
    }
}

/// Stage count for a step `dt` so that the method's error `dt^(2q)` reaches machine precision:
/// `q = ceil(0.5 · ln ε / ln dt)` (81 for `dt = 0.8`), at least 1.
pub fn stages_for_step(dt: f64) -> usize {
    if !(dt > 0.0 && dt < 1.0) {
        return 1;
    }
    (0.5 * f64::EPSILON.ln() / dt.ln()).ceil().max(1.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn reference_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/irk_weights")
    }

    #[test]
    fn matches_the_original_tables() {
        let dir = reference_dir();
        if !dir.exists() {
            eprintln!("skipped: reference tables not found at {}", dir.display());
            return;
        }
        for q in [50usize, 81, 100] {
            let text = std::fs::read_to_string(dir.join(format!("Butcher_IRK{q}.txt")))
                .expect("reference table readable");
            let nums: Vec<f64> = text
                .split_whitespace()
                .map(|s| s.parse().expect("number"))
                .collect();
            assert_eq!(nums.len(), q * q + 2 * q);
            let t = ButcherTable::gauss_legendre(q);
            let ours: Vec<f64> = t.a.iter().chain(&t.b).chain(&t.c).copied().collect();
            let max = ours
                .iter()
                .zip(&nums)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            eprintln!("q = {q}: max abs difference {max:e}");
            assert!(max < 1e-14, "q = {q}: {max:e}");
        }
    }

    #[test]
    fn order_conditions_hold() {
        for q in [1usize, 2, 5, 32, 81, 200, 500] {
            let t = ButcherTable::gauss_legendre(q);
            for i in 0..q {
                let row: f64 = (0..q).map(|j| t.a(i, j)).sum();
                assert!((row - t.c[i]).abs() < 1e-13, "row sum q={q}");
            }
            // b moments up to 2q - 1 (checked to k ≤ min(2q, 60) to stay well conditioned).
            for k in 1..=(2 * q).min(60) {
                let m: f64 = (0..q).map(|j| t.b[j] * t.c[j].powi(k as i32 - 1)).sum();
                assert!((m - 1.0 / k as f64).abs() < 1e-13, "b moment {k}, q={q}");
            }
            for k in 1..=q.min(30) {
                for i in 0..q {
                    let m: f64 = (0..q).map(|j| t.a(i, j) * t.c[j].powi(k as i32 - 1)).sum();
                    let want = t.c[i].powi(k as i32) / k as f64;
                    assert!((m - want).abs() < 1e-13, "A moment {k}, q={q}");
                }
            }
            assert!(t.c.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(stages_for_step(0.8), 81);
    }
}
