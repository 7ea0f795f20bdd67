//! The fused jet layer: `σ` applied to a whole pre-activation jet (its value and every
//! derivative stream) and the product with the next layer's weight, in one operation with a
//! hand-written backward.
//!
//! Op by op, a Taylor-mode activation is a handful of tensor operations per derivative stream
//! (Faà di Bruno's formula) and twice as many in the backward pass. Here the streams are stacked
//! row-wise into one `[streams · points, width]` tensor (stream 0 is the value). The rule is
//! compiled once per derivative set into a [`JetActivation`] program, and [`layer_forward`] /
//! [`layer_backward`] run it over plain slices, multi-threaded over points: each parallel task
//! takes the same rows of every stream, applies the rule block by block and multiplies its rows
//! by the weight (or, backward, forms its rows of the activation's gradient) while they are
//! still in cache, so the stacked activations make one trip through memory instead of three.
//! Backends wire the kernels into Burn (see the `backend` module); [`crate::jet::Jet::compose`]
//! stays the reference this is tested against.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use multiversion::multiversion;
use rayon::prelude::*;

use crate::config::Activation;
use crate::jet::faa_di_bruno_terms;
use crate::matmul::{MatRef, matmul_add, matmul_to};
use crate::partial::{DerivativeSet, MAX_ORDER};
use crate::unrolled::UnrolledRule;

/// Activations with a fused rule (every paper network uses `tanh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedActivation {
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Sine.
    Sin,
}

impl FusedActivation {
    /// The fused counterpart of a configured activation, if there is one.
    pub fn of(activation: Activation) -> Option<Self> {
        match activation {
            Activation::Tanh => Some(Self::Tanh),
            Activation::Sigmoid => Some(Self::Sigmoid),
            Activation::Sin => Some(Self::Sin),
            Activation::Swish => None,
        }
    }
}

/// One Faà di Bruno term of an output stream: `count · σ^(k)(z) · Π z_b` over `k` blocks `b`.
#[derive(Debug)]
struct Term {
    count: f64,
    /// Indices of the input streams multiplied together (each ≥ 1).
    blocks: Vec<usize>,
}

impl Term {
    /// The input streams this term multiplies, on the flat range `[at, at + m)`.
    fn factors<'a, E>(&self, z: &'a [E], per_stream: usize, at: usize, m: usize) -> Slices<'a, E> {
        let mut factors = Slices::new();
        for &b in &self.blocks {
            factors.push(&z[b * per_stream + at..b * per_stream + at + m]);
        }
        factors
    }
}

/// Up to `MAX_ORDER + 1` slices held on the stack: the kernels gather a term's factors once per
/// block and term, which with a `Vec` was a heap allocation each time.
#[derive(Clone, Copy)]
struct Slices<'a, E> {
    items: [&'a [E]; MAX_ORDER + 1],
    len: usize,
}

impl<'a, E> Slices<'a, E> {
    fn new() -> Self {
        Self {
            items: [&[]; MAX_ORDER + 1],
            len: 0,
        }
    }

    /// Appends a slice (a Faà di Bruno term has at most `MAX_ORDER` factors, plus one weight).
    fn push(&mut self, slice: &'a [E]) {
        self.items[self.len] = slice;
        self.len += 1;
    }

    fn as_slice(&self) -> &[&'a [E]] {
        &self.items[..self.len]
    }
}

/// The compiled rule of a fused activation for one derivative set.
///
/// Streams are numbered as in the stacked layout: 0 is the value, `1 + j` the `j`-th partial of
/// the derivative set in its iteration order.
#[derive(Debug)]
pub struct JetActivation {
    activation: FusedActivation,
    set: DerivativeSet,
    streams: usize,
    max_order: usize,
    /// `terms[s - 1]`: the terms of output stream `s`.
    terms: Vec<Vec<Term>>,
    /// Coefficients (ascending powers) of `σ^(k)` as a polynomial in `σ`, for `tanh` and
    /// `sigmoid`, `k = 0..=MAX_ORDER + 1`.
    polynomials: Vec<Vec<f64>>,
    /// The rule as product lists, built on first use by a backend that compiles kernels.
    unrolled: OnceLock<UnrolledRule>,
}

