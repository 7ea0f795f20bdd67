//! Multi-indices of partial derivatives with respect to the network's input coordinates.

use std::collections::BTreeSet;
use std::fmt;

/// Highest derivative order the jet engine propagates.
///
/// Third order covers every benchmark (KdV's `u_xxx`, Navier-Stokes' `psi_xxy`); the fourth
/// leaves room for beam and biharmonic equations.
pub const MAX_ORDER: usize = 4;

/// A partial derivative: a multiset of input-coordinate indices, kept sorted.
///
/// `Partial::from_coords(&[0, 0])` is the second derivative with respect to coordinate 0.
/// The empty partial is the value itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Partial {
    len: u8,
    coords: [u8; MAX_ORDER],
}

impl Partial {
    /// The empty multi-index (the value itself).
    pub const VALUE: Partial = Partial {
        len: 0,
        coords: [0; MAX_ORDER],
    };

    /// Builds a partial from coordinate indices in any order; `None` if the order exceeds
    /// [`MAX_ORDER`].
    pub fn from_coords(coords: &[usize]) -> Option<Self> {
        if coords.len() > MAX_ORDER || coords.iter().any(|&c| c > u8::MAX as usize) {
            return None;
        }
        let mut out = Partial::VALUE;
        for &c in coords {
            out.coords[out.len as usize] = c as u8;
            out.len += 1;
        }
        out.coords[..out.len as usize].sort_unstable();
        Some(out)
    }

    /// First derivative with respect to one coordinate.
    pub fn first(coord: usize) -> Self {
        Self::from_coords(&[coord]).expect("order one is always representable")
    }

    /// Derivative order (number of coordinates).
    pub fn order(&self) -> usize {
        self.len as usize
    }

    /// The sorted coordinate indices.
    pub fn coords(&self) -> &[u8] {
        &self.coords[..self.len as usize]
    }

    /// Whether this is the value (order zero).
    pub fn is_value(&self) -> bool {
        self.len == 0
    }

    /// The partial of both derivatives taken one after the other; `None` past [`MAX_ORDER`].
    pub fn join(&self, other: &Partial) -> Option<Partial> {
        let all: Vec<usize> = self
            .coords()
            .iter()
            .chain(other.coords())
            .map(|&c| c as usize)
            .collect();
        Self::from_coords(&all)
    }

    /// Removes one occurrence of each coordinate of `other`; `None` if `other` is not contained.
    pub fn strip(&self, other: &Partial) -> Option<Partial> {
        let mut rest: Vec<usize> = self.coords().iter().map(|&c| c as usize).collect();
        for &c in other.coords() {
            let pos = rest.iter().position(|&r| r == c as usize)?;
            rest.remove(pos);
        }
        Self::from_coords(&rest)
    }

    /// The sub-partial made of the coordinates at the given positions (a bit mask).
    pub(crate) fn select(&self, mask: u32) -> Partial {
        let coords: Vec<usize> = (0..self.order())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| self.coords[i] as usize)
            .collect();
        Self::from_coords(&coords).expect("a sub-multiset is never longer")
    }

    /// Every non-empty sub-multiset, this one included.
    pub fn sub_partials(&self) -> Vec<Partial> {
        let n = self.order();
        let mut out: BTreeSet<Partial> = BTreeSet::new();
        for mask in 1..(1u32 << n) {
            out.insert(self.select(mask));
        }
        out.into_iter().collect()
    }

    /// Writes the partial with coordinate names, e.g. `xxt`.
    pub fn display_with<'a>(&'a self, names: &'a [String]) -> impl fmt::Display + 'a {
        struct D<'a>(&'a Partial, &'a [String]);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for &c in self.0.coords() {
                    match self.1.get(c as usize) {
                        Some(n) => f.write_str(n)?,
                        None => write!(f, "#{c}")?,
                    }
                }
                Ok(())
            }
        }
        D(self, names)
    }
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{:?}", self.coords())
    }
}

/// A set of partial derivatives closed under taking sub-multisets (the value is implicit).
///
/// Taylor-mode propagation of `u_xx` needs `u_x` too; the closure makes that automatic, and
/// only what a problem asks for is ever propagated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DerivativeSet {
    partials: BTreeSet<Partial>,
}

impl DerivativeSet {
    /// The empty set: values only.
    pub fn values_only() -> Self {
        Self::default()
    }

    /// The closure of the given partials.
    pub fn closure_of<I: IntoIterator<Item = Partial>>(partials: I) -> Self {
        let mut set = Self::default();
        for p in partials {
            set.insert(p);
        }
        set
    }

    /// Adds a partial and all its sub-partials.
    pub fn insert(&mut self, partial: Partial) {
        if partial.is_value() {
            return;
        }
        for p in partial.sub_partials() {
            self.partials.insert(p);
        }
    }

    /// Adds every partial of another set.
    pub fn extend(&mut self, other: &DerivativeSet) {
        self.partials.extend(other.partials.iter().copied());
    }

    /// Whether the partial is in the set (the value always is).
    pub fn contains(&self, partial: &Partial) -> bool {
        partial.is_value() || self.partials.contains(partial)
    }

    /// The partials, ordered by order then coordinates.
    pub fn iter(&self) -> impl Iterator<Item = &Partial> {
        let mut v: Vec<&Partial> = self.partials.iter().collect();
        v.sort_by_key(|p| (p.order(), **p));
        v.into_iter()
    }

    /// Number of derivative streams (the value not counted).
    pub fn len(&self) -> usize {
        self.partials.len()
    }

    /// Whether only values are propagated.
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }

    /// Highest order in the set.
    pub fn max_order(&self) -> usize {
        self.partials.iter().map(Partial::order).max().unwrap_or(0)
    }

    /// The set `{ a : a + by ∈ self }`: what remains available after differentiating by `by`.
    pub fn shifted(&self, by: &Partial) -> DerivativeSet {
        let partials = self
            .partials
            .iter()
            .filter_map(|p| p.strip(by))
            .filter(|p| !p.is_value())
            .collect();
        DerivativeSet { partials }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_contains_all_sub_partials() {
        let xxt = Partial::from_coords(&[1, 0, 0]).expect("order 3");
        let set = DerivativeSet::closure_of([xxt]);
        let names: Vec<String> = ["x", "t"].iter().map(|s| s.to_string()).collect();
        let got: Vec<String> = set
            .iter()
            .map(|p| p.display_with(&names).to_string())
            .collect();
        assert_eq!(got, ["x", "t", "xx", "xt", "xxt"]);
    }

    #[test]
    fn join_strip_and_shift() {
        let x = Partial::first(0);
        let y = Partial::first(1);
        let xy = x.join(&y).expect("order 2");
        assert_eq!(xy.strip(&y), Some(x));
        assert_eq!(x.strip(&y), None);
        let set = DerivativeSet::closure_of([Partial::from_coords(&[0, 0, 1]).expect("3")]);
        let shifted = set.shifted(&y);
        assert_eq!(
            shifted,
            DerivativeSet::closure_of([Partial::from_coords(&[0, 0]).expect("2")])
        );
        assert!(Partial::from_coords(&[0; MAX_ORDER + 1]).is_none());
    }
}
