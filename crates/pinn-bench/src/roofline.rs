//! The roofline of a training step on the CPU: the step's matrix products counted from the
//! problem (network forward and backward per derivative stream, and the discrete-time misfit
//! product), each product timed alone at its own shape with the kernel the fused step uses, the
//! machine's peak from one large product on all threads, and the step's own time split into its
//! forward pass and the rest (backward and Adam). The step cannot be faster than its products
//! run alone: that sum is its floor, unless the work itself shrinks.

use std::mem::MaybeUninit;
use std::time::Instant;

use pinn::core::kernels::matmul::{MatRef, par_matmul_scaled_to};
use pinn::stats::median;
use pinn::{Problem, Trainer};
use serde::Serialize;

/// One matrix product of a step: `m × k` times `k × n`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Which part of the step it belongs to.
    pub part: Part,
    /// Rows of the left factor (and of the result).
    pub m: usize,
    /// The inner dimension.
    pub k: usize,
    /// Columns of the right factor (and of the result).
    pub n: usize,
}

impl Product {
    /// Floating-point operations (a multiply-add counts two).
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }
}

/// The parts of a step whose products are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The network's layers on every derivative stream, forward.
    NetworkForward,
    /// Their backward: the gradient of each layer's input (not the first's) and of its weights.
    NetworkBackward,
    /// The discrete-time misfit's stage product `f · map`, forward and backward (its gradient
    /// with respect to `f`).
    Misfit,
}

impl Part {
    /// Every part, in table order.
    pub const ALL: [Part; 3] = [Part::NetworkForward, Part::NetworkBackward, Part::Misfit];

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Part::NetworkForward => "network forward",
            Part::NetworkBackward => "network backward",
            Part::Misfit => "IRK misfit",
        }
    }
}

/// The matrix products of one training step of `problem`, as its forward passes run them on
/// the CPU (each pass: the rows of its points times its derivative streams, through every
/// layer), and the misfit product of each discrete-time term.
pub fn step_products(problem: &Problem) -> Vec<Product> {
    let config = problem.config();
    let params = problem.initial_parameters();
    let outputs = params
        .get(problem.network_parameter_count().saturating_sub(1))
        .map_or(0, |bias| bias.dims()[1]);
    let widths: Vec<usize> = std::iter::once(config.domain.inputs.len())
        .chain(config.network.hidden.iter().copied())
        .chain(std::iter::once(outputs))
        .collect();
    let sizes = problem.term_sizes();
    let derivatives = problem.term_derivatives();
    let mut products = Vec::new();
    for terms in problem.forward_passes() {
        // Terms share a pass when they read the same points (the CPU stacks nothing else).
        let rows = terms.iter().map(|&t| sizes[t]).max().unwrap_or(0);
        let mut streams = std::collections::BTreeSet::new();
        for &t in &terms {
            streams.extend(derivatives[t].iter().copied());
        }
        let stacked = rows * (streams.len() + 1);
        for (layer, pair) in widths.windows(2).enumerate() {
            let (w_in, w_out) = (pair[0], pair[1]);
            products.push(Product {
                part: Part::NetworkForward,
                m: stacked,
                k: w_in,
                n: w_out,
            });
            if layer > 0 {
                products.push(Product {
                    part: Part::NetworkBackward,
                    m: stacked,
                    k: w_out,
                    n: w_in,
                });
            }
            products.push(Product {
                part: Part::NetworkBackward,
                m: w_in,
                k: stacked,
                n: w_out,
            });
        }
    }
    if let Some((stages, _)) = problem.irk_stages() {
        let columns = outputs / config.network.outputs.len().max(1);
        for (t, entry) in config.loss.iter().enumerate() {
            if entry.irk.is_some() {
                let rows = sizes[t] * config.network.outputs.len();
                products.push(Product {
                    part: Part::Misfit,
                    m: rows,
                    k: stages,
                    n: columns,
                });
                products.push(Product {
                    part: Part::Misfit,
                    m: rows,
                    k: columns,
                    n: stages,
                });
            }
        }
    }
    products
}