impl JetActivation {
    /// Compiles the rule of `activation` for the streams of `set`.
    pub fn new(activation: FusedActivation, set: &DerivativeSet) -> Self {
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
            FusedActivation::Tanh => vec![1.0, 0.0, -1.0],
            FusedActivation::Sigmoid => vec![0.0, 1.0, -1.0],
            FusedActivation::Sin => vec![],
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
    pub fn activation(&self) -> FusedActivation {
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

fn derivative(p: &[f64]) -> Vec<f64> {
    p.iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| c * i as f64)
        .collect()
}

fn multiply(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; (a.len() + b.len()).saturating_sub(1)];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// Floating-point element types the kernels run on.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::AddAssign
    + 'static
{
    /// Conversion from a constant.
    fn of(v: f64) -> Self;
    /// Widening to `f64` (sums of many terms are taken in it).
    fn to_f64(self) -> f64;
    /// `tanh`.
    fn tanh(self) -> Self;
    /// Logistic sigmoid.
    fn sigmoid(self) -> Self;
    /// Sine and cosine.
    fn sin_cos(self) -> (Self, Self);
}

impl Real for f64 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn sin_cos(self) -> (Self, Self) {
        f64::sin_cos(self)
    }
}

/// `eˣ` for `f32` without branches or calls, so that loops over it vectorise: round to
/// `n = x/ln 2`, a degree-7 Taylor polynomial on the reduced argument (error below 5e-9
/// relative) and the exponent put in by bits.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding and subtracting it rounds to an integer
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // max/min rather than clamp: they compile to vector min/max without NaN branches.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(87.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The low mantissa bits of `shifted` hold n as an integer (|n| ≤ 126).
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127)
        << 23;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(exponent)
}

impl Real for f32 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        1.0 - 2.0 / (exp_f32(2.0 * self) + 1.0)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }
    fn sin_cos(self) -> (Self, Self) {
        f32::sin_cos(self)
    }
}

/// Target elements per inner block (whole rows, kept in per-task buffers). Measured on the
/// 2-core machine: 1024 beats 256 by 5-15 % (Navier-Stokes, with its many streams, the most)
/// and ties with 2048.
const BLOCK: usize = 1024;
/// Target elements per parallel task, all streams together: a task's rows of `z`, of the
/// activated jet and of its product with the next weight stay in the core's L2 cache between
/// the activation and the product.
const TASK: usize = 32_768;
/// [`TASK`] for layers at most [`NARROW_WIDTH`] wide. Their products are so cheap that the
/// per-call packing of the product kernel, once per task and stream, outweighs the cache
/// misses of larger tasks. Measured on the 2-core machine, steps in alternate windows in one
/// process, against `TASK` (width 20): continuous Burgers forward 1.04× faster (and 1.04× with
/// four times `TASK`), Navier-Stokes 1.08×, continuous Burgers inverse 1.01×. Wider layers
/// were no faster with it: Schrödinger (width 100) 0.98×, the width-50 problems 0.99-1.02×.
const NARROW_TASK: usize = 2 * TASK;
/// Widest layer that gets [`NARROW_TASK`].
const NARROW_WIDTH: usize = 32;
/// Fewest rows per stream in a parallel task. Each task multiplies its rows by the whole next
/// weight, which the matrix-product kernel packs anew per call: wide layers (Allen-Cahn's
/// 200 × 200) made tasks of about 50 rows, and packing was a tenth of the step. With tasks of
/// 100 rows, Allen-Cahn's step took 5 % less CPU time and 2 % less wall time on the 2-core
/// machine (16.5 against 17.5 CPU-ms, four alternating runs each).
const MIN_TASK_ROWS: usize = 128;

/// Shape of a stacked jet tensor `[streams · points, width]`.
#[derive(Clone, Copy, Debug)]
pub struct Stacked {
    /// Points per stream.
    pub points: usize,
    /// Columns.
    pub width: usize,
}

impl Stacked {
    fn per_stream(&self) -> usize {
        self.points * self.width
    }

    /// Elements per inner block: whole rows, about [`BLOCK`].
    fn block(&self) -> usize {
        (BLOCK / self.width).max(1) * self.width
    }
}

/// Per-task scratch buffers of one block each.
struct Scratch<E> {
    /// `σ^(k)` for `k = 0..=MAX_ORDER + 1`.
    d: Vec<Vec<E>>,
    pre: Vec<E>,
    prod: Vec<E>,
    weight: Vec<E>,
    /// One accumulator block per stream: results are summed here, in cache, and then written
    /// once into the (uninitialised) output.
    acc: Vec<Vec<E>>,
    polynomials: Vec<Vec<E>>,
}

impl<E: Real> Scratch<E> {
    fn new(program: &JetActivation, block: usize) -> Self {
        Self {
            d: vec![vec![E::default(); block]; MAX_ORDER + 2],
            pre: vec![E::default(); block],
            prod: vec![E::default(); block],
            weight: vec![E::default(); block],
            acc: vec![vec![E::default(); block]; program.streams],
            polynomials: program
                .polynomials
                .iter()
                .map(|p| p.iter().map(|&c| E::of(c)).collect())
                .collect(),
        }
    }

