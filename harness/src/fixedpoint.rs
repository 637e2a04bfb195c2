//! TFLite / gemmlowp fixed-point arithmetic, bit for bit.
//!
//! Everything here is integer-only and `no_std`: it runs inside kernels on the device. The
//! functions mirror the semantics of TFLite's reference kernels (non single-rounding build,
//! which is what TFLM ships), including where they saturate and how they round ties.

/// `(a * b * 2) >> 32` with rounding to nearest (ties toward +inf) and saturation of the
/// single overflowing case `i32::MIN * i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // i64 division truncates toward zero, as C++ does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Arithmetic right shift by `exponent` rounding to nearest, ties away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// Multiplies by `multiplier * 2^shift` (multiplier a Q31 in [0.5, 1)): TFLite's
/// `MultiplyByQuantizedMultiplier` as used by CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left), multiplier), right)
}

/// Saturating `x * 2^exponent` for a positive exponent, rounding shift for a negative one
/// (gemmlowp `SaturatingRoundingMultiplyByPOT`).
#[inline]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// gemmlowp `RoundingHalfSum`: `(a + b) / 2` rounded away from zero.
#[inline]
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// Fixed-point multiply of raw Q values (`FixedPoint<a> * FixedPoint<b>`).
#[inline]
fn fmul(a: i32, b: i32) -> i32 {
    saturating_rounding_doubling_high_mul(a, b)
}

/// `exp(x)` for `x` in [-1/4, 0), input and output Q0.31.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_OVER_3: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = fmul(x, x);
    let x3 = fmul(x2, x);
    let x4 = fmul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let poly = saturating_rounding_multiply_by_pot(fmul(x4_over_4.wrapping_add(x3), ONE_OVER_3).wrapping_add(x2), -1);
    CONSTANT_TERM.wrapping_add(fmul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp `exp_on_negative_values` for a Q5.26 input (5 integer bits, as TFLite's int8
/// SOFTMAX uses); returns Q0.31.
pub fn exp_on_negative_values_q5(a: i32) -> i32 {
    exp_on_negative_values(a, 5)
}

/// gemmlowp `exp_on_negative_values` for an input with `integer_bits` integer bits (1..=5);
/// returns Q0.31.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_multiply_by_pot(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) multipliers for k = -2..=4, applied for each set bit of the remainder.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent && remainder & (1 << (fractional_bits + exponent)) != 0 {
            result = fmul(result, multiplier);
        }
    }
    if a == 0 {
        i32::MAX
    } else {
        result
    }
}

