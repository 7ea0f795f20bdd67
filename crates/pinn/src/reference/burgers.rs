//! Viscous Burgers `u_t + u u_x = ν u_xx` on `[-1, 1]` with `u(0, x) = -sin(πx)` and
//! `u(t, ±1) = 0`, solved exactly by the Cole-Hopf transformation.
//!
//! With `φ = exp(-∫u/(2ν))` the equation becomes the heat equation, whose solution is a
//! Gaussian convolution; substituting `η = √(4νt) z` gives
//! `u(x,t) = -∫ sin(π(x-η)) f(x-η) e^{-z²} dz / ∫ f(x-η) e^{-z²} dz`,
//! `f(y) = exp(-cos(πy) / (2πν))`, evaluated by Gauss-Hermite quadrature with the
//! exponents combined in log space (they span hundreds of orders of magnitude).

use super::gauss_hermite;

/// Settings of the Burgers reference solution.
#[derive(Clone, Debug)]
pub struct BurgersSpec {
    /// Viscosity ν (the benchmark uses 0.01/π).
    pub viscosity: f64,
    /// Spatial points (`linspace(-1, 1, nx)`).
    pub nx: usize,
    /// Times `dt · k` for `k = 0..nt`.
    pub nt: usize,
    /// Time step between snapshots.
    pub dt: f64,
    /// Gauss-Hermite nodes.
    pub quadrature_nodes: usize,
}

impl Default for BurgersSpec {
    fn default() -> Self {
        Self {
            viscosity: 0.01 / std::f64::consts::PI,
            nx: 256,
            nt: 100,
            dt: 0.01,
            quadrature_nodes: 250,
        }
    }
}

/// Grid and solution `u[i * nt + k] = u(x_i, t_k)`.
#[derive(Clone, Debug)]
pub struct BurgersSolution {
    /// Spatial grid.
    pub x: Vec<f64>,
    /// Times.
    pub t: Vec<f64>,
    /// Solution, `nx × nt`, C order.
    pub u: Vec<f64>,
}

/// Solves Burgers' equation on the grid of `spec`.
pub fn solve(spec: &BurgersSpec) -> BurgersSolution {
    let pi = std::f64::consts::PI;
    let x: Vec<f64> = (0..spec.nx)
        .map(|i| -1.0 + 2.0 * i as f64 / (spec.nx - 1) as f64)
        .collect();
    let t: Vec<f64> = (0..spec.nt).map(|k| spec.dt * k as f64).collect();
    let (nodes, weights) = gauss_hermite(spec.quadrature_nodes);
    let log_w: Vec<f64> = weights.iter().map(|w| w.ln()).collect();
    let inv = 1.0 / (2.0 * pi * spec.viscosity);
    let mut u = vec![0.0; spec.nx * spec.nt];
    let mut expo = vec![0.0; nodes.len()];
    for (i, &xi) in x.iter().enumerate() {
        for (k, &tk) in t.iter().enumerate() {
            let value = if tk == 0.0 {
                -(pi * xi).sin()
            } else {
                let s = (4.0 * spec.viscosity * tk).sqrt();
                let mut max = f64::NEG_INFINITY;
                for (j, z) in nodes.iter().enumerate() {
                    expo[j] = log_w[j] - (pi * (xi - s * z)).cos() * inv;
                    max = max.max(expo[j]);
                }
                let (mut num, mut den) = (0.0, 0.0);
                for (j, z) in nodes.iter().enumerate() {
                    let e = (expo[j] - max).exp();
                    num += (pi * (xi - s * z)).sin() * e;
                    den += e;
                }
                -num / den
            };
            u[i * spec.nt + k] = value;
        }
    }
    BurgersSolution { x, t, u }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converged_in_the_number_of_nodes_and_odd_in_x() {
        let coarse = solve(&BurgersSpec {
            nx: 33,
            nt: 100,
            quadrature_nodes: 200,
            ..Default::default()
        });
        let fine = solve(&BurgersSpec {
            nx: 33,
            nt: 100,
            quadrature_nodes: 300,
            ..Default::default()
        });
        let diff = coarse
            .u
            .iter()
            .zip(&fine.u)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-10, "quadrature not converged: {diff:e}");
        // u(-x, t) = -u(x, t)
        let nt = 100;
        for i in 0..33 {
            for k in 0..nt {
                let (a, b) = (fine.u[i * nt + k], fine.u[(32 - i) * nt + k]);
                assert!((a + b).abs() < 1e-12);
            }
        }
    }
}
