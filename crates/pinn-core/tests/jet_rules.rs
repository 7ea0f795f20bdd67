//! Every propagation rule of the jet engine, at every order, against central finite
//! differences in f64.

use std::collections::BTreeMap;
use std::sync::Arc;

use pinn_core::backend::to_vec;
use pinn_core::{DerivativeSet, Jet, MAX_ORDER, Partial, Precision, Tensor, TensorContext};

const N: usize = 7;

fn ctx() -> TensorContext {
    TensorContext::cpu(Precision::F64)
}

/// Sample points in `[0.2, 0.9]²` (keeps ln, sqrt and division well defined).
fn points() -> Vec<[f64; 2]> {
    (0..N)
        .map(|i| {
            let a = 0.2 + 0.1 * i as f64;
            [a, 0.9 - 0.07 * i as f64]
        })
        .collect()
}

/// The coordinate jets `x` and `y` at the points, carrying `set`.
fn coordinates(pts: &[[f64; 2]], set: &Arc<DerivativeSet>) -> (Jet, Jet) {
    let c = ctx();
    let make = |k: usize| {
        let v: Vec<f64> = pts.iter().map(|p| p[k]).collect();
        let value = c.matrix(&v, pts.len(), 1);
        let mut streams = BTreeMap::new();
        let d = Partial::first(k);
        if set.contains(&d) {
            streams.insert(d, value.ones_like());
        }
        Jet::from_parts(value, streams, set.clone())
    };
    (make(0), make(1))
}

fn values(pts: &[[f64; 2]], f: &dyn Fn(&Jet, &Jet) -> Jet) -> Vec<f64> {
    let set = Arc::new(DerivativeSet::values_only());
    let (x, y) = coordinates(pts, &set);
    to_vec(f(&x, &y).value())
}

/// Central finite difference of `partial` (nested, one coordinate at a time).
fn finite_difference(
    pts: &[[f64; 2]],
    partial: &[u8],
    h: f64,
    f: &dyn Fn(&Jet, &Jet) -> Jet,
) -> Vec<f64> {
    match partial.split_first() {
        None => values(pts, f),
        Some((&c, rest)) => {
            let shift = |s: f64| -> Vec<[f64; 2]> {
                pts.iter()
                    .map(|p| {
                        let mut q = *p;
                        q[c as usize] += s;
                        q
                    })
                    .collect()
            };
            let plus = finite_difference(&shift(h), rest, h, f);
            let minus = finite_difference(&shift(-h), rest, h, f);
            plus.iter()
                .zip(&minus)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect()
        }
    }
}

fn all_partials(max_order: usize) -> Vec<Partial> {
    let mut out = Vec::new();
    for order in 1..=max_order {
        // Multisets of {0, 1} of size `order`: k copies of coordinate 1.
        for k in 0..=order {
            let mut coords = vec![0usize; order - k];
            coords.extend(std::iter::repeat_n(1, k));
            out.push(Partial::from_coords(&coords).expect("within MAX_ORDER"));
        }
    }
    out
}

fn check(name: &str, f: &dyn Fn(&Jet, &Jet) -> Jet) {
    let pts = points();
    let partials = all_partials(MAX_ORDER);
    let set = Arc::new(DerivativeSet::closure_of(partials.iter().copied()));
    let (x, y) = coordinates(&pts, &set);
    let jet = f(&x, &y);
    for p in &partials {
        let got = to_vec(&jet.derivative(p));
        // Richardson-extrapolated central differences: O(h^4) truncation error.
        let (h, tol) = match p.order() {
            1 | 2 => (1e-2, 1e-5),
            3 => (2e-2, 3e-5),
            _ => (4e-2, 1e-3),
        };
        let coarse = finite_difference(&pts, p.coords(), h, f);
        let fine = finite_difference(&pts, p.coords(), h / 2.0, f);
        let want: Vec<f64> = coarse
            .iter()
            .zip(&fine)
            .map(|(c, f)| (4.0 * f - c) / 3.0)
            .collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let err = (g - w).abs() / w.abs().max(1.0);
            assert!(
                err < tol,
                "{name}: partial {p:?} at point {i}: jet {g}, finite difference {w} (rel err {err:e})"
            );
        }
    }
}

#[test]
fn sum_difference_and_scalars() {
    check("add", &|x, y| {
        x.mul(y)
            .add(&x.mul(x))
            .sub(&y.mul_scalar(3.0))
            .add_scalar(2.0)
    });
}

#[test]
fn products_follow_leibniz() {
    check("mul", &|x, y| x.mul(y).mul(&x.mul(y).mul(x)).mul(&y.mul(y)));
}

#[test]
fn quotients_and_reciprocals() {
    check("div", &|x, y| x.div(&y.mul(y).add_scalar(0.5)));
    check("recip", &|x, y| x.add(y).recip());
}

#[test]
fn integer_and_real_powers() {
    check("powi 3", &|x, y| x.add(&y.mul_scalar(0.5)).powi(3));
    check("powi 5", &|x, y| x.mul(y).powi(5));
    check("powi -2", &|x, y| x.add(y).powi(-2));
    check("powf 2.5", &|x, y| x.add(y).powf(2.5));
    check("pow jet", &|x, y| x.add_scalar(0.5).pow(y));
}

#[test]
fn exponential_logarithm_and_root() {
    check("exp", &|x, y| x.mul(y).exp());
    check("ln", &|x, y| x.add(&y.mul(y)).ln());
    check("sqrt", &|x, y| x.add(y).sqrt());
}

#[test]
fn trigonometric_functions() {
    check("sin", &|x, y| x.mul_scalar(2.0).mul(y).sin());
    check("cos", &|x, y| x.add(&y.mul_scalar(3.0)).cos());
}

#[test]
fn activations() {
    check("tanh", &|x, y| x.mul_scalar(1.5).sub(&y.mul(x)).tanh());
    check("sigmoid", &|x, y| x.mul_scalar(2.0).sub(y).sigmoid());
    check("swish", &|x, y| x.mul_scalar(2.0).sub(y).swish());
}

#[test]
fn differentiation_shifts_streams() {
    let pts = points();
    let set = Arc::new(DerivativeSet::closure_of(all_partials(3)));
    let (x, y) = coordinates(&pts, &set);
    let f = |x: &Jet, y: &Jet| x.mul(y).sin().mul(x);
    let jet = f(&x, &y);
    let dy = Partial::first(1);
    let shifted = jet.differentiate(&dy);
    for p in shifted.derivative_set().iter() {
        let full = p.join(&dy).expect("small");
        let a: Vec<f64> = to_vec(&shifted.derivative(p));
        let b: Vec<f64> = to_vec(&jet.derivative(&full));
        assert_eq!(a, b);
    }
    assert_eq!(shifted.derivative_set().max_order(), 2);
}

#[test]
fn constants_broadcast_against_fields() {
    let pts = points();
    let set = Arc::new(DerivativeSet::closure_of(all_partials(2)));
    let (x, _) = coordinates(&pts, &set);
    let c: Tensor<2> = ctx().scalar(3.0);
    let jet = x.mul(&Jet::constant(c));
    let dx = to_vec(&jet.derivative(&Partial::first(0)));
    assert!(dx.iter().all(|v| (v - 3.0).abs() < 1e-15));
    assert_eq!(dx.len(), N);
}
