//! Taylor-mode jets: a tensor together with its partial derivatives with respect to the
//! network inputs, propagated forward with ordinary Burn tensor operations.
//!
//! Every rule is written with differentiable tensor ops, so a jet computed inside Burn's
//! (first-order, reverse-mode) autodiff yields parameter gradients of any loss built from its
//! streams with a single backward pass. Streams that are identically zero are not stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::{FloatDType, Tensor};

use crate::partial::{DerivativeSet, Partial};

/// A value tensor `[points, columns]` and its derivative streams of the same shape.
#[derive(Clone, Debug)]
pub struct Jet {
    value: Tensor<2>,
    streams: BTreeMap<Partial, Tensor<2>>,
    set: Arc<DerivativeSet>,
}

/// Ways of splitting a multiset of positions into the factors of one Faà di Bruno term.
type Grouped = Vec<(usize, Vec<Partial>)>;

/// Set partitions of the positions of `partial`, grouped by the (sorted) sub-partials of their
/// blocks, with multiplicities: the terms of Faà di Bruno's formula.
pub(crate) fn faa_di_bruno_terms(partial: &Partial) -> Grouped {
    let n = partial.order();
    let mut groups: BTreeMap<Vec<Partial>, usize> = BTreeMap::new();
    // Enumerate set partitions by restricted growth strings.
    let mut labels = vec![0usize; n];
    loop {
        let blocks = labels.iter().copied().max().map_or(0, |m| m + 1);
        let mut parts: Vec<Partial> = (0..blocks)
            .map(|b| {
                let mask = labels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l == b)
                    .fold(0u32, |m, (i, _)| m | (1 << i));
                partial.select(mask)
            })
            .collect();
        parts.sort();
        *groups.entry(parts).or_insert(0) += 1;
        // Next restricted growth string.
        let mut i = n;
        loop {
            if i <= 1 {
                return groups.into_iter().map(|(k, c)| (c, k)).collect();
            }
            i -= 1;
            let max_prefix = labels[..i].iter().copied().max().unwrap_or(0);
            if labels[i] <= max_prefix {
                labels[i] += 1;
                for l in labels.iter_mut().skip(i + 1) {
                    *l = 0;
                }
                break;
            }
        }
    }
}

/// Splits of `partial` into two complementary sub-multisets with multiplicities: the terms of
/// the general Leibniz rule. The empty partial stands for the value.
fn leibniz_terms(partial: &Partial) -> Vec<(usize, Partial, Partial)> {
    let n = partial.order();
    let full = (1u32 << n) - 1;
    let mut groups: BTreeMap<(Partial, Partial), usize> = BTreeMap::new();
    for mask in 0..=full {
        let a = partial.select(mask);
        let b = partial.select(full & !mask);
        *groups.entry((a, b)).or_insert(0) += 1;
    }
    groups.into_iter().map(|((a, b), c)| (c, a, b)).collect()
}

fn scaled(t: Tensor<2>, count: usize) -> Tensor<2> {
    if count == 1 {
        t
    } else {
        t.mul_scalar(count as f64)
    }
}

fn accumulate(acc: Option<Tensor<2>>, term: Tensor<2>) -> Option<Tensor<2>> {
    Some(match acc {
        Some(a) => a.add(term),
        None => term,
    })
}

fn union(a: &Arc<DerivativeSet>, b: &Arc<DerivativeSet>) -> Arc<DerivativeSet> {
    if Arc::ptr_eq(a, b) || a == b || b.is_empty() {
        a.clone()
    } else if a.is_empty() {
        b.clone()
    } else {
        let mut s = (**a).clone();
        s.extend(b);
        Arc::new(s)
    }
}

impl Jet {
    /// A jet whose derivatives are all zero (a constant with respect to the inputs).
    pub fn constant(value: Tensor<2>) -> Self {
        Self {
            value,
            streams: BTreeMap::new(),
            set: Arc::new(DerivativeSet::values_only()),
        }
    }

    /// A jet from its value and non-zero streams; streams outside `set` are dropped.
    pub fn from_parts(
        value: Tensor<2>,
        streams: BTreeMap<Partial, Tensor<2>>,
        set: Arc<DerivativeSet>,
    ) -> Self {
        let streams = streams
            .into_iter()
            .filter(|(p, _)| set.contains(p) && !p.is_value())
            .collect();
        Self {
            value,
            streams,
            set,
        }
    }

    /// The value tensor.
    pub fn value(&self) -> &Tensor<2> {
        &self.value
    }

