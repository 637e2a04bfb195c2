//! The model zoo: deterministic synthetic models with the shapes of well-known networks,
//! seeded int8 weights and plausible quantization parameters (host side).
//!
//! Weights are random, so outputs are meaningless as predictions; shapes, MACs, memory and
//! arithmetic are those of the real networks, which is what patch planning measures.

use crate::model::{
    AddParams, Clamp, Conv, FcParams, ModelBuf, Op, OpKind, Padding, Pool, SoftmaxParams, Span, Tensor, TensorId,
    Window,
};
use crate::quant::{add_params, quantize_multiplier, softmax_params};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Zoo names with a one-line description.
pub const MODELS: &[(&str, &str)] = &[
    ("mbv2-w0.35-r144", "MobileNetV2 width 0.35 at 144x144, 1000 classes (MCUNet zoo reference)"),
    ("mbv1-w0.25-r96", "MobileNetV1 width 0.25 at 96x96, 2 classes (visual wake words shape)"),
    ("resnet8-r32", "ResNet-8 at 32x32, 10 classes (MLPerf Tiny CIFAR-10 shape)"),
    ("tiny", "under 1 M MACs: stride 2, depthwise, residual ADD, pools (fast end-to-end tests)"),
];

/// Builds a zoo model by name, or `None` for an unknown name.
pub fn build(name: &str) -> Option<ModelBuf> {
    Some(match name {
        "mbv2-w0.35-r144" => mobilenet_v2(name, 0.35, 144, 1000),
        "mbv1-w0.25-r96" => mobilenet_v1(name, 0.25, 96, 2),
        "resnet8-r32" => resnet8(name, 32, 10),
        "tiny" => tiny(name),
        _ => return None,
    })
}

/// Fused activation of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// None (linear output, zero point near 0).
    None,
    /// ReLU (output zero point -128).
    Relu,
    /// ReLU6 (scale 6/255, zero point -128).
    Relu6,
}

/// Builds a model layer by layer with seeded weights and quantization.
pub struct Builder {
    m: ModelBuf,
    rng: ChaCha8Rng,
}

impl Builder {
    /// A model with an `h x w x c` input (scale 1/255, zero point -128: an image in [0, 1]).
    pub fn new(name: &str, h: u16, w: u16, c: u16, seed: u64) -> (Self, TensorId) {
        let mut m = ModelBuf { name: name.to_string(), ..Default::default() };
        let input = m.add_tensor(Tensor::int8(h, w, c, 1.0 / 255.0, -128));
        m.input = input;
        (Builder { m, rng: ChaCha8Rng::seed_from_u64(seed) }, input)
    }

    /// Finishes the model with `output` as its output tensor.
    pub fn finish(mut self, output: TensorId) -> ModelBuf {
        self.m.outputs = vec![output];
        self.m
    }

    fn t(&self, id: TensorId) -> Tensor {
        self.m.tensors[id as usize]
    }

    /// Output quantization of an activation: `(scale, zero point, clamp)`.
    fn out_quant(&mut self, act: Act) -> (f32, i32, Clamp) {
        match act {
            Act::Relu6 => (6.0 / 255.0, -128, Clamp { min: -128, max: 127 }),
            Act::Relu => (self.rng.gen_range(0.02..0.08), -128, Clamp { min: -128, max: 127 }),
            Act::None => (self.rng.gen_range(0.04..0.12), self.rng.gen_range(-12..=12), Clamp::NONE),
        }
    }

    fn push(&mut self, kind: OpKind, inputs: &[TensorId], out: Tensor) -> TensorId {
        let output = self.m.add_tensor(out);
        self.m.ops.push(Op::new(kind, inputs, output));
        output
    }

    /// Per-channel weights, bias and multipliers for `taps` inputs per output value: weight
    /// scales chosen so the output spreads over a few tens of levels.
    fn weights(
        &mut self,
        n_out: usize,
        taps: usize,
        in_scale: f32,
        out_scale: f32,
        per_channel: bool,
    ) -> [crate::model::Span; 4] {
        // rms of (x - zero point) ~ 70 levels, of uniform int8 weights ~ 73.
        let acc_rms = (taps as f64).sqrt() * 70.0 * 73.0;
        let w: Vec<i8> = (0..n_out * taps).map(|_| self.rng.gen_range(-127..=127)).collect();
        let n_scales = if per_channel { n_out } else { 1 };
        let mut mult = Vec::with_capacity(n_scales);
        let mut shift = Vec::with_capacity(n_scales);
        for _ in 0..n_scales {
            let gain: f64 = self.rng.gen_range(25.0..45.0);
            let w_scale = (gain * f64::from(out_scale) / (f64::from(in_scale) * acc_rms)) as f32;
            let real = f64::from(in_scale) * f64::from(w_scale) / f64::from(out_scale);
            let (m, s) = quantize_multiplier(real);
            mult.push(m);
            shift.push(s);
        }
        let b_range = (acc_rms * 0.3) as i32;
        let bias: Vec<i32> = (0..n_out).map(|_| self.rng.gen_range(-b_range..=b_range)).collect();
        [self.m.push_weights(&w), self.m.push_params(&bias), self.m.push_params(&mult), self.m.push_params(&shift)]
    }

