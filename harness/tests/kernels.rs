//! Hand-computed kernel cases: borders, padding, stride 2, tiles, rounding. Written once as a
//! macro over a kernel module so every optimized kernel set runs the same suite as the
//! reference.

use harness::kernels::{AddArgs, ConvArgs, FcArgs, PadArgs, PoolArgs, View, ViewMut};
use harness::model::{Clamp, MeanParams, SoftmaxParams};
use harness::plan::Region;

/// Q31 multiplier and shift for exactly 1.0 and 0.5.
const ONE: (i32, i32) = (1 << 30, 1);
const HALF: (i32, i32) = (1 << 30, 0);

fn full(h: u16, w: u16) -> Region {
    Region { y0: 0, x0: 0, h, w }
}

fn conv<'a>(
    k: usize,
    s: usize,
    pad: usize,
    in_hw: (usize, usize),
    filter: &'a [i8],
    mult: &'a [i32],
    shift: &'a [i32],
) -> ConvArgs<'a> {
    ConvArgs {
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        pad_top: pad,
        pad_left: pad,
        in_h: in_hw.0,
        in_w: in_hw.1,
        filter,
        bias: &[],
        multiplier: mult,
        shift,
        input_offset: 0,
        output_offset: 0,
        clamp: Clamp::NONE,
        packed: &[],
    }
}

fn pool(k: usize, s: usize, pad: usize, in_hw: (usize, usize)) -> PoolArgs {
    PoolArgs {
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        pad_top: pad,
        pad_left: pad,
        in_h: in_hw.0,
        in_w: in_hw.1,
        clamp: Clamp::NONE,
    }
}