    /// Consumes the jet, returning its value.
    pub fn into_value(self) -> Tensor<2> {
        self.value
    }

    /// The partials this jet carries (zero streams included).
    pub fn derivative_set(&self) -> &Arc<DerivativeSet> {
        &self.set
    }

    /// The stored stream of a partial; `None` when it is identically zero or not propagated.
    pub fn stream(&self, partial: &Partial) -> Option<&Tensor<2>> {
        if partial.is_value() {
            Some(&self.value)
        } else {
            self.streams.get(partial)
        }
    }

    /// Whether the jet carries the partial (as a stored or an identically zero stream).
    pub fn carries(&self, partial: &Partial) -> bool {
        self.set.contains(partial)
    }

    /// The derivative `partial` as a tensor (zeros when identically zero).
    ///
    /// # Panics
    /// Panics if the partial was not propagated; callers size the derivative set from the
    /// residuals, so this is a bug, not a user error.
    pub fn derivative(&self, partial: &Partial) -> Tensor<2> {
        assert!(
            self.carries(partial),
            "partial {partial:?} was not propagated"
        );
        match self.stream(partial) {
            Some(t) => t.clone(),
            None => self.value.zeros_like(),
        }
    }

    /// The jet of the derivative `by` of this jet: a shift of the streams.
    pub fn differentiate(&self, by: &Partial) -> Jet {
        let set = Arc::new(self.set.shifted(by));
        let value = self.derivative(by);
        let streams = set
            .iter()
            .filter_map(|p| {
                let full = p.join(by)?;
                self.streams.get(&full).map(|t| (*p, t.clone()))
            })
            .collect();
        Jet {
            value,
            streams,
            set,
        }
    }

    /// Columns `start..end` of the value and every stream.
    pub fn columns(&self, start: usize, end: usize) -> Jet {
        self.map_linear(|t| {
            let [rows, cols] = t.dims();
            if start == 0 && end == cols {
                t
            } else {
                t.slice([0..rows, start..end])
            }
        })
    }

    /// Rows (points) `start..end` of the value and every stream: one loss term's share of a
    /// forward pass that served several.
    pub fn rows(&self, start: usize, end: usize) -> Jet {
        self.map_linear(|t| {
            let [rows, cols] = t.dims();
            if start == 0 && end == rows {
                t
            } else {
                t.slice([start..end, 0..cols])
            }
        })
    }

    /// Applies a function to every tensor of the jet (value and streams): for linear maps.
    pub fn map_linear(&self, f: impl Fn(Tensor<2>) -> Tensor<2>) -> Jet {
        Jet {
            value: f(self.value.clone()),
            streams: self
                .streams
                .iter()
                .map(|(p, t)| (*p, f(t.clone())))
                .collect(),
            set: self.set.clone(),
        }
    }

    /// Affine map `value · weight + bias`; derivative streams are multiplied by `weight` only.
    /// With `compute` (e.g. bf16 for mixed precision) the matrix products run in it and their
    /// results are cast back; the bias and everything after stay in the jet's own precision.
    pub fn affine_in(
        &self,
        weight: &Tensor<2>,
        bias: &Tensor<2>,
        compute: Option<FloatDType>,
    ) -> Jet {
        Jet {
            value: matmul_in(self.value.clone(), weight.clone(), compute).add(bias.clone()),
            streams: self
                .streams
                .iter()
                .map(|(p, t)| (*p, matmul_in(t.clone(), weight.clone(), compute)))
                .collect(),
            set: self.set.clone(),
        }
    }

    /// `f(self)` elementwise, given `f` and its first derivatives evaluated at the value:
    /// `derivs[k] = f^(k)(value)` for `k = 0..=max order` (Faà di Bruno's formula).
    ///
    /// `derivs` may be shorter than the highest order only if the missing derivatives are zero.
    pub fn compose(&self, derivs: &[Tensor<2>]) -> Jet {
        let mut streams = BTreeMap::new();
        for partial in self.set.iter() {
            let mut acc: Option<Tensor<2>> = None;
            for (count, factors) in faa_di_bruno_terms(partial) {
                let Some(outer) = derivs.get(factors.len()) else {
                    continue;
                };
                let Some(inner) = self.product_of(&factors) else {
                    continue;
                };
                acc = accumulate(acc, scaled(outer.clone().mul(inner), count));
            }
            if let Some(t) = acc {
                streams.insert(*partial, t);
            }
        }
        Jet {
            value: derivs[0].clone(),
            streams,
            set: self.set.clone(),
        }
    }

