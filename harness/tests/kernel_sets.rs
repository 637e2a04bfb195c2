//! Every kernel set against the reference, the way tract tests each optimized kernel against
//! its reference twin: random shapes and values, kernels up to 5x5, strides 1 to 3, SAME and
//! VALID padding, input offsets, clamps, and odd tiles (the input stored as just the rows and
//! columns a random compute region reads, the output as a rectangle around it). The outputs
//! must be the reference's bytes, and the pixels outside the compute region untouched.
//!
//! `PATCHBENCH_KERNEL_CASES` sets the cases per kernel (300 by default).

use harness::kernels::dsp::{self, Dsp};
use harness::kernels::{AddArgs, Broadcast, ConvArgs, FcArgs, Kernels, PoolArgs, Reference, View, ViewMut};
use harness::model::{Clamp, Padding, Window};
use harness::plan::Region;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> u64 {
    std::env::var("PATCHBENCH_KERNEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

fn bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.gen()).collect()
}

fn clamp(rng: &mut ChaCha8Rng) -> Clamp {
    match rng.gen_range(0..3) {
        0 => Clamp::NONE,
        1 => Clamp { min: rng.gen_range(-128..0), max: 127 },
        _ => Clamp { min: rng.gen_range(-128..-20), max: rng.gen_range(0..=127) },
    }
}

/// A Q31 multiplier in [0.5, 1) and a shift, as the importer derives them (mostly right
/// shifts; a few left ones).
fn requant(rng: &mut ChaCha8Rng) -> (i32, i32) {
    (rng.gen_range(1 << 30..i32::MAX), rng.gen_range(-14..=2))
}

/// The geometry of one windowed op.
struct Geometry {
    in_hw: (usize, usize),
    out_hw: (usize, usize),
    k: (usize, usize),
    s: (usize, usize),
    pad: (usize, usize),
}

