//! TFLM's integer parameters, derived the way TFLM derives them when it prepares a model:
//! fused-activation ranges, per-channel requantization, padding. The same float inputs give
//! the same integers, so the engine reproduces TFLM's bytes.

use super::fb;
use super::reader::Quant;
use harness::model::{Clamp, Padding, Tensor};
use harness::quant::quantize_multiplier;

/// A TFLite fused activation as an output clamp (TFLM `CalculateActivationRangeQuantized`:
/// the float bounds quantized with the output's scale in f32, rounded half away from zero).
pub(super) fn fused_clamp(activation: i8, out: &Tensor) -> Result<Clamp, String> {
    let q = |f: f32| out.zero_point.saturating_add((f / out.scale).round() as i32);
    let (lo, hi) = match activation {
        0 => (-128, 127),
        1 => (q(0.0).max(-128), 127),
        2 => (q(-1.0).max(-128), q(1.0).min(127)),
        3 => (q(0.0).max(-128), q(6.0).min(127)),
        4 => return Err("fused TANH activation is not supported (NONE, RELU, RELU_N1_TO_1, RELU6 are)".into()),
        5 => return Err("fused SIGN_BIT activation is not supported (NONE, RELU, RELU_N1_TO_1, RELU6 are)".into()),
        a => return Err(format!("unknown fused activation {a}")),
    };
    let narrow = |v: i32| v.clamp(-128, 127) as i8;
    Ok(Clamp { min: narrow(lo), max: narrow(hi) })
}

pub(super) fn padding(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

/// A kernel size or stride as the IR's byte.
pub(super) fn small(what: &str, v: i32) -> Result<u8, String> {
    u8::try_from(v).ok().filter(|&b| b > 0).ok_or_else(|| format!("{what} {v}; 1..=255 is supported"))
}

/// Per-output-channel multipliers and shifts: TFLM `PopulateConvolutionQuantizationParams`
/// (`double(input_scale) * double(filter_scale) / double(output_scale)`).
pub(super) fn channel_multipliers(in_scale: f32, filter: &Quant, out_scale: f32, n: usize) -> (Vec<i32>, Vec<i32>) {
    (0..n)
        .map(|i| {
            let fs = if filter.scales.len() == 1 { filter.scales[0] } else { filter.scales[i] };
            quantize_multiplier(f64::from(in_scale) * f64::from(fs) / f64::from(out_scale))
        })
        .unzip()
}

/// Filter scales: one for the tensor, or one per output channel along `dim`.
pub(super) fn check_per_channel(filter: &Quant, channels: usize, dim: i32) -> Result<(), String> {
    if filter.scales.len() != 1 && (filter.scales.len() != channels || filter.dim != dim) {
        return Err(format!(
            "filter has {} scales on dimension {}; expected 1, or {channels} on dimension {dim}",
            filter.scales.len(),
            filter.dim
        ));
    }
    Ok(())
}
