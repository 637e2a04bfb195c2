//! The cross-set kernel check: random cases of every kernel family run through a kernel set and
//! through the reference, and the bytes must agree, the way tract tests each optimized kernel
//! against its reference twin. Random shapes and values, kernels up to 5x5 (depthwise up to
//! 8x8), strides 1 to 3, SAME and VALID padding, input offsets, clamps, windows too large for
//! a set's scratch, and odd tiles: the input stored as just the rows and columns a random
//! compute region reads, the output as a rectangle around it (the pixels outside the compute
//! region must stay untouched).
//!
//! `no_std` and allocation-free: the host's tests (`harness/tests/kernel_sets.rs`) and a
//! firmware image on QEMU (`patchbench` builds it for `qemu-m4` and `qemu-m33`, where the DSP
//! set runs its inline assembly) run the same cases from the same seeds.

use super::{AddArgs, Broadcast, ConvArgs, FcArgs, Kernels, PoolArgs, Reference, View, ViewMut};
use crate::model::{Clamp, Padding, Window};
use crate::plan::Region;

/// A kernel whose bytes departed from the reference's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Kernel family (TFLite operator name).
    pub kernel: &'static str,
    /// The case's seed (rerun it alone with the same limits).
    pub seed: u64,
    /// First byte of the stored output that differs.
    pub byte: u32,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}, case {}: byte {} of the stored output departs from the reference",
            self.kernel, self.seed, self.byte
        )
    }
}

/// How large cases get: what the caller's scratch must hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest input height and width.
    pub max_hw: u16,
    /// Largest channel count of most cases.
    pub max_c: usize,
    /// Largest channel count of the few cases with windows beyond a set's scratch.
    pub large_c: usize,
}

impl Limits {
    /// The host's cases.
    pub const HOST: Limits = Limits { max_hw: 12, max_c: 19, large_c: 80 };
    /// A device's cases (they fit [`Limits::scratch_words`] of a few hundred KiB).
    pub const DEVICE: Limits = Limits { max_hw: 8, max_c: 19, large_c: 48 };

    /// Words of scratch the cases need.
    pub const fn scratch_words(self) -> usize {
        let c = if self.large_c > self.max_c { self.large_c } else { self.max_c };
        let hw = self.max_hw as usize * self.max_hw as usize;
        let out_c = if 3 * c > 9 { 3 * c } else { 9 };
        // Filter (5x5 x c x 9, or 8x8 x 3c), the input and its crop, two outputs (bytes);
        // three parameters per output channel (words); a word of rounding per buffer; and
        // FULLY_CONNECTED's 300 x 13 filter.
        let filter = if 225 * c > 192 * c { 225 * c } else { 192 * c };
        // What a set packs for a depthwise layer of up to 8x8 taps (words).
        let packed = (c / 4 + 1) * (2 * 64 + 32);
        (filter + 2 * hw * c + 2 * hw * out_c).div_ceil(4) + 3 * out_c + packed + 16 + 1024
    }
}

/// What a run checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Kernel calls compared.
    pub calls: u32,
    /// Of them, windows larger than a set's scratch (conv over 576 values, depthwise over
    /// 49 taps).
    pub large: u32,
    /// Conv cases with a stride over 1.
    pub strided: u32,
    /// Conv cases with padding.
    pub padded: u32,
    /// Conv cases computing part of their output (a tile).
    pub tiled: u32,
    /// Depthwise cases run with the constants the set packed at build time.
    pub packed: u32,
}

/// splitmix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn fill(&mut self, out: &mut [i8]) {
        for v in out {
            *v = self.next() as i8;
        }
    }

    fn clamp(&mut self) -> Clamp {
        match self.range(0, 2) {
            0 => Clamp::NONE,
            1 => Clamp { min: self.range(-128, -1) as i8, max: 127 },
            _ => Clamp { min: self.range(-128, -21) as i8, max: self.range(0, 127) as i8 },
        }
    }

    /// A Q31 multiplier in [0.5, 1) and a shift, as the importer derives them: right shifts
    /// (up to the largest, 31), or with `any` now and then none or a left one.
    fn requant(&mut self, any: bool) -> (i32, i32) {
        let shift = if any {
            self.range(-14, 2)
        } else if self.chance(5) {
            -31
        } else {
            self.range(-14, -1)
        };
        (self.range(1 << 30, i32::MAX as i64 - 1) as i32, shift as i32)
    }
}

