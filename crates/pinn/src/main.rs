//! The `pinn` command: train a problem, check a problem file, generate reference data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pinn::reference::{DatasetStore, GENERATORS};
use pinn::table::PointTable;
use pinn::{DeviceKind, LoadOptions, Mode, Precision, Problem, Progress, Trainer};

mod allocator;

/// Set once standard output is closed (`pinn check FILE | head -1`): what is left to print is
/// dropped, and the command's work (training, files) goes on and ends as it would.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `println!` that stops printing quietly, instead of panicking, once standard output is
/// closed; another write error is reported once on standard error.
macro_rules! say {
    ($($arg:tt)*) => {
        say(format_args!($($arg)*))
    };
}

fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output: {e}");
        }
    }
}

/// mimalloc, which keeps the memory a step frees for the next (see [`allocator`]).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator {};

#[derive(Parser)]
#[command(
    name = "pinn",
    version,
    about = "Physics-informed neural networks on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Folder of generated reference datasets.
    #[arg(long, global = true, default_value = "datasets")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Train a problem and report its errors.
    Run {
        /// Problem file.
        file: PathBuf,
        /// Number of iterations (overrides `optimizer.iterations`).
        #[arg(long)]
        iters: Option<usize>,
        /// Random seed (overrides `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Output folder (default `runs/<name>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Device: cpu, cuda or wgpu (overrides `run.device`).
        #[arg(long)]
        device: Option<DeviceKind>,
        /// Precision (overrides `run.precision`).
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
        /// Execution mode (overrides `run.mode`): eager (op by op, the reference), fused, amp,
        /// graph, graph+amp, graph+fused.
        #[arg(long)]
        mode: Option<Mode>,
        /// Run the hidden layers op by op in a fused mode (sets `run.fuse_layers = false`): the
        /// rest of the mode stays, so on a GPU this measures what the fused layer adds to Burn's
        /// kernel fusion.
        #[arg(long)]
        no_fuse_layers: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Continue from the checkpoint in the output folder (same problem file and options).
        #[arg(long)]
        resume: bool,
        /// Iterations of an L-BFGS phase after Adam (overrides `optimizer.lbfgs.iterations`,
        /// or adds the phase; 0 removes it). With `--resume` at the end of the Adam budget it
        /// polishes a finished run.
        #[arg(long)]
        lbfgs: Option<usize>,
    },
    /// Draw the plots of a run (loss curves, identified parameters, predicted vs reference field).
    Plot {
        /// The run's output folder (it records which problem it trained).
        run_dir: PathBuf,
    },
    /// Predict a trained run's fields, their derivatives or expressions of them at given
    /// points, and write them as a table (one row per point: the inputs, then each quantity).
    Predict {
        /// The run's output folder (it records which problem it trained).
        run_dir: PathBuf,
        /// The points: CSV or whitespace text whose header names the problem's inputs (in any
        /// order; other columns are ignored), or an `.npy` array `N × inputs` in `[domain]
        /// inputs` order.
        #[arg(long)]
        points: PathBuf,
        /// Quantities, comma-separated: fields (`u`), derivatives (`u_x`, `u_xxt`) or
        /// expressions as in `[residuals]`; by default the network's outputs and the derived
        /// fields.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Output table: `.csv`, `.txt`/`.dat` (whitespace) or `.npy`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a problem file (parse, resolve symbols, load data, build points) without training.
    Check {
        /// Problem file.
        file: PathBuf,
    },
    /// Generate a reference dataset into the data folder.
    Data {
        /// Dataset name, or `all`.
        name: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PrecisionArg {
    F32,
    F64,
}

/// Set by the Ctrl-C handler; training stops after writing a checkpoint.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

struct Bar(ProgressBar);

impl Progress for Bar {
    fn should_stop(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }

    fn iteration(&mut self, iteration: usize, loss: f64) {
        if iteration.is_multiple_of(25) || iteration == 1 {
            self.0.set_position(iteration as u64);
            self.0.set_message(format!("{loss:.3e}"));
        }
    }
    fn finish(&mut self) {
        self.0.finish();
    }
}

struct Quiet;
impl Progress for Quiet {
    fn iteration(&mut self, _: usize, _: f64) {}
    fn should_stop(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// What a run folder records about how it was started, so that `pinn plot` can rebuild the
/// problem (`run.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct RunRecord {
    problem: PathBuf,
    datasets: PathBuf,
    seed: Option<u64>,
    precision: Option<Precision>,
}

impl RunRecord {
    const FILE: &'static str = "run.json";

    fn new(problem: &Path, options: &LoadOptions) -> Result<Self> {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(Self {
            problem: absolute(problem),
            datasets: absolute(&options.datasets),
            seed: options.seed,
            precision: options.precision,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(Self::FILE);
        let text = serde_json::to_string_pretty(self).context("cannot encode run.json")?;
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))
    }

    fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}` (is this a run folder?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("malformed `{}`", path.display()))
    }

    fn options(&self) -> LoadOptions {
        LoadOptions {
            datasets: self.datasets.clone(),
            seed: self.seed,
            precision: self.precision,
            ..Default::default()
        }
    }
}

fn load(file: &Path, options: &LoadOptions) -> Result<Problem> {
    // The errors of loading and assembly name the file (and field) themselves: the context
    // says only what was being done, so the path is printed once.
    let context = "cannot set up the problem";
    // Generate a missing dataset here, with a progress bar, before the problem is built.
    let config = pinn::config::ProblemConfig::load(file).context(context)?;
    if let Some(generator) = config.dataset.as_ref().and_then(|d| d.generator.as_deref()) {
        let store = DatasetStore::new(&options.datasets);
        if store.verified(generator).is_none() {
            generate(&store, generator)
                .with_context(|| format!("cannot set up `{}`", file.display()))?;
        }
    }
    Problem::from_config(config, file, options).context(context)
}

/// Generates one dataset with a progress bar.
fn generate(store: &DatasetStore, name: &str) -> Result<pinn::reference::Manifest> {
    let bar = ProgressBar::new(1).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("generating dataset `{name}`"));
    let manifest = store
        .generate_with(name, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .with_context(|| format!("cannot generate dataset `{name}`"))?;
    bar.finish_and_clear();
    Ok(manifest)
}

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Library errors already spell out their cause; print each link of the chain once.
            let mut message = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !message.contains(&text) {
                    if !message.is_empty() {
                        message.push_str(": ");
                    }
                    message.push_str(&text);
                }
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            file,
            iters,
            seed,
            out,
            device,
            precision,
            mode,
            no_fuse_layers,
            quiet,
            resume,
            lbfgs,
        } => {
            let options = LoadOptions {
                datasets: cli.data_dir,
                seed,
                device,
                precision: precision.map(|p| match p {
                    PrecisionArg::F32 => Precision::F32,
                    PrecisionArg::F64 => Precision::F64,
                }),
                mode,
                fuse_layers: no_fuse_layers.then_some(false),
                lbfgs,
            };
            let problem = load(&file, &options)?;
            // A second Ctrl-C (or a failure to install the handler) falls back to the default.
            let _ = ctrlc::set_handler(|| {
                if INTERRUPTED.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
            });
            let cfg = problem.config();
            let iterations = iters.unwrap_or(cfg.optimizer.iterations);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            eprintln!(
                "{}: {} | points per term {:?} | {} iterations -> {}",
                cfg.name,
                problem.network().describe(),
                problem.term_sizes(),
                iterations,
                out.display()
            );
            let mut progress: Box<dyn Progress> = if quiet {
                Box::new(Quiet)
            } else {
                let lbfgs = cfg.optimizer.lbfgs.as_ref().map_or(0, |l| l.iterations);
                let bar = ProgressBar::new((iterations + lbfgs) as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:30}] {pos}/{len} loss {msg} {per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                Box::new(Bar(bar))
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create `{}`", out.display()))?;
            RunRecord::new(&file, &options)?.save(&out)?;
            let trainer = if resume {
                let t = Trainer::resume(&problem, &out).context("cannot resume")?;
                eprintln!("resuming after iteration {}", t.start_iteration());
                t
            } else {
                Trainer::new(&problem)
            };
            let trained = trainer
                .run(iterations, &out, progress.as_mut())
                .context("training failed")?;
            let r = &trained.report;
            say!("problem            {}", r.problem);
            say!("iterations         {}", r.iterations);
            say!("final loss         {:.4e}", r.final_loss);
            for (name, e) in &r.evaluation.relative_l2 {
                say!("rel. L2 error {name:<5}{e:.4e}");
            }
            if let (Some(joint), 2..) = (
                r.evaluation.joint_relative_l2,
                r.evaluation.relative_l2.len(),
            ) {
                say!("rel. L2, joint     {joint:.4e}");
            }
            for (name, u) in &r.evaluation.unknowns {
                match (u.truth, u.relative_error) {
                    (Some(t), Some(e)) => say!(
                        "{name:<18} {:.6e} (truth {t:.6e}, rel. error {e:.3e})",
                        u.value
                    ),
                    _ => say!("{name:<18} {:.6e}", u.value),
                }
            }
            if let Some(l) = &r.lbfgs {
                say!(
                    "L-BFGS             {} iterations, {} evaluations, stopped on {:?}",
                    l.iterations,
                    l.evaluations,
                    l.stop_reason
                );
            }
            if r.iterations > 0 {
                say!("median ms / iter   {:.3}", r.median_ms_per_iteration);
            }
            say!("execution          {}", r.execution);
            if let Some(graph) = &r.graph_replay {
                say!("graph replay       {graph}");
            }
            say!("training time      {:.1} s", r.training_seconds);
            say!("report             {}", out.join("report.json").display());
            match pinn::plot::plot_run(&out, &problem) {
                Ok(files) => say!(
                    "plots              {} files in {}",
                    files.len(),
                    out.display()
                ),
                Err(e) => eprintln!("warning: no plots: {e}"),
            }
        }
        Command::Plot { run_dir } => {
            let record = RunRecord::load(&run_dir)?;
            let problem = load(&record.problem, &record.options())?;
            let files = pinn::plot::plot_run(&run_dir, &problem)
                .with_context(|| format!("cannot plot `{}`", run_dir.display()))?;
            for f in files {
                say!("{}", f.display());
            }
        }
        Command::Predict {
            run_dir,
            points,
            fields,
            out,
        } => {
            let record = RunRecord::load(&run_dir)?;
            let problem = load(&record.problem, &record.options())?;
            let params_path = run_dir.join("params.json");
            let params =
                pinn::train::load_parameters(&problem, &params_path).with_context(|| {
                    format!(
                        "cannot load the trained parameters of `{}`",
                        run_dir.display()
                    )
                })?;
            let cfg = problem.config();
            let inputs = &cfg.domain.inputs;
            let table = PointTable::read(&points, inputs).context("cannot read the points")?;
            let coordinates = &table.values;
            let quantities: Vec<String> = if fields.is_empty() {
                cfg.network
                    .outputs
                    .iter()
                    .chain(cfg.derived.keys())
                    .cloned()
                    .collect()
            } else {
                fields.iter().map(|f| f.trim().to_string()).collect()
            };
            let outside = coordinates
                .chunks_exact(inputs.len())
                .filter(|p| {
                    p.iter()
                        .zip(cfg.domain.lower.iter().zip(&cfg.domain.upper))
                        .any(|(v, (lo, hi))| v < lo || v > hi)
                })
                .count();
            if outside > 0 {
                eprintln!(
                    "warning: {outside} of {} points lie outside the domain; the network extrapolates there",
                    table.rows()
                );
            }
            let names: Vec<&str> = quantities.iter().map(String::as_str).collect();
            let predicted = problem
                .predict(&params, coordinates, &names)
                .with_context(|| {
                    format!("cannot predict at the points of `{}`", points.display())
                })?;
            let width = inputs.len() + quantities.len();
            let mut values = Vec::with_capacity(table.rows() * width);
            for (r, point) in coordinates.chunks_exact(inputs.len()).enumerate() {
                values.extend_from_slice(point);
                values.extend(predicted.iter().map(|q| q[r]));
            }
            let written = PointTable {
                columns: inputs.iter().chain(&quantities).cloned().collect(),
                values,
            };
            written
                .write(&out)
                .context("cannot write the predictions")?;
            say!(
                "{} points, {} -> {}",
                written.rows(),
                quantities.join(", "),
                out.display()
            );
        }
        Command::Check { file } => {
            let problem = load(
                &file,
                &LoadOptions {
                    datasets: cli.data_dir,
                    ..Default::default()
                },
            )?;
            say!("{}: ok", problem.config().name);
            say!("network      {}", problem.network().describe());
            let names = &problem.config().domain.inputs;
            let pools = problem.term_pools();
            for (i, (size, set)) in problem
                .term_sizes()
                .iter()
                .zip(problem.term_derivatives())
                .enumerate()
            {
                let derivs: Vec<String> = set
                    .iter()
                    .map(|p| p.display_with(names).to_string())
                    .collect();
                let points = match pools[i] {
                    Some(pool) => format!("{size} points a step, drawn from {pool}"),
                    None => format!("{size} points"),
                };
                say!(
                    "loss[{i}]      {points}, derivatives [{}]",
                    derivs.join(", ")
                );
            }
            let passes: Vec<String> = problem
                .forward_passes()
                .iter()
                .map(|terms| {
                    let terms: Vec<String> = terms.iter().map(|t| format!("loss[{t}]")).collect();
                    format!("[{}]", terms.join(" + "))
                })
                .collect();
            say!("passes       {}", passes.join(", "));
            say!("components   {}", problem.component_names().join(", "));
        }
        Command::Data { name } => {
            let store = DatasetStore::new(&cli.data_dir);
            let names: Vec<&str> = if name == "all" {
                GENERATORS.to_vec()
            } else {
                vec![name.as_str()]
            };
            for n in names {
                let m = generate(&store, n)?;
                say!(
                    "{n}: {} files in {} ({:.2} s)",
                    m.files.len(),
                    store.dir(n).display(),
                    m.seconds
                );
                if let Some(settings) = m.settings.as_object()
                    && settings.contains_key("strouhal")
                {
                    for key in [
                        "strouhal",
                        "drag_coefficient",
                        "lift_amplitude",
                        "relative_divergence",
                    ] {
                        if let Some(v) = settings.get(key).and_then(|v| v.as_f64()) {
                            say!("  {key:<20} {v:.4}");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
