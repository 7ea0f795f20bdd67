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

use multiversion::multiversion;
use rayon::prelude::*;

use super::Real;
use super::matmul::{MatRef, matmul_add, matmul_to};
use super::rule::{JetActivation, Slices, Term};
use super::tasks::{add_into, written_by};
use crate::activation::Activation;
use crate::partial::MAX_ORDER;

/// Target elements per inner block (whole rows, kept in per-task buffers). Measured on the
/// 2-core machine: 1024 beats 256 by 5-15 % (Navier-Stokes, with its many streams, the most)
/// and ties with 2048.
pub(crate) const BLOCK: usize = 1024;

/// Target elements per parallel task, all streams together: a task's rows of `z`, of the
/// activated jet and of its product with the next weight stay in the core's L2 cache between
/// the activation and the product.
pub(crate) const TASK: usize = 32_768;

/// [`TASK`] for layers at most [`NARROW_WIDTH`] wide. Their products are so cheap that the
/// per-call packing of the product kernel, once per task and stream, outweighs the cache
/// misses of larger tasks. Measured on the 2-core machine, steps in alternate windows in one
/// process, against `TASK` (width 20): continuous Burgers forward 1.04× faster (and 1.04× with
/// four times `TASK`), Navier-Stokes 1.08×, continuous Burgers inverse 1.01×. Wider layers
/// were no faster with it: Schrödinger (width 100) 0.98×, the width-50 problems 0.99-1.02×.
pub(crate) const NARROW_TASK: usize = 2 * TASK;

/// Widest layer that gets [`NARROW_TASK`].
pub(crate) const NARROW_WIDTH: usize = 32;

/// Fewest rows per stream in a parallel task. Each task multiplies its rows by the whole next
/// weight, which the matrix-product kernel packs anew per call: wide layers (Allen-Cahn's
/// 200 × 200) made tasks of about 50 rows, and packing was a tenth of the step. With tasks of
/// 100 rows, Allen-Cahn's step took 5 % less CPU time and 2 % less wall time on the 2-core
/// machine (16.5 against 17.5 CPU-ms, four alternating runs each).
pub(crate) const MIN_TASK_ROWS: usize = 128;

/// Shape of a stacked jet tensor `[streams · points, width]`.
#[derive(Clone, Copy, Debug)]
pub struct Stacked {
    /// Points per stream.
    pub points: usize,
    /// Columns.
    pub width: usize,
}

impl Stacked {
    pub(crate) fn per_stream(&self) -> usize {
        self.points * self.width
    }

    /// Elements per inner block: whole rows, about [`BLOCK`].
    pub(crate) fn block(&self) -> usize {
        (BLOCK / self.width).max(1) * self.width
    }
}

/// Per-task scratch buffers of one block each.
pub(crate) struct Scratch<E> {
    /// `σ^(k)` for `k = 0..=MAX_ORDER + 1`.
    pub(crate) d: Vec<Vec<E>>,
    pub(crate) pre: Vec<E>,
    pub(crate) prod: Vec<E>,
    pub(crate) weight: Vec<E>,
    /// One accumulator block per stream: results are summed here, in cache, and then written
    /// once into the (uninitialised) output.
    pub(crate) acc: Vec<Vec<E>>,
    pub(crate) polynomials: Vec<Vec<E>>,
}

impl<E: Real> Scratch<E> {
    pub(crate) fn new(program: &JetActivation, block: usize) -> Self {
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
    pub(crate) fn derivatives(
        &mut self,
        activation: Activation,
        order: usize,
        z: &[E],
        bias: &[E],
    ) {
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
            Activation::Sin => {
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
            Activation::Swish => unreachable!("JetActivation::new refuses swish"),
            Activation::Tanh | Activation::Sigmoid => {
                if activation == Activation::Tanh {
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
pub(crate) fn accumulate<E: Real>(
    out: &mut [E],
    c: E,
    d: &[E],
    factors: &[&[E]],
    scratch: &mut [E],
) {
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
pub(crate) fn forward_low_order_stream<E: Real>(
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
pub(crate) fn forward_task<E: Real>(
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
pub(crate) fn backward_low_order_term<E: Real>(
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
pub(crate) fn backward_task<E: Real>(
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
pub(crate) fn rows_per_task(shape: Stacked, streams: usize) -> usize {
    rows_per_task_on(shape, streams, rayon::current_num_threads())
}

/// [`rows_per_task`] for `threads` threads.
pub(crate) fn rows_per_task_on(shape: Stacked, streams: usize, threads: usize) -> usize {
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
pub(crate) fn split_tasks<E>(
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
}
