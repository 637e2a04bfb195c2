//! Kernels for cores with the DSP extension (Cortex-M4, M7, M33), and as [`Portable`] for
//! cores without it: int8 products two at a time in 16-bit halves ([`super::simd`]), no im2col
//! buffer, requantization without 64-bit division. Same bytes as [`super::reference`] for
//! every input, view and region.
//!
//! - CONV_2D widens the windows of 8 output pixels (fewer where the windows are large, or
//!   for the rest of a row: blocks of 5, 4, 3, 2, 1) once, with the input offset added, into
//!   a stack scratch (`Windows`); each output channel is then one pass over its filter, each
//!   filter word widened once for all of them. Windows over 576 values run `conv2d_direct`
//!   (two channels by two pixels, the offset folded in as `offset * sum(filter over the
//!   window's taps)`).
//! - DEPTHWISE_CONV_2D (depth multiplier 1) computes four channels at a time from their
//!   widened weights and `bias + offset * sum(weights)` as the starting accumulator, both
//!   packed into the image at build time ([`pack_depthwise`]) or derived per call. A 3-wide
//!   window inside the input is one assembly loop over its rows; a window missing its first
//!   or last column runs its other two from a start without that column; rows reaching
//!   above or below the input, and narrow rows, are gathered into a strip padded with the
//!   input zero point.
//! - ADD without broadcasting, and FULLY_CONNECTED two outputs at a time.
//! - Requantization is TFLM's, exactly: where an accumulator bound proves it cannot
//!   overflow (`Requant`) and the shift is to the right, one SMMLAR on the doubled
//!   accumulator ([`super::simd::requantize_x2_sat8`]), stored by assembly blocks of two or
//!   four outputs; the general form ([`requantize`]) elsewhere.
//!
//! The inner loops read through pointers: each kernel first checks that its views and
//! parameters hold every byte the loops will touch (`Bounds`), and hands anything else to
//! the reference kernel (which then reports the misuse by panicking on its index).
//! Everything else runs the reference kernels.

use super::simd::{
    block_pixels, copy_words, fill_words, requantize2_store_raw, requantize4_store_raw, requantize_high,
    requantize_sat8, requantize_x2_sat8, sadd16, smlabb, smlad, smlatt, splat16, sxtb16, sxtb16_ror8, taps4,
    taps4_rows2_raw, taps4_rows3, taps4_rows3_raw, windows_dot,
};
use super::{reference, AddArgs, Broadcast, ConvArgs, FcArgs, KernelSet, Kernels, View, ViewMut};
use crate::model::Clamp;
use crate::plan::Region;
use core::mem::MaybeUninit;

/// The DSP kernel set.
#[derive(Clone, Copy, Debug)]
pub struct Dsp;

impl Kernels for Dsp {
    const SET: KernelSet = KernelSet::Dsp;

    fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        let filter = out.c * a.kh * a.kw * input.c;
        if Bounds::check(a, input, out, compute, filter, out.c) {
            conv2d(a, input, out, compute)
        } else {
            reference::conv2d(a, input, out, compute)
        }
    }

    fn depthwise_conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        if out.c == input.c && Bounds::check(a, input, out, compute, a.kh * a.kw * out.c, out.c) {
            depthwise_conv2d(a, input, out, compute)
        } else {
            reference::depthwise_conv2d(a, input, out, compute)
        }
    }

    fn add(a: &AddArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
        if !add(a, in1, in2, bcast, out, compute) {
            reference::add(a, in1, in2, bcast, out, compute)
        }
    }

    fn fully_connected(a: &FcArgs, input: &[i8], out: &mut [i8]) {
        let q = if a.multiplier.len() == 1 { 1 } else { out.len() };
        let fits = a.filter.len() >= input.len() * out.len()
            && (a.bias.is_empty() || a.bias.len() >= out.len())
            && a.multiplier.len() >= q
            && a.shift.len() >= q;
        if fits && !out.is_empty() {
            fully_connected(a, input, out)
        } else {
            reference::fully_connected(a, input, out)
        }
    }

    fn pack_depthwise(a: &ConvArgs, channels: usize, out: &mut [i32]) -> usize {
        pack_depthwise(a, channels, out)
    }
}

/// The DSP set's algorithms for cores without the DSP extension (Cortex-M0+, M3): an image of
/// this set is built without the `dsp` feature, so [`super::simd`]'s instructions run as their
/// plain-Rust twins. Same bytes as [`super::reference`], as [`Dsp`]'s.
#[derive(Clone, Copy, Debug)]
pub struct Portable;

impl Kernels for Portable {
    const SET: KernelSet = KernelSet::Portable;

    fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        Dsp::conv2d(a, input, out, compute)
    }

    fn depthwise_conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        Dsp::depthwise_conv2d(a, input, out, compute)
    }

    fn add(a: &AddArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
        Dsp::add(a, in1, in2, bcast, out, compute)
    }

    fn fully_connected(a: &FcArgs, input: &[i8], out: &mut [i8]) {
        Dsp::fully_connected(a, input, out)
    }

    fn pack_depthwise(a: &ConvArgs, channels: usize, out: &mut [i32]) -> usize {
        Dsp::pack_depthwise(a, channels, out)
    }
}

/// What a windowed kernel's pointer loops rely on.
struct Bounds;

impl Bounds {
    /// True when `compute` lies in `out`'s stored rectangle, every input pixel its windows
    /// reach lies in `input`'s, the views' data hold their rectangles, and the filter (at
    /// least `filter` values) and per-channel parameters (`channels`) are long enough.
    fn check(a: &ConvArgs, input: &View, out: &ViewMut, compute: Region, filter: usize, channels: usize) -> bool {
        let inside =
            |r: Region, s: Region| r.y0 >= s.y0 && r.x0 >= s.x0 && r.y0 + r.h <= s.y0 + s.h && r.x0 + r.w <= s.x0 + s.w;
        if compute.h == 0 || compute.w == 0 {
            return true;
        }
        // The input rows and columns the windows of compute's first and last pixels reach.
        let reach = |o0: u16, n: u16, s: usize, pad: usize, k: usize, size: usize| {
            let lo = (usize::from(o0) * s).saturating_sub(pad);
            let hi = ((usize::from(o0 + n) - 1) * s + k).saturating_sub(pad).min(size);
            (lo, hi)
        };
        let (ylo, yhi) = reach(compute.y0, compute.h, a.sh, a.pad_top, a.kh, a.in_h);
        let (xlo, xhi) = reach(compute.x0, compute.w, a.sw, a.pad_left, a.kw, a.in_w);
        let s = input.stored;
        let reads_inside = ylo >= yhi
            || xlo >= xhi
            || (ylo >= usize::from(s.y0)
                && yhi <= usize::from(s.y0 + s.h)
                && xlo >= usize::from(s.x0)
                && xhi <= usize::from(s.x0 + s.w));
        inside(compute, out.stored)
            && out.data.len() >= out.stored.pixels() * out.c
            && input.data.len() >= s.pixels() * input.c
            && reads_inside
            && a.filter.len() >= filter
            && (a.bias.is_empty() || a.bias.len() >= channels)
            && a.multiplier.len() >= channels
            && a.shift.len() >= channels
    }
}