/// Scratch carved into the buffers of one case.
struct Carver<'a> {
    rest: &'a mut [u32],
}

impl<'a> Carver<'a> {
    fn words(&mut self, n: usize) -> Option<&'a mut [u32]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = core::mem::take(&mut self.rest).split_at_mut(n);
        self.rest = tail;
        Some(head)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a mut [i8]> {
        Some(&mut bytemuck::cast_slice_mut(self.words(n.div_ceil(4))?)[..n])
    }

    fn ints(&mut self, n: usize) -> Option<&'a mut [i32]> {
        Some(bytemuck::cast_slice_mut(self.words(n)?))
    }
}

/// The geometry of one windowed op.
struct Geometry {
    in_hw: (usize, usize),
    out_hw: (usize, usize),
    k: (usize, usize),
    s: (usize, usize),
    pad: (usize, usize),
}

fn geometry(rng: &mut Rng, max_hw: u16, max_k: u8) -> Option<Geometry> {
    let (ih, iw) = (rng.range(1, max_hw.into()) as u16, rng.range(1, max_hw.into()) as u16);
    let (kh, kw) = (rng.range(1, max_k.into()) as u8, rng.range(1, max_k.into()) as u8);
    let (sh, sw) = (rng.range(1, 3) as u8, rng.range(1, 3) as u8);
    let padding = if rng.chance(60) { Padding::Same } else { Padding::Valid };
    let (oh, ow) = (Window::out_size(padding, ih, kh, sh), Window::out_size(padding, iw, kw, sw));
    if oh == 0 || ow == 0 {
        return None;
    }
    let pad = (Window::leading_pad(padding, ih, oh, kh, sh), Window::leading_pad(padding, iw, ow, kw, sw));
    Some(Geometry {
        in_hw: (ih.into(), iw.into()),
        out_hw: (oh.into(), ow.into()),
        k: (kh.into(), kw.into()),
        s: (sh.into(), sw.into()),
        pad: (pad.0.into(), pad.1.into()),
    })
}

/// A random compute region of the output, the output rectangle stored around it, and the
/// input rectangle it reads.
fn regions(rng: &mut Rng, g: &Geometry) -> (Region, Region, Region) {
    let span = |rng: &mut Rng, n: usize| {
        let a = rng.usize(0, n - 1);
        (a, rng.usize(a + 1, n))
    };
    let ((y0, y1), (x0, x1)) = (span(rng, g.out_hw.0), span(rng, g.out_hw.1));
    let compute = Region { y0: y0 as u16, x0: x0 as u16, h: (y1 - y0) as u16, w: (x1 - x0) as u16 };
    let grow = |rng: &mut Rng, lo: usize, hi: usize, n: usize| (rng.usize(0, lo), rng.usize(hi, n));
    let ((sy0, sy1), (sx0, sx1)) = (grow(rng, y0, y1, g.out_hw.0), grow(rng, x0, x1, g.out_hw.1));
    let stored = Region { y0: sy0 as u16, x0: sx0 as u16, h: (sy1 - sy0) as u16, w: (sx1 - sx0) as u16 };
    let reads = |o0: usize, o1: usize, s: usize, pad: usize, k: usize, n: usize| {
        let lo = (o0 * s).saturating_sub(pad);
        let hi = ((o1 - 1) * s + k).saturating_sub(pad).min(n);
        (lo.min(hi), hi)
    };
    let (iy0, iy1) = reads(y0, y1, g.s.0, g.pad.0, g.k.0, g.in_hw.0);
    let (ix0, ix1) = reads(x0, x1, g.s.1, g.pad.1, g.k.1, g.in_hw.1);
    let input = Region { y0: iy0 as u16, x0: ix0 as u16, h: (iy1 - iy0) as u16, w: (ix1 - ix0) as u16 };
    (compute, stored, input)
}

