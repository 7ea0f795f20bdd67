//! Which loss terms share a forward pass of the network.
//!
//! Every loss term needs the network's jet at its points. Run apart, each term pays a whole
//! forward and backward pass: on a GPU that is the same number of kernel launches for 100
//! boundary points as for 10,000 collocation points, and on the CPU a second round of small
//! matrix products. Terms at identical points (Navier-Stokes fits the data and the residual at
//! the same 5,000 points) need only one pass between them. On a GPU, terms at different points
//! also share one when stacking their rows costs little extra work, the union of their
//! derivative sets being propagated for all of them. On the CPU that stacking does not pay: a
//! pass over a few hundred points is cheap there, and each term's rows of the stacked jet cost a
//! slice and, in the backward pass, a zero-filled gradient of the whole stack (measured: the
//! discrete inverse problems 5-10 % slower stacked).

use std::ops::Range;

use pinn_core::DerivativeSet;

/// How much more work (rows times propagated streams) a shared pass may do than the passes it
/// replaces: the few hundred boundary rows that carry the collocation points' streams in a
/// merged pass cost far less than a pass of their own.
const MERGE_TOLERANCE: f64 = 1.1;

/// One loss term as the planner sees it: its points and the streams it needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TermPoints<'a> {
    /// Row-major coordinates, `rows × inputs`.
    pub coords: &'a [f64],
    /// Number of points.
    pub rows: usize,
    /// Derivative streams the term reads from the network.
    pub set: &'a DerivativeSet,
}

/// One forward pass: the stacked points of its terms and the union of their derivative sets.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PassPlan {
    /// Row-major coordinates of the stacked points.
    pub coords: Vec<f64>,
    /// Number of stacked points.
    pub rows: usize,
    /// Streams propagated for every row.
    pub set: DerivativeSet,
    /// Each member term (by index) and its rows in the pass, in term order.
    pub members: Vec<(usize, Range<usize>)>,
}

/// Terms at one set of points.
struct Block<'a> {
    coords: &'a [f64],
    rows: usize,
    set: DerivativeSet,
    terms: Vec<usize>,
}

/// Rows times propagated tensors (the value and each stream): the work of a pass.
fn work(rows: usize, set: &DerivativeSet) -> f64 {
    (rows * (set.len() + 1)) as f64
}

fn union(a: &DerivativeSet, b: &DerivativeSet) -> DerivativeSet {
    let mut u = a.clone();
    u.extend(b);
    u
}

