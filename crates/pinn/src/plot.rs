//! Pictures of a run, like the paper's figures: the loss curves, the trajectories of identified
//! parameters, and the predicted field against the reference with their difference.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use thiserror::Error;

use crate::problem::{EvaluationGrid, Problem};
use crate::train::{TrainError, load_parameters};

/// Why plots could not be drawn.
#[derive(Debug, Error)]
pub enum PlotError {
    /// `PINN_FONT` names a file that is not a usable TrueType font.
    #[error("cannot use the font `{path}` named by PINN_FONT: {message}")]
    Font {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A run file is missing or malformed.
    #[error("cannot read `{path}`: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The parameters could not be loaded.
    #[error(transparent)]
    Parameters(#[from] TrainError),
    /// Drawing failed.
    #[error("cannot draw `{path}`: {message}")]
    Draw {
        /// The image.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
}

/// Registers the font of the plot labels once for plotters' `sans-serif` family: the file
/// named by `PINN_FONT` when it is set, else DejaVu Sans, embedded in the binary so that plots
/// are drawn the same on a machine with no fonts installed (a GPU node, a container).
fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<Result<(), (PathBuf, String)>> = OnceLock::new();
    let registered = FONT.get_or_init(|| match std::env::var_os("PINN_FONT") {
        Some(path) => {
            let path = PathBuf::from(path);
            let bytes = std::fs::read(&path).map_err(|e| (path.clone(), e.to_string()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| (path, "not a TrueType font".to_string()))
        }
        None => register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| (PathBuf::from("(embedded DejaVu Sans)"), "unreadable".into())),
    });
    registered
        .clone()
        .map_err(|(path, message)| PlotError::Font { path, message })
}

fn draw_err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |message| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    }
}