/// The rows and columns of `r` of a full `w`-wide, `c`-channel tensor, into `out`.
fn crop(full: &[i8], w: usize, c: usize, r: Region, out: &mut [i8]) {
    let row = usize::from(r.w) * c;
    for (k, y) in (usize::from(r.y0)..usize::from(r.y0 + r.h)).enumerate() {
        let from = (y * w + usize::from(r.x0)) * c;
        out[k * row..(k + 1) * row].copy_from_slice(&full[from..from + row]);
    }
}

/// Runs `run` into two outputs (set, reference) that start alike; the first difference fails.
fn agree(
    kernel: &'static str,
    seed: u64,
    want: &mut [i8],
    got: &mut [i8],
    stored: Region,
    c: usize,
    run: impl Fn(bool, &mut ViewMut),
) -> Result<(), Failure> {
    want.fill(0x55);
    got.fill(0x55);
    run(false, &mut ViewMut { data: want, stored, c });
    run(true, &mut ViewMut { data: got, stored, c });
    match want.iter().zip(got.iter()).position(|(a, b)| a != b) {
        Some(byte) => Err(Failure { kernel, seed, byte: byte as u32 }),
        None => Ok(()),
    }
}

/// CONV_2D or DEPTHWISE_CONV_2D case `seed`, counted in `tally`.
fn conv_case<K: Kernels>(
    seed: u64,
    depthwise: bool,
    l: Limits,
    scratch: &mut [u32],
    tally: &mut Tally,
) -> Result<(), Failure> {
    let mut rng = Rng(seed ^ if depthwise { 0xd3 } else { 0xc0 });
    // Depthwise windows up to 8x8 now and then (more taps than a set keeps widened).
    let max_k = if depthwise && seed.is_multiple_of(8) { 8 } else { 5 };
    let Some(g) = geometry(&mut rng, l.max_hw, max_k) else { return Ok(()) };
    let c = if rng.chance(15) { rng.usize(30, l.large_c) } else { rng.usize(1, l.max_c) };
    let oc = if depthwise { c * if rng.chance(20) { rng.usize(2, 3) } else { 1 } } else { rng.usize(1, 9) };
    let taps = g.k.0 * g.k.1;
    let (compute, stored, read) = regions(&mut rng, &g);
    let mut s = Carver { rest: scratch };
    let n_filter = if depthwise { taps * oc } else { taps * c * oc };
    let (
        Some(filter),
        Some(bias),
        Some(mult),
        Some(shift),
        Some(packed),
        Some(full),
        Some(input),
        Some(want),
        Some(got),
    ) = (
        s.bytes(n_filter),
        s.ints(oc),
        s.ints(oc),
        s.ints(oc),
        s.ints((c / 4 + 1) * (2 * taps + 32)),
        s.bytes(g.in_hw.0 * g.in_hw.1 * c),
        s.bytes(read.pixels() * c),
        s.bytes(stored.pixels() * oc),
        s.bytes(stored.pixels() * oc),
    )
    else {
        return Ok(());
    };
    rng.fill(filter);
    let with_bias = rng.chance(80);
    // Most layers shift every channel right (the sets' fast forms); some do not.
    let any_shift = rng.chance(30);
    for o in 0..oc {
        bias[o] = rng.range(-20_000, 19_999) as i32;
        (mult[o], shift[o]) = rng.requant(any_shift);
    }
    rng.fill(full);
    crop(full, g.in_hw.1, c, read, input);
    let a = ConvArgs {
        kh: g.k.0,
        kw: g.k.1,
        sh: g.s.0,
        sw: g.s.1,
        pad_top: g.pad.0,
        pad_left: g.pad.1,
        in_h: g.in_hw.0,
        in_w: g.in_hw.1,
        filter,
        bias: if with_bias { bias } else { &[] },
        multiplier: mult,
        shift,
        input_offset: rng.range(-127, 128) as i32,
        output_offset: rng.range(-128, 127) as i32,
        clamp: rng.clamp(),
        packed: &[],
    };
    // Half the depthwise cases run with what the set packs at build time.
    let n = if depthwise && oc == c && rng.chance(50) { K::pack_depthwise(&a, c, packed) } else { 0 };
    let a = ConvArgs { packed: &packed[..n], ..a };
    tally.packed += u32::from(n > 0);
    let view = View { data: input, stored: read, c };
    let kernel = if depthwise { "DEPTHWISE_CONV_2D" } else { "CONV_2D" };
    agree(kernel, seed, want, got, stored, oc, |optimized, out| match (optimized, depthwise) {
        (false, false) => Reference::conv2d(&a, &view, out, compute),
        (true, false) => K::conv2d(&a, &view, out, compute),
        (false, true) => Reference::depthwise_conv2d(&a, &view, out, compute),
        (true, true) => K::depthwise_conv2d(&a, &view, out, compute),
    })?;
    tally.large += u32::from(if depthwise { taps > 49 } else { taps * c > 576 });
    tally.strided += u32::from(g.s != (1, 1));
    tally.padded += u32::from(g.pad != (0, 0));
    tally.tiled += u32::from((usize::from(compute.h), usize::from(compute.w)) != g.out_hw);
    Ok(())
}

