//! Scattered, noisy measurements of the heat equation `u_t = k u_xx` on `[0, 1] × [0, 1]`,
//! `u = exp(-k π² t) sin(π x)` with `k = 0.1`: 200 sensors at seeded uniform positions, each
//! reading with Gaussian noise of standard deviation 0.01 (1 % of the peak), written as
//! `sensors.csv` (columns `x`, `t`, `u`) for `problems/sensors_inv.toml`.

use std::f64::consts::PI;
use std::sync::LazyLock;

use pinn_core::sampling::{rng_from_seed, standard_normal, uniform_box};

use crate::table::PointTable;

/// The diffusivity the readings were made with.
pub const DIFFUSIVITY: f64 = 0.1;
/// Number of sensors.
pub const SENSORS: usize = 200;
/// Standard deviation of each reading's noise.
pub const NOISE: f64 = 0.01;
/// Seed of the positions and the noise.
const SEED: u64 = 20_261_208;

/// The generator's settings, for the manifest.
pub static SETTINGS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::json!({
        "pde": "u_t = k u_xx on [0, 1] x [0, 1], u = exp(-k pi^2 t) sin(pi x)",
        "k": DIFFUSIVITY,
        "sensors": SENSORS,
        "positions": "uniform in [0, 1]^2, seeded",
        "noise": format!("Gaussian, absolute standard deviation {NOISE}"),
        "seed": SEED,
    })
});

/// The readings: `x`, `t`, `u` per sensor.
pub fn readings() -> PointTable {
    let mut rng = rng_from_seed(SEED);
    let positions = uniform_box(&mut rng, SENSORS, &[0.0, 0.0], &[1.0, 1.0]);
    let mut values = Vec::with_capacity(3 * SENSORS);
    for p in positions {
        let (x, t) = (p[0], p[1]);
        let u = (-DIFFUSIVITY * PI * PI * t).exp() * (PI * x).sin();
        values.extend([x, t, u + NOISE * standard_normal(&mut rng)]);
    }
    PointTable {
        columns: ["x", "t", "u"].map(String::from).to_vec(),
        values,
    }
}
