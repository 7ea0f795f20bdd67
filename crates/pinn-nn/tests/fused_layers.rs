//! The fused layer path against the op-by-op reference: values, every derivative stream and all
//! parameter gradients, to rounding in f64, on random networks and random derivative sets.

use pinn_core::Activation;
use pinn_core::backend::to_vec;
use pinn_core::sampling::rng_from_seed;
use pinn_core::{DerivativeSet, JetNetwork, Partial, Precision, Tensor, TensorContext};
use pinn_nn::Init;
use pinn_nn::{Mlp, MlpSpec};
use rand::Rng;

fn ctx(precision: Precision) -> TensorContext {
    TensorContext::cpu(precision)
}

/// A random closed derivative set in `dims` inputs with partials up to `max_order`.
fn random_set(rng: &mut impl Rng, dims: usize, max_order: usize) -> DerivativeSet {
    let count = rng.random_range(1..=4);
    DerivativeSet::closure_of((0..count).map(|_| {
        let order = rng.random_range(1..=max_order);
        let coords: Vec<usize> = (0..order).map(|_| rng.random_range(0..dims)).collect();
        Partial::from_coords(&coords).expect("order within MAX_ORDER")
    }))
}

/// Sum of every stream weighted by fixed pseudo-random factors, so that each stream gets its own
/// upstream gradient.
fn weighted_sum(jet: &pinn_core::Jet, set: &DerivativeSet) -> Tensor<1> {
    let mut total = jet.value().clone().mul_scalar(0.37).sum();
    for (k, p) in set.iter().enumerate() {
        let w = 0.5 + 0.173 * k as f64;
        let s = jet.derivative(p);
        total = total.add(s.clone().mul(s).mul_scalar(w).sum());
    }
    total
}

fn max_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max)
}

struct Outcome {
    streams: Vec<Vec<f64>>,
    grads: Vec<Vec<f64>>,
}

fn run(mlp: &Mlp, params: &[Tensor<2>], x: &Tensor<2>, set: &DerivativeSet) -> Outcome {
    let tracked: Vec<Tensor<2>> = params
        .iter()
        .map(|t| t.clone().autodiff().require_grad())
        .collect();
    let jet = mlp.forward(&tracked, x, set);
    let mut streams = vec![to_vec(jet.value())];
    streams.extend(set.iter().map(|p| to_vec(&jet.derivative(p))));
    let grads = weighted_sum(&jet, set).backward();
    let grads = tracked
        .iter()
        .map(|t| to_vec(&t.grad(&grads).expect("every parameter has a gradient")))
        .collect();
    Outcome { streams, grads }
}

fn compare(dims: usize, hidden: &[usize], outputs: usize, activation: Activation, seed: u64) {
    compare_on(37, dims, hidden, outputs, activation, seed);
}

fn compare_on(
    n: usize,
    dims: usize,
    hidden: &[usize],
    outputs: usize,
    activation: Activation,
    seed: u64,
) {
    let c = ctx(Precision::F64);
    let mut rng = rng_from_seed(seed);
    let set = random_set(&mut rng, dims, 3);
    let spec = MlpSpec {
        inputs: dims,
        hidden: hidden.to_vec(),
        outputs,
        activation,
        init: Init::GlorotUniform,
    };
    let lower = vec![-1.0; dims];
    let upper: Vec<f64> = (0..dims).map(|d| 1.0 + d as f64).collect();
    let fused = Mlp::new(&spec, &lower, &upper, &c);
    assert!(fused.uses_fused_layers(), "{activation:?} has a fused rule");
    let reference = fused.clone().with_fused_layers(false);
    assert!(!reference.uses_fused_layers());
    let params = fused.init_parameters(&mut rng, &c);
    let pts: Vec<f64> = (0..n * dims).map(|_| rng.random_range(-1.0..2.0)).collect();
    let x = c.matrix(&pts, n, dims);

    let a = run(&fused, &params, &x, &set);
    let b = run(&reference, &params, &x, &set);
    for (k, (s, r)) in a.streams.iter().zip(&b.streams).enumerate() {
        let d = max_relative_difference(s, r);
        assert!(
            d < 1e-12,
            "{activation:?} {set:?}: stream {k} differs by {d:e}"
        );
    }
    for (k, (g, r)) in a.grads.iter().zip(&b.grads).enumerate() {
        let d = max_relative_difference(g, r);
        assert!(
            d < 1e-11,
            "{activation:?} {set:?}: gradient of parameter {k} differs by {d:e}"
        );
    }
}