fn pool_case<K: Kernels>(seed: u64, l: Limits, scratch: &mut [u32]) -> Result<(), Failure> {
    let mut rng = Rng(seed ^ 0x9001);
    let Some(g) = geometry(&mut rng, l.max_hw, 4) else { return Ok(()) };
    let c = rng.usize(1, l.max_c);
    let (compute, stored, read) = regions(&mut rng, &g);
    let mut s = Carver { rest: scratch };
    let (Some(full), Some(input), Some(want), Some(got)) = (
        s.bytes(g.in_hw.0 * g.in_hw.1 * c),
        s.bytes(read.pixels() * c),
        s.bytes(stored.pixels() * c),
        s.bytes(stored.pixels() * c),
    ) else {
        return Ok(());
    };
    rng.fill(full);
    crop(full, g.in_hw.1, c, read, input);
    let a = PoolArgs {
        kh: g.k.0,
        kw: g.k.1,
        sh: g.s.0,
        sw: g.s.1,
        pad_top: g.pad.0,
        pad_left: g.pad.1,
        in_h: g.in_hw.0,
        in_w: g.in_hw.1,
        clamp: rng.clamp(),
    };
    let view = View { data: input, stored: read, c };
    agree("AVERAGE_POOL_2D", seed, want, got, stored, c, |optimized, out| {
        if optimized {
            K::average_pool(&a, &view, out, compute)
        } else {
            Reference::average_pool(&a, &view, out, compute)
        }
    })?;
    agree("MAX_POOL_2D", seed, want, got, stored, c, |optimized, out| {
        if optimized {
            K::max_pool(&a, &view, out, compute)
        } else {
            Reference::max_pool(&a, &view, out, compute)
        }
    })
}

