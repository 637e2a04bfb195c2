//! Importer tests on small flatbuffers written with the generated builder: what maps, how it
//! maps, and that everything unsupported is refused by op index, name and reason.

use super::params::fused_clamp;
use super::reader::INT8;
use super::schema_generated::tflite as fb;
use super::synth::{quant, Builder as Synth};
use super::*;
use harness::exec;
use harness::model::{Clamp, DType, ModelBuf, Tensor};
use harness::plan::{plan, Grid, PatchConfig};
use harness::quant::{add_params, mean_params, quantize_multiplier, softmax_params};
use rand::{Rng, SeedableRng};

const FLOAT32: i8 = 0;
const UINT8: i8 = 3;
const INT16: i8 = 7;

fn conv_options(stride: i32, activation: i8, dilation: i32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
        padding: fb::Padding::Same,
        stride_w: stride,
        stride_h: stride,
        fused_activation_function: activation,
        dilation_w_factor: dilation,
        dilation_h_factor: dilation,
    }))
}

fn dw_options(multiplier: i32, dilation: i32) -> fb::BuiltinOptions {
    fb::BuiltinOptions::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
        padding: fb::Padding::Same,
        stride_w: 2,
        stride_h: 2,
        depth_multiplier: multiplier,
        fused_activation_function: 3,
        dilation_w_factor: dilation,
        dilation_h_factor: dilation,
    }))
}

/// A small CNN with every supported op: CONV_2D (per-channel, RELU) -> DEPTHWISE_CONV_2D
/// (stride 2, RELU6) -> ADD (residual, with a 1x1 CONV_2D branch) -> MAX_POOL_2D ->
/// AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX.
fn cnn() -> (Synth, i32, i32) {
    let mut s = Synth::new();
    let x = s.act("input", &[1, 8, 8, 2], 0.02, -3);
    let w0: Vec<i8> = (0..4 * 3 * 3 * 2).map(|i| ((i * 37) % 255 - 127) as i8).collect();
    let f0 = s.weights("conv/filter", &[4, 3, 3, 2], &w0, &[0.01, 0.02, 0.015, 0.03], 0);
    let b0 = s.bias("conv/bias", &[100, -200, 300, 0]);
    let a0 = s.act("conv", &[1, 8, 8, 4], 0.05, -128);
    s.op(ops::CONV_2D, &[x, f0, b0], &[a0], Some(conv_options(1, 1, 1)));
    let w1: Vec<i8> = (0..3 * 3 * 4).map(|i| ((i * 53) % 255 - 127) as i8).collect();
    let f1 = s.weights("dw/filter", &[1, 3, 3, 4], &w1, &[0.01, 0.02, 0.03, 0.04], 3);
    let b1 = s.bias("dw/bias", &[5, 6, 7, 8]);
    let a1 = s.act("dw", &[1, 4, 4, 4], 6.0 / 255.0, -128);
    s.op(ops::DEPTHWISE_CONV_2D, &[a0, f1, b1], &[a1], Some(dw_options(1, 1)));
    let w2: Vec<i8> = (0..4 * 4).map(|i| ((i * 29) % 255 - 127) as i8).collect();
    let f2 = s.weights("pw/filter", &[4, 1, 1, 4], &w2, &[0.02], 0);
    let a2 = s.act("pw", &[1, 4, 4, 4], 0.07, 3);
    s.op(ops::CONV_2D, &[a1, f2, -1], &[a2], Some(conv_options(1, 0, 1)));
    let a3 = s.act("add", &[1, 4, 4, 4], 0.09, -128);
    let add = fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions { fused_activation_function: 1 }));
    s.op(ops::ADD, &[a1, a2], &[a3], Some(add));
    let pool = |k: i32, stride: i32, padding| {
        fb::BuiltinOptions::Pool2DOptions(Box::new(fb::Pool2DOptions {
            padding,
            stride_w: stride,
            stride_h: stride,
            filter_width: k,
            filter_height: k,
            fused_activation_function: 0,
        }))
    };
    let a4 = s.act("maxpool", &[1, 2, 2, 4], 0.09, -128);
    s.op(ops::MAX_POOL_2D, &[a3], &[a4], Some(pool(2, 2, fb::Padding::Valid)));
    let a5 = s.act("avgpool", &[1, 1, 1, 4], 0.09, -128);
    s.op(ops::AVERAGE_POOL_2D, &[a4], &[a5], Some(pool(2, 2, fb::Padding::Valid)));
    let shape = s.bias("reshape/shape", &[1, 4]);
    let a6 = s.act("flat", &[1, 4], 0.09, -128);
    s.op(ops::RESHAPE, &[a5, shape], &[a6], None);
    let w3: Vec<i8> = (0..3 * 4).map(|i| ((i * 71) % 255 - 127) as i8).collect();
    let f3 = s.weights("fc/weights", &[3, 4], &w3, &[0.004], 0);
    let b3 = s.bias("fc/bias", &[10, -10, 0]);
    let a7 = s.act("logits", &[1, 3], 0.15, 7);
    let fc = fb::BuiltinOptions::FullyConnectedOptions(Box::default());
    s.op(ops::FULLY_CONNECTED, &[a6, f3, b3], &[a7], Some(fc));
    let a8 = s.act("probs", &[1, 3], 1.0 / 256.0, -128);
    let sm = fb::BuiltinOptions::SoftmaxOptions(Box::new(fb::SoftmaxOptions { beta: 1.0 }));
    s.op(ops::SOFTMAX, &[a7], &[a8], Some(sm));
    (s, x, a8)
}

