//! The fused jet layer on Burn's CubeCL backend (CUDA, wgpu): one unrolled CubeCL kernel for the
//! jet activation and one for its backward, around the backend's own matrix products.
//!
//! A thread owns one element (point, column) of every stream of the stacked jet, so the rule
//! needs no communication between threads. The rule's products ([`UnrolledRule`]) are comptime
//! parameters: CubeCL compiles one straight-line kernel per derivative set, with the counts,
//! polynomial coefficients and stream offsets as constants. The kernels allocate nothing but
//! their outputs and upload nothing, so a captured training step replays them as they are.

use std::sync::Arc;

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, Slice};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::{empty_device_contiguous_dtype, empty_device_dtype};
use burn_cubecl::tensor::CubeTensor;
use cubecl::zspace::{Strides, metadata::Metadata};
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use super::JetLayerOps;
use crate::activation::Activation;
use crate::kernels::JetActivation;
use crate::kernels::unrolled::{Pass, UnrolledRule};

/// `σ(pre)`.
#[cube]
fn activate<F: Float>(pre: F, #[comptime] activation: Activation) -> F {
    if comptime!(activation == Activation::Tanh) {
        pre.tanh()
    } else if comptime!(activation == Activation::Sigmoid) {
        F::new(1.0) / (F::new(1.0) + (F::new(0.0) - pre).exp())
    } else {
        pre.sin()
    }
}

/// `σ^(order)(pre)` from `value = σ(pre)`: a polynomial in `value` with constant coefficients
/// (`tanh`, sigmoid) or `±sin`/`±cos` (sine).
#[cube]
fn derivative<F: Float>(
    pre: F,
    value: F,
    #[comptime] activation: Activation,
    #[comptime] order: usize,
    #[comptime] coefficients: Vec<i64>,
) -> F {
    let mut out = F::new(0.0);
    if comptime!(activation == Activation::Sin) {
        let phase = comptime!(order % 4);
        if comptime!(phase == 0) {
            out = value;
        } else if comptime!(phase == 1) {
            out = pre.cos();
        } else if comptime!(phase == 2) {
            out = F::new(0.0) - value;
        } else {
            out = F::new(0.0) - pre.cos();
        }
    } else {
        let terms = comptime!(coefficients.len());
        #[unroll]
        for j in 0..terms {
            let c = comptime!(coefficients[terms - 1 - j] as f32);
            out = out * value + F::new(c);
        }
    }
    out
}

/// Every stream's sum of the products of `pass`, for the element `(point, column)` numbered
/// `ABSOLUTE_POS` of each stream: `out[s] = Σ count · σ^(order) · Π z[f]`, each product also
/// times `grad[g]` in the backward. The forward gives the activated jet, the backward the
/// gradient of `z` from the activated jet's gradient `grad` (the forward is given `z` there and
/// never reads it).
///
/// Stream `s` of a stacked tensor is its rows `s · points .. (s + 1) · points`. Every tensor is
/// read and written through its own row stride with unit column stride, never as a dense
/// `[rows · width]` array: CUDA's allocator pads rows ("pitched" layouts: a 20-wide `f32` row
/// takes 32), so the output the runtime allocates, and inputs coming from its products, have a
/// row stride larger than their width.
#[cube(launch)]
fn jet_products_kernel<F: Float>(
    z: &Tensor<F>,
    bias: &Tensor<F>,
    grad: &Tensor<F>,
    out: &mut Tensor<F>,
    points: usize,
    width: usize,
    #[comptime] rule: UnrolledRule,
    #[comptime] pass: Pass,
    #[define(F)] _dtype: ElemType,
) {
    let i = ABSOLUTE_POS;
    if i >= points * width {
        terminate!();
    }
    let point = i / width;
    let column = i % width;
    let z_rows = z.stride(0);
    let out_rows = out.stride(0);
    let pre = z[point * z_rows + column] + bias[column];
    let value = activate::<F>(pre, comptime!(rule.activation));
    let streams = comptime!(rule.streams);
    #[unroll]
    for s in 0..streams {
        let products = comptime!(rule.sums(pass)[s].len());
        let mut sum = F::new(0.0);
        #[unroll]
        for p in 0..products {
            let product = comptime!(rule.sums(pass)[s][p].clone());
            let order = comptime!(product.order);
            let coefficients = comptime!(rule.polynomials.get(order).cloned().unwrap_or_default());
            let mut term = F::new(comptime!(product.count as f32))
                * derivative::<F>(pre, value, comptime!(rule.activation), order, coefficients);
            if comptime!(pass == Pass::Backward) {
                let gradient = comptime!(product.gradient);
                term *= grad[(gradient * points + point) * grad.stride(0) + column];
            }
            let factors = comptime!(product.factors.len());
            #[unroll]
            for f in 0..factors {
                let stream = comptime!(product.factors[f]);
                term *= z[(stream * points + point) * z_rows + column];
            }
            sum += term;
        }
        out[(s * points + point) * out_rows + column] = sum;
    }
}

