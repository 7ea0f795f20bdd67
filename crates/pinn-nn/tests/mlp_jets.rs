//! Taylor-mode derivatives through whole networks, and parameter gradients of a residual
//! loss, against central finite differences in f64.

use pinn_core::Activation;
use pinn_core::backend::{to_scalar, to_vec};
use pinn_core::sampling::rng_from_seed;
use pinn_core::{DerivativeSet, JetNetwork, Partial, Precision, Tensor, TensorContext};
use pinn_nn::Init;
use pinn_nn::{Mlp, MlpSpec};

fn ctx() -> TensorContext {
    TensorContext::cpu(Precision::F64)
}

struct Case {
    mlp: Mlp,
    params: Vec<Tensor<2>>,
    dims: usize,
}

fn case(dims: usize, hidden: &[usize], outputs: usize, activation: Activation, seed: u64) -> Case {
    let lower: Vec<f64> = (0..dims).map(|d| -1.0 - 0.5 * d as f64).collect();
    let upper: Vec<f64> = (0..dims).map(|d| 1.0 + 0.25 * d as f64).collect();
    let c = ctx();
    let spec = MlpSpec {
        inputs: dims,
        hidden: hidden.to_vec(),
        outputs,
        activation,
        init: Init::GlorotUniform,
    };
    let mlp = Mlp::new(&spec, &lower, &upper, &c);
    let params = mlp.init_parameters(&mut rng_from_seed(seed), &c);
    Case { mlp, params, dims }
}

fn points(dims: usize, n: usize) -> Vec<f64> {
    (0..n * dims)
        .map(|k| ((k as f64 * 0.7548776662).fract() - 0.5) * 1.6)
        .collect()
}

fn eval(case: &Case, pts: &[f64]) -> Vec<f64> {
    let n = pts.len() / case.dims;
    let x = ctx().matrix(pts, n, case.dims);
    to_vec(
        case.mlp
            .forward(&case.params, &x, &DerivativeSet::values_only())
            .value(),
    )
}

fn fd(case: &Case, pts: &[f64], coords: &[u8], h: f64) -> Vec<f64> {
    match coords.split_first() {
        None => eval(case, pts),
        Some((&c, rest)) => {
            let shifted = |s: f64| -> Vec<f64> {
                let mut q = pts.to_vec();
                for row in q.chunks_mut(case.dims) {
                    row[c as usize] += s;
                }
                q
            };
            let a = fd(case, &shifted(h), rest, h);
            let b = fd(case, &shifted(-h), rest, h);
            a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * h)).collect()
        }
    }
}

fn check_network(case: &Case, partials: &[Partial]) {
    let n = 9;
    let pts = points(case.dims, n);
    let set = DerivativeSet::closure_of(partials.iter().copied());
    let x = ctx().matrix(&pts, n, case.dims);
    let jet = case.mlp.forward(&case.params, &x, &set);
    for p in set.iter() {
        let got = to_vec(&jet.derivative(p));
        // Richardson-extrapolated central differences: O(h^4) truncation error.
        let (h, tol) = match p.order() {
            1 | 2 => (1e-2, 1e-5),
            3 => (2e-2, 3e-5),
            _ => (4e-2, 1e-3),
        };
        let coarse = fd(case, &pts, p.coords(), h);
        let fine = fd(case, &pts, p.coords(), h / 2.0);
        let want: Vec<f64> = coarse
            .iter()
            .zip(&fine)
            .map(|(c, f)| (4.0 * f - c) / 3.0)
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            let err = (g - w).abs() / w.abs().max(1.0);
            assert!(
                err < tol,
                "{} partial {p:?}: jet {g} vs fd {w} ({err:e})",
                case.mlp.describe()
            );
        }
    }
}

fn p(coords: &[usize]) -> Partial {
    Partial::from_coords(coords).expect("small order")
}

#[test]
fn every_activation_to_third_order_in_two_inputs() {
    for (k, act) in [
        Activation::Tanh,
        Activation::Sin,
        Activation::Sigmoid,
        Activation::Swish,
    ]
    .into_iter()
    .enumerate()
    {
        let c = case(2, &[7, 5], 2, act, 10 + k as u64);
        check_network(
            &c,
            &[p(&[0, 0, 0]), p(&[0, 0, 1]), p(&[0, 1, 1]), p(&[1, 1, 1])],
        );
    }
}

#[test]
fn fourth_order_and_a_deep_network() {
    let c = case(1, &[6, 6, 6], 3, Activation::Tanh, 3);
    check_network(&c, &[p(&[0, 0, 0, 0])]);
    let c = case(2, &[20, 20, 20, 20, 20, 20, 20, 20], 1, Activation::Tanh, 4);
    check_network(&c, &[p(&[0, 0]), p(&[1])]);
}