    /// Product of the given streams, `None` when one of them is identically zero.
    fn product_of(&self, factors: &[Partial]) -> Option<Tensor<2>> {
        let mut acc: Option<Tensor<2>> = None;
        for f in factors {
            let t = self.streams.get(f)?.clone();
            acc = Some(match acc {
                Some(a) => a.mul(t),
                None => t,
            });
        }
        acc
    }

    /// Sum of two jets (broadcasting over shapes as Burn does).
    pub fn add(&self, other: &Jet) -> Jet {
        self.zip_linear(other, |a, b| a.add(b), |b| b)
    }

    /// Difference of two jets.
    pub fn sub(&self, other: &Jet) -> Jet {
        self.zip_linear(other, |a, b| a.sub(b), |b| b.neg())
    }

    fn zip_linear(
        &self,
        other: &Jet,
        both: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
        only_right: impl Fn(Tensor<2>) -> Tensor<2>,
    ) -> Jet {
        let set = union(&self.set, &other.set);
        let mut streams = BTreeMap::new();
        for p in set.iter() {
            let t = match (self.streams.get(p), other.streams.get(p)) {
                (Some(a), Some(b)) => both(a.clone(), b.clone()),
                (Some(a), None) => a.clone(),
                (None, Some(b)) => only_right(b.clone()),
                (None, None) => continue,
            };
            streams.insert(*p, t);
        }
        Jet {
            value: both(self.value.clone(), other.value.clone()),
            streams,
            set,
        }
    }

    /// Product of two jets (general Leibniz rule).
    pub fn mul(&self, other: &Jet) -> Jet {
        let set = union(&self.set, &other.set);
        let mut streams = BTreeMap::new();
        for p in set.iter() {
            let mut acc = None;
            for (count, a, b) in leibniz_terms(p) {
                let (Some(x), Some(y)) = (self.stream(&a), other.stream(&b)) else {
                    continue;
                };
                acc = accumulate(acc, scaled(x.clone().mul(y.clone()), count));
            }
            if let Some(t) = acc {
                streams.insert(*p, t);
            }
        }
        Jet {
            value: self.value.clone().mul(other.value.clone()),
            streams,
            set,
        }
    }

    /// Quotient of two jets: `self · (1 / other)`.
    pub fn div(&self, other: &Jet) -> Jet {
        if other.streams.is_empty() {
            let denom = other.value.clone();
            return self.map_linear(|t| t.div(denom.clone()));
        }
        self.mul(&other.recip())
    }

    /// Negation.
    pub fn neg(&self) -> Jet {
        self.map_linear(|t| t.neg())
    }

    /// Adds a constant.
    pub fn add_scalar(&self, c: f64) -> Jet {
        let mut out = self.clone();
        out.value = out.value.add_scalar(c);
        out
    }

    /// Multiplies by a constant.
    pub fn mul_scalar(&self, c: f64) -> Jet {
        self.map_linear(|t| t.mul_scalar(c))
    }

    fn max_order(&self) -> usize {
        self.set.max_order()
    }

    /// Elementwise `1 / self`.
    pub fn recip(&self) -> Jet {
        let r = self.value.clone().recip();
        let mut derivs = vec![r.clone()];
        // d^k/dz^k z^-1 = (-1)^k k! z^-(k+1)
        let mut power = r.clone();
        let mut factor = 1.0;
        for k in 1..=self.max_order() {
            power = power.mul(r.clone());
            factor *= -(k as f64);
            derivs.push(power.clone().mul_scalar(factor));
        }
        self.compose(&derivs)
    }

    /// Elementwise integer power.
    pub fn powi(&self, n: i32) -> Jet {
        match n {
            0 => Jet::constant(self.value.ones_like()),
            1 => self.clone(),
            2 => self.mul(self),
            n if n < 0 => self.recip().powi(-n),
            n => {
                let order = self.max_order().min(n as usize);
                // z^(n-k) for k = 0..=order, computed by repeated products from z^(n-order).
                let base = self.value.clone();
                let lowest = n as usize - order;
                let mut low = if lowest == 0 {
                    base.ones_like()
                } else {
                    base.clone()
                };
                for _ in 1..lowest {
                    low = low.mul(base.clone());
                }
                let mut powers = vec![low.clone()]; // z^(n-order)
                for _ in 0..order {
                    let last = powers.last().cloned().unwrap_or_else(|| base.clone());
                    powers.push(last.mul(base.clone()));
                }
                // powers[j] = z^(n-order+j); f^(k) = n!/(n-k)! z^(n-k) = powers[order-k]
                let mut derivs = Vec::with_capacity(order + 1);
                let mut coeff = 1.0;
                for k in 0..=order {
                    if k > 0 {
                        coeff *= (n - k as i32 + 1) as f64;
                    }
                    derivs.push(powers[order - k].clone().mul_scalar(coeff));
                }
                self.compose(&derivs)
            }
        }
    }

