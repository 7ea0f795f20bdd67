//! The fused jet layer's forward and backward on the `flex` CPU backend: the kernels of
//! [`crate::kernels`] over the tensors' buffers.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, TensorData};

use crate::kernels::matmul::MatRef;
use crate::kernels::{self, JetActivation, Real, Stacked};

use super::JetLayerOps;
use crate::backend::ops::{contiguous, slice};

fn shape_of(z: &FlexTensor, program: &JetActivation) -> Stacked {
    let [rows, width] = z.layout().shape().dims::<2>();
    Stacked {
        points: rows / program.streams(),
        width,
    }
}

/// The stacked jet's shape and the product's `(rows, width, next)` of one fused layer.
fn layer_dims(
    z: &FlexTensor,
    weight: &FlexTensor,
    program: &JetActivation,
) -> (Stacked, (usize, usize, usize)) {
    let shape = shape_of(z, program);
    let [width, next] = weight.layout().shape().dims::<2>();
    (shape, (shape.points * program.streams(), width, next))
}

/// The activated jet `h` and `h · weight`, both kept: `h` is what the backward's weight
/// gradient needs.
fn flex_layer_forward(
    z: FlexTensor,
    bias: FlexTensor,
    weight: FlexTensor,
    program: &JetActivation,
) -> (FlexTensor, FlexTensor) {
    let (z, bias, weight) = (contiguous(z), contiguous(bias), contiguous(weight));
    let (shape, dims) = layer_dims(&z, &weight, program);
    fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
        program: &JetActivation,
        shape: Stacked,
        (z, bias, weight): (&FlexTensor, &FlexTensor, &FlexTensor),
        (rows, width, next): (usize, usize, usize),
    ) -> (TensorData, TensorData) {
        let weight = MatRef::row_major(slice::<E>(weight), width, next);
        let (h, out) = kernels::layer_forward::<E>(program, shape, slice(z), slice(bias), weight);
        (
            TensorData::new(h, [rows, width]),
            TensorData::new(out, [rows, next]),
        )
    }
    let inputs = (&z, &bias, &weight);
    let (h, out) = match z.dtype() {
        DType::F64 => run::<f64>(program, shape, inputs, dims),
        _ => run::<f32>(program, shape, inputs, dims),
    };
    (FlexTensor::from_data(h), FlexTensor::from_data(out))
}

/// Gradients of `z`, `bias` and `weight` of `σ(z + bias) · weight` from `grad` of its output.
fn flex_layer_backward(
    (z, bias, weight, h): (FlexTensor, FlexTensor, FlexTensor, FlexTensor),
    grad: FlexTensor,
    program: &JetActivation,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = contiguous(grad);
    let (shape, dims) = layer_dims(&z, &weight, program);
    fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
        program: &JetActivation,
        shape: Stacked,
        (z, bias, weight, h, grad): (
            &FlexTensor,
            &FlexTensor,
            &FlexTensor,
            &FlexTensor,
            &FlexTensor,
        ),
        (rows, width, next): (usize, usize, usize),
    ) -> (TensorData, TensorData, TensorData) {
        let weight = MatRef::row_major(slice::<E>(weight), width, next);
        let grads = kernels::layer_backward::<E>(
            program,
            shape,
            (slice(z), slice(bias), weight),
            slice(h),
            slice(grad),
        );
        (
            TensorData::new(grads.z, [rows, width]),
            TensorData::new(grads.bias, [1, width]),
            TensorData::new(grads.weight, [width, next]),
        )
    }
    let inputs = (&z, &bias, &weight, &h, &grad);
    let (gz, gb, gw) = match z.dtype() {
        DType::F64 => run::<f64>(program, shape, inputs, dims),
        _ => run::<f32>(program, shape, inputs, dims),
    };
    (
        FlexTensor::from_data(gz),
        FlexTensor::from_data(gb),
        FlexTensor::from_data(gw),
    )
}

impl JetLayerOps for Flex {
    fn jet_layer(
        z: FlexTensor,
        bias: FlexTensor,
        weight: FlexTensor,
        program: Arc<JetActivation>,
    ) -> FlexTensor {
        flex_layer_forward(z, bias, weight, &program).1
    }

    fn jet_layer_forward(
        z: FlexTensor,
        bias: FlexTensor,
        weight: FlexTensor,
        program: Arc<JetActivation>,
    ) -> (FlexTensor, FlexTensor) {
        flex_layer_forward(z, bias, weight, &program)
    }

