//! Problem assembly and training through the public API: a short analytic problem trained to
//! a stated accuracy, the shipped problem files, and bad input.

mod common;
use common::{options, problem_from_text, temp_dir, workspace};

use std::path::Path;

use pinn::{LoadOptions, Mode, Precision, Problem, ProblemError, Silent, TrainError, Trainer};
use pinn_core::data::{Array, write_npy};

/// `u_xx = -pi^2 sin(pi x)` on [-1, 1] with u(±1) = 0, solution `sin(pi x)`, tabulated for
/// evaluation into `dir`.
fn poisson_problem(dir: &Path, residual: &str, lr: f64) -> String {
    let x: Vec<f64> = (0..101).map(|i| -1.0 + 0.02 * i as f64).collect();
    let u: Vec<f64> = x.iter().map(|x| (std::f64::consts::PI * x).sin()).collect();
    write_npy(
        &dir.join("x.npy"),
        &Array {
            shape: vec![101],
            data: x,
        },
    )
    .expect("write");
    write_npy(
        &dir.join("u.npy"),
        &Array {
            shape: vec![101],
            data: u,
        },
    )
    .expect("write");
    format!(
        r#"
name = "poisson"
[domain]
inputs = ["x"]
lower = [-1.0]
upper = [1.0]
[dataset]
dir = "."
axes = {{ x = "x" }}
fields = {{ u = "u" }}
[network]
hidden = [16, 16]
outputs = ["u"]
[residuals]
f = "{residual}"
[points.ends]
grid = [{{ x = 0 }}, {{ x = -1 }}]
[points.inside]
lhs = 64
[[loss]]
points = "ends"
fit = ["u"]
[[loss]]
points = "inside"
residuals = ["f"]
[optimizer]
iterations = 1500
lr = {lr}
[evaluate]
fields = ["u"]
[run]
precision = "f64"
log_every = 500
"#
    )
}

