//! Mapping TFLite operators to IR ops: one function per operator, which checks what the
//! engine can run exactly and derives the op's parameters (`params`).

use super::params::{channel_multipliers, check_per_channel, fused_clamp, padding, small};
use super::reader::{type_name, Importer, OpIo, INT32, INT64, OPTIONS_MISSING};
use super::{fb, ops, SUPPORTED_OPS};
use harness::model::{
    ActivationKind, ActivationParams, AddParams, Clamp, Conv, DType, FcParams, HardSwishParams, LogisticParams,
    MeanParams, MulParams, OpKind, PadParams, Pool, PreluParams, QuantizeParams, ResizeParams, SoftmaxParams, Span,
    Tensor, TransposeParams, Window, MAX_OP_INPUTS,
};
use harness::quant::{
    add_params, hard_swish_params, log_softmax_params, logistic_params, mean_params, quantize_multiplier,
    softmax_params,
};

impl Importer<'_> {
    pub(super) fn map_op(&mut self, builtin: i32, io: &OpIo) -> Result<OpKind, String> {
        match builtin {
            ops::CONV_2D => self.conv(io, false),
            ops::DEPTHWISE_CONV_2D => self.conv(io, true),
            ops::AVERAGE_POOL_2D => Ok(OpKind::AveragePool2d(self.pool(io)?)),
            ops::MAX_POOL_2D => Ok(OpKind::MaxPool2d(self.pool(io)?)),
            ops::ADD => self.add(io),
            ops::MUL => self.mul(io),
            ops::PAD => self.pad(io),
            ops::RELU => self.activation_op(io, ActivationKind::Relu),
            ops::RELU6 => {
                // TFLM clamps the raw values to the input's quantized 0 and 6 (FloatToQuantized).
                let x = self.in_tensor(&io.inputs, 0)?;
                Ok(OpKind::Relu6(fused_clamp(3, &x)?))
            }
            ops::LEAKY_RELU => self.activation_op(io, ActivationKind::LeakyRelu),
            ops::PRELU => self.prelu(io),
            ops::LOGISTIC => self.logistic(io),
            ops::HARD_SWISH => self.hard_swish(io),
            ops::MAXIMUM => self.binary_operands(io, "MAXIMUM").map(|_| OpKind::Maximum),
            ops::MINIMUM => self.binary_operands(io, "MINIMUM").map(|_| OpKind::Minimum),
            ops::REDUCE_MAX => self.reduce_max(io),
            ops::CONCATENATION => self.concat(io),
            // The same bytes in a shape without the size-1 axes.
            ops::SQUEEZE => {
                self.in_tensor(&io.inputs, 0)?;
                Ok(OpKind::Reshape)
            }
            ops::RESHAPE => {
                self.in_tensor(&io.inputs, 0)?;
                Ok(OpKind::Reshape)
            }
            ops::FULLY_CONNECTED => self.fully_connected(io),
            ops::SOFTMAX => self.softmax(io),
            ops::LOG_SOFTMAX => self.log_softmax(io),
            ops::MEAN => self.mean(io),
            ops::TRANSPOSE => self.transpose(io),
            ops::RESIZE_NEAREST_NEIGHBOR => self.resize(io, false),
            ops::RESIZE_BILINEAR => self.resize(io, true),
            ops::QUANTIZE => self.quantize(io),
            ops::DEQUANTIZE => self.dequantize(io),
            ops::CUSTOM => Err(format!(
                "custom operators are not supported: their code is not in the file; supported: {SUPPORTED_OPS}"
            )),
            c if ops::RECURRENT.contains(&c) => Err(format!(
                "a recurrent op (its state carries over between inferences); patchbench runs feed-forward CNNs, the kind patch-based inference splits; supported: {SUPPORTED_OPS}"
            )),
            _ => Err(format!("operator not supported; supported: {SUPPORTED_OPS}")),
        }
    }

    /// CONV_2D (filter OHWI) or DEPTHWISE_CONV_2D (filter 1HWC, C = input channels x depth
    /// multiplier).
    fn conv(&mut self, io: &OpIo, depthwise: bool) -> Result<OpKind, String> {
        let mut depth_multiplier = 1;
        let o = match (io.options()?, depthwise) {
            (Some(fb::BuiltinOptionsRef::Conv2DOptions(o)), false) => {
                ConvOptions::from(fb::Conv2DOptions::try_from(o).map_err(|e| e.to_string())?)
            }
            (Some(fb::BuiltinOptionsRef::DepthwiseConv2DOptions(o)), true) => {
                let o = fb::DepthwiseConv2DOptions::try_from(o).map_err(|e| e.to_string())?;
                depth_multiplier = o.depth_multiplier;
                ConvOptions::from(o)
            }
            _ => return Err(OPTIONS_MISSING.into()),
        };
        if o.dilation != (1, 1) {
            return Err(format!("dilation {}x{}; only dilation 1 is supported", o.dilation.0, o.dilation.1));
        }
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let filter_t = *io.inputs.get(1).ok_or("the filter input is missing")?;
        let fshape = self.shape(filter_t)?;
        let &[_, kh, kw, fi] = fshape else {
            return Err(format!("the filter has shape {fshape:?}; a 4-D filter is expected"));
        };
        let oc = usize::from(out.c);
        let (filter, fq) = if depthwise {
            // TFLM takes the multiplier from the shapes and checks the option agrees (files
            // written before the option existed leave it 0).
            let from_shapes = out.c / x.c;
            if !out.c.is_multiple_of(x.c) || (depth_multiplier != 0 && i32::from(from_shapes) != depth_multiplier) {
                return Err(format!(
                    "{} output channels for {} input channels with depth multiplier {depth_multiplier}; the output must have input channels x depth multiplier",
                    out.c, x.c
                ));
            }
            let r = self.weights(filter_t, "filter", &[1, kh, kw, i32::from(out.c)])?;
            check_per_channel(&r.1, oc, 3)?;
            r
        } else {
            if fi != i32::from(x.c) {
                return Err(format!(
                    "the filter reads {fi} channels of an input with {}; grouped convolution is not supported",
                    x.c
                ));
            }
            let r = self.weights(filter_t, "filter", &[i32::from(out.c), kh, kw, fi])?;
            check_per_channel(&r.1, oc, 0)?;
            r
        };
        let bias = self.bias(&io.inputs, 2, oc)?;
        let (multiplier, shift) = channel_multipliers(x.scale, &fq, out.scale, oc);
        let window =
            self.window(WindowSpec { padding: o.padding, kernel: (kh, kw), stride: o.stride }, &x, io.output)?;
        let conv = Conv {
            window,
            filter: self.ir.push_weights(filter),
            bias: self.ir.push_params(&bias),
            multiplier: self.ir.push_params(&multiplier),
            shift: self.ir.push_params(&shift),
            clamp: fused_clamp(o.activation, &out)?,
            packed: Span::default(),
        };
        Ok(if depthwise { OpKind::DepthwiseConv2d(conv) } else { OpKind::Conv2d(conv) })
    }

    /// AVERAGE_POOL_2D or MAX_POOL_2D.
    fn pool(&mut self, io: &OpIo) -> Result<Pool, String> {
        let Some(fb::BuiltinOptionsRef::Pool2DOptions(o)) = io.options()? else { return Err(OPTIONS_MISSING.into()) };
        let o = fb::Pool2DOptions::try_from(o).map_err(|e| e.to_string())?;
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        // int8 pooling does not requantize; TFLM refuses a model that asks it to.
        if (x.scale - out.scale).abs() > 1e-6 || x.zero_point != out.zero_point {
            return Err(format!(
                "input quantization (scale {}, zero point {}) differs from the output's (scale {}, zero point {}); int8 pooling keeps its input's",
                x.scale, x.zero_point, out.scale, out.zero_point
            ));
        }
        let spec = WindowSpec {
            padding: o.padding,
            kernel: (o.filter_height, o.filter_width),
            stride: (o.stride_h, o.stride_w),
        };
        Ok(Pool { window: self.window(spec, &x, io.output)?, clamp: fused_clamp(o.fused_activation_function, &out)? })
    }

    /// PAD of the height and width of a 4-D tensor with its zero point (TFLM: the output's).
    fn pad(&mut self, io: &OpIo) -> Result<OpKind, String> {
        self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let t = *io.inputs.get(1).ok_or("the paddings input is missing")?;
        let tensor = self.tensor(t)?;
        let data = self.data(t)?.ok_or_else(|| format!("the paddings ({}) are not a constant", self.describe(t)))?;
        let values: Vec<i64> = match tensor.type_ {
            INT32 => data.chunks_exact(4).map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect(),
            INT64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default())).collect(),
            other => return Err(format!("the paddings are {}; INT32 or INT64 expected", type_name(other))),
        };
        let &[b0, b1, top, bottom, left, right, c0, c1] = &values[..] else {
            return Err(format!("{} padding values; a 4-D input needs 4 x 2", values.len()));
        };
        if (b0, b1, c0, c1) != (0, 0, 0, 0) {
            return Err("padding of the batch or channel dimension is not supported (height and width are)".into());
        }
        let side = |v: i64| u8::try_from(v).map_err(|_| format!("padding {v}; 0..=255 rows or columns are supported"));
        Ok(OpKind::Pad(PadParams {
            top: side(top)?,
            bottom: side(bottom)?,
            left: side(left)?,
            right: side(right)?,
            value: out.zero_point as i8,
        }))
    }

    /// ADD of two operands (activations or constants); either may broadcast.
    fn add(&mut self, io: &OpIo) -> Result<OpKind, String> {
        // Without options (as TFLM reads them): no fused activation.
        let act = match io.options()? {
            Some(fb::BuiltinOptionsRef::AddOptions(o)) => o.fused_activation_function().map_err(|e| e.to_string())?,
            None => 0,
            Some(_) => return Err(OPTIONS_MISSING.into()),
        };
        let (a, b, out) = self.binary_operands(io, "ADD")?;
        let [input1, input2, output] = add_params(a.scale, b.scale, out.scale);
        Ok(OpKind::Add(AddParams { input1, input2, output, clamp: fused_clamp(act, &out)? }))
    }

    /// MUL of two operands (activations or constants); either may broadcast. TFLM: the
    /// product of the input scales over the output scale, in double.
    fn mul(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let act = match io.options()? {
            // Without options (as TFLM reads them): no fused activation.
            Some(fb::BuiltinOptionsRef::MulOptions(o)) => o.fused_activation_function().map_err(|e| e.to_string())?,
            None => 0,
            Some(_) => return Err(OPTIONS_MISSING.into()),
        };
        let (a, b, out) = self.binary_operands(io, "MUL")?;
        let output = quantize_multiplier(f64::from(a.scale) * f64::from(b.scale) / f64::from(out.scale));
        Ok(OpKind::Mul(MulParams { output, clamp: fused_clamp(act, &out)? }))
    }

    /// The two operands of an element-wise op (a constant one is declared as a constant) and
    /// its output; their shapes must broadcast (each axis the same, or 1 in one of them).
    fn binary_operands(&mut self, io: &OpIo, name: &str) -> Result<(Tensor, Tensor, Tensor), String> {
        if io.inputs.len() != 2 {
            return Err(format!("{} inputs; {name} takes 2", io.inputs.len()));
        }
        let (a, b) = (self.operand(io.inputs[0])?, self.operand(io.inputs[1])?);
        if self.data(io.inputs[0])?.is_some() && self.data(io.inputs[1])?.is_some() {
            return Err("both inputs are constants (a converter folds such ops)".into());
        }
        let out = self.out_tensor(io.output)?;
        let fits = |x: u16, y: u16| x == y || x == 1 || y == 1;
        if !(fits(a.h, b.h) && fits(a.w, b.w) && fits(a.c, b.c)) {
            return Err(format!(
                "inputs of shapes {}x{}x{} and {}x{}x{} do not broadcast (each axis must agree or be 1 in one of them)",
                a.h, a.w, a.c, b.h, b.w, b.c
            ));
        }
        Ok((a, b, out))
    }

    /// FULLY_CONNECTED over the whole input (batch 1), weights `[outputs, inputs]`.
    fn fully_connected(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let Some(fb::BuiltinOptionsRef::FullyConnectedOptions(o)) = io.options()? else {
            return Err(OPTIONS_MISSING.into());
        };
        let o = fb::FullyConnectedOptions::try_from(o).map_err(|e| e.to_string())?;
        if o.weights_format != 0 {
            return Err("shuffled weights (SHUFFLED4x16INT8) are not supported".into());
        }
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let filter_t = *io.inputs.get(1).ok_or("the weights input is missing")?;
        let (n_out, n_in) = match *self.shape(filter_t)? {
            [o, i] => (o, i),
            ref s => return Err(format!("the weights have shape {s:?}; [outputs, inputs] expected")),
        };
        if usize::try_from(n_in).ok() != Some(x.len()) {
            return Err(format!(
                "the weights take {n_in} inputs but the input tensor has {} values (batch > 1 is not supported)",
                x.len()
            ));
        }
        let (filter, fq) = self.weights(filter_t, "weights", &[n_out, n_in])?;
        let n = n_out as usize;
        check_per_channel(&fq, n, 0)?;
        let bias = self.bias(&io.inputs, 2, n)?;
        let (multiplier, shift): (Vec<i32>, Vec<i32>) = if fq.scales.len() == 1 {
            // TFLM `GetQuantizedConvolutionMultipler`: the scale product in float.
            let (m, s) = quantize_multiplier(f64::from(x.scale * fq.scales[0]) / f64::from(out.scale));
            (vec![m], vec![s])
        } else {
            channel_multipliers(x.scale, &fq, out.scale, n)
        };
        Ok(OpKind::FullyConnected(FcParams {
            filter: self.ir.push_weights(filter),
            bias: self.ir.push_params(&bias),
            multiplier: self.ir.push_params(&multiplier),
            shift: self.ir.push_params(&shift),
            clamp: fused_clamp(o.fused_activation_function, &out)?,
        }))
    }

    /// MEAN over any axes (negative ones count from the end), with or without kept
    /// dimensions: the same bytes either way.
    fn mean(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let rank = self.shape(io.inputs[0])?.len();
        let axes = self.axes(io, 1, rank)?;
        let mut mask = 0u8;
        for &a in &axes {
            // The batch of 1 reduces to itself.
            if let Some(k) = ir_axis(rank, a) {
                mask |= 1 << k;
            }
        }
        if mask == 0 {
            return Err(format!("a mean over axes {axes:?} of a rank-{rank} tensor reduces nothing but the batch"));
        }
        let dims = [x.h, x.w, x.c];
        let count: u32 = (0..3).filter(|k| mask & (1 << k) != 0).map(|k| u32::from(dims[k])).product();
        let (multiplier, shift) = mean_params(x.scale, out.scale, count);
        Ok(OpKind::Mean(MeanParams { multiplier, shift, axes: mask }))
    }

    /// TRANSPOSE that keeps the batch first.
    fn transpose(&mut self, io: &OpIo) -> Result<OpKind, String> {
        self.in_tensor(&io.inputs, 0)?;
        let rank = self.shape(io.inputs[0])?.len();
        let perm = self.axes(io, 1, rank)?;
        if perm.len() != rank {
            return Err(format!("a permutation of {} axes for a rank-{rank} tensor", perm.len()));
        }
        let mut ir = [0u8, 1, 2];
        for (k, &a) in perm.iter().enumerate() {
            match (ir_axis(rank, k as i32), ir_axis(rank, a)) {
                (None, None) => {}
                (Some(to), Some(from)) => ir[to] = from as u8,
                _ => {
                    return Err(format!(
                        "permutation {perm:?} moves the batch; only height, width and channels may move"
                    ))
                }
            }
        }
        Ok(OpKind::Transpose(TransposeParams { perm: ir }))
    }

    /// RELU (TFLM: the `input_scale / output_scale` requantization, in
    /// double, then the activation's range quantized with the output's scale) or LEAKY_RELU
    /// (a second multiplier, `input_scale * alpha / output_scale` in float, below zero).
    fn activation_op(&mut self, io: &OpIo, kind: ActivationKind) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let params = match kind {
            ActivationKind::Relu => {
                let m = quantize_multiplier(f64::from(x.scale) / f64::from(out.scale));
                ActivationParams { positive: m, negative: m, clamp: fused_clamp(1, &out)? }
            }
            ActivationKind::LeakyRelu => {
                let alpha = match io.options()? {
                    Some(fb::BuiltinOptionsRef::LeakyReluOptions(o)) => o.alpha().map_err(|e| e.to_string())?,
                    None => 0.0,
                    Some(_) => return Err(OPTIONS_MISSING.into()),
                };
                ActivationParams {
                    positive: quantize_multiplier(f64::from(x.scale / out.scale)),
                    negative: quantize_multiplier(f64::from(x.scale * alpha / out.scale)),
                    clamp: Clamp::NONE,
                }
            }
        };
        Ok(OpKind::Activation(kind, params))
    }

    /// CONCATENATION of tensors (activations or constants) along height, width or channels,
    /// in one quantization (TFLM copies the int8 bytes).
    fn concat(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let (axis, act) = match io.options()? {
            Some(fb::BuiltinOptionsRef::ConcatenationOptions(o)) => {
                (o.axis().map_err(|e| e.to_string())?, o.fused_activation_function().map_err(|e| e.to_string())?)
            }
            _ => return Err(OPTIONS_MISSING.into()),
        };
        if act != 0 {
            return Err(format!("fused activation {act}; TFLM's int8 CONCATENATION applies none"));
        }
        if io.inputs.is_empty() || io.inputs.len() > MAX_OP_INPUTS {
            return Err(format!("{} inputs; CONCATENATION of 1 to {MAX_OP_INPUTS} is supported", io.inputs.len()));
        }
        let out = self.out_tensor(io.output)?;
        for &t in &io.inputs {
            let x = self.operand(t)?;
            if (x.scale, x.zero_point) != (out.scale, out.zero_point) {
                return Err(format!(
                    "{} has scale {} and zero point {}, the output {} and {}; int8 CONCATENATION needs one quantization (TFLM refuses others)",
                    self.describe(t),
                    x.scale,
                    x.zero_point,
                    out.scale,
                    out.zero_point
                ));
            }
        }
        let rank = self.shape(io.inputs[0])?.len();
        let resolved = if axis < 0 { axis + rank as i32 } else { axis };
        match ir_axis(rank, resolved).filter(|_| (0..rank as i32).contains(&resolved)) {
            Some(k) => Ok(OpKind::Concat(k as u8)),
            None => Err(format!("axis {axis} of a rank-{rank} tensor; height, width or channels are supported")),
        }
    }

    /// LOGISTIC into TFLM's fixed int8 output quantization (1/256, -128).
    fn logistic(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        if out.zero_point != -128 || out.scale != 1.0 / 256.0 {
            return Err(format!(
                "output scale {} and zero point {}; int8 LOGISTIC needs 1/256 and -128 (TFLM refuses others)",
                out.scale, out.zero_point
            ));
        }
        let (multiplier, shift, radius) = logistic_params(x.scale);
        Ok(OpKind::Logistic(LogisticParams { multiplier, shift, radius }))
    }

    /// HARD_SWISH in TFLite's 16-bit fixed point.
    fn hard_swish(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        let (output_multiplier, output_exponent, reluish_multiplier, reluish_exponent) =
            hard_swish_params(x.scale, out.scale);
        // TFLite needs a right shift at the output; int16 shifts stop at 15.
        if !(-15..=0).contains(&output_exponent) || reluish_exponent < -15 {
            return Err(format!(
                "input scale {} and output scale {} are too far apart for TFLite's 16-bit HARD_SWISH",
                x.scale, out.scale
            ));
        }
        Ok(OpKind::HardSwish(HardSwishParams {
            output_multiplier,
            output_exponent,
            reluish_multiplier,
            reluish_exponent,
        }))
    }

    /// PRELU with a (usually constant, broadcast) alpha. TFLM: `double(s_in) / double(s_out)`
    /// and `double(s_in) * double(s_alpha) / double(s_out)`.
    fn prelu(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let (x, alpha, out) = self.binary_operands(io, "PRELU")?;
        let positive = quantize_multiplier(f64::from(x.scale) / f64::from(out.scale));
        let negative = quantize_multiplier(f64::from(x.scale) * f64::from(alpha.scale) / f64::from(out.scale));
        Ok(OpKind::Prelu(PreluParams { positive, negative }))
    }

    /// REDUCE_MAX over any axes; int8 keeps its input's quantization (TFLM checks it).
    fn reduce_max(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        if x.scale != out.scale || x.zero_point != out.zero_point {
            return Err(format!(
                "input quantization (scale {}, zero point {}) differs from the output's (scale {}, zero point {}); int8 REDUCE_MAX keeps its input's",
                x.scale, x.zero_point, out.scale, out.zero_point
            ));
        }
        let rank = self.shape(io.inputs[0])?.len();
        let axes = self.axes(io, 1, rank)?;
        let mask = axes.iter().filter_map(|&a| ir_axis(rank, a)).fold(0u8, |m, k| m | 1 << k);
        if mask == 0 {
            return Err(format!("a maximum over axes {axes:?} of a rank-{rank} tensor reduces nothing but the batch"));
        }
        Ok(OpKind::ReduceMax(mask))
    }

    /// RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR (`bilinear`) of a 4-D tensor to the
    /// constant size its second input gives.
    fn resize(&mut self, io: &OpIo, bilinear: bool) -> Result<OpKind, String> {
        let (align_corners, half_pixel_centers) = match (io.options()?, bilinear) {
            (Some(fb::BuiltinOptionsRef::ResizeNearestNeighborOptions(o)), false) => {
                (o.align_corners().map_err(|e| e.to_string())?, o.half_pixel_centers().map_err(|e| e.to_string())?)
            }
            (Some(fb::BuiltinOptionsRef::ResizeBilinearOptions(o)), true) => {
                (o.align_corners().map_err(|e| e.to_string())?, o.half_pixel_centers().map_err(|e| e.to_string())?)
            }
            (None, _) => (false, false),
            (Some(_), _) => return Err(OPTIONS_MISSING.into()),
        };
        if align_corners && half_pixel_centers {
            return Err("align_corners and half_pixel_centers together; TFLite allows one of them".into());
        }
        let x = self.in_tensor(&io.inputs, 0)?;
        if self.shape(io.inputs[0])?.len() != 4 {
            return Err(format!("a rank-{} input; a [1, h, w, c] image is resized", self.shape(io.inputs[0])?.len()));
        }
        let t = *io.inputs.get(1).ok_or("the size input is missing")?;
        let data = self.data(t)?.ok_or_else(|| format!("the size ({}) is not a constant", self.describe(t)))?;
        let size: Vec<i32> = data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let shape = self.shape(io.output)?;
        if self.tensor(t)?.type_ != INT32 || size.len() != 2 || shape.len() != 4 || shape[1..3] != size[..] {
            return Err(format!(
                "size {size:?} for an output of shape {shape:?}; an INT32 [height, width] that the output has"
            ));
        }
        let out = self.out_tensor(io.output)?;
        if out.c != x.c {
            return Err(format!("{} output channels for {} input channels", out.c, x.c));
        }
        let params = ResizeParams { align_corners, half_pixel_centers };
        Ok(if bilinear { OpKind::ResizeBilinear(params) } else { OpKind::ResizeNearest(params) })
    }

    /// A constant int32 axis list (input `k`), negative axes resolved against `rank`.
    fn axes(&self, io: &OpIo, k: usize, rank: usize) -> Result<Vec<i32>, String> {
        let t = *io.inputs.get(k).ok_or("the axis input is missing")?;
        let data = self.data(t)?.ok_or_else(|| format!("the axes ({}) are not a constant", self.describe(t)))?;
        if self.tensor(t)?.type_ != INT32 {
            return Err(format!("the axes are {}; INT32 expected", type_name(self.tensor(t)?.type_)));
        }
        let mut axes = Vec::new();
        for b in data.chunks_exact(4) {
            let a = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let resolved = if a < 0 { a + rank as i32 } else { a };
            if !(0..rank as i32).contains(&resolved) {
                return Err(format!("axis {a} of a rank-{rank} tensor"));
            }
            axes.push(resolved);
        }
        Ok(axes)
    }

    /// QUANTIZE into int8: from float (the output's scale and zero point do it all), or a
    /// requantization from int8 or uint8 (TFLM: `double(input_scale) / double(output_scale)`).
    fn quantize(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        if out.dtype != DType::I8 {
            return Err(format!("into {}; QUANTIZE into int8 is supported", out.dtype.name()));
        }
        let (multiplier, shift) = match x.dtype {
            DType::F32 => (0, 0),
            DType::I8 | DType::U8 => quantize_multiplier(f64::from(x.scale) / f64::from(out.scale)),
        };
        Ok(OpKind::Quantize(QuantizeParams { multiplier, shift }))
    }

    /// DEQUANTIZE of int8 into float.
    fn dequantize(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        if (x.dtype, out.dtype) != (DType::I8, DType::F32) {
            return Err(format!(
                "{} into {}; DEQUANTIZE of int8 into float32 is supported",
                x.dtype.name(),
                out.dtype.name()
            ));
        }
        Ok(OpKind::Dequantize)
    }

    /// int8 SOFTMAX with TFLM's fixed output quantization.
    fn softmax(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let Some(fb::BuiltinOptionsRef::SoftmaxOptions(o)) = io.options()? else { return Err(OPTIONS_MISSING.into()) };
        let beta = o.beta().map_err(|e| e.to_string())?;
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        // TFLM's int8 SOFTMAX writes probabilities in 1/256 steps from -128.
        if out.zero_point != -128 || (out.scale - 1.0 / 256.0).abs() > 0.001 / 256.0 {
            return Err(format!(
                "output scale {} and zero point {}; int8 SOFTMAX needs 1/256 and -128",
                out.scale, out.zero_point
            ));
        }
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(beta, x.scale);
        if input_left_shift < 0 {
            return Err(format!(
                "beta {beta} times input scale {} is below 2^-27; TFLM's int8 SOFTMAX cannot represent it",
                x.scale
            ));
        }
        Ok(OpKind::Softmax(SoftmaxParams { input_multiplier, input_left_shift, diff_min }))
    }

    /// int8 LOG_SOFTMAX with TFLM's fixed output quantization.
    fn log_softmax(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
        // TFLM compares the float scale exactly.
        if out.zero_point != 127 || out.scale != 16.0 / 256.0 {
            return Err(format!(
                "output scale {} and zero point {}; int8 LOG_SOFTMAX needs 16/256 and 127",
                out.scale, out.zero_point
            ));
        }
        log_softmax_params(x.scale).map(OpKind::LogSoftmax).ok_or_else(|| {
            format!("input scale {} is below 2^-26; TFLM's int8 LOG_SOFTMAX cannot represent it", x.scale)
        })
    }

    /// The sliding window with TFLite's padding (`ComputePaddingHeightWidth`, dilation 1),
    /// resolved against the output tensor's declared size.
    fn window(&self, spec: WindowSpec, x: &Tensor, out_t: usize) -> Result<Window, String> {
        let (kh, kw) = (small("kernel height", spec.kernel.0)?, small("kernel width", spec.kernel.1)?);
        let (sh, sw) = (small("stride", spec.stride.0)?, small("stride", spec.stride.1)?);
        let padding = padding(spec.padding);
        let (oh, ow) = (Window::out_size(padding, x.h, kh, sh), Window::out_size(padding, x.w, kw, sw));
        let shape = self.shape(out_t)?;
        if shape.len() != 4 || (shape[1], shape[2]) != (i32::from(oh), i32::from(ow)) {
            return Err(format!(
                "the output has shape {shape:?}, but a {kh}x{kw} window with stride {sh}x{sw} and {padding:?} padding on a {}x{} input gives {oh}x{ow}",
                x.h, x.w
            ));
        }
        Ok(Window {
            kh,
            kw,
            sh,
            sw,
            padding,
            pad_top: Window::leading_pad(padding, x.h, oh, kh, sh),
            pad_left: Window::leading_pad(padding, x.w, ow, kw, sw),
        })
    }
}

