//! Problem assembly: a validated [`ProblemConfig`] becomes compiled expressions, point sets
//! on the device, a network, and a loss function of the parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Tensor;
use pinn_core::backend::{self, DeviceError, to_vec};
use pinn_core::config::{
    ConfigError, DomainConfig, FitTarget, GridSpec, IrkMode, LbfgsConfig, LossConfig, MAX_POINTS,
    PointSetConfig, ProblemConfig, Reduction, Snapshot, TimeConfig, Transform,
};
use pinn_core::data::{DataError, GridData};
use pinn_core::expr::{Environment, Expression, FieldId, Symbols, Value};
use pinn_core::sampling::{
    Face, Layout, SeededRng, choose, lay_out, rng_from_seed, standard_normal,
};
use pinn_core::{
    DerivativeSet, DeviceKind, Jet, JetNetwork, Mode, Partial, Precision, TensorContext,
};
use pinn_nn::{Mlp, MlpSpec};
use pinn_rk::{ButcherTable, stages_for_step};
use thiserror::Error;

use crate::passes::{TermPoints, plan_passes};
use crate::reference::{DatasetStore, StoreError};

/// Errors while building a problem.
#[derive(Debug, Error)]
pub enum ProblemError {
    /// Invalid problem file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Missing or malformed data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Dataset generation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to load a problem: where datasets live and command-line overrides.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Root of the generated-dataset cache.
    pub datasets: PathBuf,
    /// Overrides `seed`.
    pub seed: Option<u64>,
    /// Overrides `run.device`.
    pub device: Option<DeviceKind>,
    /// Overrides `run.precision`.
    pub precision: Option<Precision>,
    /// Overrides `run.mode`.
    pub mode: Option<Mode>,
    /// Overrides `run.fuse_layers`.
    pub fuse_layers: Option<bool>,
    /// Iterations of an L-BFGS phase after Adam: overrides `optimizer.lbfgs.iterations`, or adds
    /// the phase with default settings; 0 removes it.
    pub lbfgs: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            datasets: PathBuf::from("datasets"),
            seed: None,
            device: None,
            precision: None,
            mode: None,
            fuse_layers: None,
            lbfgs: None,
        }
    }
}

/// An unknown scalar of an inverse problem.
#[derive(Clone, Debug)]
pub struct Unknown {
    /// Name.
    pub name: String,
    /// Initial trained value.
    pub init: f64,
    /// Representation while training.
    pub transform: Transform,
    /// True value, if known.
    pub truth: Option<f64>,
}

impl Unknown {
    /// Physical value of a trained value.
    pub fn physical(&self, raw: f64) -> f64 {
        match self.transform {
            Transform::Identity => raw,
            Transform::Exp => raw.exp(),
        }
    }
}

/// Points with, where they come from the dataset, the field values there.
#[derive(Clone, Debug, Default)]
struct PointSet {
    coords: Vec<f64>,
    rows: usize,
    values: Option<BTreeMap<String, Vec<f64>>>,
}

/// Which derivatives a loss term needs: the network's streams and each derived jet's.
#[derive(Clone, Debug, Default)]
struct Plan {
    network: Arc<DerivativeSet>,
    derived: Vec<Option<Arc<DerivativeSet>>>,
}

/// A discrete-time model: Gauss-Legendre IRK between two snapshots of the dataset.
#[derive(Clone, Debug)]
struct Discrete {
    stages: usize,
    mode: IrkMode,
    dt: f64,
    axis: usize,
    t1: usize,
    /// Maps stage right-hand sides back to `t0`: `Wᵀ` with `W = [A; bᵀ]` (forward) or `Aᵀ`.
    to_t0: Tensor<2>,
    /// Maps them forward to `t1`: `(𝟙bᵀ − A)ᵀ` (inverse models only).
    to_t1: Option<Tensor<2>>,
}

impl Discrete {
    fn columns(&self) -> usize {
        match self.mode {
            IrkMode::Forward => self.stages + 1,
            IrkMode::Inverse => self.stages,
        }
    }

    fn new(
        t: &TimeConfig,
        data: Option<&GridData>,
        ctx: &TensorContext,
    ) -> Result<Self, (String, String)> {
        let data = data.ok_or((
            "time".to_string(),
            "needs a [dataset] with a time axis".to_string(),
        ))?;
        let axis = data.axis_names.iter().position(|a| *a == t.axis).ok_or((
            "time.axis".to_string(),
            format!("`{}` is not a dataset axis", t.axis),
        ))?;
        let times = &data.axes[axis];
        let index = |i: i64, field: &str| -> Result<usize, (String, String)> {
            let n = times.len() as i64;
            let j = if i < 0 { n + i } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err((
                    format!("time.{field}"),
                    format!("index {i} is outside the {n} snapshots"),
                ))
            }
        };
        let (t0, t1) = (index(t.t0, "t0")?, index(t.t1, "t1")?);
        let dt = times[t1] - times[t0];
        if dt <= 0.0 {
            return Err(("time.t1".into(), "must come after t0".into()));
        }
        let q = t.stages.unwrap_or_else(|| stages_for_step(dt));
        let table = ButcherTable::gauss_legendre(q);
        let (to_t0, to_t1) = match t.mode {
            IrkMode::Forward => {
                let mut w = vec![0.0; q * (q + 1)];
                for j in 0..q {
                    for i in 0..q {
                        w[j * (q + 1) + i] = table.a(i, j);
                    }
                    w[j * (q + 1) + q] = table.b[j];
                }
                (ctx.matrix(&w, q, q + 1), None)
            }
            IrkMode::Inverse => {
                let mut a_t = vec![0.0; q * q];
                let mut m_t = vec![0.0; q * q];
                for j in 0..q {
                    for i in 0..q {
                        a_t[j * q + i] = table.a(i, j);
                        m_t[j * q + i] = table.b[j] - table.a(i, j);
                    }
                }
                (ctx.matrix(&a_t, q, q), Some(ctx.matrix(&m_t, q, q)))
            }
        };
        Ok(Self {
            stages: q,
            mode: t.mode,
            dt,
            axis,
            t1,
            to_t0,
            to_t1,
        })
    }
}

#[derive(Clone, Debug)]
enum Target {
    Data(Box<Tensor<2>>),
    Constant(f64),
}

impl Target {
    /// `pred − target` (a `[n, 1]` target broadcasts over the columns of `pred`).
    fn misfit(&self, pred: Tensor<2>) -> Tensor<2> {
        match self {
            Target::Data(t) => pred.sub((**t).clone()),
            Target::Constant(v) => pred.add_scalar(-v),
        }
    }
}

/// What a fit component compares with its target.
#[derive(Clone, Debug)]
enum Fitted {
    /// A field's value.
    Field(FieldId),
    /// An expression of fields, e.g. a derivative (`u_t`).
    Expression(Box<Expression>),
}

#[derive(Clone, Debug)]
enum Component {
    Fit {
        quantity: Fitted,
        target: Target,
    },
    Residual(usize),
    /// Top half of the rows minus bottom half (the two ends of a periodic axis).
    Periodic(Box<Expression>),
    /// `U + F(U)[:, :q] · map` against the data, `map` the step's Butcher weights times
    /// `± dt`, the target `[rows | 1, cols | 1]`.
    Irk {
        field: FieldId,
        target: Box<Tensor<2>>,
        rhs: usize,
        map: Box<Tensor<2>>,
    },
}

#[derive(Clone, Debug)]
struct LossTerm {
    inputs: Tensor<2>,
    components: Vec<(String, Component)>,
    plan: Plan,
    reduction: Reduction,
    weight: f64,
    /// The forward pass that computes this term's jet, and the term's rows in it.
    pass: (usize, std::ops::Range<usize>),
}

/// One forward pass of the network, shared by the loss terms whose rows it stacks (each term's
/// `pass` names it).
#[derive(Clone, Debug)]
struct ForwardPass {
    inputs: Tensor<2>,
    set: DerivativeSet,
}

