//! Portable reference kernels: straight loops, TFLite (TFLM reference) arithmetic bit for bit.

use super::{AddArgs, Broadcast, ConvArgs, FcArgs, MulArgs, PadArgs, PoolArgs, View, ViewMut};
use crate::fixedpoint::{
    exp_on_negative_values_q5, log_x_ge_1, logistic_q4, multiply_by_quantized_multiplier, reciprocal,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
use crate::model::{
    ActivationParams, Clamp, HardSwishParams, LogSoftmaxParams, LogisticParams, MeanParams, PreluParams, ResizeParams,
    SoftmaxParams,
};
use crate::plan::Region;

#[inline]
fn clamp(v: i32, c: Clamp) -> i8 {
    v.clamp(i32::from(c.min), i32::from(c.max)) as i8
}

/// Input rows/columns `[lo, hi)` of the window of output `o` that fall inside the tensor
/// (the rest is padding and contributes nothing), as kernel offsets.
#[inline]
pub(crate) fn window_range(o: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (isize, usize, usize) {
    let origin = (o * stride) as isize - pad as isize;
    let lo = (-origin).max(0) as usize;
    let hi = (size as isize - origin).clamp(0, kernel as isize) as usize;
    (origin, lo, hi)
}

/// Runs `f(oy, ox, out_pixel)` over every pixel of `compute`.
#[inline]
fn for_each_output(out: &mut ViewMut, compute: Region, mut f: impl FnMut(usize, usize, &mut [i8])) {
    for oy in compute.y0 as usize..(compute.y0 + compute.h) as usize {
        for ox in compute.x0 as usize..(compute.x0 + compute.w) as usize {
            f(oy, ox, out.pixel_mut(oy, ox));
        }
    }
}

#[inline]
fn requantize(acc: i32, a: &ConvArgs, oc: usize) -> i8 {
    let bias = a.bias.get(oc).copied().unwrap_or(0);
    let v = multiply_by_quantized_multiplier(acc + bias, a.multiplier[oc], a.shift[oc]);
    clamp(v + a.output_offset, a.clamp)
}

/// CONV_2D, per-channel requantization. Filter OHWI.
pub fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let ic = input.c;
    for_each_output(out, compute, |oy, ox, px| {
        let (iy0, ky_lo, ky_hi) = window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        let (ix0, kx_lo, kx_hi) = window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
        for (oc, o) in px.iter_mut().enumerate() {
            let mut acc = 0i32;
            for ky in ky_lo..ky_hi {
                let iy = (iy0 + ky as isize) as usize;
                for kx in kx_lo..kx_hi {
                    let ix = (ix0 + kx as isize) as usize;
                    let x = input.pixel(iy, ix);
                    let w = &a.filter[((oc * a.kh + ky) * a.kw + kx) * ic..][..ic];
                    for (&xv, &wv) in x.iter().zip(w) {
                        acc += i32::from(wv) * (i32::from(xv) + a.input_offset);
                    }
                }
            }
            *o = requantize(acc, a, oc);
        }
    });
}

/// DEPTHWISE_CONV_2D with any depth multiplier, per-channel requantization. Filter HWC, C
/// the output channels.
pub fn depthwise_conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let c = input.c;
    // Depth multiplier: output channel `ch` filters input channel `ch / m` (TFLite's order).
    let m = out.c / c;
    for_each_output(out, compute, |oy, ox, px| {
        let (iy0, ky_lo, ky_hi) = window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        let (ix0, kx_lo, kx_hi) = window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
        for (ch, o) in px.iter_mut().enumerate() {
            let ic = if m == 1 { ch } else { ch / m };
            let mut acc = 0i32;
            for ky in ky_lo..ky_hi {
                let iy = (iy0 + ky as isize) as usize;
                for kx in kx_lo..kx_hi {
                    let ix = (ix0 + kx as isize) as usize;
                    let xv = input.data[input.index(iy, ix) + ic];
                    let wv = a.filter[(ky * a.kw + kx) * c * m + ch];
                    acc += i32::from(wv) * (i32::from(xv) + a.input_offset);
                }
            }
            *o = requantize(acc, a, ch);
        }
    });
}

