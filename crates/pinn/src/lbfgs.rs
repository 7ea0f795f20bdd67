//! Full-batch L-BFGS with a strong-Wolfe line search, on flat `f64` parameter vectors.
//!
//! Settings and stopping rules follow SciPy's L-BFGS-B as the original PINN code used it
//! (history 50, up to 50 line-search evaluations, `ftol` at machine epsilon, `gtol` 1e-5),
//! and every run says why it stopped.

pub use crate::config::LbfgsConfig;
use serde::Serialize;

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The gradient's largest component fell below `gtol`.
    Gradient,
    /// The relative loss decrease fell below `ftol`.
    LossChange,
    /// No step satisfying the strong Wolfe conditions was found.
    LineSearch,
    /// The iteration limit was reached.
    Iterations,
    /// The loss or gradient became NaN or infinite.
    NonFinite,
}

/// Result of a minimisation.
#[derive(Clone, Debug)]
pub struct LbfgsResult {
    /// Final point.
    pub x: Vec<f64>,
    /// Loss there.
    pub loss: f64,
    /// Iterations done.
    pub iterations: usize,
    /// Loss and gradient evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub reason: StopReason,
}

/// A loss-and-gradient function of a flat parameter vector.
pub type Objective<'a> = dyn FnMut(&[f64]) -> (f64, Vec<f64>) + 'a;

/// Where a line search starts: the point, its loss, the direction and the slope along it.
struct Ray<'a> {
    x: &'a [f64],
    loss: f64,
    slope: f64,
    dir: &'a [f64],
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(x: &[f64], alpha: f64, d: &[f64]) -> Vec<f64> {
    x.iter().zip(d).map(|(x, d)| x + alpha * d).collect()
}

/// Minimiser of the cubic through `(a, fa, ga)` and `(b, fb, gb)`, safeguarded into the
/// interval (bisection when the cubic has no usable minimum).
fn cubic_min(a: f64, fa: f64, ga: f64, b: f64, fb: f64, gb: f64) -> f64 {
    let d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - ga * gb;
    let (lo, hi) = (a.min(b), a.max(b));
    if disc >= 0.0 {
        let d2 = disc.sqrt() * (b - a).signum();
        let t = b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2);
        let margin = 0.1 * (hi - lo);
        if t.is_finite() && t > lo + margin && t < hi - margin {
            return t;
        }
    }
    0.5 * (lo + hi)
}

struct Point {
    step: f64,
    loss: f64,
    slope: f64,
    grad: Vec<f64>,
}

/// Strong-Wolfe line search along `dir` (Nocedal & Wright, algorithms 3.5 and 3.6).
fn line_search(
    f: &mut Objective<'_>,
    ray: Ray<'_>,
    initial_step: f64,
    max_evals: usize,
    evaluations: &mut usize,
) -> Option<Point> {
    let Ray {
        x,
        loss: loss0,
        slope: slope0,
        dir,
    } = ray;
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let mut eval = |step: f64, evaluations: &mut usize| -> Point {
        *evaluations += 1;
        let (loss, grad) = f(&axpy(x, step, dir));
        let slope = dot(&grad, dir);
        Point {
            step,
            loss,
            slope,
            grad,
        }
    };
    let mut prev = Point {
        step: 0.0,
        loss: loss0,
        slope: slope0,
        grad: Vec::new(),
    };
    let mut step = initial_step;
    let mut used = 0;
    let (mut lo, mut hi) = loop {
        if used >= max_evals {
            return None;
        }
        let cur = eval(step, evaluations);
        used += 1;
        if !cur.loss.is_finite() {
            // Too long a step into a region where the loss blows up: shorten.
            step = 0.5 * (prev.step + step);
            continue;
        }
        if cur.loss > loss0 + C1 * step * slope0 || (used > 1 && cur.loss >= prev.loss) {
            break (prev, cur);
        }
        if cur.slope.abs() <= -C2 * slope0 {
            return Some(cur);
        }
        if cur.slope >= 0.0 {
            break (cur, prev);
        }
        let next = (2.0 * step).min(step + 10.0 * (step - prev.step));
        prev = cur;
        step = next;
    };
    // Zoom: `lo` satisfies sufficient decrease with the lowest loss so far.
    while used < max_evals {
        let t = cubic_min(lo.step, lo.loss, lo.slope, hi.step, hi.loss, hi.slope);
        if (hi.step - lo.step).abs() < 1e-16 * lo.step.abs().max(1.0) {
            break;
        }
        let cur = eval(t, evaluations);
        used += 1;
        if !cur.loss.is_finite() || cur.loss > loss0 + C1 * t * slope0 || cur.loss >= lo.loss {
            hi = cur;
        } else {
            if cur.slope.abs() <= -C2 * slope0 {
                return Some(cur);
            }
            if cur.slope * (hi.step - lo.step) >= 0.0 {
                hi = lo;
            }
            lo = cur;
        }
    }
    // Accept the best point found if it decreased the loss at all.
    (lo.step > 0.0 && lo.loss < loss0 && !lo.grad.is_empty()).then_some(lo)
}

