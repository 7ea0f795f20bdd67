//! `pinn-bench` (what `just bench` runs): times every shipped problem in every execution mode the
//! device has, each (problem, mode) pair in a fresh process, and writes the paper's tables.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use pinn::stats::median;
use pinn::{DeviceKind, Mode, ReplayStatus, Silent, Trainer};
use pinn_bench::scaling::{self, ScalingPoint, ScalingResults, ScalingRow, Sweep};
use pinn_bench::{BenchResults, Measurement, PROBLEMS, ReferenceTiming, Workspace, time_steps};

/// Same allocator as the `pinn` binary, so timings match real runs.
#[global_allocator]
static ALLOCATOR: pinn_bench::allocator::Allocator = pinn_bench::allocator::Allocator {};

#[derive(Parser)]
#[command(
    name = "pinn-bench",
    about = "Training-step benchmarks and the paper's Table 1"
)]
struct Cli {
    /// The workspace (the folder with `problems/`, `datasets/` and `benches/reference/`);
    /// by default the working folder or the nearest folder above it that has `problems/`.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    table: TableArgs,
}

#[derive(clap::Args)]
struct TableArgs {
    /// Device: cpu, cuda or wgpu.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
    /// Problems (file stems); all eight by default.
    #[arg(long, value_delimiter = ',')]
    problems: Vec<String>,
    /// Modes; all by default (those the device lacks show as n/a).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<Mode>,
    /// Untimed iterations first (kernel compilation, autotuning, allocator warm-up).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed iterations; the median is reported.
    #[arg(long, default_value_t = 30, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    iters: usize,
    /// Measuring rounds per problem: each times every mode once in a fresh process and then
    /// (with `--reference`) PyTorch in its process set up before the rounds. The smallest
    /// median of each is kept (what a shared machine's interference cannot make smaller), and
    /// the speed-up over PyTorch is the median of the rounds' own ratios.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Also train each problem to its full budget and report its errors (hours on a CPU).
    #[arg(long)]
    full: bool,
    /// Also time the PyTorch reference steps (benches/reference/step.py) with this Python.
    #[arg(long, value_name = "PYTHON")]
    reference: Option<PathBuf>,
    /// Output folder for `bench.md`, `bench.json` and `table1.png`.
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Sub {
    /// Time one problem in one mode in this process and print the measurement as JSON (what the
    /// table run starts once per pair).
    Measure {
        /// Problem file stem.
        #[arg(long)]
        problem: String,
        /// Mode.
        #[arg(long)]
        mode: Mode,
        /// Device: cpu, cuda or wgpu.
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        /// Untimed iterations.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Timed iterations.
        #[arg(long, default_value_t = 30, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        iters: usize,
        /// Train to the full budget afterwards and record the errors.
        #[arg(long)]
        full: bool,
        /// The scaling study's configuration: interior batch and hidden layers (both or
        /// neither).
        #[arg(long, requires = "depth")]
        batch: Option<usize>,
        /// See `--batch`.
        #[arg(long, requires = "batch")]
        depth: Option<usize>,
    },
    /// The roofline of the training step on the CPU: the step's matrix products counted per
    /// part, each timed alone at its shape, against the step's own time and the machine's peak
    /// (one large product on all threads); prints a Markdown table and writes
    /// `roofline.md` and `roofline.json`.
    Roofline {
        /// Problems (file stems); the four discrete-time ones by default.
        #[arg(long, value_delimiter = ',')]
        problems: Vec<String>,
        /// Untimed iterations first.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Timed iterations; medians are reported.
        #[arg(long, default_value_t = 30, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        iters: usize,
        /// Output folder.
        #[arg(long, default_value = "runs/roofline")]
        out: PathBuf,
    },
    /// Sampling speed of a region that is not a box: points inside the plate with four holes
    /// (`problems/plate_holes.toml`'s region) and on its boundary with normals, timed.
    Sampling {
        /// Interior points.
        #[arg(long, default_value_t = 1_000_000)]
        inside: usize,
        /// Boundary points.
        #[arg(long, default_value_t = 100_000)]
        boundary: usize,
    },
    /// The paper's batch-size and depth study (Figure 3): one training step of the 3-D
    /// Navier-Stokes problem (beltrami3d) timed against its interior batch (512 to 131,072)
    /// and against its depth (2 to 10 hidden layers at batch 8,192), in eager, fused, graph
    /// and graph+fused, each in a fresh process; writes `scaling.md`, `scaling.json` and
    /// `scaling_{batch,depth}.png`.
    Scaling {
        /// Device: cpu, cuda or wgpu.
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        /// Untimed iterations first.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Timed iterations; the median is reported.
        #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        iters: usize,
        /// Output folder.
        #[arg(long, default_value = "runs/scaling")]
        out: PathBuf,
    },
}

fn main() {
    pinn_bench::allocator::keep_freed_memory();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let workspace = Workspace::from_current_dir(cli.root.as_deref())?;
    match cli.command {
        Some(Sub::Measure {
            problem,
            mode,
            device,
            warmup,
            iters,
            full,
            batch,
            depth,
        }) => {
            let point = batch
                .zip(depth)
                .map(|(batch, depth)| ScalingPoint { batch, depth });
            let m = measure(
                &workspace,
                &problem,
                mode,
                device,
                (warmup, iters),
                full,
                point,
            )?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
        Some(Sub::Scaling {
            device,
            warmup,
            iters,
            out,
        }) => scaling(&workspace, device, (warmup, iters), &out),
        Some(Sub::Roofline {
            problems,
            warmup,
            iters,
            out,
        }) => roofline(&workspace, &problems, (warmup, iters), &out),
        Some(Sub::Sampling { inside, boundary }) => sampling(&workspace, inside, boundary),
        None => table(&workspace, &cli.table),
    }
}

/// Times laying out `inside` interior and `boundary` boundary points of the plate with holes.
fn sampling(workspace: &Workspace, inside: usize, boundary: usize) -> Result<()> {
    use pinn::core::geometry::InteriorLayout;
    use pinn::core::sampling::rng_from_seed;
    let path = workspace.root().join("problems/plate_holes.toml");
    let config = pinn::config::ProblemConfig::load(&path).context("loading plate_holes")?;
    let geometry = config
        .geometry
        .as_ref()
        .context("plate_holes has a [geometry]")?;
    let (region, _) = geometry.region(&config.domain, &path)?;
    let mut rng = rng_from_seed(1);
    for layout in [InteriorLayout::Lhs(inside), InteriorLayout::Uniform(inside)] {
        let start = std::time::Instant::now();
        let points = region.interior_points(&layout, &mut rng)?;
        println!(
            "{:?}: {} interior points in {:.3} s",
            layout,
            points.len() / 2,
            start.elapsed().as_secs_f64()
        );
    }
    let start = std::time::Instant::now();
    let points = region.boundary_points(None, boundary, &mut rng)?;
    println!(
        "{} boundary points with normals in {:.3} s",
        points.parts.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Measures the CPU roofline of each problem (fused mode) and writes the tables.
fn roofline(
    workspace: &Workspace,
    problems: &[String],
    (warmup, iters): (usize, usize),
    out: &Path,
) -> Result<()> {
    let names: Vec<String> = if problems.is_empty() {
        [
            "burgers_disc_fwd",
            "ac_disc_fwd",
            "burgers_disc_inv",
            "kdv_disc_inv",
        ]
        .map(String::from)
        .to_vec()
    } else {
        problems.to_vec()
    };
    let peak = pinn_bench::roofline::peak_gflops(1024, 10);
    let mut rows = Vec::new();
    for name in &names {
        let problem = workspace
            .load_problem(name, DeviceKind::Cpu, Mode::Fused)
            .with_context(|| format!("loading problem {name}"))?;
        rows.push(pinn_bench::roofline::measure(
            name,
            &problem,
            (warmup, iters),
            peak,
        ));
    }
    let table = pinn_bench::roofline::markdown(&rows);
    print!("{table}");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("roofline.md"), &table)?;
    std::fs::write(
        out.join("roofline.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    Ok(())
}

/// Times one pair in this process (at a point of the scaling study, if given): `warmup`
/// untimed steps, then `iters` timed ones.
fn measure(
    workspace: &Workspace,
    name: &str,
    mode: Mode,
    device: DeviceKind,
    (warmup, iters): (usize, usize),
    full: bool,
    point: Option<ScalingPoint>,
) -> Result<Measurement> {
    let problem = match point {
        Some(point) => workspace.load_problem_with(name, device, mode, |c| point.apply(c)),
        None => workspace.load_problem(name, device, mode),
    }
    .with_context(|| format!("loading problem {name}"))?;
    let (mut times, replay) = time_steps(&problem, warmup, iters);
    let mut errors = BTreeMap::new();
    if full {
        let out = std::env::temp_dir().join(format!("pinn-bench-{name}-{mode}"));
        let iterations = problem.config().optimizer.iterations;
        let trained = Trainer::new(&problem)
            .run(iterations, &out, &mut Silent)
            .with_context(|| format!("training {name}"))?;
        let evaluation = &trained.report.evaluation;
        errors.extend(evaluation.relative_l2.clone());
        for (k, u) in &evaluation.unknowns {
            if let Some(e) = u.relative_error {
                errors.insert(k.clone(), e);
            }
        }
    }
    Ok(Measurement {
        problem: name.to_string(),
        mode,
        device,
        median_ms: Some(median(&mut times)),
        iterations: iters,
        errors,
        unavailable: None,
        replay_abandoned: match replay {
            ReplayStatus::Abandoned(why) => Some(why),
            ReplayStatus::Pending => Some(format!("not captured within {warmup} warm-up steps")),
            ReplayStatus::Off | ReplayStatus::Replaying => None,
        },
    })
}

/// Runs every (problem, mode) pair in its own process and writes the tables after each
/// problem, so that a run cut short (a time limit on a lent GPU) keeps what it measured.
fn table(workspace: &Workspace, args: &TableArgs) -> Result<()> {
    let device = args.device;
    let problems: Vec<String> = if args.problems.is_empty() {
        PROBLEMS.iter().map(|s| s.to_string()).collect()
    } else {
        args.problems.clone()
    };
    for p in &problems {
        if !PROBLEMS.contains(&p.as_str()) {
            bail!(
                "unknown problem `{p}` (expected one of {})",
                PROBLEMS.join(", ")
            );
        }
    }
    let modes: Vec<Mode> = if args.modes.is_empty() {
        Mode::ALL.to_vec()
    } else {
        args.modes.clone()
    };
    let exe = std::env::current_exe().context("locating the pinn-bench binary")?;
    let mut results = BenchResults::default();
    let references = match &args.reference {
        Some(_) => reference_modes(device),
        None => &[],
    };
    for p in &problems {
        // Rounds: every mode once, then every PyTorch mode once, `repeat` times. On a shared
        // machine whose speed drifts over minutes, each round's times are comparable with each
        // other, and the fastest of each comes from a like stretch of time.
        let mut ours: Vec<(Mode, Vec<Result<Measurement>>)> =
            modes.iter().map(|&m| (m, Vec::new())).collect();
        let mut theirs: Vec<(&str, Vec<Result<ReferenceTiming>>)> =
            references.iter().map(|&m| (m, Vec::new())).collect();
        // Each PyTorch mode is set up once, before the rounds (so that its setup overlaps
        // none of our timings), and then timed in every round.
        let mut servers: Vec<Result<ReferenceServer>> = match &args.reference {
            Some(python) => references
                .iter()
                .map(|mode| {
                    eprintln!("{p} / PyTorch {mode}: setting up");
                    ReferenceServer::start(python, workspace, p, mode, args)
                })
                .collect(),
            None => Vec::new(),
        };
        for round in 1..=args.repeat {
            for (mode, runs) in &mut ours {
                if mode.unavailable_on(device).is_some() {
                    continue;
                }
                eprint!("{p} / {mode} (round {round}/{}) ... ", args.repeat);
                let run = measure_in_child(&exe, workspace, p, *mode, args);
                match &run {
                    Ok(
                        m @ Measurement {
                            median_ms: Some(t), ..
                        },
                    ) => match &m.replay_abandoned {
                        Some(why) => eprintln!("{t:.2} ms (not replayed: {why})"),
                        None if mode.name().starts_with("graph") => {
                            eprintln!("{t:.2} ms (replayed)")
                        }
                        None => eprintln!("{t:.2} ms"),
                    },
                    Ok(_) => eprintln!("n/a"),
                    Err(e) => eprintln!("failed: {e:#}"),
                }
                runs.push(run);
            }
            for ((mode, runs), server) in theirs.iter_mut().zip(&mut servers) {
                let run = match server {
                    Ok(server) => server.time(),
                    Err(e) => Err(anyhow::anyhow!("{e:#}")),
                };
                match &run {
                    Ok(r) => eprintln!("{p} / PyTorch {mode}: {:.2} ms", r.median_ms),
                    Err(e) => eprintln!("{p} / PyTorch {mode}: {e:#}"),
                }
                runs.push(run);
            }
        }
        drop(servers);
        // Our fastest mode in each round, for the paired speed-ups.
        let best_per_round: Vec<Option<f64>> = (0..args.repeat as usize)
            .map(|r| {
                ours.iter()
                    .filter_map(|(_, runs)| runs.get(r)?.as_ref().ok()?.median_ms)
                    .reduce(f64::min)
            })
            .collect();
        for (mode, runs) in ours {
            let m = match mode.unavailable_on(device) {
                Some(why) => unavailable(p, mode, device, why.to_string()),
                None => fastest(runs.into_iter(), |m| m.median_ms.unwrap_or(f64::INFINITY))
                    .unwrap_or_else(|e| unavailable(p, mode, device, format!("failed: {e:#}"))),
            };
            results.measurements.push(m);
        }
        for (mode, runs) in theirs {
            let paired: Vec<f64> = runs
                .iter()
                .zip(&best_per_round)
                .filter_map(|(run, best)| Some(run.as_ref().ok()?.median_ms / (*best)?))
                .collect();
            match fastest(runs.into_iter(), |r| r.median_ms) {
                Ok(r) => results.reference.push(ReferenceTiming {
                    paired_speedups: paired,
                    ..r
                }),
                Err(e) => eprintln!("{p} / PyTorch {mode}: {e:#}"),
            }
        }
        write_results(&results, &args.out)?;
    }
    write_outputs(&results, device, &args.out)
}

/// The scaling study: every point of both sweeps in every mode, each in a fresh process;
/// the results are written after every measurement, so a run cut short keeps what it has.
fn scaling(
    workspace: &Workspace,
    device: DeviceKind,
    (warmup, iters): (usize, usize),
    out: &Path,
) -> Result<()> {
    let exe = std::env::current_exe().context("locating the pinn-bench binary")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut results = ScalingResults {
        device,
        rows: Vec::new(),
    };
    let json_path = out.join("scaling.json");
    for sweep in [Sweep::Batch, Sweep::Depth] {
        for point in ScalingPoint::sweep(sweep) {
            for mode in scaling::MODES {
                let (median_ms, note) = match mode.unavailable_on(device) {
                    Some(why) => (None, Some(why.to_string())),
                    None => {
                        eprint!(
                            "batch {} / depth {} / {mode} ... ",
                            point.batch, point.depth
                        );
                        let mut cmd = measure_command(
                            &exe,
                            workspace,
                            scaling::PROBLEM,
                            mode,
                            device,
                            (warmup, iters),
                        );
                        cmd.args(["--batch", &point.batch.to_string()])
                            .args(["--depth", &point.depth.to_string()]);
                        match run_measurement(cmd) {
                            Ok(m) => {
                                eprintln!("{:.2} ms", m.median_ms.unwrap_or(f64::NAN));
                                (m.median_ms, m.replay_abandoned.or(m.unavailable))
                            }
                            Err(e) => {
                                eprintln!("failed: {e:#}");
                                (None, Some(format!("failed: {e:#}")))
                            }
                        }
                    }
                };
                results.rows.push(ScalingRow {
                    sweep,
                    point,
                    mode,
                    median_ms,
                    note,
                });
                std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)
                    .with_context(|| format!("writing {}", json_path.display()))?;
            }
        }
    }
    let markdown = results.markdown();
    let md_path = out.join("scaling.md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    match results.plot(out) {
        Ok(pngs) => eprintln!(
            "wrote {}, {} and {} charts",
            md_path.display(),
            json_path.display(),
            pngs.len()
        ),
        Err(e) => eprintln!("warning: no charts: {e}"),
    }
    println!("{markdown}");
    Ok(())
}

/// The run with the smallest median `ms` of several, or the first error.
fn fastest<T>(runs: impl Iterator<Item = Result<T>>, ms: impl Fn(&T) -> f64) -> Result<T> {
    let runs: Vec<T> = runs.collect::<Result<_>>()?;
    runs.into_iter()
        .min_by(|a, b| ms(a).total_cmp(&ms(b)))
        .context("no run")
}

fn unavailable(problem: &str, mode: Mode, device: DeviceKind, why: String) -> Measurement {
    Measurement {
        problem: problem.to_string(),
        mode,
        device,
        median_ms: None,
        iterations: 0,
        errors: BTreeMap::new(),
        unavailable: Some(why),
        replay_abandoned: None,
    }
}

fn measure_in_child(
    exe: &Path,
    workspace: &Workspace,
    problem: &str,
    mode: Mode,
    args: &TableArgs,
) -> Result<Measurement> {
    let mut cmd = measure_command(
        exe,
        workspace,
        problem,
        mode,
        args.device,
        (args.warmup, args.iters),
    );
    if args.full {
        cmd.arg("--full");
    }
    run_measurement(cmd)
}

/// The `measure` process for one problem in one mode: `warmup` untimed steps, then `iters`
/// timed ones.
fn measure_command(
    exe: &Path,
    workspace: &Workspace,
    problem: &str,
    mode: Mode,
    device: DeviceKind,
    (warmup, iters): (usize, usize),
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(workspace.root())
        .args(["measure", "--problem", problem, "--mode", mode.name()])
        .args(["--device", device.name()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--iters", &iters.to_string()]);
    cmd
}

/// Runs a `measure` process and reads the measurement it prints.
fn run_measurement(mut cmd: Command) -> Result<Measurement> {
    let output = cmd.output().context("starting the measurement process")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("(no message)");
        bail!("{last}");
    }
    let line = stdout
        .lines()
        .last()
        .context("the measurement process printed nothing")?;
    serde_json::from_str(line).context("reading the measurement")
}

/// The PyTorch modes compared against on a device: plain eager, plus CUDA graphs on a GPU; none
/// on wgpu, which PyTorch does not run on.
fn reference_modes(device: DeviceKind) -> &'static [&'static str] {
    match device {
        DeviceKind::Cpu => &["eager"],
        DeviceKind::Cuda => &["eager", "graph"],
        DeviceKind::Wgpu => &[],
    }
}

/// A PyTorch reference step set up once in its own process (`step.py --serve`), timed anew
/// on every request: its timings follow ours within seconds, where a process per timing would
/// first spend its setup (the interpreter, PyTorch's import, the problem's tensors) while the
/// machine's speed drifts.
struct ReferenceServer {
    child: Child,
    /// The reference's input (`None` once closed).
    requests: Option<ChildStdin>,
    replies: Lines<BufReader<ChildStdout>>,
    label: String,
}

impl ReferenceServer {
    /// Starts the reference for `problem` in `mode` and waits until it is set up (its error
    /// messages go to this process's standard error).
    fn start(
        python: &Path,
        workspace: &Workspace,
        problem: &str,
        mode: &str,
        args: &TableArgs,
    ) -> Result<Self> {
        let script = workspace.root().join("benches/reference/step.py");
        let mut child = Command::new(python)
            .arg(&script)
            .args(["--problem", problem, "--mode", mode, "--serve"])
            .args(["--device", args.device.name()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--steps", &args.iters.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", python.display()))?;
        let (Some(requests), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("no pipes to the reference process");
        };
        let mut server = Self {
            child,
            requests: Some(requests),
            replies: BufReader::new(stdout).lines(),
            label: format!("PyTorch {mode} on {problem}"),
        };
        let ready: serde_json::Value = server.reply("its set-up")?;
        if ready.get("ready") != Some(&serde_json::Value::Bool(true)) {
            bail!("{}: expected a ready line, got {ready}", server.label);
        }
        Ok(server)
    }

    /// The next JSON line of the reference, `what` naming it in errors.
    fn reply<T: serde::de::DeserializeOwned>(&mut self, what: &str) -> Result<T> {
        let line = self
            .replies
            .next()
            .with_context(|| format!("{} stopped during {what}", self.label))?
            .with_context(|| format!("reading {}", self.label))?;
        serde_json::from_str(&line).with_context(|| format!("reading {}: `{line}`", self.label))
    }

    /// One warm-up and timing in the running reference.
    fn time(&mut self) -> Result<ReferenceTiming> {
        let requests = self
            .requests
            .as_mut()
            .context("the reference's input is closed")?;
        writeln!(requests, "time")
            .and_then(|()| requests.flush())
            .with_context(|| format!("asking {} for a timing", self.label))?;
        self.reply("a timing")
    }
}

impl Drop for ReferenceServer {
    /// Closes the reference's input, which ends it, and waits for it.
    fn drop(&mut self) {
        drop(self.requests.take());
        let _ = self.child.wait();
    }
}

/// `bench.json` with what is measured so far.
fn write_results(results: &BenchResults, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join("bench.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(results)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    Ok(json_path)
}

fn write_outputs(results: &BenchResults, device: DeviceKind, out: &Path) -> Result<()> {
    let json_path = write_results(results, out)?;
    let markdown = results.markdown(device);
    let md_path = out.join("bench.md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    let bars: Vec<(String, f64)> = results
        .table1()
        .into_iter()
        .filter(|row| row.problems > 0)
        .map(|row| (row.mode.to_string(), row.mean))
        .collect();
    let png_path = out.join("table1.png");
    if let Err(e) = pinn::plot::bar_chart(
        &png_path,
        "average speed-up over eager",
        "speed-up",
        &bars,
        Some(1.0),
    ) {
        eprintln!("warning: no chart: {e}");
    }
    println!("{markdown}");
    eprintln!(
        "wrote {}, {} and {}",
        md_path.display(),
        json_path.display(),
        png_path.display()
    );
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stand-in for the Python interpreter: a shell script that ignores its arguments and
    /// speaks `step.py --serve`'s protocol (or stops during its setup).
    fn fake_python(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pinn-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("python");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn a_reference_server_is_timed_once_per_request_and_its_failures_are_errors() {
        let args = Cli::parse_from(["pinn-bench"]).table;
        let serving = fake_python(
            "serving",
            "echo '{\"ready\": true}'\nn=0\nwhile read line; do n=$((n+1)); \
             echo \"{\\\"problem\\\": \\\"p\\\", \\\"mode\\\": \\\"eager\\\", \\\"median_ms\\\": $n.5}\"; done",
        );
        let workspace = Workspace::from_current_dir(None).expect("tests run inside the workspace");
        let mut server =
            ReferenceServer::start(&serving, &workspace, "p", "eager", &args).expect("starts");
        let first = server.time().expect("a timing");
        let second = server.time().expect("another timing");
        assert_eq!((first.median_ms, second.median_ms), (1.5, 2.5));
        assert_eq!(first.problem, "p");
        drop(server);

        let failing = fake_python("failing", "echo 'no torch here' >&2\nexit 1");
        let e = ReferenceServer::start(&failing, &workspace, "p", "eager", &args)
            .err()
            .expect("a reference that stops during its setup");
        assert!(
            format!("{e:#}").contains("stopped during its set-up"),
            "{e:#}"
        );
        let missing = Path::new("/nonexistent/python");
        let e = ReferenceServer::start(missing, &workspace, "p", "eager", &args)
            .err()
            .expect("no such interpreter");
        assert!(format!("{e:#}").contains("/nonexistent/python"), "{e:#}");
    }
}
