//! Defining a problem in Rust code instead of a TOML file.
//!
//! [`ProblemBuilder`] fills in the same schema as a problem file (so defaults, validation and
//! error messages are those of the file format, documented in `docs/toml.md`) and adds what
//! only code can give: residuals as closures ([`ResidualFn`]) and reference data in memory.
//!
//! ```
//! use pinn::{ProblemBuilder, ResidualFn, Silent, Trainer};
//!
//! // u_xx = -π² sin(πx) on [-1, 1], u = 0 at both ends, the residual as a closure.
//! let problem = ProblemBuilder::new("poisson")
//!     .domain(&["x"], &[-1.0], &[1.0])
//!     .network(&[16, 16], &["u"])
//!     .residual_fn(
//!         "f",
//!         ResidualFn::new(&["u_xx", "x"], |f| {
//!             let pi = std::f64::consts::PI;
//!             f.get("u_xx").add(f.get("x").mul_scalar(pi).sin().mul_scalar(pi * pi))
//!         }),
//!     )
//!     .points_lhs("inside", 128)
//!     .points_on("ends", &[("x", &[-1.0, 1.0])], 2)
//!     .fit_value("ends", "u", 0.0)
//!     .residual_loss("inside", &["f"])
//!     .exact("u", "sin(pi*x)")
//!     .adam(1000, 1e-2)
//!     .build()?;
//! let out = std::env::temp_dir().join("pinn-doc-builder");
//! let trained = Trainer::new(&problem).run(1000, &out, &mut Silent)?;
//! assert!(trained.report.evaluation.relative_l2["u"] < 0.2);
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use crate::config::{LrDecay, ProblemConfig};
use pinn_core::data::GridData;
use toml::{Table, Value};

use crate::problem::{InCode, LoadOptions, Problem, ProblemError, ResidualFn};

/// Builds a [`Problem`] step by step; [`Self::build`] validates it like a problem file.
#[derive(Clone, Debug)]
pub struct ProblemBuilder {
    table: Table,
    losses: Vec<Value>,
    code: InCode,
    options: LoadOptions,
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

fn floats(items: &[f64]) -> Value {
    Value::Array(items.iter().map(|&v| Value::Float(v)).collect())
}

impl ProblemBuilder {
    /// A new problem called `name` (the default output folder is `runs/<name>`).
    pub fn new(name: &str) -> Self {
        let mut table = Table::new();
        table.insert("name".into(), Value::String(name.into()));
        Self {
            table,
            losses: Vec::new(),
            code: InCode::default(),
            options: LoadOptions::default(),
        }
    }

    fn section(&mut self, name: &str) -> &mut Table {
        let entry = self
            .table
            .entry(name.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        match entry {
            Value::Table(t) => t,
            _ => unreachable!("just made a table"),
        }
    }

    fn set(mut self, section: &str, key: &str, value: Value) -> Self {
        self.section(section).insert(key.into(), value);
        self
    }

    /// Input coordinates and the box the network's inputs are scaled from.
    pub fn domain(self, inputs: &[&str], lower: &[f64], upper: &[f64]) -> Self {
        self.set("domain", "inputs", strings(inputs))
            .set("domain", "lower", floats(lower))
            .set("domain", "upper", floats(upper))
    }

    /// A tanh MLP with the given hidden widths and named outputs.
    pub fn network(self, hidden: &[usize], outputs: &[&str]) -> Self {
        let hidden = Value::Array(hidden.iter().map(|&h| Value::Integer(h as i64)).collect());
        self.set("network", "hidden", hidden)
            .set("network", "outputs", strings(outputs))
    }

    /// The hidden-layer activation: `tanh`, `sin`, `sigmoid` or `swish`.
    pub fn activation(self, activation: &str) -> Self {
        self.set("network", "activation", Value::String(activation.into()))
    }

    /// How the weights and biases are first drawn (`[network] init`).
    pub fn init(self, init: crate::config::Init) -> Self {
        let name = match init {
            crate::config::Init::GlorotTruncatedNormal => "glorot_truncated_normal",
            crate::config::Init::GlorotUniform => "glorot_uniform",
            crate::config::Init::GlorotNormal => "glorot_normal",
        };
        self.set("network", "init", Value::String(name.into()))
    }

    /// The random seed of initialisation and sampling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.table
            .insert("seed".into(), Value::Integer(seed as i64));
        self
    }