    /// `σ^(k)` for `k = 0..=order` of `z + bias` on one block of whole rows.
    #[inline(always)]
    fn derivatives(&mut self, activation: FusedActivation, order: usize, z: &[E], bias: &[E]) {
        let m = z.len();
        let pre = &mut self.pre[..m];
        for (p_row, z_row) in pre.chunks_mut(bias.len()).zip(z.chunks(bias.len())) {
            for ((p, z), b) in p_row.iter_mut().zip(z_row).zip(bias) {
                *p = *z + *b;
            }
        }
        let (head, tail) = self.d.split_at_mut(1);
        let value = &mut head[0][..m];
        match activation {
            FusedActivation::Sin => {
                // σ^(k) = sin(z + kπ/2): sin, cos, -sin, -cos, ...
                let (cos, rest) = tail.split_at_mut(1);
                let cos = &mut cos[0][..m];
                for ((v, c), p) in value.iter_mut().zip(cos.iter_mut()).zip(pre.iter()) {
                    let (sin, cosine) = p.sin_cos();
                    *v = sin;
                    *c = cosine;
                }
                for k in 2..=order {
                    let (src, sign): (&[E], f64) = match k % 4 {
                        1 => (cos, 1.0),
                        2 => (value, -1.0),
                        3 => (cos, -1.0),
                        _ => (value, 1.0),
                    };
                    let sign = E::of(sign);
                    for (o, x) in rest[k - 2][..m].iter_mut().zip(src) {
                        *o = sign * *x;
                    }
                }
            }
            FusedActivation::Tanh | FusedActivation::Sigmoid => {
                if activation == FusedActivation::Tanh {
                    for (v, p) in value.iter_mut().zip(pre.iter()) {
                        *v = p.tanh();
                    }
                } else {
                    for (v, p) in value.iter_mut().zip(pre.iter()) {
                        *v = p.sigmoid();
                    }
                }
                for k in 1..=order {
                    let Some((last, rest)) = self.polynomials[k].split_last() else {
                        continue;
                    };
                    let out = &mut tail[k - 1][..m];
                    out.iter_mut().for_each(|o| *o = *last);
                    for &c in rest.iter().rev() {
                        for (o, v) in out.iter_mut().zip(value.iter()) {
                            *o = *o * *v + c;
                        }
                    }
                }
            }
        }
    }
}

/// `out[i] += c · d[i] · Π factors[j][i]`, without temporaries for up to three factors.
#[inline(always)]
fn accumulate<E: Real>(out: &mut [E], c: E, d: &[E], factors: &[&[E]], scratch: &mut [E]) {
    let m = out.len();
    let d = &d[..m];
    match factors {
        [] => {
            for (o, d) in out.iter_mut().zip(d) {
                *o += c * *d;
            }
        }
        [a] => {
            for ((o, d), a) in out.iter_mut().zip(d).zip(&a[..m]) {
                *o += c * *d * *a;
            }
        }
        [a, b] => {
            for (((o, d), a), b) in out.iter_mut().zip(d).zip(&a[..m]).zip(&b[..m]) {
                *o += c * *d * *a * *b;
            }
        }
        [a, rest @ ..] => {
            let scratch = &mut scratch[..m];
            for ((s, d), a) in scratch.iter_mut().zip(d).zip(&a[..m]) {
                *s = c * *d * *a;
            }
            for f in rest {
                for (s, f) in scratch.iter_mut().zip(&f[..m]) {
                    *s = *s * *f;
                }
            }
            for (o, s) in out.iter_mut().zip(scratch.iter()) {
                *o += *s;
            }
        }
    }
}

