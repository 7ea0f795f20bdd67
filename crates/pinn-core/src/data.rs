//! Reading and writing `.npy` arrays, and reference solutions on tensor-product grids.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use npyz::WriterBuilder;
use thiserror::Error;

/// Errors from loading or validating data files.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not an `.npy` array of a supported type.
    #[error("`{path}` is not a float64/float32 .npy array in C order: {detail}")]
    Format {
        /// File path.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The array has the wrong shape.
    #[error("`{path}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// File path.
        path: PathBuf,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape found in the file.
        found: Vec<usize>,
    },
    /// The array holds NaN or infinite values.
    #[error("`{path}` contains a non-finite value at flat index {index}")]
    NonFinite {
        /// File path.
        path: PathBuf,
        /// First offending index.
        index: usize,
    },
}

/// A dataset file that failed to load, with the dataset entry that names it (`axes.x`,
/// `fields.u`), so that a problem file's error can point at its key.
#[derive(Debug, Error)]
#[error("{entry}: {source}")]
pub struct GridError {
    /// The entry under `[dataset]`: `axes.<axis>` or `fields.<field>`.
    pub entry: String,
    /// What went wrong with its file.
    #[source]
    pub source: DataError,
}

/// A dense float64 array with its shape (C order).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order.
    pub data: Vec<f64>,
}

/// Reads an `.npy` file of float64 or float32 into an [`Array`], rejecting non-finite values.
pub fn read_npy(path: &Path) -> Result<Array, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(|e| DataError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() != npyz::Order::C && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            detail: "Fortran order".into(),
        });
    }
    let dtype = npy.dtype();
    let type_str = match &dtype {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => format!("{other:?}"),
    };
    // A short file fails in the read with a bare "failed to fill whole buffer": say what it is.
    let read_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DataError::Format {
            path: path.to_path_buf(),
            detail: format!(
                "truncated: its header declares {} values of type `{type_str}`, but the file \
                 ends before them ({} bytes in all)",
                shape.iter().product::<usize>(),
                std::fs::metadata(path).map_or(0, |m| m.len())
            ),
        },
        _ => io(e),
    };
    let data: Vec<f64> = match type_str.as_str() {
        "<f8" | ">f8" => npy.into_vec::<f64>().map_err(read_err)?,
        "<f4" | ">f4" => npy
            .into_vec::<f32>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        other => {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                detail: format!("dtype `{other}`"),
            });
        }
    };
    if let Some(index) = data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite {
            path: path.to_path_buf(),
            index,
        });
    }
    Ok(Array { shape, data })
}

/// Writes a float64 array as `.npy` (C order).
pub fn write_npy(path: &Path, array: &Array) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let shape: Vec<u64> = array.shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<f64>::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io)?;
    writer.extend(array.data.iter().copied()).map_err(io)?;
    writer.finish().map_err(io)
}

/// A reference solution on a tensor-product grid: one 1-D axis per input coordinate and
/// fields of shape `[len(axis 0), len(axis 1), ...]` in C order (the last axis fastest).
#[derive(Clone, Debug)]
pub struct GridData {
    /// Axis names, in input order.
    pub axis_names: Vec<String>,
    /// Axis coordinates.
    pub axes: Vec<Vec<f64>>,
    /// Field values on the grid, flattened in C order.
    pub fields: BTreeMap<String, Vec<f64>>,
}