/// Loss of one evaluation: the weighted total and every unweighted component.
#[derive(Clone, Debug)]
pub struct LossValue {
    /// Weighted sum of the components.
    pub total: Tensor<1>,
    /// Components in the order of [`Problem::component_names`].
    pub components: Vec<Tensor<1>>,
}

/// Relative L2 errors and identified parameters.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Evaluation {
    /// Relative L2 error of each evaluated field on the reference grid.
    pub relative_l2: BTreeMap<String, f64>,
    /// Each unknown's physical value, truth and relative error.
    pub unknowns: BTreeMap<String, UnknownReport>,
}

/// An identified parameter.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct UnknownReport {
    /// Identified value.
    pub value: f64,
    /// True value, if known.
    pub truth: Option<f64>,
    /// `|value - truth| / |truth|`.
    pub relative_error: Option<f64>,
}

/// A problem ready to train: compiled residuals, point sets on the device and a network.
pub struct Problem {
    config: ProblemConfig,
    source: PathBuf,
    ctx: TensorContext,
    symbols: Symbols,
    network: Box<dyn JetNetwork>,
    derived: Vec<Expression>,
    derived_order: Vec<usize>,
    residuals: Vec<Residual>,
    unknowns: Vec<Unknown>,
    terms: Vec<LossTerm>,
    passes: Vec<ForwardPass>,
    dataset: Option<GridData>,
    /// The exact solutions of `evaluate.exact` on their even grid.
    exact: Option<GridData>,
    evaluated: Vec<(String, FieldId)>,
    /// Grid points of the evaluation (`evaluate.at`), all when `None`.
    evaluation_points: Option<Vec<usize>>,
    initial: Vec<Tensor<2>>,
    input_axes: Vec<usize>,
    discrete: Option<Discrete>,
    /// Whether discrete-time terms run as one fused operation (the fused modes) or op by op.
    fused_irk: bool,
}

impl std::fmt::Debug for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Problem")
            .field("name", &self.config.name)
            .field("network", &self.network.describe())
            .finish_non_exhaustive()
    }
}

struct Env<'a> {
    outputs: Vec<Jet>,
    derived: Vec<Option<Jet>>,
    inputs: &'a Tensor<2>,
    unknowns: &'a [Tensor<2>],
}

fn restrict(jet: Jet, target: &Arc<DerivativeSet>) -> Jet {
    if target.is_empty() {
        return Jet::constant(jet.into_value());
    }
    if jet.derivative_set() == target {
        return jet;
    }
    let streams = target
        .iter()
        .filter_map(|p| jet.stream(p).map(|t| (*p, t.clone())))
        .collect();
    Jet::from_parts(jet.value().clone(), streams, target.clone())
}

impl Environment for Env<'_> {
    fn field(&self, field: FieldId, partial: Partial, target: &Arc<DerivativeSet>) -> Jet {
        let jet = match field {
            FieldId::Output(i) => &self.outputs[i],
            FieldId::Derived(i) => self.derived[i]
                .as_ref()
                .expect("derived outputs are built before they are read"),
        };
        let shifted = if partial.is_value() {
            jet.clone()
        } else {
            jet.differentiate(&partial)
        };
        restrict(shifted, target)
    }

    fn input(&self, index: usize, target: &Arc<DerivativeSet>) -> Jet {
        let [rows, _] = self.inputs.dims();
        let value = self.inputs.clone().slice([0..rows, index..index + 1]);
        let d = Partial::first(index);
        let mut streams = BTreeMap::new();
        if target.contains(&d) {
            streams.insert(d, value.ones_like());
        }
        Jet::from_parts(value, streams, target.clone())
    }

    fn unknown(&self, index: usize) -> Jet {
        Jet::constant(self.unknowns[index].clone())
    }
}

/// A residual written as a Rust closure over named derivative tensors (the API counterpart of
/// a `[residuals]` expression).
#[derive(Clone)]
pub struct ResidualFn {
    reads: Vec<String>,
    f: Arc<dyn Fn(&Fields) -> Tensor<2> + Send + Sync>,
}

impl ResidualFn {
    /// A residual reading the symbols `reads` (spelled as in expressions: `u`, `u_xx`, `x`,
    /// a constant or an unknown) and combining them with `f`; the tensors are `[points, 1]`
    /// (unknowns and constants `[1, 1]`, broadcasting).
    pub fn new(reads: &[&str], f: impl Fn(&Fields) -> Tensor<2> + Send + Sync + 'static) -> Self {
        Self {
            reads: reads.iter().map(|s| s.to_string()).collect(),
            f: Arc::new(f),
        }
    }
}

impl std::fmt::Debug for ResidualFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidualFn")
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// The tensors a [`ResidualFn`] declared, by symbol name.
pub struct Fields {
    values: BTreeMap<String, Tensor<2>>,
}

