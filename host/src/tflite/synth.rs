//! Writing TFLite int8 models: a small builder over the generated schema, and random CNNs of
//! the supported ops. TFLite Micro runs what this writes, so a random CNN is a model nobody
//! has seen: the differential tests compare the engine with TFLM on hundreds of them.

use super::ops;
use super::reader::{FLOAT32, INT32, INT8, UINT8};
use super::schema_generated::tflite as fb;
use rand::{Rng, SeedableRng};

/// A TFLite model under construction (one subgraph, one input, one output).
#[derive(Clone, Debug, Default)]
pub struct Builder {
    /// Tensors, by TFLite tensor index.
    pub tensors: Vec<fb::Tensor>,
    /// Buffers; buffer 0 is the empty sentinel.
    pub buffers: Vec<fb::Buffer>,
    /// Operator codes.
    pub codes: Vec<fb::OperatorCode>,
    /// Operators, in execution order.
    pub ops: Vec<fb::Operator>,
}

/// Quantization parameters: per tensor with one scale, per channel along `dim` with several.
pub fn quant(scales: &[f32], zero_points: &[i64], dim: i32) -> Option<Box<fb::QuantizationParameters>> {
    Some(Box::new(fb::QuantizationParameters {
        scale: Some(scales.to_vec()),
        zero_point: Some(zero_points.to_vec()),
        quantized_dimension: dim,
        ..Default::default()
    }))
}

impl Builder {
    /// An empty model.
    pub fn new() -> Self {
        // Buffer 0 is the empty sentinel every TFLite file starts with.
        Builder { buffers: vec![fb::Buffer::default()], ..Default::default() }
    }

    /// A tensor of TFLite type `type_`, constant when `data` is given; returns its index.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[i32],
        type_: i8,
        data: Option<Vec<u8>>,
        q: Option<Box<fb::QuantizationParameters>>,
    ) -> i32 {
        let buffer = match data {
            Some(d) => {
                self.buffers.push(fb::Buffer { data: Some(d), ..Default::default() });
                self.buffers.len() as u32 - 1
            }
            None => 0,
        };
        self.tensors.push(fb::Tensor {
            shape: Some(shape.to_vec()),
            type_,
            buffer,
            name: Some(name.to_string()),
            quantization: q,
            is_variable: false,
        });
        self.tensors.len() as i32 - 1
    }

    /// An int8 activation.
    pub fn act(&mut self, name: &str, shape: &[i32], scale: f32, zero_point: i64) -> i32 {
        self.tensor(name, shape, INT8, None, quant(&[scale], &[zero_point], 0))
    }

    /// Constant symmetric int8 weights, per channel along `dim` when `scales` has more than
    /// one value.
    pub fn weights(&mut self, name: &str, shape: &[i32], values: &[i8], scales: &[f32], dim: i32) -> i32 {
        let zps = vec![0; scales.len()];
        self.tensor(name, shape, INT8, Some(bytemuck::cast_slice(values).to_vec()), quant(scales, &zps, dim))
    }

    /// A constant int32 vector (a bias, a shape, paddings).
    pub fn bias(&mut self, name: &str, values: &[i32]) -> i32 {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, &[values.len() as i32], INT32, Some(bytes), None)
    }

    /// Appends an operator with builtin code `code` (an optional input is `-1`).
    pub fn op(&mut self, code: i32, inputs: &[i32], outputs: &[i32], options: Option<fb::BuiltinOptions>) {
        let opcode = fb::OperatorCode {
            deprecated_builtin_code: code.min(127) as i8,
            builtin_code: code,
            version: 1,
            custom_code: (code == ops::CUSTOM).then(|| "MyOp".to_string()),
        };
        let opcode_index = match self.codes.iter().position(|c| c.builtin_code == code) {
            Some(i) => i,
            None => {
                self.codes.push(opcode);
                self.codes.len() - 1
            }
        } as u32;
        self.ops.push(fb::Operator {
            opcode_index,
            inputs: Some(inputs.to_vec()),
            outputs: Some(outputs.to_vec()),
            builtin_options: options,
            ..Default::default()
        });
    }

    /// The `.tflite` bytes, with `input` and `output` as the graph's tensors.
    pub fn bytes(&self, input: i32, output: i32) -> Vec<u8> {
        self.bytes_with(input, &[output])
    }

    /// The `.tflite` bytes of a graph with several outputs.
    pub fn bytes_with(&self, input: i32, outputs: &[i32]) -> Vec<u8> {
        let model = fb::Model {
            version: 3,
            operator_codes: Some(self.codes.clone()),
            subgraphs: Some(vec![fb::SubGraph {
                tensors: Some(self.tensors.clone()),
                inputs: Some(vec![input]),
                outputs: Some(outputs.to_vec()),
                operators: Some(self.ops.clone()),
                name: Some("main".into()),
            }]),
            description: Some("written by patchbench".into()),
            buffers: Some(self.buffers.clone()),
        };
        // planus 1.3 writes a file identifier ahead of the root offset (and the offset as if
        // from byte 4); TFLite has the root offset first, the identifier second.
        let mut bytes = planus::Builder::new().finish(&model, Some(*b"TFL3")).to_vec();
        let root = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) + 4;
        bytes[..4].copy_from_slice(&root.to_le_bytes());
        bytes[4..8].copy_from_slice(b"TFL3");
        bytes
    }
}

/// An activation of the random CNN under construction.
#[derive(Clone, Copy, Debug)]
struct Act {
    id: i32,
    h: i32,
    w: i32,
    c: i32,
    scale: f32,
    zero_point: i64,
}