/// AVERAGE_POOL_2D: mean over the in-bounds part of the window, rounded half away from zero.
pub fn average_pool(a: &PoolArgs, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        let (iy0, ky_lo, ky_hi) = window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        let (ix0, kx_lo, kx_hi) = window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
        let count = ((ky_hi - ky_lo) * (kx_hi - kx_lo)) as i32;
        for (ch, o) in px.iter_mut().enumerate() {
            let mut acc = 0i32;
            for ky in ky_lo..ky_hi {
                for kx in kx_lo..kx_hi {
                    let (iy, ix) = ((iy0 + ky as isize) as usize, (ix0 + kx as isize) as usize);
                    acc += i32::from(input.data[input.index(iy, ix) + ch]);
                }
            }
            let mean = if count == 0 {
                0
            } else if acc > 0 {
                (acc + count / 2) / count
            } else {
                (acc - count / 2) / count
            };
            *o = clamp(mean, a.clamp);
        }
    });
}

/// MAX_POOL_2D over the in-bounds part of the window.
pub fn max_pool(a: &PoolArgs, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        let (iy0, ky_lo, ky_hi) = window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        let (ix0, kx_lo, kx_hi) = window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
        for (ch, o) in px.iter_mut().enumerate() {
            let mut m = i32::from(i8::MIN);
            for ky in ky_lo..ky_hi {
                for kx in kx_lo..kx_hi {
                    let (iy, ix) = ((iy0 + ky as isize) as usize, (ix0 + kx as isize) as usize);
                    m = m.max(i32::from(input.data[input.index(iy, ix) + ch]));
                }
            }
            *o = clamp(m, a.clamp);
        }
    });
}

/// PAD: output pixel `(y, x)` is input pixel `(y - top, x - left)`, or `value` outside it.
pub fn pad(a: &PadArgs, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        let (iy, ix) = (oy.wrapping_sub(a.top), ox.wrapping_sub(a.left));
        if iy < a.in_h && ix < a.in_w {
            px.copy_from_slice(input.pixel(iy, ix));
        } else {
            px.fill(a.value);
        }
    });
}

/// ADD of two int8 tensors with separate quantization (TFLite's 20-bit left shift); either
/// input may broadcast (`bcast`).
pub fn add(a: &AddArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
    const LEFT_SHIFT: i32 = 20;
    // MultiplyByQuantizedMultiplierSmallerThanOneExp: identical for the shifts <= 0 it takes.
    let scale = |x: i32, (m, s): (i32, i32)| multiply_by_quantized_multiplier(x, m, s);
    let sum = |v1: i8, v2: i8| {
        let s1 = scale((i32::from(v1) + a.input1_offset) << LEFT_SHIFT, a.input1);
        let s2 = scale((i32::from(v2) + a.input2_offset) << LEFT_SHIFT, a.input2);
        clamp(scale(s1 + s2, a.output) + a.output_offset, a.clamp)
    };
    if bcast == [Broadcast::NONE; 2] {
        for_each_output(out, compute, |oy, ox, px| {
            for ((o, &v1), &v2) in px.iter_mut().zip(in1.pixel(oy, ox)).zip(in2.pixel(oy, ox)) {
                *o = sum(v1, v2);
            }
        });
    } else {
        for_each_output(out, compute, |oy, ox, px| {
            for (ch, o) in px.iter_mut().enumerate() {
                *o = sum(bcast[0].at(in1, oy, ox, ch), bcast[1].at(in2, oy, ox, ch));
            }
        });
    }
}

