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
