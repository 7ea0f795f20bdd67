//! Problems defined in Rust: closures agree with expressions, and mistakes are reported like
//! problem-file errors.

use pinn::core::backend::to_scalar;
use pinn::{ProblemBuilder, ResidualFn};

fn burgers_like(builder: ProblemBuilder) -> ProblemBuilder {
    builder
        .domain(&["x", "t"], &[-1.0, 0.0], &[1.0, 1.0])
        .network(&[8, 8], &["u"])
        .constant("nu", 0.05)
        .unknown("lambda", 0.3, Some(1.0))
        .points_lhs("inside", 64)
        .f64()
}

#[test]
fn a_closure_residual_gives_the_expression_residual_loss() {
    let expression = burgers_like(ProblemBuilder::new("expr"))
        .residual("f", "u_t + lambda*u*u_x - nu*u_xx")
        .residual_loss("inside", &["f"])
        .build()
        .expect("valid");
    let closure = burgers_like(ProblemBuilder::new("closure"))
        .residual_fn(
            "f",
            ResidualFn::new(&["u", "u_t", "u_x", "u_xx", "lambda", "nu"], |f| {
                f.get("u_t")
                    .add(f.get("lambda").mul(f.get("u")).mul(f.get("u_x")))
                    .sub(f.get("nu").mul(f.get("u_xx")))
            }),
        )
        .residual_loss("inside", &["f"])
        .build()
        .expect("valid");
    let a = to_scalar(&expression.loss(&expression.initial_parameters()).total);
    let b = to_scalar(&closure.loss(&closure.initial_parameters()).total);
    assert!(a > 1e-6, "a non-trivial loss: {a}");
    assert!((a - b).abs() <= 1e-12 * a, "expression {a} vs closure {b}");
}

#[test]
fn builder_mistakes_name_the_field() {
    let err = burgers_like(ProblemBuilder::new("typo"))
        .residual("f", "u_t + lambda*u*u_x - nu*u_yy")
        .residual_loss("inside", &["f"])
        .build()
        .expect_err("u_yy does not exist");
    let message = err.to_string();
    assert!(message.contains("residuals.f"), "{message}");
    assert!(message.contains("u_yy"), "{message}");

    let err = burgers_like(ProblemBuilder::new("closure-typo"))
        .residual_fn("f", ResidualFn::new(&["u_z"], |f| f.get("u_z")))
        .residual_loss("inside", &["f"])
        .build()
        .expect_err("u_z does not exist");
    assert!(err.to_string().contains("u_z"), "{err}");

    let err = burgers_like(ProblemBuilder::new("no-points"))
        .residual("f", "u_t")
        .residual_loss("nowhere", &["f"])
        .build()
        .expect_err("no such point set");
    assert!(err.to_string().contains("nowhere"), "{err}");

    // Two terms whose components share a name would share a metrics column.
    let err = burgers_like(ProblemBuilder::new("twice"))
        .residual("f", "u_t")
        .residual_loss("inside", &["f"])
        .residual_loss("inside", &["f"])
        .build()
        .expect_err("the same component twice");
    let message = err.to_string();
    assert!(message.contains("loss[1].name"), "{message}");
    assert!(message.contains("loss[0]"), "{message}");
}