#[test]
fn mixed_third_derivatives_in_three_inputs() {
    // Navier-Stokes needs psi_xxy, psi_xyy, psi_yyy, psi_yt, ...
    let c = case(3, &[8, 8], 2, Activation::Tanh, 5);
    check_network(
        &c,
        &[
            p(&[0, 0, 1]),
            p(&[0, 1, 1]),
            p(&[1, 1, 1]),
            p(&[0, 0, 0]),
            p(&[1, 2]),
            p(&[0, 2]),
        ],
    );
}

#[test]
fn a_network_without_hidden_layers_is_affine() {
    let c = case(2, &[], 2, Activation::Tanh, 6);
    check_network(&c, &[p(&[0, 1]), p(&[0])]);
}

/// `mean((u_t + u u_x − 0.1 u_xx)²)` at fixed points, for given parameters.
fn residual_loss(case: &Case, params: &[Tensor<2>], x: &Tensor<2>) -> Tensor<1> {
    let set = DerivativeSet::closure_of([p(&[0, 0]), p(&[1])]);
    let jet = case.mlp.forward(params, x, &set);
    let u = jet.value().clone();
    let f = jet
        .derivative(&p(&[1]))
        .add(u.mul(jet.derivative(&p(&[0]))))
        .sub(jet.derivative(&p(&[0, 0])).mul_scalar(0.1));
    f.clone().mul(f).mean()
}

#[test]
fn parameter_gradients_of_a_residual_loss() {
    let c = case(2, &[6, 5], 1, Activation::Tanh, 8);
    let n = 11;
    let x = ctx().matrix(&points(2, n), n, 2);
    let tracked: Vec<Tensor<2>> = c
        .params
        .iter()
        .map(|t| t.clone().autodiff().require_grad())
        .collect();
    let loss = residual_loss(&c, &tracked, &x);
    let grads = loss.backward();
    let h = 1e-6;
    for (k, param) in c.params.iter().enumerate() {
        let g = to_vec(
            &tracked[k]
                .grad(&grads)
                .expect("every parameter has a gradient"),
        );
        let base = to_vec(param);
        let [rows, cols] = param.dims();
        for idx in [0, base.len() / 2, base.len() - 1] {
            let perturbed = |s: f64| -> f64 {
                let mut v = base.clone();
                v[idx] += s;
                let mut ps = c.params.clone();
                ps[k] = ctx().matrix(&v, rows, cols);
                to_scalar(&residual_loss(&c, &ps, &x))
            };
            let want = (perturbed(h) - perturbed(-h)) / (2.0 * h);
            let err = (g[idx] - want).abs() / want.abs().max(1e-3);
            assert!(
                err < 1e-5,
                "param {k}[{idx}]: autodiff {} vs fd {want} ({err:e})",
                g[idx]
            );
        }
    }
}

/// Each initialisation draws weights of its distribution: Glorot variance `2 / (fan_in +
/// fan_out)` (uniform: the same variance from `±√(6 / (fan_in + fan_out))`), truncated at two
/// standard deviations or not, and its biases.
#[test]
fn initialisations_draw_their_distributions() {
    let (fan_in, fan_out) = (400, 400);
    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
    for init in [
        Init::GlorotTruncatedNormal,
        Init::GlorotNormal,
        Init::GlorotUniform,
    ] {
        let c = ctx();
        let spec = MlpSpec {
            inputs: fan_in,
            hidden: vec![fan_out],
            outputs: 1,
            activation: Activation::Tanh,
            init,
        };
        let lower = vec![-1.0; fan_in];
        let upper = vec![1.0; fan_in];
        let mlp = Mlp::new(&spec, &lower, &upper, &c);
        let params = mlp.init_parameters(&mut rng_from_seed(3), &c);
        let w = to_vec(&params[0]);
        let b = to_vec(&params[1]);
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let widest = w.iter().fold(0.0f64, |m, v| m.max(v.abs())) / std;
        assert!(mean.abs() < 0.01 * std, "{init:?}: mean {mean}");
        match init {
            Init::GlorotNormal => {
                assert!((sd / std - 1.0).abs() < 0.01, "{init:?}: sd {sd} vs {std}");
                // 160,000 draws: values beyond 3.5 standard deviations are all but certain.
                assert!(widest > 3.5, "{init:?}: widest {widest} σ");
                assert!(b.iter().all(|&v| v == 0.0), "{init:?}: zero biases");
            }
            Init::GlorotTruncatedNormal => {
                // The normal truncated at ±2σ keeps 88 % of its variance.
                assert!(
                    (sd / std - 0.880).abs() < 0.01,
                    "{init:?}: sd {sd} vs {std}"
                );
                assert!(widest <= 2.0, "{init:?}: widest {widest} σ");
                assert!(b.iter().all(|&v| v == 0.0), "{init:?}: zero biases");
            }
            Init::GlorotUniform => {
                assert!((sd / std - 1.0).abs() < 0.01, "{init:?}: sd {sd} vs {std}");
                assert!(widest <= 3f64.sqrt(), "{init:?}: widest {widest} σ");
                let bound = 1.0 / (fan_in as f64).sqrt();
                assert!(b.iter().any(|&v| v != 0.0) && b.iter().all(|v| v.abs() <= bound));
            }
        }
    }
}
