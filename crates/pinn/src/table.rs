//! Tables of scattered points: rows of named columns, read from and written to CSV,
//! whitespace-separated text (a header line naming the columns, as COMSOL, PINNacle and data
//! loggers write them) or `.npy` (an `N × k` array, its columns named by the caller).
//!
//! `pinn predict` reads its points from such a table and writes the predictions as one.

use std::path::{Path, PathBuf};

use pinn_core::data::{Array, DataError, read_npy, write_npy};
use thiserror::Error;

/// Why a table could not be read or written. Each names the file, and a cell its row (from 1,
/// the header not counted) and column.
#[derive(Debug, Error)]
pub enum TableError {
    /// The file could not be opened, read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An `.npy` file that is not a float array, or of the wrong shape.
    #[error(transparent)]
    Npy(#[from] DataError),
    /// The file is not a table: no header, ragged rows, an unknown extension.
    #[error("`{path}`: {detail}")]
    Format {
        /// File path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A column the caller needs is not in the header.
    #[error("`{path}` has no column `{column}` (its columns: {available})")]
    MissingColumn {
        /// File path.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The header's columns.
        available: String,
    },
    /// A cell is not a number.
    #[error("`{path}`, row {row}, column `{column}`: `{text}` is not a number")]
    NotNumeric {
        /// File path.
        path: PathBuf,
        /// Row, from 1 (the header not counted).
        row: usize,
        /// Column name.
        column: String,
        /// The cell's text.
        text: String,
    },
    /// A cell is NaN or infinite.
    #[error("`{path}`, row {row}, column `{column}`: {value} is not finite")]
    NonFinite {
        /// File path.
        path: PathBuf,
        /// Row, from 1 (the header not counted).
        row: usize,
        /// Column name.
        column: String,
        /// The value.
        value: f64,
    },
}

/// A table of points: `rows` rows of `columns.len()` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct PointTable {
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// The values, row after row.
    pub values: Vec<f64>,
}

/// The formats a table's file can have, chosen by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `.csv`: comma-separated, a header line.
    Csv,
    /// `.txt`, `.dat`, `.tsv`: separated by spaces or tabs, a header line (`%` or `#` before
    /// the header's first name is dropped, as COMSOL writes it).
    Text,
    /// `.npy`: a two-dimensional float array, columns named by the caller.
    Npy,
}

impl Format {
    fn of(path: &Path) -> Result<Self, TableError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("txt" | "dat" | "tsv") => Ok(Self::Text),
            Some("npy") => Ok(Self::Npy),
            _ => Err(TableError::Format {
                path: path.to_path_buf(),
                detail: "unknown extension: expected .csv, .txt, .dat, .tsv or .npy".into(),
            }),
        }
    }
}