    /// Elementwise real power `self^c` (the value must be positive for non-integer `c`).
    pub fn powf(&self, c: f64) -> Jet {
        if c.fract() == 0.0 && c.abs() < 64.0 {
            return self.powi(c as i32);
        }
        let mut derivs = Vec::new();
        let mut coeff = 1.0;
        for k in 0..=self.max_order() {
            if k > 0 {
                coeff *= c - (k as f64 - 1.0);
            }
            derivs.push(
                self.value
                    .clone()
                    .powf_scalar(c - k as f64)
                    .mul_scalar(coeff),
            );
        }
        self.compose(&derivs)
    }

    /// Elementwise `self^other` for a jet exponent: `exp(other · ln self)`.
    pub fn pow(&self, other: &Jet) -> Jet {
        other.mul(&self.ln()).exp()
    }

    /// Elementwise exponential.
    pub fn exp(&self) -> Jet {
        let e = self.value.clone().exp();
        self.compose(&vec![e; self.max_order() + 1])
    }

    /// Elementwise natural logarithm.
    pub fn ln(&self) -> Jet {
        let mut derivs = vec![self.value.clone().log()];
        if self.max_order() > 0 {
            let r = self.value.clone().recip();
            let mut power = r.clone();
            let mut factor = 1.0;
            for k in 1..=self.max_order() {
                if k > 1 {
                    power = power.mul(r.clone());
                    factor *= -((k - 1) as f64);
                }
                derivs.push(power.clone().mul_scalar(factor));
            }
        }
        self.compose(&derivs)
    }

    /// Elementwise square root.
    pub fn sqrt(&self) -> Jet {
        if self.set.is_empty() {
            return Jet::constant(self.value.clone().sqrt());
        }
        self.powf(0.5)
    }

    /// Elementwise sine.
    pub fn sin(&self) -> Jet {
        let s = self.value.clone().sin();
        let c = self.value.clone().cos();
        let cycle = [s.clone(), c.clone(), s.neg(), c.neg()];
        let derivs: Vec<_> = (0..=self.max_order())
            .map(|k| cycle[k % 4].clone())
            .collect();
        self.compose(&derivs)
    }

    /// Elementwise cosine.
    pub fn cos(&self) -> Jet {
        let s = self.value.clone().sin();
        let c = self.value.clone().cos();
        let cycle = [c.clone(), s.clone().neg(), c.neg(), s];
        let derivs: Vec<_> = (0..=self.max_order())
            .map(|k| cycle[k % 4].clone())
            .collect();
        self.compose(&derivs)
    }

    /// Elementwise hyperbolic tangent.
    pub fn tanh(&self) -> Jet {
        let t = tanh(self.value.clone());
        self.compose(&tanh_derivatives(t, self.max_order()))
    }

    /// Elementwise logistic sigmoid.
    pub fn sigmoid(&self) -> Jet {
        let s = burn::tensor::activation::sigmoid(self.value.clone());
        self.compose(&sigmoid_derivatives(s, self.max_order()))
    }

    /// Elementwise swish `z · sigmoid(z)`.
    pub fn swish(&self) -> Jet {
        let order = self.max_order();
        let s = burn::tensor::activation::sigmoid(self.value.clone());
        let sd = sigmoid_derivatives(s, order + 1);
        // (z σ)^(k) = k σ^(k-1) + z σ^(k)
        let derivs: Vec<_> = (0..=order)
            .map(|k| {
                let zs = self.value.clone().mul(sd[k].clone());
                if k == 0 {
                    zs
                } else {
                    zs.add(sd[k - 1].clone().mul_scalar(k as f64))
                }
            })
            .collect();
        self.compose(&derivs)
    }
}

/// `tanh(z)` as `2 σ(2z) − 1`.
///
/// Measured on the flex CPU backend: its `tanh` calls libm's scalar `tanhf` forward and again
/// in the backward pass (35 % of a Burgers training step), while `sigmoid` costs one `exp`
/// and its backward reuses the output.
pub fn tanh(z: Tensor<2>) -> Tensor<2> {
    burn::tensor::activation::sigmoid(z.mul_scalar(2.0))
        .mul_scalar(2.0)
        .add_scalar(-1.0)
}