/// The forward of an output stream made of one term or of a first- plus a second-order term
/// (every stream up to second order), written in one pass straight into `out` instead of
/// through the accumulator. Returns `false`, writing nothing, for other streams.
#[inline(always)]
fn forward_low_order_stream<E: Real>(
    out: &mut [MaybeUninit<E>],
    terms: &[Term],
    d: &[Vec<E>],
    z: &[E],
    per_stream: usize,
    at: usize,
) -> bool {
    let m = out.len();
    let stream = |b: usize| &z[b * per_stream + at..b * per_stream + at + m];
    match terms {
        [term] => match *term.blocks.as_slice() {
            [a] => {
                let c = E::of(term.count);
                for ((o, d1), za) in out.iter_mut().zip(&d[1][..m]).zip(stream(a)) {
                    o.write(c * *d1 * *za);
                }
                true
            }
            [a, b] => {
                let c = E::of(term.count);
                let pairs = stream(a).iter().zip(stream(b));
                for ((o, d2), (za, zb)) in out.iter_mut().zip(&d[2][..m]).zip(pairs) {
                    o.write(c * *d2 * *za * *zb);
                }
                true
            }
            _ => false,
        },
        [first, second] => match (first.blocks.as_slice(), second.blocks.as_slice()) {
            (&[ab], &[a, b]) | (&[a, b], &[ab]) => {
                let (c1, c2) = if first.blocks.len() == 1 {
                    (E::of(first.count), E::of(second.count))
                } else {
                    (E::of(second.count), E::of(first.count))
                };
                let derivatives = d[1][..m].iter().zip(&d[2][..m]);
                let factors = stream(ab).iter().zip(stream(a).iter().zip(stream(b)));
                for ((o, (d1, d2)), (zab, (za, zb))) in out.iter_mut().zip(derivatives).zip(factors)
                {
                    o.write(c1 * *d1 * *zab + c2 * *d2 * *za * *zb);
                }
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Forward over the flat range `[start, start + len)` of every stream (whole rows), compiled
/// also for AVX2/FMA (and AVX-512) and picked at run time.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512vl+avx2+fma"))]
fn forward_task<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    z: &[E],
    bias: &[E],
    start: usize,
    outs: &mut [&mut [MaybeUninit<E>]],
) {
    let per_stream = shape.per_stream();
    let len = outs[0].len();
    let block = shape.block();
    let mut scratch = Scratch::new(program, block);
    let mut offset = 0;
    while offset < len {
        let m = block.min(len - offset);
        let at = start + offset;
        scratch.derivatives(program.activation, program.max_order, &z[at..at + m], bias);
        outs[0][offset..offset + m].write_copy_of_slice(&scratch.d[0][..m]);
        for (s, terms) in program.terms.iter().enumerate() {
            let out = &mut outs[s + 1][offset..offset + m];
            if forward_low_order_stream(out, terms, &scratch.d, z, per_stream, at) {
                continue;
            }
            let acc = &mut scratch.acc[0][..m];
            acc.fill(E::default());
            for term in terms {
                let factors = term.factors(z, per_stream, at, m);
                accumulate(
                    acc,
                    E::of(term.count),
                    &scratch.d[factors.len],
                    factors.as_slice(),
                    &mut scratch.prod,
                );
            }
            outs[s + 1][offset..offset + m].write_copy_of_slice(acc);
        }
        offset += m;
    }
}

/// The backward of a term with one or two factors (every term up to third order except
/// `σ^(3) · z_a · z_b · z_c`) in one pass over the block instead of the general path's several:
/// adds `c · g · σ^(k+1) · Π z` to the value's gradient and `c · g · σ^(k) · Π others` to each
/// factor's. Returns `false`, doing nothing, for other terms.
#[inline(always)]
fn backward_low_order_term<E: Real>(
    scratch: &mut Scratch<E>,
    term: &Term,
    c: E,
    g: &[E],
    z: &[E],
    per_stream: usize,
    at: usize,
) -> bool {
    let m = g.len();
    let stream = |b: usize| &z[b * per_stream + at..b * per_stream + at + m];
    let d = &scratch.d;
    match *term.blocks.as_slice() {
        [a] => {
            let Ok([value, acc_a]) = scratch.acc.get_disjoint_mut([0, a]) else {
                return false;
            };
            let (d1, d2, za) = (&d[1][..m], &d[2][..m], stream(a));
            for ((((v, o), g), (d1, d2)), za) in value[..m]
                .iter_mut()
                .zip(&mut acc_a[..m])
                .zip(g)
                .zip(d1.iter().zip(d2))
                .zip(za)
            {
                let w = c * *g;
                *v += w * *d2 * *za;
                *o += w * *d1;
            }
            true
        }
        [a, b] if a == b => {
            let Ok([value, acc_a]) = scratch.acc.get_disjoint_mut([0, a]) else {
                return false;
            };
            let (d2, d3, za) = (&d[2][..m], &d[3][..m], stream(a));
            let two = E::of(2.0);
            for ((((v, o), g), (d2, d3)), za) in value[..m]
                .iter_mut()
                .zip(&mut acc_a[..m])
                .zip(g)
                .zip(d2.iter().zip(d3))
                .zip(za)
            {
                let w = c * *g;
                *v += w * *d3 * *za * *za;
                *o += two * w * *d2 * *za;
            }
            true
        }
        [a, b] => {
            let Ok([value, acc_a, acc_b]) = scratch.acc.get_disjoint_mut([0, a, b]) else {
                return false;
            };
            let (d2, d3, za, zb) = (&d[2][..m], &d[3][..m], stream(a), stream(b));
            for (((((v, oa), ob), g), (d2, d3)), (za, zb)) in value[..m]
                .iter_mut()
                .zip(&mut acc_a[..m])
                .zip(&mut acc_b[..m])
                .zip(g)
                .zip(d2.iter().zip(d3))
                .zip(za.iter().zip(zb))
            {
                let w = c * *g;
                let wd2 = w * *d2;
                *v += w * *d3 * *za * *zb;
                *oa += wd2 * *zb;
                *ob += wd2 * *za;
            }
            true
        }
        _ => false,
    }
}

/// Backward over the flat range `[start, start + len)` (whole rows) of every stream, given the
/// gradient of the activated jet on that range (stream `s`'s range starts at
/// `grad[s · grad_stride]`); returns this range's bias gradient. Multi-versioned like
/// [`forward_task`].
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx512f+avx512vl+avx2+fma"))]
fn backward_task<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    z: &[E],
    bias: &[E],
    (grad, grad_stride): (&[E], usize),
    start: usize,
    outs: &mut [&mut [MaybeUninit<E>]],
) -> Vec<E> {
    let per_stream = shape.per_stream();
    let len = outs[0].len();
    let block = shape.block();
    let mut scratch = Scratch::new(program, block);
    let mut bias_grad = vec![E::default(); shape.width];
    let one = E::of(1.0);
    let mut offset = 0;
    while offset < len {
        let m = block.min(len - offset);
        let at = start + offset;
        scratch.derivatives(
            program.activation,
            program.max_order + 1,
            &z[at..at + m],
            bias,
        );
        // Value: g0 · σ'.
        for ((o, g), d1) in scratch.acc[0][..m]
            .iter_mut()
            .zip(&grad[offset..offset + m])
            .zip(&scratch.d[1][..m])
        {
            *o = *g * *d1;
        }
        for acc in scratch.acc.iter_mut().skip(1) {
            acc[..m].fill(E::default());
        }
        for (s, terms) in program.terms.iter().enumerate() {
            let at_grad = (s + 1) * grad_stride + offset;
            let g = &grad[at_grad..at_grad + m];
            for term in terms {
                let c = E::of(term.count);
                if backward_low_order_term(&mut scratch, term, c, g, z, per_stream, at) {
                    continue;
                }
                let factors = term.factors(z, per_stream, at, m);
                let k = factors.len;
                // d/dz (value): c · g · σ^(k+1) · Π z_b
                for (w, g) in scratch.weight[..m].iter_mut().zip(g) {
                    *w = c * *g;
                }
                let mut with_weight = Slices::new();
                with_weight.push(&scratch.weight[..m]);
                for f in factors.as_slice() {
                    with_weight.push(f);
                }
                accumulate(
                    &mut scratch.acc[0][..m],
                    one,
                    &scratch.d[k + 1],
                    with_weight.as_slice(),
                    &mut scratch.prod,
                );
                // d/dz_b for each block: c · g · σ^(k) · Π of the other blocks
                for (w, d) in scratch.weight[..m].iter_mut().zip(&scratch.d[k][..m]) {
                    *w = *w * *d;
                }
                for j in 0..k {
                    let mut others = Slices::new();
                    for (l, f) in factors.as_slice().iter().enumerate() {
                        if l != j {
                            others.push(f);
                        }
                    }
                    accumulate(
                        &mut scratch.acc[term.blocks[j]][..m],
                        one,
                        &scratch.weight,
                        others.as_slice(),
                        &mut scratch.prod,
                    );
                }
            }
        }
        for row in scratch.acc[0][..m].chunks(shape.width) {
            for (b, g) in bias_grad.iter_mut().zip(row) {
                *b += *g;
            }
        }
        for (out, acc) in outs.iter_mut().zip(&scratch.acc) {
            out[offset..offset + m].write_copy_of_slice(&acc[..m]);
        }
        offset += m;
    }
    bias_grad
}

/// Rows of every stream per parallel task: about [`TASK`] elements in all ([`NARROW_TASK`] for
/// narrow layers) but at least
/// [`MIN_TASK_ROWS`], a multiple of the thread count when there are enough points (three tasks
/// on two threads take two rounds, four of the same total size take two shorter ones), and
/// tasks of (nearly) equal size.
fn rows_per_task(shape: Stacked, streams: usize) -> usize {
    rows_per_task_on(shape, streams, rayon::current_num_threads())
}

/// [`rows_per_task`] for `threads` threads.
fn rows_per_task_on(shape: Stacked, streams: usize, threads: usize) -> usize {
    let total = shape.per_stream() * streams;
    let threads = threads.max(1);
    let task = if shape.width <= NARROW_WIDTH {
        NARROW_TASK
    } else {
        TASK
    };
    let by_size = total.div_ceil(task);
    let by_rows = shape.points.div_ceil(MIN_TASK_ROWS);
    let tasks = by_size.min(by_rows).max(1).div_ceil(threads) * threads;
    shape.points.div_ceil(tasks.min(shape.points).max(1)).max(1)
}

/// Splits a stacked `[streams · points, cols]` buffer into per-task groups holding the same
/// `rows` rows of every stream.
fn split_tasks<E>(
    buffer: &mut [E],
    points: usize,
    cols: usize,
    streams: usize,
    rows: usize,
) -> Vec<Vec<&mut [E]>> {
    let per_stream = points * cols;
    let chunk = (rows * cols).max(1);
    let tasks = per_stream.div_ceil(chunk);
    let mut groups: Vec<Vec<&mut [E]>> = (0..tasks).map(|_| Vec::with_capacity(streams)).collect();
    for stream in buffer.chunks_mut(per_stream.max(1)).take(streams) {
        for (t, part) in stream.chunks_mut(chunk).enumerate() {
            groups[t].push(part);
        }
    }
    groups
}

/// Fused layer forward: the activated stacked jet `h = σ(z + bias)` (bias on the value rows
/// only) and its product `h · weight` with the next layer's weight.
///
/// `z` is `[streams · points, width]` row-major, `bias` is `[width]`, `weight` is
/// `[width, next]`. Each task activates its rows of every stream and multiplies them at once,
/// while they are still in cache; `h` is kept for the backward's weight gradient.
pub fn layer_forward<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    z: &[E],
    bias: &[E],
    weight: MatRef<'_, E>,
) -> (Vec<E>, Vec<E>) {
    let streams = program.streams;
    assert_eq!(z.len(), streams * shape.per_stream(), "stacked jet shape");
    assert_eq!(weight.rows(), shape.width, "next weight's rows");
    debug_assert_eq!(program.terms.len() + 1, streams);
    let next = weight.cols();
    let rows = rows_per_task(shape, streams);
    let width = shape.width;
    let fill =
        |h: &mut [MaybeUninit<E>], out: &mut [MaybeUninit<E>]| {
            let h_tasks = split_tasks(h, shape.points, width, streams, rows);
            let out_tasks = split_tasks(out, shape.points, next, streams, rows);
            h_tasks.into_par_iter().zip(out_tasks).enumerate().for_each(
                |(t, (mut hs, mut outs))| {
                    forward_task(program, shape, z, bias, t * rows * width, &mut hs);
                    for (h, out) in hs.iter().zip(outs.iter_mut()) {
                        // SAFETY: `forward_task` wrote every element of its ranges (see below).
                        #[allow(unsafe_code)]
                        let h = unsafe { h.assume_init_ref() };
                        matmul_to(out, MatRef::row_major(h, h.len() / width, width), weight);
                    }
                },
            );
        };
    // SAFETY: `split_tasks` hands out every element of both buffers (`streams · points` rows
    // each), with the same rows of `h` and `out` in each task. `forward_task` writes each
    // element of every range of `h` it is given: the value stream from the activation and each
    // other stream (one per program term list) from its accumulator; `matmul_to` then writes
    // every element of the matching range of `out`.
    #[allow(unsafe_code)]
    let (h, (out, ())) = unsafe {
        written_by(z.len(), |h| {
            written_by(streams * shape.points * next, |out| fill(h, out))
        })
    };
    (h, out)
}

/// A buffer of `len` elements initialised by `fill`, with no zero-filling first (the outputs
/// here are large and every element is written by the kernels anyway).
///
/// # Safety
/// `fill` must initialise every element of the slice it is given (or panic).
#[allow(unsafe_code)]
pub(crate) unsafe fn written_by<E, R>(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<E>]) -> R,
) -> (Vec<E>, R) {
    let mut out = Vec::with_capacity(len);
    let result = fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the first `len` elements were initialised by `fill`, as the caller guarantees.
    unsafe { out.set_len(len) };
    (out, result)
}

