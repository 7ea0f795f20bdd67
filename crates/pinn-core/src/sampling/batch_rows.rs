//! The rows of a mini-batch: a keyed pseudo-random permutation of a pool's rows, read at
//! `0..batch`.
//!
//! A batch of `b` rows out of a pool of `n` is the image of `0..b` under a permutation of
//! `0..n` chosen by a key, so its rows are distinct, and the row at batch position `i` is one
//! function evaluation with no state: a device kernel can compute every position in parallel
//! from the key, and a captured step can derive the key from an iteration counter kept in device
//! memory. The permutation is a balanced Feistel network of [`ROUNDS`] rounds over the smallest
//! power of four at least `n` (each half `h` bits), made a permutation of `0..n` by cycle-walking
//! (re-applied until the value falls inside the pool: fewer than four applications on average).
//! Everything is 32-bit unsigned arithmetic that wraps, the same on the host and on a GPU.

/// Feistel rounds: four rounds of a well-mixing round function make a pseudo-random
/// permutation (Luby-Rackoff).
pub const ROUNDS: usize = 4;

/// A 32-bit integer hash with good avalanche ("lowbias32", from Chris Wellons' hash prospector):
/// the round function and the key schedule.
pub const fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Bits of each half of the Feistel network for a pool of `pool` rows: the smallest `h >= 1`
/// with `4^h >= pool`.
pub const fn half_bits(pool: u32) -> u32 {
    let bits = if pool <= 1 {
        0
    } else {
        u32::BITS - (pool - 1).leading_zeros()
    };
    let h = bits.div_ceil(2);
    if h == 0 { 1 } else { h }
}

/// The key of one stream of draws (one point set of a run): the run's seed and the stream's
/// number folded to 32 bits. Each iteration's key is derived from it and the iteration
/// ([`BatchRows::new`]).
pub fn stream_key(seed: u64, stream: u64) -> u32 {
    let fold = |x: u64| mix32(x as u32 ^ mix32((x >> 32) as u32));
    mix32(fold(seed) ^ mix32(fold(stream).wrapping_add(0x9e37_79b9)))
}

/// The rows that one draw (one iteration of one point set) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRows {
    pool: u32,
    half_bits: u32,
    keys: [u32; ROUNDS],
}

impl BatchRows {
    /// The draw of iteration `counter` from the stream `stream_key` over a pool of `pool` rows
    /// (at most `u32::MAX`).
    pub fn new(pool: usize, stream_key: u32, counter: u32) -> Self {
        assert!(
            (1..=u32::MAX as usize).contains(&pool),
            "a pool of {pool} rows"
        );
        let pool = pool as u32;
        let half_bits = half_bits(pool);
        let base = mix32(stream_key ^ mix32(counter));
        let keys = std::array::from_fn(|r| {
            mix32(base.wrapping_add((r as u32 + 1).wrapping_mul(0x9e37_79b9)))
        });
        Self {
            pool,
            half_bits,
            keys,
        }
    }

    /// The pool row at batch position `position` (< pool): distinct positions give distinct
    /// rows.
    pub fn row(&self, position: u32) -> u32 {
        debug_assert!(position < self.pool);
        let mut x = self.permute(position);
        while x >= self.pool {
            x = self.permute(x);
        }
        x
    }

    /// The rows at positions `0..batch`.
    pub fn rows(&self, batch: usize) -> Vec<usize> {
        (0..batch as u32).map(|i| self.row(i) as usize).collect()
    }

    /// One pass of the Feistel network over `0..4^half_bits`.
    fn permute(&self, x: u32) -> u32 {
        let mask = (1u32 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let next = left ^ (mix32(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pool_size_is_permuted() {
        for pool in [1, 2, 3, 4, 5, 15, 16, 17, 100, 1000, 4097] {
            let draw = BatchRows::new(pool, stream_key(7, 1), 3);
            let mut rows = draw.rows(pool);
            rows.sort_unstable();
            assert_eq!(rows, (0..pool).collect::<Vec<_>>(), "pool {pool}");
        }
    }

    #[test]
    fn draws_repeat_for_a_key_and_differ_between_keys() {
        let rows = |seed, stream, counter| {
            BatchRows::new(10_000, stream_key(seed, stream), counter).rows(16)
        };
        assert_eq!(rows(1, 2, 3), rows(1, 2, 3));
        assert_ne!(rows(1, 2, 3), rows(1, 2, 4));
        assert_ne!(rows(1, 2, 3), rows(1, 3, 3));
        assert_ne!(rows(1, 2, 3), rows(2, 2, 3));
        assert_ne!(rows(1, 2, 3), rows(1 << 40, 2, 3));
    }

    #[test]
    fn rows_are_spread_evenly_over_the_pool() {
        // 2,000 draws of 100 rows of 1,000: each row is drawn about 200 times (binomial,
        // standard deviation 13.4); the extremes lie within 6 standard deviations.
        let key = stream_key(1234, 0);
        let mut counts = vec![0u32; 1000];
        for counter in 0..2000 {
            for r in BatchRows::new(1000, key, counter).rows(100) {
                counts[r] += 1;
            }
        }
        let (lo, hi) = (
            *counts.iter().min().expect("rows"),
            *counts.iter().max().expect("rows"),
        );
        assert!(lo > 120 && hi < 280, "counts in [{lo}, {hi}]");
        // And the first position is not biased towards any part of the pool.
        let firsts: Vec<usize> = (0..4000)
            .map(|c| BatchRows::new(1000, key, c).row(0) as usize)
            .collect();
        let low_half = firsts.iter().filter(|&&r| r < 500).count();
        assert!(
            (1800..2200).contains(&low_half),
            "{low_half} of 4000 in the lower half"
        );
    }
}
