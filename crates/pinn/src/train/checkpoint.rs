//! State on the host: parameter files, checkpoints and the snapshots graph replay falls back to.

use super::*;

pub(super) fn raw_values(raw: &[Tensor<2>]) -> Vec<f64> {
    raw.iter()
        .map(|t| to_vec(t).first().copied().unwrap_or(f64::NAN))
        .collect()
}

/// The parameters and Adam state copied to the host: what a failed capture or a diverged
/// replay falls back to.
///
/// It is also what a checkpoint holds ([`StateSnapshot::checkpoint`]).
pub(super) struct StateSnapshot {
    pub(super) params: HostTensors,
    pub(super) step: u64,
    pub(super) first: HostTensors,
    pub(super) second: HostTensors,
}

impl StateSnapshot {
    pub(super) fn take(params: &[Tensor<2>], adam: &Adam) -> Self {
        let (step, first, second) = adam.state();
        Self {
            params: to_host(params),
            step,
            first: to_host(first),
            second: to_host(second),
        }
    }

    /// Fresh tensors (new buffers) holding the snapshot.
    pub(super) fn restore(&self, problem: &Problem) -> (Vec<Tensor<2>>, Adam) {
        let params = to_device(&self.params, problem);
        let mut adam = Adam::new(&problem.config().optimizer, &params);
        adam.restore(
            self.step,
            to_device(&self.first, problem),
            to_device(&self.second, problem),
        );
        (params, adam)
    }

    /// The checkpoint document of this state after Adam iteration `iteration`.
    pub(super) fn checkpoint(&self, iteration: usize) -> serde_json::Value {
        serde_json::json!({
            "iteration": iteration,
            "params": host_to_json(&self.params),
            "adam_step": self.step,
            "adam_first": host_to_json(&self.first),
            "adam_second": host_to_json(&self.second),
        })
    }

    /// Reads a [`checkpoint`](Self::checkpoint) document whose tensors have the given shapes,
    /// with the iteration it was taken after.
    pub(super) fn from_checkpoint(
        doc: &serde_json::Value,
        shapes: &[[usize; 2]],
    ) -> Result<(Self, usize), String> {
        let state = Self {
            params: host_from_json(&doc["params"], shapes)?,
            step: doc["adam_step"].as_u64().ok_or("no adam_step")?,
            first: host_from_json(&doc["adam_first"], shapes)?,
            second: host_from_json(&doc["adam_second"], shapes)?,
        };
        let iteration = doc["iteration"].as_u64().ok_or("no iteration")? as usize;
        Ok((state, iteration))
    }

    /// Largest difference between the parameters of two snapshots, relative to the largest
    /// parameter.
    pub(super) fn parameter_difference(&self, other: &Self) -> f64 {
        let mut scale = f64::MIN_POSITIVE;
        let mut worst = 0.0f64;
        for ((a, _), (b, _)) in self.params.iter().zip(&other.params) {
            for (x, y) in a.iter().zip(b) {
                scale = scale.max(x.abs());
                worst = worst.max((x - y).abs());
            }
        }
        worst / scale
    }
}

/// Name of the checkpoint file in a run folder.
pub const CHECKPOINT: &str = "checkpoint.json";

/// Tensors copied to the host: each one's values (row-major) and shape.
pub(super) type HostTensors = Vec<(Vec<f64>, [usize; 2])>;

pub(super) fn to_host(tensors: &[Tensor<2>]) -> HostTensors {
    tensors.iter().map(|t| (to_vec(t), t.dims())).collect()
}

/// New device tensors (fresh buffers) holding `host`.
pub(super) fn to_device(host: &[(Vec<f64>, [usize; 2])], problem: &Problem) -> Vec<Tensor<2>> {
    host.iter()
        .map(|(values, [rows, cols])| problem.context().matrix(values, *rows, *cols))
        .collect()
}

pub(super) fn host_to_json(host: &[(Vec<f64>, [usize; 2])]) -> serde_json::Value {
    host.iter()
        .map(|(values, shape)| serde_json::json!({ "shape": shape, "values": values }))
        .collect()
}

/// Reads tensors written by [`host_to_json`], which must have the given shapes.
pub(super) fn host_from_json(
    value: &serde_json::Value,
    shapes: &[[usize; 2]],
) -> Result<HostTensors, String> {
    let list = value.as_array().ok_or("expected a list of tensors")?;
    if list.len() != shapes.len() {
        return Err(format!(
            "{} tensors, the problem has {}",
            list.len(),
            shapes.len()
        ));
    }
    list.iter()
        .zip(shapes)
        .map(|(v, &[rows, cols])| {
            let values: Vec<f64> = serde_json::from_value(v["values"].clone())
                .map_err(|e| format!("bad tensor values: {e}"))?;
            if values.len() != rows * cols {
                return Err(format!(
                    "a tensor has {} values, expected {}",
                    values.len(),
                    rows * cols
                ));
            }
            Ok((values, [rows, cols]))
        })
        .collect()
}

/// Writes parameters as JSON (`[{shape, values}]` plus named unknowns).
pub fn save_parameters(
    problem: &Problem,
    params: &[Tensor<2>],
    path: &Path,
) -> Result<(), TrainError> {
    let n = problem.network_parameter_count();
    let network = host_to_json(&to_host(&params[..n]));
    let unknowns: serde_json::Map<String, serde_json::Value> = problem
        .unknowns()
        .iter()
        .zip(&params[n..])
        .map(|(u, raw)| {
            let raw = to_vec(raw).first().copied().unwrap_or(f64::NAN);
            (
                u.name.clone(),
                serde_json::json!({ "trained": raw, "value": u.physical(raw) }),
            )
        })
        .collect();
    let doc = serde_json::json!({ "network": network, "unknowns": unknowns });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string(&doc).unwrap_or_default()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads the parameters that [`save_parameters`] wrote (`params.json` of a run).
pub fn load_parameters(problem: &Problem, path: &Path) -> Result<Vec<Tensor<2>>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let initial = problem.initial_parameters();
    let n = problem.network_parameter_count();
    let shapes: Vec<[usize; 2]> = initial[..n].iter().map(|t| t.dims()).collect();
    let network = host_from_json(&doc["network"], &shapes).map_err(bad)?;
    let mut params = to_device(&network, problem);
    for u in problem.unknowns() {
        let raw = doc["unknowns"][&u.name]["trained"]
            .as_f64()
            .ok_or_else(|| bad(format!("no trained value of unknown `{}`", u.name)))?;
        params.push(problem.context().scalar(raw));
    }
    Ok(params)
}