    /// A named constant usable in expressions.
    pub fn constant(self, name: &str, value: f64) -> Self {
        self.set("constants", name, Value::Float(value))
    }

    /// An unknown scalar learned with the network (inverse problems), with its true value if
    /// known (reported as a relative error).
    pub fn unknown(self, name: &str, init: f64, truth: Option<f64>) -> Self {
        let mut t = Table::new();
        t.insert("init".into(), Value::Float(init));
        if let Some(truth) = truth {
            t.insert("truth".into(), Value::Float(truth));
        }
        self.set("unknowns", name, Value::Table(t))
    }

    /// A derived output defined by an expression (e.g. `u = "psi_y"`).
    pub fn derived(self, name: &str, expression: &str) -> Self {
        self.set("derived", name, Value::String(expression.into()))
    }

    /// A residual written as an expression (compiled once, like `[residuals]`).
    pub fn residual(self, name: &str, expression: &str) -> Self {
        self.set("residuals", name, Value::String(expression.into()))
    }

    /// A residual written as a Rust closure.
    pub fn residual_fn(mut self, name: &str, residual: ResidualFn) -> Self {
        self.code.residuals.push((name.to_string(), residual));
        self
    }

    /// Reference data on a grid, in memory: its axes must include every input; its fields can
    /// be fitted on grid point sets and are compared with the predictions at the end.
    pub fn data(mut self, data: GridData) -> Self {
        self.code.data = Some(data);
        self
    }

    /// `count` Latin-hypercube points in the domain.
    pub fn points_lhs(self, name: &str, count: usize) -> Self {
        let mut t = Table::new();
        t.insert("lhs".into(), Value::Integer(count as i64));
        self.set("points", name, Value::Table(t))
    }

    /// Grid points of the data: the union of slices, each a list of `(axis, index)` pairs
    /// (negative indices count from the end); an empty list is the whole grid.
    pub fn points_grid(self, name: &str, slices: &[&[(&str, i64)]]) -> Self {
        let slices = slices
            .iter()
            .map(|slice| {
                Value::Table(
                    slice
                        .iter()
                        .map(|(axis, i)| (axis.to_string(), Value::Integer(*i)))
                        .collect(),
                )
            })
            .collect();
        let mut t = Table::new();
        t.insert("grid".into(), Value::Array(slices));
        self.set("points", name, Value::Table(t))
    }

    /// `count` Latin-hypercube points on faces of the domain: each `(input, values)` pair puts
    /// faces at those values of the input (`("x", &[0.0, 1.0])` is both ends), and the count
    /// is shared among the faces by area (`[points.<name>] on = {...}` in a file).
    pub fn points_on(self, name: &str, faces: &[(&str, &[f64])], count: usize) -> Self {
        let on: Table = faces
            .iter()
            .map(|(input, values)| (input.to_string(), floats(values)))
            .collect();
        let mut t = Table::new();
        t.insert("on".into(), Value::Table(on));
        t.insert("lhs".into(), Value::Integer(count as i64));
        self.set("points", name, Value::Table(t))
    }

    /// The region the problem lives on (`[geometry]`): `region` combines the named `shapes`
    /// (`"plate - hole"`); point sets without `on` then lie inside it.
    pub fn geometry(mut self, region: &str, shapes: &[(&str, crate::config::ShapeConfig)]) -> Self {
        let table: Table = shapes
            .iter()
            .filter_map(|(name, shape)| {
                Value::try_from(shape)
                    .ok()
                    .map(|value| (name.to_string(), value))
            })
            .collect();
        let section = self.section("geometry");
        section.insert("region".into(), Value::String(region.into()));
        section.insert("shapes".into(), Value::Table(table));
        self
    }

