//! Our generated reference data against the original datasets in `../shared/datasets`
//! (skipped, with a message, where that folder is absent).

use std::path::PathBuf;

use pinn::reference::burgers::{BurgersSpec, solve};
use pinn_core::data::read_npy;

fn shared(dataset: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets")
        .join(dataset);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("skipped: reference data not found at {}", dir.display());
        None
    }
}

#[test]
fn burgers_cole_hopf_matches_the_original_solution() {
    let Some(dir) = shared("burgers_shock") else {
        return;
    };
    let ours = solve(&BurgersSpec::default());
    let x = read_npy(&dir.join("x.npy")).expect("x");
    let t = read_npy(&dir.join("t.npy")).expect("t");
    let u = read_npy(&dir.join("usol.npy")).expect("usol");
    assert_eq!(u.shape, vec![256, 100]);
    let max_grid = ours
        .x
        .iter()
        .zip(&x.data)
        .chain(ours.t.iter().zip(&t.data))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_grid < 1e-15, "grids differ by {max_grid:e}");
    let max = ours
        .u
        .iter()
        .zip(&u.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("Burgers: max |ours - original| = {max:e}");
    assert!(max < 1e-6, "max abs difference {max:e}");
}

fn relative_l2_field(ours: &[f64], theirs: &[f64]) -> f64 {
    let num: f64 = ours.iter().zip(theirs).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = theirs.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}

fn compare_spectral(
    name: &str,
    dataset: &str,
    fields: &[&str],
    spec: pinn::reference::spectral::SpectralSpec,
    init: impl Fn(f64) -> rustfft::num_complex::Complex64,
) {
    let Some(dir) = shared(dataset) else {
        return;
    };
    let start = std::time::Instant::now();
    let ours = pinn::reference::spectral::solve(&spec, init);
    let secs = start.elapsed().as_secs_f64();
    let x = read_npy(&dir.join("x.npy")).expect("x");
    let t = read_npy(&dir.join("tt.npy")).expect("tt");
    let grid = ours
        .x
        .iter()
        .zip(&x.data)
        .chain(ours.t.iter().zip(&t.data))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(grid < 1e-12, "{name}: grids differ by {grid:e}");
    let mut num = 0.0;
    let mut den = 0.0;
    for (k, f) in fields.iter().enumerate() {
        let theirs = read_npy(&dir.join(format!("{f}.npy"))).expect("field");
        let o = if k == 0 { &ours.re } else { &ours.im };
        num += o
            .iter()
            .zip(&theirs.data)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>();
        den += theirs.data.iter().map(|b| b * b).sum::<f64>();
        eprintln!(
            "{name} {f}: relative L2 {:e}",
            relative_l2_field(o, &theirs.data)
        );
    }
    let rel = (num / den).sqrt();
    eprintln!("{name}: relative L2 over the space-time field {rel:e} ({secs:.2} s)");
    assert!(rel < 1e-4, "{name}: {rel:e}");
}

#[test]
fn kdv_matches_the_original_solution() {
    use rustfft::num_complex::Complex64 as C;
    compare_spectral(
        "KdV",
        "KdV",
        &["uu"],
        pinn::reference::spectral::kdv_spec(),
        |x| C::new((std::f64::consts::PI * x).cos(), 0.0),
    );
}

#[test]
fn allen_cahn_matches_the_original_solution() {
    use rustfft::num_complex::Complex64 as C;
    compare_spectral(
        "Allen-Cahn",
        "AC",
        &["uu"],
        pinn::reference::spectral::allen_cahn_spec(),
        |x| C::new(x * x * (std::f64::consts::PI * x).cos(), 0.0),
    );
}

#[test]
fn schrodinger_matches_the_original_solution() {
    use rustfft::num_complex::Complex64 as C;
    compare_spectral(
        "NLS",
        "NLS",
        &["uu_real", "uu_imag"],
        pinn::reference::spectral::schrodinger_spec(),
        |x| C::new(2.0 / x.cosh(), 0.0),
    );
}