/// TFLM's `MultiplyByQuantizedMultiplier` for a non-negative Q31 multiplier (every one the
/// importer derives), then the output offset and clamp. The doubling high multiply is
/// `(x * m + 2^30) >> 31` for such a multiplier (its round-half-up, without the division, and
/// it cannot saturate: only `MIN * MIN` does); the rounding right shift adds the carry of the
/// remainder, `(r + 2^(e-1) - [x < 0]) >> e`, which cannot overflow.
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: i32, output_offset: i32, clamp: Clamp) -> i8 {
    let left = shift.max(0);
    let right = left - shift;
    let x = acc.wrapping_shl(left as u32);
    let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
    let v = if right == 0 {
        high
    } else {
        // Unsigned: the remainder plus half can exceed i32 for a shift of 31.
        let r = high as u32 & ((1u32 << right) - 1);
        (high >> right) + ((r + (1u32 << (right - 1)) - u32::from(high < 0)) >> right) as i32
    };
    (v + output_offset).clamp(i32::from(clamp.min), i32::from(clamp.max)) as i8
}

/// Four bytes at `p` as one little-endian word (one LDR: the cores allow unaligned words).
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline(always)]
unsafe fn load(p: *const i8) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { p.cast::<u32>().read_unaligned() }
}

/// Sum of the values of `w`.
#[inline(always)]
fn sum(w: &[i8]) -> i32 {
    w.iter().map(|&v| i32::from(v)).sum()
}

/// `[x0.w0, x0.w1, x1.w0, x1.w1]` added to `acc`, over `n` bytes from each pointer.
///
/// # Safety
/// `n` bytes must be readable from each pointer.
#[inline(always)]
unsafe fn dot_2x2(
    mut x0: *const i8,
    mut x1: *const i8,
    mut w0: *const i8,
    mut w1: *const i8,
    n: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    let [mut a00, mut a01, mut a10, mut a11] = acc;
    // SAFETY (every load and offset below): within the n bytes the caller promises.
    unsafe {
        for _ in 0..n / 4 {
            let (a, b, v, u) = (load(x0), load(x1), load(w0), load(w1));
            let (a02, a13, b02, b13) = (sxtb16(a), sxtb16_ror8(a), sxtb16(b), sxtb16_ror8(b));
            let (v02, v13) = (sxtb16(v), sxtb16_ror8(v));
            a00 = smlad(a13, v13, smlad(a02, v02, a00));
            a10 = smlad(b13, v13, smlad(b02, v02, a10));
            let (u02, u13) = (sxtb16(u), sxtb16_ror8(u));
            a01 = smlad(a13, u13, smlad(a02, u02, a01));
            a11 = smlad(b13, u13, smlad(b02, u02, a11));
            (x0, x1, w0, w1) = (x0.add(4), x1.add(4), w0.add(4), w1.add(4));
        }
        for _ in 0..n % 4 {
            let (a, b, v, u) = (i32::from(*x0), i32::from(*x1), i32::from(*w0), i32::from(*w1));
            a00 += a * v;
            a01 += a * u;
            a10 += b * v;
            a11 += b * u;
            (x0, x1, w0, w1) = (x0.add(1), x1.add(1), w0.add(1), w1.add(1));
        }
    }
    [a00, a01, a10, a11]
}

/// `[x.w0, x.w1]` added to `acc`, over `n` bytes from each pointer.
///
/// # Safety
/// `n` bytes must be readable from each pointer.
#[inline(always)]
unsafe fn dot_1x2(mut x: *const i8, mut w0: *const i8, mut w1: *const i8, n: usize, acc: [i32; 2]) -> [i32; 2] {
    let [mut a0, mut a1] = acc;
    // SAFETY (every load and offset below): within the n bytes the caller promises.
    unsafe {
        for _ in 0..n / 4 {
            let (a, v, u) = (load(x), load(w0), load(w1));
            let (a02, a13) = (sxtb16(a), sxtb16_ror8(a));
            a0 = smlad(a13, sxtb16_ror8(v), smlad(a02, sxtb16(v), a0));
            a1 = smlad(a13, sxtb16_ror8(u), smlad(a02, sxtb16(u), a1));
            (x, w0, w1) = (x.add(4), w0.add(4), w1.add(4));
        }
        for _ in 0..n % 4 {
            a0 += i32::from(*x) * i32::from(*w0);
            a1 += i32::from(*x) * i32::from(*w1);
            (x, w0, w1) = (x.add(1), w0.add(1), w1.add(1));
        }
    }
    [a0, a1]
}

/// Requantizes output channel `oc` of `acc` (bias and input offset still to add).
#[inline(always)]
fn finish(a: &ConvArgs, oc: usize, acc: i32, taps_sum: i32) -> i8 {
    let bias = if a.bias.is_empty() { 0 } else { a.bias[oc] };
    requantize(acc + bias + a.input_offset * taps_sum, a.multiplier[oc], a.shift[oc], a.output_offset, a.clamp)
}

/// Words of the conv's window scratch (2,304 B on the stack): four pixels' windows of up to
/// 288 values (a 1x1 conv of 288 channels, a 3x3 of 32), or two of up to 576 (3x3x64). A
/// larger window runs [`conv2d_direct`].
const SCRATCH_WORDS: usize = 576;

/// The windows of `P` output pixels, widened to 16 bits with the input offset added (taps
/// outside the input are 0, so they add nothing), interleaved for [`windows_dot`] in blocks of
/// up to four pixels: in a block, group `g` of four window values is the words `[p0 (v0, v2),
/// p0 (v1, v3), p1 (v0, v2), ...]`.
/// The `window % 4` last values of each pixel are kept apart.
struct Windows<'s, const P: usize> {
    /// Written by [`Windows::fill`] before [`Windows::filled`] reads them (not zeroed first:
    /// a kernel call per output row would pay for clearing 2.3 KiB every time).
    words: &'s mut [MaybeUninit<u32>],
    /// One pixel's window, byte by byte, while it is assembled.
    line: &'s mut [i8],
    tails: [[i32; 3]; P],
}

