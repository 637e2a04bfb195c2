//! Every kernel set against the reference on the host: `harness::kernels::check`'s random
//! cases (shapes, values, borders, strides, padding, odd tiles, windows too large for a set's
//! scratch), which a firmware image also runs on QEMU (`host/tests/qemu_e2e.rs`); and the DSP
//! set's requantization against TFLM's arithmetic.
//!
//! `PATCHBENCH_KERNEL_CASES` sets the cases per kernel (300 by default).

use harness::kernels::check::{self, Limits, Tally};
use harness::kernels::dsp::{self, Dsp};
use harness::kernels::{ConvArgs, Kernels, Reference, View, ViewMut};
use harness::model::Clamp;
use harness::plan::Region;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> u64 {
    std::env::var("PATCHBENCH_KERNEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
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

/// `harness::kernels::check` of set `K` on the host: the same cases a firmware image runs on
/// QEMU, larger.
fn check_set<K: Kernels>() -> Tally {
    let limits = Limits::HOST;
    let mut scratch = vec![0u32; limits.scratch_words()];
    check::check::<K>(0..cases(), limits, &mut scratch).unwrap_or_else(|f| panic!("{f}"))
}

#[test]
fn the_dsp_set_gives_the_reference_bytes() {
    let tally = check_set::<Dsp>();
    // Every family ran; the conv cases reach strides, padding, tiles and windows too large for
    // the set's scratch (so a set that skips a path is caught, not passed by luck).
    let n = cases() as u32;
    assert_eq!(tally.calls, 7 * n, "{tally:?}");
    assert!(tally.strided > n && tally.padded > n / 2 && tally.tiled > n && tally.large > n / 50, "{tally:?}");
    // ... and depthwise cases run with the constants the set packed at build time.
    assert!(tally.packed > n / 20, "{tally:?}");
}

/// The portable set is the DSP set's code (its instructions as their twins here): the same
/// cases pass through its own entry points.
#[test]
fn the_portable_set_gives_the_reference_bytes() {
    let tally = check_set::<harness::kernels::dsp::Portable>();
    assert_eq!(tally.calls, 7 * cases() as u32, "{tally:?}");
}

/// The shared check fails when a set departs from the reference (it is not a check that
/// cannot fail): a set whose CONV_2D adds one to every output.
#[test]
fn the_check_catches_a_wrong_kernel() {
    struct OffByOne;
    impl Kernels for OffByOne {
        const SET: harness::kernels::KernelSet = harness::kernels::KernelSet::Reference;
        fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
            Reference::conv2d(&ConvArgs { output_offset: a.output_offset + 1, ..*a }, input, out, compute)
        }
    }
    let limits = Limits::HOST;
    let mut scratch = vec![0u32; limits.scratch_words()];
    let failure = check::check::<OffByOne>(0..cases(), limits, &mut scratch).expect_err("the wrong kernel passed");
    assert_eq!(failure.kernel, "CONV_2D");
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

/// The doubled form the DSP set's fast paths use (`SMMLAR(2x, m, round - [x < 0]) >> e`) is
/// TFLM's two roundings for every accumulator under `2^30` and every right shift, the
/// rounding ties of both steps included.
#[test]
fn requantization_of_doubled_accumulators_is_tflms() {
    use harness::kernels::simd::requantize_x2_sat8;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for i in 0..400_000 {
        let e = if i % 50 == 0 { 31 } else { rng.gen_range(1..=31) };
        let m = match rng.gen_range(0..4) {
            0 => 1 << 30,
            1 => i32::MAX,
            _ => rng.gen_range(1 << 30..i32::MAX),
        };
        let acc: i32 = match rng.gen_range(0..4) {
            0 => rng.gen_range(-70_000..70_000),
            1 => rng.gen_range(-(1 << 30) + 1..1 << 30),
            2 => rng.gen_range(-3..=3),
            // Where the doubling high multiply lands on a tie of the rounding shift.
            _ => {
                let target = i64::from(rng.gen_range(-1000..1000)) * (1 << e) + (1 << (e - 1));
                ((target << 31) / i64::from(m)).clamp(-(1 << 30) + 1, (1 << 30) - 1) as i32
            }
        };
        let off = rng.gen_range(-128..=127);
        let want = (harness::fixedpoint::multiply_by_quantized_multiplier(acc, m, -e) + off).clamp(-128, 127);
        let got = requantize_x2_sat8(2 * acc, m, 1 << (e - 1), e as u32, off);
        assert_eq!(got, want, "acc {acc}, multiplier {m}, shift -{e}");
    }
}

/// A whole model as a DSP image runs it: its depthwise constants packed at build time
/// (`kernels::packed`), every op through the DSP set (portable twins here), gives the
/// reference engine's bytes, layer-wise and patched, for every zoo model.
#[cfg(feature = "std")]
#[test]
fn packed_models_on_the_dsp_set_give_the_reference_bytes() {
    use harness::plan::{plan, valid_splits, Grid, InputPlacement, PatchConfig};
    use harness::{exec, kernels, zoo};
    for (name, _) in zoo::MODELS {
        let m = zoo::build(name).unwrap();
        let model = m.as_model();
        let packed = kernels::packed::<Dsp>(&model);
        let packed_ops = packed
            .ops
            .iter()
            .filter(|op| matches!(&op.kind, harness::model::OpKind::DepthwiseConv2d(c) if c.packed.len > 0))
            .count();
        let depthwise =
            model.ops.iter().filter(|op| matches!(op.kind, harness::model::OpKind::DepthwiseConv2d(_))).count();
        assert_eq!(packed_ops, depthwise, "{name}: every depthwise layer of the zoo takes the packed form");
        packed.as_model().validate().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let input: Vec<i8> = (0..model.tensor(model.input).len()).map(|_| rng.gen()).collect();
        let splits = valid_splits(&model);
        let split = splits[splits.len() / 2];
        let out = model.tensor(model.ops[split as usize - 1].output);
        let grid = Grid::new(out.h.min(2), out.w.min(3));
        for config in [PatchConfig::LAYERWISE, PatchConfig { split, grid, input_in: InputPlacement::Flash }] {
            let p = plan(&model, config).unwrap();
            let mut arena = vec![0u8; p.arena_peak_bytes];
            let want = exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat();
            let mut arena = vec![0u8; p.arena_peak_bytes];
            let got = exec::run_with::<Dsp>(&packed.as_model(), &p.exec(), &mut arena, &input).unwrap().concat();
            assert_eq!(got, want, "{name} {config:?}");
        }
    }
}
