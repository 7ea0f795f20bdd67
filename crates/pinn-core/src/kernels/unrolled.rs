//! The fused jet activation unrolled into flat lists of products: the form a GPU kernel is
//! compiled from.
//!
//! A GPU thread owns one element (point, column) of every stream of the stacked jet. The rule
//! of [`JetActivation`] then becomes, per output stream, a fixed sum of products
//! `count · σ^(order)(z + b) · Π z_f` over input streams `f`, and the backward one such sum per
//! input stream, each product also multiplied by one stream of the incoming gradient. Both
//! lists depend only on the activation and the derivative set, so a kernel generator (CubeCL's
//! comptime) unrolls them into straight-line code, one kernel per derivative set.
//!
//! [`UnrolledRule::forward_host`] and [`UnrolledRule::backward_host`] evaluate the lists on the
//! host, exactly as the kernels do; tests check them against the CPU kernels ([`crate::kernels`]), so the tables a
//! GPU kernel is built from are checked on every machine.

use crate::activation::Activation;
use crate::kernels::{JetActivation, Real};

/// One product `count · σ^(order) · Π factors` (times one gradient stream, backward).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Product {
    /// Integer multiplicity (Faà di Bruno's count, summed over equal products).
    pub count: i64,
    /// Which derivative of the activation multiplies the product.
    pub order: usize,
    /// Input streams multiplied together (stream 0 is the value, never a factor).
    pub factors: Vec<usize>,
    /// The stream of the incoming gradient this product multiplies (backward only; 0 forward).
    pub gradient: usize,
}

/// Which of a rule's product lists: the activation, or its backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    /// [`UnrolledRule::forward`]: the activated jet from `z`.
    Forward,
    /// [`UnrolledRule::backward`]: the gradient of `z` from the activated jet's gradient.
    Backward,
}

/// A [`JetActivation`] as per-stream lists of [`Product`]s.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnrolledRule {
    /// The activation.
    pub activation: Activation,
    /// Stacked streams, the value included.
    pub streams: usize,
    /// `polynomials[k]`: coefficients (ascending powers) of `σ^(k)` as a polynomial in `σ`
    /// (`tanh`, sigmoid; empty for `sin`). All are integers.
    pub polynomials: Vec<Vec<i64>>,
    /// `forward[s]`: the products summed into output stream `s`; stream 0 is `σ` itself.
    pub forward: Vec<Vec<Product>>,
    /// `backward[f]`: the products summed into the gradient of input stream `f`.
    pub backward: Vec<Vec<Product>>,
}

impl UnrolledRule {
    /// Unrolls a compiled activation rule.
    pub fn new(program: &JetActivation) -> Self {
        let streams = program.streams();
        let value = Product {
            count: 1,
            order: 0,
            factors: Vec::new(),
            gradient: 0,
        };
        let mut forward = vec![vec![value]];
        for s in 1..streams {
            forward.push(
                program
                    .terms_of(s)
                    .map(|(count, blocks)| Product {
                        count: integer(count),
                        order: blocks.len(),
                        factors: blocks.to_vec(),
                        gradient: 0,
                    })
                    .collect(),
            );
        }
        // d/dz_0 of σ(z_0) is σ'; d/dz_0 of a term is the term with σ^(k+1); d/dz_f removes one
        // factor f (once per occurrence).
        let mut backward = vec![Vec::new(); streams];
        backward[0].push(Product {
            count: 1,
            order: 1,
            factors: Vec::new(),
            gradient: 0,
        });
        for (s, products) in forward.iter().enumerate().skip(1) {
            for product in products {
                backward[0].push(Product {
                    order: product.order + 1,
                    gradient: s,
                    ..product.clone()
                });
                for (at, &f) in product.factors.iter().enumerate() {
                    let mut others = product.factors.clone();
                    others.remove(at);
                    backward[f].push(Product {
                        count: product.count,
                        order: product.order,
                        factors: others,
                        gradient: s,
                    });
                }
            }
        }
        let backward = backward.into_iter().map(merge_equal).collect();
        let activation = program.activation();
        let polynomials = program
            .polynomials()
            .iter()
            .map(|p| p.iter().map(|&c| integer(c)).collect())
            .collect();
        Self {
            activation,
            streams,
            polynomials,
            forward,
            backward,
        }
    }