/// MUL of two int8 tensors (TFLM `MulElementwise` and `BroadcastMul4DSlow`: the product of
/// the offset inputs requantized once); either input may broadcast (`bcast`).
pub fn mul(a: &MulArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (ch, o) in px.iter_mut().enumerate() {
            let v1 = i32::from(bcast[0].at(in1, oy, ox, ch)) + a.input1_offset;
            let v2 = i32::from(bcast[1].at(in2, oy, ox, ch)) + a.input2_offset;
            let v = multiply_by_quantized_multiplier(v1 * v2, a.output.0, a.output.1) + a.output_offset;
            *o = clamp(v, a.clamp);
        }
    });
}

/// FULLY_CONNECTED: `out[o] = sum_i W[o][i] * (x[i] + input_offset) + b[o]`, requantized.
pub fn fully_connected(a: &FcArgs, input: &[i8], out: &mut [i8]) {
    let n = input.len();
    for (o, y) in out.iter_mut().enumerate() {
        let w = &a.filter[o * n..(o + 1) * n];
        let mut acc: i32 = w.iter().zip(input).map(|(&w, &x)| i32::from(w) * (i32::from(x) + a.input_offset)).sum();
        acc += a.bias.get(o).copied().unwrap_or(0);
        let q = if a.multiplier.len() == 1 { 0 } else { o };
        let v = multiply_by_quantized_multiplier(acc, a.multiplier[q], a.shift[q]);
        *y = clamp(v + a.output_offset, a.clamp);
    }
}

/// int8 SOFTMAX over the last axis (`depth` values per row), output scale 1/256 and zero
/// point -128, TFLite's fixed-point exp and reciprocal.
pub fn softmax(p: &SoftmaxParams, input: &[i8], out: &mut [i8], depth: usize) {
    const ACCUMULATION_INTEGER_BITS: i32 = 12;
    // Q5.26 scaled difference of `x` to the row maximum, or None below diff_min.
    let scaled_diff = |x: i8, max: i8| {
        let diff = i32::from(x) - i32::from(max);
        (diff >= p.diff_min)
            .then(|| saturating_rounding_doubling_high_mul(diff * (1 << p.input_left_shift), p.input_multiplier))
    };
    for (row, out_row) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().copied().max().unwrap_or(i8::MIN);
        // Sum of exps in Q12.19: each Q0.31 exp rescaled by 12 bits.
        let sum = row.iter().filter_map(|&x| scaled_diff(x, max)).fold(0i32, |s, d| {
            s.wrapping_add(rounding_divide_by_pot(exp_on_negative_values_q5(d), ACCUMULATION_INTEGER_BITS))
        });
        let (scale, bits_over_unit) = reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        for (&x, o) in row.iter().zip(out_row.iter_mut()) {
            *o = match scaled_diff(x, max) {
                Some(d) => {
                    let exp = exp_on_negative_values_q5(d);
                    let unsat = rounding_divide_by_pot(
                        saturating_rounding_doubling_high_mul(scale, exp),
                        bits_over_unit + 31 - 8,
                    );
                    (unsat - 128).clamp(-128, 127) as i8
                }
                None => i8::MIN,
            };
        }
    }
}

