use super::*;

const MINIMAL: &str = r#"
name = "t"
[domain]
inputs = ["x", "t"]
lower = [-1.0, 0.0]
upper = [1.0, 1.0]
[network]
hidden = [4]
outputs = ["u"]
[residuals]
f = "u_t"
[points.c]
lhs = 10
[[loss]]
points = "c"
residuals = ["f"]
"#;

#[test]
fn parses_a_minimal_problem() {
    let c = ProblemConfig::from_toml(MINIMAL, Path::new("p.toml")).expect("valid");
    assert_eq!(c.seed, 1234);
    assert_eq!(c.optimizer.lr, 1e-3);
    let sets = c.point_sets(Path::new("p.toml")).expect("valid");
    assert_eq!(sets[0].spec.lhs, Some(10));
}

#[test]
fn an_optimiser_schedule_sets_both_phases() {
    let with = |schedule: &str| {
        ProblemConfig::from_toml(
            &format!("{MINIMAL}\n[optimizer]\nschedule = {schedule}\n"),
            Path::new("p.toml"),
        )
    };
    let c = with("[{ adam = 300 }, { lbfgs = 500 }]").expect("valid");
    assert_eq!(c.optimizer.iterations, 300);
    assert_eq!(c.optimizer.lbfgs.as_ref().map(|l| l.iterations), Some(500));
    assert_eq!(c.optimizer.lbfgs.as_ref().map(|l| l.history), Some(50));
    let c = with("[{ lbfgs = 50000 }]").expect("L-BFGS only");
    assert_eq!(c.optimizer.iterations, 0);
    let msg = with("[{ lbfgs = 5 }, { adam = 3 }]")
        .expect_err("Adam after L-BFGS")
        .to_string();
    assert!(
        msg.contains("optimizer.schedule") && msg.contains("out of order"),
        "{msg}"
    );
    let msg = with("[{ sgd = 5 }]").expect_err("unknown").to_string();
    assert!(msg.contains("sgd"), "{msg}");
}

