use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::Init;
use burn::tensor::{FloatDType, Tensor, TensorData};
use pinn_core::Activation;
use pinn_core::backend::{dense, jet_activation, jet_layer};
use pinn_core::jet::matmul_in;
use pinn_core::kernels::JetActivation;
use pinn_core::sampling::{SeededRng, standard_normal};
use pinn_core::{DerivativeSet, Jet, JetNetwork, Partial, TensorContext};
use rand::Rng;

/// Stacked-input stream blocks an [`Mlp`] keeps on the device: one per point set of a problem
/// is typical (residual, boundary and data sets at a few derivative sets).
const STREAM_INPUT_CACHE: usize = 16;

/// The constant stream blocks of a fused forward's stacked inputs for one derivative set and
/// number of points (see `Mlp::stacked_inputs`).
#[derive(Clone, Debug)]
struct StreamInputs {
    partials: Vec<Partial>,
    points: usize,
    rows: Tensor<2>,
}

/// Architecture of an [`Mlp`].
#[derive(Clone, Debug, PartialEq)]
pub struct MlpSpec {
    /// Number of inputs.
    pub inputs: usize,
    /// Hidden-layer widths.
    pub hidden: Vec<usize>,
    /// Number of outputs.
    pub outputs: usize,
    /// Hidden-layer activation.
    pub activation: Activation,
    /// Initialisation scheme.
    pub init: Init,
}

/// A multilayer perceptron `[inputs, hidden..., outputs]` with inputs scaled to `[-1, 1]`
/// from the domain bounds, an activation after every hidden layer and a linear last layer.
///
/// Parameters are `[W0, b0, W1, b1, ...]` with `W: [fan_in, fan_out]` and `b: [1, fan_out]`.
#[derive(Clone, Debug)]
pub struct Mlp {
    widths: Vec<usize>,
    activation: Activation,
    init: Init,
    /// `2 / (upper - lower)` per input.
    scale: Vec<f64>,
    scale_t: Tensor<2>,
    shift_t: Tensor<2>,
    /// The fused activation, when the plan fuses layers and the activation has a fused rule.
    fused: Option<Activation>,
    /// Compiled fused rules, one per derivative set seen.
    programs: Arc<Mutex<Vec<Arc<JetActivation>>>>,
    /// The constant stream blocks of the fused path's stacked inputs, per (streams, points,
    /// device, dtype) seen, the last [`STREAM_INPUT_CACHE`] of them.
    stream_inputs: Arc<Mutex<Vec<StreamInputs>>>,
    /// Precision of the matrix products when it differs from the parameters' (the plan's bf16
    /// products: activations, derivative rules, losses and the optimiser stay in the
    /// parameters' precision; bf16 keeps f32's exponent range, so no loss scaling is needed).
    matmul_dtype: Option<FloatDType>,
    /// Whether a fused forward cuts the streams apart before an output product wider than the
    /// last hidden layer (the plan's choice: on the CPU; on GPUs it would only add launches).
    cut_before_wide_output: bool,
}

impl Mlp {
    /// Builds the architecture for inputs in the box `[lower, upper]`.
    ///
    /// # Panics
    /// If `lower` and `upper` do not have one entry per input (checked by the config loader).
    pub fn new(spec: &MlpSpec, lower: &[f64], upper: &[f64], ctx: &TensorContext) -> Self {
        let inputs = spec.inputs;
        let plan = ctx.plan();
        assert_eq!(lower.len(), inputs);
        assert_eq!(upper.len(), inputs);
        let scale: Vec<f64> = lower
            .iter()
            .zip(upper)
            .map(|(l, u)| 2.0 / (u - l))
            .collect();
        let shift: Vec<f64> = lower
            .iter()
            .zip(&scale)
            .map(|(l, s)| -l * s - 1.0)
            .collect();
        let mut widths = vec![inputs];
        widths.extend_from_slice(&spec.hidden);
        widths.push(spec.outputs);
        Self {
            widths,
            activation: spec.activation,
            init: spec.init,
            scale_t: ctx.matrix(&scale, 1, inputs),
            shift_t: ctx.matrix(&shift, 1, inputs),
            scale,
            fused: Some(spec.activation).filter(|a| plan.fused_layers() && a.has_fused_rule()),
            programs: Arc::default(),
            stream_inputs: Arc::default(),
            matmul_dtype: plan.half_matmuls().then_some(FloatDType::BF16),
            cut_before_wide_output: plan.cut_before_wide_output(),
        }
    }