/// Gradients of one fused layer [`layer_forward`]: with respect to `z` (stacked like it), to
/// `bias` and to `weight`, given `h` from the forward and `grad`, the gradient of the product
/// (`[streams · points, next]`).
///
/// Each task forms its rows of the activated jet's gradient `grad · weightᵀ` in cache, runs the
/// activation's backward on them and adds its rows' share `hᵀ · grad` to the weight gradient.
pub fn layer_backward<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    (z, bias, weight): (&[E], &[E], MatRef<'_, E>),
    h: &[E],
    grad: &[E],
) -> LayerGradients<E> {
    let streams = program.streams;
    let width = shape.width;
    let next = weight.cols();
    assert_eq!(z.len(), streams * shape.per_stream(), "stacked jet shape");
    assert_eq!(h.len(), z.len(), "activated jet shape");
    assert_eq!(weight.rows(), width, "next weight's rows");
    assert_eq!(grad.len(), streams * shape.points * next, "gradient shape");
    let rows = rows_per_task(shape, streams);
    let per_stream = shape.per_stream();
    let task = |t: usize, outs: &mut Vec<&mut [MaybeUninit<E>]>| -> (Vec<E>, Vec<E>) {
        let len = outs[0].len();
        let task_rows = len / width.max(1);
        let first_row = t * rows;
        let grad_rows = |s: usize| {
            let at = (s * shape.points + first_row) * next;
            MatRef::row_major(&grad[at..at + task_rows * next], task_rows, next)
        };
        // SAFETY: the closure writes all `streams · len` elements, `len` per stream.
        #[allow(unsafe_code)]
        let (grad_h, ()) = unsafe {
            written_by(streams * len, |buffer| {
                for (s, part) in buffer.chunks_mut(len.max(1)).enumerate() {
                    matmul_to(part, grad_rows(s), weight.t());
                }
            })
        };
        let grad_h = (&grad_h[..], len);
        let bias_grad = backward_task(program, shape, z, bias, grad_h, first_row * width, outs);
        let mut weight_grad = vec![E::default(); width * next];
        for s in 0..streams {
            let at = s * per_stream + first_row * width;
            let h_rows = MatRef::row_major(&h[at..at + len], task_rows, width);
            matmul_add(&mut weight_grad, h_rows.t(), grad_rows(s));
        }
        (bias_grad, weight_grad)
    };
    let fill = |out: &mut [MaybeUninit<E>]| {
        let parts: Vec<(Vec<E>, Vec<E>)> = split_tasks(out, shape.points, width, streams, rows)
            .into_par_iter()
            .enumerate()
            .map(|(t, mut outs)| task(t, &mut outs))
            .collect();
        let mut sums = (vec![E::default(); width], vec![E::default(); width * next]);
        for (b, w) in &parts {
            add_into(&mut sums.0, b);
            add_into(&mut sums.1, w);
        }
        sums
    };
    // SAFETY: `split_tasks` hands out every element of the buffer, and `backward_task` writes
    // each element of every range it is given, all streams from their accumulators.
    #[allow(unsafe_code)]
    let (z_grad, (bias_grad, weight_grad)) = unsafe { written_by(z.len(), fill) };
    LayerGradients {
        z: z_grad,
        bias: bias_grad,
        weight: weight_grad,
    }
}