impl<const P: usize> Windows<'_, P> {
    /// Where pixel slot `p`'s first word is, and the words from one group to the next, for
    /// windows of `groups` groups: blocks of up to four pixels, one after another.
    fn slot(p: usize, groups: usize) -> (usize, usize) {
        let b = block_pixels(P);
        ((p / b) * 2 * b * groups + 2 * (p % b), 2 * b)
    }

    /// The words of all `P` slots for windows of `groups` groups: the first `2 * P * groups`
    /// (the slots tile them).
    ///
    /// # Safety
    /// Every slot `0..P` must have been filled with windows of `groups` groups.
    unsafe fn filled(&self, groups: usize) -> &[u32] {
        let words = &self.words[..2 * P * groups];
        // SAFETY: the caller's promise: `fill` wrote every one of these words.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u32>(), words.len()) }
    }

    /// Fills pixel slot `p` with the window of output pixel `(oy, ox)`.
    fn fill(&mut self, p: usize, a: &ConvArgs, input: &View, oy: usize, ox: usize) {
        let c = input.c;
        let offset = splat16(a.input_offset);
        let (iy0, ky_lo, ky_hi) = reference::window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        let (ix0, kx_lo, kx_hi) = reference::window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
        let row = a.kw * c;
        let words = &mut *self.words;
        if ky_lo == 0 && ky_hi == a.kh && kx_lo == 0 && kx_hi == a.kw && row.is_multiple_of(4) {
            // Whole rows of whole words: four values per load.
            let (mut at, step) = Self::slot(p, a.kh * row / 4);
            for ky in 0..a.kh {
                let from = input.index((iy0 + ky as isize) as usize, ix0 as usize);
                for q in input.data[from..from + row].chunks_exact(4) {
                    let v = u32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]);
                    words[at] = MaybeUninit::new(sadd16(sxtb16(v), offset));
                    words[at + 1] = MaybeUninit::new(sadd16(sxtb16_ror8(v), offset));
                    at += step;
                }
            }
            return;
        }
        // Any other window: its bytes in window order into `line` (the input zero point for
        // a tap outside the input, which adds nothing once the offset is added), then widened
        // four at a time as above.
        let window = a.kh * row;
        let zero_point = (-a.input_offset) as i8;
        let line = &mut self.line[..window];
        for (ky, line) in line.chunks_exact_mut(row).enumerate() {
            if !(ky_lo..ky_hi).contains(&ky) || kx_lo >= kx_hi {
                line.fill(zero_point);
                continue;
            }
            let (lo, hi) = (kx_lo * c, kx_hi * c);
            let from = input.index((iy0 + ky as isize) as usize, (ix0 + kx_lo as isize) as usize);
            line[..lo].fill(zero_point);
            line[lo..hi].copy_from_slice(&input.data[from..from + hi - lo]);
            line[hi..].fill(zero_point);
        }
        let (mut at, step) = Self::slot(p, window / 4);
        let groups = line.chunks_exact(4);
        for (t, &v) in groups.remainder().iter().enumerate() {
            self.tails[p][t] = i32::from(v) + a.input_offset;
        }
        for q in groups {
            let v = u32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]);
            words[at] = MaybeUninit::new(sadd16(sxtb16(v), offset));
            words[at + 1] = MaybeUninit::new(sadd16(sxtb16_ror8(v), offset));
            at += step;
        }
    }
}

/// Per-channel requantization of a conv whose accumulators, shifted left by the largest left
/// shift, are known to stay within `2^30` in magnitude: the rounding right shift then needs
/// no carry arithmetic (`(high + 2^(e-1) - [high < 0]) >> e` cannot overflow); else
/// [`requantize`].
#[derive(Clone, Copy)]
struct Requant {
    small: bool,
}

impl Requant {
    /// Checks the bound for accumulators of `window` products of `[-255, 255]` by
    /// `[-128, 127]` plus a bias of `a`, over the first `channels` channels.
    fn of(a: &ConvArgs, window: usize, channels: usize) -> Requant {
        let products = window.saturating_mul(255 * 128);
        let bias = a.bias.iter().take(channels).map(|b| b.unsigned_abs() as usize).max().unwrap_or(0);
        let left = a.shift.iter().take(channels).map(|&s| s.max(0)).max().unwrap_or(0);
        let bound = products.saturating_add(bias);
        Requant { small: left < 30 && bound < (1 << 30) >> left }
    }

    #[inline(always)]
    fn apply(self, acc: i32, multiplier: i32, shift: i32, output_offset: i32, clamp: Clamp) -> i8 {
        if !self.small {
            return requantize(acc, multiplier, shift, output_offset, clamp);
        }
        let x = acc << shift.max(0);
        let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
        let right = (-shift).max(0);
        let v = if right == 0 { high } else { (high + (1 << (right - 1)) - i32::from(high < 0)) >> right };
        (v + output_offset).clamp(i32::from(clamp.min), i32::from(clamp.max)) as i8
    }
}

/// One output channel's requantization under [`Requant::small`], derived once per channel:
/// `(((acc << left) * m + 2^30) >> 31 + round - [negative]) >> e`, the two TFLM roundings.
#[derive(Clone, Copy)]
struct ChannelQuant {
    bias: i32,
    multiplier: i32,
    left: u32,
    e: u32,
    round: i32,
    /// -1 when `e > 0` (the rounding takes one from negative values), else 0.
    negative: i32,
}

impl ChannelQuant {
    #[inline(always)]
    fn new(bias: i32, multiplier: i32, shift: i32) -> ChannelQuant {
        let (left, e) = (shift.max(0) as u32, (-shift).max(0) as u32);
        let (round, negative) = if e > 0 { (1 << (e - 1), -1) } else { (0, 0) };
        ChannelQuant { bias, multiplier, left, e, round, negative }
    }

    #[inline(always)]
    fn apply(self, acc: i32, output_offset: i32, clamp: Clamp) -> i8 {
        let v = if self.e > 0 {
            // A right shift: the two roundings in one SMMLAR.
            requantize_x2_sat8((acc + self.bias) << 1, self.multiplier, self.round, self.e, output_offset)
        } else {
            let x = (acc + self.bias) << self.left;
            requantize_sat8(x, self.multiplier, self.e, self.round, self.negative, output_offset)
        };
        // A fused activation narrower than int8 (SSAT did the rest).
        if clamp == Clamp::NONE {
            return v as i8;
        }
        v.clamp(i32::from(clamp.min), i32::from(clamp.max)) as i8
    }
}

/// CONV_2D (filter OHWI), per-channel requantization; [`Bounds::check`]ed. Eight output
/// pixels at a time while their windows fit the scratch, then blocks of 5, 4, 3, 2 and 1:
/// their windows are widened once ([`Windows`]), then every output channel is one pass over
/// its filter, each filter word widened once for all of them.
#[inline(never)]
fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let window = a.kh * a.kw * input.c;
    if window > SCRATCH_WORDS {
        return conv2d_direct(a, input, out, compute);
    }
    let oc = out.c;
    let params = ChannelParams {
        bias: if a.bias.is_empty() { None } else { Some(&a.bias[..oc]) },
        multiplier: &a.multiplier[..oc],
        shift: &a.shift[..oc],
        requant: Requant::of(a, window, oc),
        output_offset: a.output_offset,
        clamp: a.clamp,
    };
    let filter = &a.filter[..oc * window];
    let (mut scratch, mut line) = ([MaybeUninit::<u32>::uninit(); SCRATCH_WORDS], [0i8; SCRATCH_WORDS]);
    let pixels = usize::from(compute.h) * usize::from(compute.w);
    // Blocks of eight pixels, then of fewer for the rest (a row of 5 is one block of 5), each
    // block size where its widened windows fit the scratch.
    let fits = |p: usize| p * window <= 2 * SCRATCH_WORDS;
    let (f, s, l) = ((filter, window), &mut scratch, &mut line);
    let mut done = 0;
    if fits(8) {
        done = conv2d_blocks::<8>(s, l, f, a, input, out, compute, &params, done, pixels);
    }
    if fits(5) {
        done = conv2d_blocks::<5>(s, l, f, a, input, out, compute, &params, done, pixels);
    }
    if fits(4) {
        done = conv2d_blocks::<4>(s, l, f, a, input, out, compute, &params, done, pixels);
    }
    if fits(3) {
        done = conv2d_blocks::<3>(s, l, f, a, input, out, compute, &params, done, pixels);
    }
    done = conv2d_blocks::<2>(s, l, f, a, input, out, compute, &params, done, pixels);
    conv2d_blocks::<1>(s, l, f, a, input, out, compute, &params, done, pixels);
}