impl Fields {
    /// The tensor of symbol `name`.
    ///
    /// # Panics
    /// If the closure did not declare `name` in [`ResidualFn::new`]'s `reads` (a programming
    /// error in the closure, found the first time it runs).
    pub fn get(&self, name: &str) -> Tensor<2> {
        match self.values.get(name) {
            Some(t) => t.clone(),
            None => panic!(
                "residual closure read `{name}`, which it did not declare (declared: {})",
                self.values.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// A compiled residual.
enum Residual {
    Expression(Expression),
    Closure {
        reads: Vec<(String, Expression)>,
        f: Arc<dyn Fn(&Fields) -> Tensor<2> + Send + Sync>,
    },
}

impl Residual {
    fn requirements(
        &self,
        target: &DerivativeSet,
    ) -> Result<Vec<(FieldId, Partial)>, pinn_core::expr::ExprError> {
        match self {
            Residual::Expression(e) => e.requirements(target),
            Residual::Closure { reads, .. } => {
                let mut all = Vec::new();
                for (_, e) in reads {
                    all.extend(e.requirements(target)?);
                }
                Ok(all)
            }
        }
    }

    fn depends_on_fields(&self) -> bool {
        match self {
            Residual::Expression(e) => !e.field_symbols().is_empty(),
            Residual::Closure { reads, .. } => {
                reads.iter().any(|(_, e)| !e.field_symbols().is_empty())
            }
        }
    }

    /// The residual's value on the environment's points.
    fn value(&self, env: &Env<'_>, values: &Arc<DerivativeSet>, like: &Tensor<2>) -> Tensor<2> {
        match self {
            Residual::Expression(e) => jet_value(e.eval(env, values), like),
            Residual::Closure { reads, f } => {
                let fields = Fields {
                    values: reads
                        .iter()
                        .map(|(name, e)| (name.clone(), jet_value(e.eval(env, values), like)))
                        .collect(),
                };
                f(&fields)
            }
        }
    }
}

/// Predictions and reference values on the evaluation grid ([`Problem::evaluation_grid`]).
#[derive(Clone, Debug)]
pub struct EvaluationGrid {
    /// The axes that vary over the evaluation points: name and coordinates.
    pub axes: Vec<(String, Vec<f64>)>,
    /// Per evaluated field: name, prediction, reference (C order of the varying axes).
    pub fields: Vec<(String, Vec<f64>, Vec<f64>)>,
}

/// Parts of a problem given in code rather than in the problem file.
#[derive(Clone, Debug, Default)]
pub struct InCode {
    /// Residual closures by name (used like `[residuals]` entries).
    pub residuals: Vec<(String, ResidualFn)>,
    /// A reference solution in memory, used instead of `[dataset]`'s files; `[dataset]` still
    /// names its axes and fields when present.
    pub data: Option<GridData>,
}

fn jet_value(v: Value, rows_like: &Tensor<2>) -> Tensor<2> {
    match v {
        Value::Jet(j) => j.into_value(),
        Value::Scalar(c) => rows_like.zeros_like().add_scalar(c),
    }
}

impl Problem {
    /// Loads and builds a problem from a TOML file.
    pub fn from_file(path: &Path, options: &LoadOptions) -> Result<Self, ProblemError> {
        let config = ProblemConfig::load(path)?;
        Self::from_config(config, path, options)
    }

    /// Builds a problem from a parsed configuration; `source` names it in messages and anchors
    /// relative dataset paths.
    pub fn from_config(
        config: ProblemConfig,
        source: &Path,
        options: &LoadOptions,
    ) -> Result<Self, ProblemError> {
        Self::from_parts(config, source, options, InCode::default())
    }

    /// [`Self::from_config`] with residual closures and in-memory data (the builder API).
    pub fn from_parts(
        mut config: ProblemConfig,
        source: &Path,
        options: &LoadOptions,
        code: InCode,
    ) -> Result<Self, ProblemError> {
        if let Some(seed) = options.seed {
            config.seed = seed;
        }
        if let Some(d) = options.device {
            config.run.device = d;
        }
        if let Some(p) = options.precision {
            config.run.precision = p;
        }
        if let Some(m) = options.mode {
            config.run.mode = m;
        }
        if let Some(fuse) = options.fuse_layers {
            config.run.fuse_layers = fuse;
        }
        match (options.lbfgs, config.optimizer.lbfgs.as_mut()) {
            (None, _) => {}
            (Some(0), _) => config.optimizer.lbfgs = None,
            (Some(n), Some(lbfgs)) => lbfgs.iterations = n,
            (Some(n), None) => config.optimizer.lbfgs = Some(LbfgsConfig::with_iterations(n)),
        }
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: source.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let ctx = TensorContext::new(config.run.device, config.run.precision, config.run.mode)
            .map_err(|e| {
                let field = match e {
                    DeviceError::Mode(..) => "run.mode",
                    DeviceError::Device(..) => "run.device",
                };
                invalid(field, e.to_string())
            })?;
        let symbols = Symbols {
            inputs: config.domain.inputs.clone(),
            outputs: config.network.outputs.clone(),
            derived: config.derived.keys().cloned().collect(),
            constants: config.constants.clone(),
            unknowns: config.unknowns.keys().cloned().collect(),
        };
        let compile = |section: &str, name: &str, text: &str| {
            Expression::compile(text, &symbols)
                .map_err(|e| invalid(&format!("{section}.{name}"), e.to_string()))
        };
        let derived: Vec<Expression> = config
            .derived
            .iter()
            .map(|(n, t)| compile("derived", n, t))
            .collect::<Result<_, _>>()?;
        let mut residual_names: Vec<String> = config.residuals.keys().cloned().collect();
        let mut residuals: Vec<Residual> = config
            .residuals
            .iter()
            .map(|(n, t)| compile("residuals", n, t).map(Residual::Expression))
            .collect::<Result<_, _>>()?;
        for (name, closure) in &code.residuals {
            if residual_names.contains(name) {
                return Err(invalid(
                    &format!("residuals.{name}"),
                    "defined both as an expression and as a closure".into(),
                )
                .into());
            }
            let reads = closure
                .reads
                .iter()
                .map(|symbol| Ok((symbol.clone(), compile("residuals", name, symbol)?)))
                .collect::<Result<_, ConfigError>>()?;
            residual_names.push(name.clone());
            residuals.push(Residual::Closure {
                reads,
                f: closure.f.clone(),
            });
        }
        for (name, r) in residual_names.iter().zip(&residuals) {
            if !r.depends_on_fields() {
                return Err(invalid(
                    &format!("residuals.{name}"),
                    "the residual does not depend on any output".into(),
                )
                .into());
            }
        }
        let derived_order = topological_order(&derived).map_err(|i| {
            invalid(
                &format!("derived.{}", symbols.derived[i]),
                "depends on itself".into(),
            )
        })?;
        let unknowns: Vec<Unknown> = config
            .unknowns
            .iter()
            .map(|(name, u)| Unknown {
                name: name.clone(),
                init: u.init,
                transform: u.transform,
                truth: u.truth,
            })
            .collect();

        let dataset = match (&config.dataset, code.data) {
            (_, Some(data)) => {
                for input in &config.domain.inputs {
                    if !data.axis_names.contains(input) {
                        return Err(invalid(
                            "dataset",
                            format!("the in-memory data has no axis for input `{input}`"),
                        )
                        .into());
                    }
                }
                Some(data)
            }
            (None, None) => None,
            (Some(ds), None) => {
                let dir = match (&ds.dir, &ds.generator) {
                    (Some(dir), _) => source.parent().unwrap_or(Path::new(".")).join(dir),
                    (None, Some(generator)) => {
                        DatasetStore::new(&options.datasets).ensure(generator)?
                    }
                    (None, None) => {
                        return Err(invalid("dataset", "needs `generator` or `dir`".into()).into());
                    }
                };
                let axes = ds.axis_list().map_err(|m| invalid("dataset.axes", m))?;
                for input in &config.domain.inputs {
                    if !axes.iter().any(|(a, _)| a == input) {
                        return Err(invalid(
                            "dataset.axes",
                            format!("no axis file for input `{input}`"),
                        )
                        .into());
                    }
                }
                let fields: Vec<(String, String)> = ds
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let grid = GridData::load(&dir, &axes, &fields)
                    .map_err(|e| invalid(&format!("dataset.{}", e.entry), e.source.to_string()))?;
                Some(grid)
            }
        };

        if let Some(data) = &dataset
            && !config.dataset.as_ref().is_some_and(|d| d.outside_domain)
        {
            check_axes_in_domain(data, &config.domain).map_err(|(f, m)| invalid(&f, m))?;
        }
        let input_axes: Vec<usize> = match &dataset {
            Some(d) => config
                .domain
                .inputs
                .iter()
                .filter_map(|i| d.axis_names.iter().position(|a| a == i))
                .collect(),
            None => (0..config.domain.inputs.len()).collect(),
        };
        let discrete = match &config.time {
            None => None,
            Some(t) => {
                Some(Discrete::new(t, dataset.as_ref(), &ctx).map_err(|(f, m)| invalid(&f, m))?)
            }
        };
        let columns = discrete.as_ref().map_or(1, Discrete::columns);
        let spec = MlpSpec {
            inputs: config.domain.inputs.len(),
            hidden: config.network.hidden.clone(),
            outputs: config.network.outputs.len() * columns,
            activation: config.network.activation,
            init: config.network.init,
        };
        let network = Mlp::new(&spec, &config.domain.lower, &config.domain.upper, &ctx)
            .with_fused_layers(
                config.run.mode.fuses_layers() && config.run.fuse_layers,
                &ctx,
            )
            .with_half_matmuls(config.run.mode.uses_half_matmuls());

        let mut rng = rng_from_seed(config.seed);
        let sets = build_point_sets(&config, source, dataset.as_ref(), &input_axes, &mut rng)?;

        let mut problem = Self {
            source: source.to_path_buf(),
            ctx,
            symbols,
            network: Box::new(network),
            derived,
            derived_order,
            residuals,
            unknowns,
            terms: Vec::new(),
            passes: Vec::new(),
            dataset,
            exact: None,
            evaluated: Vec::new(),
            evaluation_points: None,
            initial: Vec::new(),
            input_axes,
            discrete,
            fused_irk: config.run.mode.fuses_layers() && config.run.fuse_layers,
            config,
        };
        let loss_configs = problem.config.loss.clone();
        let mut term_coords = Vec::new();
        let mut component_names = BTreeMap::new();
        for (i, l) in loss_configs.iter().enumerate() {
            let (term, coords) = problem.build_term(i, l, &sets, &residual_names)?;
            // Each component is a column of metrics.csv and an entry of report.json.
            for (name, _) in &term.components {
                if let Some(first) = component_names.insert(name.clone(), i) {
                    return Err(invalid(
                        &format!("loss[{i}].name"),
                        format!(
                            "loss component `{name}` is also a component of loss[{first}]; \
                             give the terms different `name`s"
                        ),
                    )
                    .into());
                }
            }
            problem.terms.push(term);
            term_coords.push(coords);
        }
        let stack = problem.ctx.kind().launches_kernels();
        problem.share_forward_passes(&term_coords, stack);
        let exact = &problem.config.evaluate.exact;
        if !exact.is_empty() {
            let grid = exact_grid(&problem.config).map_err(|(f, m)| invalid(&f, m))?;
            problem.exact = Some(grid);
        }
        let mut evaluated = problem.config.evaluate.fields.clone();
        for name in exact.keys() {
            if !evaluated.contains(name) {
                evaluated.push(name.clone());
            }
        }
        for name in evaluated {
            let key = if exact.contains_key(&name) {
                format!("evaluate.exact.{name}")
            } else {
                "evaluate.fields".to_string()
            };
            let field = problem.field_id(&name).ok_or_else(|| {
                invalid(&key, format!("`{name}` is not an output or derived output"))
            })?;
            let has = problem
                .reference()
                .is_some_and(|d| d.fields.contains_key(&name));
            if !has {
                let what = if problem.exact.is_some() {
                    format!("`evaluate.exact` gives no solution for `{name}`")
                } else {
                    format!("the dataset has no field `{name}` to compare with")
                };
                return Err(invalid(&key, what).into());
            }
            problem.evaluated.push((name, field));
        }
        if !problem.config.evaluate.at.is_empty() {
            let data = problem.reference().ok_or_else(|| {
                invalid(
                    "evaluate.at",
                    "needs a [dataset] or `evaluate.exact`".to_string(),
                )
            })?;
            let flat = grid_slice(data, &problem.config.evaluate.at)
                .map_err(|m| invalid("evaluate.at", m))?;
            problem.evaluation_points = Some(flat);
        }
        let mut initial = problem.network.init_parameters(&mut rng, &problem.ctx);
        for u in &problem.unknowns {
            initial.push(problem.ctx.scalar(u.init));
        }
        problem.initial = initial;
        Ok(problem)
    }

    /// The grid the evaluated fields are compared on: the exact solutions' grid if
    /// `evaluate.exact` is given, else the dataset.
    fn reference(&self) -> Option<&GridData> {
        self.exact.as_ref().or(self.dataset.as_ref())
    }

    fn field_id(&self, name: &str) -> Option<FieldId> {
        if let Some(i) = self.symbols.outputs.iter().position(|n| n == name) {
            return Some(FieldId::Output(i));
        }
        self.symbols
            .derived
            .iter()
            .position(|n| n == name)
            .map(FieldId::Derived)
    }

    fn build_term(
        &self,
        index: usize,
        l: &LossConfig,
        sets: &BTreeMap<String, PointSet>,
        residual_names: &[String],
    ) -> Result<(LossTerm, Vec<f64>), ProblemError> {
        let field_path = format!("loss[{index}]");
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: self.source.clone(),
            field: format!("{field_path}.{field}"),
            message,
        };
        let set = sets.get(&l.points).ok_or_else(|| {
            invalid(
                "points",
                format!(
                    "no point set `{}`; defined: {}",
                    l.points,
                    sets.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        if set.rows == 0 {
            return Err(invalid("points", format!("point set `{}` is empty", l.points)).into());
        }
        let base = l.name.clone().unwrap_or_else(|| l.points.clone());
        let count =
            l.fit.len() + l.residuals.len() + l.periodic.as_ref().map_or(0, |p| p.fields.len());
        let label = |what: &str| {
            if count == 1 && l.name.is_some() {
                base.clone()
            } else {
                format!("{base}:{what}")
            }
        };
        let dims = self.config.domain.inputs.len();
        let mut components = Vec::new();
        let mut needs: Vec<(FieldId, Partial)> = Vec::new();
        for fit in l.fit.iter() {
            let name = &fit.quantity;
            let in_fit = |message: String| match fit.target {
                FitTarget::Data => invalid("fit", message),
                _ => invalid(&format!("fit.{name}"), message),
            };
            let target = match &fit.target {
                FitTarget::Data => match l.fit_value {
                    Some(v) => Target::Constant(v),
                    None => {
                        let values = set
                            .values
                            .as_ref()
                            .and_then(|v| v.get(name))
                            .ok_or_else(|| {
                                in_fit(format!(
                                    "point set `{}` carries no data for `{name}` (only dataset grid points do; or set `fit_value`, or give a target: `fit = {{ {name} = \"sin(pi*x)\" }}`)",
                                    l.points
                                ))
                            })?;
                        Target::Data(Box::new(self.ctx.matrix(values, set.rows, 1)))
                    }
                },
                FitTarget::Value(v) => Target::Constant(*v),
                FitTarget::Expression(text) => {
                    let e = Expression::compile_pointwise(
                        text,
                        &self.config.domain.inputs,
                        &self.config.constants,
                    )
                    .map_err(|e| in_fit(e.to_string()))?;
                    let values = set
                        .coords
                        .chunks(dims)
                        .map(|point| e.value_at(point))
                        .collect::<Option<Vec<f64>>>()
                        .ok_or_else(|| in_fit("reads more than inputs and constants".into()))?;
                    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                        return Err(in_fit(format!(
                            "`{text}` is {} at the point {:?} of `{}`",
                            values[i],
                            &set.coords[i * dims..(i + 1) * dims],
                            l.points
                        ))
                        .into());
                    }
                    Target::Data(Box::new(self.ctx.matrix(&values, set.rows, 1)))
                }
            };
            let quantity = match (self.field_id(name), &fit.target) {
                (Some(field), _) => {
                    needs.push((field, Partial::VALUE));
                    Fitted::Field(field)
                }
                (None, FitTarget::Data) => {
                    return Err(
                        in_fit(format!("`{name}` is not an output or derived output")).into(),
                    );
                }
                (None, _) => {
                    // A derivative of a field (`u_t`), or any expression of fields.
                    let e = Expression::compile(name, &self.symbols)
                        .map_err(|e| in_fit(e.to_string()))?;
                    if e.field_symbols().is_empty() {
                        return Err(
                            in_fit(format!("`{name}` reads no output or derived output")).into(),
                        );
                    }
                    let reqs = e
                        .requirements(&DerivativeSet::values_only())
                        .map_err(|e| in_fit(e.to_string()))?;
                    self.plan(reqs.clone()).map_err(in_fit)?;
                    needs.extend(reqs);
                    Fitted::Expression(Box::new(e))
                }
            };
            components.push((label(name), Component::Fit { quantity, target }));
        }
        for name in &l.residuals {
            let r = residual_names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| {
                    invalid(
                        "residuals",
                        format!(
                            "no residual `{name}`; defined: {}",
                            residual_names.join(", ")
                        ),
                    )
                })?;
            let reqs = self.residuals[r]
                .requirements(&DerivativeSet::values_only())
                .map_err(|e| invalid("residuals", format!("residual `{name}`: {e}")))?;
            // Planned on its own first, so that an unsupported derivative order reached
            // through derived outputs is reported against the residual that reads it.
            self.plan(reqs.clone())
                .map_err(|m| invalid("residuals", format!("residual `{name}`: {m}")))?;
            needs.extend(reqs);
            components.push((label(name), Component::Residual(r)));
        }
        let mut coords = set.coords.clone();
        let mut rows = set.rows;
        if let Some(periodic) = &l.periodic {
            let axis = self
                .config
                .domain
                .inputs
                .iter()
                .position(|i| *i == periodic.axis)
                .ok_or_else(|| {
                    invalid(
                        "periodic.axis",
                        format!("`{}` is not an input", periodic.axis),
                    )
                })?;
            let mut upper = coords.clone();
            for row in coords.chunks_mut(dims) {
                row[axis] = self.config.domain.lower[axis];
            }
            for row in upper.chunks_mut(dims) {
                row[axis] = self.config.domain.upper[axis];
            }
            coords.extend(upper);
            rows *= 2;
            for text in &periodic.fields {
                let e = Expression::compile(text, &self.symbols)
                    .map_err(|e| invalid("periodic.fields", e.to_string()))?;
                needs.extend(
                    e.requirements(&DerivativeSet::values_only())
                        .map_err(|e| invalid("periodic.fields", e.to_string()))?,
                );
                components.push((label(text), Component::Periodic(Box::new(e))));
            }
        }
        if let Some(snapshot) = l.irk {
            let discrete = self
                .discrete
                .as_ref()
                .ok_or_else(|| invalid("irk", "needs a [time] section".into()))?;
            let rhs_name = l.rhs.clone().unwrap_or_default();
            let rhs = residual_names
                .iter()
                .position(|n| *n == rhs_name)
                .ok_or_else(|| {
                    invalid(
                        "rhs",
                        format!(
                            "no residual `{rhs_name}`; defined: {}",
                            residual_names.join(", ")
                        ),
                    )
                })?;
            needs.extend(
                self.residuals[rhs]
                    .requirements(&DerivativeSet::values_only())
                    .map_err(|e| invalid("rhs", e.to_string()))?,
            );
            let map = match (snapshot, &discrete.to_t1) {
                (Snapshot::T0, _) => discrete.to_t0.clone().mul_scalar(-discrete.dt),
                (Snapshot::T1, Some(to_t1)) => to_t1.clone().mul_scalar(discrete.dt),
                (Snapshot::T1, None) => {
                    return Err(invalid(
                        "irk",
                        "a forward model is mapped to t0 only (its last column is t1)".into(),
                    )
                    .into());
                }
            };
            // The fit component built above becomes the Runge-Kutta map of that field.
            let (name, fit) = components.remove(0);
            let Component::Fit {
                quantity: Fitted::Field(field),
                target,
            } = fit
            else {
                unreachable!("validated: an irk term fits exactly one field to data")
            };
            let target = match target {
                Target::Data(t) => t,
                Target::Constant(v) => Box::new(self.ctx.scalar(v)),
            };
            components.insert(
                0,
                (
                    name,
                    Component::Irk {
                        field,
                        target,
                        rhs,
                        map: Box::new(map),
                    },
                ),
            );
        }
        let plan = self.plan(needs).map_err(|m| invalid("residuals", m))?;
        let term = LossTerm {
            inputs: self.ctx.matrix(&coords, rows, dims),
            components,
            plan,
            reduction: l.reduction,
            weight: l.weight,
            pass: (0, 0..rows),
        };
        Ok((term, coords))
    }

    /// Plans the forward passes (`crate::passes`): terms at the same points get one network
    /// pass between them, and with `stack` (on a GPU) so do terms whose points stack at little
    /// extra cost.
    fn share_forward_passes(&mut self, term_coords: &[Vec<f64>], stack: bool) {
        let dims = self.config.domain.inputs.len();
        let points: Vec<TermPoints<'_>> = self
            .terms
            .iter()
            .zip(term_coords)
            .map(|(t, coords)| TermPoints {
                coords,
                rows: coords.len() / dims,
                set: &t.plan.network,
            })
            .collect();
        let plans = plan_passes(&points, stack);
        self.passes = plans
            .into_iter()
            .enumerate()
            .map(|(index, plan)| {
                for (t, rows) in &plan.members {
                    self.terms[*t].pass = (index, rows.clone());
                }
                // Terms at one set of points: their own input tensor serves the pass.
                let inputs = match plan.members.first() {
                    Some((t, rows)) if rows.len() == plan.rows => self.terms[*t].inputs.clone(),
                    _ => self.ctx.matrix(&plan.coords, plan.rows, dims),
                };
                ForwardPass {
                    inputs,
                    set: plan.set,
                }
            })
            .collect();
    }

    fn plan(&self, needs: Vec<(FieldId, Partial)>) -> Result<Plan, String> {
        let mut need: BTreeMap<FieldId, BTreeSet<Partial>> = BTreeMap::new();
        for (f, p) in needs {
            need.entry(f).or_default().insert(p);
        }
        let mut derived = vec![None; self.derived.len()];
        for &d in self.derived_order.iter().rev() {
            let Some(partials) = need.get(&FieldId::Derived(d)) else {
                continue;
            };
            let target = DerivativeSet::closure_of(partials.iter().copied());
            let reqs = self.derived[d].requirements(&target).map_err(|e| {
                // Name the derived output and the highest derivative of it that is read, not
                // only the expression text the jet engine stumbled on.
                let name = &self.symbols.derived[d];
                let inputs = &self.config.domain.inputs;
                let highest = partials
                    .iter()
                    .max_by_key(|p| p.order())
                    .map(|p| p.display_with(inputs).to_string())
                    .unwrap_or_default();
                format!(
                    "derived output `{name}` = `{}` is read as `{name}_{highest}`, which {}",
                    self.derived[d], e.message
                )
            })?;
            for (f, p) in reqs {
                need.entry(f).or_default().insert(p);
            }
            derived[d] = Some(Arc::new(target));
        }
        let network = DerivativeSet::closure_of(
            need.iter()
                .filter(|(f, _)| matches!(f, FieldId::Output(_)))
                .flat_map(|(_, ps)| ps.iter().copied()),
        );
        Ok(Plan {
            network: Arc::new(network),
            derived,
        })
    }

    /// The parsed configuration (after overrides).
    pub fn config(&self) -> &ProblemConfig {
        &self.config
    }

    /// Stage count and step of a discrete-time model.
    pub fn irk_stages(&self) -> Option<(usize, f64)> {
        self.discrete.as_ref().map(|d| (d.stages, d.dt))
    }

    /// The tensor context (device and precision).
    pub fn context(&self) -> &TensorContext {
        &self.ctx
    }

    /// The network.
    pub fn network(&self) -> &dyn JetNetwork {
        self.network.as_ref()
    }

    /// The unknown parameters, in the order they follow the network parameters.
    pub fn unknowns(&self) -> &[Unknown] {
        &self.unknowns
    }

    /// Initial parameters: the network's, then one `[1, 1]` tensor per unknown.
    pub fn initial_parameters(&self) -> Vec<Tensor<2>> {
        self.initial.clone()
    }

    /// Number of network parameter tensors (the unknowns follow them).
    pub fn network_parameter_count(&self) -> usize {
        self.initial.len() - self.unknowns.len()
    }

    /// Names of the loss components, as logged.
    pub fn component_names(&self) -> Vec<String> {
        self.terms
            .iter()
            .flat_map(|t| t.components.iter().map(|(n, _)| n.clone()))
            .collect()
    }

    /// The problem file's weight of each component (its term's `weight`), in the order of
    /// [`Problem::component_names`].
    pub fn component_weights(&self) -> Vec<f64> {
        self.terms
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.weight, t.components.len()))
            .collect()
    }

    /// For each component (in the order of [`Problem::component_names`]), the index of the
    /// `[[loss]]` entry it comes from.
    pub fn component_loss_entries(&self) -> Vec<usize> {
        self.terms
            .iter()
            .enumerate()
            .flat_map(|(i, t)| std::iter::repeat_n(i, t.components.len()))
            .collect()
    }

    /// Number of points in each loss term.
    pub fn term_sizes(&self) -> Vec<usize> {
        self.terms.iter().map(|t| t.inputs.dims()[0]).collect()
    }

    /// The derivative streams the network propagates for each loss term.
    pub fn term_derivatives(&self) -> Vec<DerivativeSet> {
        self.terms
            .iter()
            .map(|t| (*t.plan.network).clone())
            .collect()
    }

    /// The loss terms (by index) that each forward pass of the network serves: terms at the
    /// same points share a pass, and on a GPU so do terms whose points stack at little extra
    /// cost.
    pub fn forward_passes(&self) -> Vec<Vec<usize>> {
        let mut terms = vec![Vec::new(); self.passes.len()];
        for (t, term) in self.terms.iter().enumerate() {
            terms[term.pass.0].push(t);
        }
        terms
    }

    fn physical_unknowns(&self, params: &[Tensor<2>]) -> Vec<Tensor<2>> {
        let n = self.network_parameter_count();
        self.unknowns
            .iter()
            .zip(&params[n..])
            .map(|(u, raw)| match u.transform {
                Transform::Identity => raw.clone(),
                Transform::Exp => raw.clone().exp(),
            })
            .collect()
    }

    /// The fields at `inputs`, from the network's jet there (which carries at least
    /// `plan.network`): outputs, then the derived outputs the plan asks for.
    fn environment<'a>(
        &self,
        jet: Jet,
        inputs: &'a Tensor<2>,
        unknowns: &'a [Tensor<2>],
        plan: &Plan,
    ) -> Env<'a> {
        let outputs = if self.discrete.is_some() {
            vec![jet]
        } else {
            (0..self.symbols.outputs.len())
                .map(|i| jet.columns(i, i + 1))
                .collect()
        };
        let mut env = Env {
            outputs,
            derived: vec![None; self.derived.len()],
            inputs,
            unknowns,
        };
        for &d in &self.derived_order {
            if let Some(target) = &plan.derived[d] {
                let value = self.derived[d].eval(&env, target);
                let jet = match value {
                    Value::Jet(j) => restrict(j, target),
                    Value::Scalar(c) => Jet::constant(jet_value(
                        Value::Scalar(c),
                        &inputs.clone().slice([0..inputs.dims()[0], 0..1]),
                    )),
                };
                env.derived[d] = Some(jet);
            }
        }
        env
    }

    /// The loss at `params` (network parameters then unknowns). Inside autodiff, a single
    /// `total.backward()` gives every parameter gradient.
    pub fn loss(&self, params: &[Tensor<2>]) -> LossValue {
        let unknowns = self.physical_unknowns(params);
        let values = Arc::new(DerivativeSet::values_only());
        let mut total: Option<Tensor<1>> = None;
        let mut components = Vec::new();
        let n = self.network_parameter_count();
        let jets: Vec<Jet> = self
            .passes
            .iter()
            .map(|p| self.network.forward(&params[..n], &p.inputs, &p.set))
            .collect();
        for term in &self.terms {
            let (pass, rows) = &term.pass;
            let jet = restrict(jets[*pass].rows(rows.start, rows.end), &term.plan.network);
            let env = self.environment(jet, &term.inputs, &unknowns, &term.plan);
            for (_, c) in &term.components {
                let diff = match c {
                    Component::Fit { quantity, target } => target.misfit(match quantity {
                        Fitted::Field(field) => {
                            env.field(*field, Partial::VALUE, &values).into_value()
                        }
                        Fitted::Expression(e) => {
                            jet_value(e.eval(&env, &values), env.outputs[0].value())
                        }
                    }),
                    Component::Residual(r) => {
                        self.residuals[*r].value(&env, &values, env.outputs[0].value())
                    }
                    Component::Periodic(e) => {
                        let v = jet_value(e.eval(&env, &values), env.outputs[0].value());
                        let [rows, cols] = v.dims();
                        let half = rows / 2;
                        v.clone()
                            .slice([0..half, 0..cols])
                            .sub(v.slice([half..rows, 0..cols]))
                    }
                    Component::Irk {
                        field,
                        target,
                        rhs,
                        map,
                    } => {
                        let u = env.field(*field, Partial::VALUE, &values).into_value();
                        let f = self.residuals[*rhs].value(&env, &values, &u);
                        if self.fused_irk && f.dims() == u.dims() {
                            // One operation: the product, the misfit and its sum of squares.
                            let elements = u.dims().iter().product::<usize>();
                            let sum =
                                backend::irk_misfit(u, f, (**map).clone(), (**target).clone());
                            let reduced = match term.reduction {
                                Reduction::Mean => sum.div_scalar(elements as f64),
                                Reduction::Sum => sum,
                            };
                            total = Some(add_weighted(total, &reduced, term.weight));
                            components.push(reduced);
                            continue;
                        }
                        let [rows, cols] = f.dims();
                        let q = map.dims()[0];
                        let f = if cols > q {
                            f.slice([0..rows, 0..q])
                        } else {
                            f
                        };
                        u.add(f.matmul((**map).clone())).sub((**target).clone())
                    }
                };

                let sq = diff.clone().mul(diff);
                let reduced = match term.reduction {
                    Reduction::Mean => sq.mean(),
                    Reduction::Sum => sq.sum(),
                };
                total = Some(add_weighted(total, &reduced, term.weight));
                components.push(reduced);
            }
        }
        LossValue {
            total: total.expect("validated: at least one loss component"),
            components,
        }
    }

    /// Values of the named fields at the given points (`rows × inputs`, row-major); for a
    /// discrete-time model, the last output column (the solution at `t1` of a forward model).
    pub fn predict(&self, params: &[Tensor<2>], points: &[f64], fields: &[&str]) -> Vec<Vec<f64>> {
        let dims = self.config.domain.inputs.len();
        let rows = points.len() / dims;
        let ids: Vec<FieldId> = fields.iter().filter_map(|f| self.field_id(f)).collect();
        let plan = self
            .plan(ids.iter().map(|f| (*f, Partial::VALUE)).collect())
            .unwrap_or_default();
        let unknowns = self.physical_unknowns(params);
        let n = self.network_parameter_count();
        let values = Arc::new(DerivativeSet::values_only());
        let mut out = vec![Vec::with_capacity(rows); ids.len()];
        const CHUNK: usize = 16_384;
        for start in (0..rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(rows);
            let inputs = self
                .ctx
                .matrix(&points[start * dims..end * dims], end - start, dims);
            let jet = self.network.forward(&params[..n], &inputs, &plan.network);
            let env = self.environment(jet, &inputs, &unknowns, &plan);
            for (k, f) in ids.iter().enumerate() {
                let v = env.field(*f, Partial::VALUE, &values).into_value();
                let [n, cols] = v.dims();
                let last = if cols > 1 {
                    v.slice([0..n, cols - 1..cols])
                } else {
                    v
                };
                out[k].extend(to_vec(&last));
            }
        }
        out
    }

    /// The evaluated fields on the evaluation grid (the reference grid, its `evaluate.at` slice
    /// or a discrete model's `t1` snapshot): the axes that vary there with their coordinates,
    /// and per field the prediction and the reference, in the grid's C order. `None` without
    /// a dataset or evaluated fields.
    pub fn evaluation_grid(&self, params: &[Tensor<2>]) -> Option<EvaluationGrid> {
        let (data, flat, fields) = self.evaluated_fields(params)?;
        // Axes along which the evaluation points vary, in grid order.
        let indices: Vec<Vec<usize>> = flat.iter().map(|&f| data.unflatten(f)).collect();
        let axes = (0..data.axes.len())
            .filter_map(|a| {
                let mut seen: Vec<usize> = indices.iter().map(|i| i[a]).collect();
                seen.sort_unstable();
                seen.dedup();
                (seen.len() > 1).then(|| {
                    (
                        data.axis_names[a].clone(),
                        seen.iter().map(|&i| data.axes[a][i]).collect(),
                    )
                })
            })
            .collect();
        Some(EvaluationGrid { axes, fields })
    }

    /// The evaluation grid points (flat indices) and, per evaluated field, its name,
    /// prediction and reference there.
    #[allow(clippy::type_complexity)]
    fn evaluated_fields(
        &self,
        params: &[Tensor<2>],
    ) -> Option<(&GridData, Vec<usize>, Vec<(String, Vec<f64>, Vec<f64>)>)> {
        let data = self.reference()?;
        if self.evaluated.is_empty() {
            return None;
        }
        let flat = match (&self.discrete, &self.evaluation_points) {
            (Some(d), _) => data.slice(d.axis, d.t1),
            (None, Some(points)) => points.clone(),
            (None, None) => (0..data.len()).collect(),
        };
        let points: Vec<f64> = flat
            .iter()
            .flat_map(|&f| project(data, &self.input_axes, f))
            .collect();
        let names: Vec<&str> = self.evaluated.iter().map(|(n, _)| n.as_str()).collect();
        let preds = self.predict(params, &points, &names);
        let fields = self
            .evaluated
            .iter()
            .zip(preds)
            .map(|((name, _), pred)| {
                let exact = flat.iter().map(|&f| data.fields[name][f]).collect();
                (name.clone(), pred, exact)
            })
            .collect();
        Some((data, flat, fields))
    }

    /// Relative L2 errors on the reference grid and identified parameters.
    pub fn evaluate(&self, params: &[Tensor<2>]) -> Evaluation {
        let mut eval = Evaluation::default();
        if let Some((_, _, fields)) = self.evaluated_fields(params) {
            for (name, pred, exact) in fields {
                eval.relative_l2.insert(name, relative_l2(&pred, &exact));
            }
        }
        let n = self.network_parameter_count();
        for (u, raw) in self.unknowns.iter().zip(&params[n..]) {
            let value = u.physical(to_vec(raw).first().copied().unwrap_or(f64::NAN));
            eval.unknowns.insert(
                u.name.clone(),
                UnknownReport {
                    value,
                    truth: u.truth,
                    relative_error: u.truth.map(|t| (value - t).abs() / t.abs()),
                },
            );
        }
        eval
    }
}

/// Flat indices (ascending) of the grid points where every named axis has the given index
/// (negative indices count from the end); none for an empty slice.
fn grid_slice(data: &GridData, slice: &BTreeMap<String, i64>) -> Result<Vec<usize>, String> {
    let mut cur: Option<Vec<usize>> = None;
    for (axis_name, &index) in slice {
        let axis = data
            .axis_names
            .iter()
            .position(|a| a == axis_name)
            .ok_or_else(|| format!("`{axis_name}` is not a dataset axis"))?;
        let len = data.axes[axis].len() as i64;
        let i = if index < 0 { len + index } else { index };
        if !(0..len).contains(&i) {
            return Err(format!(
                "index {index} is outside axis `{axis_name}` of length {len}"
            ));
        }
        let these = data.slice(axis, i as usize);
        cur = Some(match cur {
            None => these,
            Some(c) => c
                .into_iter()
                .filter(|p| these.binary_search(p).is_ok())
                .collect(),
        });
    }
    Ok(cur.unwrap_or_default())
}

/// The network-input coordinates of grid point `flat`.
fn project(data: &GridData, input_axes: &[usize], flat: usize) -> Vec<f64> {
    let idx = data.unflatten(flat);
    input_axes.iter().map(|&a| data.axes[a][idx[a]]).collect()
}

/// `‖pred − exact‖₂ / ‖exact‖₂`.
pub fn relative_l2(pred: &[f64], exact: &[f64]) -> f64 {
    let num: f64 = pred.iter().zip(exact).map(|(p, e)| (p - e).powi(2)).sum();
    let den: f64 = exact.iter().map(|e| e * e).sum();
    (num / den).sqrt()
}

fn topological_order(derived: &[Expression]) -> Result<Vec<usize>, usize> {
    fn visit(
        i: usize,
        derived: &[Expression],
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) -> Result<(), usize> {
        match state[i] {
            2 => return Ok(()),
            1 => return Err(i),
            _ => {}
        }
        state[i] = 1;
        for (f, _) in derived[i].field_symbols() {
            if let FieldId::Derived(j) = f {
                visit(j, derived, state, order)?;
            }
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    let mut state = vec![0u8; derived.len()];
    let mut order = Vec::new();
    for i in 0..derived.len() {
        visit(i, derived, &mut state, &mut order)?;
    }
    Ok(order)
}

fn build_point_sets(
    config: &ProblemConfig,
    source: &Path,
    dataset: Option<&GridData>,
    input_axes: &[usize],
    rng: &mut SeededRng,
) -> Result<BTreeMap<String, PointSet>, ProblemError> {
    let dims = config.domain.inputs.len();
    let mut sets: BTreeMap<String, PointSet> = BTreeMap::new();
    for named in config.point_sets(source)? {
        let field = format!("points.{}", named.name);
        let invalid = |message: String| ConfigError::Invalid {
            path: source.to_path_buf(),
            field: field.clone(),
            message,
        };
        let spec = &named.spec;
        let sources = [
            spec.grid.is_some(),
            spec.lhs.is_some(),
            spec.uniform.is_some(),
            spec.from.is_some(),
            spec.union.is_some(),
        ];
        if sources.iter().filter(|&&s| s).count() != 1 {
            return Err(invalid(
                "needs exactly one of `grid`, `lhs`, `uniform`, `from`, `union`".into(),
            )
            .into());
        }
        let layout = match (&spec.grid, spec.lhs, spec.uniform) {
            (Some(GridSpec::Counts(counts)), _, _) => {
                if counts.len() != dims {
                    return Err(invalid(format!(
                        "`grid` needs a point count for each of the {dims} inputs, got {counts:?}"
                    ))
                    .into());
                }
                let total = counts.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
                if total.is_none_or(|n| n > MAX_POINTS) {
                    return Err(invalid(format!(
                        "`grid = {counts:?}` exceeds the {MAX_POINTS} points a set may hold"
                    ))
                    .into());
                }
                Some(Layout::Grid(counts.clone()))
            }
            (_, Some(n), _) | (_, _, Some(n)) => {
                if n > MAX_POINTS {
                    return Err(invalid(format!(
                        "{n} points exceed the {MAX_POINTS} a set may hold"
                    ))
                    .into());
                }
                Some(if spec.lhs.is_some() {
                    Layout::Lhs(n)
                } else {
                    Layout::Uniform(n)
                })
            }
            _ => None,
        };
        let faces = faces_of(spec, &config.domain).map_err(&invalid)?;
        if !faces.is_empty() && layout.is_none() {
            return Err(invalid(
                "`on` places the points of `lhs`, `uniform` or `grid = [counts]` on faces".into(),
            )
            .into());
        }
        let lookup = |name: &String| {
            sets.get(name).cloned().ok_or_else(|| {
                invalid(format!("refers to `{name}`, which is not defined above it"))
            })
        };
        let mut set = if let Some(layout) = &layout {
            let pts = lay_out(
                rng,
                layout,
                &faces,
                &config.domain.lower,
                &config.domain.upper,
            );
            PointSet {
                rows: pts.len(),
                coords: pts.into_iter().flatten().collect(),
                values: None,
            }
        } else if let Some(GridSpec::Slices(slices)) = &spec.grid {
            let data = dataset.ok_or_else(|| invalid("`grid` needs a [dataset]".into()))?;
            let mut flat = Vec::new();
            if slices.is_empty() {
                flat.extend(0..data.len());
            }
            for slice in slices {
                flat.extend(grid_slice(data, slice).map_err(invalid)?);
            }
            let coords: Vec<f64> = flat
                .iter()
                .flat_map(|&f| project(data, input_axes, f))
                .collect();
            let values = data
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), flat.iter().map(|&f| v[f]).collect()))
                .collect();
            PointSet {
                coords,
                rows: flat.len(),
                values: Some(values),
            }
        } else if let Some(from) = &spec.from {
            lookup(from)?
        } else {
            let mut out = PointSet {
                values: Some(BTreeMap::new()),
                ..Default::default()
            };
            let parts = spec.union.clone().unwrap_or_default();
            for (k, name) in parts.iter().enumerate() {
                let part = lookup(name)?;
                out.coords.extend(&part.coords);
                out.rows += part.rows;
                out.values = match (out.values, part.values) {
                    (Some(mut acc), Some(v)) => {
                        if k == 0 {
                            acc = v;
                        } else {
                            acc.retain(|key, _| v.contains_key(key));
                            for (key, vals) in acc.iter_mut() {
                                vals.extend(&v[key]);
                            }
                        }
                        Some(acc)
                    }
                    _ => None,
                };
            }
            out
        };
        if let Some(k) = spec.sample {
            if k > set.rows {
                return Err(invalid(format!("cannot sample {k} of {} points", set.rows)).into());
            }
            let idx = choose(rng, set.rows, k);
            let coords = idx
                .iter()
                .flat_map(|&i| set.coords[i * dims..(i + 1) * dims].to_vec())
                .collect();
            let values = set.values.map(|vals| {
                vals.into_iter()
                    .map(|(key, v)| (key, idx.iter().map(|&i| v[i]).collect()))
                    .collect()
            });
            set = PointSet {
                coords,
                rows: k,
                values,
            };
        }
        if let Some(level) = spec.noise {
            if !(level.is_finite() && level >= 0.0) {
                return Err(
                    invalid(format!("`noise` must be finite and >= 0, got {level}")).into(),
                );
            }
            let Some(values) = set.values.as_mut() else {
                return Err(invalid("`noise` needs data values (grid points)".into()).into());
            };
            for v in values.values_mut() {
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                for x in v.iter_mut() {
                    *x += level * std * standard_normal(rng);
                }
            }
        }
        sets.insert(named.name.clone(), set);
    }
    Ok(sets)
}