/// int8 LOG_SOFTMAX over the last axis (`depth` values per row), output scale 16/256 and
/// zero point 127: TFLM's `LogSoftmaxQuantized`, the log of the fixed-point sum of exps.
pub fn log_softmax(p: &LogSoftmaxParams, input: &[i8], out: &mut [i8], depth: usize) {
    const ACCUMULATION_INTEGER_BITS: i32 = 12;
    const INPUT_INTEGER_BITS: i32 = 5;
    const OUTPUT_INTEGER_BITS: i32 = 4;
    for (row, out_row) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().copied().max().unwrap_or(i8::MIN);
        let diff = |x: i8| i32::from(x) - i32::from(max);
        // The difference in Q5.26.
        let scaled = |d: i32| multiply_by_quantized_multiplier(d, p.input_multiplier, p.input_left_shift);
        let sum = row.iter().map(|&x| diff(x)).filter(|&d| d >= p.diff_min).fold(0i32, |s, d| {
            s.wrapping_add(rounding_divide_by_pot(exp_on_negative_values_q5(scaled(d)), ACCUMULATION_INTEGER_BITS))
        });
        let log_sum = log_x_ge_1(sum, ACCUMULATION_INTEGER_BITS, INPUT_INTEGER_BITS);
        // Differences whose result would fall below the Q5.26 range give the minimum.
        let floor =
            multiply_by_quantized_multiplier(log_sum.wrapping_add(i32::MIN), p.reverse_multiplier, p.reverse_shift);
        let cutoff = (p.diff_min - 1).max(floor);
        for (&x, o) in row.iter().zip(out_row.iter_mut()) {
            let d = diff(x);
            *o = if d > cutoff {
                let v = rounding_divide_by_pot(
                    scaled(d).wrapping_sub(log_sum),
                    31 - INPUT_INTEGER_BITS - OUTPUT_INTEGER_BITS,
                );
                (v + 127).clamp(-128, 127) as i8
            } else {
                i8::MIN
            };
        }
    }
}

/// Folds `input` (`dims` = height, width, channels) over `axes` (bit 0 height, 1 width, 2
/// channels): for every kept position in order, `finish` of the fold of its values.
fn reduce<A: Copy>(
    axes: u8,
    dims: [usize; 3],
    input: &[i8],
    out: &mut [i8],
    init: A,
    step: impl Fn(A, i8) -> A,
    finish: impl Fn(A) -> i8,
) {
    let reduced = |k: usize| axes & (1 << k) != 0;
    let extent = |k: usize| if reduced(k) { 1 } else { dims[k] };
    let range = |k: usize, o: usize| if reduced(k) { 0..dims[k] } else { o..o + 1 };
    let mut next = out.iter_mut();
    for oy in 0..extent(0) {
        for ox in 0..extent(1) {
            for oc in 0..extent(2) {
                let mut acc = init;
                for y in range(0, oy) {
                    for x in range(1, ox) {
                        let row = &input[(y * dims[1] + x) * dims[2]..][..dims[2]];
                        acc = row[range(2, oc)].iter().fold(acc, |a, &v| step(a, v));
                    }
                }
                if let Some(o) = next.next() {
                    *o = finish(acc);
                }
            }
        }
    }
}

/// MEAN of `input` (`dims` = height, width, channels) over the axes of `p`, as TFLM's int8
/// MEAN: the zero-point-corrected sum requantized with `1 / count` folded into the
/// multiplier. The output holds the kept axes in order.
pub fn mean(
    p: &MeanParams,
    (input_zero_point, output_zero_point): (i32, i32),
    dims: [usize; 3],
    input: &[i8],
    out: &mut [i8],
) {
    let count = (0..3).filter(|&k| p.axes & (1 << k) != 0).map(|k| dims[k]).product::<usize>() as i32;
    let finish = |sum: i32| {
        let v = multiply_by_quantized_multiplier(sum - input_zero_point * count, p.multiplier, p.shift);
        (v + output_zero_point).clamp(-128, 127) as i8
    };
    reduce(p.axes, dims, input, out, 0i32, |s, v| s + i32::from(v), finish);
}

/// TRANSPOSE of `input` (`dims` = height, width, channels): output axis `k` is input axis
/// `perm[k]`.
pub fn transpose(perm: [u8; 3], dims: [usize; 3], input: &[i8], out: &mut [i8]) {
    let out_dims = perm.map(|a| dims[usize::from(a)]);
    let strides = [dims[1] * dims[2], dims[2], 1];
    let step = perm.map(|a| strides[usize::from(a)]);
    let mut next = out.iter_mut();
    for a in 0..out_dims[0] {
        for b in 0..out_dims[1] {
            for c in 0..out_dims[2] {
                if let Some(o) = next.next() {
                    *o = input[a * step[0] + b * step[1] + c * step[2]];
                }
            }
        }
    }
}