/// `t` as the kernel reads it: as it is when its rows are laid out one after another with unit
/// column stride (dense, pitched, or a column view), else a contiguous copy. The unit tests
/// pad the rows of every input too (see [`output_rows`]).
fn row_major(t: CubeTensor) -> CubeTensor {
    let (shape, strides) = (t.meta.shape(), t.meta.strides());
    let readable = shape.len() == 2
        && (strides[1] == 1 || shape[1] == 1)
        && (strides[0] >= shape[1] || shape[0] == 1);
    let t = if readable && !t.meta.is_tiled() {
        t
    } else {
        into_contiguous(t)
    };
    if cfg!(test) { padded_rows(t) } else { t }
}

/// A copy of `t: [rows, width]` as a column view of a tensor whose rows are longer by the
/// memory alignment: what a pitched input looks like, on a backend that never pitches.
fn padded_rows(t: CubeTensor) -> CubeTensor {
    let shape = t.meta.shape().clone();
    let (rows, width) = (shape[0], shape[1]);
    let pad = (t.client.properties().memory.alignment as usize / t.dtype.size()).max(1);
    let wide = empty_device_contiguous_dtype(
        t.client.clone(),
        t.device.clone(),
        Shape::new([rows, width + pad]),
        t.dtype,
    );
    let columns = [Slice::from(0..rows), Slice::from(0..width)];
    let wide = CubeBackend::float_slice_assign(wide, &columns, t);
    let view = CubeBackend::float_slice(wide, &columns);
    assert_eq!(
        view.meta.strides()[0],
        width + pad,
        "a padded view, not a copy"
    );
    view
}

/// The kernel's output `[rows, width]`: laid out as the runtime lays out a new tensor (its
/// rows pitched on CUDA, dense on wgpu). The unit tests instead pad every row by a few
/// elements, so that a kernel that ignored row strides would fail on any backend (lavapipe's
/// allocator never pads).
fn output_rows(like: &CubeTensor, shape: Shape) -> CubeTensor {
    let (client, device, dtype) = (like.client.clone(), like.device.clone(), like.dtype);
    if cfg!(test) {
        let pitch = shape[1] + TEST_ROW_PADDING;
        let handle = client.empty(shape[0] * pitch * dtype.size());
        let strides = Strides::new(&[pitch, 1]);
        return CubeTensor::new(client, handle, Metadata::new(shape, strides), device, dtype);
    }
    empty_device_dtype(client, device, shape, dtype)
}

/// Elements added to every output row in the unit tests (see [`output_rows`]).
const TEST_ROW_PADDING: usize = 3;

/// The products of `pass` over a stacked jet `z: [streams · points, width]`: the activated jet
/// `σ(z + bias)` (forward, no `grad`) or, given the activated jet's gradient, that of `z`.
fn jet_products(
    pass: Pass,
    z: CubeTensor,
    bias: CubeTensor,
    grad: Option<CubeTensor>,
    rule: &UnrolledRule,
) -> CubeTensor {
    let (z, bias) = (row_major(z), into_contiguous(bias));
    let grad = grad.map_or_else(|| z.clone(), row_major);
    let shape = z.meta.shape().clone();
    let width = shape[1];
    let points = shape[0] / rule.streams;
    let elements = points * width;
    let client = z.client.clone();
    let dtype = z.dtype;
    let out = output_rows(&z, shape);
    let cube_dim = CubeDim::new(&client, elements);
    let cube_count = calculate_cube_count_elemwise(&client, elements, cube_dim);
    jet_products_kernel::launch(
        &client,
        cube_count,
        cube_dim,
        z.into_tensor_arg(),
        bias.into_tensor_arg(),
        grad.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        points,
        width,
        rule.clone(),
        pass,
        dtype_to_storage_type(dtype),
    );
    out
}

