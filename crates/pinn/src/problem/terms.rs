//! Loss terms: what each component compares (fits, residuals, periodic ends, Runge-Kutta maps),
//! built from a `[[loss]]` entry, and the derivative plan of each.

use super::*;

/// Which derivatives a loss term needs: the network's streams and each derived jet's.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    pub(super) network: Arc<DerivativeSet>,
    pub(super) derived: Vec<Option<Arc<DerivativeSet>>>,
}

#[derive(Clone, Debug)]
pub(super) enum Target {
    Data(Box<Tensor<2>>),
    Constant(f64),
}

impl Target {
    /// `pred − target` (a `[n, 1]` target broadcasts over the columns of `pred`), at the rows
    /// `pick` reads from the target when the term is read in mini-batches.
    pub(super) fn misfit(&self, pred: Tensor<2>, pick: Option<&Tensor<1, Int>>) -> Tensor<2> {
        match (self, pick) {
            (Target::Data(t), None) => pred.sub((**t).clone()),
            (Target::Data(t), Some(rows)) => pred.sub((**t).clone().select(0, rows.clone())),
            (Target::Constant(v), _) => pred.add_scalar(-v),
        }
    }
}

/// What a fit component compares with its target.
#[derive(Clone, Debug)]
pub(super) enum Fitted {
    /// A field's value.
    Field(FieldId),
    /// An expression of fields, e.g. a derivative (`u_t`).
    Expression(Box<Expression>),
}

#[derive(Clone, Debug)]
pub(super) enum Component {
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
pub(super) struct LossTerm {
    pub(super) inputs: Tensor<2>,
    pub(super) components: Vec<(String, Component)>,
    pub(super) plan: Plan,
    pub(super) reduction: Reduction,
    pub(super) weight: f64,
    /// The forward pass that computes this term's jet, and the term's rows in it.
    pub(super) pass: (usize, std::ops::Range<usize>),
    /// The rows of `inputs` (and of data targets) an iteration reads, when the term's point
    /// set is read in mini-batches.
    pub(super) pick: Option<Pick>,
    /// The outward unit normals of the term's points (`rows × spatial inputs`), when its
    /// expressions read them (points `on` a shape of `[geometry]`).
    pub(super) normals: Option<Tensor<2>>,
}

/// One forward pass of the network, shared by the loss terms whose rows it stacks (each term's
/// `pass` names it).
#[derive(Clone, Debug)]
pub(super) struct ForwardPass {
    pub(super) inputs: Tensor<2>,
    pub(super) set: DerivativeSet,
    /// The rows of `inputs` an iteration reads (a pass of batched terms).
    pub(super) pick: Option<Pick>,
}

impl Problem {
    pub(super) fn build_term(
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
        let reads_normals = components.iter().any(|(_, c)| match c {
            Component::Fit {
                quantity: Fitted::Expression(e),
                ..
            } => e.uses_normals(),
            Component::Fit { .. } => false,
            Component::Residual(r) => self.residuals[*r].uses_normals(),
            Component::Periodic(e) => e.uses_normals(),
            Component::Irk { rhs, .. } => self.residuals[*rhs].uses_normals(),
        }) || self.derived_reads_normals(&plan);
        let normals = match (&set.normals, reads_normals) {
            (_, false) => None,
            (Some(normals), true) if rows == set.rows => {
                let spatial = normals.len() / set.rows;
                Some(self.ctx.matrix(normals, rows, spatial))
            }
            (_, true) => {
                return Err(invalid(
                    "points",
                    format!(
                        "the term reads boundary normals (`n_x`, `u_n`), but point set `{}` has \
                         none: only points `on` a shape of [geometry] (or `on = \"boundary\"`) \
                         carry them",
                        l.points
                    ),
                )
                .into());
            }
        };
        let pick = match set.batch {
            None => None,
            Some(_) if l.irk.is_some() => {
                return Err(invalid(
                    "points",
                    format!(
                        "point set `{}` is read in mini-batches (`batch`), which a Runge-Kutta \
                         term cannot be: its stages are fitted at every point together",
                        l.points
                    ),
                )
                .into());
            }
            Some(_) => Some(Pick {
                set: self
                    .batches
                    .iter()
                    .position(|b| b.name == l.points)
                    .expect("every batched set is listed in `batches`"),
                copies: rows / set.rows,
            }),
        };
        let term = LossTerm {
            inputs: self.ctx.matrix(&coords, rows, dims),
            components,
            plan,
            reduction: l.reduction,
            weight: l.weight,
            pass: (0, 0..rows),
            pick,
            normals,
        };
        Ok((term, coords))
    }

    /// Whether a derived output that `plan` computes reads the points' normals.
    pub(super) fn derived_reads_normals(&self, plan: &Plan) -> bool {
        plan.derived
            .iter()
            .zip(&self.derived)
            .any(|(computed, e)| computed.is_some() && e.uses_normals())
    }

    pub(super) fn plan(&self, needs: Vec<(FieldId, Partial)>) -> Result<Plan, String> {
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
}