#[test]
fn fused_tanh_matches_the_reference_on_random_sets() {
    for seed in 0..6 {
        compare(
            1 + (seed as usize % 3),
            &[9, 7, 8],
            3,
            Activation::Tanh,
            seed,
        );
    }
}

/// Enough points that the kernels split the rows into many parallel tasks (about 32k elements
/// each, all streams together), the last one shorter than the others.
#[test]
fn fused_layers_split_over_many_uneven_tasks_match_the_reference() {
    compare_on(1501, 2, &[33, 31], 2, Activation::Tanh, 21);
}

/// Outputs wider than the last hidden layer (as in the discrete-time networks, q + 1 columns):
/// the streams are cut apart before the output product, after an activation-only fused op, and
/// each is multiplied by the output weight in the row-tiled product.
#[test]
fn fused_layers_with_a_wide_output_match_the_reference() {
    for seed in 30..33 {
        compare(1 + (seed as usize % 2), &[7, 6], 11, Activation::Tanh, seed);
    }
    compare(2, &[5], 8, Activation::Sigmoid, 34);
    compare(1, &[6, 4], 9, Activation::Sin, 35);
    compare_on(1201, 1, &[24, 20], 41, Activation::Tanh, 36);
}

#[test]
fn fused_sigmoid_and_sin_match_the_reference() {
    for seed in 10..13 {
        compare(2, &[6, 5], 2, Activation::Sigmoid, seed);
        compare(3, &[5, 6], 1, Activation::Sin, seed + 10);
    }
}

#[test]
fn fused_fourth_order_and_values_only() {
    let c = ctx(Precision::F64);
    let spec = MlpSpec {
        inputs: 1,
        hidden: vec![5, 4],
        outputs: 2,
        activation: Activation::Tanh,
        init: Init::GlorotUniform,
    };
    let fused = Mlp::new(&spec, &[-1.0], &[1.0], &c);
    let reference = fused.clone().with_fused_layers(false);
    let params = fused.init_parameters(&mut rng_from_seed(3), &c);
    let x = c.matrix(&[-0.9, -0.3, 0.2, 0.8, 0.95], 5, 1);
    for set in [
        DerivativeSet::values_only(),
        DerivativeSet::closure_of([Partial::from_coords(&[0, 0, 0, 0]).expect("order 4")]),
    ] {
        let a = run(&fused, &params, &x, &set);
        let b = run(&reference, &params, &x, &set);
        for (s, r) in a.streams.iter().zip(&b.streams) {
            assert!(max_relative_difference(s, r) < 1e-12);
        }
        for (g, r) in a.grads.iter().zip(&b.grads) {
            assert!(max_relative_difference(g, r) < 1e-11);
        }
    }
}

#[test]
fn fused_f32_agrees_with_the_reference_to_single_precision() {
    let c = ctx(Precision::F32);
    let spec = MlpSpec {
        inputs: 2,
        hidden: vec![20, 20, 20],
        outputs: 1,
        activation: Activation::Tanh,
        init: Init::GlorotTruncatedNormal,
    };
    let fused = Mlp::new(&spec, &[-1.0, 0.0], &[1.0, 1.0], &c);
    let reference = fused.clone().with_fused_layers(false);
    let params = fused.init_parameters(&mut rng_from_seed(5), &c);
    let set = DerivativeSet::closure_of([
        Partial::from_coords(&[0, 0]).expect("order 2"),
        Partial::from_coords(&[1]).expect("order 1"),
    ]);
    let pts: Vec<f64> = (0..400).map(|k| (k as f64 * 0.618).fract()).collect();
    let x = c.matrix(&pts, 200, 2);
    let a = run(&fused, &params, &x, &set);
    let b = run(&reference, &params, &x, &set);
    for (s, r) in a.streams.iter().zip(&b.streams) {
        assert!(max_relative_difference(s, r) < 2e-5);
    }
    for (g, r) in a.grads.iter().zip(&b.grads) {
        assert!(max_relative_difference(g, r) < 2e-4);
    }
}
