//! Derivation of integer requantization parameters from real scales, exactly as TFLite/TFLM
//! computes them at prepare time (host side; the device only sees the integers).

use crate::model::LogSoftmaxParams;

/// TFLite `QuantizeMultiplier`: `m = q * 2^shift` with `q` a Q31 in [0.5, 1).
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    if m == 0.0 {
        return (0, 0);
    }
    let (q, mut shift) = frexp(m);
    // TfLiteRound is std::round: half away from zero, as f64::round.
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// `frexp`: `x = mantissa * 2^exp` with |mantissa| in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    if exp_bits == 0 {
        // Subnormal: normalise first.
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    let exp = exp_bits - 1022;
    let mantissa = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (mantissa, exp)
}

/// Integer parameters of an int8 ADD (TFLM `add_common`): inputs are shifted left by 20 bits,
/// scaled to twice the larger input scale, summed and rescaled to the output.
pub fn add_params(in1_scale: f32, in2_scale: f32, out_scale: f32) -> [(i32, i32); 3] {
    const LEFT_SHIFT: i32 = 20;
    let twice_max = 2.0 * f64::from(in1_scale.max(in2_scale));
    let real1 = f64::from(in1_scale) / twice_max;
    let real2 = f64::from(in2_scale) / twice_max;
    let real_out = twice_max / (f64::from(1u32 << LEFT_SHIFT) * f64::from(out_scale));
    [quantize_multiplier(real1), quantize_multiplier(real2), quantize_multiplier(real_out)]
}

/// Integer parameters of an int8 SOFTMAX (TFLM `CalculateSoftmaxParams`):
/// `(input_multiplier, input_left_shift, diff_min)`.
pub fn softmax_params(beta: f32, input_scale: f32) -> (i32, i32, i32) {
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    let max_real = (1u64 << 31) as f64 - 1.0;
    let real =
        (f64::from(beta) * f64::from(input_scale) * f64::from(1u32 << (31 - SCALED_DIFF_INTEGER_BITS))).min(max_real);
    let (multiplier, left_shift) = quantize_multiplier(real);
    let max_input_rescaled = f64::from((1i32 << SCALED_DIFF_INTEGER_BITS) - 1)
        * (1u64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / 2f64.powi(left_shift);
    let diff_min = -(max_input_rescaled.floor() as i32);
    (multiplier, left_shift, diff_min)
}

/// Integer parameters of an int8 LOG_SOFTMAX (TFLM `PreprocessLogSoftmaxScalingExp` with
/// beta 1): SOFTMAX's input scaling, and the multiplier and shift that undo it. `None` when
/// the input scale is too small for the scaling to have a left shift (TFLM's arithmetic
/// overflows there).
pub fn log_softmax_params(input_scale: f32) -> Option<LogSoftmaxParams> {
    let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, input_scale);
    if input_left_shift < 1 {
        return None;
    }
    let real_reverse = f64::from(1u32 << (31 - input_left_shift)) / f64::from(input_multiplier);
    let (reverse_multiplier, reverse_shift) = quantize_multiplier(real_reverse);
    Some(LogSoftmaxParams { input_multiplier, input_left_shift, reverse_multiplier, reverse_shift, diff_min })
}

/// TFLM's int8 LOGISTIC input scaling (`CalculateArithmeticOpData`): `input_scale * 2^27`
/// (Q4.27) split by `frexp` into a Q31 multiplier and a left shift, and the radius beyond
/// which the output saturates: `(multiplier, left_shift, radius)`.
pub fn logistic_params(input_scale: f32) -> (i32, i32, i32) {
    const INPUT_INTEGER_BITS: i32 = 4;
    let real = f64::from(input_scale) * f64::from(1u32 << (31 - INPUT_INTEGER_BITS));
    let (q, left_shift) = frexp(real);
    let multiplier = (q * (1i64 << 31) as f64).round() as i64 as i32;
    let max_input_rescaled = f64::from((1i32 << INPUT_INTEGER_BITS) - 1) * (1u64 << (31 - INPUT_INTEGER_BITS)) as f64
        / 2f64.powi(left_shift);
    (multiplier, left_shift, max_input_rescaled.floor() as i32)
}

/// TFLite's `DownScaleInt32ToInt16Multiplier`: a Q31 multiplier rounded to Q15.
pub fn q15_multiplier(q31: i32) -> i16 {
    const ROUNDING: i32 = 1 << 15;
    if q31 >= i32::MAX - ROUNDING {
        return i16::MAX;
    }
    ((q31 + ROUNDING) >> 16) as i16
}

/// TFLite's int8 HARD_SWISH parameters: `(output multiplier, output exponent, reluish
/// multiplier, reluish exponent)`, the multipliers Q15, from the input on a 128x finer scale
/// (scales divided in f32, as TFLite does).
pub fn hard_swish_params(input_scale: f32, output_scale: f32) -> (i16, i32, i16, i32) {
    let hires_input_scale = (1.0f32 / 128.0) * input_scale;
    let reluish_scale = 3.0f32 / 32768.0;
    let (output, output_exponent) = quantize_multiplier(f64::from(hires_input_scale / output_scale));
    let (reluish, reluish_exponent) = quantize_multiplier(f64::from(hires_input_scale / reluish_scale));
    (q15_multiplier(output), output_exponent, q15_multiplier(reluish), reluish_exponent)
}

/// TFLM's int8 MEAN requantization for `pixels` averaged values: the `input / output` scale
/// ratio quantized, then `1 / pixels` folded in by shifting the multiplier up by
/// `floor(log2(pixels))` (at most 32, and no further than a total right shift of 31; the
/// quantized shift is at least -31, so the fold is never negative) and dividing it by
/// `pixels`.
pub fn mean_params(input_scale: f32, output_scale: f32, pixels: u32) -> (i32, i32) {
    let (multiplier, shift) = quantize_multiplier(f64::from(input_scale) / f64::from(output_scale));
    let pixels = pixels.max(1);
    let fold = (31 - pixels.leading_zeros() as i32).min(32).min(31 + shift).max(0);
    let folded = (i64::from(multiplier) << fold) / i64::from(pixels);
    (folded as i32, shift - fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_matches_definition() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(0.1), (0.8, -3));
        assert_eq!(frexp(-3.0), (-0.75, 2));
    }

    #[test]
    fn quantize_multiplier_round_trips() {
        for m in [0.000_123, 0.0042, 0.37, 0.5, 0.999_999_999_9, 1.0, 3.3] {
            let (q, shift) = quantize_multiplier(m);
            assert!((1 << 30..=i32::MAX).contains(&q), "{m}: q = {q}");
            let back = q as f64 / 2f64.powi(31) * 2f64.powi(shift);
            assert!((back - m).abs() <= m * 1e-9, "{m} -> {back}");
        }
        // Rounds up to 2^31: renormalised with one more bit of shift.
        assert_eq!(quantize_multiplier(0.999_999_999_9), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
    }

    #[test]
    fn softmax_params_for_a_typical_logit_scale() {
        let (m, shift, diff_min) = softmax_params(1.0, 0.125);
        // 0.125 * 2^26 = 2^23 = 0.5 * 2^24.
        assert_eq!((m, shift), (1 << 30, 24));
        assert_eq!(diff_min, -((31.0 * 2f64.powi(26) / 2f64.powi(24)).floor() as i32));
    }
}