pub(super) fn refusal(bytes: &[u8]) -> String {
    match import(bytes, "t") {
        Ok(_) => panic!("the model was imported; a refusal was expected"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_supported_op_maps_with_tflm_parameters() {
    let (s, x, y) = cnn();
    let m = import(&s.bytes(x, y), "cnn").unwrap();
    let names: Vec<&str> = m.ops.iter().map(|o| o.kind.name()).collect();
    assert_eq!(
        names,
        [
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "CONV_2D",
            "ADD",
            "MAX_POOL_2D",
            "AVERAGE_POOL_2D",
            "RESHAPE",
            "FULLY_CONNECTED",
            "SOFTMAX"
        ]
    );
    assert_eq!(m.tensors.len(), 10, "constants are not activations");
    let flat = m.tensors[usize::from(m.ops[6].output)];
    assert_eq!((flat.h, flat.w, flat.c), (1, 1, 4));
    let OpKind::Conv2d(c) = m.ops[0].kind else { panic!() };
    assert_eq!((c.window.kh, c.window.kw, c.window.pad_top, c.window.pad_left), (3, 3, 1, 1));
    assert_eq!(&m.params[c.bias.range()], &[100, -200, 300, 0]);
    // Per channel: double(input scale) * double(filter scale) / double(output scale).
    let expect = quantize_multiplier(f64::from(0.02f32) * f64::from(0.015f32) / f64::from(0.05f32));
    assert_eq!((m.params[c.multiplier.range()][2], m.params[c.shift.range()][2]), expect);
    // RELU on an output with zero point -128 clamps at the zero point.
    assert_eq!(c.clamp, Clamp { min: -128, max: 127 });
    let OpKind::DepthwiseConv2d(d) = m.ops[1].kind else { panic!() };
    assert_eq!((d.window.sh, d.window.pad_top), (2, 0));
    // RELU6 with scale 6/255, zero point -128: 6.0 quantizes to 127.
    assert_eq!(d.clamp, Clamp { min: -128, max: 127 });
    let OpKind::Conv2d(pw) = m.ops[2].kind else { panic!() };
    assert_eq!((pw.bias.len, pw.multiplier.len), (0, 4), "no bias; the per-tensor scale broadcast");
    let OpKind::FullyConnected(fc) = m.ops[7].kind else { panic!() };
    let expect = quantize_multiplier(f64::from(0.09f32 * 0.004f32) / f64::from(0.15f32));
    assert_eq!((&m.params[fc.multiplier.range()], &m.params[fc.shift.range()]), (&[expect.0][..], &[expect.1][..]));
    let OpKind::Add(a) = m.ops[3].kind else { panic!() };
    assert_eq!([a.input1, a.input2, a.output], add_params(6.0 / 255.0, 0.07, 0.09));
    let OpKind::Softmax(p) = m.ops[8].kind else { panic!() };
    let (mult, shift, diff_min) = softmax_params(1.0, 0.15);
    assert_eq!((p.input_multiplier, p.input_left_shift, p.diff_min), (mult, shift, diff_min));
}

#[test]
fn relu_clamps_are_quantized_zero_and_six() {
    let out = Tensor::int8(1, 1, 1, 0.05, -10);
    assert_eq!(fused_clamp(1, &out).unwrap(), Clamp { min: -10, max: 127 });
    assert_eq!(fused_clamp(3, &out).unwrap(), Clamp { min: -10, max: 110 });
    assert_eq!(fused_clamp(2, &out).unwrap(), Clamp { min: -30, max: 10 });
    assert_eq!(fused_clamp(0, &out).unwrap(), Clamp::NONE);
}

#[test]
fn imported_model_runs_and_patches_agree() {
    let (s, x, y) = cnn();
    let m = import(&s.bytes(x, y), "cnn").unwrap();
    let input: Vec<i8> = (0..128).map(|i| (i * 7 % 256) as u8 as i8).collect();
    let run = |config| run_config(&m, config, &input);
    let layerwise = run(PatchConfig::LAYERWISE);
    // SOFTMAX output: probabilities in 1/256 steps that sum to about 1.
    let total: i32 = layerwise.iter().map(|&q| i32::from(q) + 128).sum();
    assert!((250..=262).contains(&total), "{layerwise:?}");
    for (split, nh, nw) in [(1, 2, 2), (2, 4, 4), (4, 2, 3), (5, 2, 2)] {
        let config = PatchConfig::new(split, nh, nw);
        assert_eq!(run(config), layerwise, "split {split} {nh}x{nw}");
    }
}

#[test]
fn a_1x1_conv_with_unit_scales_copies_its_input() {
    // Checks the reader end to end on arithmetic one can do by hand: weight 1, bias 0,
    // multiplier 1, zero points 0 -> output = input.
    let mut s = Synth::new();
    let x = s.act("in", &[1, 2, 2, 1], 0.5, 0);
    let f = s.weights("w", &[1, 1, 1, 1], &[1], &[1.0], 0);
    let y = s.act("out", &[1, 2, 2, 1], 0.5, 0);
    s.op(ops::CONV_2D, &[x, f, -1], &[y], Some(conv_options(1, 0, 1)));
    let m = import(&s.bytes(x, y), "copy").unwrap();
    let input = [-128i8, -1, 0, 127];
    assert_eq!(run_config(&m, PatchConfig::LAYERWISE, &input), input);
}

/// The base CNN with op `op` replaced through `edit`.
fn edited(edit: impl FnOnce(&mut Synth)) -> Vec<u8> {
    let (mut s, x, y) = cnn();
    edit(&mut s);
    s.bytes(x, y)
}

#[test]
fn unsupported_ops_are_refused_by_index_and_name() {
    let e = refusal(&edited(|s| s.codes[s.ops[3].opcode_index as usize].builtin_code = 108));
    assert!(e.starts_with("op 3 (COS): operator not supported; supported: CONV_2D"), "{e}");
    for code in ops::RECURRENT {
        let e = refusal(&edited(|s| s.codes[s.ops[3].opcode_index as usize].builtin_code = code));
        let name = ops::builtin_name(code).unwrap();
        assert!(e.starts_with(&format!("op 3 ({name}): a recurrent op (its state carries over")), "{e}");
    }
    let e = refusal(&edited(|s| {
        s.ops[3].opcode_index = s.codes.len() as u32;
        s.codes.push(fb::OperatorCode { builtin_code: 400, deprecated_builtin_code: 127, ..Default::default() });
    }));
    assert!(e.starts_with("op 3 (builtin operator code 400): operator not supported"), "{e}");
    let e = refusal(&edited(|s| {
        s.ops[3].opcode_index = s.codes.len() as u32;
        s.codes.push(fb::OperatorCode {
            builtin_code: ops::CUSTOM,
            deprecated_builtin_code: ops::CUSTOM as i8,
            custom_code: Some("MyOp".into()),
            ..Default::default()
        });
    }));
    assert!(e.starts_with("op 3 (custom op `MyOp`): custom operators are not supported"), "{e}");
}

#[test]
fn an_unsupported_op_is_named_even_with_options_the_reader_does_not_declare() {
    // An options table the schema subset does not declare (union tag 100). Write the op with
    // two declared tags; the one byte where the files differ is the tag.
    let with = |options| {
        edited(|s| {
            s.codes[s.ops[3].opcode_index as usize].builtin_code = 108;
            s.ops[3].builtin_options = Some(options);
        })
    };
    let a = with(fb::BuiltinOptions::CallOptions(Box::default()));
    let mut b = with(fb::BuiltinOptions::ConcatEmbeddingsOptions(Box::default()));
    let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(differ.len(), 1, "the files differ only in the union tag");
    b[differ[0]] = 100;
    let e = refusal(&b);
    assert!(e.starts_with("op 3 (COS): operator not supported"), "{e}");
}

#[test]
fn unsupported_parameters_are_refused_with_what_is_missing() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (edited(|s| s.ops[0].builtin_options = Some(conv_options(1, 1, 2))), "op 0 (CONV_2D): dilation 2x2; only dilation 1"),
        (edited(|s| s.ops[1].builtin_options = Some(dw_options(1, 2))), "op 1 (DEPTHWISE_CONV_2D): dilation 2x2"),
        (edited(|s| s.ops[0].builtin_options = Some(conv_options(1, 4, 1))), "op 0 (CONV_2D): fused TANH activation"),
        (
            edited(|s| {
                let fc = fb::FullyConnectedOptions { weights_format: 1, ..Default::default() };
                s.ops[7].builtin_options = Some(fb::BuiltinOptions::FullyConnectedOptions(Box::new(fc)));
            }),
            "op 7 (FULLY_CONNECTED): shuffled weights",
        ),
        (
            edited(|s| s.tensors[s.ops[8].outputs.as_ref().unwrap()[0] as usize].quantization = quant(&[0.1], &[0], 0)),
            "op 8 (SOFTMAX): output scale 0.1 and zero point 0; int8 SOFTMAX needs 1/256 and -128",
        ),
        (edited(|s| s.ops[0].builtin_options = None), "op 0 (CONV_2D): its options are missing"),
        (
            edited(|s| s.tensors[s.ops[0].inputs.as_ref().unwrap()[1] as usize].quantization = quant(&[0.01], &[3], 0)),
            "op 0 (CONV_2D): the filter has zero point 3; int8 weights must be symmetric",
        ),
        (
            edited(|s| s.tensors[s.ops[2].outputs.as_ref().unwrap()[0] as usize].type_ = INT16),
            "op 2 (CONV_2D): tensor 8 `pw` is INT16: 16-bit activations (16x8 quantization) are not supported",
        ),
        (
            edited(|s| s.tensors[s.ops[0].outputs.as_ref().unwrap()[0] as usize].shape = Some(vec![1, 7, 8, 4])),
            "op 0 (CONV_2D): the output has shape [1, 7, 8, 4], but a 3x3 window with stride 1x1 and Same padding on a 8x8 input gives 8x8",
        ),
        (
            edited(|s| s.tensors[s.ops[0].inputs.as_ref().unwrap()[2] as usize].type_ = 4),
            "op 0 (CONV_2D): the bias is INT64",
        ),
    ];
    for (bytes, expected) in cases {
        let e = refusal(&bytes);
        assert!(e.starts_with(expected), "got: {e}\nexpected: {expected}");
    }
}

#[test]
fn a_depth_multiplier_the_shapes_do_not_agree_with_is_refused() {
    let mut s = Synth::new();
    let x = s.act("in", &[1, 4, 4, 2], 0.1, 0);
    let f = s.weights("w", &[1, 3, 3, 4], &[1; 36], &[0.1], 3);
    let b = s.bias("b", &[0; 4]);
    let y = s.act("out", &[1, 2, 2, 4], 0.1, 0);
    s.op(ops::DEPTHWISE_CONV_2D, &[x, f, b], &[y], Some(dw_options(3, 1)));
    let e = refusal(&s.bytes(x, y));
    assert!(
        e.starts_with("op 0 (DEPTHWISE_CONV_2D): 4 output channels for 2 input channels with depth multiplier 3"),
        "{e}"
    );
    // The option and the shapes agree: imported.
    s.ops[0].builtin_options = Some(dw_options(2, 1));
    import(&s.bytes(x, y), "dw").unwrap();
}

#[test]
fn add_and_mul_take_constant_and_broadcast_operands() {
    for code in [ops::ADD, ops::MUL] {
        let mut s = Synth::new();
        let x = s.act("in", &[1, 4, 4, 2], 0.1, 3);
        let k = s.tensor("k", &[2], INT8, Some(vec![10, 246]), quant(&[0.05], &[-2], 0));
        let y = s.act("out", &[1, 4, 4, 2], 0.2, -1);
        s.op(code, &[k, x], &[y], None);
        let m = import(&s.bytes(x, y), "k").unwrap_or_else(|e| panic!("{code}: {e}"));
        let model = m.as_model();
        assert_eq!(model.constants.len(), 1);
        let input: Vec<i8> = (0..32).map(|i| (i * 7 - 100) as i8).collect();
        let p = plan(&model, PatchConfig::LAYERWISE).unwrap();
        let mut arena = vec![0u8; p.arena_peak_bytes];
        let out = exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat();
        // Pixel 5, channel 1: the constant's second value (-10) against x = 11 * 7 - 100.
        let (kv, xv) = (-10 - -2, i32::from(input[11]) - 3);
        let expect = if code == ops::MUL {
            let (m, sh) = quantize_multiplier(f64::from(0.05f32) * f64::from(0.1f32) / f64::from(0.2f32));
            harness::fixedpoint::multiply_by_quantized_multiplier(kv * xv, m, sh) - 1
        } else {
            let [a, b, o] = add_params(0.05, 0.1, 0.2);
            let f = |v: i32, (m, sh): (i32, i32)| harness::fixedpoint::multiply_by_quantized_multiplier(v, m, sh);
            f(f(kv << 20, a) + f(xv << 20, b), o) - 1
        };
        assert_eq!(i32::from(out[11]), expect.clamp(-128, 127), "{code}");
        // Patched: the constant is read whole by every patch.
        let p = plan(&model, PatchConfig::new(1, 2, 2)).unwrap();
        let mut arena = vec![0u8; p.arena_peak_bytes];
        assert_eq!(exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat(), out);
    }
    // Shapes that do not broadcast, and two constants.
    let mut s = Synth::new();
    let x = s.act("in", &[1, 4, 4, 2], 0.1, 0);
    let k = s.tensor("k", &[3], INT8, Some(vec![1, 2, 3]), quant(&[0.1], &[0], 0));
    let y = s.act("out", &[1, 4, 4, 2], 0.1, 0);
    s.op(ops::MUL, &[x, k], &[y], None);
    let e = refusal(&s.bytes(x, y));
    assert!(e.starts_with("op 0 (MUL): inputs of shapes 4x4x2 and 1x1x3 do not broadcast"), "{e}");
    s.ops[0].inputs = Some(vec![k, k]);
    let e = refusal(&s.bytes(x, y));
    assert!(e.starts_with("op 0 (MUL): both inputs are constants"), "{e}");
}

#[test]
fn float_models_are_refused_at_their_first_float_op_and_uint8_needs_a_quantize() {
    let mut s = Synth::new();
    let x = s.tensor("in", &[1, 4, 4, 2], FLOAT32, None, None);
    let y = s.tensor("out", &[1, 4, 4, 2], FLOAT32, None, None);
    s.op(ops::ADD, &[x, x], &[y], Some(fb::BuiltinOptions::AddOptions(Box::default())));
    let e = refusal(&s.bytes(x, y));
    assert!(
        e.starts_with("op 0 (ADD): ADD would compute in float; patchbench runs int8 models (convert with full-integer"),
        "{e}"
    );
    // A uint8 input read by anything but QUANTIZE: already quantized, so the message must not
    // ask for quantization.
    let mut s = Synth::new();
    let x = s.tensor("in", &[1, 4, 4, 2], UINT8, None, quant(&[0.1], &[128], 0));
    let y = s.act("out", &[1, 2, 2, 2], 0.1, 0);
    let pool = fb::Pool2DOptions { filter_width: 2, filter_height: 2, stride_w: 2, stride_h: 2, ..Default::default() };
    s.op(ops::MAX_POOL_2D, &[x], &[y], Some(fb::BuiltinOptions::Pool2DOptions(Box::new(pool))));
    let e = refusal(&s.bytes(x, y));
    assert_eq!(
        e,
        "op 0 (MAX_POOL_2D): MAX_POOL_2D on UINT8 tensors; it computes in int8 (a QUANTIZE converts UINT8 into int8)"
    );
}

/// float -> QUANTIZE -> CONV -> DEQUANTIZE, and the int8 conv output as a second graph output.
fn boundary_model(input_type: i8) -> (Vec<u8>, f32, i64) {
    let (scale, zp) = if input_type == UINT8 { (0.05, 130) } else { (0.05, -3) };
    let mut s = Synth::new();
    let x = match input_type {
        FLOAT32 => s.tensor("in", &[1, 3, 3, 2], FLOAT32, None, None),
        t => s.tensor("in", &[1, 3, 3, 2], t, None, quant(&[scale], &[zp], 0)),
    };
    let q = s.act("q", &[1, 3, 3, 2], 0.04, 5);
    s.op(ops::QUANTIZE, &[x], &[q], None);
    let f = s.weights("w", &[2, 1, 1, 2], &[3, -2, 1, 4], &[0.02], 0);
    let c = s.act("conv", &[1, 3, 3, 2], 0.03, -1);
    s.op(ops::CONV_2D, &[q, f, -1], &[c], Some(conv_options(1, 0, 1)));
    let d = s.tensor("out", &[1, 3, 3, 2], FLOAT32, None, None);
    s.op(ops::DEQUANTIZE, &[c], &[d], None);
    (s.bytes_with(x, &[d, c]), scale, zp)
}

#[test]
fn quantize_and_dequantize_keep_the_graph_types_and_several_outputs_come_out_in_order() {
    let (bytes, _, _) = boundary_model(FLOAT32);
    let m = import(&bytes, "boundary").unwrap();
    let model = m.as_model();
    assert_eq!(model.tensor(model.input).dtype, DType::F32);
    assert_eq!(model.outputs.len(), 2);
    assert_eq!(model.tensor(model.outputs[0]).dtype, DType::F32);
    assert_eq!(model.tensor(model.outputs[1]).dtype, DType::I8);
    let xs: Vec<f32> = (0..18).map(|i| (i as f32 - 9.0) * 0.137).collect();
    let input: Vec<i8> = xs.iter().flat_map(|x| x.to_le_bytes()).map(|b| b as i8).collect();
    let p = plan(&model, PatchConfig::LAYERWISE).unwrap();
    let mut arena = vec![0u8; p.arena_peak_bytes];
    let outs = exec::run(&model, &p.exec(), &mut arena, &input).unwrap();
    let (floats, conv) = (outs.get(0).unwrap(), outs.get(1).unwrap());
    assert_eq!((floats.len(), conv.len()), (72, 18));
    // QUANTIZE: round(x / 0.04) + 5, halves away from zero; DEQUANTIZE: 0.03 * (q + 1).
    let q: Vec<i32> = xs.iter().map(|x| ((x / 0.04f32).round() as i32 + 5).clamp(-128, 127)).collect();
    for (k, v) in conv.iter().enumerate() {
        let expect = f64::from(0.03f32) * f64::from(i32::from(*v) + 1);
        let got = f32::from_le_bytes(bytemuck::cast_slice::<i8, u8>(&floats[4 * k..4 * k + 4]).try_into().unwrap());
        assert_eq!(got, expect as f32);
    }
    // The conv read the quantized values: pixel 0's channel 0 is 3 * (q0 - 5) + -2 * (q1 - 5).
    let acc = 3 * (q[0] - 5) - 2 * (q[1] - 5);
    let (mult, shift) = quantize_multiplier(f64::from(0.04f32) * f64::from(0.02f32) / f64::from(0.03f32));
    let expect = harness::fixedpoint::multiply_by_quantized_multiplier(acc, mult, shift) - 1;
    assert_eq!(i32::from(conv[0]), expect.clamp(-128, 127));
    // The same bytes under patches.
    for grid in [Grid::new(2, 2), Grid::new(3, 1)] {
        let p = plan(&model, PatchConfig::new(2, grid.nh, grid.nw)).unwrap();
        let mut arena = vec![0u8; p.arena_peak_bytes];
        let patched = exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat();
        assert_eq!(patched, outs.concat(), "{grid}");
    }
}

#[test]
fn quantize_requantizes_int8_and_uint8_inputs() {
    for t in [INT8, UINT8] {
        let (bytes, scale, zp) = boundary_model(t);
        let m = import(&bytes, "boundary").unwrap();
        let model = m.as_model();
        let input: Vec<i8> = (0..18).map(|i| (i * 14 - 120) as i8).collect();
        let p = plan(&model, PatchConfig::LAYERWISE).unwrap();
        let mut arena = vec![0u8; p.arena_peak_bytes];
        let outs = exec::run(&model, &p.exec(), &mut arena, &input).unwrap();
        let (mult, shift) = quantize_multiplier(f64::from(scale) / f64::from(0.04f32));
        let q: Vec<i32> = input
            .iter()
            .map(|&b| {
                let v = if t == UINT8 { i32::from(b as u8) } else { i32::from(b) };
                (harness::fixedpoint::multiply_by_quantized_multiplier(v - zp as i32, mult, shift) + 5).clamp(-128, 127)
            })
            .collect();
        let acc = 3 * (q[0] - 5) - 2 * (q[1] - 5);
        let (m2, s2) = quantize_multiplier(f64::from(0.04f32) * f64::from(0.02f32) / f64::from(0.03f32));
        let expect = (harness::fixedpoint::multiply_by_quantized_multiplier(acc, m2, s2) - 1).clamp(-128, 127);
        assert_eq!(i32::from(outs.get(1).unwrap()[0]), expect, "type {t}");
    }
}

#[test]
fn other_files_are_not_tflite_models() {
    assert_eq!(refusal(b"not a model at all"), "not a TFLite model: the file identifier is not TFL3");
    assert_eq!(refusal(b""), "not a TFLite model: the file identifier is not TFL3");
    let (s, x, y) = cnn();
    let bytes = s.bytes(x, y);
    assert!(refusal(&bytes[..bytes.len() / 2]).starts_with("not a TFLite model"));
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let (s, x, y) = cnn();
    let good = s.bytes(x, y);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut refused = 0;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(8..bytes.len());
            bytes[i] = rng.gen();
        }
        match import(&bytes, "damaged") {
            Ok(m) => m.as_model().validate().expect("an imported model is valid"),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 100, "only {refused} of 3000 damaged files were refused");
}

