//! Evaluation: predictions on the reference grid (dataset or exact solutions), relative L2 errors,
//! identified unknowns.

use super::*;

/// Why [`Problem::predict`] refused a request.
#[derive(Debug, Error)]
pub enum PredictError {
    /// A quantity is not an expression of the problem's fields, or needs a derivative the
    /// network cannot give.
    #[error("cannot predict `{quantity}`: {message}")]
    Quantity {
        /// The quantity as asked.
        quantity: String,
        /// Why not.
        message: String,
    },
    /// The coordinates do not make whole rows of the inputs.
    #[error("{values} coordinates do not make whole rows of the inputs ({inputs})")]
    Shape {
        /// How many coordinates were given.
        values: usize,
        /// The problem's inputs, in row order.
        inputs: String,
    },
    /// A coordinate is NaN or infinite.
    #[error("point {row} has a non-finite `{input}` = {value}")]
    NonFinite {
        /// Row of the point (from 0).
        row: usize,
        /// The input.
        input: String,
        /// Its value.
        value: f64,
    },
}

/// Relative L2 errors and identified parameters:
/// [`Report::evaluation`](crate::Report::evaluation) at the end of a run, or
/// [`Problem::evaluate`] for any parameters.
///
/// An inverse problem: the rate `a` of `u_t + a u = 0` from measurements of `u = exp(-2t)`.
///
/// ```
/// use pinn::{ProblemBuilder, Silent, Trainer};
///
/// let problem = ProblemBuilder::new("rate")
///     .domain(&["t"], &[0.0], &[1.0])
///     .network(&[16, 16], &["u"])
///     .unknown("a", 1.0, Some(2.0)) // initial value, and the truth if known
///     .residual("f", "u_t + a*u")
///     .points_lhs("measured", 32)
///     .points_lhs("inside", 64)
///     .fit_targets("measured", &[("u", "exp(-2*t)")])
///     .residual_loss("inside", &["f"])
///     .adam(2000, 1e-2)
///     .build()?;
/// let out = std::env::temp_dir().join("pinn-doc-rate");
/// let trained = Trainer::new(&problem).run(2000, &out, &mut Silent)?;
/// let a = &trained.report.evaluation.unknowns["a"];
/// assert!((a.value - 2.0).abs() < 0.1, "a = {}", a.value);
/// assert_eq!(a.truth, Some(2.0));
/// assert!(a.relative_error.is_some_and(|e| e < 0.05));
/// # std::fs::remove_dir_all(&out).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Evaluation {
    /// Relative L2 error of each evaluated field on the reference (its grid or points).
    pub relative_l2: BTreeMap<String, f64>,
    /// The relative L2 error of all evaluated fields together, `‖pred − ref‖₂ / ‖ref‖₂` over
    /// every field's values at once (PINNacle's metric); `None` without evaluated fields.
    pub joint_relative_l2: Option<f64>,
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

/// Predictions and reference values on the evaluation grid ([`Problem::evaluation_grid`]);
/// on a region, the grid's points outside it are NaN.
#[derive(Clone, Debug)]
pub struct EvaluationGrid {
    /// The axes that vary over the evaluation points: name and coordinates.
    pub axes: Vec<(String, Vec<f64>)>,
    /// Per evaluated field: name, prediction, reference (C order of the varying axes).
    pub fields: Vec<(String, Vec<f64>, Vec<f64>)>,
}