fn geometry(rng: &mut ChaCha8Rng, max_k: u8) -> Option<Geometry> {
    let (ih, iw) = (rng.gen_range(1..=12u16), rng.gen_range(1..=12u16));
    let (kh, kw) = (rng.gen_range(1..=max_k), rng.gen_range(1..=max_k));
    let (sh, sw) = (rng.gen_range(1..=3u8), rng.gen_range(1..=3u8));
    let padding = if rng.gen_bool(0.6) { Padding::Same } else { Padding::Valid };
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
fn regions(rng: &mut ChaCha8Rng, g: &Geometry) -> (Region, Region, Region) {
    let span = |rng: &mut ChaCha8Rng, n: usize| {
        let a = rng.gen_range(0..n);
        (a, rng.gen_range(a + 1..=n))
    };
    let ((y0, y1), (x0, x1)) = (span(rng, g.out_hw.0), span(rng, g.out_hw.1));
    let compute = Region { y0: y0 as u16, x0: x0 as u16, h: (y1 - y0) as u16, w: (x1 - x0) as u16 };
    let grow = |rng: &mut ChaCha8Rng, lo: usize, hi: usize, n: usize| (rng.gen_range(0..=lo), rng.gen_range(hi..=n));
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

/// The rows and columns of `r` from a full `h x w x c` tensor.
fn crop(full: &[i8], w: usize, c: usize, r: Region) -> Vec<i8> {
    let mut out = Vec::new();
    for y in r.y0 as usize..(r.y0 + r.h) as usize {
        let from = (y * w + r.x0 as usize) * c;
        out.extend_from_slice(&full[from..from + r.w as usize * c]);
    }
    out
}

/// Runs `kernel` of set `K` and of the reference on the same views; the bytes must agree.
fn agree(what: &str, seed: u64, c: usize, stored: Region, run: impl Fn(bool, &mut ViewMut)) {
    let n = stored.pixels() * c;
    let (mut want, mut got) = (vec![0x55u8 as i8; n], vec![0x55u8 as i8; n]);
    run(false, &mut ViewMut { data: &mut want, stored, c });
    run(true, &mut ViewMut { data: &mut got, stored, c });
    if let Some(i) = want.iter().zip(&got).position(|(a, b)| a != b) {
        panic!(
            "{what}, case {seed}: byte {i} of the stored output is {} where the reference gives {}",
            got[i], want[i]
        );
    }
}

fn conv_case<K: Kernels>(seed: u64, depthwise: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Depthwise windows up to 8x8 now and then (more taps than a set may keep widened).
    let max_k = if depthwise && seed.is_multiple_of(8) { 8 } else { 5 };
    let Some(g) = geometry(&mut rng, max_k) else { return };
    let c = rng.gen_range(1..=19);
    let oc =
        if depthwise { c * if rng.gen_bool(0.2) { rng.gen_range(2..=3) } else { 1 } } else { rng.gen_range(1..=9) };
    let taps = g.k.0 * g.k.1;
    let filter = bytes(&mut rng, if depthwise { taps * oc } else { taps * c * oc });
    let bias: Vec<i32> =
        if rng.gen_bool(0.8) { (0..oc).map(|_| rng.gen_range(-20_000..20_000)).collect() } else { vec![] };
    let (multiplier, shift): (Vec<i32>, Vec<i32>) = (0..oc).map(|_| requant(&mut rng)).unzip();
    let full_input = bytes(&mut rng, g.in_hw.0 * g.in_hw.1 * c);
    let (compute, stored, read) = regions(&mut rng, &g);
    let input = crop(&full_input, g.in_hw.1, c, read);
    let a = ConvArgs {
        kh: g.k.0,
        kw: g.k.1,
        sh: g.s.0,
        sw: g.s.1,
        pad_top: g.pad.0,
        pad_left: g.pad.1,
        in_h: g.in_hw.0,
        in_w: g.in_hw.1,
        filter: &filter,
        bias: &bias,
        multiplier: &multiplier,
        shift: &shift,
        input_offset: rng.gen_range(-127..=128),
        output_offset: rng.gen_range(-128..=127),
        clamp: clamp(&mut rng),
    };
    let view = View { data: &input, stored: read, c };
    let what = if depthwise { "DEPTHWISE_CONV_2D" } else { "CONV_2D" };
    agree(what, seed, oc, stored, |optimized, out| match (optimized, depthwise) {
        (false, false) => Reference::conv2d(&a, &view, out, compute),
        (true, false) => K::conv2d(&a, &view, out, compute),
        (false, true) => Reference::depthwise_conv2d(&a, &view, out, compute),
        (true, true) => K::depthwise_conv2d(&a, &view, out, compute),
    });
}

fn pool_case<K: Kernels>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let Some(g) = geometry(&mut rng, 4) else { return };
    let c = rng.gen_range(1..=19);
    let full_input = bytes(&mut rng, g.in_hw.0 * g.in_hw.1 * c);
    let (compute, stored, read) = regions(&mut rng, &g);
    let input = crop(&full_input, g.in_hw.1, c, read);
    let a = PoolArgs {
        kh: g.k.0,
        kw: g.k.1,
        sh: g.s.0,
        sw: g.s.1,
        pad_top: g.pad.0,
        pad_left: g.pad.1,
        in_h: g.in_hw.0,
        in_w: g.in_hw.1,
        clamp: clamp(&mut rng),
    };
    let view = View { data: &input, stored: read, c };
    agree("AVERAGE_POOL_2D", seed, c, stored, |optimized, out| {
        if optimized {
            K::average_pool(&a, &view, out, compute)
        } else {
            Reference::average_pool(&a, &view, out, compute)
        }
    });
    agree("MAX_POOL_2D", seed, c, stored, |optimized, out| {
        if optimized {
            K::max_pool(&a, &view, out, compute)
        } else {
            Reference::max_pool(&a, &view, out, compute)
        }
    });
}

fn add_case<K: Kernels>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (h, w, c) = (rng.gen_range(1..=9), rng.gen_range(1..=9), rng.gen_range(1..=19));
    let g = Geometry { in_hw: (h, w), out_hw: (h, w), k: (1, 1), s: (1, 1), pad: (0, 0) };
    let (compute, stored, read) = regions(&mut rng, &g);
    let (x1, x2) = (bytes(&mut rng, h * w * c), bytes(&mut rng, h * w * c));
    let (t1, t2) = (crop(&x1, w, c, read), crop(&x2, w, c, read));
    let a = AddArgs {
        input1_offset: rng.gen_range(-127..=128),
        input2_offset: rng.gen_range(-127..=128),
        output_offset: rng.gen_range(-128..=127),
        input1: (rng.gen_range(1 << 30..i32::MAX), rng.gen_range(-3..=0)),
        input2: (rng.gen_range(1 << 30..i32::MAX), rng.gen_range(-3..=0)),
        output: (rng.gen_range(1 << 30..i32::MAX), rng.gen_range(-24..=-16)),
        clamp: clamp(&mut rng),
    };
    let (v1, v2) = (View { data: &t1, stored: read, c }, View { data: &t2, stored: read, c });
    let bcast = [Broadcast::NONE; 2];
    agree("ADD", seed, c, stored, |optimized, out| {
        if optimized {
            K::add(&a, &v1, &v2, bcast, out, compute)
        } else {
            Reference::add(&a, &v1, &v2, bcast, out, compute)
        }
    });
}