    /// The product lists of one pass, one per stream.
    pub fn sums(&self, pass: Pass) -> &[Vec<Product>] {
        match pass {
            Pass::Forward => &self.forward,
            Pass::Backward => &self.backward,
        }
    }

    /// The highest derivative of the activation the backward needs.
    pub fn max_order(&self) -> usize {
        self.backward
            .iter()
            .flatten()
            .map(|p| p.order)
            .max()
            .unwrap_or(1)
    }

    /// `σ^(order)` at `pre = z + b`, given `σ(pre)` (and `sin`, `cos` for the sine).
    fn derivative<E: Real>(&self, order: usize, value: E, (sin, cos): (E, E)) -> E {
        match self.activation {
            Activation::Sin => match order % 4 {
                0 => sin,
                1 => cos,
                2 => E::of(-1.0) * sin,
                _ => E::of(-1.0) * cos,
            },
            _ => self.polynomials[order]
                .iter()
                .rev()
                .fold(E::default(), |acc, &c| acc * value + E::of(c as f64)),
        }
    }

    fn activate<E: Real>(&self, pre: E) -> (E, (E, E)) {
        match self.activation {
            Activation::Tanh => (pre.tanh(), (E::default(), E::default())),
            Activation::Sigmoid => (pre.sigmoid(), (E::default(), E::default())),
            Activation::Sin => {
                let (sin, cos) = pre.sin_cos();
                (sin, (sin, cos))
            }
            Activation::Swish => unreachable!("JetActivation::new refuses swish"),
        }
    }

    /// The activated jet of `z` (`[streams · points, width]`, row-major) with `bias` on the
    /// value stream, element by element as a kernel thread computes it.
    pub fn forward_host<E: Real>(&self, z: &[E], bias: &[E]) -> Vec<E> {
        self.sums_host(Pass::Forward, z, bias, None)
    }

    /// The gradient with respect to `z` of the activated jet, given its gradient `grad`
    /// (stacked like `z`), element by element as a kernel thread computes it.
    pub fn backward_host<E: Real>(&self, z: &[E], bias: &[E], grad: &[E]) -> Vec<E> {
        self.sums_host(Pass::Backward, z, bias, Some(grad))
    }

    /// Every stream's sum of the products of `pass`, each product also multiplied by its
    /// stream of `grad` when there is one (the backward).
    fn sums_host<E: Real>(&self, pass: Pass, z: &[E], bias: &[E], grad: Option<&[E]>) -> Vec<E> {
        let width = bias.len();
        let per_stream = z.len() / self.streams;
        let mut out = vec![E::default(); z.len()];
        for i in 0..per_stream {
            let (value, sin_cos) = self.activate(z[i] + bias[i % width]);
            for (s, products) in self.sums(pass).iter().enumerate() {
                out[s * per_stream + i] = products.iter().fold(E::default(), |acc, p| {
                    let d = self.derivative(p.order, value, sin_cos);
                    let weight = grad.map_or(E::of(1.0), |g| g[p.gradient * per_stream + i]);
                    let first = E::of(p.count as f64) * d * weight;
                    let term = p
                        .factors
                        .iter()
                        .fold(first, |t, &f| t * z[f * per_stream + i]);
                    acc + term
                });
            }
        }
        out
    }
}

/// Rounds a value the rule holds as `f64` but that is an integer by construction.
fn integer(value: f64) -> i64 {
    debug_assert_eq!(value.fract(), 0.0, "rule coefficients are integers");
    value.round() as i64
}