/// Seconds of one f32 product of the given shape with the fused kernels' product
/// (`par_matmul_scaled_to`: `gemm`, on all threads from 192³ multiply-adds), on Rayon's pool:
/// the best of `repeats`, what a shared machine's interference cannot make smaller.
pub fn product_seconds(m: usize, k: usize, n: usize, repeats: usize) -> f64 {
    let lhs: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let rhs: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let mut dst = vec![MaybeUninit::<f32>::uninit(); m * n];
    let mut run = || {
        par_matmul_scaled_to(
            &mut dst,
            n,
            MatRef::row_major(&lhs, m, k),
            MatRef::row_major(&rhs, k, n),
            1.0,
        );
    };
    rayon::scope(|_| {
        run();
        (0..repeats.max(1))
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    })
}

/// The machine's peak: GFLOP/s of one `n × n × n` f32 product on all threads (the best of
/// `repeats`).
pub fn peak_gflops(n: usize, repeats: usize) -> f64 {
    2.0 * (n * n * n) as f64 / product_seconds(n, n, n, repeats) / 1e9
}

/// One problem's roofline.
#[derive(Clone, Debug, Serialize)]
pub struct Roofline {
    /// Problem file stem.
    pub problem: String,
    /// Median milliseconds of a whole training step (the trainer's).
    pub step_ms: f64,
    /// The fastest of the timed steps, in milliseconds (compared with the products' best).
    pub best_step_ms: f64,
    /// Median milliseconds of the step's forward pass (the loss, recording its autodiff graph).
    pub forward_ms: f64,
    /// Median milliseconds of the backward pass after it (every parameter's gradient).
    pub backward_ms: f64,
    /// MFLOP of the counted products, per part.
    pub mflop: Vec<(Part, f64)>,
    /// Milliseconds the counted products take run alone at their shapes (each the best of as
    /// many runs as timed steps), per part.
    pub products_ms: Vec<(Part, f64)>,
    /// The machine's peak, GFLOP/s.
    pub peak_gflops: f64,
}

impl Roofline {
    /// Counted MFLOP in all.
    pub fn total_mflop(&self) -> f64 {
        self.mflop.iter().map(|(_, f)| f).sum()
    }

    /// The step's floor: its products alone, at gemm's speed for their shapes.
    pub fn floor_ms(&self) -> f64 {
        self.products_ms.iter().map(|(_, t)| t).sum()
    }

    /// The counted work at the machine's peak.
    pub fn peak_floor_ms(&self) -> f64 {
        self.total_mflop() / self.peak_gflops
    }

    /// GFLOP/s the fastest step achieves on the counted products.
    pub fn achieved_gflops(&self) -> f64 {
        self.total_mflop() / self.best_step_ms
    }
}

/// Measures `problem`'s roofline: `warmup` untimed steps, then `iters` timed steps and as many
/// timed forward and backward passes, each product of [`step_products`] timed alone.
pub fn measure(
    name: &str,
    problem: &Problem,
    (warmup, iters): (usize, usize),
    peak_gflops: f64,
) -> Roofline {
    let (mut steps, _) = crate::time_steps(problem, warmup, iters);
    let trainer = Trainer::new(problem);
    let params = trainer.parameters().to_vec();
    // Forward and backward timed apart, as a step runs them (the parameters tracked).
    let (mut forwards, mut backwards): (Vec<f64>, Vec<f64>) =
        problem.context().on_compute_threads(|| {
            let split = || {
                let tracked: Vec<_> = params
                    .iter()
                    .map(|p| p.clone().autodiff().require_grad())
                    .collect();
                let start = Instant::now();
                let loss = problem.loss(&tracked);
                let forward = start.elapsed().as_secs_f64() * 1e3;
                let grads = loss.total.backward();
                let gradients: Vec<_> = tracked.iter().filter_map(|t| t.grad(&grads)).collect();
                std::hint::black_box(gradients);
                (forward, start.elapsed().as_secs_f64() * 1e3 - forward)
            };
            (0..warmup).for_each(|_| {
                split();
            });
            (0..iters).map(|_| split()).unzip()
        });
    let products = step_products(problem);
    let mut mflop = Vec::new();
    let mut products_ms = Vec::new();
    for part in Part::ALL {
        let of_part: Vec<&Product> = products.iter().filter(|p| p.part == part).collect();
        if of_part.is_empty() {
            continue;
        }
        mflop.push((part, of_part.iter().map(|p| p.flops()).sum::<f64>() / 1e6));
        let ms = of_part
            .iter()
            .map(|p| product_seconds(p.m, p.k, p.n, iters.max(5)) * 1e3)
            .sum();
        products_ms.push((part, ms));
    }
    Roofline {
        problem: name.to_string(),
        best_step_ms: steps.iter().copied().fold(f64::INFINITY, f64::min),
        step_ms: median(&mut steps),
        forward_ms: median(&mut forwards),
        backward_ms: median(&mut backwards),
        mflop,
        products_ms,
        peak_gflops,
    }
}