/// Writes random CNNs op by op.
struct Random {
    rng: rand_chacha::ChaCha8Rng,
    b: Builder,
    /// Every activation so far: residual ADDs pick a partner among them.
    acts: Vec<Act>,
}

/// Output size of a window along one axis (TFLite `ComputeOutSize`, dilation 1).
fn out_size(same: bool, input: i32, kernel: i32, stride: i32) -> i32 {
    if same {
        (input + stride - 1) / stride
    } else {
        (input - kernel) / stride + 1
    }
}

impl Random {
    fn name(&self, what: &str) -> String {
        format!("{what}{}", self.b.tensors.len())
    }

    fn new_act(&mut self, what: &str, shape: (i32, i32, i32), scale: f32, zero_point: i64) -> Act {
        let name = self.name(what);
        let id = self.b.act(&name, &[1, shape.0, shape.1, shape.2], scale, zero_point);
        let a = Act { id, h: shape.0, w: shape.1, c: shape.2, scale, zero_point };
        self.acts.push(a);
        a
    }

    /// An int32 bias quantized as converters write it, at input scale times weight scale
    /// (TFLM checks the two agree).
    fn quantized_bias(&mut self, name: &str, values: &[i32], input_scale: f32, weight_scales: &[f32]) -> i32 {
        let id = self.b.bias(name, values);
        let scales: Vec<f32> = weight_scales.iter().map(|w| input_scale * w).collect();
        self.b.tensors[id as usize].quantization = quant(&scales, &vec![0; scales.len()], 0);
        id
    }

    /// A zero point: usually anywhere, sometimes the RELU-friendly -128.
    fn zero_point(&mut self) -> i64 {
        if self.rng.gen_bool(0.3) {
            -128
        } else {
            self.rng.gen_range(-128..=127)
        }
    }

    /// NONE, RELU, RELU_N1_TO_1 or RELU6, NONE most often.
    fn activation(&mut self) -> i8 {
        [0, 0, 1, 2, 3][self.rng.gen_range(0..5)]
    }

    /// A window (kernel, stride, padding) that fits `x`.
    fn window(&mut self, x: Act, max_kernel: i32) -> (i32, i32, i32, i32, bool) {
        let same = self.rng.gen_bool(0.5);
        let kh = self.rng.gen_range(1..=max_kernel.min(x.h));
        let kw = self.rng.gen_range(1..=max_kernel.min(x.w));
        // Mostly 1 or 2; now and then 3 (strides above the kernel skip input pixels).
        const STRIDES: [i32; 10] = [1, 1, 1, 1, 2, 2, 2, 2, 2, 3];
        let sh = STRIDES[self.rng.gen_range(0..10)];
        let sw = if self.rng.gen_bool(0.8) { sh } else { STRIDES[self.rng.gen_range(0..10)] };
        (kh, kw, sh, sw, same)
    }

    /// An output scale that keeps a dot product of `terms` int8 products mostly in range: a
    /// product of two uniform int8 values spreads about 73 * 73 = 5300, a sum of `terms` of
    /// them `sqrt(terms)` times that; aim that at about 40 output steps, give or take 3x.
    fn product_scale(&mut self, input_scale: f32, weight_scale: f32, terms: i32) -> f32 {
        let spread = 5300.0 * (terms as f32).sqrt() / 40.0;
        input_scale * weight_scale * spread * self.rng.gen_range(0.3..3.0)
    }