    fn window(&self, x: TensorId, k: u8, s: u8, padding: Padding) -> (Window, u16, u16) {
        let t = self.t(x);
        let oh = Window::out_size(padding, t.h, k, s);
        let ow = Window::out_size(padding, t.w, k, s);
        let window = Window {
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            padding,
            pad_top: Window::leading_pad(padding, t.h, oh, k, s),
            pad_left: Window::leading_pad(padding, t.w, ow, k, s),
        };
        (window, oh, ow)
    }

    /// CONV_2D `k x k`, stride `s`, SAME padding.
    pub fn conv(&mut self, x: TensorId, out_c: u16, k: u8, s: u8, act: Act) -> TensorId {
        let t = self.t(x);
        let (window, oh, ow) = self.window(x, k, s, Padding::Same);
        let (scale, zero_point, clamp) = self.out_quant(act);
        let taps = k as usize * k as usize * t.c as usize;
        let [filter, bias, multiplier, shift] = self.weights(out_c as usize, taps, t.scale, scale, true);
        let kind = OpKind::Conv2d(Conv { window, filter, bias, multiplier, shift, clamp, packed: Span::default() });
        self.push(kind, &[x], Tensor::int8(oh, ow, out_c, scale, zero_point))
    }

    /// DEPTHWISE_CONV_2D `k x k`, stride `s`, SAME padding, depth multiplier 1.
    pub fn dwconv(&mut self, x: TensorId, k: u8, s: u8, act: Act) -> TensorId {
        let t = self.t(x);
        let (window, oh, ow) = self.window(x, k, s, Padding::Same);
        let (scale, zero_point, clamp) = self.out_quant(act);
        let taps = k as usize * k as usize;
        let [_, bias, multiplier, shift] = self.weights(t.c as usize, taps, t.scale, scale, true);
        // Depthwise filters are laid out HWC: regenerate in that order (same distribution).
        let hwc: Vec<i8> = (0..taps * t.c as usize).map(|_| self.rng.gen_range(-127..=127)).collect();
        let filter = self.m.push_weights(&hwc);
        let kind =
            OpKind::DepthwiseConv2d(Conv { window, filter, bias, multiplier, shift, clamp, packed: Span::default() });
        self.push(kind, &[x], Tensor::int8(oh, ow, t.c, scale, zero_point))
    }

    /// ADD of two same-shape tensors.
    pub fn add(&mut self, a: TensorId, b: TensorId, act: Act) -> TensorId {
        let (ta, tb) = (self.t(a), self.t(b));
        let (mut scale, zero_point, clamp) = self.out_quant(act);
        if act != Act::Relu6 {
            scale = ta.scale.max(tb.scale) * 1.5;
        }
        let [input1, input2, output] = add_params(ta.scale, tb.scale, scale);
        let kind = OpKind::Add(AddParams { input1, input2, output, clamp });
        self.push(kind, &[a, b], Tensor { scale, zero_point, ..ta })
    }

    /// AVERAGE_POOL_2D (`VALID` when the window covers the whole input: global pooling).
    pub fn avgpool(&mut self, x: TensorId, k: u8, s: u8, padding: Padding) -> TensorId {
        self.pool(x, k, s, padding, false)
    }

    /// MAX_POOL_2D.
    pub fn maxpool(&mut self, x: TensorId, k: u8, s: u8, padding: Padding) -> TensorId {
        self.pool(x, k, s, padding, true)
    }

    fn pool(&mut self, x: TensorId, k: u8, s: u8, padding: Padding, max: bool) -> TensorId {
        let t = self.t(x);
        let (window, oh, ow) = self.window(x, k, s, padding);
        let pool = Pool { window, clamp: Clamp::NONE };
        let kind = if max { OpKind::MaxPool2d(pool) } else { OpKind::AveragePool2d(pool) };
        self.push(kind, &[x], Tensor { h: oh, w: ow, ..t })
    }

    /// RESHAPE to `1 x 1 x len`.
    pub fn flatten(&mut self, x: TensorId) -> TensorId {
        let t = self.t(x);
        self.push(OpKind::Reshape, &[x], Tensor { h: 1, w: 1, c: t.len() as u16, ..t })
    }