/// `x -> [PAD(pads) ->] CONV_2D 3x3 stride 2 (padding) -> out`, the Keras way of writing
/// a stride-2 SAME convolution as zero padding plus a VALID one.
fn padded_conv(pads: Option<[i32; 8]>, padding: fb::Padding) -> Vec<u8> {
    let mut s = Synth::new();
    let x = s.act("in", &[1, 8, 8, 2], 0.05, -7);
    let mut conv_in = x;
    if let Some(p) = pads {
        let paddings = s.bias("paddings", &p);
        s.tensors[paddings as usize].shape = Some(vec![4, 2]);
        let (h, w) = (8 + p[2] + p[3], 8 + p[4] + p[5]);
        conv_in = s.act("padded", &[1, h, w, 2 + p[6] + p[7]], 0.05, -7);
        s.op(ops::PAD, &[x, paddings], &[conv_in], None);
    }
    let w: Vec<i8> = (0..4 * 3 * 3 * 2).map(|i| ((i * 41) % 255 - 127) as i8).collect();
    let f = s.weights("w", &[4, 3, 3, 2], &w, &[0.01, 0.02, 0.03, 0.04], 0);
    let b = s.bias("b", &[1, 2, 3, 4]);
    let y = s.act("out", &[1, 4, 4, 4], 0.1, -128);
    let mut options = conv_options(2, 1, 1);
    if let fb::BuiltinOptions::Conv2DOptions(o) = &mut options {
        o.padding = padding;
    }
    s.op(ops::CONV_2D, &[conv_in, f, b], &[y], Some(options));
    s.bytes(x, y)
}