macro_rules! kernel_suite {
    ($k:path) => {
        use super::*;
        use $k as k;

        #[test]
        fn conv_same_padding_counts_only_in_bounds_taps() {
            // 3x3 ones on a 3x3 image of ones: corners see 4 taps, edges 6, the centre 9.
            let input = [1i8; 9];
            let filter = [1i8; 9];
            let a = conv(3, 1, 1, (3, 3), &filter, &[ONE.0], &[ONE.1]);
            let mut out = [0i8; 9];
            let view = View { data: &input, stored: full(3, 3), c: 1 };
            k::conv2d(&a, &view, &mut ViewMut { data: &mut out, stored: full(3, 3), c: 1 }, full(3, 3));
            assert_eq!(out, [4, 6, 4, 6, 9, 6, 4, 6, 4]);
        }

        #[test]
        fn conv_zero_point_makes_padding_contribute_nothing() {
            // Input zero point 5: padding is real zero, i.e. contributes 0 after the offset.
            let input = [6i8; 9]; // real value 1 everywhere
            let filter = [1i8; 9];
            let mut a = conv(3, 1, 1, (3, 3), &filter, &[ONE.0], &[ONE.1]);
            a.input_offset = -5;
            a.output_offset = -3;
            let mut out = [0i8; 9];
            let view = View { data: &input, stored: full(3, 3), c: 1 };
            k::conv2d(&a, &view, &mut ViewMut { data: &mut out, stored: full(3, 3), c: 1 }, full(3, 3));
            assert_eq!(out, [1, 3, 1, 3, 6, 3, 1, 3, 1]);
        }

        #[test]
        fn conv_stride2_same_on_odd_input() {
            // 5x5 -> 3x3, SAME: total padding 2, one on top. Output (i, j) sums rows
            // 2i-1..2i+1 of an image whose value is its row index + 1.
            let input: Vec<i8> = (0..25).map(|i| (i / 5 + 1) as i8).collect();
            let filter = [1i8; 9];
            let a = conv(3, 2, 1, (5, 5), &filter, &[ONE.0], &[ONE.1]);
            let mut out = [0i8; 9];
            let view = View { data: &input, stored: full(5, 5), c: 1 };
            k::conv2d(&a, &view, &mut ViewMut { data: &mut out, stored: full(3, 3), c: 1 }, full(3, 3));
            // Row 0: rows 0..1 (values 1, 2); row 1: rows 1..3 (2, 3, 4); row 2: rows 3..4 (4, 5).
            // Columns: the border ones see 2 columns, the middle one 3.
            assert_eq!(out, [6, 9, 6, 18, 27, 18, 18, 27, 18]);
        }

        #[test]
        fn conv_multichannel_ohwi_with_bias_and_requantization() {
            // 1x1 conv, 2 in, 2 out: out0 = x0 + 2 x1, out1 = -x0 + x1, then bias, * 0.5.
            let input = [10i8, 20, -4, 8];
            let filter = [1i8, 2, -1, 1];
            let mut a = conv(1, 1, 0, (1, 2), &filter, &[HALF.0, ONE.0], &[HALF.1, ONE.1]);
            let bias = [1, -2];
            a.bias = &bias;
            a.clamp = Clamp { min: -10, max: 25 };
            let mut out = [0i8; 4];
            let view = View { data: &input, stored: full(1, 2), c: 2 };
            k::conv2d(&a, &view, &mut ViewMut { data: &mut out, stored: full(1, 2), c: 2 }, full(1, 2));
            // px0: (50 + 1) * .5 = 25.5 -> 26 -> clamp 25; (10 - 2) = 8.
            // px1: (12 + 1) * .5 = 6.5 -> 7; (12 - 2) = 10.
            assert_eq!(out, [25, 8, 7, 10]);
        }

        #[test]
        fn conv_tile_equals_the_same_region_of_the_full_output() {
            // A 3x4 tile with its halo, stored at (2, 1), computes what the full run computes.
            let (h, w, c) = (7usize, 6usize, 3usize);
            let input: Vec<i8> = (0..h * w * c).map(|i| ((i * 37 + 11) % 251) as i8).collect();
            let filter: Vec<i8> = (0..2 * 9 * c).map(|i| ((i * 13 + 5) % 255) as i8).collect();
            let (mult, shift) = ([1_500_000_000, 1_100_000_000], [-9, -8]);
            let mut a = conv(3, 1, 1, (h, w), &filter, &mult, &shift);
            a.input_offset = 7;
            let mut reference = vec![0i8; h * w * 2];
            let view = View { data: &input, stored: full(h as u16, w as u16), c };
            k::conv2d(
                &a,
                &view,
                &mut ViewMut { data: &mut reference, stored: full(h as u16, w as u16), c: 2 },
                full(h as u16, w as u16),
            );
            let compute = Region { y0: 2, x0: 1, h: 3, w: 4 };
            let halo = Region { y0: 1, x0: 0, h: 5, w: 6 };
            let mut tile_in = Vec::new();
            for y in 1..6 {
                tile_in.extend_from_slice(&input[(y * w) * c..(y * w + 6) * c]);
            }
            let mut tile_out = vec![0i8; 3 * 4 * 2];
            let view = View { data: &tile_in, stored: halo, c };
            k::conv2d(&a, &view, &mut ViewMut { data: &mut tile_out, stored: compute, c: 2 }, compute);
            for y in 0..3 {
                for x in 0..4 {
                    for o in 0..2 {
                        assert_eq!(
                            tile_out[(y * 4 + x) * 2 + o],
                            reference[((y + 2) * w + x + 1) * 2 + o],
                            "({y}, {x}, {o})"
                        );
                    }
                }
            }
        }

        #[test]
        fn depthwise_uses_hwc_filters_per_channel() {
            // 2 channels, 3x3 SAME on 2x2: channel 0 filter all 1, channel 1 only the centre 3.
            let input = [1i8, 10, 2, 20, 3, 30, 4, 40];
            let mut filter = [0i8; 18];
            for t in 0..9 {
                filter[t * 2] = 1;
            }
            filter[4 * 2 + 1] = 3;
            let a = conv(3, 1, 1, (2, 2), &filter, &[ONE.0, HALF.0], &[ONE.1, HALF.1]);
            let mut out = [0i8; 8];
            let view = View { data: &input, stored: full(2, 2), c: 2 };
            k::depthwise_conv2d(&a, &view, &mut ViewMut { data: &mut out, stored: full(2, 2), c: 2 }, full(2, 2));
            // Channel 0: every output sees all four pixels: 10. Channel 1: 3 * x / 2 rounded.
            assert_eq!(out, [10, 15, 10, 30, 10, 45, 10, 60]);
        }

        #[test]
        fn average_pool_rounds_half_away_from_zero_and_skips_padding() {
            let input = [1i8, 2, -1, -2];
            let mut out = [0i8; 4];
            let view = View { data: &input, stored: full(2, 2), c: 1 };
            // 1x2 windows, stride 1, VALID horizontally: [1, 2] -> 1.5 -> 2, [-1, -2] -> -2.
            let mut a = pool(1, 1, 0, (2, 2));
            a.kw = 2;
            k::average_pool(&a, &view, &mut ViewMut { data: &mut out[..2], stored: full(2, 1), c: 1 }, full(2, 1));
            assert_eq!(&out[..2], &[2, -2]);
            // 3x3 SAME: every output averages all four in-bounds values (0 / 4 = 0).
            k::average_pool(
                &pool(3, 1, 1, (2, 2)),
                &view,
                &mut ViewMut { data: &mut out, stored: full(2, 2), c: 1 },
                full(2, 2),
            );
            assert_eq!(out, [0, 0, 0, 0]);
            // Padding is excluded from the count: 3x3 SAME over [9, 0; 0, 0] gives 9/4 -> 2.
            let input = [9i8, 0, 0, 0];
            let view = View { data: &input, stored: full(2, 2), c: 1 };
            k::average_pool(
                &pool(3, 1, 1, (2, 2)),
                &view,
                &mut ViewMut { data: &mut out, stored: full(2, 2), c: 1 },
                full(2, 2),
            );
            assert_eq!(out, [2, 2, 2, 2]);
        }

        #[test]
        fn max_pool_stride2_and_clamp() {
            let input: Vec<i8> = vec![-5, -9, 3, 1, -7, -8, 4, 2, 0, 6, -1, -3, 7, 5, 8, -128];
            let mut out = [0i8; 4];
            let view = View { data: &input, stored: full(4, 4), c: 1 };
            let mut a = pool(2, 2, 0, (4, 4));
            k::max_pool(&a, &view, &mut ViewMut { data: &mut out, stored: full(2, 2), c: 1 }, full(2, 2));
            assert_eq!(out, [-5, 4, 7, 8]);
            a.clamp = Clamp { min: 0, max: 6 };
            k::max_pool(&a, &view, &mut ViewMut { data: &mut out, stored: full(2, 2), c: 1 }, full(2, 2));
            assert_eq!(out, [0, 4, 6, 6]);
        }

        #[test]
        fn add_rescales_both_inputs() {
            // Same scale s for both inputs and output 2s: out = (x1 + x2) / 2 (+ offsets).
            // TFLite: inputs * 0.5 (scaled to twice the max scale), output multiplier
            // 2s / (2^20 * 2s) = 2^-20.
            let a = AddArgs {
                input1_offset: 0,
                input2_offset: 4,
                output_offset: -1,
                input1: HALF,
                input2: HALF,
                output: (1 << 30, -19),
                clamp: Clamp::NONE,
            };
            let x1 = [10i8, -10, 127, 3];
            let x2 = [6i8, -4, 127, -8];
            let mut out = [0i8; 4];
            let v1 = View { data: &x1, stored: full(1, 4), c: 1 };
            let v2 = View { data: &x2, stored: full(1, 4), c: 1 };
            k::add(
                &a,
                &v1,
                &v2,
                [harness::kernels::Broadcast::NONE; 2],
                &mut ViewMut { data: &mut out, stored: full(1, 4), c: 1 },
                full(1, 4),
            );
            // (10 + 10) / 2 - 1 = 9; (-10 + 0) / 2 - 1 = -6; (127 + 131) / 2 - 1 = 128 -> 127;
            // (3 - 4) / 2 = -0.5 -> -1 (the rounding shift takes ties away from zero) - 1 = -2.
            assert_eq!(out, [9, -6, 127, -2]);
        }

        #[test]
        fn fully_connected_per_tensor_and_per_channel() {
            let input = [1i8, 2, 3];
            let filter = [1i8, 1, 1, -1, 0, 2];
            let bias = [0, 1];
            let mut a = FcArgs {
                filter: &filter,
                bias: &bias,
                multiplier: &[ONE.0],
                shift: &[ONE.1],
                input_offset: 1,
                output_offset: 10,
                clamp: Clamp::NONE,
            };
            let mut out = [0i8; 2];
            k::fully_connected(&a, &input, &mut out);
            // (2 + 3 + 4) + 10 = 19; (-2 + 8 + 1) + 10 = 17.
            assert_eq!(out, [19, 17]);
            let (m, s) = ([ONE.0, HALF.0], [ONE.1, HALF.1]);
            a.multiplier = &m;
            a.shift = &s;
            k::fully_connected(&a, &input, &mut out);
            // 7 * 0.5 = 3.5 -> 4, + 10.
            assert_eq!(out, [19, 14]);
        }

        #[test]
        fn softmax_uniform_and_dominant_rows() {
            // Logit scale 1/8: 0.125 * 2^26 = 0.5 * 2^24; diff_min = -floor(31 * 2^26 / 2^24).
            let (input_multiplier, input_left_shift, diff_min) = (1 << 30, 24, -124);
            let p = SoftmaxParams { input_multiplier, input_left_shift, diff_min };
            // Two rows of 4: equal logits -> 1/4 each = 64/256 -> -64.
            let input = [5i8, 5, 5, 5, 127, -128, -128, -128];
            let mut out = [0i8; 8];
            k::softmax(&p, &input, &mut out, 4);
            assert_eq!(&out[..4], &[-64, -64, -64, -64]);
            // A logit 255 levels (31.9 in real units) above the rest takes everything; the rest
            // are below diff_min and are exactly 0.
            assert_eq!(&out[4..], &[127, -128, -128, -128]);
            // Real logits 0, 1, 2: probabilities .090, .245, .665 -> q = p * 256 - 128.
            let input = [0i8, 8, 16];
            let mut out = [0i8; 3];
            k::softmax(&p, &input, &mut out, 3);
            assert_eq!(out, [-105, -65, 42]);
        }

        #[test]
        fn mean_folds_the_pixel_count_into_the_multiplier() {
            // 42 pixels, scale ratio 1.0: TFLM's multiplier 2^30 (shift 1) becomes
            // (2^30 << 5) / 42 with shift 1 - 5 = -4, so it rounds twice (not nearest).
            let (multiplier, shift) = harness::quant::mean_params(0.5, 0.5, 42);
            assert_eq!((multiplier, shift), (818_089_008, -4));
            let p = MeanParams { multiplier, shift, axes: harness::model::AXIS_H | harness::model::AXIS_W };
            // Channel 0: values -14 x 41 and 6, sum -568; zero point -19: (-568 + 798) = 230
            // -> 230 * 0.380952 = 87.6 -> 88 -> 88 / 16 = 5.5 -> 6 -> -13, where the exact
            // mean -13.52 would round to -14. Channel 1: a constant 100 stays 100.
            const DIMS: [usize; 3] = [6, 7, 2];
            let mut input = [0i8; 84];
            for (i, px) in input.chunks_exact_mut(2).enumerate() {
                px[0] = if i == 0 { 6 } else { -14 };
                px[1] = 100;
            }
            let mut out = [0i8; 2];
            k::mean(&p, (-19, -19), DIMS, &input, &mut out);
            assert_eq!(out, [-13, 100]);
            // Ratio 8: the same multiplier, shift 4 - 5: 230 -> 88 -> 44; channel 1
            // ((100 + 19) * 8 = 952 per pixel) saturates at 127.
            let (multiplier, shift) = harness::quant::mean_params(1.0, 0.125, 42);
            assert_eq!((multiplier, shift), (818_089_008, -1));
            k::mean(
                &MeanParams { multiplier, shift, axes: harness::model::AXIS_H | harness::model::AXIS_W },
                (-19, 0),
                DIMS,
                &input,
                &mut out,
            );
            assert_eq!(out, [44, 127]);
        }

        #[test]
        fn mean_over_any_axes_keeps_the_others_in_order() {
            // 2x3x2, values 0..12; the mean over width (3 values) of (y, ch), exactly 1:1.
            let input: Vec<i8> = (0..12).collect();
            let (multiplier, shift) = harness::quant::mean_params(1.0, 1.0, 3);
            let axes = harness::model::AXIS_W;
            let mut out = [0i8; 4];
            k::mean(&MeanParams { multiplier, shift, axes }, (0, 0), [2, 3, 2], &input, &mut out);
            // (0+2+4)/3 = 2, (1+3+5)/3 = 3, (6+8+10)/3 = 8, (7+9+11)/3 = 9.
            assert_eq!(out, [2, 3, 8, 9]);
            // Over channels and height: (0+1+6+7)/4 = 3.5 -> 4 (half away), 5.5 -> 6, 7.5 -> 8.
            let (multiplier, shift) = harness::quant::mean_params(1.0, 1.0, 4);
            let axes = harness::model::AXIS_H | harness::model::AXIS_C;
            let mut out = [0i8; 3];
            k::mean(&MeanParams { multiplier, shift, axes }, (0, 0), [2, 3, 2], &input, &mut out);
            assert_eq!(out, [4, 6, 8]);
        }

        #[test]
        fn relu_and_leaky_relu_requantize_each_side_and_relu6_clamps_raw() {
            use harness::model::{ActivationParams, Clamp};
            // x - 10 at scale 1:1 (2^30, shift 1); below zero times 1/4 (2^30, shift -1).
            let input = [-20i8, 9, 10, 11, 100];
            let p = ActivationParams { positive: (1 << 30, 1), negative: (1 << 30, -1), clamp: Clamp::NONE };
            let view = View { data: &input, stored: full(1, 5), c: 1 };
            let mut out = [0i8; 5];
            k::activation(&p, (10, -3), &view, &mut ViewMut { data: &mut out, stored: full(1, 5), c: 1 }, full(1, 5));
            // -30 / 4 = -7.5 -> -8 (ties away from zero) - 3; -1 / 4 = -0.25 -> 0 - 3; 0, 1, 90.
            assert_eq!(out, [-11, -3, -3, -2, 87]);
            k::clamp_raw(
                Clamp { min: 10, max: 50 },
                &view,
                &mut ViewMut { data: &mut out, stored: full(1, 5), c: 1 },
                full(1, 5),
            );
            assert_eq!(out, [10, 10, 10, 11, 50]);
        }

        #[test]
        fn maximum_and_minimum_compare_raw_values_with_broadcast() {
            use harness::kernels::Broadcast;
            let a = [1i8, -5, 7, 0];
            let b = [3i8];
            let (va, vb) = (View { data: &a, stored: full(1, 2), c: 2 }, View { data: &b, stored: full(1, 1), c: 1 });
            let bcast = [Broadcast::NONE, Broadcast { h: false, w: true, c: true }];
            let mut out = [0i8; 4];
            k::max_min(true, &va, &vb, bcast, &mut ViewMut { data: &mut out, stored: full(1, 2), c: 2 }, full(1, 2));
            assert_eq!(out, [3, 3, 7, 3]);
            k::max_min(false, &va, &vb, bcast, &mut ViewMut { data: &mut out, stored: full(1, 2), c: 2 }, full(1, 2));
            assert_eq!(out, [1, -5, 3, 0]);
        }

        #[test]
        fn reduce_max_keeps_the_other_axes() {
            // 2x3x2, values 0..12 with one negative; the maximum over height and width per channel.
            let mut input: Vec<i8> = (0..12).collect();
            input[11] = -100;
            let mut out = [0i8; 2];
            k::reduce_max(harness::model::AXIS_H | harness::model::AXIS_W, [2, 3, 2], &input, &mut out);
            assert_eq!(out, [10, 9]);
        }

        #[test]
        fn concat_joins_any_number_of_inputs_along_any_axis() {
            // 1x2x1, 1x2x2 and 1x2x1 along channels; 1x2x1 three times along height and width.
            let (a, b, c) = ([1i8, 2], [3i8, 4, 5, 6], [7i8, 8]);
            let (va, vb) = (View { data: &a, stored: full(1, 2), c: 1 }, View { data: &b, stored: full(1, 2), c: 2 });
            let vc = View { data: &c, stored: full(1, 2), c: 1 };
            let mut out = [0i8; 8];
            k::concat(2, &[va, vb, vc], &mut ViewMut { data: &mut out, stored: full(1, 2), c: 4 }, full(1, 2));
            assert_eq!(out, [1, 3, 4, 7, 2, 5, 6, 8]);
            let vb = View { data: &b[..2], stored: full(1, 2), c: 1 };
            let mut out = [0i8; 6];
            k::concat(0, &[va, vb, vc], &mut ViewMut { data: &mut out, stored: full(3, 2), c: 1 }, full(3, 2));
            assert_eq!(out, [1, 2, 3, 4, 7, 8]);
            k::concat(1, &[va, vb, vc], &mut ViewMut { data: &mut out, stored: full(1, 6), c: 1 }, full(1, 6));
            assert_eq!(out, [1, 2, 3, 4, 7, 8]);
            // One input is a copy.
            let mut out = [0i8; 2];
            k::concat(2, &[va], &mut ViewMut { data: &mut out, stored: full(1, 2), c: 1 }, full(1, 2));
            assert_eq!(out, a);
        }

        #[test]
        fn logistic_saturates_beyond_its_radius_and_is_one_half_at_zero() {
            let (multiplier, shift, radius) = harness::quant::logistic_params(0.1);
            let p = harness::model::LogisticParams { multiplier, shift, radius };
            // Real inputs -12.8, -1, 0, 1, 12.7 (scale 0.1, zero point 0).
            let input = [-128i8, -10, 0, 10, 127];
            let view = View { data: &input, stored: full(1, 5), c: 1 };
            let mut out = [0i8; 5];
            k::logistic(&p, 0, &view, &mut ViewMut { data: &mut out, stored: full(1, 5), c: 1 }, full(1, 5));
            // sigmoid(-1) = 0.269 -> 69 / 256 - 128 = -59; sigmoid(1) = 0.731 -> 187 -> 59.
            assert_eq!(out, [-128, -59, 0, 59, 127]);
        }

        #[test]
        fn transpose_moves_axes() {
            // 2x3x2 to channels, height, width (NHWC to NCHW).
            let input: Vec<i8> = (0..12).collect();
            let mut out = [0i8; 12];
            k::transpose([2, 0, 1], [2, 3, 2], &input, &mut out);
            assert_eq!(out, [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
        }

        #[test]
        fn pad_surrounds_the_input_and_tiles_agree() {
            // 2x2x2 input, one row above, two columns right, fill 7.
            let input = [1i8, 2, 3, 4, 5, 6, 7, 8];
            let a = PadArgs { top: 1, left: 0, in_h: 2, in_w: 2, value: 7 };
            let mut out = [0i8; 3 * 4 * 2];
            let view = View { data: &input, stored: full(2, 2), c: 2 };
            k::pad(&a, &view, &mut ViewMut { data: &mut out, stored: full(3, 4), c: 2 }, full(3, 4));
            #[rustfmt::skip]
            assert_eq!(out, [
                7, 7, 7, 7, 7, 7, 7, 7,
                1, 2, 3, 4, 7, 7, 7, 7,
                5, 6, 7, 8, 7, 7, 7, 7,
            ]);
            // A tile reading a stored rectangle of the input: output rows 1..3, columns 1..3.
            let tile = Region { y0: 1, x0: 1, h: 2, w: 2 };
            let part = [3i8, 4, 7, 8]; // input column 1, rows 0..2
            let view = View { data: &part, stored: Region { y0: 0, x0: 1, h: 2, w: 1 }, c: 2 };
            let mut t = [0i8; 8];
            k::pad(&a, &view, &mut ViewMut { data: &mut t, stored: tile, c: 2 }, tile);
            assert_eq!(t, [3, 4, 7, 7, 7, 8, 7, 7]);
        }
    };
}

mod reference {
    kernel_suite!(harness::kernels::reference);
}