/// The rooflines as a Markdown table.
pub fn markdown(rows: &[Roofline]) -> String {
    let mut out = String::new();
    let peak = rows.first().map_or(0.0, |r| r.peak_gflops);
    out.push_str(&format!(
        "Peak: {peak:.1} GFLOP/s (one 1024³ f32 product on all threads, the best of 10).\n\n"
    ));
    out.push_str(
        "| problem | step ms (median, best) | forward ms | backward ms | rest (Adam) ms | \
         MFLOP: network fwd / bwd / misfit | GFLOP/s (best step) | products alone, ms | \
         best step / products | at peak, ms | best step / peak |\n\
         | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let part = |p: Part| {
            r.mflop
                .iter()
                .find(|(q, _)| *q == p)
                .map_or("–".to_string(), |(_, f)| format!("{f:.1}"))
        };
        out.push_str(&format!(
            "| {} | {:.2}, {:.2} | {:.2} | {:.2} | {:.2} | {} / {} / {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            r.problem,
            r.step_ms,
            r.best_step_ms,
            r.forward_ms,
            r.backward_ms,
            r.step_ms - r.forward_ms - r.backward_ms,
            part(Part::NetworkForward),
            part(Part::NetworkBackward),
            part(Part::Misfit),
            r.achieved_gflops(),
            r.floor_ms(),
            r.best_step_ms / r.floor_ms(),
            r.peak_floor_ms(),
            r.best_step_ms / r.peak_floor_ms(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinn::ProblemBuilder;

    fn product(part: Part, m: usize, k: usize, n: usize) -> Product {
        Product { part, m, k, n }
    }

    #[test]
    fn a_continuous_step_counts_every_layer_on_every_stream() {
        // u_t - u_xx: the network propagates u_t, u_x and u_xx besides u, so 4 × 64 rows.
        let problem = ProblemBuilder::new("count")
            .domain(&["x", "t"], &[0.0, 0.0], &[1.0, 1.0])
            .network(&[8, 8], &["u"])
            .residual("f", "u_t - u_xx")
            .points_lhs("inside", 64)
            .residual_loss("inside", &["f"])
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        use Part::{NetworkBackward as B, NetworkForward as F};
        let rows = 4 * 64;
        assert_eq!(
            step_products(&problem),
            vec![
                product(F, rows, 2, 8),
                product(B, 2, rows, 8),
                product(F, rows, 8, 8),
                product(B, rows, 8, 8),
                product(B, 8, rows, 8),
                product(F, rows, 8, 1),
                product(B, rows, 1, 8),
                product(B, 8, rows, 1),
            ]
        );
        let flops: f64 = step_products(&problem).iter().map(Product::flops).sum();
        assert_eq!(
            flops,
            2.0 * rows as f64 * (2.0 * 16.0 + 3.0 * 64.0 + 3.0 * 8.0)
        );
    }
}
