//! Helpers shared by the integration tests (each test binary uses a subset of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pinn::{LoadOptions, Problem};

/// The workspace root (for the shipped `problems/`).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh folder under the system's temporary directory, unique to this test process and tag.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pinn-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Load options that read and generate datasets in `datasets`.
pub fn options(datasets: &Path) -> LoadOptions {
    LoadOptions {
        datasets: datasets.to_path_buf(),
        ..Default::default()
    }
}

/// Writes a problem file `file` into `dir` and loads it, with datasets in `dir`.
pub fn problem_from_text(dir: &Path, file: &str, text: &str) -> (PathBuf, Problem) {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the problem file");
    let problem = Problem::from_file(&path, &options(dir)).expect("a valid problem");
    (path, problem)
}

/// The error of loading `base` with `from` replaced by `to`, written as `bad.toml` in `dir`
/// and loaded with default options; it must name the file and contain `expected`.
pub fn assert_refused(dir: &Path, base: &str, (from, to, expected): (&str, &str, &str)) {
    assert!(base.contains(from), "the base has no `{from}`");
    let path = dir.join("bad.toml");
    std::fs::write(&path, base.replacen(from, to, 1)).expect("write the variant");
    let error = match Problem::from_file(&path, &LoadOptions::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted {to}"),
    };
    assert!(error.contains(expected), "{to}: {error}");
    assert!(error.contains("bad.toml"), "{error}");
}
