use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use pinn_core::data::{Array, DataError, write_npy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::burgers::{BurgersSpec, solve};
use super::cylinder::{self, WakeSpec};
use super::spectral::{self, SpectralSolution, SpectralSpec};

/// Names of the built-in generators.
pub const GENERATORS: &[&str] = &[
    "burgers",
    "kdv",
    "allen_cahn",
    "schrodinger",
    "cylinder_wake",
    "sensors",
];

/// Errors of the dataset cache.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No generator of that name.
    #[error("no built-in dataset generator `{0}`; available: {list}", list = GENERATORS.join(", "))]
    UnknownGenerator(String),
    /// Writing failed.
    #[error("cannot write dataset `{name}` into `{path}`: {source}")]
    Io {
        /// Dataset name.
        name: String,
        /// Folder.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Writing an array failed.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// One file of a manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Array shape.
    pub shape: Vec<usize>,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The manifest written next to a generated dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Generator name.
    pub generator: String,
    /// Generator version; a bump regenerates caches.
    pub version: u32,
    /// Grid, PDE and solver settings.
    pub settings: serde_json::Value,
    /// Wall time of the generation in seconds.
    pub seconds: f64,
    /// Files and their checksums.
    pub files: BTreeMap<String, FileEntry>,
}

const VERSION: u32 = 2;

/// The `datasets/` folder: generated reference data, verified by manifest before use.
#[derive(Clone, Debug)]
pub struct DatasetStore {
    root: PathBuf,
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl DatasetStore {
    /// A store rooted at `root` (created on demand).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Folder of a dataset.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The manifest of a dataset if it exists and every file matches its checksum.
    pub fn verified(&self, name: &str) -> Option<Manifest> {
        let dir = self.dir(name);
        let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        if manifest.version != VERSION || manifest.generator != name {
            return None;
        }
        for (file, entry) in &manifest.files {
            if sha256_file(&dir.join(file)).ok()? != entry.sha256 {
                return None;
            }
        }
        Some(manifest)
    }

    /// Returns the dataset's folder, generating it first if it is missing, partial or corrupt.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, StoreError> {
        self.ensure_with(name, &mut |_, _| {})
    }

    /// [`Self::ensure`], reporting generation progress as `(done, total)` work units.
    pub fn ensure_with(
        &self,
        name: &str,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<PathBuf, StoreError> {
        if self.verified(name).is_none() {
            self.generate_with(name, progress)?;
        }
        Ok(self.dir(name))
    }

    /// Generates a dataset (always), replacing any previous copy atomically.
    pub fn generate(&self, name: &str) -> Result<Manifest, StoreError> {
        self.generate_with(name, &mut |_, _| {})
    }

    /// [`Self::generate`], reporting progress as `(done, total)` work units (lattice steps for
    /// the cylinder wake; the 1-D generators report only their end).
    pub fn generate_with(
        &self,
        name: &str,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Manifest, StoreError> {
        let start = std::time::Instant::now();
        let (arrays, settings) = match name {
            "burgers" => {
                let spec = BurgersSpec::default();
                let s = solve(&spec);
                let settings = serde_json::json!({
                    "pde": "u_t + u u_x - nu u_xx = 0, u(0,x) = -sin(pi x), u(t,+-1) = 0",
                    "nu": spec.viscosity,
                    "x": format!("linspace(-1, 1, {})", spec.nx),
                    "t": format!("{} * k, k = 0..{}", spec.dt, spec.nt),
                    "method": "Cole-Hopf transformation, Gauss-Hermite quadrature",
                    "quadrature_nodes": spec.quadrature_nodes,
                });
                let arrays = vec![
                    (
                        "x",
                        Array {
                            shape: vec![spec.nx],
                            data: s.x,
                        },
                    ),
                    (
                        "t",
                        Array {
                            shape: vec![spec.nt],
                            data: s.t,
                        },
                    ),
                    (
                        "usol",
                        Array {
                            shape: vec![spec.nx, spec.nt],
                            data: s.u,
                        },
                    ),
                ];
                (arrays, settings)
            }
            "kdv" => spectral_dataset(
                &spectral::kdv_spec(),
                |x| (std::f64::consts::PI * x).cos(),
                "u_t + u u_x + 0.0025 u_xxx = 0, u(0,x) = cos(pi x), periodic",
                false,
            ),
            "allen_cahn" => spectral_dataset(
                &spectral::allen_cahn_spec(),
                |x| x * x * (std::f64::consts::PI * x).cos(),
                "u_t - 0.0001 u_xx + 5 u^3 - 5 u = 0, u(0,x) = x^2 cos(pi x), periodic",
                false,
            ),
            "schrodinger" => spectral_dataset(
                &spectral::schrodinger_spec(),
                |x| 2.0 / x.cosh(),
                "i h_t + 0.5 h_xx + |h|^2 h = 0, h(0,x) = 2 sech(x), periodic; h = uu_real + i uu_imag",
                true,
            ),
            "cylinder_wake" => cylinder_dataset(&WakeSpec::default(), progress),
            "sensors" => (Vec::new(), super::sensors::SETTINGS.clone()),
            other => return Err(StoreError::UnknownGenerator(other.to_string())),
        };
        let tables = match name {
            "sensors" => vec![("sensors.csv", super::sensors::readings())],
            _ => Vec::new(),
        };
        progress(1, 1);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                name: name.to_string(),
                path,
                source,
            }
        };
        let tmp = self
            .root
            .join(format!(".{name}.partial-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let mut files = BTreeMap::new();
        for (stem, array) in &arrays {
            let file = format!("{stem}.npy");
            let path = tmp.join(&file);
            write_npy(&path, array)?;
            let sha256 = sha256_file(&path).map_err(io(&path))?;
            files.insert(
                file,
                FileEntry {
                    shape: array.shape.clone(),
                    sha256,
                },
            );
        }
        for (file, table) in &tables {
            let path = tmp.join(file);
            table.write(&path).map_err(|e| StoreError::Io {
                name: name.to_string(),
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let sha256 = sha256_file(&path).map_err(io(&path))?;
            files.insert(
                file.to_string(),
                FileEntry {
                    shape: vec![table.rows(), table.columns.len()],
                    sha256,
                },
            );
        }
        let manifest = Manifest {
            generator: name.to_string(),
            version: VERSION,
            settings,
            seconds: start.elapsed().as_secs_f64(),
            files,
        };
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
        std::fs::write(tmp.join("manifest.json"), text).map_err(io(&tmp))?;
        let dir = self.dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
        Ok(manifest)
    }
}

/// Runs the lattice Boltzmann wake simulation and lays it out as grid files `x`, `y`, `t`
/// and fields `u`, `v`, `p` of shape `[x, y, t]`.
fn cylinder_dataset(
    spec: &WakeSpec,
    progress: &mut dyn FnMut(usize, usize),
) -> (Vec<(&'static str, Array)>, serde_json::Value) {
    let wake = cylinder::simulate(spec, progress);
    let shape = vec![wake.x.len(), wake.y.len(), wake.t.len()];
    let settings = serde_json::json!({
        "pde": "incompressible Navier-Stokes, flow past a cylinder of diameter 1 at the origin, free stream 1",
        "reynolds": spec.reynolds,
        "method": "lattice Boltzmann D2Q9, TRT collision (magic 1/4), Bouzidi interpolated bounce-back, equilibrium inlet, zero-gradient outlet, free-slip sides",
        "cells_per_diameter": spec.cells_per_diameter,
        "lattice_velocity": spec.lattice_velocity,
        "channel_x": [spec.x_range.0, spec.x_range.1],
        "channel_y": [spec.y_range.0, spec.y_range.1],
        "spin_up": spec.spin_up,
        "lattice_steps": wake.steps,
        "x": format!("linspace({}, {}, {})", spec.sample_x.0, spec.sample_x.1, spec.sample_x.2),
        "y": format!("linspace({}, {}, {})", spec.sample_y.0, spec.sample_y.1, spec.sample_y.2),
        "t": format!("{} k, k = 0..{}", spec.snapshot_dt, spec.snapshots),
        "pressure": "(rho - 1) c_s^2 / U^2, defined up to a constant",
        "strouhal": wake.strouhal,
        "drag_coefficient": wake.drag_coefficient,
        "lift_amplitude": wake.lift_amplitude,
        "relative_divergence": wake.relative_divergence,
    });
    let arrays = vec![
        (
            "x",
            Array {
                shape: vec![wake.x.len()],
                data: wake.x,
            },
        ),
        (
            "y",
            Array {
                shape: vec![wake.y.len()],
                data: wake.y,
            },
        ),
        (
            "t",
            Array {
                shape: vec![wake.t.len()],
                data: wake.t,
            },
        ),
        (
            "u",
            Array {
                shape: shape.clone(),
                data: wake.u,
            },
        ),
        (
            "v",
            Array {
                shape: shape.clone(),
                data: wake.v,
            },
        ),
        (
            "p",
            Array {
                shape,
                data: wake.p,
            },
        ),
    ];
    (arrays, settings)
}

/// Runs a spectral solver and lays its result out as the original files (`x`, `tt`, `uu` or
/// `uu_real` and `uu_imag`).
fn spectral_dataset(
    spec: &SpectralSpec,
    initial: impl Fn(f64) -> f64,
    pde: &str,
    complex: bool,
) -> (Vec<(&'static str, Array)>, serde_json::Value) {
    let SpectralSolution { x, t, re, im } = spectral::solve(spec, |x| {
        rustfft::num_complex::Complex64::new(initial(x), 0.0)
    });
    let field_shape = vec![x.len(), t.len()];
    let settings = serde_json::json!({
        "pde": pde,
        "x": format!("{} + {} k / {}, k = 0..{}", spec.x0, spec.length, spec.points, spec.points),
        "t": format!("linspace(0, {}, {})", spec.t_end, spec.snapshots),
        "method": "Fourier pseudo-spectral, ETDRK4 (contour-integral phi functions)",
        "modes": spec.points * spec.refine,
        "steps_per_snapshot": spec.substeps,
    });
    let mut arrays = vec![
        (
            "x",
            Array {
                shape: vec![x.len()],
                data: x,
            },
        ),
        (
            "tt",
            Array {
                shape: vec![t.len()],
                data: t,
            },
        ),
    ];
    if complex {
        let modulus = re.iter().zip(&im).map(|(a, b)| a.hypot(*b)).collect();
        for (stem, data) in [("uu_real", re), ("uu_imag", im), ("uu_abs", modulus)] {
            arrays.push((
                stem,
                Array {
                    shape: field_shape.clone(),
                    data,
                },
            ));
        }
    } else {
        arrays.push((
            "uu",
            Array {
                shape: field_shape,
                data: re,
            },
        ));
    }
    (arrays, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_files_are_detected_and_regenerated() {
        let root = std::env::temp_dir().join(format!("pinn-store-{}", std::process::id()));
        let store = DatasetStore::new(&root);
        let dir = store.ensure("burgers").expect("generated");
        assert!(store.verified("burgers").is_some());
        // Truncate a file as an interrupted write would.
        let f = dir.join("usol.npy");
        let bytes = std::fs::read(&f).expect("read");
        std::fs::write(&f, &bytes[..bytes.len() / 2]).expect("truncate");
        assert!(store.verified("burgers").is_none());
        store.ensure("burgers").expect("regenerated");
        assert!(store.verified("burgers").is_some());
        assert!(matches!(
            store.ensure("nope"),
            Err(StoreError::UnknownGenerator(_))
        ));
        std::fs::remove_dir_all(&root).ok();
    }
}
