//! Seeded random draws: Latin hypercube designs and subsets without replacement.

use rand::Rng;
use rand::seq::index::sample;

/// A seeded, portable random generator (ChaCha8): same draws on every platform.
pub type SeededRng = rand_chacha::ChaCha8Rng;

/// Creates the framework's generator from a seed.
pub fn rng_from_seed(seed: u64) -> SeededRng {
    use rand::SeedableRng;
    SeededRng::seed_from_u64(seed)
}

/// `n` points of a Latin hypercube in the box `[lower, upper]` (classic LHS: one point per
/// stratum on every axis, strata permuted independently, uniform within a stratum).
pub fn latin_hypercube(
    rng: &mut impl Rng,
    n: usize,
    lower: &[f64],
    upper: &[f64],
) -> Vec<Vec<f64>> {
    let dims = lower.len();
    let mut points = vec![vec![0.0; dims]; n];
    for d in 0..dims {
        let perm = sample(rng, n, n).into_vec();
        for (i, p) in points.iter_mut().enumerate() {
            let u: f64 = rng.random();
            let unit = (perm[i] as f64 + u) / n as f64;
            p[d] = lower[d] + (upper[d] - lower[d]) * unit;
        }
    }
    points
}

/// `k` distinct indices out of `0..n`, in random order.
pub fn choose(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    sample(rng, n, k.min(n)).into_vec()
}

/// A standard normal draw (Box-Muller; portable across versions of `rand_distr`).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    loop {
        let u1: f64 = rng.random();
        let u2: f64 = rng.random();
        if u1 > f64::MIN_POSITIVE {
            return (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lhs_puts_one_point_in_every_stratum() {
        let mut rng = rng_from_seed(7);
        let pts = latin_hypercube(&mut rng, 50, &[-1.0, 0.0], &[1.0, 2.0]);
        for d in 0..2 {
            let (lo, hi) = ([-1.0, 0.0][d], [1.0, 2.0][d]);
            let mut strata: Vec<usize> = pts
                .iter()
                .map(|p| (((p[d] - lo) / (hi - lo)) * 50.0).floor() as usize)
                .collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..50).collect::<Vec<_>>());
        }
    }

    #[test]
    fn choose_is_distinct_and_seeded() {
        let a = choose(&mut rng_from_seed(1), 100, 30);
        let b = choose(&mut rng_from_seed(1), 100, 30);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|&i| i < 100));
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = rng_from_seed(3);
        let v: Vec<f64> = (0..20000).map(|_| standard_normal(&mut rng)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