/// Flat indices (ascending) of the grid points where every named axis has the given index
/// (negative indices count from the end); none for an empty slice.
pub(super) fn grid_slice(
    data: &GridData,
    slice: &BTreeMap<String, i64>,
) -> Result<Vec<usize>, String> {
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
pub(super) fn project(data: &GridData, input_axes: &[usize], flat: usize) -> Vec<f64> {
    let idx = data.unflatten(flat);
    input_axes.iter().map(|&a| data.axes[a][idx[a]]).collect()
}

/// `‖pred − exact‖₂ / ‖exact‖₂`.
pub fn relative_l2(pred: &[f64], exact: &[f64]) -> f64 {
    let num: f64 = pred.iter().zip(exact).map(|(p, e)| (p - e).powi(2)).sum();
    let den: f64 = exact.iter().map(|e| e * e).sum();
    (num / den).sqrt()
}

/// The exact solutions of `evaluate.exact` on the even grid of `evaluate.grid`, as a grid
/// dataset with an axis per input. Errors name the key.
pub(super) fn exact_grid(config: &ProblemConfig) -> Result<GridData, (String, String)> {
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

impl Problem {
    /// The grid the evaluated fields are compared on: the exact solutions' grid if
    /// `evaluate.exact` is given, else the dataset.
    pub(super) fn reference(&self) -> Option<&GridData> {
        self.exact.as_ref().or(self.dataset.as_ref())
    }

    /// Values of `quantities` at the given points (`rows × inputs`, row-major, the inputs in
    /// `[domain] inputs` order): one vector of `rows` values per quantity.
    ///
    /// A quantity is a field (`"u"`, a derived output), a derivative of one (`"u_x"`,
    /// `"u_xxt"`) or any expression of them, the inputs, constants and unknowns, written as in
    /// `[residuals]` (`"u_t + u*u_x"`). For a discrete-time model a field's value is its last
    /// output column (the solution at `t1` of a forward model). Points outside the domain are
    /// predicted too (the network extrapolates there).
    ///
    /// ```
    /// # use pinn::{ProblemBuilder, Silent, Trainer};
    /// let problem = ProblemBuilder::new("predict-doc")
    ///     .domain(&["x"], &[0.0], &[1.0])
    ///     .network(&[8], &["u"])
    ///     .points_lhs("inside", 16)
    ///     .fit_targets("inside", &[("u", "x^2")])
    ///     .adam(5, 1e-2)
    ///     .build()?;
    /// let params = problem.initial_parameters();
    /// let at = [0.25, 0.5, 0.75]; // three points of the one input `x`
    /// let values = problem.predict(&params, &at, &["u", "u_x", "u_xx - 2"])?;
    /// assert_eq!(values.len(), 3); // a vector per quantity
    /// assert!(values.iter().all(|v| v.len() == 3 && v.iter().all(|x| x.is_finite())));
    /// assert!(problem.predict(&params, &at, &["w"]).is_err()); // not a field
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn predict(
        &self,
        params: &[Tensor<2>],
        points: &[f64],
        quantities: &[&str],
    ) -> Result<Vec<Vec<f64>>, PredictError> {
        let inputs_named = &self.config.domain.inputs;
        let dims = inputs_named.len();
        if !points.len().is_multiple_of(dims) {
            return Err(PredictError::Shape {
                values: points.len(),
                inputs: inputs_named.join(", "),
            });
        }
        if let Some(i) = points.iter().position(|v| !v.is_finite()) {
            return Err(PredictError::NonFinite {
                row: i / dims,
                input: inputs_named[i % dims].clone(),
                value: points[i],
            });
        }
        let rows = points.len() / dims;
        let bad = |quantity: &str, message: String| PredictError::Quantity {
            quantity: quantity.to_string(),
            message,
        };
        let expressions = quantities
            .iter()
            .map(|q| Expression::compile(q, &self.symbols).map_err(|e| bad(q, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let needs = expressions.iter().flat_map(Expression::field_symbols);
        let plan = self
            .plan(needs.collect())
            .map_err(|message| bad(&quantities.join(", "), message))?;
        let derived_normals = self.derived_reads_normals(&plan);
        if let Some(k) = expressions
            .iter()
            .position(|e| derived_normals || e.uses_normals())
        {
            return Err(bad(
                quantities[k],
                "it reads boundary normals (`n_x`, `u_n`), which the points given have not".into(),
            ));
        }
        let unknowns = self.physical_unknowns(params);
        let n = self.network_parameter_count();
        let values = Arc::new(DerivativeSet::values_only());
        let mut out = vec![Vec::with_capacity(rows); expressions.len()];
        const CHUNK: usize = 16_384;
        for start in (0..rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(rows);
            let inputs = self
                .ctx
                .matrix(&points[start * dims..end * dims], end - start, dims);
            let jet = self.network.forward(&params[..n], &inputs, &plan.network);
            let env = self.environment(jet, &inputs, &unknowns, None, &plan);
            let like = inputs.clone().slice([0..end - start, 0..1]);
            for (k, e) in expressions.iter().enumerate() {
                let v = jet_value(e.eval(&env, &values), &like);
                let [n, cols] = v.dims();
                let last = if cols > 1 {
                    v.slice([0..n, cols - 1..cols])
                } else {
                    v
                };
                out[k].extend(to_vec(&last));
            }
        }
        Ok(out)
    }

    /// The evaluated fields on the evaluation grid (the reference grid, its `evaluate.at` slice
    /// or a discrete model's `t1` snapshot): the axes that vary there with their coordinates,
    /// and per field the prediction and the reference, in the grid's C order. `None` without
    /// a dataset or evaluated fields.
    pub fn evaluation_grid(&self, params: &[Tensor<2>]) -> Option<EvaluationGrid> {
        let (data, flat, fields) = self.evaluated_fields(params)?;
        // Axes along which the evaluation points vary, in grid order, with the grid indices
        // they take.
        let indices: Vec<Vec<usize>> = flat.iter().map(|&f| data.unflatten(f)).collect();
        let varying: Vec<(usize, Vec<usize>)> = (0..data.axes.len())
            .filter_map(|a| {
                let mut seen: Vec<usize> = indices.iter().map(|i| i[a]).collect();
                seen.sort_unstable();
                seen.dedup();
                (seen.len() > 1).then_some((a, seen))
            })
            .collect();
        let axes = varying
            .iter()
            .map(|(a, seen)| {
                (
                    data.axis_names[*a].clone(),
                    seen.iter().map(|&i| data.axes[*a][i]).collect(),
                )
            })
            .collect();
        // The values in the C order of the varying axes: every combination of their
        // coordinates, NaN where no evaluation point lies (outside a region).
        let size: usize = varying.iter().map(|(_, seen)| seen.len()).product();
        if size == flat.len() {
            return Some(EvaluationGrid { axes, fields });
        }
        let position = |index: &[usize]| {
            varying.iter().fold(0, |at, (a, seen)| {
                at * seen.len() + seen.binary_search(&index[*a]).unwrap_or_default()
            })
        };
        let spread = |values: &[f64]| {
            let mut full = vec![f64::NAN; size];
            for (index, v) in indices.iter().zip(values) {
                full[position(index)] = *v;
            }
            full
        };
        let fields = fields
            .iter()
            .map(|(name, pred, exact)| (name.clone(), spread(pred), spread(exact)))
            .collect();
        Some(EvaluationGrid { axes, fields })
    }

    /// The evaluation grid points (flat indices) and, per evaluated field, its name,
    /// prediction and reference there.
    #[allow(clippy::type_complexity)]
    pub(super) fn evaluated_fields(
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
        let preds = self
            .predict(params, &points, &names)
            .expect("evaluated fields are checked at load and grid points are finite");
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

    /// Per evaluated field: its name, prediction and reference, at the scattered reference
    /// points (`[evaluate] points`) or on the reference grid.
    fn reference_fields(&self, params: &[Tensor<2>]) -> Vec<(String, Vec<f64>, Vec<f64>)> {
        match &self.scattered {
            Some(reference) => {
                let names: Vec<&str> = self.evaluated.iter().map(|(n, _)| n.as_str()).collect();
                let preds = self
                    .predict(params, &reference.coords, &names)
                    .expect("evaluated fields are checked at load and the points are finite");
                names
                    .iter()
                    .zip(preds)
                    .map(|(name, pred)| (name.to_string(), pred, reference.values[*name].clone()))
                    .collect()
            }
            None => self
                .evaluated_fields(params)
                .map(|(_, _, fields)| fields)
                .unwrap_or_default(),
        }
    }

    /// Relative L2 errors on the reference (per field and all together) and identified
    /// parameters.
    pub fn evaluate(&self, params: &[Tensor<2>]) -> Evaluation {
        let mut eval = Evaluation::default();
        let fields = self.reference_fields(params);
        if !fields.is_empty() {
            let (pred, exact): (Vec<f64>, Vec<f64>) = fields
                .iter()
                .flat_map(|(_, p, e)| p.iter().copied().zip(e.iter().copied()))
                .unzip();
            eval.joint_relative_l2 = Some(relative_l2(&pred, &exact));
        }
        for (name, pred, exact) in fields {
            eval.relative_l2.insert(name, relative_l2(&pred, &exact));
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