    /// Turns the fused layer path off (the op-by-op reference) or back on where the activation
    /// has a fused rule, whatever the context's plan says (tests compare the two paths).
    pub fn with_fused_layers(mut self, on: bool) -> Self {
        self.fused = Some(self.activation).filter(|a| on && a.has_fused_rule());
        self
    }

    /// Whether the forward pass uses the fused layer operation.
    pub fn uses_fused_layers(&self) -> bool {
        self.fused.is_some()
    }

    fn program(&self, activation: Activation, set: &DerivativeSet) -> Arc<JetActivation> {
        let mut programs = self
            .programs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = programs
            .iter()
            .find(|p| p.activation() == activation && p.derivative_set() == set)
        {
            return p.clone();
        }
        let program = Arc::new(JetActivation::new(activation, set));
        programs.push(program.clone());
        program
    }

    /// The scaled inputs as a stacked jet `[(1 + streams) · points, inputs]`: the points, then
    /// one block per derivative stream holding that stream's derivative of the scaled inputs,
    /// `scale_j · e_j` for `∂/∂x_j` and zero for higher orders. The stream blocks are constants,
    /// kept on the device per (streams, points, device, dtype) so a training step uploads
    /// nothing.
    fn stacked_inputs(&self, scaled: Tensor<2>, partials: &[Partial]) -> Tensor<2> {
        if partials.is_empty() {
            return scaled;
        }
        let [points, dim] = scaled.dims();
        let mut cache = self
            .stream_inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cached = cache
            .iter()
            .find(|c| {
                c.partials == partials
                    && c.points == points
                    && c.rows.device() == scaled.device()
                    && c.rows.dtype() == scaled.dtype()
            })
            .map(|c| c.rows.clone());
        let rows = cached.unwrap_or_else(|| {
            let mut seed = Vec::with_capacity(partials.len() * points * dim);
            for p in partials {
                let mut row = vec![0.0; dim];
                if p.order() == 1 {
                    let j = p.coords()[0] as usize;
                    row[j] = self.scale[j];
                }
                for _ in 0..points {
                    seed.extend_from_slice(&row);
                }
            }
            let rows = Tensor::<2>::from_data(
                TensorData::new(seed, [partials.len() * points, dim]),
                (&scaled.device(), scaled.dtype()),
            );
            if cache.len() == STREAM_INPUT_CACHE {
                cache.remove(0);
            }
            cache.push(StreamInputs {
                partials: partials.to_vec(),
                points,
                rows: rows.clone(),
            });
            rows
        });
        Tensor::cat(vec![scaled, rows], 0)
    }

    /// Forward pass with all derivative streams stacked row-wise: per layer one matrix
    /// product and one fused activation.
    fn forward_fused(
        &self,
        params: &[Tensor<2>],
        inputs: &Tensor<2>,
        set: Arc<DerivativeSet>,
        program: &Arc<JetActivation>,
    ) -> Jet {
        let [points, _] = inputs.dims();
        let partials: Vec<Partial> = set.iter().copied().collect();
        let scaled = inputs
            .clone()
            .mul(self.scale_t.clone())
            .add(self.shift_t.clone());
        let w0 = &params[0];
        // The first layer is one product of the stacked inputs, whose weight gradient splits
        // its rows across the device like every other layer's (`dense`).
        let mut z = dense(self.stacked_inputs(scaled, &partials), w0.clone());
        let layers = self.widths.len() - 1;
        let outputs = self.output_dim();
        // An output wider than the last hidden layer (the discrete-time networks' q + 1
        // columns): on the CPU, cut the streams apart before the output product, where they are
        // narrow. Cut after it, each stream's slice has a backward that writes a gradient as
        // large as the whole stacked output (8-9 % of the discrete Burgers step).
        let last_hidden = layers - 1;
        if self.cut_before_wide_output && last_hidden > 0 && outputs > self.widths[last_hidden] {
            for l in 0..last_hidden - 1 {
                z = jet_layer(
                    z,
                    params[2 * l + 1].clone(),
                    params[2 * l + 2].clone(),
                    program,
                );
            }
            let h = jet_activation(z, params[2 * last_hidden - 1].clone(), program);
            let hidden_width = self.widths[last_hidden];
            let (weight, bias) = (&params[2 * last_hidden], &params[2 * last_hidden + 1]);
            let product = |s: usize| {
                let rows = h
                    .clone()
                    .slice([s * points..(s + 1) * points, 0..hidden_width]);
                dense(rows, weight.clone())
            };
            let value = product(0).add(bias.clone());
            let streams = partials
                .iter()
                .enumerate()
                .map(|(s, p)| (*p, product(s + 1)))
                .collect();
            return Jet::from_parts(value, streams, set);
        }
        for l in 0..layers - 1 {
            z = jet_layer(
                z,
                params[2 * l + 1].clone(),
                params[2 * l + 2].clone(),
                program,
            );
        }
        let value = z
            .clone()
            .slice([0..points, 0..outputs])
            .add(params[2 * layers - 1].clone());
        let streams = partials
            .iter()
            .enumerate()
            .map(|(s, p)| {
                let rows = (s + 1) * points..(s + 2) * points;
                (*p, z.clone().slice([rows, 0..outputs]))
            })
            .collect();
        Jet::from_parts(value, streams, set)
    }