    /// FULLY_CONNECTED with per-tensor weight scale, as TFLite converts them.
    pub fn fc(&mut self, x: TensorId, n: u16, act: Act) -> TensorId {
        let t = self.t(x);
        let (scale, zero_point, clamp) = self.out_quant(act);
        let [filter, bias, multiplier, shift] = self.weights(n as usize, t.len(), t.scale, scale, false);
        let kind = OpKind::FullyConnected(FcParams { filter, bias, multiplier, shift, clamp });
        self.push(kind, &[x], Tensor::int8(1, 1, n, scale, zero_point))
    }

    /// SOFTMAX (beta 1), output scale 1/256 and zero point -128 as TFLite requires.
    pub fn softmax(&mut self, x: TensorId) -> TensorId {
        let t = self.t(x);
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, t.scale);
        let kind = OpKind::Softmax(SoftmaxParams { input_multiplier, input_left_shift, diff_min });
        self.push(kind, &[x], Tensor { scale: 1.0 / 256.0, zero_point: -128, ..t })
    }

    /// Global average pool, flatten, classifier, softmax.
    pub fn head(&mut self, x: TensorId, classes: u16) -> TensorId {
        let t = self.t(x);
        assert_eq!(t.h, t.w, "global pooling over a square map");
        let pooled = self.avgpool(x, t.h as u8, 1, Padding::Valid);
        let flat = self.flatten(pooled);
        let logits = self.fc(flat, classes, Act::None);
        self.softmax(logits)
    }
}

/// Channel rounding of the MobileNet family: to a multiple of 8, never below 90 %.
fn make_divisible(v: f64) -> u16 {
    let mut new = (((v + 4.0) as u32) / 8 * 8).max(8);
    if (new as f64) < 0.9 * v {
        new += 8;
    }
    new as u16
}

fn mobilenet_v2(name: &str, width: f64, res: u16, classes: u16) -> ModelBuf {
    let (mut b, input) = Builder::new(name, res, res, 3, 0x6d62_7632);
    let mut x = b.conv(input, make_divisible(32.0 * width), 3, 2, Act::Relu6);
    let mut c_in = make_divisible(32.0 * width);
    for (t, c, n, s) in
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    {
        let c_out = make_divisible(c as f64 * width);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = if t == 1 { x } else { b.conv(x, c_in * t, 1, 1, Act::Relu6) };
            let dw = b.dwconv(hidden, 3, stride, Act::Relu6);
            let proj = b.conv(dw, c_out, 1, 1, Act::None);
            x = if stride == 1 && c_in == c_out { b.add(x, proj, Act::None) } else { proj };
            c_in = c_out;
        }
    }
    let last = if width > 1.0 { make_divisible(1280.0 * width) } else { 1280 };
    x = b.conv(x, last, 1, 1, Act::Relu6);
    let out = b.head(x, classes);
    b.finish(out)
}

fn mobilenet_v1(name: &str, width: f64, res: u16, classes: u16) -> ModelBuf {
    let (mut b, input) = Builder::new(name, res, res, 3, 0x6d62_7631);
    let ch = |c: f64| (c * width) as u16;
    let mut x = b.conv(input, ch(32.0), 3, 2, Act::Relu);
    let blocks = [(1, 64.0), (2, 128.0), (1, 128.0), (2, 256.0), (1, 256.0), (2, 512.0)]
        .into_iter()
        .chain([(1, 512.0); 5])
        .chain([(2, 1024.0), (1, 1024.0)]);
    for (s, c) in blocks {
        x = b.dwconv(x, 3, s, Act::Relu);
        x = b.conv(x, ch(c), 1, 1, Act::Relu);
    }
    let out = b.head(x, classes);
    b.finish(out)
}

fn resnet8(name: &str, res: u16, classes: u16) -> ModelBuf {
    let (mut b, input) = Builder::new(name, res, res, 3, 0x7265_7338);
    let mut x = b.conv(input, 16, 3, 1, Act::Relu);
    for (c, s) in [(16, 1), (32, 2), (64, 2)] {
        let y = b.conv(x, c, 3, s, Act::Relu);
        let y = b.conv(y, c, 3, 1, Act::None);
        let shortcut = if s == 1 { x } else { b.conv(x, c, 1, s, Act::None) };
        x = b.add(shortcut, y, Act::Relu);
    }
    let out = b.head(x, classes);
    b.finish(out)
}

fn tiny(name: &str) -> ModelBuf {
    let (mut b, input) = Builder::new(name, 32, 32, 3, 0x7469_6e79);
    let x = b.conv(input, 8, 3, 2, Act::Relu6);
    let y = b.dwconv(x, 3, 1, Act::Relu6);
    let y = b.conv(y, 8, 1, 1, Act::None);
    let x = b.add(x, y, Act::Relu);
    let x = b.conv(x, 16, 3, 2, Act::Relu);
    let x = b.avgpool(x, 3, 1, Padding::Same);
    let x = b.maxpool(x, 2, 2, Padding::Valid);
    let x = b.flatten(x);
    let x = b.fc(x, 10, Act::None);
    let out = b.softmax(x);
    b.finish(out)
}