#[test]
fn poisson_trains_to_one_percent() {
    let dir = temp_dir("poisson");
    let text = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2);
    let (_, problem) = problem_from_text(&dir, "poisson.toml", &text);
    assert_eq!(problem.component_names(), ["ends:u", "inside:f"]);
    let out = dir.join("run");
    let trained = Trainer::new(&problem)
        .run(1500, &out, &mut Silent)
        .expect("training runs");
    let err = trained.report.evaluation.relative_l2["u"];
    eprintln!(
        "poisson: relative L2 {err:e}, loss {:e}",
        trained.report.final_loss
    );
    assert!(err < 1e-2, "relative L2 error {err}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics");
    assert!(metrics.starts_with("iteration,loss,ends:u,inside:f,wall_s"));
    assert_eq!(metrics.lines().count(), 1 + 4); // header, 1, 500, 1000, 1500
    assert!(out.join("report.json").exists() && out.join("params.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn divergence_stops_with_iteration_and_term() {
    let dir = temp_dir("nan");
    // ln of a negative number: the residual is NaN from the first iteration.
    let text = poisson_problem(&dir, "ln(u - 100)", 1e-2);
    let (_, problem) = problem_from_text(&dir, "nan.toml", &text);
    let out = dir.join("run");
    let err = match Trainer::new(&problem).run(10, &out, &mut Silent) {
        Err(e) => e,
        Ok(_) => panic!("a NaN loss must stop training"),
    };
    assert!(
        matches!(err, TrainError::NonFinite { iteration: 1, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("iteration 1")
            && msg.contains("inside:f")
            && msg.contains("field `loss[1]`")
            && msg.contains("at the initial parameters"),
        "{msg}"
    );
    assert!(out.join("metrics.csv").exists() && out.join("params.json").exists());
    // With graph replay the kept parameters are a host copy: here the initial ones.
    let initial = Trainer::new(&problem).parameters().to_vec();
    match Trainer::new(&problem)
        .with_graph_replay()
        .run(10, &dir.join("graph"), &mut Silent)
    {
        Err(TrainError::NonFinite {
            iteration: 1,
            kept: 0,
            ..
        }) => {}
        Err(e) => panic!("expected divergence at iteration 1 keeping iteration 0, got {e}"),
        Ok(_) => panic!("a NaN loss must stop training"),
    }
    let saved = pinn::train::load_parameters(&problem, &dir.join("graph/params.json"))
        .expect("saved parameters");
    let flat = |ps: &[pinn_core::Tensor<2>]| -> Vec<f64> {
        ps.iter().flat_map(pinn_core::backend::to_vec).collect()
    };
    assert_eq!(flat(&saved), flat(&initial));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gets_named_errors() {
    let dir = temp_dir("bad");
    let good = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2);
    let load = |text: &str| -> String {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).expect("write");
        match Problem::from_file(&path, &options(&dir)) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    };
    let msg = load(&good.replace("u_xx + pi^2*sin(pi*x)", "u_xx + k*u"));
    assert!(
        msg.contains("bad.toml")
            && msg.contains("residuals.f")
            && msg.contains("unknown symbol `k`")
            && msg.contains("fields: u"),
        "{msg}"
    );
    let msg = load(&good.replace("u = \"u\"", "u = \"missing\""));
    assert!(msg.contains("missing.npy"), "{msg}");
    write_npy(
        &dir.join("wide.npy"),
        &Array {
            shape: vec![101, 2],
            data: vec![0.0; 202],
        },
    )
    .expect("write");
    let msg = load(&good.replace("u = \"u\"", "u = \"wide\""));
    assert!(
        msg.contains("wide.npy") && msg.contains("[101, 2]") && msg.contains("[101]"),
        "{msg}"
    );
    let msg = load(&good.replace("points = \"inside\"", "points = \"inner\""));
    assert!(
        msg.contains("loss[1].points") && msg.contains("no point set `inner`"),
        "{msg}"
    );
    let msg = load(&good.replace("fit = [\"u\"]", "fit = [\"u\"]\nresiduals = [\"g\"]"));
    assert!(msg.contains("no residual `g`"), "{msg}");
    let msg = load(&good.replace("[points.inside]", "[points.inside]\ngrid = []"));
    assert!(
        msg.contains("points.inside") && msg.contains("exactly one of"),
        "{msg}"
    );
    let msg = load(&good.replace("hidden = [16, 16]", "hidden = [16, 16"));
    assert!(msg.contains("bad.toml") && msg.contains("line"), "{msg}");
    let msg = load(&good.replace("inputs = [\"x\"]", "inputs = [\"x\", \"t\"]"));
    assert!(msg.contains("domain.lower"), "{msg}");
    let msg = load(&good.replace("[run]", "[run]\nmode = \"turbo\""));
    assert!(
        msg.contains("bad.toml") && msg.contains("turbo") && msg.contains("graph+fused"),
        "{msg}"
    );
    let msg = load(&good.replace("[run]", "[run]\nmode = \"graph\""));
    assert!(
        msg.contains("run.mode") && msg.contains("needs the CUDA backend"),
        "{msg}"
    );
    if !cfg!(feature = "cuda") {
        let msg = load(&good.replace("[run]", "[run]\ndevice = \"cuda\""));
        assert!(
            msg.contains("run.device") && msg.contains("--features cuda"),
            "{msg}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    let missing = Problem::from_file(Path::new("does/not/exist.toml"), &LoadOptions::default());
    assert!(matches!(missing, Err(ProblemError::Config(_))));
}

#[test]
fn shipped_problems_load_and_plan_their_derivatives() {
    let data = temp_dir("shipped");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace().join("problems")).expect("problems/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            // The cylinder wake takes a minute to simulate; `tests/navier_stokes.rs` loads
            // that problem on an exact Taylor-Green dataset instead.
            let text = std::fs::read_to_string(&path).expect("readable");
            if text.contains("generator = \"cylinder_wake\"") {
                names.push("ns_cont_inv".to_string());
                continue;
            }
            let problem = Problem::from_file(&path, &options(&data))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            names.push(problem.config().name.clone());
        }
    }
    assert!(names.contains(&"burgers_cont_fwd".to_string()));
    let problem = Problem::from_file(
        &workspace().join("problems/burgers_cont_fwd.toml"),
        &options(&data),
    )
    .expect("burgers");
    assert_eq!(problem.term_sizes(), [100, 10_456]);
    let inputs = &problem.config().domain.inputs;
    let derivs: Vec<String> = problem.term_derivatives()[1]
        .iter()
        .map(|p| p.display_with(inputs).to_string())
        .collect();
    assert_eq!(derivs, ["x", "t", "xx"]);
    assert!(problem.term_derivatives()[0].is_empty());
    // Boundary and collocation points differ: on the CPU each term has its own pass.
    assert_eq!(problem.forward_passes(), [vec![0], vec![1]]);
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn derived_outputs_and_unknowns_reach_the_residual() {
    // psi(x, y) network, u = psi_y, residual u_x - lambda * psi_xy = 0 exactly for lambda = 1:
    // the residual must vanish identically whatever the network when lambda = 1.
    let dir = temp_dir("derived");
    let text = r#"
name = "derived"
[domain]
inputs = ["x", "y"]
lower = [0.0, 0.0]
upper = [1.0, 2.0]
[network]
hidden = [5]
outputs = ["psi"]
[derived]
u = "psi_y"
[unknowns]
lambda = { init = 0.0, transform = "exp", truth = 1.0 }
[residuals]
f = "u_x - lambda*psi_xy"
g = "u_xx - psi_xxy"
[points.c]
lhs = 20
[[loss]]
points = "c"
residuals = ["f", "g"]
reduction = "sum"
[run]
precision = "f64"
"#;
    let (_, problem) = problem_from_text(&dir, "derived.toml", text);
    let inputs = &problem.config().domain.inputs;
    let derivs: Vec<String> = problem.term_derivatives()[0]
        .iter()
        .map(|p| p.display_with(inputs).to_string())
        .collect();
    assert_eq!(derivs, ["x", "y", "xx", "xy", "xxy"]);
    let params = problem.initial_parameters();
    let loss = problem.loss(&params);
    let comps: Vec<f64> = loss
        .components
        .iter()
        .map(pinn_core::backend::to_scalar)
        .collect();
    assert!(comps[0] < 1e-24 && comps[1] < 1e-24, "{comps:?}");
    let eval = problem.evaluate(&params);
    assert_eq!(eval.unknowns["lambda"].value, 1.0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn periodic_terms_vanish_for_periodic_fields_only() {
    // p = sin(pi x) cos(t) is 2-periodic in x on [-1, 1]; q = x^2 + t is not.
    let dir = temp_dir("periodic");
    let text = r#"
name = "periodic"
[domain]
inputs = ["x", "t"]
lower = [-1.0, 0.0]
upper = [1.0, 1.0]
[network]
hidden = [4]
outputs = ["u"]
[derived]
p = "sin(pi*x)*cos(t) + 0*u"
q = "x^2*x + t + 0*u"
[points.ends]
lhs = 16
[[loss]]
points = "ends"
periodic = { axis = "x", fields = ["p", "p_x", "p_xx", "q"] }
reduction = "sum"
[run]
precision = "f64"
"#;
    let (_, problem) = problem_from_text(&dir, "periodic.toml", text);
    let loss = problem.loss(&problem.initial_parameters());
    let parts: Vec<f64> = loss
        .components
        .iter()
        .map(pinn_core::backend::to_scalar)
        .collect();
    assert!(parts[..3].iter().all(|v| *v < 1e-28), "{parts:?}");
    // q(1, t) - q(-1, t) = 2 at each of the 16 points.
    assert!((parts[3] - 16.0 * 4.0).abs() < 1e-9, "{parts:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn lbfgs_after_adam_improves_poisson() {
    let dir = temp_dir("lbfgs");
    let text = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2).replace(
        "iterations = 1500",
        "iterations = 200\nlbfgs = { iterations = 300 }",
    );
    let (path, problem) = problem_from_text(&dir, "lbfgs.toml", &text);
    let trained = Trainer::new(&problem)
        .run(200, &dir.join("run"), &mut Silent)
        .expect("training runs");
    let err = trained.report.evaluation.relative_l2["u"];
    let lbfgs = trained.report.lbfgs.clone().expect("an L-BFGS phase");
    eprintln!("poisson + L-BFGS: relative L2 {err:e}, {lbfgs:?}");
    assert!(err < 1e-3, "relative L2 error {err}");
    // Adam alone needs 1,500 iterations to reach a loss of 2.3e-4 here.
    assert!(
        lbfgs.iterations > 10 && lbfgs.final_loss < 5e-5,
        "{lbfgs:?}"
    );
    let metrics = std::fs::read_to_string(dir.join("run/metrics.csv")).expect("metrics");
    let last: usize = metrics
        .lines()
        .last()
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.parse().ok())
        .expect("an iteration number");
    assert_eq!(last, 200 + lbfgs.iterations);
    // `--lbfgs N` (LoadOptions::lbfgs) sets the phase's length, adds it, or removes it (0).
    let with = |file: &Path, lbfgs: usize| {
        let options = LoadOptions {
            lbfgs: Some(lbfgs),
            ..options(&dir)
        };
        let problem = Problem::from_file(file, &options).expect("valid problem");
        problem
            .config()
            .optimizer
            .lbfgs
            .as_ref()
            .map(|l| l.iterations)
    };
    assert_eq!(with(&path, 40), Some(40));
    assert_eq!(with(&path, 0), None);
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2)).expect("write");
    assert_eq!(with(&plain, 25), Some(25));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn interrupted_and_resumed_equals_straight_through() {
    let dir = temp_dir("resume");
    // A step decay of the learning rate: the resumed run must continue its schedule.
    let text = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2)
        .replace("log_every = 500", "log_every = 5\ncheckpoint_every = 10")
        .replace(
            "iterations = 1500",
            "iterations = 1500\ndecay = { kind = \"exponential\", rate = 0.5, every = 7, staircase = true }",
        );
    let (_, problem) = problem_from_text(&dir, "resume.toml", &text);
    let straight = Trainer::new(&problem)
        .run(30, &dir.join("straight"), &mut Silent)
        .expect("straight run");
    // "Interrupted" after 20 iterations (its last checkpoint), then resumed to 30.
    Trainer::new(&problem)
        .run(20, &dir.join("split"), &mut Silent)
        .expect("first half");
    let resumed = Trainer::resume(&problem, &dir.join("split")).expect("checkpoint");
    assert_eq!(resumed.start_iteration(), 20);
    let finished = resumed
        .run(30, &dir.join("split"), &mut Silent)
        .expect("second half");
    let a: Vec<f64> = straight
        .params
        .iter()
        .flat_map(pinn_core::backend::to_vec)
        .collect();
    let b: Vec<f64> = finished
        .params
        .iter()
        .flat_map(pinn_core::backend::to_vec)
        .collect();
    assert_eq!(a, b, "resumed parameters differ");
    let read = |d: &str| std::fs::read_to_string(dir.join(d).join("params.json")).expect("params");
    assert_eq!(read("straight"), read("split"));
    // The metrics keep one row per logged iteration, without duplicates.
    let iterations: Vec<String> = std::fs::read_to_string(dir.join("split/metrics.csv"))
        .expect("metrics")
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect();
    let expected: Vec<String> = std::iter::once(1)
        .chain((5..=30).step_by(5))
        .map(|i| i.to_string())
        .collect();
    assert_eq!(iterations, expected);
    // Resuming a finished run trains nothing and reports the loss of the final parameters.
    let again = Trainer::resume(&problem, &dir.join("split"))
        .expect("checkpoint")
        .run(30, &dir.join("again"), &mut Silent)
        .expect("nothing left to train");
    let loss = again.report.final_loss;
    assert!(loss.is_finite() && loss > 0.0, "final loss {loss}");
    assert_eq!(
        again.report.evaluation.relative_l2,
        finished.report.evaluation.relative_l2
    );
    let missing = Trainer::resume(&problem, &dir.join("nowhere"));
    assert!(matches!(missing, Err(TrainError::Checkpoint { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// Asks to stop once `after` iterations have been reported (what Ctrl-C does in the CLI).
struct StopAfter {
    after: usize,
    seen: usize,
}

impl pinn::Progress for StopAfter {
    fn iteration(&mut self, _: usize, _: f64) {
        self.seen += 1;
    }
    fn should_stop(&self) -> bool {
        self.seen >= self.after
    }
}

#[test]
fn a_stop_request_checkpoints_and_resuming_finishes_the_run() {
    let dir = temp_dir("stop");
    let text = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2)
        .replace("log_every = 500", "log_every = 10\ncheckpoint_every = 100");
    let (_, problem) = problem_from_text(&dir, "stop.toml", &text);
    let out = dir.join("run");
    let stopped = Trainer::new(&problem).run(30, &out, &mut StopAfter { after: 7, seen: 0 });
    // Iterations 1-7 are reported; the request is seen after the 8th step, which is kept.
    match stopped {
        Err(TrainError::Interrupted { iteration, .. }) => assert_eq!(iteration, 8),
        Err(other) => panic!("expected an interruption, got {other}"),
        Ok(_) => panic!("expected an interruption, the run finished"),
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics");
    let logged: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(logged, ["1", "8"], "the stop logs its iteration");
    let resumed = Trainer::resume(&problem, &out).expect("checkpoint written on stop");
    assert_eq!(resumed.start_iteration(), 8);
    let finished = resumed.run(30, &out, &mut Silent).expect("rest of the run");
    let straight = Trainer::new(&problem)
        .run(30, &dir.join("straight"), &mut Silent)
        .expect("straight run");
    assert_eq!(
        finished.report.evaluation.relative_l2,
        straight.report.evaluation.relative_l2
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Graph replay where the device has no graphs (the CPU): the trainer warms up, tries the
/// capture, says why it is not used and goes on with plain steps along the same loss curve.
#[test]
fn graph_replay_without_device_graphs_falls_back_to_plain_steps() {
    let dir = temp_dir("graph");
    let (_, problem) = problem_from_text(
        &dir,
        "graph.toml",
        &poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2),
    );
    let mut plain = Trainer::new(&problem);
    let mut replayed = Trainer::new(&problem).with_graph_replay();
    assert_eq!(replayed.replay_status(), pinn::ReplayStatus::Pending);
    for step in 0..8 {
        let (a, _) = plain.step();
        let (b, _) = replayed.step();
        assert_eq!(
            a.into_scalar::<f64>(),
            b.into_scalar::<f64>(),
            "step {step}"
        );
    }
    match replayed.replay_status() {
        pinn::ReplayStatus::Abandoned(why) => {
            assert!(why.contains("no graph capture"), "{why}")
        }
        other => panic!("expected the CPU to refuse capture, got {other:?}"),
    }
    let report = Trainer::new(&problem)
        .with_graph_replay()
        .run(6, &dir.join("run"), &mut Silent)
        .expect("training runs")
        .report;
    let note = report.graph_replay.expect("a graph replay note");
    assert!(note.starts_with("not used"), "{note}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eager_and_fused_modes_train_along_the_same_loss_curve() {
    // Continuous time with unknowns (second order in x), discrete time with a multi-output
    // network and third derivatives (two IRK terms, as many stages as outputs) and a forward
    // discrete step (one output more than stages: the fused IRK term's padded gradient): ten
    // Adam steps in f64 must agree to rounding.
    let datasets = temp_dir("modes");
    for name in ["burgers_cont_inv", "kdv_disc_inv", "burgers_disc_fwd"] {
        let path = workspace().join("problems").join(format!("{name}.toml"));
        let curve = |mode: Mode, fuse_layers: Option<bool>| -> Vec<f64> {
            let problem = Problem::from_file(
                &path,
                &LoadOptions {
                    datasets: datasets.clone(),
                    precision: Some(Precision::F64),
                    mode: Some(mode),
                    fuse_layers,
                    ..Default::default()
                },
            )
            .expect("shipped problem loads");
            let mut trainer = Trainer::new(&problem);
            (0..10)
                .map(|_| trainer.step().0.into_scalar::<f64>())
                .collect()
        };
        let (eager, fused) = (curve(Mode::Eager, None), curve(Mode::Fused, None));
        // `--no-fuse-layers`: the fused mode with op-by-op layers; the CPU backend has no other
        // fusion, so it is the eager path exactly.
        assert_eq!(
            curve(Mode::Fused, Some(false)),
            eager,
            "{name}: fused mode without fused layers"
        );
        for (i, (e, f)) in eager.iter().zip(&fused).enumerate() {
            assert!(
                (e - f).abs() <= 1e-9 * e.abs(),
                "{name}: step {i}: eager loss {e:e}, fused {f:e}"
            );
        }
        assert!(eager[9] < eager[0], "{name}: the loss must fall: {eager:?}");
        // Different summation orders leave rounding-level differences: proof that the two
        // modes really ran different code.
        assert_ne!(eager, fused, "{name}: both modes ran the same path");
    }
    std::fs::remove_dir_all(&datasets).ok();
}

#[test]
fn mixed_precision_follows_the_f32_loss_curve_to_bf16_accuracy() {
    // bf16 keeps 8 significant bits: the loss of each of the first steps agrees with the f32
    // run to a few parts in a thousand, not to rounding, and training still makes progress.
    let datasets = temp_dir("amp");
    let path = workspace().join("problems/burgers_cont_inv.toml");
    let curve = |mode: Mode| -> Vec<f64> {
        let problem = Problem::from_file(
            &path,
            &LoadOptions {
                datasets: datasets.clone(),
                mode: Some(mode),
                ..Default::default()
            },
        )
        .expect("shipped problem loads");
        let mut trainer = Trainer::new(&problem);
        (0..30)
            .map(|_| trainer.step().0.into_scalar::<f64>())
            .collect()
    };
    let (eager, amp) = (curve(Mode::Eager), curve(Mode::Amp));
    let worst = eager
        .iter()
        .zip(&amp)
        .map(|(e, a)| ((e - a) / e).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "amp vs eager: worst relative loss difference {worst:.2e} over 30 steps; loss {:.3e} -> {:.3e}",
        amp[0], amp[29]
    );
    assert!(worst < 0.01, "eager {eager:?}\namp {amp:?}");
    assert!(worst > 1e-6, "amp ran in f32: {worst:e}");
    assert!(amp[29] < 0.8 * amp[0], "amp does not train: {amp:?}");
    std::fs::remove_dir_all(&datasets).ok();
}

#[test]
fn a_dataset_reaching_outside_the_domain_is_refused_unless_allowed() {
    let dir = temp_dir("outside");
    let text = poisson_problem(&dir, "u_xx + pi^2*sin(pi*x)", 1e-2)
        .replace("upper = [1.0]", "upper = [0.5]");
    std::fs::write(dir.join("outside.toml"), &text).expect("write");
    let Err(e) = Problem::from_file(&dir.join("outside.toml"), &options(&dir)) else {
        panic!("data on [-1, 1] for a domain [-1, 0.5] was accepted");
    };
    let msg = e.to_string();
    assert!(
        msg.contains("outside.toml")
            && msg.contains("dataset.axes.x")
            && msg.contains("outside_domain"),
        "{msg}"
    );
    let allowed = text.replace("dir = \".\"", "dir = \".\"\noutside_domain = true");
    problem_from_text(&dir, "allowed.toml", &allowed);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_derivative_too_high_through_a_derived_output_names_the_residual_and_the_output() {
    let dir = temp_dir("order5");
    let text = poisson_problem(&dir, "w_xxx", 1e-2)
        .replace("[residuals]", "[derived]\nw = \"u_xx\"\n[residuals]");
    std::fs::write(dir.join("order5.toml"), &text).expect("write");
    let Err(e) = Problem::from_file(&dir.join("order5.toml"), &options(&dir)) else {
        panic!("a fifth derivative of u was accepted");
    };
    let msg = e.to_string();
    for part in [
        "loss[1].residuals",
        "residual `f`",
        "derived output `w` = `u_xx`",
        "`w_xxx`",
        "order 5",
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