/// The activated stacked jet `h = σ(z + bias)` alone (bias on the value rows only), without
/// the next layer's product: for the last hidden layer of a network whose output is wider than
/// it, whose streams are cut apart before the output product (where they are narrow).
pub fn activation_forward<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    z: &[E],
    bias: &[E],
) -> Vec<E> {
    let streams = program.streams;
    assert_eq!(z.len(), streams * shape.per_stream(), "stacked jet shape");
    let rows = rows_per_task(shape, streams);
    let width = shape.width;
    let fill = |h: &mut [MaybeUninit<E>]| {
        split_tasks(h, shape.points, width, streams, rows)
            .into_par_iter()
            .enumerate()
            .for_each(|(t, mut hs)| {
                forward_task(program, shape, z, bias, t * rows * width, &mut hs);
            });
    };
    // SAFETY: `split_tasks` hands out every element of the buffer, and `forward_task` writes
    // each element of every range it is given.
    #[allow(unsafe_code)]
    let (h, ()) = unsafe { written_by(z.len(), fill) };
    h
}

/// Gradients of [`activation_forward`] with respect to `z` (stacked like it) and to `bias`,
/// given `grad`, the gradient of the activated jet (`[streams · points, width]`).
pub fn activation_backward<E: Real>(
    program: &JetActivation,
    shape: Stacked,
    (z, bias): (&[E], &[E]),
    grad: &[E],
) -> (Vec<E>, Vec<E>) {
    let streams = program.streams;
    let width = shape.width;
    let per_stream = shape.per_stream();
    assert_eq!(z.len(), streams * per_stream, "stacked jet shape");
    assert_eq!(grad.len(), z.len(), "gradient shape");
    let rows = rows_per_task(shape, streams);
    let fill = |out: &mut [MaybeUninit<E>]| {
        let parts: Vec<Vec<E>> = split_tasks(out, shape.points, width, streams, rows)
            .into_par_iter()
            .enumerate()
            .map(|(t, mut outs)| {
                let start = t * rows * width;
                let grad = (&grad[start..], per_stream);
                backward_task(program, shape, z, bias, grad, start, &mut outs)
            })
            .collect();
        let mut sum = vec![E::default(); width];
        for part in &parts {
            add_into(&mut sum, part);
        }
        sum
    };
    // SAFETY: as in [`layer_backward`]: every element is handed out once and written.
    #[allow(unsafe_code)]
    let (z_grad, bias_grad) = unsafe { written_by(z.len(), fill) };
    (z_grad, bias_grad)
}