/// Minimises `f` (returning loss and gradient) from `x0`; `on_iteration(k, loss)` is called
/// after every accepted step.
pub fn minimize(
    f: &mut Objective<'_>,
    x0: Vec<f64>,
    config: &LbfgsConfig,
    on_iteration: &mut dyn FnMut(usize, f64),
) -> LbfgsResult {
    let mut x = x0;
    let (mut loss, mut grad) = f(&x);
    let mut evaluations = 1;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let max_abs = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let finish = |x, loss, iterations, evaluations, reason| LbfgsResult {
        x,
        loss,
        iterations,
        evaluations,
        reason,
    };
    if !loss.is_finite() || grad.iter().any(|g| !g.is_finite()) {
        return finish(x, loss, 0, evaluations, StopReason::NonFinite);
    }
    for k in 0..config.iterations {
        if max_abs(&grad) <= config.gtol {
            return finish(x, loss, k, evaluations, StopReason::Gradient);
        }
        // Two-loop recursion: dir = -H g.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(s_hist.len());
        for (s, y) in s_hist.iter().zip(&y_hist).rev() {
            let rho = 1.0 / dot(y, s);
            let a = rho * dot(s, &q);
            q = axpy(&q, -a, y);
            alphas.push((a, rho));
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y), (a, rho)) in s_hist.iter().zip(&y_hist).zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            q = axpy(&q, a - b, s);
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&grad, &dir);
        if slope >= 0.0 {
            // Not a descent direction (bad curvature pairs): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            dir = grad.iter().map(|g| -g).collect();
            slope = dot(&grad, &dir);
        }
        let initial_step = if s_hist.is_empty() {
            (1.0 / max_abs(&grad)).min(1.0)
        } else {
            1.0
        };
        let ray = Ray {
            x: &x,
            loss,
            slope,
            dir: &dir,
        };
        let Some(p) = line_search(
            f,
            ray,
            initial_step,
            config.max_line_search,
            &mut evaluations,
        ) else {
            return finish(x, loss, k, evaluations, StopReason::LineSearch);
        };
        let x_new = axpy(&x, p.step, &dir);
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = p.grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-10 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            s_hist.push(s);
            y_hist.push(y);
            if s_hist.len() > config.history {
                s_hist.remove(0);
                y_hist.remove(0);
            }
        }
        let old = loss;
        x = x_new;
        loss = p.loss;
        grad = p.grad;
        on_iteration(k + 1, loss);
        if !loss.is_finite() {
            return finish(x, loss, k + 1, evaluations, StopReason::NonFinite);
        }
        if (old - loss) / old.abs().max(loss.abs()).max(1.0) <= config.ftol {
            return finish(x, loss, k + 1, evaluations, StopReason::LossChange);
        }
    }
    let iterations = config.iterations;
    finish(x, loss, iterations, evaluations, StopReason::Iterations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
        let mut f = 0.0;
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len() - 1 {
            let (a, b) = (x[i], x[i + 1]);
            f += 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2);
            g[i] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a);
            g[i + 1] += 200.0 * (b - a * a);
        }
        (f, g)
    }

    #[test]
    fn rosenbrock_reaches_its_minimum() {
        for x0 in [vec![-1.2, 1.0], vec![-1.0, 1.5, -0.5, 2.0, 0.3]] {
            let n = x0.len();
            let r = minimize(
                &mut rosenbrock,
                x0,
                &LbfgsConfig {
                    gtol: 1e-9,
                    ..LbfgsConfig::with_iterations(500)
                },
                &mut |_, _| {},
            );
            assert!(
                matches!(r.reason, StopReason::Gradient | StopReason::LossChange),
                "{:?}",
                r.reason
            );
            for v in &r.x {
                assert!(
                    (v - 1.0).abs() < 1e-6,
                    "{:?} after {} iterations",
                    r.x,
                    r.iterations
                );
            }
            assert!(r.loss < 1e-12, "{}", r.loss);
            assert!(r.iterations < 200, "n = {n}: {} iterations", r.iterations);
        }
    }

    #[test]
    fn least_squares_matches_the_normal_equations() {
        // Fit y = 2 - 3 t + 0.5 t^2 (exact data): the minimum is those coefficients.
        let ts: Vec<f64> = (0..20).map(|i| i as f64 / 10.0).collect();
        let ys: Vec<f64> = ts.iter().map(|t| 2.0 - 3.0 * t + 0.5 * t * t).collect();
        let mut f = |c: &[f64]| {
            let mut loss = 0.0;
            let mut g = vec![0.0; 3];
            for (t, y) in ts.iter().zip(&ys) {
                let r = c[0] + c[1] * t + c[2] * t * t - y;
                loss += r * r;
                g[0] += 2.0 * r;
                g[1] += 2.0 * r * t;
                g[2] += 2.0 * r * t * t;
            }
            (loss, g)
        };
        let mut calls = 0;
        let r = minimize(
            &mut f,
            vec![0.0; 3],
            &LbfgsConfig::with_iterations(100),
            &mut |_, _| calls += 1,
        );
        assert_eq!(calls, r.iterations);
        for (c, want) in r.x.iter().zip([2.0, -3.0, 0.5]) {
            assert!((c - want).abs() < 1e-5, "{:?} ({:?})", r.x, r.reason);
        }
    }

    #[test]
    fn reports_iteration_limit() {
        let r = minimize(
            &mut rosenbrock,
            vec![-1.2, 1.0],
            &LbfgsConfig::with_iterations(3),
            &mut |_, _| {},
        );
        assert_eq!(r.reason, StopReason::Iterations);
        assert_eq!(r.iterations, 3);
    }
}