    fn jet_layer_backward(
        z: FlexTensor,
        bias: FlexTensor,
        weight: FlexTensor,
        h: FlexTensor,
        grad: FlexTensor,
        program: Arc<JetActivation>,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let saved = (
            contiguous(z),
            contiguous(bias),
            contiguous(weight),
            contiguous(h),
        );
        flex_layer_backward(saved, grad, &program)
    }

    fn jet_activation(z: FlexTensor, bias: FlexTensor, program: Arc<JetActivation>) -> FlexTensor {
        let (z, bias) = (contiguous(z), contiguous(bias));
        let shape = shape_of(&z, &program);
        let dims = [shape.points * program.streams(), shape.width];
        let h = match z.dtype() {
            DType::F64 => TensorData::new(
                kernels::activation_forward::<f64>(&program, shape, slice(&z), slice(&bias)),
                dims,
            ),
            _ => TensorData::new(
                kernels::activation_forward::<f32>(&program, shape, slice(&z), slice(&bias)),
                dims,
            ),
        };
        FlexTensor::from_data(h)
    }

    fn jet_activation_backward(
        z: FlexTensor,
        bias: FlexTensor,
        grad: FlexTensor,
        program: Arc<JetActivation>,
    ) -> (FlexTensor, FlexTensor) {
        let (z, bias, grad) = (contiguous(z), contiguous(bias), contiguous(grad));
        let shape = shape_of(&z, &program);
        fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
            program: &JetActivation,
            shape: Stacked,
            (z, bias, grad): (&FlexTensor, &FlexTensor, &FlexTensor),
        ) -> (TensorData, TensorData) {
            let (gz, gb) = kernels::activation_backward::<E>(
                program,
                shape,
                (slice(z), slice(bias)),
                slice(grad),
            );
            (
                TensorData::new(gz, [shape.points * program.streams(), shape.width]),
                TensorData::new(gb, [1, shape.width]),
            )
        }
        let inputs = (&z, &bias, &grad);
        let (gz, gb) = match z.dtype() {
            DType::F64 => run::<f64>(&program, shape, inputs),
            _ => run::<f32>(&program, shape, inputs),
        };
        (FlexTensor::from_data(gz), FlexTensor::from_data(gb))
    }

    fn dense(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        row_task_product(a, false, b)
    }

    fn dense_backward(a: FlexTensor, b: FlexTensor, grad: FlexTensor) -> (FlexTensor, FlexTensor) {
        let (a, b, grad) = (contiguous(a), contiguous(b), contiguous(grad));
        let [m, k] = a.layout().shape().dims::<2>();
        let [_, n] = b.layout().shape().dims::<2>();
        fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
            (a, b, grad): (&FlexTensor, &FlexTensor, &FlexTensor),
            (m, k, n): (usize, usize, usize),
        ) -> (TensorData, TensorData) {
            let (ga, gb) = kernels::dense_backward::<E>(
                MatRef::row_major(slice(a), m, k),
                MatRef::row_major(slice(b), k, n),
                MatRef::row_major(slice(grad), m, n),
            );
            (TensorData::new(ga, [m, k]), TensorData::new(gb, [k, n]))
        }
        let (ga, gb) = match a.dtype() {
            DType::F64 => run::<f64>((&a, &b, &grad), (m, k, n)),
            _ => run::<f32>((&a, &b, &grad), (m, k, n)),
        };
        (FlexTensor::from_data(ga), FlexTensor::from_data(gb))
    }

    fn dense_weight_gradient(a: FlexTensor, grad: FlexTensor) -> FlexTensor {
        row_task_product(a, true, grad)
    }
}

/// `a · b`, or `aᵀ · b` with `transpose_a`, by the CPU kernels' row-task product
/// ([`kernels::dense_forward`]).
fn row_task_product(a: FlexTensor, transpose_a: bool, b: FlexTensor) -> FlexTensor {
    let (a, b) = (contiguous(a), contiguous(b));
    let [rows, cols] = a.layout().shape().dims::<2>();
    let [_, n] = b.layout().shape().dims::<2>();
    fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
        (a, b): (&FlexTensor, &FlexTensor),
        (rows, cols, n): (usize, usize, usize),
        transpose_a: bool,
    ) -> TensorData {
        let a = MatRef::row_major(slice(a), rows, cols);
        let (a, m) = if transpose_a {
            (a.t(), cols)
        } else {
            (a, rows)
        };
        let k = if transpose_a { rows } else { cols };
        let out = kernels::dense_forward::<E>(a, MatRef::row_major(slice(b), k, n));
        TensorData::new(out, [m, n])
    }
    FlexTensor::from_data(match a.dtype() {
        DType::F64 => run::<f64>((&a, &b), (rows, cols, n), transpose_a),
        _ => run::<f32>((&a, &b), (rows, cols, n), transpose_a),
    })
}