/// The exact solutions of `evaluate.exact` on the even grid of `evaluate.grid`, as a grid
/// dataset with an axis per input. Errors name the key.
fn exact_grid(config: &ProblemConfig) -> Result<GridData, (String, String)> {
    let d = &config.domain;
    let counts = config.evaluate.grid_counts(d.inputs.len());
    let points = pinn_core::sampling::even_grid(&counts, &d.lower, &d.upper);
    let mut fields = BTreeMap::new();
    for (name, text) in &config.evaluate.exact {
        let key = format!("evaluate.exact.{name}");
        let e = Expression::compile_pointwise(text, &d.inputs, &config.constants)
            .map_err(|e| (key.clone(), e.to_string()))?;
        let mut values = Vec::with_capacity(points.len());
        for p in &points {
            match e.value_at(p) {
                Some(v) if v.is_finite() => values.push(v),
                v => {
                    return Err((
                        key,
                        format!("`{text}` is {} at {p:?}", v.unwrap_or(f64::NAN)),
                    ));
                }
            }
        }
        fields.insert(name.clone(), values);
    }
    Ok(GridData {
        axis_names: d.inputs.clone(),
        axes: counts
            .iter()
            .enumerate()
            .map(|(i, &n)| pinn_core::sampling::linspace(d.lower[i], d.upper[i], n))
            .collect(),
        fields,
    })
}