    /// `count` Latin-hypercube points on the boundary parts that the named shapes of the
    /// geometry form (`&["boundary"]`: all of it), each with its outward unit normal (`on =
    /// ["hole"]` in a file); the count is shared by length or area.
    pub fn points_on_boundary(self, name: &str, parts: &[&str], count: usize) -> Self {
        let mut t = Table::new();
        t.insert("on".into(), strings(parts));
        t.insert("lhs".into(), Value::Integer(count as i64));
        self.set("points", name, Value::Table(t))
    }

    /// Uniform random points (`uniform = count`) instead of a Latin hypercube, or an even grid
    /// (`grid = counts`), for a point set defined before, on its faces if it has any.
    pub fn layout(mut self, name: &str, layout: &pinn_core::sampling::Layout) -> Self {
        use pinn_core::sampling::Layout;
        if let Some(Value::Table(t)) = self.section("points").get_mut(name) {
            for key in ["lhs", "uniform", "grid"] {
                t.remove(key);
            }
            let (key, value) = match layout {
                Layout::Lhs(n) => ("lhs", Value::Integer(*n as i64)),
                Layout::Uniform(n) => ("uniform", Value::Integer(*n as i64)),
                Layout::Grid(counts) => (
                    "grid",
                    Value::Array(counts.iter().map(|&n| Value::Integer(n as i64)).collect()),
                ),
            };
            t.insert(key.into(), value);
        }
        self
    }

    /// An even grid of the domain with `counts[d]` points along input `d` (both ends included).
    pub fn points_even_grid(self, name: &str, counts: &[usize]) -> Self {
        let counts = counts.iter().map(|&n| Value::Integer(n as i64)).collect();
        let mut t = Table::new();
        t.insert("grid".into(), Value::Array(counts));
        self.set("points", name, Value::Table(t))
    }

    /// Keeps a random subset of `count` points of a point set defined before.
    pub fn sample(mut self, name: &str, count: usize) -> Self {
        if let Some(Value::Table(t)) = self.section("points").get_mut(name) {
            t.insert("sample".into(), Value::Integer(count as i64));
        }
        self
    }

    /// Trains on mini-batches of a point set defined before: `size` of its points, drawn anew
    /// every iteration (`batch = size` in a file).
    pub fn batch(mut self, name: &str, size: usize) -> Self {
        if let Some(Value::Table(t)) = self.section("points").get_mut(name) {
            t.insert("batch".into(), Value::Integer(size as i64));
        }
        self
    }

    fn loss(mut self, entries: Vec<(&str, Value)>) -> Self {
        self.losses.push(Value::Table(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ));
        self
    }

    /// A mean-squared misfit of `fields` against the data at the points.
    pub fn fit(self, points: &str, fields: &[&str]) -> Self {
        self.loss(vec![
            ("points", Value::String(points.into())),
            ("fit", strings(fields)),
        ])
    }

    /// A mean-squared misfit of `field` against a constant (e.g. homogeneous boundary values).
    pub fn fit_value(self, points: &str, field: &str, value: f64) -> Self {
        self.loss(vec![
            ("points", Value::String(points.into())),
            ("fit", strings(&[field])),
            ("fit_value", Value::Float(value)),
        ])
    }

    /// A mean-squared misfit of each quantity (a field or a derivative such as `u_t`) against
    /// its target, an expression of the inputs and constants (`fit = { u = "sin(pi*x)" }`).
    pub fn fit_targets(self, points: &str, targets: &[(&str, &str)]) -> Self {
        let table: Table = targets
            .iter()
            .map(|(quantity, target)| (quantity.to_string(), Value::String(target.to_string())))
            .collect();
        self.loss(vec![
            ("points", Value::String(points.into())),
            ("fit", Value::Table(table)),
        ])
    }

    /// The mean square of each residual at the points.
    pub fn residual_loss(self, points: &str, residuals: &[&str]) -> Self {
        self.loss(vec![
            ("points", Value::String(points.into())),
            ("residuals", strings(residuals)),
        ])
    }