/// gemmlowp `logistic` of a Q4.27 input; returns Q0.31 (`1 / (1 + exp(-x))`).
pub fn logistic_q4(a: i32) -> i32 {
    if a == 0 {
        return 1 << 30; // one half
    }
    let positive = a > 0;
    let abs = if positive { a } else { a.wrapping_neg() };
    let on_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(abs.wrapping_neg(), 4));
    if positive {
        on_positive
    } else {
        i32::MAX.wrapping_sub(on_positive)
    }
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1`: Newton-Raphson reciprocal, Q0.31 in and out.
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const F2_ONE: i32 = 1 << 29;
    const C48_OVER_17: i32 = 1_515_870_810;
    const CNEG32_OVER_17: i32 = -1_010_580_540;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = C48_OVER_17.wrapping_add(fmul(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = fmul(half_denominator, x);
        let one_minus = F2_ONE.wrapping_sub(half_denominator_times_x);
        // F2 * F2 = F4, rescaled to F2.
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(fmul(x, one_minus), 2));
    }
    // ExactMulByPot<-1> turns F2 into F1 (same raw); rescaling F1 to F0 shifts left by one.
    saturating_rounding_multiply_by_pot(x, 1)
}

/// TFLite's `log_x_for_x_greater_than_or_equal_to_1`: the natural log of `x >= 1` given in
/// Q`in_bits`, as Q`out_bits` (a rational approximation after splitting off the power of two).
pub fn log_x_ge_1(x: i32, in_bits: i32, out_bits: i32) -> i32 {
    const LOG_2: i32 = 1_488_522_236;
    const SQRT_SQRT_HALF: i32 = 1_805_811_301;
    const SQRT_HALF: i32 = 1_518_500_250;
    const ONE_QUARTER: i32 = 536_870_912;
    const ALPHA_N: i32 = 117_049_297;
    const ALPHA_D: i32 = 127_690_142;
    const ALPHA_I: i32 = 1_057_819_769;
    const ALPHA_F: i32 = 638_450_708;
    let mul = saturating_rounding_doubling_high_mul;
    let pot = saturating_rounding_multiply_by_pot;
    // One more integer bit than the output, so that the power-of-two term cannot saturate.
    let accum_bits = out_bits + 1;
    let quarter = pot(ONE_QUARTER, -accum_bits);
    // x = 2^k * r with r in [sqrt(1/2), sqrt(2)): two candidate splits, the tighter one wins.
    let a_headroom_plus_1 = (x as u32).leading_zeros() as i32;
    let r_a = pot(mul(pot(x, a_headroom_plus_1 - 1), SQRT_HALF), 1);
    let a_pow2 = pot(in_bits - a_headroom_plus_1, 31 - accum_bits).saturating_add(quarter);
    let b_headroom = (mul(x, SQRT_HALF) as u32).leading_zeros() as i32 - 1;
    let r_b = pot(x, b_headroom);
    let b_pow2 = pot(in_bits - b_headroom, 31 - accum_bits).saturating_sub(quarter);
    let (r, pow2) = (r_a.min(r_b), a_pow2.max(b_pow2));
    let p = rounding_half_sum(r, SQRT_SQRT_HALF);
    let q = r.wrapping_sub(SQRT_SQRT_HALF);
    let q = q.wrapping_add(q);
    let q2 = mul(q, q);
    let num = mul(q, r).wrapping_add(mul(mul(q, q2), ALPHA_N));
    let denom_minus_one = mul(p, ALPHA_I.wrapping_add(q).wrapping_add(mul(ALPHA_D, q2))).wrapping_add(mul(ALPHA_F, q));
    let recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one);
    let sum = mul(pow2, LOG_2).wrapping_add(mul(pot(num, -accum_bits), recip_denom));
    pot(sum, accum_bits - out_bits)
}

/// TFLite `GetReciprocal`: the Q0.31 reciprocal of a Q`x_integer_digits` sum and the number
/// of bits by which the sum exceeds one.
pub fn reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one = ((x as u32) << headroom_plus_one).wrapping_sub(1 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_high_mul_rounds_and_saturates() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 0.5 * 0.5 = 0.25 in Q31.
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // Ties round up (toward +inf), as gemmlowp's nudge does: 1.5 -> 2, -1.5 -> -1.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
    }

    #[test]
    fn rounding_shift_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(123, 0), 123);
    }

    #[test]
    fn quantized_multiplier_matches_real_product() {
        // 0.75 * 2^-3 = 0.09375: 1000 * 0.09375 = 93.75 -> 94.
        let m = (0.75f64 * (1u64 << 31) as f64) as i32;
        assert_eq!(multiply_by_quantized_multiplier(1000, m, -3), 94);
        assert_eq!(multiply_by_quantized_multiplier(-1000, m, -3), -94);
        // Positive shift: 0.75 * 4 = 3.
        assert_eq!(multiply_by_quantized_multiplier(7, m, 2), 21);
    }

    #[test]
    fn exp_is_close_to_real_exp() {
        for i in 0..200 {
            let x = -(i as f64) * 0.1;
            let raw = (x * (1 << 26) as f64) as i32;
            let got = exp_on_negative_values_q5(raw) as f64 / 2f64.powi(31);
            assert!((got - x.exp()).abs() < 2e-6, "exp({x}) = {got}");
        }
        assert_eq!(exp_on_negative_values_q5(0), i32::MAX);
    }

    #[test]
    fn log_is_close_to_real_log() {
        for x in [1.0f64, 1.01, 1.5, 2.0, 2.5, 7.3, 100.0, 1000.0, 4000.0] {
            let raw = (x * (1 << 19) as f64) as i32; // Q12.19
            let got = log_x_ge_1(raw, 12, 5) as f64 / 2f64.powi(26);
            assert!((got - x.ln()).abs() < 1e-5, "ln({x}) = {got}");
        }
    }

    #[test]
    fn reciprocal_is_close_to_real_reciprocal() {
        for sum in [1.0f64, 1.5, 2.0, 3.7, 10.0, 100.5, 2047.0] {
            let raw = (sum * (1 << 19) as f64) as i32; // Q12.19
            let (scale, bits) = reciprocal(raw, 12);
            let got = scale as f64 / 2f64.powi(31) / 2f64.powi(bits);
            assert!((got - 1.0 / sum).abs() < 1e-6 / sum, "1/{sum} = {got}");
        }
    }
}