/// Fewest rows of a parallel task of [`dense_forward`] and [`dense_backward`].
const DENSE_TASK_ROWS: usize = 64;

/// Row tasks of a product with `rows` rows: a multiple of the thread count, at least
/// [`DENSE_TASK_ROWS`] rows each where there are enough.
fn dense_rows_per_task(rows: usize) -> usize {
    even_row_tasks(rows, DENSE_TASK_ROWS)
}

/// Rows per task when `rows` rows are split into tasks of at least `fewest` rows where there
/// are enough, as many tasks as a multiple of the thread count, of (nearly) equal size.
pub(crate) fn even_row_tasks(rows: usize, fewest: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let tasks = rows.div_ceil(fewest).div_ceil(threads) * threads;
    rows.div_ceil(tasks.min(rows).max(1)).max(1)
}

/// `a · b` for `a: [m, k]` (row-major, or a transposed view), `b: [k, n]`: row tasks in
/// parallel, each one single-threaded `gemm` call. For the small inner dimensions of a network (`k` = 20-200)
/// this ran 3-7 times faster than Burn's `flex` product on the 2-core machine
/// (`[250, 50] · [50, 501]`: 0.15 against 0.8 ms).
pub fn dense_forward<E: Real>(a: MatRef<'_, E>, b: MatRef<'_, E>) -> Vec<E> {
    let (m, n) = (a.rows(), b.cols());
    let rows = dense_rows_per_task(m);
    let fill = |out: &mut [MaybeUninit<E>]| {
        out.par_chunks_mut((rows * n).max(1))
            .enumerate()
            .for_each(|(t, out)| {
                let first = t * rows;
                let task_rows = out.len() / n.max(1);
                matmul_to(out, a.row_range(first, task_rows), b);
            });
    };
    // SAFETY: the chunks cover the buffer and `matmul_to` writes every element of each.
    #[allow(unsafe_code)]
    let (out, ()) = unsafe { written_by(m * n, fill) };
    out
}