/// [`conv2d`] for pixels `from..` of `compute` (row-major) in blocks of `P`, as many whole
/// blocks as fit in `pixels`; returns where they end.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv2d_blocks<const P: usize>(
    scratch: &mut [MaybeUninit<u32>],
    line: &mut [i8],
    (filter, window): (&[i8], usize),
    a: &ConvArgs,
    input: &View,
    out: &mut ViewMut,
    compute: Region,
    params: &ChannelParams,
    from: usize,
    pixels: usize,
) -> usize {
    let row_pixels = usize::from(compute.w);
    let at = |k: usize| (usize::from(compute.y0) + k / row_pixels, usize::from(compute.x0) + k % row_pixels);
    let mut win = Windows::<P> { words: scratch, line, tails: [[0; 3]; P] };
    let mut first = from;
    while first + P <= pixels {
        let mut outs = [0usize; P];
        for (p, o) in outs.iter_mut().enumerate() {
            let (oy, ox) = at(first + p);
            win.fill(p, a, input, oy, ox);
            *o = out.index(oy, ox);
        }
        channels(&win, filter, window, params, outs, out.data);
        first += P;
    }
    first
}

/// A conv's per-output-channel parameters, each sliced to the channel count.
struct ChannelParams<'a> {
    bias: Option<&'a [i32]>,
    multiplier: &'a [i32],
    shift: &'a [i32],
    requant: Requant,
    output_offset: i32,
    clamp: Clamp,
}

/// Every output channel of the `P` pixels whose windows `win` holds: pixel `p`'s channels
/// start at `out[outs[p]]`.
#[inline(never)]
fn channels<const P: usize>(
    win: &Windows<P>,
    filter: &[i8],
    window: usize,
    q: &ChannelParams,
    outs: [usize; P],
    out: &mut [i8],
) {
    let (groups, tail) = (window / 4, window % 4);
    let oc = q.multiplier.len();
    // Every pixel's channels lie in `out` (checked once, not per store).
    assert!(outs.iter().all(|&o| o + oc <= out.len()), "channels: output outside its view");
    for (o, w) in filter.chunks_exact(window).enumerate().take(oc) {
        // SAFETY: conv2d_blocks filled every slot before calling.
        let mut acc = windows_dot::<P>(unsafe { win.filled(groups) }, w, groups);
        for t in 0..tail {
            let wv = i32::from(w[4 * groups + t]);
            for (acc, tails) in acc.iter_mut().zip(&win.tails) {
                *acc += tails[t] * wv;
            }
        }
        let (b, m, s) = (q.bias.map_or(0, |b| b[o]), q.multiplier[o], q.shift[o]);
        if q.requant.small && s < 0 && q.clamp == Clamp::NONE {
            // Two outputs at a time, requantized and stored by one assembly block.
            let (e, base) = ((-s) as u32, out.as_mut_ptr());
            let (pairs, accs) = (outs.chunks_exact(2), acc.chunks_exact(2));
            if let (&[at], &[acc]) = (pairs.remainder(), accs.remainder()) {
                out[at + o] = requantize_x2_sat8((acc + b) << 1, m, 1 << (e - 1), e, q.output_offset) as i8;
            }
            for (at, acc) in pairs.zip(accs) {
                // SAFETY: `at + o < at + oc <= out.len()`, asserted above.
                unsafe {
                    let (p0, p1) = (base.add(at[0] + o), base.add(at[1] + o));
                    requantize2_store_raw(acc[0], acc[1], 2 * b, m, 1 << (e - 1), e, q.output_offset, p0, p1);
                }
            }
        } else if q.requant.small {
            let cq = ChannelQuant::new(b, m, s);
            for (&at, &acc) in outs.iter().zip(&acc) {
                let v = cq.apply(acc, q.output_offset, q.clamp);
                // SAFETY: `at + o < at + oc <= out.len()`, asserted above.
                unsafe { *out.get_unchecked_mut(at + o) = v };
            }
        } else {
            for (&at, &acc) in outs.iter().zip(&acc) {
                let v = requantize(acc + b, m, s, q.output_offset, q.clamp);
                // SAFETY: as above.
                unsafe { *out.get_unchecked_mut(at + o) = v };
            }
        }
    }
}

/// CONV_2D without the windows' scratch (windows over [`SCRATCH_WORDS`] values): two output
/// channels and, where both windows are whole, two pixels at a time; the input offset folded
/// in as `offset * sum(filter over the window's taps)`.
#[inline(never)]
fn conv2d_direct(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let c = input.c;
    let row = a.kw * c;
    let per_filter = a.kh * row;
    let in_row = usize::from(input.stored.w) * c;
    let x_step = a.sw * c;
    let (ys, xs) = (
        usize::from(compute.y0)..usize::from(compute.y0 + compute.h),
        usize::from(compute.x0)..usize::from(compute.x0 + compute.w),
    );
    // Two output channels at a time; an odd last channel is computed twice, written once.
    for o in (0..out.c).step_by(2) {
        let o1 = (o + 1).min(out.c - 1);
        let (f0, f1) = (&a.filter[o * per_filter..][..per_filter], &a.filter[o1 * per_filter..][..per_filter]);
        let whole = [sum(f0), sum(f1)];
        for oy in ys.clone() {
            let (iy0, ky_lo, ky_hi) = reference::window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
            let rows_whole = ky_lo == 0 && ky_hi == a.kh;
            let mut ox = xs.start;
            while ox < xs.end {
                let (ix0, kx_lo, kx_hi) = reference::window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
                let whole_window = rows_whole && kx_lo == 0 && kx_hi == a.kw;
                // Two pixels whose windows both lie inside the input share every filter load.
                let pair = whole_window && ox + 1 < xs.end && {
                    let (_, lo, hi) = reference::window_range(ox + 1, a.sw, a.pad_left, a.kw, a.in_w);
                    lo == 0 && hi == a.kw
                };
                if pair {
                    let x = input.index(iy0 as usize, ix0 as usize);
                    let mut acc = [0i32; 4];
                    // SAFETY: Bounds::check covers every in-bounds tap of compute's windows, and
                    // both windows lie inside the input: kh rows of `row` bytes from `x` and
                    // `x + x_step`, a stored row apart; the filters hold kh rows of `row`.
                    unsafe {
                        let p = input.data.as_ptr().add(x);
                        for ky in 0..a.kh {
                            let (w0, w1) = (f0.as_ptr().add(ky * row), f1.as_ptr().add(ky * row));
                            let xp = p.add(ky * in_row);
                            acc = dot_2x2(xp, xp.add(x_step), w0, w1, row, acc);
                        }
                    }
                    let [a00, a01, a10, a11] = acc;
                    let (v00, v01, v10, v11) = (
                        finish(a, o, a00, whole[0]),
                        finish(a, o1, a01, whole[1]),
                        finish(a, o, a10, whole[0]),
                        finish(a, o1, a11, whole[1]),
                    );
                    let px = out.pixel_mut(oy, ox);
                    px[o1] = v01;
                    px[o] = v00;
                    let px = out.pixel_mut(oy, ox + 1);
                    px[o1] = v11;
                    px[o] = v10;
                    ox += 2;
                    continue;
                }
                let mut acc = [0i32; 2];
                let mut taps = [0i32; 2];
                let len = (kx_hi - kx_lo) * c;
                for ky in ky_lo..ky_hi {
                    let iy = (iy0 + ky as isize) as usize;
                    let x = input.index(iy, (ix0 + kx_lo as isize) as usize);
                    let from = (ky * a.kw + kx_lo) * c;
                    let (w0, w1) = (&f0[from..from + len], &f1[from..from + len]);
                    let xs = &input.data[x..x + len];
                    // SAFETY: three slices of `len` bytes.
                    acc = unsafe { dot_1x2(xs.as_ptr(), w0.as_ptr(), w1.as_ptr(), len, acc) };
                    if !whole_window {
                        taps[0] += sum(w0);
                        taps[1] += sum(w1);
                    }
                }
                let taps = if whole_window { whole } else { taps };
                let (v0, v1) = (finish(a, o, acc[0], taps[0]), finish(a, o1, acc[1], taps[1]));
                let px = out.pixel_mut(oy, ox);
                px[o1] = v1;
                px[o] = v0;
                ox += 1;
            }
        }
    }
}