/// RELU and LEAKY_RELU: `x - input_zero_point` requantized by one
/// multiplier at or above 0 and another below, plus the output zero point, clamped.
pub fn activation(
    p: &ActivationParams,
    (input_zero_point, output_zero_point): (i32, i32),
    input: &View,
    out: &mut ViewMut,
    compute: Region,
) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &x) in px.iter_mut().zip(input.pixel(oy, ox)) {
            let v = i32::from(x) - input_zero_point;
            let (m, s) = if v >= 0 { p.positive } else { p.negative };
            *o = clamp(multiply_by_quantized_multiplier(v, m, s) + output_zero_point, p.clamp);
        }
    });
}

/// PRELU: `x - z_x` requantized where it is at least 0, else `(x - z_x) * (alpha - z_alpha)`
/// requantized by the other multiplier; plus the output zero point, clamped. `alpha` may
/// broadcast (`bcast[1]`).
pub fn prelu(
    p: &PreluParams,
    (input_zero_point, alpha_zero_point, output_zero_point): (i32, i32, i32),
    input: &View,
    alpha: &View,
    bcast: [Broadcast; 2],
    out: &mut ViewMut,
    compute: Region,
) {
    for_each_output(out, compute, |oy, ox, px| {
        for (ch, o) in px.iter_mut().enumerate() {
            let v = i32::from(bcast[0].at(input, oy, ox, ch)) - input_zero_point;
            let y = if v >= 0 {
                multiply_by_quantized_multiplier(v, p.positive.0, p.positive.1)
            } else {
                let a = i32::from(bcast[1].at(alpha, oy, ox, ch)) - alpha_zero_point;
                multiply_by_quantized_multiplier(v * a, p.negative.0, p.negative.1)
            };
            *o = (y + output_zero_point).clamp(-128, 127) as i8;
        }
    });
}

/// LOGISTIC on int8: TFLM's `reference_integer_ops::Logistic` (output scale 1/256, zero
/// point -128).
pub fn logistic(p: &LogisticParams, input_zero_point: i32, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &x) in px.iter_mut().zip(input.pixel(oy, ox)) {
            let v = i32::from(x) - input_zero_point;
            *o = if v <= -p.radius {
                -128
            } else if v >= p.radius {
                127
            } else {
                let q4 = multiply_by_quantized_multiplier(v, p.multiplier, p.shift);
                let q0 = logistic_q4(q4);
                (rounding_divide_by_pot(q0, 23) - 128).clamp(-128, 127) as i8
            };
        }
    });
}

/// gemmlowp `SaturatingRoundingDoublingHighMul` on int16.
fn q15_rounding_high_mul(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// TFLite's int16 `SaturatingDoublingHighMul` (truncating, no rounding).
fn q15_high_mul(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    ((i32::from(a) * i32::from(b)) / (1 << 15)) as i16
}

/// TFLite's int16 `SaturatingLeftShift`.
fn q15_saturating_left_shift(v: i16, amount: i32) -> i16 {
    (i64::from(v) << amount.clamp(0, 31)).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// gemmlowp `RoundingDivideByPOT` on int16 (`exponent` in 0..=15, as the importer ensures).
fn q15_rounding_divide_by_pot(x: i16, exponent: i32) -> i16 {
    let exponent = exponent.clamp(0, 15);
    let mask = (1i16 << exponent).wrapping_sub(1);
    let remainder = x & mask;
    let threshold = (mask >> 1) + i16::from(x < 0);
    (x >> exponent) + i16::from(remainder > threshold)
}

/// HARD_SWISH on int8 (TFLite `reference_ops::HardSwish`): `x * relu6(x + 3) / 6` in 16-bit
/// fixed point.
pub fn hard_swish(
    p: &HardSwishParams,
    (input_zero_point, output_zero_point): (i32, i32),
    input: &View,
    out: &mut ViewMut,
    compute: Region,
) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &x) in px.iter_mut().zip(input.pixel(oy, ox)) {
            let hires = ((i32::from(x) - input_zero_point) * (1 << 7)) as i16;
            let preshift_output = q15_rounding_high_mul(hires, p.output_multiplier);
            let mut reluish = hires;
            if p.reluish_exponent > 0 {
                reluish = q15_saturating_left_shift(reluish, p.reluish_exponent - 1);
            }
            reluish = q15_rounding_high_mul(reluish, p.reluish_multiplier);
            if p.reluish_exponent > 0 {
                reluish = q15_saturating_left_shift(reluish, 1);
            }
            if p.reluish_exponent < 0 {
                reluish = q15_rounding_divide_by_pot(reluish, -p.reluish_exponent);
            }
            // From [-1, 1] to [0, 1].
            let reluish = ((i32::from(reluish) + (1 << 15)) >> 1) as i16;
            let preshift = q15_high_mul(reluish, preshift_output);
            let v = i32::from(q15_rounding_divide_by_pot(preshift, -p.output_exponent)) + output_zero_point;
            *o = v.clamp(-128, 127) as i8;
        }
    });
}