/// Groups terms into forward passes: terms at identical points always share one; with `stack`,
/// a group of points joins a pass when the shared pass does at most [`MERGE_TOLERANCE`] times
/// the work of the two apart. Passes and their members follow the terms' order, largest block
/// first.
pub(crate) fn plan_passes(terms: &[TermPoints<'_>], stack: bool) -> Vec<PassPlan> {
    let mut blocks: Vec<Block<'_>> = Vec::new();
    for (index, term) in terms.iter().enumerate() {
        match blocks
            .iter_mut()
            .find(|b| b.rows == term.rows && b.coords == term.coords)
        {
            Some(block) => {
                block.set.extend(term.set);
                block.terms.push(index);
            }
            None => blocks.push(Block {
                coords: term.coords,
                rows: term.rows,
                set: term.set.clone(),
                terms: vec![index],
            }),
        }
    }
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by(|&a, &b| {
        let (wa, wb) = (
            work(blocks[a].rows, &blocks[a].set),
            work(blocks[b].rows, &blocks[b].set),
        );
        wb.total_cmp(&wa).then(a.cmp(&b))
    });

    // Each pass: its blocks, rows and set.
    let mut passes: Vec<(Vec<usize>, usize, DerivativeSet)> = Vec::new();
    for b in order {
        let block = &blocks[b];
        let joined = if stack {
            passes.iter_mut().find(|(_, rows, set)| {
                let shared = work(rows + block.rows, &union(set, &block.set));
                let apart = work(*rows, set) + work(block.rows, &block.set);
                shared <= MERGE_TOLERANCE * apart
            })
        } else {
            None
        };
        match joined {
            Some((members, rows, set)) => {
                members.push(b);
                *rows += block.rows;
                set.extend(&block.set);
            }
            None => passes.push((vec![b], block.rows, block.set.clone())),
        }
    }

    let mut plans: Vec<PassPlan> = passes
        .into_iter()
        .map(|(members, rows, set)| {
            let mut coords = Vec::new();
            let mut placed = Vec::new();
            let mut start = 0;
            for b in members {
                let block = &blocks[b];
                let range = start..start + block.rows;
                start = range.end;
                coords.extend_from_slice(block.coords);
                placed.extend(block.terms.iter().map(|&t| (t, range.clone())));
            }
            placed.sort_by_key(|(t, _)| *t);
            PassPlan {
                coords,
                rows,
                set,
                members: placed,
            }
        })
        .collect();
    plans.sort_by_key(|p| p.members.first().map_or(usize::MAX, |(t, _)| *t));
    plans
}

#[cfg(test)]
mod tests {
    use pinn_core::Partial;

    use super::*;

    fn set(partials: &[&[usize]]) -> DerivativeSet {
        DerivativeSet::closure_of(
            partials
                .iter()
                .map(|c| Partial::from_coords(c).expect("valid partial")),
        )
    }

    fn grid(rows: usize, offset: f64) -> Vec<f64> {
        (0..rows).flat_map(|i| [i as f64 + offset, 0.5]).collect()
    }

    fn term<'a>(coords: &'a [f64], set: &'a DerivativeSet) -> TermPoints<'a> {
        TermPoints {
            coords,
            rows: coords.len() / 2,
            set,
        }
    }

    #[test]
    fn terms_at_the_same_points_share_one_pass_and_all_its_rows() {
        let points = grid(1000, 0.0);
        let first = set(&[&[0], &[1]]);
        let third = set(&[&[0, 0, 1], &[1, 1, 1], &[0, 1]]);
        for stack in [false, true] {
            let passes = plan_passes(&[term(&points, &first), term(&points, &third)], stack);
            assert_eq!(passes.len(), 1);
            assert_eq!(passes[0].rows, 1000);
            assert_eq!(passes[0].coords, points);
            assert_eq!(passes[0].set, union(&first, &third));
            assert_eq!(passes[0].members, [(0, 0..1000), (1, 0..1000)]);
        }
    }

    #[test]
    fn stacked_a_few_value_points_ride_along_with_the_collocation_points() {
        let boundary = grid(100, -7.0);
        let collocation = grid(10_000, 0.25);
        let none = DerivativeSet::values_only();
        let burgers = set(&[&[0, 0], &[1]]);
        let terms = [term(&boundary, &none), term(&collocation, &burgers)];
        let passes = plan_passes(&terms, true);
        assert_eq!(passes.len(), 1);
        let pass = &passes[0];
        assert_eq!(pass.rows, 10_100);
        assert_eq!(pass.set, burgers);
        // The larger block comes first; each term's range holds its own coordinates.
        assert_eq!(pass.members, [(0, 10_000..10_100), (1, 0..10_000)]);
        assert_eq!(pass.coords[..20_000], collocation[..]);
        assert_eq!(pass.coords[20_000..], boundary[..]);

        let apart = plan_passes(&terms, false);
        assert_eq!(apart.len(), 2);
        assert_eq!(apart[0].members, [(0, 0..100)]);
        assert_eq!(apart[0].coords, boundary);
        assert_eq!(apart[1].members, [(1, 0..10_000)]);
        assert_eq!(apart[1].set, burgers);
    }

    #[test]
    fn many_value_points_do_not_carry_a_small_terms_high_order_streams() {
        let data = grid(10_000, 0.0);
        let collocation = grid(100, 0.5);
        let none = DerivativeSet::values_only();
        let third = set(&[&[0, 0, 0], &[1]]);
        let passes = plan_passes(&[term(&data, &none), term(&collocation, &third)], true);
        assert_eq!(passes.len(), 2);
        assert_eq!(passes[0].members, [(0, 0..10_000)]);
        assert_eq!(passes[0].set, none);
        assert_eq!(passes[1].members, [(1, 0..100)]);
        assert_eq!(passes[1].coords, collocation);
    }
}