/// Taps of the largest depthwise window whose widened weights [`depthwise_conv2d`] keeps on
/// the stack (7x7); a larger one runs [`depthwise_direct`].
const MAX_TAPS: usize = 49;

/// DEPTHWISE_CONV_2D with depth multiplier 1 (filter HWC), per-channel requantization;
/// [`Bounds::check`]ed. Four channels at a time: their weights widened (packed at build time,
/// or derived here), the input offset folded into the starting accumulator (`bias + offset *
/// sum(weights)`), so each tap is one input word and four multiply-adds; a tap outside the
/// input holds the input zero point, which adds nothing.
#[inline(never)]
fn depthwise_conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let c = input.c;
    let taps = a.kh * a.kw;
    if taps > MAX_TAPS {
        return depthwise_direct(a, input, out, compute);
    }
    let in_row = usize::from(input.stored.w) * c;
    let filter = &a.filter[..taps * c];
    let requant = Requant::of(a, taps, c);
    let finish = |acc: i32, ch: usize| requant.apply(acc, a.multiplier[ch], a.shift[ch], a.output_offset, a.clamp);
    let bias = |ch: usize| if a.bias.is_empty() { 0 } else { a.bias[ch] };
    // Output rows and columns whose windows lie inside the input.
    let whole = |o: usize, s: usize, pad: usize, k: usize, n: usize| o * s >= pad && o * s - pad + k <= n;
    let (ys, xs) = (
        usize::from(compute.y0)..usize::from(compute.y0 + compute.h),
        usize::from(compute.x0)..usize::from(compute.x0 + compute.w),
    );
    // The output columns whose windows lie inside the input along the width.
    let mut inner = xs.clone().filter(|&ox| whole(ox, a.sw, a.pad_left, a.kw, a.in_w));
    let (xa, xb) = inner.next().map_or((0, 0), |first| (first, inner.next_back().unwrap_or(first) + 1));
    let mut widened = [0u32; 2 * MAX_TAPS];
    // Constants packed at build time (`pack_depthwise`), when they are there.
    let per_group = packed_words(taps);
    // Written by `gather` before it is read (not zeroed: see `Windows::words`).
    let mut strip = [MaybeUninit::<u32>::uninit(); STRIP_WORDS];
    // The fast form needs a right shift in every channel: its accumulators are doubled (the
    // widened weights are), for `requantize_x2_sat8`.
    let doubled = requant.small && a.shift[..c].iter().all(|s| (-31..=-1).contains(s));
    // Four outputs requantized and stored by one assembly block.
    let stores = doubled && a.clamp == Clamp::NONE;
    let run3 = stores && a.kw == 3;
    let packed = doubled && a.packed.len() == c / 4 * per_group;
    // Four input zero points in one word: a tap outside the input holds them, and adds
    // nothing once the offset is folded into the starting accumulator.
    let zero_point = u32::from((-a.input_offset) as u8) * 0x0101_0101;
    let span = (usize::from(compute.w).max(1) - 1) * a.sw + a.kw;
    // Gathering a narrow row's windows costs less than computing its border windows apart.
    let narrow = span <= 16 && (xa > xs.start || xb < xs.end || xa == xb);
    for ch in (0..c / 4).map(|g| 4 * g) {
        // The group's widened weights, starting accumulators and requantization parameters:
        // packed at build time, or derived now.
        let own;
        let (weights, [start, no_first, no_last], params): (&[u32], [[i32; 4]; 3], &[i32]) = if packed {
            let g = &a.packed[ch / 4 * per_group..][..per_group];
            let (w, rest) = g.split_at(2 * taps);
            let four = |i: usize| [rest[i], rest[i + 1], rest[i + 2], rest[i + 3]];
            (bytemuck::cast_slice(w), [four(0), four(4), four(8)], &rest[12..28])
        } else {
            own = group_constants(a, c, ch, doubled, &mut widened);
            (&widened[..2 * taps], own.0, &own.1)
        };
        let params: &[i32; 16] = params.try_into().expect("16 requantization parameters");
        let (m, sh) = (&a.multiplier[ch..ch + 4], &a.shift[ch..ch + 4]);
        let finish4 = |acc: [i32; 4], px: &mut [i8]| {
            if stores {
                // SAFETY: `px` holds 4 bytes, `params` 16 words.
                unsafe { requantize4_store_raw(acc, params.as_ptr(), a.output_offset, px.as_mut_ptr()) };
            } else if doubled {
                for k in 0..4 {
                    let (mult, round, e) = (params[4 * k], params[4 * k + 1], params[4 * k + 2] as u32);
                    let v = requantize_x2_sat8(acc[k], mult, round, e, a.output_offset);
                    px[k] = v.clamp(i32::from(a.clamp.min), i32::from(a.clamp.max)) as i8;
                }
            } else {
                for k in 0..4 {
                    px[k] = requant.apply(acc[k], m[k], sh[k], a.output_offset, a.clamp);
                }
            }
        };
        for oy in ys.clone() {
            let (iy0, _, _) = reference::window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
            let x0 = usize::from(compute.x0);
            if (narrow || !whole(oy, a.sh, a.pad_top, a.kh, a.in_h)) && a.kh * span <= STRIP_WORDS {
                // A row whose windows reach above or below the input, or a narrow row with
                // border windows: its windows' words gathered into a strip, padded with zero
                // points, then run as inner windows.
                let (ix0, _, _) = reference::window_range(x0, a.sw, a.pad_left, a.kw, a.in_w);
                let strip = gather(a, input, ch, (iy0, ix0), (a.kh, span), zero_point, &mut strip);
                let bytes: &[i8] = bytemuck::cast_slice(strip);
                let (n, o0) = (usize::from(compute.w), out.index(oy, x0) + ch);
                if run3 {
                    assert!(o0 + (n - 1) * c + 4 <= out.data.len() && 6 * a.kh <= weights.len());
                    // SAFETY: the strip holds the kh rows of every window; asserted above.
                    unsafe {
                        depthwise_run3(
                            bytes.as_ptr(),
                            4 * a.sw,
                            4,
                            4 * span,
                            weights.as_ptr(),
                            a.kh,
                            start,
                            params,
                            a.output_offset,
                            out.data.as_mut_ptr().add(o0),
                            c,
                            n,
                        )
                    };
                } else {
                    for i in 0..n {
                        let acc = window4(&bytes[4 * i * a.sw..], 4, 4 * span, weights, a.kh, a.kw, start);
                        finish4(acc, &mut out.data[o0 + i * c..o0 + i * c + 4]);
                    }
                }
                continue;
            }
            // The run of inner pixels of a row inside the input: one pointer step per pixel.
            let run = run3 && xa < xb && whole(oy, a.sh, a.pad_top, a.kh, a.in_h);
            if run {
                let (n, step) = (xb - xa, a.sw * c);
                let x0 = input.index(iy0 as usize, xa * a.sw - a.pad_left) + ch;
                let o0 = out.index(oy, xa) + ch;
                let reach = x0 + (n - 1) * step + (a.kh - 1) * in_row + 2 * c + 4;
                assert!(
                    reach <= input.data.len() && o0 + (n - 1) * c + 4 <= out.data.len() && 6 * a.kh <= weights.len()
                );
                // SAFETY: the assert above covers the last pixel's window and output.
                unsafe {
                    depthwise_run3(
                        input.data.as_ptr().add(x0),
                        step,
                        c,
                        in_row,
                        weights.as_ptr(),
                        a.kh,
                        start,
                        params,
                        a.output_offset,
                        out.data.as_mut_ptr().add(o0),
                        c,
                        n,
                    )
                };
            }
            for ox in xs.clone().filter(|&ox| !(run && (xa..xb).contains(&ox))) {
                let (ix0, kx_lo, kx_hi) = reference::window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
                if run && kx_hi - kx_lo == 2 {
                    // A 3-wide window missing its first or last column: its other two,
                    // from the start without the missing one.
                    let x = input.index(iy0 as usize, (ix0 + kx_lo as isize) as usize) + ch;
                    let o = out.index(oy, ox) + ch;
                    let px = &mut out.data[o..o + 4];
                    assert!(x + (a.kh - 1) * in_row + c + 4 <= input.data.len() && 6 * a.kh <= weights.len());
                    let from = if kx_lo == 1 { no_first } else { no_last };
                    // SAFETY: asserted above: kh rows of two taps from `x`, the weights from
                    // tap `kx_lo` of kh rows, and 4 output bytes.
                    unsafe {
                        let w = weights.as_ptr().add(2 * kx_lo);
                        let acc = taps4_rows2_raw(input.data.as_ptr().add(x), c, in_row, w, a.kh, from);
                        requantize4_store_raw(acc, params.as_ptr(), a.output_offset, px.as_mut_ptr());
                    }
                    continue;
                }
                // The window's words, zero points where it leaves the input.
                let patch = gather(a, input, ch, (iy0, ix0), (a.kh, a.kw), zero_point, &mut strip);
                let patch: &[i8] = bytemuck::cast_slice(patch);
                let o = out.index(oy, ox) + ch;
                let px = &mut out.data[o..o + 4];
                if run3 {
                    // SAFETY: the patch holds the window's kh rows of 3 words, `px` 4 bytes.
                    unsafe {
                        let p = patch.as_ptr();
                        depthwise_run3(
                            p,
                            0,
                            4,
                            12,
                            weights.as_ptr(),
                            a.kh,
                            start,
                            params,
                            a.output_offset,
                            px.as_mut_ptr(),
                            0,
                            1,
                        )
                    };
                } else {
                    finish4(window4(patch, 4, 4 * a.kw, weights, a.kh, a.kw, start), px);
                }
            }
        }
    }
    // The channels past the last group of four, one at a time.
    for ch in c / 4 * 4..c {
        for oy in ys.clone() {
            let (iy0, ky_lo, ky_hi) = reference::window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
            for ox in xs.clone() {
                let (ix0, kx_lo, kx_hi) = reference::window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
                let mut acc = bias(ch);
                for ky in ky_lo..ky_hi {
                    for kx in kx_lo..kx_hi {
                        let (iy, ix) = ((iy0 + ky as isize) as usize, (ix0 + kx as isize) as usize);
                        let x = i32::from(input.data[input.index(iy, ix) + ch]) + a.input_offset;
                        acc += x * i32::from(filter[(ky * a.kw + kx) * c + ch]);
                    }
                }
                out.pixel_mut(oy, ox)[ch] = finish(acc, ch);
            }
        }
    }
}