impl JetLayerOps for CubeBackend {
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        Self::jet_layer_forward(z, bias, weight, program).1
    }

    fn jet_layer_forward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let h = jet_products(Pass::Forward, z, bias, None, program.unrolled());
        let out = Self::float_matmul(h.clone(), weight);
        (h, out)
    }

    fn jet_layer_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        h: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let rule = program.unrolled();
        let grad_weight = transposed_product(h, grad.clone());
        let grad_h = Self::float_matmul(grad, Self::float_transpose(weight));
        let grad_z = jet_products(Pass::Backward, z, bias, Some(grad_h), rule);
        let grad_bias = value_column_sums(grad_z.clone(), rule.streams);
        (grad_z, grad_bias, grad_weight)
    }

    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        jet_products(Pass::Forward, z, bias, None, program.unrolled())
    }

    fn jet_activation_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let rule = program.unrolled();
        let grad_z = jet_products(Pass::Backward, z, bias, Some(grad), rule);
        let grad_bias = value_column_sums(grad_z.clone(), rule.streams);
        (grad_z, grad_bias)
    }

    /// The backend's own product (its autotuned matmul kernels).
    fn dense(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(a, b)
    }

    fn dense_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let grad_a = Self::float_matmul(grad.clone(), Self::float_transpose(b));
        let grad_b = transposed_product(a, grad);
        (grad_a, grad_b)
    }

    fn dense_weight_gradient(a: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        transposed_product(a, grad)
    }
}

/// The bias enters the value stream only: its gradient is that stream's column sums.
fn value_column_sums(grad_z: CubeTensor, streams: usize) -> CubeTensor {
    let shape = grad_z.meta.shape().clone();
    let points = shape[0] / streams;
    let value_rows =
        CubeBackend::float_slice(grad_z, &[Slice::from(0..points), Slice::from(0..shape[1])]);
    column_sums(value_rows)
}

/// Fewest rows of one block of a split row reduction ([`RowSplit`]).
const MIN_BLOCK_ROWS: usize = 256;

/// Most blocks of a split row reduction: about one per multiprocessor of a large GPU (an H200
/// has 132).
const MAX_BLOCKS: usize = 128;

/// How a reduction over the rows of a `[rows, cols]` tensor is split across the device:
/// `blocks` blocks of `block_rows` rows each, reduced side by side, then the `tail` rows left
/// after them (fewer than `blocks`) on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RowSplit {
    blocks: usize,
    block_rows: usize,
    tail: usize,
}

impl RowSplit {
    /// The split of `rows` rows: up to [`MAX_BLOCKS`] blocks of at least [`MIN_BLOCK_ROWS`]
    /// rows, an exact divisor of `rows` (no tail) when one gives at least a quarter of that
    /// many blocks, else as many blocks as fit and a tail. `None`: too few rows to split.
    fn of(rows: usize) -> Option<Self> {
        let most = MAX_BLOCKS.min(rows / MIN_BLOCK_ROWS);
        if most < 2 {
            return None;
        }
        let blocks = ((most / 4).max(2)..=most)
            .rev()
            .find(|b| rows.is_multiple_of(*b))
            .unwrap_or(most);
        Some(Self {
            blocks,
            block_rows: rows / blocks,
            tail: rows % blocks,
        })
    }

    /// Rows in the blocks (the tail starts here).
    fn head(&self) -> usize {
        self.blocks * self.block_rows
    }

    /// The blocks of `t: [rows, cols]` as a view `[blocks, block_rows, cols]` of its buffer
    /// (its rows read through their stride, pitched or not; the tail left out).
    fn blocks_of(&self, t: &CubeTensor) -> CubeTensor {
        let (cols, row_stride) = (t.meta.shape()[1], t.meta.strides()[0]);
        let shape = Shape::new([self.blocks, self.block_rows, cols]);
        view(
            t,
            shape,
            Strides::new(&[self.block_rows * row_stride, row_stride, 1]),
        )
    }