#[test]
fn pad_then_valid_conv_equals_same_conv_layerwise_and_patched() {
    let padded = import(&padded_conv(Some([0, 0, 0, 1, 0, 1, 0, 0]), fb::Padding::Valid), "padded").unwrap();
    let same = import(&padded_conv(None, fb::Padding::Same), "same").unwrap();
    let OpKind::Pad(p) = padded.ops[0].kind else { panic!("{:?}", padded.ops[0].kind) };
    assert_eq!((p.top, p.bottom, p.left, p.right, p.value), (0, 1, 0, 1, -7));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let input: Vec<i8> = (0..128).map(|_| rng.gen()).collect();
    let run = |m: &ModelBuf, config| run_config(m, config, &input);
    let reference = run(&same, PatchConfig::LAYERWISE);
    assert_eq!(run(&padded, PatchConfig::LAYERWISE), reference);
    for (split, nh, nw) in [(1, 3, 3), (2, 2, 2), (2, 4, 1)] {
        let config = PatchConfig::new(split, nh, nw);
        assert_eq!(run(&padded, config), reference, "split {split} {nh}x{nw}");
    }
}

#[test]
fn pooling_that_would_requantize_is_refused() {
    // MAX_POOL_2D is op 4 of the base CNN; its output has the input's scale 0.09, zp -128.
    for (scale, zero_point) in [(0.1, -128), (0.09, -127)] {
        let e = refusal(&edited(|s| {
            let out = s.ops[4].outputs.as_ref().unwrap()[0] as usize;
            s.tensors[out].quantization = quant(&[scale], &[zero_point], 0);
        }));
        assert!(e.starts_with("op 4 (MAX_POOL_2D): input quantization (scale 0.09, zero point -128) differs"), "{e}");
    }
}

