//! Point sets: dataset slices, random and even layouts in the domain or on its faces, copies,
//! unions, sub-samples and noise.

use super::*;

/// Points with, where they come from the dataset, the field values there.
#[derive(Clone, Debug, Default)]
pub(super) struct PointSet {
    pub(super) coords: Vec<f64>,
    pub(super) rows: usize,
    pub(super) values: Option<BTreeMap<String, Vec<f64>>>,
    /// Points read per iteration when the set is read in mini-batches (`batch`).
    pub(super) batch: Option<usize>,
}

pub(super) fn build_point_sets(
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
                if grid_points(counts).is_none() {
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
        // Another set's points, not its batching: `batch` belongs to the set that names it.
        let lookup = |name: &String| {
            let set = sets.get(name).cloned().ok_or_else(|| {
                invalid(format!("refers to `{name}`, which is not defined above it"))
            })?;
            Ok::<_, ConfigError>(PointSet { batch: None, ..set })
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
                batch: None,
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
                batch: None,
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
                batch: None,
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
        if let Some(size) = spec.batch {
            if size == 0 || size > set.rows {
                return Err(invalid(format!(
                    "`batch = {size}` must be between 1 and the set's {} points",
                    set.rows
                ))
                .into());
            }
            set.batch = Some(size);
        }
        sets.insert(named.name.clone(), set);
    }
    Ok(sets)
}

/// The faces a point set's `on` names, in input order then value order; each value must lie
/// in its input's domain interval.
pub(super) fn faces_of(spec: &PointSetConfig, domain: &DomainConfig) -> Result<Vec<Face>, String> {
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