/// `metrics.csv` as columns.
struct Metrics {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

fn read_metrics(path: &Path) -> Result<Metrics, PlotError> {
    let bad = |message: String| PlotError::Input {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| bad("empty file".into()))?
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .enumerate()
        .map(|(i, line)| {
            line.split(',')
                .map(|v| v.parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("line {}: {e}", i + 2)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Metrics { header, rows })
}

fn column(m: &Metrics, name: &str) -> Option<Vec<(f64, f64)>> {
    let c = m.header.iter().position(|h| h == name)?;
    Some(
        m.rows
            .iter()
            .filter(|r| r.len() > c && r[c].is_finite())
            .map(|r| (r[0], r[c]))
            .collect(),
    )
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 * hi.abs().max(1.0) {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    } else {
        let pad = 0.04 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// One line chart of several named series.
fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    (x_label, y_label): (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let (x0, x1) = range(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)));
    let (y0, y1) = range(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Colour of `v` in `[lo, hi]`: blue through green to red.
fn colour(v: f64, lo: f64, hi: f64) -> HSLColor {
    let s = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    HSLColor(0.66 * (1.0 - s), 0.85, 0.5)
}

/// A heat map of `values` (C order over `rows × cols`) with the row axis vertical.
fn heat_map(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    (row_name, rows): (&str, &[f64]),
    (col_name, cols): (&str, &[f64]),
    values: &[f64],
) -> Result<(), String> {
    let (lo, hi) = range(values.iter().copied());
    let (c0, c1) = range(cols.iter().copied());
    let (r0, r1) = range(rows.iter().copied());
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{caption}  [{lo:.3e}, {hi:.3e}]"),
            ("sans-serif", 20),
        )
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(c0..c1, r0..r1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(col_name)
        .y_desc(row_name)
        .draw()
        .map_err(|e| e.to_string())?;
    let half = |coords: &[f64], i: usize| -> (f64, f64) {
        let left = if i > 0 {
            0.5 * (coords[i - 1] + coords[i])
        } else {
            coords[i]
        };
        let right = if i + 1 < coords.len() {
            0.5 * (coords[i] + coords[i + 1])
        } else {
            coords[i]
        };
        (left, right)
    };
    chart
        .draw_series((0..rows.len()).flat_map(|i| {
            // Points outside a region are NaN: left blank.
            (0..cols.len())
                .filter(move |&j| !values[i * cols.len() + j].is_nan())
                .map(move |j| {
                    let (ra, rb) = half(rows, i);
                    let (ca, cb) = half(cols, j);
                    Rectangle::new(
                        [(ca, ra), (cb, rb)],
                        colour(values[i * cols.len() + j], lo, hi).filled(),
                    )
                })
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn field_plot(path: &Path, grid: &EvaluationGrid, field: usize) -> Result<(), String> {
    let (name, pred, exact) = &grid.fields[field];
    let error: Vec<f64> = pred.iter().zip(exact).map(|(p, e)| (p - e).abs()).collect();
    match grid.axes.as_slice() {
        [(row_name, rows), (col_name, cols)] => {
            let root = BitMapBackend::new(path, (900, 1050)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let panels = root.split_evenly((3, 1));
            for (panel, (title, values)) in panels.iter().zip([
                (format!("{name}: prediction"), pred),
                (format!("{name}: reference"), exact),
                (format!("|error| of {name}"), &error),
            ]) {
                heat_map(panel, &title, (row_name, rows), (col_name, cols), values)?;
            }
            root.present().map_err(|e| e.to_string())
        }
        [(axis, coords)] => {
            let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let series = vec![
                (
                    "prediction".to_string(),
                    coords.iter().copied().zip(pred.iter().copied()).collect(),
                ),
                (
                    "reference".to_string(),
                    coords.iter().copied().zip(exact.iter().copied()).collect(),
                ),
            ];
            line_chart(
                &root,
                &format!("{name} along {axis}"),
                (axis, name),
                &series,
            )?;
            root.present().map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

/// Draws the plots of a finished (or interrupted) run of `problem` in `run_dir` and returns
/// the files written: `loss.png`, `unknowns.png` (inverse problems) and `field_<name>.png`
/// for each evaluated field (prediction, reference and error over the evaluation grid).
pub fn plot_run(run_dir: &Path, problem: &Problem) -> Result<Vec<PathBuf>, PlotError> {
    ensure_font()?;
    let metrics = read_metrics(&run_dir.join("metrics.csv"))?;
    let mut written = Vec::new();

    let path = run_dir.join("loss.png");
    let mut series = Vec::new();
    for name in std::iter::once("loss".to_string()).chain(problem.component_names()) {
        if let Some(points) = column(&metrics, &name) {
            let log: Vec<(f64, f64)> = points
                .into_iter()
                .filter(|p| p.1 > 0.0)
                .map(|(i, v)| (i, v.log10()))
                .collect();
            series.push((name, log));
        }
    }
    {
        let root = BitMapBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| draw_err(&path)(e.to_string()))?;
        line_chart(&root, "training loss", ("iteration", "log10"), &series)
            .map_err(draw_err(&path))?;
        root.present().map_err(|e| draw_err(&path)(e.to_string()))?;
    }
    written.push(path);

    if !problem.unknowns().is_empty() {
        let path = run_dir.join("unknowns.png");
        let root = BitMapBackend::new(&path, (900, 420 * problem.unknowns().len() as u32))
            .into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| draw_err(&path)(e.to_string()))?;
        let panels = root.split_evenly((problem.unknowns().len(), 1));
        for (panel, u) in panels.iter().zip(problem.unknowns()) {
            let Some(points) = column(&metrics, &u.name) else {
                continue;
            };
            let mut series = vec![(u.name.clone(), points.clone())];
            if let (Some(truth), Some(first), Some(last)) = (u.truth, points.first(), points.last())
            {
                series.push(("truth".into(), vec![(first.0, truth), (last.0, truth)]));
            }
            line_chart(panel, &u.name, ("iteration", "value"), &series).map_err(draw_err(&path))?;
        }
        root.present().map_err(|e| draw_err(&path)(e.to_string()))?;
        drop(panels);
        drop(root);
        written.push(path);
    }

    let params_path = run_dir.join("params.json");
    if params_path.exists() {
        let params = load_parameters(problem, &params_path)?;
        if let Some(grid) = problem.evaluation_grid(&params) {
            for k in 0..grid.fields.len() {
                let path = run_dir.join(format!("field_{}.png", grid.fields[k].0));
                field_plot(&path, &grid, k).map_err(draw_err(&path))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// One bar per `(label, value)`, e.g. the speed-up of each execution mode (the paper's Table 1
/// as a chart), with a dashed reference line at `baseline` (such as 1× for the plain run).
pub fn bar_chart(
    path: &Path,
    caption: &str,
    y_label: &str,
    bars: &[(String, f64)],
    baseline: Option<f64>,
) -> Result<(), PlotError> {
    ensure_font()?;
    let top = bars
        .iter()
        .map(|b| b.1)
        .chain(baseline)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        * 1.15;
    let top = if top > 0.0 { top } else { 1.0 };
    let n = bars.len() as f64;
    let draw = |root: &DrawingArea<BitMapBackend<'_>, Shift>| -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n.max(1.0), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.12, 0.0), (x + 0.88, v.max(0.0))],
                    Palette99::pick(i).to_rgba().filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        let label_style =
            TextStyle::from(("sans-serif", 18)).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Bottom,
            ));
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (name, v))| {
                Text::new(
                    format!("{name}: {v:.2}"),
                    (i as f64 + 0.5, v.max(0.0) + 0.01 * top),
                    label_style.clone(),
                )
            }))
            .map_err(|e| e.to_string())?;
        if let Some(b) = baseline {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, b), (n, b)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    };
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    draw(&root).map_err(draw_err(path))
}

/// One line chart of an image drawn by [`line_charts`]: named series of `(x, y)` points.
#[derive(Clone, Copy, Debug)]
pub struct LineChart<'a> {
    /// Title above the chart.
    pub caption: &'a str,
    /// Label of the horizontal axis.
    pub x_label: &'a str,
    /// Label of the vertical axis.
    pub y_label: &'a str,
    /// The series, each drawn as a line with a legend entry.
    pub series: &'a [(String, Vec<(f64, f64)>)],
}

/// Line charts side by side in one image, such as the paper's Figure 3 (time per iteration and
/// speed-up over eager, each against the batch size).
pub fn line_charts(path: &Path, charts: &[LineChart<'_>]) -> Result<(), PlotError> {
    ensure_font()?;
    let width = 640 * charts.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 480)).into_drawing_area();
    let draw = || -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((1, charts.len().max(1)));
        for (area, chart) in areas.iter().zip(charts) {
            line_chart(
                area,
                chart.caption,
                (chart.x_label, chart.y_label),
                chart.series,
            )?;
        }
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(draw_err(path))
}