    /// Adam iterations and learning rate.
    pub fn adam(self, iterations: usize, lr: f64) -> Self {
        self.set("optimizer", "iterations", Value::Integer(iterations as i64))
            .set("optimizer", "lr", Value::Float(lr))
    }

    /// A falling learning rate for Adam (`optimizer.decay`).
    pub fn lr_decay(self, decay: LrDecay) -> Self {
        // The same serde form a problem file is read with. Serialising only fails for a count
        // beyond TOML's integers; the message then stands in the field and `build` reports it
        // against `optimizer.decay`.
        let value = Value::try_from(decay).unwrap_or_else(|e| Value::String(e.to_string()));
        self.set("optimizer", "decay", value)
    }

    /// L-BFGS iterations after Adam.
    pub fn lbfgs(mut self, iterations: usize) -> Self {
        let mut t = Table::new();
        t.insert("iterations".into(), Value::Integer(iterations as i64));
        self.section("optimizer")
            .insert("lbfgs".into(), Value::Table(t));
        self
    }

    /// Fields whose relative L2 error against the data is reported.
    pub fn evaluate(self, fields: &[&str]) -> Self {
        self.set("evaluate", "fields", strings(fields))
    }

    /// An exact solution of `field` (an expression of the inputs and constants), evaluated on
    /// an even grid of the domain as the reference of the reported error (`[evaluate] exact`).
    pub fn exact(mut self, field: &str, expression: &str) -> Self {
        let exact = self
            .section("evaluate")
            .entry("exact")
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = exact {
            t.insert(field.into(), Value::String(expression.into()));
        }
        self
    }

    /// Points per input of the exact solutions' grid (`[evaluate] grid`).
    pub fn exact_grid(self, counts: &[usize]) -> Self {
        let counts = counts.iter().map(|&n| Value::Integer(n as i64)).collect();
        self.set("evaluate", "grid", Value::Array(counts))
    }

    /// Loss weights balanced from the terms' gradient norms every `every` Adam iterations,
    /// each update keeping the fraction `alpha` of the old weight
    /// (`[loss_balance] kind = "grad_norm"`; the file's defaults are 100 and 0.9).
    pub fn loss_balance(self, every: usize, alpha: f64) -> Self {
        self.set("loss_balance", "kind", Value::String("grad_norm".into()))
            .set("loss_balance", "every", Value::Integer(every as i64))
            .set("loss_balance", "alpha", Value::Float(alpha))
    }

    /// Computes in f64 instead of f32.
    pub fn f64(self) -> Self {
        self.set("run", "precision", Value::String("f64".into()))
    }

    /// Options as for a problem file (dataset cache, overrides).
    pub fn options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// Validates and builds the problem; errors name the field as for a file, with the
    /// problem's name in place of the path.
    pub fn build(mut self) -> Result<Problem, ProblemError> {
        let name = self
            .table
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("problem")
            .to_string();
        let source = Path::new(&name).to_path_buf();
        if !self.losses.is_empty() {
            self.table.insert(
                "loss".into(),
                Value::Array(std::mem::take(&mut self.losses)),
            );
        }
        if let Some(data) = &self.code.data {
            // Name the in-memory data's axes and fields as a [dataset] section would.
            let mut ds = Table::new();
            ds.insert(
                "axes".into(),
                Value::Table(
                    data.axis_names
                        .iter()
                        .map(|a| (a.clone(), Value::String(a.clone())))
                        .collect(),
                ),
            );
            ds.insert(
                "fields".into(),
                Value::Table(
                    data.fields
                        .keys()
                        .map(|f| (f.clone(), Value::String(f.clone())))
                        .collect(),
                ),
            );
            self.table.insert("dataset".into(), Value::Table(ds));
        }
        let config = ProblemConfig::from_table(self.table, &source)?;
        Problem::from_parts(config, &source, &self.options, self.code)
    }
}