impl GridData {
    /// Loads axes and fields from `.npy` files in `dir` (`<stem>.npy`), checking shapes; an
    /// error names the axis or field entry whose file failed.
    pub fn load(
        dir: &Path,
        axes: &[(String, String)],
        fields: &[(String, String)],
    ) -> Result<Self, GridError> {
        let mut axis_values = Vec::new();
        for (name, stem) in axes {
            let failed = |source| GridError {
                entry: format!("axes.{name}"),
                source,
            };
            let path = dir.join(format!("{stem}.npy"));
            let a = read_npy(&path).map_err(failed)?;
            let n = a.data.len();
            if a.shape.iter().filter(|&&d| d > 1).count() > 1 {
                return Err(failed(DataError::Shape {
                    path,
                    expected: vec![n],
                    found: a.shape,
                }));
            }
            axis_values.push(a.data);
        }
        let expected: Vec<usize> = axis_values.iter().map(Vec::len).collect();
        let mut out = BTreeMap::new();
        for (name, stem) in fields {
            let failed = |source| GridError {
                entry: format!("fields.{name}"),
                source,
            };
            let path = dir.join(format!("{stem}.npy"));
            let a = read_npy(&path).map_err(failed)?;
            if a.shape != expected {
                return Err(failed(DataError::Shape {
                    path,
                    expected,
                    found: a.shape,
                }));
            }
            out.insert(name.clone(), a.data);
        }
        Ok(Self {
            axis_names: axes.iter().map(|(n, _)| n.clone()).collect(),
            axes: axis_values,
            fields: out,
        })
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.axes.iter().map(Vec::len).product()
    }

    /// Whether the grid has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Multi-index of a flat (C-order) index.
    pub fn unflatten(&self, mut flat: usize) -> Vec<usize> {
        let mut idx = vec![0; self.axes.len()];
        for d in (0..self.axes.len()).rev() {
            let n = self.axes[d].len();
            idx[d] = flat % n;
            flat /= n;
        }
        idx
    }

    /// Coordinates of a flat index.
    pub fn point(&self, flat: usize) -> Vec<f64> {
        self.unflatten(flat)
            .iter()
            .enumerate()
            .map(|(d, &i)| self.axes[d][i])
            .collect()
    }

    /// Flat indices of the points whose index on `axis` is `index`, in C order.
    pub fn slice(&self, axis: usize, index: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&f| self.unflatten(f)[axis] == index)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_shape_errors() {
        let dir = std::env::temp_dir().join(format!("pinn-core-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let x = Array {
            shape: vec![3],
            data: vec![-1.0, 0.0, 1.0],
        };
        let t = Array {
            shape: vec![2],
            data: vec![0.0, 0.5],
        };
        let u = Array {
            shape: vec![3, 2],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        write_npy(&dir.join("x.npy"), &x).expect("write");
        write_npy(&dir.join("t.npy"), &t).expect("write");
        write_npy(&dir.join("u.npy"), &u).expect("write");
        assert_eq!(read_npy(&dir.join("u.npy")).expect("read"), u);
        // A file cut short names what is missing.
        let bytes = std::fs::read(dir.join("u.npy")).expect("read back");
        std::fs::write(dir.join("short.npy"), &bytes[..bytes.len() - 12]).expect("write");
        let msg = read_npy(&dir.join("short.npy"))
            .expect_err("truncated")
            .to_string();
        assert!(
            msg.contains("short.npy") && msg.contains("truncated") && msg.contains("6 values"),
            "{msg}"
        );
        let names = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let g = GridData::load(
            &dir,
            &names(&[("x", "x"), ("t", "t")]),
            &names(&[("u", "u")]),
        )
        .expect("grid");
        assert_eq!(g.len(), 6);
        assert_eq!(g.point(3), vec![0.0, 0.5]);
        assert_eq!(g.slice(1, 0), vec![0, 2, 4]);
        assert_eq!(g.fields["u"][3], 4.0);
        // Swapped axes: the field no longer matches the grid.
        let e = GridData::load(
            &dir,
            &names(&[("t", "t"), ("x", "x")]),
            &names(&[("u", "u")]),
        )
        .expect_err("shape mismatch");
        let msg = e.to_string();
        assert!(
            msg.contains("fields.u")
                && msg.contains("u.npy")
                && msg.contains("[3, 2]")
                && msg.contains("[2, 3]"),
            "{msg}"
        );
        let e = read_npy(&dir.join("missing.npy")).expect_err("missing");
        assert!(e.to_string().contains("missing.npy"));
        let bad = Array {
            shape: vec![2],
            data: vec![1.0, f64::NAN],
        };
        write_npy(&dir.join("nan.npy"), &bad).expect("write");
        let e = read_npy(&dir.join("nan.npy")).expect_err("nan");
        assert!(e.to_string().contains("non-finite value at flat index 1"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