/// Sums the counts of products that differ only in count (factors compared as multisets).
fn merge_equal(products: Vec<Product>) -> Vec<Product> {
    let mut merged: Vec<Product> = Vec::with_capacity(products.len());
    for mut product in products {
        product.factors.sort_unstable();
        match merged.iter_mut().find(|m| {
            m.order == product.order
                && m.gradient == product.gradient
                && m.factors == product.factors
        }) {
            Some(existing) => existing.count += product.count,
            None => merged.push(product),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::matmul::MatRef;
    use crate::kernels::{Stacked, layer_backward, layer_forward};
    use crate::partial::{DerivativeSet, Partial};
    use crate::sampling::rng_from_seed;
    use rand::Rng;

    /// Seeded uniform values in (-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rng_from_seed(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn identity(n: usize) -> Vec<f64> {
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            m[i * n + i] = 1.0;
        }
        m
    }

    /// Derivative sets of every paper problem's shape: first order, second in one variable,
    /// third mixed in two (Navier-Stokes), third in one (KdV).
    fn sets() -> Vec<DerivativeSet> {
        let partial = |c: &[usize]| Partial::from_coords(c).expect("valid partial");
        vec![
            DerivativeSet::values_only(),
            DerivativeSet::closure_of([partial(&[0, 0]), partial(&[1])]),
            DerivativeSet::closure_of([partial(&[0, 0, 1]), partial(&[1, 1, 1]), partial(&[2])]),
            DerivativeSet::closure_of([partial(&[0, 0, 0]), partial(&[1])]),
        ]
    }

    #[test]
    fn unrolled_rule_matches_the_fused_kernels_forward_and_backward() {
        let (points, width) = (7, 5);
        for activation in [Activation::Tanh, Activation::Sigmoid, Activation::Sin] {
            for (k, set) in sets().iter().enumerate() {
                let program = JetActivation::new(activation, set);
                let rule = UnrolledRule::new(&program);
                let streams = program.streams();
                assert_eq!(rule.streams, streams);
                assert!(rule.max_order() <= set.max_order() + 1);
                let seed = 10 * k as u64;
                let z = values(streams * points * width, seed + 1);
                let bias = values(width, seed + 2);
                let grad = values(streams * points * width, seed + 3);
                let eye = identity(width);
                let shape = Stacked { points, width };
                let weight = MatRef::row_major(&eye, width, width);
                let (h, _) = layer_forward(&program, shape, &z, &bias, weight);
                let grads = layer_backward(&program, shape, (&z, &bias, weight), &h, &grad);
                let close = |a: &[f64], b: &[f64], what: &str| {
                    for (i, (x, y)) in a.iter().zip(b).enumerate() {
                        assert!(
                            (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                            "{activation:?}, set {k}, {what}[{i}]: {x} vs {y}"
                        );
                    }
                };
                close(&rule.forward_host(&z, &bias), &h, "forward");
                close(&rule.backward_host(&z, &bias, &grad), &grads.z, "backward");
            }
        }
    }

    #[test]
    fn backward_products_merge_repeated_factors() {
        // u_x = σ' z_x and u_xx = σ'' z_x² + σ' z_xx: the gradient with respect to z_x is
        // σ' g_x + 2 σ'' z_x g_xx, the second one product with count 2 rather than two.
        let partial = |c: &[usize]| Partial::from_coords(c).expect("valid partial");
        let set = DerivativeSet::closure_of([partial(&[0, 0])]);
        let rule = UnrolledRule::new(&JetActivation::new(Activation::Tanh, &set));
        assert_eq!(rule.streams, 3);
        let x = set
            .iter()
            .position(|p| p.order() == 1)
            .expect("u_x in the set")
            + 1;
        let xx = 3 - x;
        assert_eq!(
            rule.backward[x],
            vec![
                Product {
                    count: 1,
                    order: 1,
                    factors: vec![],
                    gradient: x,
                },
                Product {
                    count: 2,
                    order: 2,
                    factors: vec![x],
                    gradient: xx,
                }
            ]
        );
    }
}
