//! The largest sizes a problem file may ask for: refused at load rather than failing (or
//! exhausting memory) deep inside a run.

/// Widest hidden layer a problem file may ask for.
pub const MAX_WIDTH: usize = 1 << 16;

/// Most network parameters a problem file may ask for (1 GiB of `f32` weights).
pub const MAX_PARAMETERS: usize = 1 << 28;

/// Most Runge-Kutta stages a discrete-time problem may ask for (the papers use up to 500).
pub const MAX_STAGES: usize = 1000;

/// Most points one point set may hold.
pub const MAX_POINTS: usize = 100_000_000;

/// Points of an even grid with `counts` points per input, or `None` past [`MAX_POINTS`] (or
/// past `usize`).
pub fn grid_points(counts: &[usize]) -> Option<usize> {
    counts
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_POINTS)
}