fn fc_case<K: Kernels>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n, outs) = (rng.gen_range(1..=300), rng.gen_range(1..=13));
    let filter = bytes(&mut rng, n * outs);
    let bias: Vec<i32> =
        if rng.gen_bool(0.8) { (0..outs).map(|_| rng.gen_range(-20_000..20_000)).collect() } else { vec![] };
    let per_output = rng.gen_bool(0.5);
    let (multiplier, shift): (Vec<i32>, Vec<i32>) =
        (0..if per_output { outs } else { 1 }).map(|_| requant(&mut rng)).unzip();
    let input = bytes(&mut rng, n);
    let a = FcArgs {
        filter: &filter,
        bias: &bias,
        multiplier: &multiplier,
        shift: &shift,
        input_offset: rng.gen_range(-127..=128),
        output_offset: rng.gen_range(-128..=127),
        clamp: clamp(&mut rng),
    };
    let (mut want, mut got) = (vec![0i8; outs], vec![0i8; outs]);
    Reference::fully_connected(&a, &input, &mut want);
    K::fully_connected(&a, &input, &mut got);
    assert_eq!(got, want, "FULLY_CONNECTED, case {seed}: {n} inputs, {outs} outputs");
}

fn check_set<K: Kernels>() {
    for seed in 0..cases() {
        conv_case::<K>(seed, false);
        conv_case::<K>(seed, true);
        pool_case::<K>(seed);
        add_case::<K>(seed);
        fc_case::<K>(seed);
    }
}

#[test]
fn the_dsp_set_gives_the_reference_bytes() {
    check_set::<Dsp>();
}

/// The cases reach what they are meant to: interior and border windows, strides, depth
/// multipliers (so a set that skips a path is caught, not passed by luck).
#[test]
fn the_cases_cover_borders_strides_and_tiles() {
    let (mut strided, mut tiled, mut padded, mut large) = (0, 0, 0, 0);
    for seed in 0..cases() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Some(g) = geometry(&mut rng, 5) else { continue };
        strided += usize::from(g.s != (1, 1));
        padded += usize::from(g.pad != (0, 0));
        let c = if rng.gen_bool(0.15) { rng.gen_range(30..=80) } else { rng.gen_range(1..=19) };
        large += usize::from(g.k.0 * g.k.1 * c > 640);
        let (compute, _, _) = regions(&mut rng, &g);
        tiled += usize::from((compute.h as usize, compute.w as usize) != g.out_hw);
    }
    let n = cases() as usize;
    assert!(
        strided > n / 2 && tiled > n / 2 && padded > n / 4 && large > n / 50,
        "{strided} strided, {tiled} tiled, {padded} padded, {large} windows over 640 values"
    );
}

#[test]
fn requantization_without_division_is_tflms() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..200_000 {
        let acc: i32 = match rng.gen_range(0..3) {
            0 => rng.gen_range(-70_000..70_000),
            1 => rng.gen_range(-(1 << 30)..1 << 30),
            _ => rng.gen_range(-3..=3),
        };
        let (m, s) = requant(&mut rng);
        // Left shifts only for accumulators a layer can produce.
        let s = if acc.unsigned_abs() > 1 << 20 { s.min(0) } else { s };
        let (m, s) = if rng.gen_bool(0.02) { (0, 0) } else { (m, s - rng.gen_range(0..18)) };
        let c = clamp(&mut rng);
        let off = rng.gen_range(-128..=127);
        let want = (harness::fixedpoint::multiply_by_quantized_multiplier(acc, m, s) + off)
            .clamp(i32::from(c.min), i32::from(c.max)) as i8;
        assert_eq!(dsp::requantize(acc, m, s, off, c), want, "acc {acc}, multiplier {m}, shift {s}");
    }
}