/// The IR axis (0 height, 1 width, 2 channels) of TFLite axis `a` of a rank-`rank` tensor,
/// which the reader stores as `[1, h, w, c]`, `[1, w, c]`, `[1, c]` or `[c]`; `None` for the
/// batch.
fn ir_axis(rank: usize, a: i32) -> Option<usize> {
    match rank {
        1 => Some(2),
        _ if a == 0 => None,
        _ => usize::try_from(a as i64 + 3 - rank as i64).ok().filter(|&k| k < 3),
    }
}

/// A window as TFLite declares it: `(height, width)` pairs.
struct WindowSpec {
    padding: fb::Padding,
    kernel: (i32, i32),
    stride: (i32, i32),
}

/// What CONV_2D and DEPTHWISE_CONV_2D options share: `(height, width)` pairs.
struct ConvOptions {
    padding: fb::Padding,
    stride: (i32, i32),
    dilation: (i32, i32),
    activation: i8,
}

impl From<fb::Conv2DOptions> for ConvOptions {
    fn from(o: fb::Conv2DOptions) -> Self {
        ConvOptions {
            padding: o.padding,
            stride: (o.stride_h, o.stride_w),
            dilation: (o.dilation_h_factor, o.dilation_w_factor),
            activation: o.fused_activation_function,
        }
    }
}

impl From<fb::DepthwiseConv2DOptions> for ConvOptions {
    fn from(o: fb::DepthwiseConv2DOptions) -> Self {
        ConvOptions {
            padding: o.padding,
            stride: (o.stride_h, o.stride_w),
            dilation: (o.dilation_h_factor, o.dilation_w_factor),
            activation: o.fused_activation_function,
        }
    }
}
