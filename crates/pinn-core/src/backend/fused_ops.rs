//! The fused jet layer as a Burn backend extension: `σ` of a stacked jet followed by the next
//! layer's matrix product, in one op, with a forward on the `flex` CPU backend and a
//! hand-written backward registered with Burn's autodiff.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

use crate::fused::{self, JetActivation, Real, Stacked};
use crate::matmul::MatRef;

/// Backends that run the fused jet layer.
#[backend_extension(Flex, Autodiff)]
pub trait JetLayerOps: Backend {
    /// `σ(z + bias) · weight` for a stacked jet `z` (`weight: [width, next]`).
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;
}

/// `σ(z + bias) · weight` on the stacked jet: [`jet_layer`](JetLayerOps::jet_layer).
pub(crate) fn jet_layer(
    z: Tensor<2>,
    bias: Tensor<2>,
    weight: Tensor<2>,
    program: &Arc<JetActivation>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::jet_layer(
        z.into_dispatch(),
        bias.into_dispatch(),
        weight.into_dispatch(),
        program.clone(),
    ))
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

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

fn slice<E: Real + burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> &[E] {
    t.as_slice::<E>().unwrap_or(&[])
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
        let (h, out) = fused::layer_forward::<E>(program, shape, slice(z), slice(bias), weight);
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
        let grads = fused::layer_backward::<E>(
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
}

/// The backward step of [`JetLayerOps::jet_layer`].
#[derive(Debug)]
struct JetLayerBackward;

impl Backward<Flex, 3> for JetLayerBackward {
    /// `z`, `bias`, `weight` (contiguous), the activated jet `h`, and the program.
    type State = (
        (FlexTensor, FlexTensor, FlexTensor, FlexTensor),
        Arc<JetActivation>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_z, node_bias, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (saved, program) = ops.state;
        let (grad_z, grad_bias, grad_weight) = flex_layer_backward(saved, grad, &program);
        for (node, grad) in [
            (node_z, grad_z),
            (node_bias, grad_bias),
            (node_weight, grad_weight),
        ] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> JetLayerOps for Autodiff<Flex, C> {
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        match JetLayerBackward
            .prepare::<C>([z.node(), bias.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let z = contiguous(z.primitive().clone());
                let bias = contiguous(bias.primitive().clone());
                let weight = contiguous(weight.primitive().clone());
                let (h, output) =
                    flex_layer_forward(z.clone(), bias.clone(), weight.clone(), &program);
                prep.finish(((z, bias, weight, h), program), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                flex_layer_forward(
                    z.into_primitive(),
                    bias.into_primitive(),
                    weight.into_primitive(),
                    &program,
                )
                .1,
            ),
        }
    }
}