#[test]
fn padding_channels_or_batches_is_refused() {
    let e = refusal(&padded_conv(Some([0, 0, 1, 0, 0, 0, 0, 2]), fb::Padding::Valid));
    assert_eq!(e, "op 0 (PAD): padding of the batch or channel dimension is not supported (height and width are)");
}

/// `x [1,4,4,3] -> MEAN(axes) -> out_shape`.
fn mean_model(axes: &[i32], out_shape: &[i32], out_scale: f32) -> Vec<u8> {
    let mut s = Synth::new();
    let x = s.act("in", &[1, 4, 4, 3], 0.05, -7);
    let axes = s.bias("axes", axes);
    let y = s.act("mean", out_shape, out_scale, 4);
    s.op(ops::MEAN, &[x, axes], &[y], None);
    s.bytes(x, y)
}

#[test]
fn mean_over_any_axes_maps_with_tflm_parameters() {
    use harness::model::{AXIS_C, AXIS_H, AXIS_W};
    let cases: [(&[i32], &[i32], u8, u32); 6] = [
        (&[1, 2], &[1, 3], AXIS_H | AXIS_W, 16),
        (&[2, 1], &[1, 1, 1, 3], AXIS_H | AXIS_W, 16),
        (&[-3, -2], &[1, 3], AXIS_H | AXIS_W, 16),
        (&[2], &[1, 4, 1, 3], AXIS_W, 4),
        (&[3], &[1, 4, 4], AXIS_C, 3),
        (&[0, 1, 2, 3], &[1], AXIS_H | AXIS_W | AXIS_C, 48),
    ];
    for (axes, shape, mask, count) in cases {
        let m = import(&mean_model(axes, shape, 0.02), "mean").unwrap_or_else(|e| panic!("{axes:?}: {e}"));
        let OpKind::Mean(p) = m.ops[0].kind else { panic!("{:?}", m.ops[0].kind) };
        assert_eq!((p.multiplier, p.shift), mean_params(0.05, 0.02, count), "axes {axes:?}");
        assert_eq!(p.axes, mask, "axes {axes:?}");
    }
    let e = refusal(&mean_model(&[0], &[1, 4, 4, 3], 0.02));
    assert_eq!(e, "op 0 (MEAN): a mean over axes [0] of a rank-4 tensor reduces nothing but the batch");
    let e = refusal(&mean_model(&[4], &[1, 4, 4, 3], 0.02));
    assert_eq!(e, "op 0 (MEAN): axis 4 of a rank-4 tensor");
    // An output shape that does not hold the kept axes.
    let e = refusal(&mean_model(&[1], &[1, 3], 0.02));
    assert!(e.starts_with("op 0 (MEAN): input and output shapes do not fit"), "{e}");
}

