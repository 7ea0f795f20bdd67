//! The checks a parsed problem file must pass: what the types cannot say.

use std::path::Path;

use super::*;

impl ProblemConfig {
    pub(super) fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let d = &self.domain;
        if d.inputs.is_empty() {
            return Err(invalid(
                "domain.inputs",
                "at least one input is needed".into(),
            ));
        }
        for (field, v) in [("domain.lower", &d.lower), ("domain.upper", &d.upper)] {
            if v.len() != d.inputs.len() {
                return Err(invalid(
                    field,
                    format!("has {} values for {} inputs", v.len(), d.inputs.len()),
                ));
            }
        }
        for (i, name) in d.inputs.iter().enumerate() {
            for (field, bound) in [("domain.lower", d.lower[i]), ("domain.upper", d.upper[i])] {
                if !bound.is_finite() {
                    return Err(invalid(
                        field,
                        format!("the bound of `{name}` must be finite, got {bound}"),
                    ));
                }
            }
            if d.lower[i].partial_cmp(&d.upper[i]) != Some(std::cmp::Ordering::Less) {
                return Err(invalid(
                    "domain",
                    format!("lower bound of `{name}` must be below its upper bound"),
                ));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "domain.inputs",
                    format!("input name `{name}` must be alphanumeric (no `_`)"),
                ));
            }
        }
        if let Some(geometry) = &self.geometry {
            geometry.region(d, path)?;
        }
        if self.network.outputs.is_empty() {
            return Err(invalid(
                "network.outputs",
                "at least one output is needed".into(),
            ));
        }
        if self.network.hidden.is_empty() {
            return Err(invalid(
                "network.hidden",
                "at least one hidden layer is needed (without one the network is linear)".into(),
            ));
        }
        if let Some(&width) = self
            .network
            .hidden
            .iter()
            .find(|&&w| w == 0 || w > MAX_WIDTH)
        {
            return Err(invalid(
                "network.hidden",
                format!("layer widths must be between 1 and {MAX_WIDTH}, got {width}"),
            ));
        }
        // A discrete-time network has a column per stage, and one more in a forward model.
        let output_columns = match &self.time {
            Some(t) => t.stages.unwrap_or(1).min(MAX_STAGES) + 1,
            None => self.network.outputs.len(),
        };
        let parameters = self.network.parameter_count(d.inputs.len(), output_columns);
        if parameters > MAX_PARAMETERS {
            return Err(invalid(
                "network.hidden",
                format!(
                    "the network would have {parameters} parameters (at most {MAX_PARAMETERS})"
                ),
            ));
        }
        for (name, value) in &self.constants {
            if !value.is_finite() {
                return Err(invalid(
                    &format!("constants.{name}"),
                    format!("must be finite, got {value}"),
                ));
            }
        }
        for (name, u) in &self.unknowns {
            for (key, value) in [("init", Some(u.init)), ("truth", u.truth)] {
                if let Some(v) = value.filter(|v| !v.is_finite()) {
                    return Err(invalid(
                        &format!("unknowns.{name}.{key}"),
                        format!("must be finite, got {v}"),
                    ));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in self
            .network
            .outputs
            .iter()
            .chain(self.derived.keys())
            .chain(self.unknowns.keys())
            .chain(self.constants.keys())
            .chain(d.inputs.iter())
        {
            if !seen.insert(name.as_str()) {
                return Err(invalid("", format!("the name `{name}` is defined twice")));
            }
        }
        if self.loss.is_empty() {
            return Err(invalid(
                "loss",
                "at least one [[loss]] term is needed".into(),
            ));
        }
        for (i, l) in self.loss.iter().enumerate() {
            if l.fit.is_empty() && l.residuals.is_empty() && l.periodic.is_none() {
                return Err(invalid(
                    &format!("loss[{i}]"),
                    "a term needs `fit`, `residuals` or `periodic`".into(),
                ));
            }
            if l.periodic.is_some() && !l.fit.is_empty() {
                return Err(invalid(
                    &format!("loss[{i}].periodic"),
                    "compares the two ends of an axis at the set's points, where `fit` has no \
                     targets: put the fit in a term of its own"
                        .into(),
                ));
            }
            if l.irk.is_some() {
                if self.time.is_none() {
                    return Err(invalid(
                        &format!("loss[{i}].irk"),
                        "needs a [time] section".into(),
                    ));
                }
                if l.rhs.is_none() || l.fit.len() != 1 || !l.residuals.is_empty() {
                    return Err(invalid(
                        &format!("loss[{i}].irk"),
                        "an irk term needs `rhs` and exactly one `fit` field, and no `residuals`"
                            .into(),
                    ));
                }
            }
            if l.fit.has_targets() && l.fit_value.is_some() {
                return Err(invalid(
                    &format!("loss[{i}].fit_value"),
                    "cannot be combined with targets in `fit` (give each target there)".into(),
                ));
            }
            if l.irk.is_some() && l.fit.has_targets() {
                return Err(invalid(
                    &format!("loss[{i}].fit"),
                    "an irk term fits its field to the snapshot data: give `fit = [\"<field>\"]`"
                        .into(),
                ));
            }
            for f in l.fit.iter() {
                if let FitTarget::Value(v) = f.target
                    && !v.is_finite()
                {
                    return Err(invalid(
                        &format!("loss[{i}].fit.{}", f.quantity),
                        format!("must be finite, got {v}"),
                    ));
                }
            }
            if let Some(v) = l.fit_value.filter(|v| !v.is_finite()) {
                return Err(invalid(
                    &format!("loss[{i}].fit_value"),
                    format!("must be finite, got {v}"),
                ));
            }
            if !l.weight.is_finite() || l.weight < 0.0 {
                return Err(invalid(
                    &format!("loss[{i}].weight"),
                    "must be finite and >= 0".into(),
                ));
            }
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr <= 1.0) {
            return Err(invalid(
                "optimizer.lr",
                format!(
                    "must be in (0, 1], got {} (Adam moves every parameter by up to about lr per step)",
                    o.lr
                ),
            ));
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(invalid(
                "optimizer.epsilon",
                format!("must be finite and > 0, got {}", o.epsilon),
            ));
        }
        for (field, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(field, format!("must be in [0, 1), got {beta}")));
            }
        }
        if let Some(decay) = &o.decay {
            decay
                .check()
                .map_err(|message| invalid("optimizer.decay", message))?;
        }
        if let Some(t) = &self.time {
            if t.scheme != "irk" {
                return Err(invalid(
                    "time.scheme",
                    format!("unknown scheme `{}` (only `irk`)", t.scheme),
                ));
            }
            if self.network.outputs.len() != 1 {
                return Err(invalid(
                    "network.outputs",
                    "a discrete-time network has one output (its columns are the stages)".into(),
                ));
            }
            if let Some(q) = t.stages.filter(|&q| q == 0 || q > MAX_STAGES) {
                return Err(invalid(
                    "time.stages",
                    format!("must be between 1 and {MAX_STAGES}, got {q}"),
                ));
            }
        }
        if let Some(b) = &self.loss_balance {
            if b.every == 0 {
                return Err(invalid("loss_balance.every", "must be at least 1".into()));
            }
            if !(0.0..1.0).contains(&b.alpha) {
                return Err(invalid(
                    "loss_balance.alpha",
                    format!("must be in [0, 1), got {}", b.alpha),
                ));
            }
        }
        let e = &self.evaluate;
        if let Some(counts) = &e.grid {
            if e.exact.is_empty() {
                return Err(invalid(
                    "evaluate.grid",
                    "is the grid of the exact solutions: give `exact` too".into(),
                ));
            }
            if counts.len() != d.inputs.len() || counts.iter().any(|&n| n < 2) {
                return Err(invalid(
                    "evaluate.grid",
                    format!(
                        "needs a count of at least 2 for each of the {} inputs, got {counts:?}",
                        d.inputs.len()
                    ),
                ));
            }
            if grid_points(counts).is_none() {
                return Err(invalid(
                    "evaluate.grid",
                    format!("more than {MAX_POINTS} points"),
                ));
            }
        }
        if !e.exact.is_empty() && self.time.is_some() {
            return Err(invalid(
                "evaluate.exact",
                "a discrete-time model is evaluated on its dataset's snapshot".into(),
            ));
        }
        if self.run.log_every == 0 {
            return Err(invalid("run.log_every", "must be at least 1".into()));
        }
        Ok(())
    }
}
