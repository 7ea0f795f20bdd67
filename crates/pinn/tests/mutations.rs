//! Malformed problem files: every key of four valid problems (one continuous with every kind
//! of point set, loss term and optimiser setting, one discrete-time, one without data files,
//! one on a region of [geometry]) is
//! dropped, retyped or set to a hostile value (NaN, infinities, zero, negative and huge numbers,
//! empty strings, unknown names), one at a time, and then in seeded random combinations. Each
//! variant must either be refused with an error that names the changed key, or load and train
//! a few iterations to a finite loss. Nothing may panic.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::{options, temp_dir};
use pinn::core::data::{Array, write_npy};
use pinn::{LoadOptions, Problem, Silent, Trainer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use toml::{Table, Value};

/// A continuous-time heat problem with data, constants, an unknown, a derived output, every
/// kind of point set and loss term, a learning-rate decay and an L-BFGS phase.
const CONTINUOUS: &str = r#"
name = "mutant"
description = "heat equation for the mutation test"
seed = 7
[domain]
inputs = ["x", "t"]
lower = [0.0, 0.0]
upper = [1.0, 0.5]
[dataset]
dir = "."
axes = { x = "x", t = "t" }
fields = { u = "u" }
[network]
hidden = [6, 6]
outputs = ["u"]
activation = "tanh"
init = "glorot_uniform"
[constants]
k = 0.1
[unknowns]
lambda = { init = -1.0, transform = "exp", truth = 0.1 }
[derived]
flux = "k*u_x"
[residuals]
f = "u_t - lambda*u_xx"
g = "u_t - flux_x"
[points.data]
grid = [{ t = 0 }, { x = 0 }, { x = -1 }]
[points.inside]
lhs = 24
[points.copy]
from = "inside"
[points.both]
union = ["data", "inside"]
[[loss]]
points = "data"
fit = ["u"]
weight = 2.0
name = "fit"
[[loss]]
points = "inside"
residuals = ["f", "g"]
reduction = "sum"
[[loss]]
points = "copy"
periodic = { axis = "x", fields = ["u", "u_x"] }
weight = 0.5
[[loss]]
points = "both"
fit = ["flux"]
fit_value = 0.0
weight = 0.1
[optimizer]
iterations = 5
lr = 1e-3
beta1 = 0.9
beta2 = 0.999
epsilon = 1e-8
decay = { kind = "exponential", rate = 0.9, every = 2, staircase = true }
lbfgs = { iterations = 2 }
[evaluate]
fields = ["u"]
at = { t = 1 }
[run]
precision = "f64"
log_every = 1
checkpoint_every = 2
mode = "fused"
"#;

/// A discrete-time inverse problem (two IRK terms between snapshots 0 and 2).
const DISCRETE: &str = r#"
name = "mutant_irk"
[domain]
inputs = ["x"]
lower = [0.0]
upper = [1.0]
[dataset]
dir = "."
axes = { x = "x", t = "t" }
fields = { u = "u" }
[time]
scheme = "irk"
t0 = 0
t1 = 2
stages = 3
mode = "inverse"
[network]
hidden = [6]
outputs = ["u"]
[unknowns]
k = { init = 0.0, truth = 0.1 }
[residuals]
F = "k*u_xx"
[points.first]
grid = [{ t = 0 }]
sample = 7
[points.last]
grid = [{ t = 2 }]
[[loss]]
name = "u0"
points = "first"
fit = ["u"]
irk = "t0"
rhs = "F"
reduction = "sum"
[[loss]]
name = "u1"
points = "last"
fit = ["u"]
irk = "t1"
rhs = "F"
[optimizer]
iterations = 5
decay = { kind = "cosine", over = 4, floor = 0.1 }
[evaluate]
fields = []
[run]
precision = "f32"
"#;

/// A problem without data files: points on faces, targets and exact solutions as
/// expressions, loss balancing.
const NO_DATA: &str = r#"
name = "mutant_nodata"
[domain]
inputs = ["x", "y"]
lower = [0.0, 0.0]
upper = [1.0, 1.0]
[network]
hidden = [6]
outputs = ["u"]
[constants]
k = 2.0
[residuals]
f = "u_xx + u_yy + k*pi^2*sin(pi*x)*sin(pi*y)"
[points.edge]
on = { x = [0.0, 1.0], y = 0.0 }
grid = [4, 5]
[points.top]
on = { y = 1.0 }
uniform = 6
[points.inside]
lhs = 16
[[loss]]
points = "edge"
fit = { u = 0.0, u_x = "pi*cos(pi*x)*sin(pi*y)" }
[[loss]]
points = "top"
fit = { u = "0*x" }
[[loss]]
points = "inside"
residuals = ["f"]
[loss_balance]
kind = "grad_norm"
every = 2
alpha = 0.5
[optimizer]
iterations = 5
[evaluate]
exact = { u = "sin(pi*x)*sin(pi*y)" }
grid = [5, 4]
[run]
precision = "f64"
"#;

/// A problem on a region ([geometry]): shapes, a region expression, points inside and on
/// named parts of the boundary, a normal derivative, scattered sensors from a CSV file (also
/// the evaluation's reference), a line where an input is held and a given point.
const GEOMETRY: &str = r#"
name = "mutant_geometry"
[domain]
inputs = ["x", "y"]
lower = [-2.0, -2.0]
upper = [2.0, 2.0]
[geometry]
region = "outer - inner - notch"
inputs = ["x", "y"]
[geometry.shapes]
outer = { disk = { center = [0.0, 0.0], radius = 2.0 } }
inner = { ellipse = { center = [0.0, 0.0], semi_axes = [1.0, 0.5] } }
notch = { polygon = { vertices = [[1.5, -0.2], [2.0, -0.2], [2.0, 0.2]] } }
[network]
hidden = [6]
outputs = ["u"]
[residuals]
f = "u_xx + u_yy"
[points.inner]
on = "inner"
lhs = 8
[points.walls]
on = ["outer", "notch"]
uniform = 8
[points.inside]
lhs = 16
[points.sensors]
file = "sensors.csv"
noise_sigma = 0.001
outside = false
[points.line]
at = { x = 0.0 }
lhs = 4
[points.pin]
coords = [[1.5, 0.0]]
[[loss]]
points = "sensors"
fit = ["u"]
[[loss]]
points = "line"
residuals = ["f"]
[[loss]]
points = "pin"
fit = { u = 0.0 }
[[loss]]
points = "inner"
fit = { u_n = "n_x" }
[[loss]]
points = "walls"
fit = { u = 0.0 }
[[loss]]
points = "inside"
residuals = ["f"]
[optimizer]
iterations = 5
[evaluate]
points = "sensors.csv"
[run]
precision = "f64"
"#;

/// Writes the heat equation's exact solution exp(−k π² t) sin(π x) on an 11 × 3 grid.
fn write_data(dir: &Path) {
    let x: Vec<f64> = (0..11).map(|i| i as f64 / 10.0).collect();
    let t = vec![0.0, 0.25, 0.5];
    let u: Vec<f64> = x
        .iter()
        .flat_map(|x| {
            t.iter().map(move |t| {
                use std::f64::consts::PI;
                (-0.1 * PI * PI * t).exp() * (PI * x).sin()
            })
        })
        .collect();
    for (name, shape, data) in [("x", vec![11], x), ("t", vec![3], t), ("u", vec![11, 3], u)] {
        write_npy(&dir.join(format!("{name}.npy")), &Array { shape, data }).expect("write");
    }
    // Scattered sensors of the geometry problem, inside its region (1 < r < 2).
    let rows: Vec<String> = (0..6)
        .map(|i| {
            let a = i as f64;
            format!("{},{},{}", 1.5 * a.cos(), 1.5 * a.sin(), 0.1 * a)
        })
        .collect();
    std::fs::write(
        dir.join("sensors.csv"),
        format!("x,y,u\n{}\n", rows.join("\n")),
    )
    .expect("write");
}

/// One step of a path into a TOML document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// The dotted spelling of a path (`loss[1].weight`) and the name of its last key.
fn spell(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every path to a value in the document, tables and arrays included.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Table(t) => {
            for (k, v) in t {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// What is done to the value at a path.
#[derive(Clone, Debug)]
enum Mutation {
    Drop,
    Set(Value),
}

/// The hostile values every key is set to in turn.
fn hostile_values() -> Vec<Value> {
    let mut table = Table::new();
    table.insert("no_such_key".into(), Value::Integer(1));
    vec![
        Value::String(String::new()),
        Value::String("no_such_name".into()),
        Value::Boolean(true),
        Value::Table(table),
        Value::Array(vec![]),
        Value::Integer(0),
        Value::Integer(-1),
        Value::Integer(i64::MAX),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(0.0),
        Value::Float(-1.0),
        Value::Float(1e300),
        Value::Float(1e-300),
    ]
}

/// Applies `mutation` at `path` (which exists in `doc`).
fn mutate(doc: &mut Value, path: &[Step], mutation: &Mutation) {
    let (last, parent) = path.split_last().expect("a non-empty path");
    let mut node = doc;
    for step in parent {
        node = match (step, node) {
            (Step::Key(k), Value::Table(t)) => t.get_mut(k).expect("path exists"),
            (Step::Index(i), Value::Array(a)) => &mut a[*i],
            _ => unreachable!("paths follow the document"),
        };
    }
    match (last, node, mutation) {
        (Step::Key(k), Value::Table(t), Mutation::Drop) => {
            t.remove(k);
        }
        (Step::Key(k), Value::Table(t), Mutation::Set(v)) => {
            t.insert(k.clone(), v.clone());
        }
        (Step::Index(i), Value::Array(a), Mutation::Drop) => {
            a.remove(*i);
        }
        (Step::Index(i), Value::Array(a), Mutation::Set(v)) => a[*i] = v.clone(),
        _ => unreachable!("paths follow the document"),
    }
}

/// How one variant ended, if not acceptably.
fn check_variant(dir: &Path, text: &str, changed: &[String]) -> Result<(), String> {
    let file = dir.join("variant.toml");
    std::fs::write(&file, text).expect("write the variant");
    let outcome = catch_unwind(AssertUnwindSafe(|| run_variant(dir, &file)));
    match outcome {
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {what}"))
        }
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => {
            // The error must name a field of the file; one about the type or the name of a
            // key must name the changed key itself, one of its ancestors or a key inside it.
            let Some(named) = named_field(&message) else {
                return Err(format!("names no field: {message}"));
            };
            let about_the_key = [
                "invalid type",
                "invalid value",
                "unknown field",
                "unknown variant",
                "missing field",
            ]
            .iter()
            .any(|k| message.contains(k));
            let related = |path: &String| {
                let nested = |outer: &str, inner: &str| {
                    inner == outer
                        || inner.starts_with(&format!("{outer}."))
                        || inner.starts_with(&format!("{outer}["))
                };
                nested(&named, path) || nested(path, &named)
            };
            if about_the_key && !changed.iter().any(related) {
                return Err(format!("names `{named}`, not {changed:?}: {message}"));
            }
            Ok(())
        }
    }
}

/// The field an error names (`field `loss[1].weight``, or the loss entry of a diverged term).
fn named_field(message: &str) -> Option<String> {
    let start = ["`: field `", "(field `"]
        .iter()
        .find_map(|p| message.find(p).map(|i| i + p.len()))?;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// Loads a variant and, if it is valid, trains it for three iterations (L-BFGS phase cut to
/// two). Errors come back as their messages.
fn run_variant(dir: &Path, file: &Path) -> Result<(), String> {
    let problem = Problem::from_file(file, &options(dir)).map_err(|e| e.to_string())?;
    let problem = if problem
        .config()
        .optimizer
        .lbfgs
        .as_ref()
        .is_some_and(|l| l.iterations > 2)
    {
        let cut = LoadOptions {
            lbfgs: Some(2),
            ..options(dir)
        };
        Problem::from_file(file, &cut).map_err(|e| e.to_string())?
    } else {
        problem
    };
    let out = dir.join("run");
    std::fs::remove_dir_all(&out).ok();
    let trained = Trainer::new(&problem)
        .run(3, &out, &mut Silent)
        .map_err(|e| e.to_string())?;
    let loss = trained.report.final_loss;
    if loss.is_finite() {
        Ok(())
    } else {
        Err(format!("trained to a non-finite loss {loss}"))
    }
}

/// Runs every single mutation of `base`, then `random` seeded combinations of two or three.
fn mutations_of(tag: &str, base: &str, random: usize) -> Vec<String> {
    let dir: PathBuf = temp_dir(tag);
    write_data(&dir);
    // The base itself is valid and trains.
    if let Err(e) = check_variant(&dir, base, &[]) {
        panic!("{tag}: the unmutated problem fails: {e}");
    }
    let doc: Value = Value::Table(base.parse::<Table>().expect("valid TOML"));
    let mut all = Vec::new();
    paths(&doc, &mut Vec::new(), &mut all);
    let mut mutations = vec![Mutation::Drop];
    mutations.extend(hostile_values().into_iter().map(Mutation::Set));
    let mut failures = Vec::new();
    let mut tried = 0;
    let mut try_variant = |changes: &[(&Vec<Step>, &Mutation)]| {
        let mut variant = doc.clone();
        for (path, m) in changes {
            mutate(&mut variant, path, m);
        }
        let Value::Table(table) = variant else {
            unreachable!()
        };
        let text = toml::to_string(&table).expect("serialisable");
        let changed: Vec<String> = changes.iter().map(|(p, _)| spell(p)).collect();
        tried += 1;
        if let Err(e) = check_variant(&dir, &text, &changed) {
            let what: Vec<String> = changes
                .iter()
                .map(|(p, m)| format!("{} {m:?}", spell(p)))
                .collect();
            failures.push(format!("{tag}: {}: {e}", what.join(" + ")));
        }
    };
    for path in &all {
        for m in &mutations {
            try_variant(&[(path, m)]);
        }
    }
    // Seeded combinations: later mutations may land under an earlier one's changes, so only
    // top-level-distinct paths are combined.
    let mut rng = StdRng::seed_from_u64(20261204);
    for _ in 0..random {
        let n = rng.random_range(2..=3);
        let mut picks: Vec<(&Vec<Step>, &Mutation)> = Vec::new();
        while picks.len() < n {
            let p = &all[rng.random_range(0..all.len())];
            let clash = picks.iter().any(|(q, _)| spell(&q[..1]) == spell(&p[..1]));
            if !clash {
                picks.push((p, &mutations[rng.random_range(0..mutations.len())]));
            }
        }
        try_variant(&picks);
    }
    eprintln!("{tag}: {tried} variants, {} unacceptable", failures.len());
    std::fs::remove_dir_all(&dir).ok();
    failures
}

#[test]
fn every_mutated_key_is_refused_by_name_or_trains_finitely() {
    // Silence the default hook: a panic is reported as a failure with its message.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = mutations_of("mutate-continuous", CONTINUOUS, 200);
    failures.extend(mutations_of("mutate-discrete", DISCRETE, 100));
    failures.extend(mutations_of("mutate-nodata", NO_DATA, 100));
    failures.extend(mutations_of("mutate-geometry", GEOMETRY, 100));
    let _ = std::panic::take_hook();
    assert!(
        failures.is_empty(),
        "{} unacceptable variants:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