#[test]
fn patches_skip_pixels_no_later_op_reads() {
    // 6x6 -> CONV_2D 1x1 -> CONV_2D 3x3 stride 2 VALID -> 2x2: the second conv reads rows and
    // columns 0..5 of the first's output, never the sixth.
    let mut s = Synth::new();
    let x = s.act("in", &[1, 6, 6, 2], 0.05, 3);
    let f0 = s.weights("f0", &[4, 1, 1, 2], &[1, -2, 3, -4, 5, -6, 7, -8], &[0.02], 0);
    let a0 = s.act("a0", &[1, 6, 6, 4], 0.04, -2);
    s.op(ops::CONV_2D, &[x, f0, -1], &[a0], Some(conv_options(1, 0, 1)));
    let w: Vec<i8> = (0..4 * 9 * 4).map(|i| ((i * 29) % 255 - 127) as i8).collect();
    let f1 = s.weights("f1", &[4, 3, 3, 4], &w, &[0.01], 0);
    let y = s.act("out", &[1, 2, 2, 4], 0.2, 1);
    let mut valid = conv_options(2, 0, 1);
    if let fb::BuiltinOptions::Conv2DOptions(o) = &mut valid {
        o.padding = fb::Padding::Valid;
    }
    s.op(ops::CONV_2D, &[a0, f1, -1], &[y], Some(valid));
    let m = import(&s.bytes(x, y), "skip").unwrap();
    let model = m.as_model();
    let p = plan(&model, PatchConfig::new(2, 1, 2)).unwrap();
    // Each of the two patches computes 5x3 pixels of the 6x6 first output (column 2 twice,
    // row and column 5 never): 30 * 8 MACs instead of 36 * 8.
    assert_eq!(p.planned_macs, model.macs() - 6 * 8);
    assert!(p.recompute_overhead_pct < 0.0, "{}", p.recompute_overhead_pct);
    assert!(crate::report::plan_table(&model, &p).contains("the patches skip pixels no later op reads"));
    let input: Vec<i8> = (0..72).map(|i| (i * 11 % 256) as u8 as i8).collect();
    let patched = run_config(&m, PatchConfig::new(2, 1, 2), &input);
    assert_eq!(patched, run_config(&m, PatchConfig::LAYERWISE, &input));
}