/// Words of the depthwise kernel's strip (2 KiB on the stack): the padded rows of one output
/// row's windows, four channels wide.
const STRIP_WORDS: usize = 512;

/// Words [`pack_depthwise`] lays out per group of four channels of a window of `taps` taps:
/// the widened weights (two words per tap), the three starting accumulators of
/// `widen_depthwise` and the requantization parameters `[multiplier, round, e, 0]` per
/// channel.
pub const fn packed_words(taps: usize) -> usize {
    2 * taps + 12 + 16
}

/// What DEPTHWISE_CONV_2D derives for channels `ch..ch + 4` from the layer's constants:
/// the widened weights (into `weights`), the starting accumulators, the requantization
/// parameters.
#[inline(always)]
fn group_constants(
    a: &ConvArgs,
    c: usize,
    ch: usize,
    doubled: bool,
    weights: &mut [u32],
) -> ([[i32; 4]; 3], [i32; 16]) {
    let scale = if doubled { 2 } else { 1 };
    let bias = |k: usize| if a.bias.is_empty() { 0 } else { scale * a.bias[ch + k] };
    let biases = [bias(0), bias(1), bias(2), bias(3)];
    let starts = widen_depthwise(a.filter, c, ch, (a.kh, a.kw), doubled, weights, biases, a.input_offset);
    let (m, sh) = (&a.multiplier[ch..ch + 4], &a.shift[ch..ch + 4]);
    // The doubled form's parameters (a right shift in every channel then; clamped only to
    // stay a valid shift otherwise).
    let e = [(-sh[0]).clamp(1, 31), (-sh[1]).clamp(1, 31), (-sh[2]).clamp(1, 31), (-sh[3]).clamp(1, 31)];
    #[rustfmt::skip]
    let params = [
        m[0], 1 << (e[0] - 1), e[0], 0,
        m[1], 1 << (e[1] - 1), e[1], 0,
        m[2], 1 << (e[2] - 1), e[2], 0,
        m[3], 1 << (e[3] - 1), e[3], 0,
    ];
    (starts, params)
}