/// The faces a point set's `on` names, in input order then value order; each value must lie
/// in its input's domain interval.
fn faces_of(spec: &PointSetConfig, domain: &DomainConfig) -> Result<Vec<Face>, String> {
    let mut faces = Vec::new();
    for (input, values) in spec.on.iter().flatten() {
        let axis = domain
            .inputs
            .iter()
            .position(|i| i == input)
            .ok_or_else(|| {
                format!(
                    "`on.{input}`: not an input (inputs: {})",
                    domain.inputs.join(", ")
                )
            })?;
        let (lo, hi) = (domain.lower[axis], domain.upper[axis]);
        for &value in &values.0 {
            if !(lo..=hi).contains(&value) {
                return Err(format!(
                    "`on.{input}`: {value} lies outside the domain's [{lo}, {hi}]"
                ));
            }
            faces.push(Face { axis, value });
        }
    }
    faces.sort_by(|a, b| a.axis.cmp(&b.axis).then(a.value.total_cmp(&b.value)));
    faces.dedup();
    Ok(faces)
}

/// `total + weight · component` (the first component starts the sum).
fn add_weighted(total: Option<Tensor<1>>, component: &Tensor<1>, weight: f64) -> Tensor<1> {
    let weighted = if weight == 1.0 {
        component.clone()
    } else {
        component.clone().mul_scalar(weight)
    };
    match total {
        Some(t) => t.add(weighted),
        None => weighted,
    }
}