/// The raw int8 values clamped (TFLM's int8 RELU6).
pub fn clamp_raw(c: Clamp, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &x) in px.iter_mut().zip(input.pixel(oy, ox)) {
            *o = x.clamp(c.min, c.max);
        }
    });
}

/// MAXIMUM (`max`) or MINIMUM of the raw int8 values (TFLM compares them without
/// requantizing); either input may broadcast (`bcast`).
pub fn max_min(max: bool, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (ch, o) in px.iter_mut().enumerate() {
            let (a, b) = (bcast[0].at(in1, oy, ox, ch), bcast[1].at(in2, oy, ox, ch));
            *o = if max { a.max(b) } else { a.min(b) };
        }
    });
}

/// CONCATENATION of `inputs`, in order, along `axis` (0 height, 1 width, 2 channels). Along
/// height or width the op is not spatial, so every input is stored whole.
pub fn concat(axis: u8, inputs: &[View], out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        if axis == 2 {
            let mut at = 0;
            for v in inputs {
                px[at..at + v.c].copy_from_slice(v.pixel(oy, ox));
                at += v.c;
            }
            return;
        }
        // The position along the axis, counted from the current input's start.
        let mut along = if axis == 0 { oy } else { ox };
        for v in inputs {
            let size = usize::from(if axis == 0 { v.stored.h } else { v.stored.w });
            if along < size {
                let (y, x) = if axis == 0 { (along, ox) } else { (oy, along) };
                px.copy_from_slice(v.pixel(y, x));
                return;
            }
            along -= size;
        }
    });
}

/// REDUCE_MAX of `input` (`dims` = height, width, channels) over `axes`: the raw maximum,
/// the kept axes in order.
pub fn reduce_max(axes: u8, dims: [usize; 3], input: &[i8], out: &mut [i8]) {
    reduce(axes, dims, input, out, i8::MIN, i8::max, |m| m);
}

/// RESIZE_NEAREST_NEIGHBOR: output `(y, x)` copies input `(ny(y), nx(x))`; `in_h`, `in_w`,
/// `out_h`, `out_w` are the whole tensors' sizes.
pub fn resize_nearest(
    p: &ResizeParams,
    [in_h, in_w, out_h, out_w]: [u16; 4],
    input: &View,
    out: &mut ViewMut,
    compute: Region,
) {
    for_each_output(out, compute, |oy, ox, px| {
        let iy = p.nearest(oy as u16, in_h, out_h);
        let ix = p.nearest(ox as u16, in_w, out_w);
        px.copy_from_slice(input.pixel(usize::from(iy), usize::from(ix)));
    });
}