    /// The tail rows of `t: [rows, cols]`.
    fn tail_of(&self, t: CubeTensor) -> CubeTensor {
        let [rows, cols] = t.meta.shape().dims::<2>();
        CubeBackend::float_slice(t, &[Slice::from(self.head()..rows), Slice::from(0..cols)])
    }
}

/// `t` without its leading dimension of size one (a sum over blocks), as a view of the same
/// buffer. Burn's reshape copies a tensor whose rows are pitched (CUDA's layout) when it drops
/// a dimension; dropping a unit dimension never needs a copy.
fn without_leading_unit(t: CubeTensor) -> CubeTensor {
    let (shape, strides) = (t.meta.shape(), t.meta.strides());
    assert_eq!(shape[0], 1, "a leading dimension of size one");
    view(
        &t,
        Shape::from(shape[1..].to_vec()),
        Strides::new(&strides[1..]),
    )
}

/// `t`'s buffer read with another shape and strides (which must stay inside it).
fn view(t: &CubeTensor, shape: Shape, strides: Strides) -> CubeTensor {
    CubeTensor::new(
        t.client.clone(),
        t.handle.clone(),
        Metadata::new(shape, strides),
        t.device.clone(),
        t.dtype,
    )
}

/// `aᵀ · b` for `a: [k, m]` and `b: [k, n]`: a layer's weight gradient, whose inner dimension
/// `k` is every row of a stacked jet (tens of thousands) while `m` and `n` are layer widths.
/// As one product its `m × n` result is a tile or two, so one or two thread blocks would walk
/// all `k` rows. Split by [`RowSplit`] it is a batched product of `[blocks, m, n]` partial
/// products, one block each, summed over the blocks (split-K), plus the tail's product.
fn transposed_product(a: CubeTensor, b: CubeTensor) -> CubeTensor {
    let [k, m] = a.meta.shape().dims::<2>();
    let n = b.meta.shape().dims::<2>()[1];
    let Some(split) = RowSplit::of(k) else {
        return CubeBackend::float_matmul(CubeBackend::float_transpose(a), b);
    };
    let (a, b) = (row_major(a), row_major(b));
    let partial = CubeBackend::float_matmul(
        CubeBackend::float_swap_dims(split.blocks_of(&a), 1, 2),
        split.blocks_of(&b),
    );
    let sum = without_leading_unit(CubeBackend::float_sum_dim(partial, 0));
    debug_assert_eq!(sum.meta.shape().dims::<2>(), [m, n]);
    if split.tail == 0 {
        return sum;
    }
    let tail = CubeBackend::float_matmul(
        CubeBackend::float_transpose(split.tail_of(a)),
        split.tail_of(b),
    );
    CubeBackend::float_add(sum, tail)
}

/// Column sums `[1, n]` of `t: [k, n]`, in two stages when `k` is long: per block of rows
/// ([`RowSplit`]), then over the blocks (and the tail), instead of one reduction walking all
/// `k` rows for each of a layer's few columns.
fn column_sums(t: CubeTensor) -> CubeTensor {
    let [k, n] = t.meta.shape().dims::<2>();
    let Some(split) = RowSplit::of(k) else {
        return CubeBackend::float_sum_dim(t, 0);
    };
    let t = row_major(t);
    let per_block = CubeBackend::float_sum_dim(split.blocks_of(&t), 1);
    let sum = without_leading_unit(CubeBackend::float_sum_dim(per_block, 0));
    debug_assert_eq!(sum.meta.shape().dims::<2>(), [1, n]);
    if split.tail == 0 {
        return sum;
    }
    CubeBackend::float_add(sum, CubeBackend::float_sum_dim(split.tail_of(t), 0))
}