/// Every input axis of `data` lies in the domain's box (to a millionth of its width): the
/// network's inputs are scaled from that box, and data outside it would be fitted where the
/// network was never meant to be evaluated. Errors name the axis.
fn check_axes_in_domain(data: &GridData, domain: &DomainConfig) -> Result<(), (String, String)> {
    for (i, input) in domain.inputs.iter().enumerate() {
        let Some(axis) = data.axis_names.iter().position(|a| a == input) else {
            continue;
        };
        let (lower, upper) = (domain.lower[i], domain.upper[i]);
        let slack = 1e-6 * (upper - lower);
        let (min, max) = data.axes[axis]
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if min < lower - slack || max > upper + slack {
            return Err((
                format!("dataset.axes.{input}"),
                format!(
                    "the data's `{input}` spans [{min}, {max}], outside the domain's \
                     [{lower}, {upper}]: widen [domain], or set `outside_domain = true` in \
                     [dataset] to allow it"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pinn_core::backend::to_scalar;

    use super::*;
    use crate::ProblemBuilder;

    impl Problem {
        /// The reference the shared passes are checked against: one pass per loss term.
        fn with_one_pass_per_term(mut self) -> Self {
            self.passes = self
                .terms
                .iter_mut()
                .enumerate()
                .map(|(t, term)| {
                    let rows = term.inputs.dims()[0];
                    term.pass = (t, 0..rows);
                    ForwardPass {
                        inputs: term.inputs.clone(),
                        set: (*term.plan.network).clone(),
                    }
                })
                .collect();
            self
        }

        /// Passes planned again, stacking different points as on a GPU or not.
        fn replanned(mut self, stack: bool) -> Self {
            let coords: Vec<Vec<f64>> = self.terms.iter().map(|t| to_vec(&t.inputs)).collect();
            self.share_forward_passes(&coords, stack);
            self
        }
    }

    /// Three terms: boundary values at a few points, and two residuals at the same
    /// collocation points (one of them needing third derivatives).
    fn problem() -> Problem {
        ProblemBuilder::new("passes")
            .domain(&["x", "t"], &[-1.0, 0.0], &[1.0, 1.0])
            .network(&[12, 12], &["u"])
            .unknown("nu", 0.1, None)
            .residual("f", "u_t + u*u_x - nu*u_xx")
            .residual("g", "u_xxx + u_xt")
            .points_lhs("edge", 24)
            .points_lhs("inside", 200)
            .fit_value("edge", "u", 0.25)
            .residual_loss("inside", &["f"])
            .residual_loss("inside", &["g"])
            .f64()
            .build()
            .expect("a valid problem")
    }

    /// Loss components and every parameter gradient.
    fn loss_and_gradients(problem: &Problem) -> (Vec<f64>, Vec<Vec<f64>>) {
        let tracked: Vec<Tensor<2>> = problem
            .initial_parameters()
            .into_iter()
            .map(|p| p.autodiff().require_grad())
            .collect();
        let loss = problem.loss(&tracked);
        let grads = loss.total.backward();
        let components = loss
            .components
            .iter()
            .map(|c| to_scalar(&c.clone().without_autodiff()))
            .collect();
        let gradients = tracked
            .iter()
            .map(|p| to_vec(&p.grad(&grads).expect("every parameter reaches the loss")))
            .collect();
        (components, gradients)
    }

    #[test]
    fn shared_forward_passes_give_the_loss_and_gradients_of_separate_ones() {
        let separate = problem().with_one_pass_per_term();
        assert_eq!(separate.forward_passes(), [[0], [1], [2]]);
        let (expected_components, expected_gradients) = loss_and_gradients(&separate);
        assert_eq!(expected_components.len(), 3);

        // On the CPU only the two terms at the same points share a pass; stacked as on a GPU,
        // all three do.
        let shared = problem();
        assert_eq!(shared.forward_passes(), [vec![0], vec![1, 2]]);
        let stacked = problem().replanned(true);
        assert_eq!(stacked.forward_passes(), [vec![0, 1, 2]]);
        for problem in [shared, stacked] {
            let (components, gradients) = loss_and_gradients(&problem);
            for (a, b) in components.iter().zip(&expected_components) {
                assert!(*b > 1e-8, "a non-trivial component: {b}");
                assert!((a - b).abs() <= 1e-12 * b, "component {a} vs {b}");
            }
            for (g, e) in gradients.iter().zip(&expected_gradients) {
                let scale = e.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
                for (a, b) in g.iter().zip(e) {
                    assert!((a - b).abs() <= 1e-12 * scale, "gradient {a} vs {b}");
                }
            }
        }
    }
}
