//! The examples run as tests, so that CI runs them.

#[path = "../examples/heat.rs"]
mod heat;

#[test]
fn heat_equation_defined_in_rust_trains_to_one_percent() {
    let out = std::env::temp_dir().join(format!("pinn-example-heat-{}", std::process::id()));
    let error = heat::run(2000, &out).expect("the example runs");
    eprintln!("heat: relative L2 {error:e}");
    assert!(error < 1e-2, "relative L2 error {error}");
    std::fs::remove_dir_all(&out).ok();
}