#[test]
fn learning_rate_decays_parse_and_follow_their_formulas() {
    let with = |decay: &str| {
        ProblemConfig::from_toml(
            &format!("{MINIMAL}\n[optimizer]\ndecay = {decay}\n"),
            Path::new("p.toml"),
        )
    };
    let decay = |text: &str| with(text).expect("valid").optimizer.decay.expect("a decay");
    let smooth = decay(r#"{ kind = "exponential", rate = 0.5, every = 100 }"#);
    assert!((smooth.factor(0) - 1.0).abs() < 1e-15);
    assert!((smooth.factor(50) - 0.5f64.sqrt()).abs() < 1e-15);
    assert!((smooth.factor(200) - 0.25).abs() < 1e-15);
    let steps = decay(r#"{ kind = "exponential", rate = 0.5, every = 100, staircase = true }"#);
    assert_eq!(
        (steps.factor(99), steps.factor(100), steps.factor(250)),
        (1.0, 0.5, 0.25)
    );
    let inverse = decay(r#"{ kind = "inverse_time", rate = 1.0, every = 10 }"#);
    assert!((inverse.factor(30) - 0.25).abs() < 1e-15);
    let cosine = decay(r#"{ kind = "cosine", over = 100, floor = 0.1 }"#);
    assert!((cosine.factor(0) - 1.0).abs() < 1e-15);
    assert!((cosine.factor(50) - 0.55).abs() < 1e-15);
    assert!((cosine.factor(100) - 0.1).abs() < 1e-15);
    assert!((cosine.factor(1000) - 0.1).abs() < 1e-15);
    for bad in [
        r#"{ kind = "exponential", rate = 1.5, every = 100 }"#,
        r#"{ kind = "exponential", rate = 0.5, every = 0 }"#,
        r#"{ kind = "inverse_time", rate = -1.0, every = 10 }"#,
        r#"{ kind = "cosine", over = 100, floor = 2.0 }"#,
    ] {
        let msg = with(bad).expect_err(bad).to_string();
        assert!(msg.contains("optimizer.decay"), "{bad}: {msg}");
    }
    let msg = with(r#"{ kind = "linear", over = 10 }"#)
        .expect_err("unknown kind")
        .to_string();
    assert!(msg.contains("linear") && msg.contains("p.toml"), "{msg}");
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let text = MINIMAL.replace("hidden = [4]", "hidden = [4,");
    let e = ProblemConfig::from_toml(&text, Path::new("bad.toml")).expect_err("malformed");
    let msg = e.to_string();
    assert!(msg.contains("bad.toml") && msg.contains("line"), "{msg}");
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let text = MINIMAL.replace("hidden = [4]", "hiden = [4]");
    let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
        .expect_err("typo")
        .to_string();
    assert!(msg.contains("hiden"), "{msg}");
    let text = MINIMAL.replace("lower = [-1.0, 0.0]", "lower = [-1.0]");
    let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
        .expect_err("short bounds")
        .to_string();
    assert!(
        msg.contains("domain.lower") && msg.contains("1 values for 2 inputs"),
        "{msg}"
    );
    let text = MINIMAL.replace("lhs = 10", "lhs = 10\nbogus = 1");
    let c = ProblemConfig::from_toml(&text, Path::new("p.toml")).expect("lazy point sets");
    let msg = c
        .point_sets(Path::new("p.toml"))
        .expect_err("bogus")
        .to_string();
    assert!(msg.contains("points.c") && msg.contains("bogus"), "{msg}");
}

#[test]
fn values_that_would_only_fail_during_training_are_refused_at_load() {
    let cases = [
        (
            "upper = [1.0, 1.0]",
            "upper = [1.0, inf]",
            "domain.upper",
            "`t` must be finite",
        ),
        (
            "lower = [-1.0, 0.0]",
            "lower = [nan, 0.0]",
            "domain.lower",
            "`x` must be finite",
        ),
        (
            "hidden = [4]",
            "hidden = []",
            "network.hidden",
            "at least one hidden layer",
        ),
        (
            "[residuals]",
            "[constants]\nk = nan\n[residuals]",
            "constants.k",
            "finite",
        ),
        (
            "[residuals]",
            "[optimizer]\nlr = 0.0\n[residuals]",
            "optimizer.lr",
            "(0, 1]",
        ),
        (
            "[residuals]",
            "[optimizer]\nlr = 1e300\n[residuals]",
            "optimizer.lr",
            "(0, 1]",
        ),
        (
            "[residuals]",
            "[optimizer]\nepsilon = nan\n[residuals]",
            "optimizer.epsilon",
            "finite and > 0",
        ),
        (
            "[residuals]",
            "[unknowns]\nk = { init = inf }\n[residuals]",
            "unknowns.k.init",
            "finite",
        ),
        (
            "hidden = [4]",
            "hidden = [4, 9223372036854775807]",
            "network.hidden",
            "between 1 and 65536",
        ),
        (
            "hidden = [4]",
            "hidden = [60000, 60000, 60000]",
            "network.hidden",
            "parameters (at most",
        ),
        (
            "hidden = [4]",
            "hidden = [4, \"wide\"]",
            "network.hidden[1]",
            "invalid type: string",
        ),
        (
            "[residuals]",
            "[optimizer]\nbeta2 = 1.0\n[residuals]",
            "optimizer.beta2",
            "[0, 1)",
        ),
    ];
    for (from, to, field, cause) in cases {
        let text = MINIMAL.replace(from, to);
        let msg = ProblemConfig::from_toml(&text, Path::new("p.toml"))
            .expect_err(to)
            .to_string();
        assert!(
            msg.contains("p.toml") && msg.contains(field) && msg.contains(cause),
            "{to}: {msg}"
        );
    }
}
