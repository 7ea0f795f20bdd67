//! The rule of a fused activation for one derivative set: Faà di Bruno's formula compiled
//! once into per-stream terms, and the derivative polynomials of `tanh` and the sigmoid.

use std::sync::OnceLock;

use super::unrolled::UnrolledRule;
use crate::activation::Activation;
use crate::jet::faa_di_bruno_terms;
use crate::partial::{DerivativeSet, MAX_ORDER};

/// One Faà di Bruno term of an output stream: `count · σ^(k)(z) · Π z_b` over `k` blocks `b`.
#[derive(Debug)]
pub(crate) struct Term {
    pub(crate) count: f64,
    /// Indices of the input streams multiplied together (each ≥ 1).
    pub(crate) blocks: Vec<usize>,
}

impl Term {
    /// The input streams this term multiplies, on the flat range `[at, at + m)`.
    pub(crate) fn factors<'a, E>(
        &self,
        z: &'a [E],
        per_stream: usize,
        at: usize,
        m: usize,
    ) -> Slices<'a, E> {
        let mut factors = Slices::new();
        for &b in &self.blocks {
            factors.push(&z[b * per_stream + at..b * per_stream + at + m]);
        }
        factors
    }
}

/// The compiled rule of a fused activation for one derivative set.
///
/// Streams are numbered as in the stacked layout: 0 is the value, `1 + j` the `j`-th partial of
/// the derivative set in its iteration order.
#[derive(Debug)]
pub struct JetActivation {
    pub(crate) activation: Activation,
    pub(crate) set: DerivativeSet,
    pub(crate) streams: usize,
    pub(crate) max_order: usize,
    /// `terms[s - 1]`: the terms of output stream `s`.
    pub(crate) terms: Vec<Vec<Term>>,
    /// Coefficients (ascending powers) of `σ^(k)` as a polynomial in `σ`, for `tanh` and
    /// `sigmoid`, `k = 0..=MAX_ORDER + 1`.
    pub(crate) polynomials: Vec<Vec<f64>>,
    /// The rule as product lists, built on first use by a backend that compiles kernels.
    pub(crate) unrolled: OnceLock<UnrolledRule>,
}

impl JetActivation {
    /// Compiles the rule of `activation` for the streams of `set`.
    ///
    /// # Panics
    /// If the activation has no fused rule ([`Activation::has_fused_rule`]).
    pub fn new(activation: Activation, set: &DerivativeSet) -> Self {
        assert!(
            activation.has_fused_rule(),
            "{activation:?} has no fused rule"
        );
        let partials: Vec<_> = set.iter().copied().collect();
        let index_of = |p| {
            partials
                .iter()
                .position(|q| *q == p)
                .map(|i| i + 1)
                .expect("derivative sets are closed under sub-partials")
        };
        let terms = partials
            .iter()
            .map(|partial| {
                faa_di_bruno_terms(partial)
                    .into_iter()
                    .map(|(count, blocks)| Term {
                        count: count as f64,
                        blocks: blocks.into_iter().map(index_of).collect(),
                    })
                    .collect()
            })
            .collect();
        // σ' as a polynomial in σ: tanh' = 1 - t², sigmoid' = s - s².
        let chain = match activation {
            Activation::Tanh => vec![1.0, 0.0, -1.0],
            Activation::Sigmoid => vec![0.0, 1.0, -1.0],
            Activation::Sin | Activation::Swish => vec![],
        };
        let mut polynomials = vec![vec![0.0, 1.0]];
        if !chain.is_empty() {
            for _ in 0..=MAX_ORDER {
                let last = polynomials.last().cloned().unwrap_or_default();
                polynomials.push(multiply(&derivative(&last), &chain));
            }
        }
        Self {
            activation,
            set: set.clone(),
            streams: partials.len() + 1,
            max_order: set.max_order(),
            terms,
            polynomials,
            unrolled: OnceLock::new(),
        }
    }

    /// Number of stacked streams, the value included.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// The derivative set the rule was compiled for.
    pub fn derivative_set(&self) -> &DerivativeSet {
        &self.set
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The Faà di Bruno terms of output stream `s ≥ 1`: each a count and the input streams it
    /// multiplies (as many as the order of the activation's derivative in it).
    pub fn terms_of(&self, s: usize) -> impl Iterator<Item = (f64, &[usize])> {
        self.terms[s - 1]
            .iter()
            .map(|term| (term.count, term.blocks.as_slice()))
    }

    /// The rule as flat product lists (built once, then shared).
    pub fn unrolled(&self) -> &UnrolledRule {
        self.unrolled.get_or_init(|| UnrolledRule::new(self))
    }

    /// `polynomials()[k]`: coefficients (ascending powers) of `σ^(k)` as a polynomial in `σ`
    /// (`tanh`, sigmoid; empty for `sin`).
    pub fn polynomials(&self) -> &[Vec<f64>] {
        &self.polynomials
    }
}

pub(crate) fn derivative(p: &[f64]) -> Vec<f64> {
    p.iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| c * i as f64)
        .collect()
}

pub(crate) fn multiply(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; (a.len() + b.len()).saturating_sub(1)];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Up to `MAX_ORDER + 1` slices held on the stack: the kernels gather a term's factors once per
/// block and term, which with a `Vec` was a heap allocation each time.
#[derive(Clone, Copy)]
pub(crate) struct Slices<'a, E> {
    pub(crate) items: [&'a [E]; MAX_ORDER + 1],
    pub(crate) len: usize,
}

impl<'a, E> Slices<'a, E> {
    pub(crate) fn new() -> Self {
        Self {
            items: [&[]; MAX_ORDER + 1],
            len: 0,
        }
    }

    /// Appends a slice (a Faà di Bruno term has at most `MAX_ORDER` factors, plus one weight).
    pub(crate) fn push(&mut self, slice: &'a [E]) {
        self.items[self.len] = slice;
        self.len += 1;
    }

    pub(crate) fn as_slice(&self) -> &[&'a [E]] {
        &self.items[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_polynomials_of_tanh() {
        let set = DerivativeSet::values_only();
        let p = JetActivation::new(Activation::Tanh, &set);
        // tanh'' = -2t + 2t³
        assert_eq!(p.polynomials[2], vec![0.0, -2.0, 0.0, 2.0]);
    }
}