impl PointTable {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values
            .len()
            .checked_div(self.columns.len())
            .unwrap_or(0)
    }

    /// Reads the columns `names` of a table, in that order. A text file's header must name
    /// each (other columns are skipped, and need not be numbers); an `.npy` array has exactly
    /// these columns, in this order. With no `names`, a text file's every column is read.
    pub fn read(path: &Path, names: &[String]) -> Result<Self, TableError> {
        match Format::of(path)? {
            Format::Npy => Self::read_npy(path, names),
            Format::Csv => Self::read_text(path, b',', names),
            Format::Text => Self::read_text(path, b' ', names),
        }
    }

    fn read_npy(path: &Path, columns: &[String]) -> Result<Self, TableError> {
        let array = read_npy(path)?;
        let width = match array.shape.as_slice() {
            [_, k] => *k,
            [_] => 1,
            _ => 0,
        };
        if width != columns.len() {
            return Err(TableError::Format {
                path: path.to_path_buf(),
                detail: format!(
                    "shape {:?}: expected N × {} (columns {})",
                    array.shape,
                    columns.len(),
                    columns.join(", ")
                ),
            });
        }
        Ok(Self {
            columns: columns.to_vec(),
            values: array.data,
        })
    }

    fn read_text(path: &Path, delimiter: u8, names: &[String]) -> Result<Self, TableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |detail: String| TableError::Format {
            path: path.to_path_buf(),
            detail,
        };
        // Whitespace tables may align their columns with runs of spaces or tabs: one space
        // between cells, for the csv reader.
        let text = if delimiter == b' ' {
            text.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            text
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .comment(None)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| bad(format!("unreadable header: {e}")))?
            .clone();
        let mut columns: Vec<String> = header.iter().map(str::to_string).collect();
        // COMSOL's `% x y u`: the marker alone, or glued to the first name.
        if let Some(first) = columns.first_mut() {
            *first = first.trim_start_matches(['%', '#']).trim().to_string();
            if first.is_empty() && header.len() > 1 {
                columns.remove(0);
            }
        }
        if columns.is_empty() || columns.iter().any(String::is_empty) {
            return Err(bad(format!(
                "the first line must name every column (found `{}`)",
                header.iter().collect::<Vec<_>>().join(",")
            )));
        }
        if let Some(name) = columns
            .iter()
            .enumerate()
            .find(|(i, c)| columns[..*i].contains(c))
            .map(|(_, c)| c)
        {
            return Err(bad(format!("column `{name}` is named twice")));
        }
        let wanted: Vec<usize> = if names.is_empty() {
            (0..columns.len()).collect()
        } else {
            names
                .iter()
                .map(|name| {
                    columns.iter().position(|c| c == name).ok_or_else(|| {
                        TableError::MissingColumn {
                            path: path.to_path_buf(),
                            column: name.clone(),
                            available: columns.join(", "),
                        }
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut values = Vec::new();
        for (r, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(format!("row {}: {e}", r + 1)))?;
            if record.len() != columns.len() {
                return Err(bad(format!(
                    "row {} has {} cells, the header {}",
                    r + 1,
                    record.len(),
                    columns.len()
                )));
            }
            for &c in &wanted {
                let (cell, column) = (&record[c], &columns[c]);
                let value: f64 = cell.parse().map_err(|_| TableError::NotNumeric {
                    path: path.to_path_buf(),
                    row: r + 1,
                    column: column.clone(),
                    text: cell.to_string(),
                })?;
                if !value.is_finite() {
                    return Err(TableError::NonFinite {
                        path: path.to_path_buf(),
                        row: r + 1,
                        column: column.clone(),
                        value,
                    });
                }
                values.push(value);
            }
        }
        let columns = wanted.iter().map(|&c| columns[c].clone()).collect();
        Ok(Self { columns, values })
    }

    /// Writes the table as CSV (header line; every value in the shortest form that reads back
    /// exactly), whitespace text or `.npy` (`rows × columns`, float64), by the extension.
    pub fn write(&self, path: &Path) -> Result<(), TableError> {
        match Format::of(path)? {
            Format::Npy => Ok(write_npy(
                path,
                &Array {
                    shape: vec![self.rows(), self.columns.len()],
                    data: self.values.clone(),
                },
            )?),
            format => {
                let separator = if format == Format::Csv { "," } else { " " };
                let mut text = self.columns.join(separator);
                text.push('\n');
                for row in self.values.chunks_exact(self.columns.len().max(1)) {
                    let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
                    text.push_str(&cells.join(separator));
                    text.push('\n');
                }
                std::fs::write(path, text).map_err(|source| TableError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pinn-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csv_text_and_npy_tables_round_trip_exactly() {
        let table = PointTable {
            columns: names(&["x", "t", "u"]),
            values: vec![0.1, 0.2, 1.0 / 3.0, -1e-300, 5.0, std::f64::consts::PI],
        };
        for file in ["round.csv", "round.txt", "round.npy"] {
            let path = temp(file);
            table.write(&path).expect("written");
            let back = PointTable::read(&path, &table.columns).expect("read back");
            assert_eq!(back, table, "{file}");
        }
    }

    #[test]
    fn columns_are_picked_by_name_in_the_order_asked() {
        let path = temp("pick.dat");
        std::fs::write(&path, "% t    x   note\n 0.5  1.0  a\n0.25\t2.0 b\n").expect("written");
        let table = PointTable::read(&path, &names(&["x", "t"])).expect("x and t");
        assert_eq!(table.rows(), 2);
        assert_eq!(table.columns, names(&["x", "t"]));
        assert_eq!(table.values, vec![1.0, 0.5, 2.0, 0.25]);
        let missing = PointTable::read(&path, &names(&["y"])).expect_err("no y");
        assert!(missing.to_string().contains("no column `y`"), "{missing}");
        let all = PointTable::read(&path, &[]).expect_err("`note` is not numeric");
        assert!(all.to_string().contains("column `note`"), "{all}");
    }

    #[test]
    fn bad_cells_are_named_by_row_and_column() {
        let cases = [
            (
                "x,t\n1,2\n3,abc\n",
                "row 2, column `t`: `abc` is not a number",
            ),
            ("x,t\n1,NaN\n", "row 1, column `t`: NaN is not finite"),
            ("x,t\n1,2,3\n", "row 1 has 3 cells, the header 2"),
            ("x,x\n1,2\n", "column `x` is named twice"),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let path = temp(&format!("bad{i}.csv"));
            std::fs::write(&path, text).expect("written");
            let error = PointTable::read(&path, &[]).expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        let npy = temp("wide.npy");
        PointTable {
            columns: names(&["a", "b", "c"]),
            values: vec![0.0; 6],
        }
        .write(&npy)
        .expect("written");
        let error = PointTable::read(&npy, &names(&["x", "t"])).expect_err("3 columns");
        assert!(error.to_string().contains("expected N × 2"), "{error}");
    }
}
