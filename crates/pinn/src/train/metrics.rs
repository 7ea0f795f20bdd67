//! The `metrics.csv` log of a run.

use super::*;

/// A run's `metrics.csv`: a header, then one row per logged iteration (loss, its components,
/// the unknowns in physical units, wall seconds).
pub(super) struct MetricsLog {
    pub(super) path: PathBuf,
    pub(super) writer: std::io::BufWriter<std::fs::File>,
    pub(super) unknowns: Vec<crate::problem::Unknown>,
    /// The loss-balancing weights written with each row (empty without balancing).
    pub(super) weights: Vec<f64>,
    pub(super) start: Instant,
}

impl MetricsLog {
    /// Writes the header, keeping the rows up to iteration `resumed_after` of an earlier
    /// run (0 for a fresh one), and opens the file for appending.
    /// With `weights` (loss balancing on) each row ends with a `weight:<component>` column per
    /// component.
    pub(super) fn open(
        path: &Path,
        components: &[String],
        unknowns: &[crate::problem::Unknown],
        weights: Option<&[f64]>,
        resumed_after: usize,
        start: Instant,
    ) -> Result<Self, TrainError> {
        let mut header = vec!["iteration".to_string(), "loss".to_string()];
        header.extend(components.iter().cloned());
        header.extend(unknowns.iter().map(|u| u.name.clone()));
        if weights.is_some() {
            header.extend(components.iter().map(|c| format!("weight:{c}")));
        }
        header.push("wall_s".into());
        let mut kept = header.join(",") + "\n";
        if resumed_after > 0
            && let Ok(old) = std::fs::read_to_string(path)
        {
            for line in old.lines().skip(1) {
                let it: Option<usize> = line.split(',').next().and_then(|v| v.parse().ok());
                if it.is_some_and(|it| it <= resumed_after) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        std::fs::write(path, kept).map_err(io_err(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: std::io::BufWriter::new(file),
            unknowns: unknowns.to_vec(),
            weights: weights.map(<[f64]>::to_vec).unwrap_or_default(),
            start,
        })
    }

    /// Appends (and flushes) the row of iteration `it`; `raw_unknowns` are the optimiser's values.
    pub(super) fn row(
        &mut self,
        it: usize,
        total: f64,
        components: &[f64],
        raw_unknowns: Vec<f64>,
    ) -> Result<(), TrainError> {
        let mut row = vec![it.to_string(), format!("{total:e}")];
        row.extend(components.iter().map(|c| format!("{c:e}")));
        for (u, raw) in self.unknowns.iter().zip(raw_unknowns) {
            row.push(format!("{:e}", u.physical(raw)));
        }
        row.extend(self.weights.iter().map(|w| format!("{w:e}")));
        row.push(format!("{:.3}", self.start.elapsed().as_secs_f64()));
        writeln!(self.writer, "{}", row.join(","))
            .and_then(|()| self.writer.flush())
            .map_err(io_err(&self.path))
    }
}