    fn conv(&mut self, x: Act, depthwise: bool) -> Act {
        let max_kernel = if self.rng.gen_bool(0.1) { 7 } else { 5 };
        let (kh, kw, sh, sw, same) = self.window(x, max_kernel);
        // A depth multiplier above 1 now and then (as a 1-channel image's first layer has).
        let multiplier = if depthwise && x.c <= 2 && self.rng.gen_bool(0.4) { self.rng.gen_range(2..=8) } else { 1 };
        let cout = if depthwise { x.c * multiplier } else { self.rng.gen_range(1..=8) };
        let shape = if depthwise { [1, kh, kw, cout] } else { [cout, kh, kw, x.c] };
        let values: Vec<i8> = (0..shape.iter().product::<i32>()).map(|_| self.rng.gen()).collect();
        let per_channel = self.rng.gen_bool(0.7);
        let scales: Vec<f32> =
            (0..if per_channel { cout } else { 1 }).map(|_| self.rng.gen_range(0.001..0.02)).collect();
        let name = self.name("filter");
        let filter = self.b.weights(&name, &shape, &values, &scales, if depthwise { 3 } else { 0 });
        // TFLM's int8 DEPTHWISE_CONV_2D reads its bias unconditionally (it crashes without
        // one; converters always write one), so only CONV_2D goes without.
        let bias = if depthwise || self.rng.gen_bool(0.8) {
            let values: Vec<i32> = (0..cout).map(|_| self.rng.gen_range(-5000..=5000)).collect();
            let name = self.name("bias");
            self.quantized_bias(&name, &values, x.scale, &scales)
        } else {
            -1
        };
        let terms = kh * kw * if depthwise { 1 } else { x.c };
        let scale = self.product_scale(x.scale, scales[0], terms);
        let zp = self.zero_point();
        let out_shape = (out_size(same, x.h, kh, sh), out_size(same, x.w, kw, sw), cout);
        let y = self.new_act(if depthwise { "dw" } else { "conv" }, out_shape, scale, zp);
        let padding = if same { fb::Padding::Same } else { fb::Padding::Valid };
        let activation = self.activation();
        let options = if depthwise {
            fb::BuiltinOptions::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptions {
                padding,
                stride_w: sw,
                stride_h: sh,
                depth_multiplier: multiplier,
                fused_activation_function: activation,
                dilation_w_factor: 1,
                dilation_h_factor: 1,
            }))
        } else {
            fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
                padding,
                stride_w: sw,
                stride_h: sh,
                fused_activation_function: activation,
                dilation_w_factor: 1,
                dilation_h_factor: 1,
            }))
        };
        let code = if depthwise { ops::DEPTHWISE_CONV_2D } else { ops::CONV_2D };
        self.b.op(code, &[x.id, filter, bias], &[y.id], Some(options));
        y
    }

    /// A residual ADD with an earlier activation of the same shape, or with a new 1x1
    /// CONV_2D branch when there is none.
    fn add(&mut self, x: Act) -> Act {
        let partners: Vec<Act> =
            self.acts.iter().copied().filter(|a| a.id != x.id && (a.h, a.w, a.c) == (x.h, x.w, x.c)).collect();
        let other = if partners.is_empty() {
            let values: Vec<i8> = (0..x.c * x.c).map(|_| self.rng.gen()).collect();
            let name = self.name("branch");
            let filter = self.b.weights(&name, &[x.c, 1, 1, x.c], &values, &[0.01], 0);
            let scale = self.product_scale(x.scale, 0.01, x.c);
            let zp = self.zero_point();
            let y = self.new_act("branch", (x.h, x.w, x.c), scale, zp);
            let options = fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
                padding: fb::Padding::Same,
                stride_w: 1,
                stride_h: 1,
                fused_activation_function: 0,
                dilation_w_factor: 1,
                dilation_h_factor: 1,
            }));
            self.b.op(ops::CONV_2D, &[x.id, filter, -1], &[y.id], Some(options));
            y
        } else {
            partners[self.rng.gen_range(0..partners.len())]
        };
        let scale = x.scale.max(other.scale) * self.rng.gen_range(0.8..2.0);
        let zp = self.zero_point();
        let y = self.new_act("add", (x.h, x.w, x.c), scale, zp);
        let activation = self.activation();
        let options =
            fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions { fused_activation_function: activation }));
        let (a, b) = if self.rng.gen_bool(0.5) { (x, other) } else { (other, x) };
        self.b.op(ops::ADD, &[a.id, b.id], &[y.id], Some(options));
        y
    }

    /// A 1x1 CONV_2D to `cout` channels with fused activation `activation`.
    fn pointwise(&mut self, x: Act, cout: i32, activation: i8) -> Act {
        let values: Vec<i8> = (0..cout * x.c).map(|_| self.rng.gen()).collect();
        let scales = [self.rng.gen_range(0.001..0.02)];
        let name = self.name("pw");
        let filter = self.b.weights(&name, &[cout, 1, 1, x.c], &values, &scales, 0);
        let bias: Vec<i32> = (0..cout).map(|_| self.rng.gen_range(-5000..=5000)).collect();
        let name = self.name("pw_bias");
        let bias = self.quantized_bias(&name, &bias, x.scale, &scales);
        let scale = self.product_scale(x.scale, scales[0], x.c);
        let zp = if activation == 0 { self.zero_point() } else { -128 };
        let y = self.new_act("pw", (x.h, x.w, cout), scale, zp);
        let options = fb::BuiltinOptions::Conv2DOptions(Box::new(fb::Conv2DOptions {
            padding: fb::Padding::Same,
            stride_w: 1,
            stride_h: 1,
            fused_activation_function: activation,
            dilation_w_factor: 1,
            dilation_h_factor: 1,
        }));
        self.b.op(ops::CONV_2D, &[x.id, filter, bias], &[y.id], Some(options));
        y
    }

    /// A constant int8 operand of `shape` with random values and quantization.
    fn constant(&mut self, shape: &[i32], scale: f32) -> i32 {
        let n: i32 = shape.iter().product();
        let values: Vec<i8> = (0..n).map(|_| self.rng.gen()).collect();
        let name = self.name("const");
        let zp = self.rng.gen_range(-20..=20);
        self.b.tensor(&name, shape, INT8, Some(bytemuck::cast_slice(&values).to_vec()), quant(&[scale], &[zp], 0))
    }

    /// ADD (code `ops::ADD`) or MUL of `a` and `b` (activations or constants, either may
    /// broadcast) into a new activation of `shape`.
    fn binary(&mut self, code: i32, (a, b): (i32, i32), shape: (i32, i32, i32), scale: f32, activation: i8) -> Act {
        let zp = if activation == 0 { self.zero_point() } else { -128 };
        let y = self.new_act(if code == ops::ADD { "add" } else { "mul" }, shape, scale, zp);
        let options = if code == ops::ADD {
            fb::BuiltinOptions::AddOptions(Box::new(fb::AddOptions { fused_activation_function: activation }))
        } else {
            fb::BuiltinOptions::MulOptions(Box::new(fb::MulOptions { fused_activation_function: activation }))
        };
        let (a, b) = if self.rng.gen_bool(0.5) { (a, b) } else { (b, a) };
        self.b.op(code, &[a, b], &[y.id], Some(options));
        y
    }

    /// MUL of `x` by an earlier activation of its shape, or by a constant (a scalar, one
    /// value per channel, or a full tensor), or ADD of such a constant.
    fn scale_op(&mut self, x: Act) -> Act {
        let shape = (x.h, x.w, x.c);
        let partner = self.acts.iter().copied().rfind(|a| a.id != x.id && (a.h, a.w, a.c) == shape);
        let (other, other_scale) = match (partner, self.rng.gen_range(0..4)) {
            (Some(p), 0) => (p.id, p.scale),
            (_, k) => {
                let dims: &[i32] = match k {
                    1 => &[1],
                    2 => &[x.c],
                    _ => &[1, 1, 1, x.c],
                };
                let scale = self.rng.gen_range(0.005..0.05);
                (self.constant(dims, scale), scale)
            }
        };
        let activation = self.activation();
        if self.rng.gen_bool(0.7) {
            // A product of two int8 values spreads about 73 * 73 steps of s1 * s2.
            let scale = x.scale * other_scale * 40.0 * self.rng.gen_range(0.5..3.0);
            self.binary(ops::MUL, (x.id, other), shape, scale, activation)
        } else {
            let scale = x.scale.max(other_scale) * self.rng.gen_range(0.8..2.0);
            self.binary(ops::ADD, (x.id, other), shape, scale, activation)
        }
    }

    /// RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR to a random size (an FPN's 2x upsampling
    /// most often), with random corner and centre options.
    fn resize(&mut self, x: Act) -> Act {
        let (h, w) = if self.rng.gen_bool(0.5) {
            (x.h * 2, x.w * 2)
        } else {
            (self.rng.gen_range(1..=x.h * 3).min(40), self.rng.gen_range(1..=x.w * 3).min(40))
        };
        let (align_corners, half_pixel_centers) =
            [(false, false), (false, false), (true, false), (false, true)][self.rng.gen_range(0..4)];
        let name = self.name("size");
        let size = self.b.bias(&name, &[h, w]);
        let y = self.new_act("resize", (h, w, x.c), x.scale, x.zero_point);
        if self.rng.gen_bool(0.5) {
            let options = fb::BuiltinOptions::ResizeBilinearOptions(Box::new(fb::ResizeBilinearOptions {
                align_corners,
                half_pixel_centers,
            }));
            self.b.op(ops::RESIZE_BILINEAR, &[x.id, size], &[y.id], Some(options));
            return y;
        }
        let options = fb::BuiltinOptions::ResizeNearestNeighborOptions(Box::new(fb::ResizeNearestNeighborOptions {
            align_corners,
            half_pixel_centers,
        }));
        self.b.op(ops::RESIZE_NEAREST_NEIGHBOR, &[x.id, size], &[y.id], Some(options));
        y
    }

    /// RELU, RELU6 or LEAKY_RELU as an op (TFLM has no RELU_N1_TO_1 op), requantizing or not.
    fn activation_op(&mut self, x: Act) -> Act {
        let code = [ops::RELU, ops::RELU6, ops::LEAKY_RELU][self.rng.gen_range(0..3)];
        let (scale, zp) = if self.rng.gen_bool(0.3) {
            (x.scale, x.zero_point)
        } else {
            (x.scale * self.rng.gen_range(0.5..2.0), self.zero_point())
        };
        let y = self.new_act("act", (x.h, x.w, x.c), scale, zp);
        let options = (code == ops::LEAKY_RELU).then(|| {
            let alpha = self.rng.gen_range(0.01..0.5);
            fb::BuiltinOptions::LeakyReluOptions(Box::new(fb::LeakyReluOptions { alpha }))
        });
        self.b.op(code, &[x.id], &[y.id], options);
        y
    }

    /// PRELU with a constant alpha: one per channel (as Keras shares it over height and
    /// width), a scalar, or a full tensor.
    fn prelu(&mut self, x: Act) -> Act {
        let dims: Vec<i32> = match self.rng.gen_range(0..3) {
            0 => vec![1, 1, x.c],
            1 => vec![1],
            _ => vec![x.h, x.w, x.c],
        };
        let alpha_scale = self.rng.gen_range(0.001..0.01);
        let alpha = self.constant(&dims, alpha_scale);
        let (scale, zp) = (x.scale * self.rng.gen_range(0.5..2.0), self.zero_point());
        let y = self.new_act("prelu", (x.h, x.w, x.c), scale, zp);
        self.b.op(ops::PRELU, &[x.id, alpha], &[y.id], None);
        y
    }

    /// LOGISTIC into TFLM's fixed output quantization, alone or as swish (`x * sigmoid(x)`).
    fn logistic(&mut self, x: Act) -> Act {
        let y = self.new_act("sigmoid", (x.h, x.w, x.c), 1.0 / 256.0, -128);
        self.b.op(ops::LOGISTIC, &[x.id], &[y.id], None);
        if self.rng.gen_bool(0.5) {
            return y;
        }
        let scale = x.scale * self.rng.gen_range(0.5..1.5);
        let zp = self.zero_point();
        let z = self.new_act("swish", (x.h, x.w, x.c), scale, zp);
        self.b.op(ops::MUL, &[x.id, y.id], &[z.id], None);
        z
    }

    /// HARD_SWISH (MobileNetV3's activation), requantizing.
    fn hard_swish(&mut self, x: Act) -> Act {
        // The output spans about [-0.375, max(x)]: a scale near the input's.
        let scale = x.scale * self.rng.gen_range(0.3..1.5);
        let zp = self.rng.gen_range(-128..=0);
        let y = self.new_act("hswish", (x.h, x.w, x.c), scale, zp);
        self.b.op(ops::HARD_SWISH, &[x.id], &[y.id], None);
        y
    }

    /// MAXIMUM or MINIMUM of `x` and an earlier activation of its shape or a constant (a
    /// scalar or one value per channel), in `x`'s quantization.
    fn max_min(&mut self, x: Act) -> Act {
        let shape = (x.h, x.w, x.c);
        let partner = self.acts.iter().copied().rfind(|a| a.id != x.id && (a.h, a.w, a.c) == shape);
        let other = match (partner, self.rng.gen_range(0..3)) {
            (Some(p), 0) => p.id,
            (_, k) => {
                let dims: &[i32] = if k == 1 { &[1] } else { &[x.c] };
                self.constant(dims, x.scale)
            }
        };
        let code = if self.rng.gen_bool(0.5) { ops::MAXIMUM } else { ops::MINIMUM };
        let y = self.new_act(if code == ops::MAXIMUM { "max" } else { "min" }, shape, x.scale, x.zero_point);
        let (a, b) = if self.rng.gen_bool(0.5) { (x.id, other) } else { (other, x.id) };
        self.b.op(code, &[a, b], &[y.id], None);
        y
    }

    /// CONCATENATION of `x` and 1 to 4 1x1 CONV_2D branches of it, in random order, along
    /// channels (an FPN's merge, an inception block), height or width; TFLM concatenates int8
    /// only in one quantization, the inputs'.
    fn concat(&mut self, x: Act) -> Act {
        let axis = [3, 3, 1, 2][self.rng.gen_range(0..4)];
        let mut parts = vec![x];
        for _ in 0..self.rng.gen_range(1..=4) {
            let cout = if axis == 3 { self.rng.gen_range(1..=4) } else { x.c };
            let mut branch = self.pointwise(x, cout, 0);
            self.b.tensors[branch.id as usize].quantization = quant(&[x.scale], &[x.zero_point], 0);
            (branch.scale, branch.zero_point) = (x.scale, x.zero_point);
            parts.push(branch);
        }
        let k = self.rng.gen_range(0..parts.len());
        parts.swap(0, k);
        let sum = |f: fn(&Act) -> i32| parts.iter().map(f).sum::<i32>();
        let shape = match axis {
            1 => (sum(|a| a.h), x.w, x.c),
            2 => (x.h, sum(|a| a.w), x.c),
            _ => (x.h, x.w, sum(|a| a.c)),
        };
        let y = self.new_act("concat", shape, x.scale, x.zero_point);
        let options = fb::BuiltinOptions::ConcatenationOptions(Box::new(fb::ConcatenationOptions {
            axis: if self.rng.gen_bool(0.3) { axis - 4 } else { axis },
            fused_activation_function: 0,
        }));
        let ids: Vec<i32> = parts.iter().map(|a| a.id).collect();
        self.b.op(ops::CONCATENATION, &ids, &[y.id], Some(options));
        y
    }

    /// Keras' flatten of `x` when the batch is dynamic: SHAPE, STRIDED_SLICE of the batch
    /// (shrunk to a scalar), PACK with the flat size, RESHAPE to that; constant once shapes
    /// are known.
    fn dynamic_flatten(&mut self, x: Act) -> i32 {
        let name = self.name("shape_of");
        let shape = self.b.tensor(&name, &[4], INT32, None, None);
        self.b.op(ops::SHAPE, &[x.id], &[shape], None);
        let (begin, end, strides) = (self.name("begin"), self.name("end"), self.name("strides"));
        let (begin, end, strides) = (self.b.bias(&begin, &[0]), self.b.bias(&end, &[1]), self.b.bias(&strides, &[1]));
        let name = self.name("batch");
        let batch = self.b.tensor(&name, &[], INT32, None, None);
        let options = fb::BuiltinOptions::StridedSliceOptions(Box::new(fb::StridedSliceOptions {
            shrink_axis_mask: 1,
            ..Default::default()
        }));
        self.b.op(ops::STRIDED_SLICE, &[shape, begin, end, strides], &[batch], Some(options));
        let name = self.name("flat_size");
        let size = if self.rng.gen_bool(0.5) { -1 } else { x.h * x.w * x.c };
        let size = self.b.tensor(&name, &[], INT32, Some(size.to_le_bytes().to_vec()), None);
        let name = self.name("flat_shape");
        let packed = self.b.tensor(&name, &[2], INT32, None, None);
        let options = fb::BuiltinOptions::PackOptions(Box::new(fb::PackOptions { values_count: 2, axis: 0 }));
        self.b.op(ops::PACK, &[batch, size], &[packed], Some(options));
        let name = self.name("flat");
        let flat = self.b.act(&name, &[1, x.h * x.w * x.c], x.scale, x.zero_point);
        self.b.op(ops::RESHAPE, &[x.id, packed], &[flat], None);
        flat
    }

    /// A squeeze-and-excite block as MCUNet writes it: MEAN over width, then height, with
    /// kept dimensions; a 1x1 CONV_2D with RELU; a 1x1 CONV_2D; a hard sigmoid (ADD of a
    /// constant 3 with RELU6, MUL by a constant 1/6); and MUL of the input by the result,
    /// broadcast over height and width.
    fn squeeze_excite(&mut self, x: Act) -> Act {
        let q = (x.scale, x.zero_point);
        let rows = self.mean_into(x.id, &[2], &[1, x.h, 1, x.c], q);
        let q = self.quant_of(rows);
        let pooled = self.mean_into(rows, &[1], &[1, 1, 1, x.c], q);
        let (scale, zero_point) = self.quant_of(pooled);
        let pooled = Act { id: pooled, h: 1, w: 1, c: x.c, scale, zero_point };
        let squeeze = self.rng.gen_range(1..=4);
        let squeezed = self.pointwise(pooled, squeeze, 1);
        let excited = self.pointwise(squeezed, x.c, 0);
        let three = 3.0 / 127.0;
        let name = self.name("three");
        let k3 = self.b.tensor(&name, &[1], INT8, Some(vec![127]), quant(&[three], &[0], 0));
        // TFLM's ADD needs the output scale above 2^-19 of the larger input scale.
        let hs_scale = (6.0 / 255.0 * self.rng.gen_range(0.9f32..1.1)).max(excited.scale.max(three) / 65536.0);
        let hs = self.binary(ops::ADD, (excited.id, k3), (1, 1, x.c), hs_scale, 3);
        let sixth = (1.0 / 6.0) / 127.0;
        let name = self.name("sixth");
        let k6 = self.b.tensor(&name, &[1], INT8, Some(vec![127]), quant(&[sixth], &[0], 0));
        let gate = self.binary(ops::MUL, (hs.id, k6), (1, 1, x.c), 1.0 / 255.0, 0);
        let scale = x.scale * self.rng.gen_range(0.5..1.5);
        self.binary(ops::MUL, (x.id, gate.id), (x.h, x.w, x.c), scale, 0)
    }

    /// MAX_POOL_2D or AVERAGE_POOL_2D; pooling keeps the input's quantization (as TFLite's
    /// converter writes it).
    fn pool(&mut self, x: Act, average: bool, global: bool) -> Act {
        let (kh, kw, sh, sw, same) = if global { (x.h, x.w, 1, 1, false) } else { self.window(x, 3) };
        let out_shape = (out_size(same, x.h, kh, sh), out_size(same, x.w, kw, sw), x.c);
        let y = self.new_act(if average { "avgpool" } else { "maxpool" }, out_shape, x.scale, x.zero_point);
        let activation = if global { 0 } else { self.activation() };
        let options = fb::BuiltinOptions::Pool2DOptions(Box::new(fb::Pool2DOptions {
            padding: if same { fb::Padding::Same } else { fb::Padding::Valid },
            stride_w: sw,
            stride_h: sh,
            filter_width: kw,
            filter_height: kh,
            fused_activation_function: activation,
        }));
        let code = if average { ops::AVERAGE_POOL_2D } else { ops::MAX_POOL_2D };
        self.b.op(code, &[x.id], &[y.id], Some(options));
        y
    }

    /// PAD of height and width, keeping the input's quantization.
    fn pad(&mut self, x: Act) -> Act {
        let p: Vec<i32> = (0..4).map(|_| self.rng.gen_range(0..=2)).collect();
        let name = self.name("paddings");
        let paddings = self.b.bias(&name, &[0, 0, p[0], p[1], p[2], p[3], 0, 0]);
        self.b.tensors[paddings as usize].shape = Some(vec![4, 2]);
        let y = self.new_act("pad", (x.h + p[0] + p[1], x.w + p[2] + p[3], x.c), x.scale, x.zero_point);
        self.b.op(ops::PAD, &[x.id, paddings], &[y.id], None);
        y
    }

    /// MEAN over height and width, to `[1, c]` or `[1, 1, 1, c]`, keeping the input's
    /// quantization or not.
    fn mean(&mut self, x: Act) -> Act {
        let name = self.name("axes");
        let axes = if self.rng.gen_bool(0.5) { [1, 2] } else { [-2, -3] };
        let axes = self.b.bias(&name, &axes);
        let (scale, zero_point) = if self.rng.gen_bool(0.5) {
            (x.scale, x.zero_point)
        } else {
            (x.scale * self.rng.gen_range(0.3..2.0), self.zero_point())
        };
        let name = self.name("mean");
        let shape: &[i32] = if self.rng.gen_bool(0.5) { &[1, x.c] } else { &[1, 1, 1, x.c] };
        let id = self.b.act(&name, shape, scale, zero_point);
        self.b.op(ops::MEAN, &[x.id, axes], &[id], None);
        Act { id, h: 1, w: 1, c: x.c, scale, zero_point }
    }

    /// MEAN over `axes` of a rank-4 `x` into `shape`, requantizing or not.
    fn mean_into(&mut self, x: i32, axes: &[i32], shape: &[i32], (scale, zero_point): (f32, i64)) -> i32 {
        let name = self.name("axes");
        let axes = self.b.bias(&name, axes);
        let (scale, zero_point) = if self.rng.gen_bool(0.5) {
            (scale, zero_point)
        } else {
            (scale * self.rng.gen_range(0.3..2.0), self.zero_point())
        };
        let name = self.name("mean");
        let id = self.b.act(&name, shape, scale, zero_point);
        self.b.op(ops::MEAN, &[x, axes], &[id], None);
        id
    }

    /// A global average over height and width as exporters write it: one axis at a time with
    /// kept dimensions (squeeze-and-excite blocks), or a TRANSPOSE to NCHW and a MEAN over
    /// the last axis twice (PyTorch through ONNX). Ends in `[1, c]`.
    fn stepwise_mean(&mut self, x: Act) -> Act {
        let q = (x.scale, x.zero_point);
        if self.rng.gen_bool(0.5) {
            let rows = self.mean_into(x.id, &[2], &[1, x.h, 1, x.c], q);
            let q = self.quant_of(rows);
            let all = self.mean_into(rows, &[1], &[1, 1, 1, x.c], q);
            let (scale, zero_point) = self.quant_of(all);
            let name = self.name("flat");
            if self.rng.gen_bool(0.5) {
                // Without squeeze_dims every axis of size 1 goes, the batch too.
                let flat = self.b.act(&name, &[x.c], scale, zero_point);
                let options = fb::BuiltinOptions::SqueezeOptions(Box::default());
                self.b.op(ops::SQUEEZE, &[all], &[flat], Some(options));
                return Act { id: flat, h: 1, w: 1, c: x.c, scale, zero_point };
            }
            let flat = self.b.act(&name, &[1, x.c], scale, zero_point);
            {
                let name = self.name("shape");
                let shape = self.b.bias(&name, &[1, x.c]);
                self.b.op(ops::RESHAPE, &[all, shape], &[flat], None);
            }
            return Act { id: flat, h: 1, w: 1, c: x.c, scale, zero_point };
        }
        let name = self.name("perm");
        let perm = self.b.bias(&name, &[0, 3, 1, 2]);
        let name = self.name("nchw");
        let nchw = self.b.act(&name, &[1, x.c, x.h, x.w], x.scale, x.zero_point);
        self.b.op(ops::TRANSPOSE, &[x.id, perm], &[nchw], None);
        let rows = self.mean_into(nchw, &[3], &[1, x.c, x.h], q);
        let q = self.quant_of(rows);
        let flat = self.mean_into(rows, &[-1], &[1, x.c], q);
        let (scale, zero_point) = self.quant_of(flat);
        Act { id: flat, h: 1, w: 1, c: x.c, scale, zero_point }
    }

    /// The scale and zero point of tensor `t`.
    fn quant_of(&self, t: i32) -> (f32, i64) {
        let q = self.b.tensors[t as usize].quantization.as_ref();
        let scale = q.and_then(|q| q.scale.as_ref()).map_or(1.0, |s| s[0]);
        let zero_point = q.and_then(|q| q.zero_point.as_ref()).map_or(0, |z| z[0]);
        (scale, zero_point)
    }

    /// A global average (AVERAGE_POOL_2D and RESHAPE to `[1, c]`, MEAN over height and
    /// width, Keras' `GlobalAveragePooling2D`, or [`Random::stepwise_mean`]),
    /// FULLY_CONNECTED, and maybe SOFTMAX.
    fn classifier(&mut self, x: Act) -> i32 {
        let (flat, x) = if self.rng.gen_bool(0.25) {
            let flat = self.stepwise_mean(x);
            (flat.id, flat)
        } else if self.rng.gen_bool(0.15) {
            // A global max pool (Keras' GlobalMaxPooling2D), in the input's quantization.
            let name = self.name("axes");
            let axes = self.b.bias(&name, &[1, 2]);
            let name = self.name("maxpool");
            let id = self.b.act(&name, &[1, x.c], x.scale, x.zero_point);
            self.b.op(ops::REDUCE_MAX, &[x.id, axes], &[id], None);
            (id, Act { id, h: 1, w: 1, c: x.c, scale: x.scale, zero_point: x.zero_point })
        } else if self.rng.gen_bool(0.5) {
            let pooled = self.pool(x, true, true);
            if self.rng.gen_bool(0.3) {
                let flat = self.dynamic_flatten(pooled);
                return self.head(flat, pooled);
            }
            let name = self.name("shape");
            let shape = self.b.bias(&name, &[1, x.c]);
            let name = self.name("flat");
            let flat = self.b.act(&name, &[1, x.c], x.scale, x.zero_point);
            self.b.op(ops::RESHAPE, &[pooled.id, shape], &[flat], None);
            (flat, pooled)
        } else {
            let mean = self.mean(x);
            (mean.id, mean)
        };
        self.head(flat, x)
    }

    /// FULLY_CONNECTED of `flat` (the values of `x`) and maybe SOFTMAX or LOG_SOFTMAX.
    fn head(&mut self, flat: i32, x: Act) -> i32 {
        let classes = self.rng.gen_range(2..=10);
        let values: Vec<i8> = (0..classes * x.c).map(|_| self.rng.gen()).collect();
        let per_channel = self.rng.gen_bool(0.3);
        let scales: Vec<f32> =
            (0..if per_channel { classes } else { 1 }).map(|_| self.rng.gen_range(0.001..0.02)).collect();
        let name = self.name("fc");
        let weights = self.b.weights(&name, &[classes, x.c], &values, &scales, 0);
        let values: Vec<i32> = (0..classes).map(|_| self.rng.gen_range(-5000..=5000)).collect();
        let name = self.name("fc_bias");
        let bias = self.quantized_bias(&name, &values, x.scale, &scales);
        let scale = self.product_scale(x.scale, scales[0], x.c);
        let zp = self.zero_point();
        let name = self.name("logits");
        let logits = self.b.act(&name, &[1, classes], scale, zp);
        let options = fb::BuiltinOptions::FullyConnectedOptions(Box::new(fb::FullyConnectedOptions {
            fused_activation_function: self.activation(),
            ..Default::default()
        }));
        self.b.op(ops::FULLY_CONNECTED, &[flat, weights, bias], &[logits], Some(options));
        if self.rng.gen_bool(0.3) {
            return logits;
        }
        if self.rng.gen_bool(0.2) {
            // TFLM's int8 LOG_SOFTMAX writes [-16, 0] in 1/16 steps down from 127.
            let name = self.name("log_probs");
            let log_probs = self.b.act(&name, &[1, classes], 16.0 / 256.0, 127);
            self.b.op(ops::LOG_SOFTMAX, &[logits], &[log_probs], None);
            return log_probs;
        }
        let name = self.name("probs");
        let probs = self.b.act(&name, &[1, classes], 1.0 / 256.0, -128);
        let beta = [1.0, 1.0, 0.5, 2.0][self.rng.gen_range(0..4)];
        let options = fb::BuiltinOptions::SoftmaxOptions(Box::new(fb::SoftmaxOptions { beta }));
        self.b.op(ops::SOFTMAX, &[logits], &[probs], Some(options));
        probs
    }
}