    fn activate(&self, z: &Jet) -> Jet {
        match self.activation {
            Activation::Tanh => z.tanh(),
            Activation::Sin => z.sin(),
            Activation::Sigmoid => z.sigmoid(),
            Activation::Swish => z.swish(),
        }
    }
}

fn truncated_normal(rng: &mut SeededRng, std: f64) -> f64 {
    loop {
        let z = standard_normal(rng);
        if z.abs() <= 2.0 {
            return z * std;
        }
    }
}

impl JetNetwork for Mlp {
    fn output_dim(&self) -> usize {
        *self.widths.last().unwrap_or(&0)
    }

    fn init_parameters(&self, rng: &mut SeededRng, ctx: &TensorContext) -> Vec<Tensor<2>> {
        let mut params = Vec::new();
        for pair in self.widths.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let (w, b): (Vec<f64>, Vec<f64>) = match self.init {
                Init::GlorotTruncatedNormal => {
                    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
                    (
                        (0..fan_in * fan_out)
                            .map(|_| truncated_normal(rng, std))
                            .collect(),
                        vec![0.0; fan_out],
                    )
                }
                Init::GlorotNormal => {
                    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
                    (
                        (0..fan_in * fan_out)
                            .map(|_| standard_normal(rng) * std)
                            .collect(),
                        vec![0.0; fan_out],
                    )
                }
                Init::GlorotUniform => {
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    let bias_limit = 1.0 / (fan_in as f64).sqrt();
                    (
                        (0..fan_in * fan_out)
                            .map(|_| rng.random_range(-limit..limit))
                            .collect(),
                        (0..fan_out)
                            .map(|_| rng.random_range(-bias_limit..bias_limit))
                            .collect(),
                    )
                }
            };
            params.push(ctx.matrix(&w, fan_in, fan_out));
            params.push(ctx.matrix(&b, 1, fan_out));
        }
        params
    }

    fn forward(
        &self,
        params: &[Tensor<2>],
        inputs: &Tensor<2>,
        derivatives: &DerivativeSet,
    ) -> Jet {
        let set = Arc::new(derivatives.clone());
        if let Some(activation) = self.fused {
            let program = self.program(activation, derivatives);
            return self.forward_fused(params, inputs, set, &program);
        }
        let [points, _] = inputs.dims();
        let scaled = inputs
            .clone()
            .mul(self.scale_t.clone())
            .add(self.shift_t.clone());
        let (w0, b0) = (&params[0], &params[1]);
        // First layer: d(z)/d(x_j) = scale_j * W0[j, :], a constant row; higher orders vanish.
        let mut streams = BTreeMap::new();
        for p in set.iter().filter(|p| p.order() == 1) {
            let j = p.coords()[0] as usize;
            let width = w0.dims()[1];
            let row = w0
                .clone()
                .slice([j..j + 1, 0..width])
                .mul_scalar(self.scale[j]);
            streams.insert(*p, row);
        }
        let value = matmul_in(scaled, w0.clone(), self.matmul_dtype).add(b0.clone());
        let mut z = Jet::from_parts(value, streams, set.clone());
        let layers = self.widths.len() - 1;
        for l in 1..layers {
            let h = self.activate(&z);
            z = h.affine_in(&params[2 * l], &params[2 * l + 1], self.matmul_dtype);
        }
        // Streams that stayed constant rows (a network without hidden layers) become full.
        let outputs = self.output_dim();
        let needs_expand = set
            .iter()
            .any(|p| z.stream(p).is_some_and(|t| t.dims()[0] != points));
        if needs_expand {
            let full: BTreeMap<Partial, Tensor<2>> = set
                .iter()
                .filter_map(|p| {
                    z.stream(p)
                        .map(|t| (*p, t.clone().expand([points, outputs])))
                })
                .collect();
            z = Jet::from_parts(z.value().clone(), full, set);
        }
        z
    }

    fn describe(&self) -> String {
        let widths: Vec<String> = self.widths.iter().map(usize::to_string).collect();
        format!("MLP [{}], {:?}", widths.join(", "), self.activation).to_lowercase()
    }
}