/// Gradients of [`dense_forward`]: `grad · bᵀ` (`[m, k]`) and `aᵀ · grad` (`[k, n]`), the two
/// side by side, each over row tasks of its own result. The weight gradient's tasks each
/// contract over all `m` rows and need no partial sums; summing per-task partial products over
/// the input's row tasks (as a layer's tasks do) was 5-10 % slower for `[250, 50] · [50, 501]`
/// and `[600, 200] · [200, 101]`.
pub fn dense_backward<E: Real>(
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    grad: MatRef<'_, E>,
) -> (Vec<E>, Vec<E>) {
    rayon::join(|| dense_forward(grad, b.t()), || dense_forward(a.t(), grad))
}

/// `sum += part`, element by element. Partial sums of parallel tasks are collected in task
/// order and added with this one after another: rayon's `reduce` would combine them in an order
/// set by work stealing, and floating-point addition is not associative, so the same problem and
/// seed would not give the same parameters bit for bit.
fn add_into<E: Real>(sum: &mut [E], part: &[E]) {
    for (x, y) in sum.iter_mut().zip(part) {
        *x += *y;
    }
}

/// Gradients of one fused layer, row-major like the tensors they belong to.
#[derive(Debug)]
pub struct LayerGradients<E> {
    /// Of the stacked pre-activation jet, `[streams · points, width]`.
    pub z: Vec<E>,
    /// Of the bias, `[width]`.
    pub bias: Vec<E>,
    /// Of the next layer's weight, `[width, next]`.
    pub weight: Vec<E>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_in_f32() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = (x as f64).exp();
            let rel = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }

    #[test]
    fn tasks_are_about_task_size_a_multiple_of_the_threads_and_not_too_short() {
        let rows = |points, width, streams, threads| {
            rows_per_task_on(Stacked { points, width }, streams, threads)
        };
        // Continuous Burgers: 800,000 elements make 13 tasks of 64k (a narrow layer), rounded
        // up to 14; as wide, 25 tasks of 32k, rounded up to 26.
        assert_eq!(rows(10_000, 20, 4, 2), 715);
        assert_eq!(rows(10_000, 40, 2, 2), 385);
        // Allen-Cahn's 200 points × 200 columns × 3 streams: 2 tasks of 100 rows, not 4 of 50.
        assert_eq!(rows(200, 200, 3, 2), 100);
        assert_eq!(rows(1_000, 200, 3, 2), 125);
        // Three tasks' worth on two threads become four shorter ones.
        assert_eq!(rows(600, 50, 3, 2), 150);
        // Fewer points than threads: one row each.
        assert_eq!(rows(3, 20, 2, 16), 1);
    }

    #[test]
    fn derivative_polynomials_of_tanh() {
        let set = DerivativeSet::values_only();
        let p = JetActivation::new(FusedActivation::Tanh, &set);
        // tanh'' = -2t + 2t³
        assert_eq!(p.polynomials[2], vec![0.0, -2.0, 0.0, 2.0]);
    }
}
