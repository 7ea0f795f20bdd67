//! Fourier pseudo-spectral solvers for the periodic 1-D benchmark equations, stepped by
//! ETDRK4 (Cox & Matthews; Kassam & Trefethen's contour-integral evaluation of the φ-functions).
//!
//! Each equation is written `v̂_t = L(k) v̂ + N̂(v̂)` in Fourier space with a diagonal linear
//! symbol `L` (treated exactly) and a nonlinear part evaluated in physical space. The field is
//! complex, so the nonlinear Schrödinger equation needs no special case; real equations keep a
//! real field to rounding.

use rustfft::num_complex::Complex64 as C;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// The periodic PDEs the framework can solve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PeriodicPde {
    /// `u_t + u u_x + δ u_xxx = 0`.
    Kdv {
        /// Dispersion coefficient δ (0.0025 in the benchmark).
        dispersion: f64,
    },
    /// `u_t − ε u_xx + 5u³ − 5u = 0`.
    AllenCahn {
        /// Diffusion coefficient ε (0.0001 in the benchmark).
        diffusion: f64,
    },
    /// `i h_t + ½ h_xx + |h|² h = 0`.
    Schrodinger,
}

/// Grid, time span and resolution of a run.
#[derive(Clone, Debug)]
pub struct SpectralSpec {
    /// The equation.
    pub pde: PeriodicPde,
    /// Left end of the periodic interval `[x0, x0 + length)`.
    pub x0: f64,
    /// Period.
    pub length: f64,
    /// Points of the output grid.
    pub points: usize,
    /// Refinement of the computational grid (a power of two; output = every `refine`-th point).
    pub refine: usize,
    /// Final time.
    pub t_end: f64,
    /// Number of snapshots, equally spaced on `[0, t_end]` (both ends included).
    pub snapshots: usize,
    /// ETDRK4 steps between two snapshots.
    pub substeps: usize,
}

/// A solution on the output grid: `re[i * snapshots + k] = Re u(x_i, t_k)`.
#[derive(Clone, Debug)]
pub struct SpectralSolution {
    /// Output grid.
    pub x: Vec<f64>,
    /// Snapshot times.
    pub t: Vec<f64>,
    /// Real part, `points × snapshots`, C order.
    pub re: Vec<f64>,
    /// Imaginary part (zero for real equations).
    pub im: Vec<f64>,
}

struct Transforms {
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
    n: usize,
}

impl Transforms {
    fn to_physical(&self, spectral: &[C]) -> Vec<C> {
        let mut buf = spectral.to_vec();
        self.inverse.process(&mut buf);
        let s = 1.0 / self.n as f64;
        buf.iter_mut().for_each(|v| *v *= s);
        buf
    }

    fn to_spectral(&self, physical: &[C]) -> Vec<C> {
        let mut buf = physical.to_vec();
        self.forward.process(&mut buf);
        buf
    }
}

/// `(1/M) Σ_j f(z + r_j)` over `M` points of the unit circle around each `z`: the stable
/// evaluation of the φ-functions near their removable singularity at 0.
fn contour_mean(z: C, f: impl Fn(C) -> C) -> C {
    const M: usize = 64;
    let mut acc = C::new(0.0, 0.0);
    for j in 0..M {
        let theta = std::f64::consts::TAU * (j as f64 + 0.5) / M as f64;
        acc += f(z + C::from_polar(1.0, theta));
    }
    acc / M as f64
}

