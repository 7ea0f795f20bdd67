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
    /// The outward unit normal of each point (`rows × spatial inputs`), for points `on` a
    /// geometry's boundary.
    pub(super) normals: Option<Vec<f64>>,
}

/// A problem's region (`[geometry]`) and the input column of each of its coordinates.
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    pub(super) region: Region,
    pub(super) axes: Vec<usize>,
}

impl Geometry {
    /// Whether the spatial part of `point` (all inputs) lies inside the region.
    pub(super) fn contains(&self, point: &[f64]) -> bool {
        let mut spatial = [0.0; 3];
        for (k, &axis) in self.axes.iter().enumerate() {
            spatial[k] = point[axis];
        }
        self.region.contains(&spatial[..self.axes.len()])
    }
}

/// Draws before a region that no point of the domain falls in is declared empty.
const EMPTY_AFTER: usize = 200_000;

/// Points of `layout` (on `faces`, if any) whose spatial part lies inside the region: random
/// layouts are drawn in rounds, their points inside kept, until exactly their count is
/// inside; a grid keeps those of its points that are inside.
fn lay_out_inside(
    rng: &mut SeededRng,
    layout: &Layout,
    faces: &[Face],
    domain: &DomainConfig,
    geometry: &Geometry,
) -> Result<Vec<Vec<f64>>, String> {
    let (lower, upper) = (&domain.lower, &domain.upper);
    let n = match layout {
        Layout::Grid(_) => {
            let points = lay_out(rng, layout, faces, lower, upper);
            return Ok(points
                .into_iter()
                .filter(|p| geometry.contains(p))
                .collect());
        }
        Layout::Lhs(n) | Layout::Uniform(n) => *n,
    };
    let draw = |count| {
        let round = match layout {
            Layout::Lhs(_) => Layout::Lhs(count),
            _ => Layout::Uniform(count),
        };
        lay_out(rng, &round, faces, lower, upper)
    };
    draw_accepted(n, 0.5, EMPTY_AFTER, draw, |p| geometry.contains(p)).ok_or_else(|| {
        format!(
            "no point of {EMPTY_AFTER} or more drawn lies in the region `{}`{}",
            geometry.region.text(),
            if faces.is_empty() {
                ""
            } else {
                " on these faces"
            }
        )
    })
}

/// `layout`'s count of points on the boundary parts `parts` of the region (`"boundary"`: all
/// of it), with their normals; the other inputs (time) laid out in their intervals alike.
fn lay_out_on_boundary(
    rng: &mut SeededRng,
    layout: &Layout,
    parts: &[String],
    domain: &DomainConfig,
    geometry: &Geometry,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let n = match layout {
        Layout::Lhs(n) | Layout::Uniform(n) => *n,
        Layout::Grid(_) => {
            return Err(
                "points `on` a shape are drawn (`lhs` or `uniform`), not laid on a grid".into(),
            );
        }
    };
    let whole =
        parts.iter().any(|p| p == "boundary") && geometry.region.shape("boundary").is_none();
    let named = (!whole).then_some(parts);
    let boundary = geometry
        .region
        .boundary_points(named, n, rng)
        .map_err(|e| e.to_string())?;
    let others: Vec<usize> = (0..domain.inputs.len())
        .filter(|a| !geometry.axes.contains(a))
        .collect();
    let lower: Vec<f64> = others.iter().map(|&a| domain.lower[a]).collect();
    let upper: Vec<f64> = others.iter().map(|&a| domain.upper[a]).collect();
    // The layout is `lhs` or `uniform` of the same count: the other inputs alike.
    let rest = lay_out(rng, layout, &[], &lower, &upper);
    let dims = domain.inputs.len();
    let spatial = geometry.axes.len();
    let mut coords = vec![0.0; n * dims];
    for (r, row) in coords.chunks_exact_mut(dims).enumerate() {
        for (k, &axis) in geometry.axes.iter().enumerate() {
            row[axis] = boundary.points[r * spatial + k];
        }
        for (j, &axis) in others.iter().enumerate() {
            row[axis] = rest[r][j];
        }
    }
    Ok((coords, boundary.normals))
}