/// The CubeCL kernels against the CPU fused layer: the product and the gradients of `z`,
/// `bias` and `weight` through Burn's autodiff, in `f32`. With the `wgpu` feature on a wgpu
/// device (any Vulkan driver; Mesa's lavapipe on a machine without a GPU), with `cuda` alone on
/// the GPU, skipped with a message where there is none.
#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;
    use crate::backend::to_vec;
    use crate::partial::{DerivativeSet, Partial};
    use crate::sampling::rng_from_seed;
    use rand::Rng;

    /// Seeded uniform values in (-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rng_from_seed(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// A test input `(values, shape)` as a tensor on `device`.
    fn tensor_on(device: &Device, (values, shape): (&[f32], [usize; 2])) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    /// The outputs of `layer(z, bias, weight)`, then the gradients of `z`, `bias` and `weight`
    /// of `Σ r ⊙ (its last output)`.
    fn outputs_and_gradients(
        device: &Device,
        inputs: [(&[f32], [usize; 2]); 4],
        layer: impl Fn(&Tensor<2>, &Tensor<2>, &Tensor<2>) -> Vec<Tensor<2>>,
    ) -> Vec<Vec<f64>> {
        let [z, bias, weight, r] = inputs.map(|input| tensor_on(device, input));
        let (z, bias, weight) = (z.require_grad(), bias.require_grad(), weight.require_grad());
        let outputs = layer(&z, &bias, &weight);
        let last = outputs.last().expect("a layer has an output").clone();
        let grads = last.mul(r).sum().backward();
        let mut all: Vec<Vec<f64>> = outputs.iter().map(to_vec).collect();
        for t in [&z, &bias, &weight] {
            all.push(t.grad(&grads).map(|g| to_vec(&g)).unwrap_or_default());
        }
        all
    }

    /// The product `jet_layer(z, bias, w)` and the gradients of `z`, `bias`, `w`.
    fn layer_and_gradients(
        device: &Device,
        program: &Arc<JetActivation>,
        inputs: [(&[f32], [usize; 2]); 4],
    ) -> Vec<Vec<f64>> {
        outputs_and_gradients(device, inputs, |z, bias, weight| {
            let out = crate::backend::jet_layer(z.clone(), bias.clone(), weight.clone(), program);
            vec![out]
        })
    }

    /// `h = jet_activation(z, bias)`, `dense(h, w)` and the gradients of `z`, `bias`, `w`
    /// through both.
    fn activation_then_dense(
        device: &Device,
        program: &Arc<JetActivation>,
        inputs: [(&[f32], [usize; 2]); 4],
    ) -> Vec<Vec<f64>> {
        outputs_and_gradients(device, inputs, |z, bias, weight| {
            let h = crate::backend::jet_activation(z.clone(), bias.clone(), program);
            let out = crate::backend::dense(h.clone(), weight.clone());
            vec![h, out]
        })
    }

    /// `dense(z, w)` of an input that needs no gradient (the network's stacked inputs) and the
    /// gradient of `w` of `Σ r ⊙ dense(z, w)`: the weight gradient alone.
    fn dense_of_a_constant_input(
        device: &Device,
        inputs: [(&[f32], [usize; 2]); 4],
    ) -> Vec<Vec<f64>> {
        let [z, _, weight, r] = inputs.map(|input| tensor_on(device, input));
        let weight = weight.require_grad();
        let out = crate::backend::dense(z, weight.clone());
        let grads = out.clone().mul(r).sum().backward();
        vec![
            to_vec(&out),
            weight.grad(&grads).map(|g| to_vec(&g)).unwrap_or_default(),
        ]
    }

    /// Largest difference allowed, relative to the largest magnitude in the CPU result: `f32`
    /// kernels that sum in a different order (wgpu), or whose backend may run `f32` products on
    /// TF32 tensor cores, 10 mantissa bits (CUDA on sm_80 and later; docs/cuda.md). A kernel
    /// that reads or writes the wrong elements is off by order one.
    const TOLERANCE: f64 = if cfg!(feature = "wgpu") { 2e-5 } else { 2e-3 };

    /// `gpu` equals `cpu` to [`TOLERANCE`].
    fn assert_close(gpu: &[f64], cpu: &[f64], what: &str) {
        assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
        let scale = cpu.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let worst = gpu
            .iter()
            .zip(cpu)
            .map(|(x, y)| (x - y).abs() / scale)
            .fold(0.0f64, f64::max);
        assert!(worst < TOLERANCE, "{what} differs by {worst:e}");
    }

    /// The device the kernels are tested on.
    #[cfg(feature = "wgpu")]
    fn kernel_device() -> Option<Device> {
        Some(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice).autodiff())
    }

    /// The device the kernels are tested on.
    #[cfg(not(feature = "wgpu"))]
    fn kernel_device() -> Option<Device> {
        use crate::backend::{DeviceKind, Mode, Precision, TensorContext};
        match TensorContext::new(DeviceKind::Cuda, Precision::F32, Mode::Fused) {
            Ok(ctx) => Some(ctx.device().clone()),
            Err(why) => {
                eprintln!("skipped: no device for the CubeCL kernels ({why})");
                None
            }
        }
    }

    #[test]
    fn cube_kernels_match_the_cpu_fused_layer() {
        let Some(gpu) = kernel_device() else {
            return;
        };
        let cpu = Device::flex().autodiff();
        let partial = |c: &[usize]| Partial::from_coords(c).expect("valid partial");
        let sets = [
            DerivativeSet::values_only(),
            DerivativeSet::closure_of([partial(&[0, 0]), partial(&[1])]),
            DerivativeSet::closure_of([partial(&[0, 0, 1]), partial(&[1, 1, 1]), partial(&[2])]),
        ];
        // 37 points: the weight gradient and the bias sums in one piece; 1,024 points: split
        // into row blocks; 1,031 points (a prime): blocks and a tail (`RowSplit`).
        let (width, next) = (20, 7);
        for (activation, points) in [
            (Activation::Tanh, 37),
            (Activation::Sigmoid, 37),
            (Activation::Sin, 37),
            (Activation::Tanh, 1024),
            (Activation::Sigmoid, 1031),
        ] {
            for (k, set) in sets.iter().enumerate() {
                let program = Arc::new(JetActivation::new(activation, set));
                let rows = program.streams() * points;
                let seed = 7 * k as u64;
                let z = values(rows * width, seed + 1);
                let bias = values(width, seed + 2);
                let weight = values(width * next, seed + 3);
                let r = values(rows * next, seed + 4);
                let inputs = [
                    (&z[..], [rows, width]),
                    (&bias[..], [1, width]),
                    (&weight[..], [width, next]),
                    (&r[..], [rows, next]),
                ];
                let mut on_gpu = layer_and_gradients(&gpu, &program, inputs);
                let mut on_cpu = layer_and_gradients(&cpu, &program, inputs);
                on_gpu.extend(activation_then_dense(&gpu, &program, inputs));
                on_cpu.extend(activation_then_dense(&cpu, &program, inputs));
                on_gpu.extend(dense_of_a_constant_input(&gpu, inputs));
                on_cpu.extend(dense_of_a_constant_input(&cpu, inputs));
                let names = [
                    "product",
                    "z gradient",
                    "bias gradient",
                    "weight gradient",
                    "activation alone",
                    "its dense product",
                    "z gradient through both",
                    "bias gradient through both",
                    "weight gradient of the dense product",
                    "dense product of a constant input",
                    "its weight gradient alone",
                ];
                assert_eq!(on_gpu.len(), names.len());
                for ((a, b), name) in on_gpu.iter().zip(&on_cpu).zip(names) {
                    assert_close(
                        a,
                        b,
                        &format!("{activation:?}, {points} points, set {k}: {name}"),
                    );
                }
            }
        }
    }

    #[test]
    fn long_row_reductions_split_into_blocks_and_a_tail() {
        let split = |rows| RowSplit::of(rows).map(|s| (s.blocks, s.block_rows, s.tail));
        assert_eq!(split(511), None, "too few rows to split");
        assert_eq!(split(512), Some((2, 256, 0)));
        assert_eq!(
            split(40_400),
            Some((101, 400, 0)),
            "largest divisor up to 128"
        );
        assert_eq!(split(1 << 20), Some((128, 8_192, 0)));
        assert_eq!(
            split(65_537),
            Some((128, 512, 1)),
            "a prime: 128 blocks and a tail"
        );
        assert_eq!(split(10_007), Some((39, 256, 23)));
        for rows in [512, 777, 10_007, 40_400, 65_537] {
            let s = RowSplit::of(rows).expect("long enough to split");
            assert_eq!(s.head() + s.tail, rows);
            assert!(s.tail < s.blocks && s.block_rows >= MIN_BLOCK_ROWS && s.blocks <= MAX_BLOCKS);
        }
    }

    /// `Σ (u + f[:, ..q] · map − target)²` and the gradients of `u` and `f`.
    fn irk_misfit_and_gradients(
        device: &Device,
        inputs: [(&[f32], [usize; 2]); 4],
    ) -> Vec<Vec<f64>> {
        let [u, f, map, target] = inputs.map(|input| tensor_on(device, input));
        let (u, f) = (u.require_grad(), f.require_grad());
        let sum = crate::backend::irk_misfit(u.clone(), f.clone(), map, target);
        let grads = sum.clone().backward();
        let mut all = vec![vec![crate::backend::to_scalar(&sum)]];
        for t in [&u, &f] {
            all.push(t.grad(&grads).map(|g| to_vec(&g)).unwrap_or_default());
        }
        all
    }

    #[test]
    fn cube_kernels_match_the_cpu_irk_misfit() {
        let Some(gpu) = kernel_device() else {
            return;
        };
        let cpu = Device::flex().autodiff();
        // A forward step (one right-hand side column more than stages, a column target) and an
        // inverse one (as many as stages, a full target).
        for (rows, cols, f_cols, q, target) in [(33, 9, 9, 8, [33, 1]), (20, 6, 6, 6, [20, 6])] {
            let u = values(rows * cols, 11);
            let f = values(rows * f_cols, 12);
            let map = values(q * cols, 13);
            let t = values(target[0] * target[1], 14);
            let inputs = [
                (&u[..], [rows, cols]),
                (&f[..], [rows, f_cols]),
                (&map[..], [q, cols]),
                (&t[..], target),
            ];
            let on_gpu = irk_misfit_and_gradients(&gpu, inputs);
            let on_cpu = irk_misfit_and_gradients(&cpu, inputs);
            for ((a, b), name) in
                on_gpu
                    .iter()
                    .zip(&on_cpu)
                    .zip(["sum", "u gradient", "f gradient"])
            {
                assert_close(a, b, &format!("{rows}×{cols}: {name}"));
            }
        }
    }

    /// The kernels' CUDA C++, generated here without a GPU by CubeCL's transpiler (the code
    /// NVRTC compiles on the device), for every activation, derivative set and pass, with the
    /// compilation options the CUDA runtime sets on an H200 (sm_90: fast math, the fast
    /// `tanh`, grid constants). Each must transpile and read the row stride of every tensor
    /// it addresses, never index one as a dense array. With `PINN_DUMP_KERNELS=DIR` the sources are written
    /// there to be read.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_sources_of_the_kernels_address_rows_through_their_strides() {
        use crate::backend::ops::offline_cuda::{cuda_source, sm90, tensor_arg};
        use cubecl::ir::FloatKind;

        let (properties, options) = sm90();
        let tensor = tensor_arg;
        let partial = |c: &[usize]| Partial::from_coords(c).expect("valid partial");
        let sets = [
            DerivativeSet::values_only(),
            DerivativeSet::closure_of([partial(&[0, 0]), partial(&[1])]),
            DerivativeSet::closure_of([partial(&[0, 0, 1]), partial(&[1, 1, 1]), partial(&[2])]),
        ];
        for activation in [Activation::Tanh, Activation::Sigmoid, Activation::Sin] {
            for (k, set) in sets.iter().enumerate() {
                let program = JetActivation::new(activation, set);
                for pass in [Pass::Forward, Pass::Backward] {
                    let settings = KernelSettings::new(
                        *CubeDim::new_1d(256),
                        ExecutionMode::Checked,
                        AddressType::U32,
                    );
                    let kernel = jet_products_kernel::JetProductsKernel::new(
                        settings,
                        properties.clone(),
                        Arc::new(TargetProperties::default()),
                        tensor(),
                        tensor(),
                        tensor(),
                        tensor(),
                        (),
                        (),
                        program.unrolled().clone(),
                        pass,
                        ElemType::Float(FloatKind::F32),
                    );
                    let name = format!("{activation:?}-set{k}-{pass:?}");
                    let source = cuda_source(kernel, &options, &name);
                    // Row strides are per-launch metadata: read from the `dynamic_meta`
                    // buffer, one per tensor the pass addresses (`z`, `out`, and `grad` in the
                    // backward). A kernel that indexed `[rows · width]` densely reads none.
                    assert!(source.contains("__global__"), "{name}: no kernel\n{source}");
                    let strides = source.matches("= dynamic_meta_").count();
                    let expected = if pass == Pass::Forward { 2 } else { 3 };
                    assert_eq!(strides, expected, "{name}: row strides read\n{source}");
                }
            }
        }
    }
}