fn add_case<K: Kernels>(seed: u64, l: Limits, scratch: &mut [u32]) -> Result<(), Failure> {
    let mut rng = Rng(seed ^ 0xadd);
    let (h, w, c) = (rng.usize(1, 9.min(l.max_hw.into())), rng.usize(1, 9.min(l.max_hw.into())), rng.usize(1, l.max_c));
    let g = Geometry { in_hw: (h, w), out_hw: (h, w), k: (1, 1), s: (1, 1), pad: (0, 0) };
    let (compute, stored, read) = regions(&mut rng, &g);
    let mut s = Carver { rest: scratch };
    let (Some(x1), Some(x2), Some(t1), Some(t2), Some(want), Some(got)) = (
        s.bytes(h * w * c),
        s.bytes(h * w * c),
        s.bytes(read.pixels() * c),
        s.bytes(read.pixels() * c),
        s.bytes(stored.pixels() * c),
        s.bytes(stored.pixels() * c),
    ) else {
        return Ok(());
    };
    rng.fill(x1);
    rng.fill(x2);
    crop(x1, w, c, read, t1);
    crop(x2, w, c, read, t2);
    let a = AddArgs {
        input1_offset: rng.range(-127, 128) as i32,
        input2_offset: rng.range(-127, 128) as i32,
        output_offset: rng.range(-128, 127) as i32,
        input1: (rng.range(1 << 30, i32::MAX as i64 - 1) as i32, rng.range(-3, 0) as i32),
        input2: (rng.range(1 << 30, i32::MAX as i64 - 1) as i32, rng.range(-3, 0) as i32),
        output: (rng.range(1 << 30, i32::MAX as i64 - 1) as i32, rng.range(-24, -16) as i32),
        clamp: rng.clamp(),
    };
    let (v1, v2) = (View { data: t1, stored: read, c }, View { data: t2, stored: read, c });
    let bcast = [Broadcast::NONE; 2];
    agree("ADD", seed, want, got, stored, c, |optimized, out| {
        if optimized {
            K::add(&a, &v1, &v2, bcast, out, compute)
        } else {
            Reference::add(&a, &v1, &v2, bcast, out, compute)
        }
    })
}

fn fc_case<K: Kernels>(seed: u64, scratch: &mut [u32]) -> Result<(), Failure> {
    let mut rng = Rng(seed ^ 0xfc);
    let (n, outs) = (rng.usize(1, 300), rng.usize(1, 13));
    let per_output = rng.chance(50);
    let q = if per_output { outs } else { 1 };
    let mut s = Carver { rest: scratch };
    let (Some(filter), Some(bias), Some(mult), Some(shift), Some(input), Some(want), Some(got)) =
        (s.bytes(n * outs), s.ints(outs), s.ints(q), s.ints(q), s.bytes(n), s.bytes(outs), s.bytes(outs))
    else {
        return Ok(());
    };
    rng.fill(filter);
    rng.fill(input);
    let with_bias = rng.chance(80);
    for b in bias.iter_mut() {
        *b = rng.range(-20_000, 19_999) as i32;
    }
    for k in 0..q {
        (mult[k], shift[k]) = rng.requant(true);
    }
    let a = FcArgs {
        filter,
        bias: if with_bias { bias } else { &[] },
        multiplier: mult,
        shift,
        input_offset: rng.range(-127, 128) as i32,
        output_offset: rng.range(-128, 127) as i32,
        clamp: rng.clamp(),
    };
    want.fill(0x55);
    got.fill(0x55);
    Reference::fully_connected(&a, input, want);
    K::fully_connected(&a, input, got);
    match want.iter().zip(got.iter()).position(|(a, b)| a != b) {
        Some(byte) => Err(Failure { kernel: "FULLY_CONNECTED", seed, byte: byte as u32 }),
        None => Ok(()),
    }
}

/// Checks kernel set `K` against the reference on the cases of `seeds`, sized by `limits`,
/// in `scratch` (at least [`Limits::scratch_words`]; a case that does not fit is skipped).
pub fn check<K: Kernels>(seeds: core::ops::Range<u64>, limits: Limits, scratch: &mut [u32]) -> Result<Tally, Failure> {
    let mut tally = Tally::default();
    for seed in seeds {
        for depthwise in [false, true] {
            conv_case::<K>(seed, depthwise, limits, scratch, &mut tally)?;
        }
        pool_case::<K>(seed, limits, scratch)?;
        add_case::<K>(seed, limits, scratch)?;
        fc_case::<K>(seed, scratch)?;
        tally.calls += 7;
    }
    Ok(tally)
}