/// [`Kernels::pack_depthwise`] of the DSP set: per group of four channels
/// [`packed_words`] words, for layers whose accumulators take the doubled form (a right shift
/// in every channel, the accumulator bound of `Requant`); 0 for any other.
pub fn pack_depthwise(a: &ConvArgs, channels: usize, out: &mut [i32]) -> usize {
    let (c, taps) = (channels, a.kh * a.kw);
    let per = packed_words(taps);
    let fits = taps <= MAX_TAPS
        && c >= 4
        && out.len() >= c / 4 * per
        && a.filter.len() >= taps * c
        && a.multiplier.len() >= c
        && a.shift.len() >= c
        && (a.bias.is_empty() || a.bias.len() >= c);
    let doubled = fits && Requant::of(a, taps, c).small && a.shift[..c].iter().all(|s| (-31..=-1).contains(s));
    if !doubled {
        return 0;
    }
    for (g, group) in out[..c / 4 * per].chunks_exact_mut(per).enumerate() {
        let (w, rest) = group.split_at_mut(2 * taps);
        let (starts, params) = group_constants(a, c, 4 * g, true, bytemuck::cast_slice_mut(w));
        rest[..12].copy_from_slice(bytemuck::cast_slice(&starts));
        rest[12..].copy_from_slice(&params);
    }
    c / 4 * per
}

/// Widens the weights of channels `ch..ch + 4` of a depthwise filter (HWC, `c` channels,
/// `kh x kw` taps) into `weights`: per tap `(w0, w2)` and `(w1, w3)` in 16-bit halves,
/// doubled when `doubled`. Returns the starting accumulators `bias + offset * sum(weights)`
/// (doubled too, as `biases` must be), with which a window's taps need no offset: of the whole
/// window, of the window without its first column and without its last.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn widen_depthwise(
    filter: &[i8],
    c: usize,
    ch: usize,
    (kh, kw): (usize, usize),
    doubled: bool,
    weights: &mut [u32],
    biases: [i32; 4],
    offset: i32,
) -> [[i32; 4]; 3] {
    let taps = kh * kw;
    assert!(weights.len() >= 2 * taps && (taps == 0 || (taps - 1) * c + ch + 4 <= filter.len()));
    // Sums of the stored weights in 16-bit halves: 49 doubled taps of at most 256 stay far
    // from overflowing them.
    let (mut s02, mut s13) = (0u32, 0u32);
    let (mut f, mut w) = (filter.as_ptr(), weights.as_mut_ptr());
    // SAFETY: asserted above: `taps` words `c` bytes apart from `ch`, two words per tap.
    unsafe {
        f = f.add(ch);
        for _ in 0..taps {
            let v = load(f);
            let (mut w02, mut w13) = (sxtb16(v), sxtb16_ror8(v));
            if doubled {
                (w02, w13) = (sadd16(w02, w02), sadd16(w13, w13));
            }
            (s02, s13) = (sadd16(s02, w02), sadd16(s13, w13));
            w.write(w02);
            w.add(1).write(w13);
            (f, w) = (f.add(c), w.add(2));
        }
    }
    // The first and the last column's sums.
    let (mut f02, mut f13, mut l02, mut l13) = (0u32, 0u32, 0u32, 0u32);
    for row in weights[..2 * taps].chunks_exact(2 * kw) {
        (f02, f13) = (sadd16(f02, row[0]), sadd16(f13, row[1]));
        (l02, l13) = (sadd16(l02, row[2 * kw - 2]), sadd16(l13, row[2 * kw - 1]));
    }
    let half = |v: u32, hi: bool| i32::from(if hi { (v >> 16) as u16 as i16 } else { v as u16 as i16 });
    let channels = |a: u32, b: u32| [half(a, false), half(b, false), half(a, true), half(b, true)];
    let (sums, first, last) = (channels(s02, s13), channels(f02, f13), channels(l02, l13));
    let mut starts = [[0i32; 4]; 3];
    for k in 0..4 {
        starts[0][k] = biases[k] + offset * sums[k];
        starts[1][k] = biases[k] + offset * (sums[k] - first[k]);
        starts[2][k] = biases[k] + offset * (sums[k] - last[k]);
    }
    starts
}

/// Copies the words of channels `ch..ch + 4` of the input pixels `rows x cols` from
/// `(iy0, ix0)` (which may lie outside the input) into `dst`, row-major; a pixel outside the
/// input is `zero_point`; returns those words. The kernel's [`Bounds::check`] holds: every
/// pixel inside the input that the window reaches lies in `input`'s stored rectangle.
#[inline(always)]
fn gather<'d>(
    a: &ConvArgs,
    input: &View,
    ch: usize,
    (iy0, ix0): (isize, isize),
    (rows, cols): (usize, usize),
    zero_point: u32,
    dst: &'d mut [MaybeUninit<u32>],
) -> &'d [u32] {
    let lo = (-ix0).clamp(0, cols as isize) as usize;
    let hi = (a.in_w as isize - ix0).clamp(lo as isize, cols as isize) as usize;
    let c = input.c;
    assert!(dst.len() >= rows * cols && ch + 4 <= c);
    let mut d = dst.as_mut_ptr().cast::<u32>();
    for r in 0..rows {
        let iy = iy0 + r as isize;
        // SAFETY: `d` walks the `rows * cols` words asserted above, `cols` per row; the
        // copied pixels lie inside the input, so in the stored rectangle (Bounds::check), and
        // their channels `ch..ch + 4` in the view's data (checked in debug builds).
        unsafe {
            if iy < 0 || iy >= a.in_h as isize || lo == hi {
                d = fill_words(d, zero_point, cols);
                continue;
            }
            let at = input.index(iy as usize, (ix0 + lo as isize) as usize) + ch;
            debug_assert!(at + (hi - lo - 1) * c + 4 <= input.data.len());
            d = fill_words(d, zero_point, lo);
            d = copy_words(d, input.data.as_ptr().add(at), c, hi - lo);
            d = fill_words(d, zero_point, cols - hi);
        }
    }
    // SAFETY: the loop wrote every one of the `rows * cols` words.
    unsafe { core::slice::from_raw_parts(dst.as_ptr().cast::<u32>(), rows * cols) }
}

/// The four accumulators of one depthwise window (`kh` rows `in_row` bytes apart of `kw`
/// taps `c` bytes apart, from `x`) from `start`.
#[inline(always)]
fn window4(x: &[i8], c: usize, in_row: usize, w: &[u32], kh: usize, kw: usize, start: [i32; 4]) -> [i32; 4] {
    if kw == 3 {
        return taps4_rows3(x, c, in_row, w, kh, start);
    }
    let mut acc = start;
    for ky in 0..kh {
        acc = taps4(&x[ky * in_row..], c, &w[2 * ky * kw..], kw, acc);
    }
    acc
}

/// The inner pixels of one output row, one group of four channels, a 3-wide window: per
/// pixel one assembly loop over the window's rows, then one assembly block requantizing and
/// storing the four outputs (doubled accumulators; `params`: per channel `[multiplier, round,
/// e, 0]`).
///
/// # Safety
/// For every `i < n`, the window from `x + i * step` (`kh` rows `in_row` apart of three taps
/// `c` apart, 4 bytes each) must be readable, `w` must hold `6 * kh` words, and 4 bytes from
/// `out + i * out_step` must be writable.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_run3(
    x: *const i8,
    step: usize,
    c: usize,
    in_row: usize,
    w: *const u32,
    kh: usize,
    start: [i32; 4],
    params: &[i32; 16],
    offset: i32,
    out: *mut i8,
    out_step: usize,
    n: usize,
) {
    for i in 0..n {
        // SAFETY: the caller's promise, pixel by pixel.
        unsafe {
            let acc = taps4_rows3_raw(x.add(i * step), c, in_row, w, kh, start);
            requantize4_store_raw(acc, params.as_ptr(), offset, out.add(i * out_step));
        }
    }
}

