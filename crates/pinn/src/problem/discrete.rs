//! Discrete-time models: the Gauss-Legendre tableau as the tensors that map stage right-hand sides
//! to the snapshots.

use super::*;

/// A discrete-time model: Gauss-Legendre IRK between two snapshots of the dataset.
#[derive(Clone, Debug)]
pub(super) struct Discrete {
    pub(super) stages: usize,
    pub(super) mode: IrkMode,
    pub(super) dt: f64,
    pub(super) axis: usize,
    pub(super) t1: usize,
    /// Maps stage right-hand sides back to `t0`: `Wᵀ` with `W = [A; bᵀ]` (forward) or `Aᵀ`.
    pub(super) to_t0: Tensor<2>,
    /// Maps them forward to `t1`: `(𝟙bᵀ − A)ᵀ` (inverse models only).
    pub(super) to_t1: Option<Tensor<2>>,
}

impl Discrete {
    pub(super) fn columns(&self) -> usize {
        match self.mode {
            IrkMode::Forward => self.stages + 1,
            IrkMode::Inverse => self.stages,
        }
    }

    pub(super) fn new(
        t: &TimeConfig,
        data: Option<&GridData>,
        ctx: &TensorContext,
    ) -> Result<Self, (String, String)> {
        let data = data.ok_or((
            "time".to_string(),
            "needs a [dataset] with a time axis".to_string(),
        ))?;
        let axis = data.axis_names.iter().position(|a| *a == t.axis).ok_or((
            "time.axis".to_string(),
            format!("`{}` is not a dataset axis", t.axis),
        ))?;
        let times = &data.axes[axis];
        let index = |i: i64, field: &str| -> Result<usize, (String, String)> {
            let n = times.len() as i64;
            let j = if i < 0 { n + i } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                Err((
                    format!("time.{field}"),
                    format!("index {i} is outside the {n} snapshots"),
                ))
            }
        };
        let (t0, t1) = (index(t.t0, "t0")?, index(t.t1, "t1")?);
        let dt = times[t1] - times[t0];
        if dt <= 0.0 {
            return Err(("time.t1".into(), "must come after t0".into()));
        }
        let q = t.stages.unwrap_or_else(|| stages_for_step(dt));
        let table = ButcherTable::gauss_legendre(q);
        let (to_t0, to_t1) = match t.mode {
            IrkMode::Forward => {
                let mut w = vec![0.0; q * (q + 1)];
                for j in 0..q {
                    for i in 0..q {
                        w[j * (q + 1) + i] = table.a(i, j);
                    }
                    w[j * (q + 1) + q] = table.b[j];
                }
                (ctx.matrix(&w, q, q + 1), None)
            }
            IrkMode::Inverse => {
                let mut a_t = vec![0.0; q * q];
                let mut m_t = vec![0.0; q * q];
                for j in 0..q {
                    for i in 0..q {
                        a_t[j * q + i] = table.a(i, j);
                        m_t[j * q + i] = table.b[j] - table.a(i, j);
                    }
                }
                (ctx.matrix(&a_t, q, q), Some(ctx.matrix(&m_t, q, q)))
            }
        };
        Ok(Self {
            stages: q,
            mode: t.mode,
            dt,
            axis,
            t1,
            to_t0,
            to_t1,
        })
    }
}
