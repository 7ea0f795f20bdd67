//! Residuals and the environment they read: the jets of fields, inputs and unknowns; residuals as
//! expressions or closures.

use super::*;

pub(super) struct Env<'a> {
    pub(super) outputs: Vec<Jet>,
    pub(super) derived: Vec<Option<Jet>>,
    pub(super) inputs: &'a Tensor<2>,
    pub(super) unknowns: &'a [Tensor<2>],
    /// The points' outward unit normals (`rows × spatial inputs`), on boundary points.
    pub(super) normals: Option<Tensor<2>>,
}

pub(super) fn restrict(jet: Jet, target: &Arc<DerivativeSet>) -> Jet {
    if target.is_empty() {
        return Jet::constant(jet.into_value());
    }
    if jet.derivative_set() == target {
        return jet;
    }
    let streams = target
        .iter()
        .filter_map(|p| jet.stream(p).map(|t| (*p, t.clone())))
        .collect();
    Jet::from_parts(jet.value().clone(), streams, target.clone())
}

impl Environment for Env<'_> {
    fn field(&self, field: FieldId, partial: Partial, target: &Arc<DerivativeSet>) -> Jet {
        let jet = match field {
            FieldId::Output(i) => &self.outputs[i],
            FieldId::Derived(i) => self.derived[i]
                .as_ref()
                .expect("derived outputs are built before they are read"),
        };
        let shifted = if partial.is_value() {
            jet.clone()
        } else {
            jet.differentiate(&partial)
        };
        restrict(shifted, target)
    }

    fn input(&self, index: usize, target: &Arc<DerivativeSet>) -> Jet {
        let [rows, _] = self.inputs.dims();
        let value = self.inputs.clone().slice([0..rows, index..index + 1]);
        let d = Partial::first(index);
        let mut streams = BTreeMap::new();
        if target.contains(&d) {
            streams.insert(d, value.ones_like());
        }
        Jet::from_parts(value, streams, target.clone())
    }

    fn unknown(&self, index: usize) -> Jet {
        Jet::constant(self.unknowns[index].clone())
    }

    fn normal(&self, index: usize, target: &Arc<DerivativeSet>) -> Jet {
        let normals = self
            .normals
            .as_ref()
            .expect("a term that reads normals is checked at build to have them");
        let [rows, _] = normals.dims();
        let value = normals.clone().slice([0..rows, index..index + 1]);
        Jet::from_parts(value, BTreeMap::new(), target.clone())
    }
}

/// A residual written as a Rust closure over named derivative tensors (the API counterpart of
/// a `[residuals]` expression).
#[derive(Clone)]
pub struct ResidualFn {
    pub(super) reads: Vec<String>,
    pub(super) f: Arc<dyn Fn(&Fields) -> Tensor<2> + Send + Sync>,
}

impl ResidualFn {
    /// A residual reading the symbols `reads` (spelled as in expressions: `u`, `u_xx`, `x`,
    /// a constant or an unknown) and combining them with `f`; the tensors are `[points, 1]`
    /// (unknowns and constants `[1, 1]`, broadcasting).
    pub fn new(reads: &[&str], f: impl Fn(&Fields) -> Tensor<2> + Send + Sync + 'static) -> Self {
        Self {
            reads: reads.iter().map(|s| s.to_string()).collect(),
            f: Arc::new(f),
        }
    }
}

impl std::fmt::Debug for ResidualFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidualFn")
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// The tensors a [`ResidualFn`] declared, by symbol name.
pub struct Fields {
    pub(super) values: BTreeMap<String, Tensor<2>>,
}

impl Fields {
    /// The tensor of symbol `name`.
    ///
    /// # Panics
    /// If the closure did not declare `name` in [`ResidualFn::new`]'s `reads` (a programming
    /// error in the closure, found the first time it runs).
    pub fn get(&self, name: &str) -> Tensor<2> {
        match self.values.get(name) {
            Some(t) => t.clone(),
            None => panic!(
                "residual closure read `{name}`, which it did not declare (declared: {})",
                self.values.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// A compiled residual.
pub(super) enum Residual {
    Expression(Expression),
    Closure {
        reads: Vec<(String, Expression)>,
        f: Arc<dyn Fn(&Fields) -> Tensor<2> + Send + Sync>,
    },
}

impl Residual {
    pub(super) fn requirements(
        &self,
        target: &DerivativeSet,
    ) -> Result<Vec<(FieldId, Partial)>, pinn_core::expr::ExprError> {
        match self {
            Residual::Expression(e) => e.requirements(target),
            Residual::Closure { reads, .. } => {
                let mut all = Vec::new();
                for (_, e) in reads {
                    all.extend(e.requirements(target)?);
                }
                Ok(all)
            }
        }
    }

    /// Whether it reads the points' normals (`n_x`, `u_n`).
    pub(super) fn uses_normals(&self) -> bool {
        match self {
            Residual::Expression(e) => e.uses_normals(),
            Residual::Closure { reads, .. } => reads.iter().any(|(_, e)| e.uses_normals()),
        }
    }

    pub(super) fn depends_on_fields(&self) -> bool {
        match self {
            Residual::Expression(e) => !e.field_symbols().is_empty(),
            Residual::Closure { reads, .. } => {
                reads.iter().any(|(_, e)| !e.field_symbols().is_empty())
            }
        }
    }

    /// The residual's value on the environment's points.
    pub(super) fn value(
        &self,
        env: &Env<'_>,
        values: &Arc<DerivativeSet>,
        like: &Tensor<2>,
    ) -> Tensor<2> {
        match self {
            Residual::Expression(e) => jet_value(e.eval(env, values), like),
            Residual::Closure { reads, f } => {
                let fields = Fields {
                    values: reads
                        .iter()
                        .map(|(name, e)| (name.clone(), jet_value(e.eval(env, values), like)))
                        .collect(),
                };
                f(&fields)
            }
        }
    }
}

pub(super) fn jet_value(v: Value, rows_like: &Tensor<2>) -> Tensor<2> {
    match v {
        Value::Jet(j) => j.into_value(),
        Value::Scalar(c) => rows_like.zeros_like().add_scalar(c),
    }
}