#[test]
fn a_flat_input_reshaped_first_takes_the_image_shape_and_patches() {
    // [1, 72] -> RESHAPE [1, 6, 6, 2] -> CONV_2D 3x3 -> [1, 6, 6, 4], as audio models start.
    let (mut s, x, image) = flat_input_reshaped_to(2);
    let w: Vec<i8> = (0..4 * 9 * 2).map(|i| ((i * 23) % 255 - 127) as i8).collect();
    let f = s.weights("f", &[4, 3, 3, 2], &w, &[0.01, 0.02, 0.03, 0.04], 0);
    let y = s.act("out", &[1, 6, 6, 4], 0.1, -1);
    s.op(ops::CONV_2D, &[image, f, -1], &[y], Some(conv_options(1, 1, 1)));
    let m = import(&s.bytes(x, y), "flat").unwrap();
    let model = m.as_model();
    let input_t = model.tensor(model.input);
    assert_eq!((input_t.h, input_t.w, input_t.c), (6, 6, 2), "the same 72 bytes, as the image");
    assert_eq!(harness::plan::valid_splits(&model), [1, 2], "the RESHAPE runs in the patch stage");
    let input: Vec<i8> = (0..72).map(|i| (i * 13 % 256) as u8 as i8).collect();
    let layerwise = run_config(&m, PatchConfig::LAYERWISE, &input);
    for input_in in [harness::plan::InputPlacement::Flash, harness::plan::InputPlacement::Arena] {
        for (split, nh, nw) in [(1, 2, 3), (2, 3, 3), (2, 6, 6)] {
            let config = PatchConfig { split, grid: Grid::new(nh, nw), input_in };
            assert_eq!(run_config(&m, config, &input), layerwise, "{config:?}");
        }
    }
}