/// A random int8 CNN of the supported ops, the same for the same `seed`: a 4..=16 x 4..=16
/// input of 1..=4 channels (sometimes flat, with a RESHAPE to the image first), 2..=7 ops
/// drawn from CONV_2D, DEPTHWISE_CONV_2D, residual ADD, MAX_POOL_2D, AVERAGE_POOL_2D and PAD
/// (random kernels up to 7x7, strides 1 to 3 per axis, SAME or VALID padding, per-channel or
/// per-tensor weights, with or without bias, every supported fused activation, random scales
/// and zero points), then usually a classifier (global AVERAGE_POOL_2D and RESHAPE, static
/// or through SHAPE / STRIDED_SLICE / PACK, or MEAN, FULLY_CONNECTED, and SOFTMAX with a
/// random beta or LOG_SOFTMAX). At the graph's boundaries, sometimes a
/// float, uint8 or int8 input through QUANTIZE, a float output through DEQUANTIZE, and an
/// intermediate activation as a second graph output.
pub fn random_cnn(seed: u64) -> Vec<u8> {
    let (b, input, outputs) = random_cnn_builder(seed);
    b.bytes_with(input, &outputs)
}

/// [`random_cnn`] before it is written: the builder, its input and its output tensors.
pub fn random_cnn_builder(seed: u64) -> (Builder, i32, Vec<i32>) {
    let mut r = Random { rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed), b: Builder::new(), acts: Vec::new() };
    // The boundaries draw from their own stream: the int8 core of a seed's model stays the
    // same whether or not they are there.
    let mut edge = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xb0da_2e55);
    let shape = (r.rng.gen_range(4..=16), r.rng.gen_range(4..=16), r.rng.gen_range(1..=4));
    let scale = r.rng.gen_range(0.005..0.1);
    let zp = r.zero_point();
    let input = r.new_act("input", shape, scale, zp);
    // Sometimes a flat graph input and a RESHAPE to the image, as audio models have it.
    let mut graph_input = if r.rng.gen_bool(0.1) {
        let name = r.name("flat_input");
        let flat = r.b.act(&name, &[1, shape.0 * shape.1 * shape.2], scale, zp);
        let name = r.name("shape");
        let to = r.b.bias(&name, &[1, shape.0, shape.1, shape.2]);
        r.b.op(ops::RESHAPE, &[flat, to], &[input.id], None);
        flat
    } else {
        input.id
    };
    // Sometimes the model takes another type (or int8 at another scale) and QUANTIZEs it.
    let quantized = graph_input;
    let from = match edge.gen_range(0..20) {
        0..=3 => Some((FLOAT32, 1.0, 0)),
        4..=5 => Some((UINT8, scale * edge.gen_range(0.5..2.0), edge.gen_range(0..=255))),
        6 => Some((INT8, scale * edge.gen_range(0.5..2.0), edge.gen_range(-128..=127))),
        _ => None,
    };
    if let Some((type_, in_scale, in_zp)) = from {
        let dims = r.b.tensors[quantized as usize].shape.clone().unwrap_or_default();
        let q = (type_ != FLOAT32).then(|| quant(&[in_scale], &[in_zp], 0)).flatten();
        let name = r.name("raw_input");
        graph_input = r.b.tensor(&name, &dims, type_, None, q);
        // QUANTIZE must come first: move it ahead of the ops written so far.
        r.b.op(ops::QUANTIZE, &[graph_input], &[quantized], None);
        let quantize = r.b.ops.pop().expect("just pushed");
        r.b.ops.insert(0, quantize);
    }
    let mut x = input;
    for _ in 0..r.rng.gen_range(2..=7) {
        x = match r.rng.gen_range(0..10) {
            0..=2 => r.conv(x, false),
            3..=4 => r.conv(x, true),
            5..=6 => r.add(x),
            7 => r.pool(x, false, false),
            8 => r.pool(x, true, false),
            _ => r.pad(x),
        };
        // Element-wise products and constants (swish, scaling), and squeeze-and-excite
        // blocks, from their own stream.
        match edge.gen_range(0..12) {
            0 => x = r.scale_op(x),
            1 => x = r.squeeze_excite(x),
            2 => x = r.resize(x),
            3 => x = r.activation_op(x),
            4 => x = r.max_min(x),
            5 => x = r.concat(x),
            6 => x = r.prelu(x),
            7 => x = r.logistic(x),
            8 => x = r.hard_swish(x),
            _ => {}
        }
    }
    let body = x.id;
    let mut output = if r.rng.gen_bool(0.7) { r.classifier(x) } else { x.id };
    if edge.gen_bool(0.25) {
        let dims = r.b.tensors[output as usize].shape.clone().unwrap_or_default();
        let name = r.name("float_output");
        let float = r.b.tensor(&name, &dims, FLOAT32, None, None);
        r.b.op(ops::DEQUANTIZE, &[output], &[float], None);
        output = float;
    }
    let mut outputs = vec![output];
    // A second output, as detection heads have: an activation the graph computed on the way.
    if edge.gen_bool(0.2) && body != output {
        outputs.push(body);
    }
    (r.b, graph_input, outputs)
}