/// Solves the equation from `initial` (a function of x) and samples the output grid.
pub fn solve(spec: &SpectralSpec, initial: impl Fn(f64) -> C) -> SpectralSolution {
    let n = spec.points * spec.refine;
    let dx = spec.length / n as f64;
    let grid: Vec<f64> = (0..n).map(|i| spec.x0 + dx * i as f64).collect();
    let mut planner = FftPlanner::new();
    let tf = Transforms {
        forward: planner.plan_fft_forward(n),
        inverse: planner.plan_fft_inverse(n),
        n,
    };
    let k: Vec<f64> = (0..n)
        .map(|m| {
            let m = if m < n / 2 {
                m as f64
            } else {
                m as f64 - n as f64
            };
            std::f64::consts::TAU * m / spec.length
        })
        .collect();
    // The Nyquist mode of odd derivatives is set to zero.
    let ik: Vec<C> = k
        .iter()
        .enumerate()
        .map(|(m, &k)| {
            if m == n / 2 {
                C::new(0.0, 0.0)
            } else {
                C::new(0.0, k)
            }
        })
        .collect();
    let linear: Vec<C> = k
        .iter()
        .zip(&ik)
        .map(|(&k, &ik)| match spec.pde {
            PeriodicPde::Kdv { dispersion } => -dispersion * ik * ik * ik,
            PeriodicPde::AllenCahn { diffusion } => C::new(-diffusion * k * k + 5.0, 0.0),
            PeriodicPde::Schrodinger => C::new(0.0, -0.5 * k * k),
        })
        .collect();
    let nonlinear = |v: &[C]| -> Vec<C> {
        let u = tf.to_physical(v);
        match spec.pde {
            PeriodicPde::Kdv { .. } => {
                let sq: Vec<C> = u.iter().map(|u| 0.5 * u * u).collect();
                tf.to_spectral(&sq)
                    .iter()
                    .zip(&ik)
                    .map(|(s, ik)| -ik * s)
                    .collect()
            }
            PeriodicPde::AllenCahn { .. } => {
                let cube: Vec<C> = u.iter().map(|u| -5.0 * u * u * u).collect();
                tf.to_spectral(&cube)
            }
            PeriodicPde::Schrodinger => {
                let nl: Vec<C> = u.iter().map(|h| C::new(0.0, h.norm_sqr()) * h).collect();
                tf.to_spectral(&nl)
            }
        }
    };
    let h = spec.t_end / ((spec.snapshots - 1) * spec.substeps) as f64;
    let one = C::new(1.0, 0.0);
    let (mut e, mut e2, mut q, mut f1, mut f2, mut f3) = (
        vec![one; n],
        vec![one; n],
        vec![one; n],
        vec![one; n],
        vec![one; n],
        vec![one; n],
    );
    for m in 0..n {
        let z = linear[m] * h;
        e[m] = z.exp();
        e2[m] = (z / 2.0).exp();
        q[m] = h * contour_mean(z, |lr| ((lr / 2.0).exp() - 1.0) / lr);
        f1[m] = h * contour_mean(z, |lr| {
            (-4.0 - lr + lr.exp() * (4.0 - 3.0 * lr + lr * lr)) / (lr * lr * lr)
        });
        f2[m] = h * contour_mean(z, |lr| (2.0 + lr + lr.exp() * (-2.0 + lr)) / (lr * lr * lr));
        f3[m] = h * contour_mean(z, |lr| {
            (-4.0 - 3.0 * lr - lr * lr + lr.exp() * (4.0 - lr)) / (lr * lr * lr)
        });
    }
    let u0: Vec<C> = grid.iter().map(|&x| initial(x)).collect();
    let mut v = tf.to_spectral(&u0);
    let out_x: Vec<f64> = (0..spec.points).map(|i| grid[i * spec.refine]).collect();
    let times: Vec<f64> = (0..spec.snapshots)
        .map(|s| spec.t_end * s as f64 / (spec.snapshots - 1) as f64)
        .collect();
    let mut re = vec![0.0; spec.points * spec.snapshots];
    let mut im = vec![0.0; spec.points * spec.snapshots];
    let mut record = |v: &[C], snap: usize| {
        let u = tf.to_physical(v);
        for i in 0..spec.points {
            let val = u[i * spec.refine];
            re[i * spec.snapshots + snap] = val.re;
            im[i * spec.snapshots + snap] = val.im;
        }
    };
    record(&v, 0);
    for snap in 1..spec.snapshots {
        for _ in 0..spec.substeps {
            let nv = nonlinear(&v);
            let a: Vec<C> = (0..n).map(|m| e2[m] * v[m] + q[m] * nv[m]).collect();
            let na = nonlinear(&a);
            let b: Vec<C> = (0..n).map(|m| e2[m] * v[m] + q[m] * na[m]).collect();
            let nb = nonlinear(&b);
            let c: Vec<C> = (0..n)
                .map(|m| e2[m] * a[m] + q[m] * (2.0 * nb[m] - nv[m]))
                .collect();
            let nc = nonlinear(&c);
            for m in 0..n {
                v[m] = e[m] * v[m] + nv[m] * f1[m] + 2.0 * (na[m] + nb[m]) * f2[m] + nc[m] * f3[m];
            }
        }
        record(&v, snap);
    }
    SpectralSolution {
        x: out_x,
        t: times,
        re,
        im,
    }
}

/// 512 points on `[-1, 1)`, 201 snapshots on `[0, 1]`: the KdV and Allen-Cahn grid.
fn unit_interval_spec(pde: PeriodicPde, substeps: usize) -> SpectralSpec {
    SpectralSpec {
        pde,
        x0: -1.0,
        length: 2.0,
        points: 512,
        refine: 1,
        t_end: 1.0,
        snapshots: 201,
        substeps,
    }
}

/// The benchmark's KdV run: `u0 = cos(πx)`, δ = 0.0025, 512 points on `[-1, 1)`, t ∈ [0, 1].
pub fn kdv_spec() -> SpectralSpec {
    unit_interval_spec(PeriodicPde::Kdv { dispersion: 0.0025 }, 50)
}

/// The benchmark's Allen-Cahn run: `u0 = x² cos(πx)`, ε = 0.0001, 512 points, t ∈ [0, 1].
pub fn allen_cahn_spec() -> SpectralSpec {
    unit_interval_spec(PeriodicPde::AllenCahn { diffusion: 1e-4 }, 20)
}

/// The benchmark's Schrödinger run: `h0 = 2 sech x`, 256 points on `[-5, 5)`, t ∈ [0, π/2].
pub fn schrodinger_spec() -> SpectralSpec {
    SpectralSpec {
        pde: PeriodicPde::Schrodinger,
        x0: -5.0,
        length: 10.0,
        points: 256,
        refine: 1,
        t_end: std::f64::consts::FRAC_PI_2,
        snapshots: 201,
        substeps: 20,
    }
}