/// DEPTHWISE_CONV_2D (depth multiplier 1) for windows over [`MAX_TAPS`]: four channels at a
/// time, the offset added to each widened input value.
#[inline(never)]
fn depthwise_direct(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
    let c = input.c;
    let offset = splat16(a.input_offset);
    let in_row = usize::from(input.stored.w) * c;
    let filter_row = a.kw * c;
    for oy in usize::from(compute.y0)..usize::from(compute.y0 + compute.h) {
        let (iy0, ky_lo, ky_hi) = reference::window_range(oy, a.sh, a.pad_top, a.kh, a.in_h);
        for ox in usize::from(compute.x0)..usize::from(compute.x0 + compute.w) {
            let (ix0, kx_lo, kx_hi) = reference::window_range(ox, a.sw, a.pad_left, a.kw, a.in_w);
            let (rows, cols) = (ky_hi - ky_lo, kx_hi - kx_lo);
            if rows == 0 || cols == 0 {
                let px = out.pixel_mut(oy, ox);
                for (ch, v) in px.iter_mut().enumerate() {
                    *v = finish(a, ch, 0, 0);
                }
                continue;
            }
            let x = input.index((iy0 + ky_lo as isize) as usize, (ix0 + kx_lo as isize) as usize);
            let w = (ky_lo * a.kw + kx_lo) * c;
            let px = out.pixel_mut(oy, ox);
            let mut ch = 0;
            // Four channels at a time: bytes 0 and 2 in one register's halves, 1 and 3 in another.
            while ch + 4 <= c {
                let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
                // SAFETY: Bounds::check covers every in-bounds tap: `rows` input rows of `cols`
                // pixels from `x`, a stored row apart, and the matching filter taps from `w`;
                // channels ch..ch + 4 lie in every pixel.
                unsafe {
                    let (mut xr, mut wr) = (input.data.as_ptr().add(x + ch), a.filter.as_ptr().add(w + ch));
                    for _ in 0..rows {
                        let (mut xp, mut wp) = (xr, wr);
                        for _ in 0..cols {
                            let (xv, wv) = (load(xp), load(wp));
                            let (x02, x13) = (sadd16(sxtb16(xv), offset), sadd16(sxtb16_ror8(xv), offset));
                            let (w02, w13) = (sxtb16(wv), sxtb16_ror8(wv));
                            a0 = smlabb(x02, w02, a0);
                            a2 = smlatt(x02, w02, a2);
                            a1 = smlabb(x13, w13, a1);
                            a3 = smlatt(x13, w13, a3);
                            (xp, wp) = (xp.add(c), wp.add(c));
                        }
                        (xr, wr) = (xr.add(in_row), wr.add(filter_row));
                    }
                }
                px[ch] = finish(a, ch, a0, 0);
                px[ch + 1] = finish(a, ch + 1, a1, 0);
                px[ch + 2] = finish(a, ch + 2, a2, 0);
                px[ch + 3] = finish(a, ch + 3, a3, 0);
                ch += 4;
            }
            for (ch, o) in px.iter_mut().enumerate().skip(ch) {
                let mut acc = 0;
                for ky in 0..rows {
                    for kx in 0..cols {
                        let xv = input.data[x + ky * in_row + kx * c + ch];
                        acc +=
                            i32::from(a.filter[w + ky * filter_row + kx * c + ch]) * (i32::from(xv) + a.input_offset);
                    }
                }
                *o = finish(a, ch, acc, 0);
            }
        }
    }
}

/// ADD without broadcasting, row by row, each requantization one [`requantize_high`]: exact
/// when the shifted inputs `(x + offset) << 20` (below `2^28`) and their scaled sum (below
/// `2^29`) stay under `2^30` after the left shifts; returns false (nothing written) where
/// that does not hold or an input broadcasts, for the reference kernel to run.
#[inline(never)]
fn add(a: &AddArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) -> bool {
    const LEFT_SHIFT: i32 = 20;
    let c = out.c;
    let inside = |v: &View| {
        let (s, r) = (v.stored, compute);
        r.y0 >= s.y0
            && r.x0 >= s.x0
            && r.y0 + r.h <= s.y0 + s.h
            && r.x0 + r.w <= s.x0 + s.w
            && v.data.len() >= s.pixels() * v.c
            && v.c == c
    };
    let (s1, s2, so) = (a.input1.1, a.input2.1, a.output.1);
    if bcast != [Broadcast::NONE; 2] || s1 > 1 || s2 > 1 || so > 0 || !inside(in1) || !inside(in2) {
        return false;
    }
    if !(inside(&View { data: out.data, stored: out.stored, c: out.c })) {
        return false;
    }
    let (q1, q2, qo) = (
        ChannelQuant::new(0, a.input1.0, s1),
        ChannelQuant::new(0, a.input2.0, s2),
        ChannelQuant::new(0, a.output.0, so),
    );
    let scale = |q: ChannelQuant, x: i32| requantize_high(x << q.left, q.multiplier, q.e, q.round, q.negative);
    let n = usize::from(compute.w) * c;
    for oy in usize::from(compute.y0)..usize::from(compute.y0 + compute.h) {
        let x0 = usize::from(compute.x0);
        let (i1, i2, o) = (in1.index(oy, x0), in2.index(oy, x0), out.index(oy, x0));
        let (r1, r2) = (&in1.data[i1..i1 + n], &in2.data[i2..i2 + n]);
        for ((o, &v1), &v2) in out.data[o..o + n].iter_mut().zip(r1).zip(r2) {
            let x1 = scale(q1, (i32::from(v1) + a.input1_offset) << LEFT_SHIFT);
            let x2 = scale(q2, (i32::from(v2) + a.input2_offset) << LEFT_SHIFT);
            let v = scale(qo, x1 + x2) + a.output_offset;
            *o = v.clamp(i32::from(a.clamp.min), i32::from(a.clamp.max)) as i8;
        }
    }
    true
}

/// FULLY_CONNECTED, two outputs at a time; per-tensor or per-output requantization.
#[inline(never)]
fn fully_connected(a: &FcArgs, input: &[i8], out: &mut [i8]) {
    let n = input.len();
    let finish = |acc: i32, o: usize| {
        let bias = if a.bias.is_empty() { 0 } else { a.bias[o] };
        let q = if a.multiplier.len() == 1 { 0 } else { o };
        requantize(acc + bias, a.multiplier[q], a.shift[q], a.output_offset, a.clamp)
    };
    for o in (0..out.len()).step_by(2) {
        let o1 = (o + 1).min(out.len() - 1);
        let (w0, w1) = (&a.filter[o * n..][..n], &a.filter[o1 * n..][..n]);
        // SAFETY: three slices of n bytes.
        let [d0, d1] = unsafe { dot_1x2(input.as_ptr(), w0.as_ptr(), w1.as_ptr(), n, [0, 0]) };
        let v1 = finish(d1 + a.input_offset * sum(w1), o1);
        out[o] = finish(d0 + a.input_offset * sum(w0), o);
        if o1 != o {
            out[o1] = v1;
        }
    }
}