/// `[1, 72] -> RESHAPE [1, 6, 6, c]`: the builder, its input and the image.
fn flat_input_reshaped_to(c: i32) -> (Synth, i32, i32) {
    let mut s = Synth::new();
    let x = s.act("flat", &[1, 72], 0.05, 3);
    let shape = s.bias("shape", &[1, 6, 6, c]);
    let image = s.act("image", &[1, 6, 6, c], 0.05, 3);
    s.op(ops::RESHAPE, &[x, shape], &[image], None);
    (s, x, image)
}

/// The output of `m` under `config` for `input`.
fn run_config(m: &ModelBuf, config: PatchConfig, input: &[i8]) -> Vec<i8> {
    let model = m.as_model();
    let p = plan(&model, config).unwrap_or_else(|e| panic!("{config:?}: {e}"));
    let mut arena = vec![0u8; p.arena_peak_bytes];
    exec::run(&model, &p.exec(), &mut arena, input).unwrap().concat()
}

#[test]
fn a_reshape_of_another_size_is_refused_not_adopted_as_the_input_shape() {
    // 72 bytes cannot be 6x6x3.
    let (s, x, image) = flat_input_reshaped_to(3);
    let e = refusal(&s.bytes(x, image));
    assert!(e.starts_with("op 0 (RESHAPE): "), "{e}");
}

/// Models nobody has seen under several stages: for random CNNs of the differential tests'
/// generator (every supported op, random shapes, residual branches, several outputs), the
/// schedules the search finds and random multi-stage schedules give the layer-wise bytes.
#[test]
fn random_cnns_under_several_stages_equal_layerwise() {
    use harness::plan::{plan_schedule, search, valid_ends, InputPlacement, Objective, Schedule, Stage, Strategy};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    let mut several = 0;
    for seed in 0..60 {
        let m = import(&synth::random_cnn(seed), "r").unwrap();
        let model = m.as_model();
        let input: Vec<i8> = (0..model.tensor(model.input).bytes()).map(|_| rng.gen()).collect();
        let run = |s: &Schedule, input_in| {
            let p =
                plan_schedule(&model, s, input_in, Default::default()).unwrap_or_else(|e| panic!("{seed} {s}: {e}"));
            let mut arena = vec![0x77u8; p.arena_peak_bytes];
            exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat()
        };
        let reference = run(&Schedule::LAYERWISE, InputPlacement::Flash);
        let mut schedules = Vec::new();
        for f in [1.05, 1.5] {
            schedules.push(
                search(&model, InputPlacement::Flash, Objective::LeastArena { max_mac_factor: f }).unwrap().schedule,
            );
        }
        // A random chain of stages at the ends the model allows.
        let mut stages = Vec::new();
        let mut start = 0;
        while stages.len() < 6 {
            let ends = valid_ends(&model, start);
            if ends.is_empty() {
                break;
            }
            let end = ends[rng.gen_range(0..ends.len())];
            let out = model.tensor(model.ops[usize::from(end) - 1].output);
            let grid = Grid::new(rng.gen_range(1..=out.h.min(4)), rng.gen_range(1..=out.w.min(4)));
            stages.push(Stage { end, grid, strategy: Strategy::Recompute });
            start = end;
        }
        schedules.push(Schedule::new(&stages).unwrap());
        for s in &schedules {
            several += usize::from(s.effective().stages().len() > 1);
            for input_in in [InputPlacement::Flash, InputPlacement::Arena] {
                assert!(run(s, input_in) == reference, "random CNN {seed}, {s}, input in {input_in}");
            }
        }
    }
    assert!(several >= 20, "{several} schedules of several stages");
}
