//! Assembly: a validated configuration becomes compiled expressions, point sets, loss terms and
//! shared forward passes.

use super::*;

pub(super) fn topological_order(derived: &[Expression]) -> Result<Vec<usize>, usize> {
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

/// Every input axis of `data` lies in the domain's box (to a millionth of its width): the
/// network's inputs are scaled from that box, and data outside it would be fitted where the
/// network was never meant to be evaluated. Errors name the axis.
pub(super) fn check_axes_in_domain(
    data: &GridData,
    domain: &DomainConfig,
) -> Result<(), (String, String)> {
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

impl Problem {
    /// Loads and builds a problem from a TOML file.
    pub fn from_file(path: &Path, options: &LoadOptions) -> Result<Self, ProblemError> {
        let config = ProblemConfig::load(path)?;
        Self::from_config(config, path, options)
    }

    /// Builds a problem from the text of a problem file (a file embedded in a program, or
    /// written by one); `source` stands for its path in error messages and anchors relative
    /// dataset paths.
    ///
    /// ```
    /// use pinn::{LoadOptions, Problem};
    /// let text = r#"
    ///     name = "decay"
    ///     [domain]
    ///     inputs = ["t"]
    ///     lower = [0.0]
    ///     upper = [1.0]
    ///     [network]
    ///     hidden = [16, 16]
    ///     outputs = ["u"]
    ///     [residuals]
    ///     f = "u_t + u"
    ///     [points.start]
    ///     on = { t = 0.0 }
    ///     lhs = 1
    ///     [points.inside]
    ///     lhs = 64
    ///     [[loss]]
    ///     points = "start"
    ///     fit = { u = 1.0 }
    ///     [[loss]]
    ///     points = "inside"
    ///     residuals = ["f"]
    /// "#;
    /// let problem = Problem::from_toml(text, "decay.toml".as_ref(), &LoadOptions::default())?;
    /// assert_eq!(problem.component_names().len(), 2);
    ///
    /// // Errors name the file and the key, as for a file on disk.
    /// let typo = text.replace("hidden", "hiden");
    /// let error = Problem::from_toml(&typo, "decay.toml".as_ref(), &LoadOptions::default());
    /// assert!(error.unwrap_err().to_string().contains("decay.toml"));
    /// # Ok::<(), pinn::ProblemError>(())
    /// ```
    pub fn from_toml(
        text: &str,
        source: &Path,
        options: &LoadOptions,
    ) -> Result<Self, ProblemError> {
        let config = ProblemConfig::from_toml(text, source)?;
        Self::from_config(config, source, options)
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
        let plan_options = PlanOptions {
            fuse_layers: config.run.fuse_layers,
        };
        let ctx = ExecutionPlan::resolve(config.run.device, config.run.mode, plan_options)
            .and_then(|plan| TensorContext::open(plan, config.run.precision))
            .map_err(|e| {
                let field = match e {
                    DeviceError::Mode(..) => "run.mode",
                    DeviceError::Device(..) => "run.device",
                };
                invalid(field, e.to_string())
            })?;
        let geometry = match &config.geometry {
            None => None,
            Some(g) => {
                let (region, axes) = g.region(&config.domain, source)?;
                Some(Geometry { region, axes })
            }
        };
        let symbols = Symbols {
            inputs: config.domain.inputs.clone(),
            outputs: config.network.outputs.clone(),
            derived: config.derived.keys().cloned().collect(),
            constants: config.constants.clone(),
            unknowns: config.unknowns.keys().cloned().collect(),
            // The region's inputs, in its coordinates' order.
            normals: geometry.as_ref().map_or_else(Vec::new, |g| {
                g.axes
                    .iter()
                    .map(|&a| config.domain.inputs[a].clone())
                    .collect()
            }),
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
        let network = Mlp::new(&spec, &config.domain.lower, &config.domain.upper, &ctx);

        let mut rng = rng_from_seed(config.seed);
        let sets = build_point_sets(
            &config,
            source,
            dataset.as_ref(),
            &input_axes,
            geometry.as_ref(),
            &options.datasets,
            &mut rng,
        )?;
        // The batched sets that loss terms read, each with its stream of draws (its position
        // in `[points]`).
        let batches = config
            .points
            .keys()
            .enumerate()
            .filter(|(_, name)| config.loss.iter().any(|l| &l.points == *name))
            .filter_map(|(stream, name)| {
                let set = &sets[name];
                set.batch.map(|size| BatchedSet {
                    name: name.clone(),
                    key: stream_key(config.seed, stream as u64),
                    pool: set.rows,
                    size,
                })
            })
            .collect();

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
            batches,
            dataset,
            exact: None,
            evaluated: Vec::new(),
            evaluation_points: None,
            initial: Vec::new(),
            input_axes,
            discrete,
            geometry,
            scattered: None,
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
        let stack = problem.ctx.plan().stacked_passes();
        problem.share_forward_passes(&term_coords, stack);
        let exact = &problem.config.evaluate.exact;
        if !exact.is_empty() {
            let grid = exact_grid(&problem.config).map_err(|(f, m)| invalid(&f, m))?;
            problem.exact = Some(grid);
        }
        if let Some(file) = problem.config.evaluate.points.clone() {
            if !exact.is_empty() {
                return Err(invalid(
                    "evaluate.points",
                    "one reference: `points` or `exact`, not both".into(),
                )
                .into());
            }
            let reference = read_reference_points(&problem.config, source, &file)
                .map_err(|m| invalid("evaluate.points", m))?;
            problem.scattered = Some(reference);
        }
        let mut evaluated = problem.config.evaluate.fields.clone();
        if let Some(reference) = &problem.scattered
            && evaluated.is_empty()
        {
            evaluated = reference
                .values
                .keys()
                .filter(|k| problem.field_id(k).is_some())
                .cloned()
                .collect();
        }
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
            let has = match &problem.scattered {
                Some(reference) => reference.values.contains_key(&name),
                None => problem
                    .reference()
                    .is_some_and(|d| d.fields.contains_key(&name)),
            };
            if !has {
                let what = if problem.scattered.is_some() {
                    format!("the reference points have no column `{name}`")
                } else if problem.exact.is_some() {
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
        // On a region, the errors are those at the reference's points inside it.
        if let (Some(geometry), Some(data)) = (&problem.geometry, problem.reference()) {
            let all = problem
                .evaluation_points
                .clone()
                .unwrap_or_else(|| (0..data.len()).collect());
            let inside: Vec<usize> = all
                .into_iter()
                .filter(|&f| geometry.contains(&project(data, &problem.input_axes, f)))
                .collect();
            if inside.is_empty() && !problem.evaluated.is_empty() {
                return Err(invalid(
                    "evaluate",
                    format!(
                        "no point of the reference grid lies inside the region `{}`",
                        geometry.region.text()
                    ),
                )
                .into());
            }
            problem.evaluation_points = Some(inside);
        }
        let mut initial = problem.network.init_parameters(&mut rng, &problem.ctx);
        for u in &problem.unknowns {
            initial.push(problem.ctx.scalar(u.init));
        }
        problem.initial = initial;
        Ok(problem)
    }

    pub(super) fn field_id(&self, name: &str) -> Option<FieldId> {
        if let Some(i) = self.symbols.outputs.iter().position(|n| n == name) {
            return Some(FieldId::Output(i));
        }
        self.symbols
            .derived
            .iter()
            .position(|n| n == name)
            .map(FieldId::Derived)
    }

    /// Plans the forward passes (`crate::passes`): terms at the same points get one network
    /// pass between them, and with `stack` (on a GPU) so do terms whose points stack at little
    /// extra cost. Terms read in mini-batches get a pass per batch they read (shared by the
    /// terms reading the same rows of the same points), outside that plan: their rows change
    /// every iteration.
    pub(super) fn share_forward_passes(&mut self, term_coords: &[Vec<f64>], stack: bool) {
        let dims = self.config.domain.inputs.len();
        let whole: Vec<usize> = (0..self.terms.len())
            .filter(|&t| self.terms[t].pick.is_none())
            .collect();
        let points: Vec<TermPoints<'_>> = whole
            .iter()
            .map(|&t| TermPoints {
                coords: &term_coords[t],
                rows: term_coords[t].len() / dims,
                set: &self.terms[t].plan.network,
            })
            .collect();
        let plans = plan_passes(&points, stack);
        let mut passes: Vec<ForwardPass> = Vec::with_capacity(plans.len());
        for plan in plans {
            let index = passes.len();
            for (member, rows) in &plan.members {
                self.terms[whole[*member]].pass = (index, rows.clone());
            }
            // Terms at one set of points: their own input tensor serves the pass.
            let inputs = match plan.members.first() {
                Some((t, rows)) if rows.len() == plan.rows => self.terms[whole[*t]].inputs.clone(),
                _ => self.ctx.matrix(&plan.coords, plan.rows, dims),
            };
            passes.push(ForwardPass {
                inputs,
                set: plan.set,
                pick: None,
            });
        }
        let mut batched: Vec<(usize, usize)> = Vec::new();
        for t in 0..self.terms.len() {
            let Some(pick) = self.terms[t].pick else {
                continue;
            };
            let shared = batched
                .iter()
                .find(|&&(first, _)| {
                    self.terms[first].pick == Some(pick) && term_coords[first] == term_coords[t]
                })
                .map(|&(_, pass)| pass);
            let pass = shared.unwrap_or_else(|| {
                passes.push(ForwardPass {
                    inputs: self.terms[t].inputs.clone(),
                    set: DerivativeSet::values_only(),
                    pick: Some(pick),
                });
                batched.push((t, passes.len() - 1));
                passes.len() - 1
            });
            passes[pass].set.extend(&self.terms[t].plan.network);
            let rows = pick.copies * self.batches[pick.set].size;
            self.terms[t].pass = (pass, 0..rows);
        }
        self.passes = passes;
    }
}

/// The scattered reference of `[evaluate] points`: its rows' inputs and every other column.
fn read_reference_points(
    config: &ProblemConfig,
    source: &Path,
    file: &Path,
) -> Result<ScatteredReference, String> {
    let path = source.parent().unwrap_or(Path::new("")).join(file);
    let columns = config.evaluate.columns.as_deref();
    let table = read_input_table(&path, columns, "evaluate.columns", &config.domain.inputs)?;
    Ok(ScatteredReference {
        coords: table.coords,
        values: table.others,
    })
}
