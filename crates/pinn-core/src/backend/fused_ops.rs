//! The fused jet layer as a Burn backend extension: `σ` of a stacked jet followed by the next
//! layer's matrix product, in one op, with forwards on the `flex` CPU backend and the CubeCL
//! backend (`cube_jets`) and a hand-written backward registered with Burn's autodiff.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

use crate::fused::{self, JetActivation, Real, Stacked};
use crate::matmul::MatRef;

/// Backends that run the fused jet layer: the `flex` CPU backend (one pass over the elements
/// with the products inline) and, with the `cuda` or `wgpu` feature, the CubeCL backend (an
/// unrolled kernel per derivative set plus the backend's own matrix products) behind Burn's
/// kernel fusion. The autodiff backend wraps either with the hand-written backward.
#[backend_extension(
    Flex,
    Cube: cfg(any(feature = "cuda", feature = "wgpu")),
    Fusion: cfg(any(feature = "cuda", feature = "wgpu")),
    Autodiff
)]
pub trait JetLayerOps: Backend {
    /// `σ(z + bias) · weight` for a stacked jet `z` (`weight: [width, next]`).
    #[fusion(meta = fusion_meta::product)]
    fn jet_layer(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;

    /// [`jet_layer`](Self::jet_layer) that also returns the activated jet `h = σ(z + bias)`,
    /// which the backward's weight gradient needs: `(h, h · weight)`.
    #[fusion(meta = fusion_meta::activation_and_product)]
    fn jet_layer_forward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `z`, `bias` and `weight` of [`jet_layer`](Self::jet_layer), given `h` from
    /// [`jet_layer_forward`](Self::jet_layer_forward) and `grad`, the gradient of its output.
    #[fusion(meta = fusion_meta::gradients)]
    fn jet_layer_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        h: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `σ(z + bias)` for a stacked jet `z`, without a product: the last hidden layer of a
    /// network whose output is wider than that layer, whose streams are cut apart before the
    /// output product (see `pinn_nn::Mlp`).
    #[fusion(meta = fusion_meta::activation)]
    fn jet_activation(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> FloatTensor<Self>;

    /// Gradients of `z` and `bias` of [`jet_activation`](Self::jet_activation), given `grad`,
    /// the gradient of its output.
    #[fusion(meta = fusion_meta::activation_gradients)]
    fn jet_activation_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The matrix product `a · b` of a network layer (`a: [rows, k]`, `b: [k, n]`): on the CPU
    /// the fused layer's row-tiled product, much faster than `flex`'s for a layer's small `k`.
    #[fusion(meta = fusion_meta::dense)]
    fn dense(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradients `(grad · bᵀ, aᵀ · grad)` of [`dense`](Self::dense).
    #[fusion(meta = fusion_meta::dense_gradients)]
    fn dense_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// Output shapes of the fused layer's operations, which Burn's kernel fusion records before
/// the operations run.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod fusion_meta {
    use super::*;
    use burn::backend::fusion::custom::TensorSpec;

    pub(super) fn product(
        z: &TensorSpec,
        _bias: &TensorSpec,
        weight: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> TensorSpec {
        let mut shape = z.shape.clone();
        shape[1] = weight.shape[1];
        TensorSpec::new(shape, z.dtype)
    }

    pub(super) fn activation_and_product(
        z: &TensorSpec,
        bias: &TensorSpec,
        weight: &TensorSpec,
        program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec) {
        (z.clone(), product(z, bias, weight, program))
    }

    pub(super) fn gradients(
        z: &TensorSpec,
        bias: &TensorSpec,
        weight: &TensorSpec,
        _h: &TensorSpec,
        _grad: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec, TensorSpec) {
        (z.clone(), bias.clone(), weight.clone())
    }

    pub(super) fn activation(
        z: &TensorSpec,
        _bias: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> TensorSpec {
        z.clone()
    }

    pub(super) fn activation_gradients(
        z: &TensorSpec,
        bias: &TensorSpec,
        _grad: &TensorSpec,
        _program: &Arc<JetActivation>,
    ) -> (TensorSpec, TensorSpec) {
        (z.clone(), bias.clone())
    }

    pub(super) fn dense(a: &TensorSpec, b: &TensorSpec) -> TensorSpec {
        let mut shape = a.shape.clone();
        shape[1] = b.shape[1];
        TensorSpec::new(shape, a.dtype)
    }

    pub(super) fn dense_gradients(
        a: &TensorSpec,
        b: &TensorSpec,
        _grad: &TensorSpec,
    ) -> (TensorSpec, TensorSpec) {
        (a.clone(), b.clone())
    }
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

/// `σ(z + bias)` on the stacked jet: [`jet_activation`](JetLayerOps::jet_activation).
pub(crate) fn jet_activation(
    z: Tensor<2>,
    bias: Tensor<2>,
    program: &Arc<JetActivation>,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::jet_activation(
        z.into_dispatch(),
        bias.into_dispatch(),
        program.clone(),
    ))
}

/// A layer's matrix product: [`dense`](JetLayerOps::dense).
pub(crate) fn dense(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as JetLayerOps>::dense(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// `t` itself when its buffer is contiguous from its start, else a contiguous copy: what the CPU
/// kernels read.
pub(super) fn contiguous(t: FlexTensor) -> FlexTensor {
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

/// The elements of a contiguous tensor (see [`contiguous`]).
pub(super) fn slice<E: Real + burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> &[E] {
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
                fused::activation_forward::<f64>(&program, shape, slice(&z), slice(&bias)),
                dims,
            ),
            _ => TensorData::new(
                fused::activation_forward::<f32>(&program, shape, slice(&z), slice(&bias)),
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
            let (gz, gb) = fused::activation_backward::<E>(
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
        let (a, b) = (contiguous(a), contiguous(b));
        let [m, k] = a.layout().shape().dims::<2>();
        let [_, n] = b.layout().shape().dims::<2>();
        fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
            (a, b): (&FlexTensor, &FlexTensor),
            (m, k, n): (usize, usize, usize),
        ) -> TensorData {
            let out = fused::dense_forward::<E>(
                MatRef::row_major(slice(a), m, k),
                MatRef::row_major(slice(b), k, n),
            );
            TensorData::new(out, [m, n])
        }
        FlexTensor::from_data(match a.dtype() {
            DType::F64 => run::<f64>((&a, &b), (m, k, n)),
            _ => run::<f32>((&a, &b), (m, k, n)),
        })
    }

    fn dense_backward(a: FlexTensor, b: FlexTensor, grad: FlexTensor) -> (FlexTensor, FlexTensor) {
        let (a, b, grad) = (contiguous(a), contiguous(b), contiguous(grad));
        let [m, k] = a.layout().shape().dims::<2>();
        let [_, n] = b.layout().shape().dims::<2>();
        fn run<E: Real + burn::tensor::Element + bytemuck::Pod>(
            (a, b, grad): (&FlexTensor, &FlexTensor, &FlexTensor),
            (m, k, n): (usize, usize, usize),
        ) -> (TensorData, TensorData) {
            let (ga, gb) = fused::dense_backward::<E>(
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
}

/// The common body of a hand-written backward step: takes the gradient of the op's output,
/// runs `backward` on the saved state with it, and registers each of the results with its
/// parent where that parent is tracked (the rest are dropped).
pub(super) fn backward_to_parents<B: Backend, S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    backward: impl FnOnce(S, FloatTensor<B>) -> [FloatTensor<B>; N],
) {
    let grad = grads.consume::<B>(&ops.node);
    for (node, grad) in ops.parents.into_iter().zip(backward(ops.state, grad)) {
        if let Some(node) = node {
            grads.register::<B>(node.id, grad);
        }
    }
}

/// The backward step of [`JetLayerOps::jet_layer`].
#[derive(Debug)]
struct JetLayerBackward;

impl<B: JetLayerOps> Backward<B, 3> for JetLayerBackward {
    /// `z`, `bias`, `weight`, the activated jet `h`, and the program.
    type State = (
        (
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
        ),
        Arc<JetActivation>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 3>(ops, grads, |((z, bias, weight, h), program), grad| {
            let (grad_z, grad_bias, grad_weight) =
                B::jet_layer_backward(z, bias, weight, h, grad, program);
            [grad_z, grad_bias, grad_weight]
        });
    }
}

/// The backward step of [`JetLayerOps::jet_activation`].
#[derive(Debug)]
struct JetActivationBackward;

impl<B: JetLayerOps> Backward<B, 2> for JetActivationBackward {
    /// `z`, `bias` and the program.
    type State = ((FloatTensor<B>, FloatTensor<B>), Arc<JetActivation>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 2>(ops, grads, |((z, bias), program), grad| {
            let (grad_z, grad_bias) = B::jet_activation_backward(z, bias, grad, program);
            [grad_z, grad_bias]
        });
    }
}

/// The backward step of [`JetLayerOps::dense`].
#[derive(Debug)]
struct DenseBackward;

impl<B: JetLayerOps> Backward<B, 2> for DenseBackward {
    /// `a` and `b`.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_to_parents::<B, _, 2>(ops, grads, |(a, b), grad| {
            let (grad_a, grad_b) = B::dense_backward(a, b, grad);
            [grad_a, grad_b]
        });
    }
}

impl<B: JetLayerOps, C: CheckpointStrategy> JetLayerOps for Autodiff<B, C> {
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
                let z = z.primitive().clone();
                let bias = bias.primitive().clone();
                let weight = weight.primitive().clone();
                let (h, output) =
                    B::jet_layer_forward(z.clone(), bias.clone(), weight.clone(), program.clone());
                prep.finish(((z, bias, weight, h), program), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::jet_layer(
                z.into_primitive(),
                bias.into_primitive(),
                weight.into_primitive(),
                program,
            )),
        }
    }

    /// Not differentiated: only [`jet_layer`](Self::jet_layer) records a backward step.
    fn jet_layer_forward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (h, out) = B::jet_layer_forward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(weight),
            program,
        );
        (Self::from_inner(h), Self::from_inner(out))
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn jet_layer_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        h: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (gz, gb, gw) = B::jet_layer_backward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(weight),
            Self::inner(h),
            Self::inner(grad),
            program,
        );
        (
            Self::from_inner(gz),
            Self::from_inner(gb),
            Self::from_inner(gw),
        )
    }

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
                let z = z.primitive().clone();
                let bias = bias.primitive().clone();
                let h = B::jet_activation(z.clone(), bias.clone(), program.clone());
                prep.finish(((z, bias), program), h)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::jet_activation(
                z.into_primitive(),
                bias.into_primitive(),
                program,
            )),
        }
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn jet_activation_backward(
        z: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        program: Arc<JetActivation>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gz, gb) = B::jet_activation_backward(
            Self::inner(z),
            Self::inner(bias),
            Self::inner(grad),
            program,
        );
        (Self::from_inner(gz), Self::from_inner(gb))
    }

    fn dense(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match DenseBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let a = a.primitive().clone();
                let b = b.primitive().clone();
                let out = B::dense(a.clone(), b.clone());
                prep.finish((a, b), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dense(a.into_primitive(), b.into_primitive()))
            }
        }
    }

    /// Not differentiated (a gradient of a gradient is never asked for).
    fn dense_backward(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (ga, gb) = B::dense_backward(Self::inner(a), Self::inner(b), Self::inner(grad));
        (Self::from_inner(ga), Self::from_inner(gb))
    }
}
