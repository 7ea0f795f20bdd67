//! The fused jet activation as a Burn backend extension: a forward on the `flex` CPU backend
//! and a hand-written backward registered with Burn's autodiff.

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

/// Backends that run the fused jet activation.
#[backend_extension(Flex, Autodiff)]
pub trait JetActivationOps: Backend {
    /// `σ` of the stacked jet `z + bias` (see [`crate::fused`]).
    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;
}

/// Applies the fused activation to a stacked jet `[streams · points, width]` with bias `[1, width]`.
pub(crate) fn jet_activation(
    z: Tensor<2>,
    bias: Tensor<2>,
    program: &Arc<JetActivation>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetActivationOps>::jet_activation(
        z.into_dispatch(),
        bias.into_dispatch(),
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

fn slice<E: Real + burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> &[E] {
    t.as_slice::<E>().unwrap_or(&[])
}

fn flex_forward(z: FlexTensor, bias: FlexTensor, program: &JetActivation) -> FlexTensor {
    let (z, bias) = (contiguous(z), contiguous(bias));
    let shape = shape_of(&z, program);
    let dims = [shape.points * program.streams(), shape.width];
    let data = match z.dtype() {
        DType::F64 => TensorData::new(
            fused::forward::<f64>(program, shape, slice(&z), slice(&bias)),
            dims,
        ),
        _ => TensorData::new(
            fused::forward::<f32>(program, shape, slice(&z), slice(&bias)),
            dims,
        ),
    };
    FlexTensor::from_data(data)
}

fn flex_backward(
    z: FlexTensor,
    bias: FlexTensor,
    grad: FlexTensor,
    program: &JetActivation,
) -> (FlexTensor, FlexTensor) {
    let (z, bias, grad) = (contiguous(z), contiguous(bias), contiguous(grad));
    let shape = shape_of(&z, program);
    let dims = [shape.points * program.streams(), shape.width];
    let (gz, gb) = match z.dtype() {
        DType::F64 => {
            let (gz, gb) =
                fused::backward::<f64>(program, shape, slice(&z), slice(&bias), slice(&grad));
            (
                TensorData::new(gz, dims),
                TensorData::new(gb, [1, shape.width]),
            )
        }
        _ => {
            let (gz, gb) =
                fused::backward::<f32>(program, shape, slice(&z), slice(&bias), slice(&grad));
            (
                TensorData::new(gz, dims),
                TensorData::new(gb, [1, shape.width]),
            )
        }
    };
    (FlexTensor::from_data(gz), FlexTensor::from_data(gb))
}

impl JetActivationOps for Flex {
    fn jet_activation(z: FlexTensor, bias: FlexTensor, program: Arc<JetActivation>) -> FlexTensor {
        flex_forward(z, bias, &program)
    }
}

/// The backward step: gradients of `z` and `bias` from the saved inputs.
#[derive(Debug)]
struct JetActivationBackward;

impl Backward<Flex, 2> for JetActivationBackward {
    type State = (FlexTensor, FlexTensor, Arc<JetActivation>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_z, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (z, bias, program) = ops.state;
        let (grad_z, grad_bias) = flex_backward(z, bias, grad, &program);
        if let Some(node) = node_z {
            grads.register::<Flex>(node.id, grad_z);
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, grad_bias);
        }
    }
}

impl<C: CheckpointStrategy> JetActivationOps for Autodiff<Flex, C> {
    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self> {
        match JetActivationBackward
            .prepare::<C>([z.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (z, bias) = (z.primitive().clone(), bias.primitive().clone());
                let output = flex_forward(z.clone(), bias.clone(), &program);
                prep.finish((z, bias, program), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_forward(
                z.into_primitive(),
                bias.into_primitive(),
                &program,
            )),
        }
    }
}