pub(super) fn build_point_sets(
    config: &ProblemConfig,
    source: &Path,
    dataset: Option<&GridData>,
    input_axes: &[usize],
    geometry: Option<&Geometry>,
    datasets: &Path,
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
            spec.coords.is_some(),
            spec.file.is_some(),
            spec.from.is_some(),
            spec.union.is_some(),
        ];
        if sources.iter().filter(|&&s| s).count() != 1 {
            return Err(invalid(
                "needs exactly one of `grid`, `lhs`, `uniform`, `coords`, `file`, `from`, `union`"
                    .into(),
            )
            .into());
        }
        if spec.file.is_none()
            && (spec.columns.is_some() || spec.outside || spec.generator.is_some())
        {
            return Err(invalid(
                "`columns`, `outside` and `generator` belong to a `file` source".into(),
            )
            .into());
        }
        // `at` holds inputs at one value each: the layout covers the others.
        let (domain, held) = held_at(spec, &config.domain).map_err(&invalid)?;
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
                let mut counts = counts.clone();
                for &axis in &held {
                    counts[axis] = 1;
                }
                Some(Layout::Grid(counts))
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
        let parts = match &spec.on {
            Some(OnSpec::Parts(parts)) => Some(parts),
            _ => None,
        };
        if (!faces.is_empty() || parts.is_some() || !held.is_empty()) && layout.is_none() {
            return Err(invalid(
                "`on` places the points of `lhs`, `uniform` or `grid = [counts]` on faces or \
                 shapes"
                    .into(),
            )
            .into());
        }
        if let (Some(parts), None) = (parts, geometry) {
            return Err(invalid(format!(
                "`on = {parts:?}` names shapes, but the problem has no [geometry]"
            ))
            .into());
        }
        if let Some(g) = geometry
            && let Some(face) = faces.iter().find(|f| g.axes.contains(&f.axis))
        {
            return Err(invalid(format!(
                "`on.{}`: a face of a spatial input cuts through the region of [geometry]; \
                 name its shapes instead (`on = \"boundary\"` or a shape)",
                config.domain.inputs[face.axis]
            ))
            .into());
        }
        // Another set's points, not its batching: `batch` belongs to the set that names it.
        let lookup = |name: &String| {
            let set = sets.get(name).cloned().ok_or_else(|| {
                invalid(format!("refers to `{name}`, which is not defined above it"))
            })?;
            Ok::<_, ConfigError>(PointSet { batch: None, ..set })
        };
        let mut set = if let (Some(layout), Some(parts), Some(g)) = (&layout, parts, geometry) {
            let (coords, normals) =
                lay_out_on_boundary(rng, layout, parts, &domain, g).map_err(&invalid)?;
            PointSet {
                rows: coords.len() / dims,
                coords,
                values: None,
                batch: None,
                normals: Some(normals),
            }
        } else if let Some(layout) = &layout {
            let pts = match geometry {
                Some(g) => lay_out_inside(rng, layout, &faces, &domain, g).map_err(&invalid)?,
                None => lay_out(rng, layout, &faces, &domain.lower, &domain.upper),
            };
            PointSet {
                rows: pts.len(),
                coords: pts.into_iter().flatten().collect(),
                values: None,
                batch: None,
                normals: None,
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
                normals: None,
            }
        } else if let Some(points) = &spec.coords {
            let mut coords = Vec::with_capacity(points.len() * dims);
            for (i, p) in points.iter().enumerate() {
                if p.len() != dims || p.iter().any(|v| !v.is_finite()) {
                    return Err(invalid(format!(
                        "`coords[{i}]` = {p:?} is not a point of the {dims} finite inputs ({})",
                        config.domain.inputs.join(", ")
                    ))
                    .into());
                }
                coords.extend_from_slice(p);
            }
            refuse_outside(&coords, config, geometry, |r| format!("`coords[{r}]`"))
                .map_err(&invalid)?;
            PointSet {
                rows: points.len(),
                coords,
                values: None,
                batch: None,
                normals: None,
            }
        } else if let Some(file) = &spec.file {
            let folder = match &spec.generator {
                Some(generator) => DatasetStore::new(datasets)
                    .ensure(generator)
                    .map_err(|e| invalid(format!("`generator = \"{generator}\"`: {e}")))?,
                None => source.parent().unwrap_or(Path::new("")).to_path_buf(),
            };
            read_point_file(&folder.join(file), spec, config, geometry).map_err(&invalid)?
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
                // Normals only when every part has them.
                out.normals = match (k, out.normals, part.normals) {
                    (0, _, normals) => normals,
                    (_, Some(mut acc), Some(more)) => {
                        acc.extend(more);
                        Some(acc)
                    }
                    _ => None,
                };
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
            let normals = set.normals.map(|n| {
                let width = n.len() / set.rows;
                idx.iter()
                    .flat_map(|&i| n[i * width..(i + 1) * width].to_vec())
                    .collect()
            });
            set = PointSet {
                coords,
                rows: k,
                values,
                batch: None,
                normals,
            };
        }
        // Gaussian noise on the data values: relative to each field's standard deviation
        // (`noise`), or of an absolute standard deviation (`noise_sigma`).
        for (key, level, relative) in [
            ("noise", spec.noise, true),
            ("noise_sigma", spec.noise_sigma, false),
        ] {
            if let Some(level) = level {
                add_noise(&mut set, key, level, relative, rng).map_err(&invalid)?;
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

/// Adds Gaussian noise to every data value of `set`: `level` times each field's standard
/// deviation when `relative`, else of standard deviation `level`; `key` names the setting.
fn add_noise(
    set: &mut PointSet,
    key: &str,
    level: f64,
    relative: bool,
    rng: &mut SeededRng,
) -> Result<(), String> {
    if !(level.is_finite() && level >= 0.0) {
        return Err(format!("`{key}` must be finite and >= 0, got {level}"));
    }
    let Some(values) = set.values.as_mut() else {
        return Err(format!(
            "`{key}` needs data values (dataset grid points or a `file`)"
        ));
    };
    for v in values.values_mut() {
        let scale = if relative {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            level * (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
        } else {
            level
        };
        for x in v.iter_mut() {
            *x += scale * standard_normal(rng);
        }
    }
    Ok(())
}

/// The axis of input `input`, held at `value` by the key `key` (`on.x`, `at.t`): it must be
/// an input, and `value` must lie in its domain interval.
fn held_axis(domain: &DomainConfig, key: &str, input: &str, value: f64) -> Result<usize, String> {
    let axis = domain
        .inputs
        .iter()
        .position(|i| i == input)
        .ok_or_else(|| {
            format!(
                "`{key}.{input}`: not an input (inputs: {})",
                domain.inputs.join(", ")
            )
        })?;
    let (lo, hi) = (domain.lower[axis], domain.upper[axis]);
    if !(lo..=hi).contains(&value) {
        return Err(format!(
            "`{key}.{input}`: {value} lies outside the domain's [{lo}, {hi}]"
        ));
    }
    Ok(axis)
}

/// The domain with the inputs of `at` held at their values (lower = upper), and those inputs.
fn held_at(
    spec: &PointSetConfig,
    domain: &DomainConfig,
) -> Result<(DomainConfig, Vec<usize>), String> {
    let mut restricted = domain.clone();
    let mut held = Vec::new();
    for (input, &value) in spec.at.iter().flatten() {
        let axis = held_axis(domain, "at", input, value)?;
        restricted.lower[axis] = value;
        restricted.upper[axis] = value;
        held.push(axis);
    }
    Ok((restricted, held))
}

/// `Err` naming the first point (`name` of its row) outside the domain's box or the region.
fn refuse_outside(
    coords: &[f64],
    config: &ProblemConfig,
    geometry: Option<&Geometry>,
    name: impl Fn(usize) -> String,
) -> Result<(), String> {
    let d = &config.domain;
    for (r, point) in coords.chunks_exact(d.inputs.len()).enumerate() {
        let outside = point
            .iter()
            .enumerate()
            .find(|(i, v)| **v < d.lower[*i] || **v > d.upper[*i]);
        if let Some((i, v)) = outside {
            return Err(format!(
                "{} has `{}` = {v}, outside the domain's [{}, {}]",
                name(r),
                d.inputs[i],
                d.lower[i],
                d.upper[i]
            ));
        }
        if let Some(g) = geometry
            && !g.contains(point)
        {
            return Err(format!(
                "{} lies outside the region `{}`",
                name(r),
                g.region.text()
            ));
        }
    }
    Ok(())
}

/// A table of points read for a problem: the inputs' columns as rows of coordinates, and every
/// other column by name.
pub(super) struct InputTable {
    pub(super) coords: Vec<f64>,
    pub(super) rows: usize,
    pub(super) others: BTreeMap<String, Vec<f64>>,
}

/// Reads a table whose header (or, for `.npy`, `columns`, the key `columns_key` names) has a
/// column for every input.
pub(super) fn read_input_table(
    path: &Path,
    columns: Option<&[String]>,
    columns_key: &str,
    inputs: &[String],
) -> Result<InputTable, String> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let columns = match (columns, is_npy) {
        (Some(columns), _) => columns.to_vec(),
        (None, true) => {
            return Err(format!(
                "`{}` is an .npy array: name its columns with `{columns_key} = [...]`",
                path.display()
            ));
        }
        (None, false) => Vec::new(),
    };
    let table = PointTable::read(path, &columns).map_err(|e| e.to_string())?;
    let axes: Vec<usize> = inputs
        .iter()
        .map(|input| {
            table
                .columns
                .iter()
                .position(|c| c == input)
                .ok_or_else(|| {
                    format!(
                        "`{}` has no column `{input}` (its columns: {}); every input needs one",
                        path.display(),
                        table.columns.join(", ")
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let width = table.columns.len().max(1);
    let coords = table
        .values
        .chunks_exact(width)
        .flat_map(|row| axes.iter().map(move |&a| row[a]))
        .collect();
    let others = table
        .columns
        .iter()
        .enumerate()
        .filter(|(c, _)| !axes.contains(c))
        .map(|(c, name)| {
            let column = table
                .values
                .iter()
                .skip(c)
                .step_by(width)
                .copied()
                .collect();
            (name.clone(), column)
        })
        .collect();
    Ok(InputTable {
        coords,
        rows: table.rows(),
        others,
    })
}

/// The points of a `file` source and its other columns as data values; points outside the
/// domain (or region) are refused unless `outside` allows them.
fn read_point_file(
    path: &Path,
    spec: &PointSetConfig,
    config: &ProblemConfig,
    geometry: Option<&Geometry>,
) -> Result<PointSet, String> {
    let inputs = &config.domain.inputs;
    let table = read_input_table(path, spec.columns.as_deref(), "columns", inputs)?;
    if !spec.outside {
        refuse_outside(&table.coords, config, geometry, |r| {
            format!("row {} of `{}`", r + 1, path.display())
        })
        .map_err(|e| format!("{e}; set `outside = true` to allow it"))?;
    }
    Ok(PointSet {
        coords: table.coords,
        rows: table.rows,
        values: Some(table.others),
        batch: None,
        normals: None,
    })
}

/// The faces a point set's `on` names, in input order then value order; each value must lie
/// in its input's domain interval.
pub(super) fn faces_of(spec: &PointSetConfig, domain: &DomainConfig) -> Result<Vec<Face>, String> {
    let mut faces = Vec::new();
    for (input, values) in spec
        .on
        .as_ref()
        .and_then(OnSpec::faces)
        .into_iter()
        .flatten()
    {
        for &value in &values.0 {
            let axis = held_axis(domain, "on", input, value)?;
            faces.push(Face { axis, value });
        }
    }
    faces.sort_by(|a, b| a.axis.cmp(&b.axis).then(a.value.total_cmp(&b.value)));
    faces.dedup();
    Ok(faces)
}