#[test]
fn a_run_is_plotted_as_png_files() {
    use pinn::core::data::GridData;
    use pinn::{Silent, Trainer};
    let x: Vec<f64> = (0..21).map(|i| i as f64 / 10.0 - 1.0).collect();
    let t: Vec<f64> = (0..11).map(|i| i as f64 / 10.0).collect();
    let u = x
        .iter()
        .flat_map(|&x| t.iter().map(move |&t| x * x - t))
        .collect();
    let data = GridData {
        axis_names: vec!["x".into(), "t".into()],
        axes: vec![x, t],
        fields: [("u".to_string(), u)].into(),
    };
    let problem = ProblemBuilder::new("plotted")
        .domain(&["x", "t"], &[-1.0, 0.0], &[1.0, 1.0])
        .network(&[6], &["u"])
        .unknown("c", 0.5, Some(1.0))
        .residual("f", "u_t + c*1")
        .data(data)
        .points_grid("all", &[])
        .points_lhs("inside", 50)
        .fit("all", &["u"])
        .residual_loss("inside", &["f"])
        .evaluate(&["u"])
        .build()
        .expect("valid");
    let dir = std::env::temp_dir().join(format!("pinn-plot-{}", std::process::id()));
    Trainer::new(&problem)
        .run(30, &dir, &mut Silent)
        .expect("training runs");
    // The labels' font is embedded: this draws on any machine, with or without fonts.
    let files = pinn::plot::plot_run(&dir, &problem).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, ["loss.png", "unknowns.png", "field_u.png"]);
    for f in &files {
        let bytes = std::fs::read(f).expect("written");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", f.display());
        assert!(bytes.len() > 2000, "{} has content", f.display());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn learning_rate_decays_reach_the_optimiser_settings() {
    use pinn::config::LrDecay;
    let with = |decay: LrDecay| {
        burgers_like(ProblemBuilder::new("decay"))
            .residual("f", "u_t")
            .residual_loss("inside", &["f"])
            .lr_decay(decay)
            .build()
    };
    for decay in [
        LrDecay::Exponential {
            rate: 0.9,
            every: 1000,
            staircase: true,
        },
        LrDecay::InverseTime {
            rate: 0.5,
            every: 100,
        },
        LrDecay::Cosine {
            over: 5000,
            floor: 0.01,
        },
    ] {
        let problem = with(decay).expect("valid");
        assert_eq!(problem.config().optimizer.decay, Some(decay));
    }
    let err = with(LrDecay::Cosine {
        over: 0,
        floor: 0.0,
    })
    .expect_err("a cosine over no iterations");
    assert!(err.to_string().contains("optimizer.decay"), "{err}");
}

#[test]
fn predicted_derivatives_match_finite_differences_of_predicted_values() {
    let problem = burgers_like(ProblemBuilder::new("predict"))
        .residual("f", "u_t + lambda*u*u_x - nu*u_xx")
        .residual_loss("inside", &["f"])
        .build()
        .expect("valid");
    let params = problem.initial_parameters();
    let (x, t, h) = (0.3, 0.4, 1e-4);
    let at = |points: &[f64], quantity: &str| {
        problem
            .predict(&params, points, &[quantity])
            .unwrap_or_else(|e| panic!("{e}"))
            .remove(0)
    };
    let u = at(&[x - h, t, x, t, x + h, t, x, t - h, x, t + h], "u");
    let fd_x = (u[2] - u[0]) / (2.0 * h);
    let fd_xx = (u[2] - 2.0 * u[1] + u[0]) / (h * h);
    let fd_t = (u[4] - u[3]) / (2.0 * h);
    let point = [x, t];
    for (quantity, fd, tolerance) in [
        ("u_x", fd_x, 1e-7),
        ("u_xx", fd_xx, 1e-4),
        ("u_t", fd_t, 1e-7),
    ] {
        let jet = at(&point, quantity)[0];
        assert!(
            (jet - fd).abs() <= tolerance * (1.0 + fd.abs()),
            "{quantity}: jet {jet} vs finite differences {fd}"
        );
    }
    // An expression of fields, derivatives, constants and unknowns, as in [residuals].
    let residual = at(&point, "u_t + lambda*u*u_x - nu*u_xx")[0];
    let by_hand =
        at(&point, "u_t")[0] + 0.3 * u[1] * at(&point, "u_x")[0] - 0.05 * at(&point, "u_xx")[0];
    assert!(
        (residual - by_hand).abs() <= 1e-12,
        "{residual} vs {by_hand}"
    );
    // Bad requests are named, not panics.
    let named = |points: &[f64], quantity: &str| match problem.predict(&params, points, &[quantity])
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("`{quantity}` at {points:?} was accepted"),
    };
    assert!(named(&point, "w").contains("cannot predict `w`"));
    assert!(named(&point, "u_xxxxxx").contains("cannot predict"));
    assert!(named(&[0.1, 0.2, 0.3], "u").contains("3 coordinates"));
    assert!(named(&[0.1, f64::NAN], "u").contains("non-finite `t`"));
}

#[test]
fn the_initialisation_is_chosen_by_name_and_changes_the_draw() {
    use pinn::config::Init;
    let params = |init: Init| {
        let problem = burgers_like(ProblemBuilder::new("init"))
            .init(init)
            .residual("f", "u_t - nu*u_xx")
            .residual_loss("inside", &["f"])
            .build()
            .expect("valid");
        assert_eq!(problem.config().network.init, init);
        pinn::core::backend::to_vec(&problem.initial_parameters()[1])
    };
    // Glorot normal keeps zero biases; Glorot uniform draws them.
    assert!(params(Init::GlorotNormal).iter().all(|&b| b == 0.0));
    assert!(params(Init::GlorotUniform).iter().any(|&b| b != 0.0));
}