/// RESIZE_BILINEAR: TFLite's `ResizeBilinearInteger`, weights in 1/1024ths, the sum of the
/// four products rounded half away from zero at 2^20 and cast to int8.
pub fn resize_bilinear(
    p: &ResizeParams,
    [in_h, in_w, out_h, out_w]: [u16; 4],
    input: &View,
    out: &mut ViewMut,
    compute: Region,
) {
    const ONE: i64 = 1 << 10;
    for_each_output(out, compute, |oy, ox, px| {
        let (sy, y0, y1) = p.bilinear(oy as u16, in_h, out_h);
        let (sx, x0, x1) = p.bilinear(ox as u16, in_w, out_w);
        let (dy, dx) = (i64::from(sy) - ONE * i64::from(y0), i64::from(sx) - ONE * i64::from(x0));
        let (y0, y1, x0, x1) = (usize::from(y0), usize::from(y1), usize::from(x0), usize::from(x1));
        let (ll, lu, rl, ru) = (input.pixel(y0, x0), input.pixel(y1, x0), input.pixel(y0, x1), input.pixel(y1, x1));
        for (c, o) in px.iter_mut().enumerate() {
            let sum = i64::from(ll[c]) * (ONE - dy) * (ONE - dx)
                + i64::from(lu[c]) * dy * (ONE - dx)
                + i64::from(rl[c]) * (ONE - dy) * dx
                + i64::from(ru[c]) * dy * dx;
            let round = if sum > 0 { 1 << 19 } else { -(1 << 19) };
            *o = ((sum + round) / (1 << 20)) as i8;
        }
    });
}

/// `round(x)`, halves away from zero (C's `round`, TFLM's `TfLiteRound`), saturating to the
/// i32 range; `core` has no `f32::round`.
fn round_half_away(x: f32) -> i32 {
    // 2^23: from there on every f32 is an integer.
    if x.is_nan() || x.abs() >= 8_388_608.0 {
        return x as i32;
    }
    let t = x as i32; // toward zero
    let frac = x - t as f32; // exact below 2^23
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

/// QUANTIZE of a float tensor into int8 (TFLM `AffineQuantize`: `round(x / scale)` in f32,
/// plus the zero point, clamped). Input pixels are `4 x c` little-endian bytes.
pub fn quantize_f32(scale: f32, zero_point: i32, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, b) in px.iter_mut().zip(input.pixel(oy, ox).chunks_exact(4)) {
            let x = f32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
            *o = round_half_away(x / scale).saturating_add(zero_point).clamp(-128, 127) as i8;
        }
    });
}

/// QUANTIZE of an int8 or uint8 (`unsigned`) tensor into int8: TFLM `Requantize`,
/// `(x - input_zero_point) * input_scale / output_scale + output_zero_point`, clamped.
pub fn quantize_int(
    (multiplier, shift): (i32, i32),
    (input_zero_point, output_zero_point): (i32, i32),
    unsigned: bool,
    input: &View,
    out: &mut ViewMut,
    compute: Region,
) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &b) in px.iter_mut().zip(input.pixel(oy, ox)) {
            let x = if unsigned { i32::from(b as u8) } else { i32::from(b) };
            let v = multiply_by_quantized_multiplier(x - input_zero_point, multiplier, shift) + output_zero_point;
            *o = v.clamp(-128, 127) as i8;
        }
    });
}

/// DEQUANTIZE of int8 into float (TFLM `Dequantize`: `scale * (x - zero_point)` in double,
/// rounded to f32). Output pixels are `4 x c` little-endian bytes.
pub fn dequantize(scale: f32, zero_point: i32, input: &View, out: &mut ViewMut, compute: Region) {
    for_each_output(out, compute, |oy, ox, px| {
        for (o, &q) in px.chunks_exact_mut(4).zip(input.pixel(oy, ox)) {
            let y = (f64::from(scale) * f64::from(i32::from(q) - zero_point)) as f32;
            for (d, s) in o.iter_mut().zip(y.to_le_bytes()) {
                *d = s as i8;
            }
        }
    });
}
