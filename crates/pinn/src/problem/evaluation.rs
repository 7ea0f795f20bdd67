//! Evaluation: predictions on the reference grid (dataset or exact solutions), relative L2 errors,
//! identified unknowns.

use super::*;

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

/// Predictions and reference values on the evaluation grid ([`Problem::evaluation_grid`]).
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
