//! The element types the CPU kernels run in (`f32`, `f64`) and the few operations they need
//! beyond arithmetic, with a fast `exp` for `f32`.

/// Floating-point element types the kernels run on.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::AddAssign
    + 'static
{
    /// Conversion from a constant.
    fn of(v: f64) -> Self;
    /// Widening to `f64` (sums of many terms are taken in it).
    fn to_f64(self) -> f64;
    /// `tanh`.
    fn tanh(self) -> Self;
    /// Logistic sigmoid.
    fn sigmoid(self) -> Self;
    /// Sine and cosine.
    fn sin_cos(self) -> (Self, Self);
}

impl Real for f64 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn sin_cos(self) -> (Self, Self) {
        f64::sin_cos(self)
    }
}

/// `eˣ` for `f32` without branches or calls, so that loops over it vectorise: round to
/// `n = x/ln 2`, a degree-7 Taylor polynomial on the reduced argument (error below 5e-9
/// relative) and the exponent put in by bits.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding and subtracting it rounds to an integer
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // max/min rather than clamp: they compile to vector min/max without NaN branches.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(87.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The low mantissa bits of `shifted` hold n as an integer (|n| ≤ 126).
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127)
        << 23;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(exponent)
}

impl Real for f32 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        1.0 - 2.0 / (exp_f32(2.0 * self) + 1.0)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + exp_f32(-self))
    }
    fn sin_cos(self) -> (Self, Self) {
        f32::sin_cos(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_in_f32() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = (x as f64).exp();
            let rel = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }
}
