//! The loss of a parameter set: the network passes, the fields and derived outputs they give, and
//! every component reduced and weighted.

use super::*;

/// Loss of one evaluation: the weighted total and every unweighted component.
#[derive(Clone, Debug)]
pub struct LossValue {
    /// Weighted sum of the components.
    pub total: Tensor<1>,
    /// Components in the order of [`Problem::component_names`].
    pub components: Vec<Tensor<1>>,
}

/// `total + weight · component` (the first component starts the sum).
pub(crate) fn add_weighted(
    total: Option<Tensor<1>>,
    component: &Tensor<1>,
    weight: f64,
) -> Tensor<1> {
    let weighted = if weight == 1.0 {
        component.clone()
    } else {
        component.clone().mul_scalar(weight)
    };
    match total {
        Some(t) => t.add(weighted),
        None => weighted,
    }
}

impl Problem {
    pub(super) fn physical_unknowns(&self, params: &[Tensor<2>]) -> Vec<Tensor<2>> {
        let n = self.network_parameter_count();
        self.unknowns
            .iter()
            .zip(&params[n..])
            .map(|(u, raw)| match u.transform {
                Transform::Identity => raw.clone(),
                Transform::Exp => raw.clone().exp(),
            })
            .collect()
    }

    /// The fields at `inputs`, from the network's jet there (which carries at least
    /// `plan.network`): outputs, then the derived outputs the plan asks for.
    pub(super) fn environment<'a>(
        &self,
        jet: Jet,
        inputs: &'a Tensor<2>,
        unknowns: &'a [Tensor<2>],
        normals: Option<Tensor<2>>,
        plan: &Plan,
    ) -> Env<'a> {
        let outputs = if self.discrete.is_some() {
            vec![jet]
        } else {
            (0..self.symbols.outputs.len())
                .map(|i| jet.columns(i, i + 1))
                .collect()
        };
        let mut env = Env {
            outputs,
            derived: vec![None; self.derived.len()],
            inputs,
            unknowns,
            normals,
        };
        for &d in &self.derived_order {
            if let Some(target) = &plan.derived[d] {
                let value = self.derived[d].eval(&env, target);
                let jet = match value {
                    Value::Jet(j) => restrict(j, target),
                    Value::Scalar(c) => Jet::constant(jet_value(
                        Value::Scalar(c),
                        &inputs.clone().slice([0..inputs.dims()[0], 0..1]),
                    )),
                };
                env.derived[d] = Some(jet);
            }
        }
        env
    }

    /// The loss at `params` (network parameters then unknowns), with the mini-batches of the
    /// first iteration. Inside autodiff, a single `total.backward()` gives every parameter
    /// gradient.
    pub fn loss(&self, params: &[Tensor<2>]) -> LossValue {
        self.loss_at(params, 0)
    }

    /// The loss at `params` on the mini-batches of iteration `iteration` (0-based); the same
    /// as [`Problem::loss`] for a problem without `batch`.
    pub fn loss_at(&self, params: &[Tensor<2>], iteration: usize) -> LossValue {
        let counter = self.is_batched().then(|| self.ctx.scalar(iteration as f64));
        self.loss_drawn(params, counter.as_ref())
    }

    /// The loss at `params` on the mini-batches of the iteration that `counter` (a `[1, 1]`
    /// tensor on the device, a whole number) holds when it is read: what a training step uses,
    /// with the optimiser's step counter, so that a captured step draws the batches of every
    /// step it replays. `None` reads the first iteration's batches, as [`Problem::loss`] does;
    /// a problem without `batch` ignores the counter. In f32 the counter is exact up to 2²⁴
    /// iterations.
    pub fn loss_drawn(&self, params: &[Tensor<2>], counter: Option<&Tensor<2>>) -> LossValue {
        let unknowns = self.physical_unknowns(params);
        let values = Arc::new(DerivativeSet::values_only());
        let mut total: Option<Tensor<1>> = None;
        let mut components = Vec::new();
        let n = self.network_parameter_count();
        let picks = match (counter, self.is_batched()) {
            (_, false) => vec![None; self.passes.len()],
            (Some(counter), true) => self.draw_picks(counter),
            (None, true) => self.draw_picks(&self.ctx.scalar(0.0)),
        };
        // The drawn rows of each batched pass's pool (the other passes read their inputs).
        let drawn_inputs: Vec<Option<Tensor<2>>> = self
            .passes
            .iter()
            .zip(&picks)
            .map(|(p, pick)| {
                pick.as_ref()
                    .map(|rows| p.inputs.clone().select(0, rows.clone()))
            })
            .collect();
        let jets: Vec<Jet> = self
            .passes
            .iter()
            .zip(&drawn_inputs)
            .map(|(p, drawn)| {
                let inputs = drawn.as_ref().unwrap_or(&p.inputs);
                self.network.forward(&params[..n], inputs, &p.set)
            })
            .collect();
        for term in &self.terms {
            let (pass, rows) = &term.pass;
            let jet = restrict(jets[*pass].rows(rows.start, rows.end), &term.plan.network);
            // A batched term has its pass to itself (or shares it with terms at its very rows).
            let pick = picks[*pass].as_ref();
            let inputs = drawn_inputs[*pass].as_ref().unwrap_or(&term.inputs);
            let normals = term.normals.as_ref().map(|n| match pick {
                Some(rows) => n.clone().select(0, rows.clone()),
                None => n.clone(),
            });
            let env = self.environment(jet, inputs, &unknowns, normals, &term.plan);
            for (_, c) in &term.components {
                let diff = match c {
                    Component::Fit { quantity, target } => target.misfit(
                        match quantity {
                            Fitted::Field(field) => {
                                env.field(*field, Partial::VALUE, &values).into_value()
                            }
                            Fitted::Expression(e) => {
                                jet_value(e.eval(&env, &values), env.outputs[0].value())
                            }
                        },
                        pick,
                    ),
                    Component::Residual(r) => {
                        self.residuals[*r].value(&env, &values, env.outputs[0].value())
                    }
                    Component::Periodic(e) => {
                        let v = jet_value(e.eval(&env, &values), env.outputs[0].value());
                        let [rows, cols] = v.dims();
                        let half = rows / 2;
                        v.clone()
                            .slice([0..half, 0..cols])
                            .sub(v.slice([half..rows, 0..cols]))
                    }
                    Component::Irk {
                        field,
                        target,
                        rhs,
                        map,
                    } => {
                        let u = env.field(*field, Partial::VALUE, &values).into_value();
                        let f = self.residuals[*rhs].value(&env, &values, &u);
                        if self.ctx.plan().fused_irk() && f.dims() == u.dims() {
                            // One operation: the product, the misfit and its sum of squares.
                            let elements = u.dims().iter().product::<usize>();
                            let sum =
                                backend::irk_misfit(u, f, (**map).clone(), (**target).clone());
                            let reduced = match term.reduction {
                                Reduction::Mean => sum.div_scalar(elements as f64),
                                Reduction::Sum => sum,
                            };
                            total = Some(add_weighted(total, &reduced, term.weight));
                            components.push(reduced);
                            continue;
                        }
                        let [rows, cols] = f.dims();
                        let q = map.dims()[0];
                        let f = if cols > q {
                            f.slice([0..rows, 0..q])
                        } else {
                            f
                        };
                        u.add(f.matmul((**map).clone())).sub((**target).clone())
                    }
                };

                let sq = diff.clone().mul(diff);
                let reduced = match term.reduction {
                    Reduction::Mean => sq.mean(),
                    Reduction::Sum => sq.sum(),
                };
                total = Some(add_weighted(total, &reduced, term.weight));
                components.push(reduced);
            }
        }
        LossValue {
            total: total.expect("validated: at least one loss component"),
            components,
        }
    }
}