/// `[tanh, tanh', tanh'', ...]` up to `order`, from `t = tanh(z)`.
pub fn tanh_derivatives(t: Tensor<2>, order: usize) -> Vec<Tensor<2>> {
    // With s = 1 - t², the derivatives are polynomials in t:
    // t' = s, t'' = -2 t s, t''' = -2 s (1 - 3 t²), t'''' = 8 t s (2 - 3 t²).
    let mut out = vec![t.clone()];
    if order == 0 {
        return out;
    }
    let t2 = t.clone().mul(t.clone());
    let s = t2.clone().neg().add_scalar(1.0);
    out.push(s.clone());
    if order >= 2 {
        out.push(t.clone().mul(s.clone()).mul_scalar(-2.0));
    }
    if order >= 3 {
        out.push(
            s.clone()
                .mul(t2.clone().mul_scalar(-3.0).add_scalar(1.0))
                .mul_scalar(-2.0),
        );
    }
    if order >= 4 {
        out.push(
            t.mul(s)
                .mul(t2.mul_scalar(-3.0).add_scalar(2.0))
                .mul_scalar(8.0),
        );
    }
    out
}

/// `[σ, σ', σ'', ...]` up to `order`, from `s = σ(z)`.
pub fn sigmoid_derivatives(s: Tensor<2>, order: usize) -> Vec<Tensor<2>> {
    // σ' = σ(1-σ) = p; with q = 1 - 2σ: σ'' = p q, σ''' = p (q² - 2p), σ'''' = p q (q² - 8p).
    let mut out = vec![s.clone()];
    if order == 0 {
        return out;
    }
    let p = s.clone().mul(s.clone().neg().add_scalar(1.0));
    let q = s.mul_scalar(-2.0).add_scalar(1.0);
    out.push(p.clone());
    if order >= 2 {
        out.push(p.clone().mul(q.clone()));
    }
    let q2 = q.clone().mul(q.clone());
    if order >= 3 {
        out.push(p.clone().mul(q2.clone().sub(p.clone().mul_scalar(2.0))));
    }
    if order >= 4 {
        out.push(p.clone().mul(q).mul(q2.sub(p.mul_scalar(8.0))));
    }
    out
}

/// `lhs · rhs`, computed in `compute` when given (both operands cast to it, the product cast
/// back to `lhs`'s dtype); the casts are differentiable, so gradients flow in the original
/// precision.
pub fn matmul_in(lhs: Tensor<2>, rhs: Tensor<2>, compute: Option<FloatDType>) -> Tensor<2> {
    match compute {
        Some(dtype) => {
            let original = lhs.dtype();
            lhs.cast(dtype).matmul(rhs.cast(dtype)).cast(original)
        }
        None => lhs.matmul(rhs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faa_di_bruno_third_order_pure() {
        let xxx = Partial::from_coords(&[0, 0, 0]).expect("order 3");
        let x = Partial::first(0);
        let xx = Partial::from_coords(&[0, 0]).expect("order 2");
        let terms = faa_di_bruno_terms(&xxx);
        // f' z_xxx + 3 f'' z_x z_xx + f''' z_x^3
        assert_eq!(terms.len(), 3);
        assert!(terms.contains(&(1, vec![xxx])));
        assert!(terms.contains(&(3, vec![x, xx])));
        assert!(terms.contains(&(1, vec![x, x, x])));
        let total: usize = terms.iter().map(|(c, _)| c).sum();
        assert_eq!(total, 5); // Bell number B3
        let four = Partial::from_coords(&[0, 1, 1, 2]).expect("order 4");
        let total: usize = faa_di_bruno_terms(&four).iter().map(|(c, _)| c).sum();
        assert_eq!(total, 15); // Bell number B4
    }

    #[test]
    fn leibniz_second_order_mixed() {
        let xt = Partial::from_coords(&[0, 1]).expect("order 2");
        let terms = leibniz_terms(&xt);
        assert_eq!(terms.len(), 4);
        let xx = Partial::from_coords(&[0, 0]).expect("order 2");
        let total: usize = leibniz_terms(&xx).iter().map(|(c, _, _)| c).sum();
        assert_eq!(total, 4);
        assert_eq!(leibniz_terms(&xx).len(), 3); // 1, 2, 1
    }
}
