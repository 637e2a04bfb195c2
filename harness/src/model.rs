//! Model IR: a graph of int8 ops over activation tensors, TFLite quantization semantics.
//!
//! [`Model`] borrows everything (tensors, ops, weight and parameter pools), so the device can
//! hold a model entirely in flash statics; the host builds one in a [`ModelBuf`]. Ops appear
//! in a topological order (graph order), which is also execution order.

/// Index of an activation tensor in [`Model::tensors`].
pub type TensorId = u16;

/// Most activation tensors a model may have (validation keeps a fixed-size table).
pub const MAX_TENSORS: usize = 1024;

/// Most graph outputs a model may have (detection heads have a few).
pub const MAX_OUTPUTS: usize = 8;

/// Most inputs an op may read (a CONCATENATION of detection-head branches has a few).
pub const MAX_OP_INPUTS: usize = 8;

/// Marker for an unused op input slot.
pub const NO_TENSOR: TensorId = TensorId::MAX;

/// The element type of an activation tensor. Every op computes in int8; QUANTIZE and
/// DEQUANTIZE convert at the graph's boundaries, where a model may take or give another type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DType {
    /// int8, quantized.
    #[default]
    I8,
    /// uint8, quantized (zero point in 0..=255).
    U8,
    /// IEEE-754 binary32, little-endian; not quantized.
    F32,
}

impl DType {
    /// Bytes per element.
    pub const fn bytes(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::F32 => 4,
        }
    }

    /// TFLite's name for the type.
    pub const fn name(self) -> &'static str {
        match self {
            DType::I8 => "INT8",
            DType::U8 => "UINT8",
            DType::F32 => "FLOAT32",
        }
    }
}

/// An activation tensor: shape `1 x h x w x c` (NHWC, batch 1) with per-tensor quantization.
/// Flat tensors (FULLY_CONNECTED, SOFTMAX) are `1 x 1 x c`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tensor {
    /// Height (rows).
    pub h: u16,
    /// Width (columns).
    pub w: u16,
    /// Channels.
    pub c: u16,
    /// Real value = scale * (q - zero_point) (1 and 0 for a float tensor).
    pub scale: f32,
    /// Zero point, within the element type's range.
    pub zero_point: i32,
    /// Element type.
    #[cfg_attr(feature = "serde", serde(default))]
    pub dtype: DType,
}

impl Tensor {
    /// An int8 tensor.
    pub const fn int8(h: u16, w: u16, c: u16, scale: f32, zero_point: i32) -> Tensor {
        Tensor { h, w, c, scale, zero_point, dtype: DType::I8 }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.h as usize * self.w as usize * self.c as usize
    }

    /// Bytes of the whole tensor.
    pub const fn bytes(&self) -> usize {
        self.len() * self.dtype.bytes()
    }

    /// Bytes of one pixel (all channels): the unit every tile and view is counted in.
    pub const fn pixel_bytes(&self) -> usize {
        self.c as usize * self.dtype.bytes()
    }

    /// True for a tensor with no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A constant operand (the `3` and `1/6` of a hard sigmoid, a bias row): an int8 tensor whose
/// values live in [`Model::weights`], never in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Constant {
    /// The tensor (its shape and quantization).
    pub tensor: TensorId,
    /// Its values.
    pub values: Span,
}

/// A contiguous range of a model pool ([`Model::weights`] or [`Model::params`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Span {
    /// First element.
    pub start: u32,
    /// Number of elements.
    pub len: u32,
}

impl Span {
    /// The range as `usize`s.
    pub const fn range(self) -> core::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// TFLite padding mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Padding {
    /// Output = ceil(input / stride); zeros (the input zero point) around the border, the odd
    /// one at the bottom/right.
    Same,
    /// Output = ceil((input - kernel + 1) / stride); no padding.
    Valid,
}

/// The sliding window of a conv or pool: kernel, stride and the resolved top/left padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Window {
    /// Kernel height.
    pub kh: u8,
    /// Kernel width.
    pub kw: u8,
    /// Vertical stride.
    pub sh: u8,
    /// Horizontal stride.
    pub sw: u8,
    /// Padding mode the op was declared with.
    pub padding: Padding,
    /// Rows of padding above the input (resolved from `padding` and the shapes).
    pub pad_top: u8,
    /// Columns of padding left of the input.
    pub pad_left: u8,
}

impl Window {
    /// Output size along one axis for an input of `input` elements.
    pub const fn out_size(padding: Padding, input: u16, kernel: u8, stride: u8) -> u16 {
        let (input, kernel, stride) = (input as u32, kernel as u32, stride as u32);
        let out = match padding {
            Padding::Same => input.div_ceil(stride),
            Padding::Valid => {
                if input < kernel {
                    0
                } else {
                    (input - kernel) / stride + 1
                }
            }
        };
        out as u16
    }

    /// Leading padding along one axis (TFLite: half the total, the odd element trails).
    pub const fn leading_pad(padding: Padding, input: u16, output: u16, kernel: u8, stride: u8) -> u8 {
        match padding {
            Padding::Valid => 0,
            Padding::Same => {
                let needed = (output as i32 - 1) * stride as i32 + kernel as i32 - input as i32;
                if needed > 0 {
                    (needed / 2) as u8
                } else {
                    0
                }
            }
        }
    }
}

/// Output clamp of a fused activation (NONE, RELU, RELU6 all become a range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Clamp {
    /// Lowest output value.
    pub min: i8,
    /// Highest output value.
    pub max: i8,
}

impl Clamp {
    /// No activation: the whole int8 range.
    pub const NONE: Clamp = Clamp { min: -128, max: 127 };
}

/// CONV_2D or DEPTHWISE_CONV_2D with per-channel requantization.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Conv {
    /// Kernel, stride, padding.
    pub window: Window,
    /// Filter in [`Model::weights`]: OHWI for CONV_2D, `1 x kh x kw x C` for depthwise.
    pub filter: Span,
    /// One int32 bias per output channel in [`Model::params`] (empty: no bias).
    pub bias: Span,
    /// Per-output-channel Q31 multipliers in [`Model::params`].
    pub multiplier: Span,
    /// Per-output-channel shifts in [`Model::params`] (positive = left).
    pub shift: Span,
    /// Fused activation.
    pub clamp: Clamp,
    /// The filter and its parameters as an image's kernel set lays them out at build time
    /// ([`crate::kernels::Kernels::pack_depthwise`]), in [`Model::params`]; empty in an
    /// imported model and wherever the set packs nothing.
    pub packed: Span,
}

/// AVERAGE_POOL_2D or MAX_POOL_2D (input and output share quantization, as in TFLite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pool {
    /// Kernel, stride, padding.
    pub window: Window,
    /// Fused activation.
    pub clamp: Clamp,
}

/// ADD of two int8 tensors (either may broadcast along an axis of size 1), each rescaled
/// (TFLite's 20-bit left shift).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AddParams {
    /// Q31 multiplier and shift of input 1.
    pub input1: (i32, i32),
    /// Q31 multiplier and shift of input 2.
    pub input2: (i32, i32),
    /// Q31 multiplier and shift of the sum.
    pub output: (i32, i32),
    /// Fused activation.
    pub clamp: Clamp,
}

/// MUL of two int8 tensors (either may broadcast): `(x1 - z1) * (x2 - z2)` requantized by
/// `s1 * s2 / s_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MulParams {
    /// Q31 multiplier and shift of the product.
    pub output: (i32, i32),
    /// Fused activation.
    pub clamp: Clamp,
}

/// FULLY_CONNECTED: `out = W x + b`, weights `[out, in]`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FcParams {
    /// Weights `[out][in]` in [`Model::weights`].
    pub filter: Span,
    /// One int32 bias per output in [`Model::params`] (empty: no bias).
    pub bias: Span,
    /// Q31 multipliers in [`Model::params`]: one (per-tensor) or one per output.
    pub multiplier: Span,
    /// Shifts, same length as `multiplier`.
    pub shift: Span,
    /// Fused activation.
    pub clamp: Clamp,
}

/// PAD: the input surrounded by rows and columns of `value` (the output zero point, a real
/// zero), bytes copied unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PadParams {
    /// Rows added above.
    pub top: u8,
    /// Rows added below.
    pub bottom: u8,
    /// Columns added left.
    pub left: u8,
    /// Columns added right.
    pub right: u8,
    /// The value of the added pixels.
    pub value: i8,
}

/// int8 SOFTMAX over the channels, TFLite's fixed-point algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SoftmaxParams {
    /// Q31 multiplier of `beta * input_scale` in Q5.26.
    pub input_multiplier: i32,
    /// Left shift that goes with `input_multiplier`.
    pub input_left_shift: i32,
    /// Differences to the row maximum below this contribute exactly zero.
    pub diff_min: i32,
}

/// int8 LOG_SOFTMAX over the channels (TFLM's `LogSoftmaxQuantized`): output scale 16/256
/// and zero point 127.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogSoftmaxParams {
    /// Q31 multiplier of `input_scale` in Q5.26.
    pub input_multiplier: i32,
    /// Left shift that goes with `input_multiplier`.
    pub input_left_shift: i32,
    /// Q31 multiplier taking a Q5.26 value back to input steps.
    pub reverse_multiplier: i32,
    /// Shift that goes with `reverse_multiplier` (`<= 0`: a right shift).
    pub reverse_shift: i32,
    /// Differences to the row maximum below this contribute exactly zero.
    pub diff_min: i32,
}

/// int8 MEAN over any of height, width and channels (over height and width: a global
/// average, Keras' `GlobalAveragePooling2D`), TFLM's arithmetic (`QuantizedMeanOrSum`, which
/// TFLM runs whether or not input and output share their quantization). The output holds the
/// kept axes in their order, whatever shape the model gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MeanParams {
    /// Requantization of the zero-point-corrected sum to the output, `1 / count` folded in.
    pub multiplier: i32,
    /// Shift that goes with `multiplier`.
    pub shift: i32,
    /// Reduced axes: [`AXIS_H`], [`AXIS_W`], [`AXIS_C`] or'd.
    pub axes: u8,
}

/// Height in an axis mask.
pub const AXIS_H: u8 = 1;
/// Width in an axis mask.
pub const AXIS_W: u8 = 2;
/// Channels in an axis mask.
pub const AXIS_C: u8 = 4;

/// TRANSPOSE of height, width and channels (batch stays first): output axis `k` is input axis
/// `perm[k]` (0 height, 1 width, 2 channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TransposeParams {
    /// The permutation.
    pub perm: [u8; 3],
}

/// RESIZE_NEAREST_NEIGHBOR: every output pixel copies the input pixel TFLite's
/// `GetNearestNeighbor` picks, row and column apart (bytes unchanged, as TFLM does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ResizeParams {
    /// Scale `(in - 1) / (out - 1)` and round, instead of `in / out` and floor.
    pub align_corners: bool,
    /// Sample at pixel centres (`+ 0.5`).
    pub half_pixel_centers: bool,
}

impl ResizeParams {
    /// The input row (or column) output `o` copies, of `input` rows and `output` rows (TFLite
    /// `GetNearestNeighbor`, in f32).
    pub fn nearest(&self, o: u16, input: u16, output: u16) -> u16 {
        let scale = if self.align_corners && output > 1 {
            f32::from(input - 1) / f32::from(output - 1)
        } else {
            f32::from(input) / f32::from(output)
        };
        let offset = if self.half_pixel_centers { 0.5 } else { 0.0 };
        let x = (f32::from(o) + offset) * scale;
        // x >= 0: flooring truncates; rounding (halves away from zero) adds one when the
        // fraction (exact below 2^23) is at least a half.
        let t = x as i32;
        let v = if self.align_corners && x - t as f32 >= 0.5 { t + 1 } else { t };
        v.clamp(0, i32::from(input) - 1) as u16
    }
}

/// RELU and LEAKY_RELU as ops (TFLM `ReluQuantized`, `QuantizeLeakyRelu`): `x - input_zero_point` requantized by `positive` where it is at
/// least 0 and by `negative` below (the same multiplier for the RELUs, `alpha` folded in for
/// LEAKY_RELU), plus the output zero point, clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ActivationParams {
    /// Q31 multiplier and shift for inputs at or above the zero point.
    pub positive: (i32, i32),
    /// Q31 multiplier and shift for inputs below it.
    pub negative: (i32, i32),
    /// Output range.
    pub clamp: Clamp,
}

/// PRELU (TFLM `BroadcastPrelu4DSlow`): `x - z_x` requantized by `positive` where it is at
/// least 0; below, `(x - z_x) * (alpha - z_alpha)` requantized by `negative`; `alpha` (the
/// second input) may broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PreluParams {
    /// Q31 multiplier and shift of `input_scale / output_scale`.
    pub positive: (i32, i32),
    /// Q31 multiplier and shift of `input_scale * alpha_scale / output_scale`.
    pub negative: (i32, i32),
}

/// LOGISTIC on int8 (TFLM `reference_integer_ops::Logistic`): `x - z` scaled into Q4.27,
/// saturated beyond `radius`, gemmlowp's fixed-point logistic, written in 1/256 steps from
/// -128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogisticParams {
    /// Q31 multiplier of `input_scale * 2^27`.
    pub multiplier: i32,
    /// Left shift that goes with it.
    pub shift: i32,
    /// `|x - z|` at or beyond this gives -128 or 127.
    pub radius: i32,
}

/// HARD_SWISH on int8 (TFLite `reference_ops::HardSwish`): 16-bit fixed point, the input
/// on a 128x finer scale, a "relu-ish" factor in [0, 1] and the output multiplier, each a
/// Q15 multiplier with an exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardSwishParams {
    /// Q15 multiplier of `input_scale / 128 / output_scale`.
    pub output_multiplier: i16,
    /// Its exponent (at most 0).
    pub output_exponent: i32,
    /// Q15 multiplier of `input_scale / 128 / (3 / 32768)`.
    pub reluish_multiplier: i16,
    /// Its exponent.
    pub reluish_exponent: i32,
}

/// Which element-wise activation an [`OpKind::Activation`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ActivationKind {
    /// RELU.
    Relu,
    /// LEAKY_RELU.
    LeakyRelu,
}

impl ResizeParams {
    /// TFLite's `ResizeBilinearInteger` along one axis: for output `o` of `output` (from
    /// `input`), the source position in 1/1024ths and the two source indices around it.
    pub fn bilinear(&self, o: u16, input: u16, output: u16) -> (i32, u16, u16) {
        let (input, output) = (i32::from(input), i32::from(output));
        let scale_10 = if self.align_corners && output > 1 {
            ((1 << 10) * (input - 1) + (output - 1) / 2) / (output - 1)
        } else {
            ((1 << 10) * input + output / 2) / output
        };
        let o = i32::from(o);
        let scaled = if self.half_pixel_centers { o * scale_10 + scale_10 / 2 - (1 << 9) } else { o * scale_10 };
        let lower = (scaled / (1 << 10)).max(0);
        let upper = ((scaled + (1 << 10) - 1) / (1 << 10)).min(input - 1);
        (scaled, lower as u16, upper.max(0) as u16)
    }
}

/// QUANTIZE into int8: from float (`round(x / scale) + zero_point`, in f32 as TFLM does), or
/// a requantization from int8 or uint8 (`multiplier`, `shift`: input scale over output
/// scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QuantizeParams {
    /// Q31 multiplier of `input_scale / output_scale` (integer inputs only).
    pub multiplier: i32,
    /// Shift that goes with `multiplier`.
    pub shift: i32,
}

/// What an op computes.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OpKind {
    /// CONV_2D.
    Conv2d(Conv),
    /// DEPTHWISE_CONV_2D (any depth multiplier: output channels over input channels).
    DepthwiseConv2d(Conv),
    /// ADD.
    Add(AddParams),
    /// MUL.
    Mul(MulParams),
    /// AVERAGE_POOL_2D.
    AveragePool2d(Pool),
    /// MAX_POOL_2D.
    MaxPool2d(Pool),
    /// PAD (height and width only).
    Pad(PadParams),
    /// RESHAPE: same bytes, new shape (the planner lets output alias input).
    Reshape,
    /// FULLY_CONNECTED.
    FullyConnected(FcParams),
    /// SOFTMAX.
    Softmax(SoftmaxParams),
    /// LOG_SOFTMAX.
    LogSoftmax(LogSoftmaxParams),
    /// MEAN over some axes.
    Mean(MeanParams),
    /// TRANSPOSE.
    Transpose(TransposeParams),
    /// RESIZE_NEAREST_NEIGHBOR.
    ResizeNearest(ResizeParams),
    /// RESIZE_BILINEAR (TFLite's integer interpolation in 1/1024ths).
    ResizeBilinear(ResizeParams),
    /// RELU or LEAKY_RELU.
    Activation(ActivationKind, ActivationParams),
    /// RELU6 as TFLM runs it on int8: the raw values clamped to the input's quantized 0 and 6
    /// (the output's quantization plays no part).
    Relu6(Clamp),
    /// PRELU with a per-element (broadcast) alpha.
    Prelu(PreluParams),
    /// LOGISTIC (sigmoid).
    Logistic(LogisticParams),
    /// HARD_SWISH.
    HardSwish(HardSwishParams),
    /// MAXIMUM of the raw int8 values (either input may broadcast), as TFLM compares them.
    Maximum,
    /// MINIMUM of the raw int8 values (either input may broadcast).
    Minimum,
    /// CONCATENATION of the inputs, in order, along axis 0 (height), 1 (width) or 2
    /// (channels): the bytes, as TFLM copies int8 (inputs and output in one quantization).
    Concat(u8),
    /// REDUCE_MAX over some axes ([`AXIS_H`], [`AXIS_W`], [`AXIS_C`] or'd) of the raw int8
    /// values; input and output share their quantization.
    ReduceMax(u8),
    /// QUANTIZE: float, uint8 or int8 into int8.
    Quantize(QuantizeParams),
    /// DEQUANTIZE: int8 into float.
    Dequantize,
}

/// How many inputs an op reads (activations or constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// One.
    Unary,
    /// Two, either of which may broadcast: the element-wise ops.
    Binary,
    /// One to [`MAX_OP_INPUTS`]: CONCATENATION.
    Variadic,
}

impl OpKind {
    /// How many inputs the op reads.
    pub const fn arity(&self) -> Arity {
        match self {
            OpKind::Add(_) | OpKind::Mul(_) | OpKind::Prelu(_) | OpKind::Maximum | OpKind::Minimum => Arity::Binary,
            OpKind::Concat(_) => Arity::Variadic,
            _ => Arity::Unary,
        }
    }

    /// TFLite builtin operator name.
    pub const fn name(&self) -> &'static str {
        match self {
            OpKind::Conv2d(_) => "CONV_2D",
            OpKind::DepthwiseConv2d(_) => "DEPTHWISE_CONV_2D",
            OpKind::Add(_) => "ADD",
            OpKind::Mul(_) => "MUL",
            OpKind::AveragePool2d(_) => "AVERAGE_POOL_2D",
            OpKind::MaxPool2d(_) => "MAX_POOL_2D",
            OpKind::Pad(_) => "PAD",
            OpKind::Reshape => "RESHAPE",
            OpKind::FullyConnected(_) => "FULLY_CONNECTED",
            OpKind::Softmax(_) => "SOFTMAX",
            OpKind::LogSoftmax(_) => "LOG_SOFTMAX",
            OpKind::Mean(_) => "MEAN",
            OpKind::Transpose(_) => "TRANSPOSE",
            OpKind::ResizeNearest(_) => "RESIZE_NEAREST_NEIGHBOR",
            OpKind::ResizeBilinear(_) => "RESIZE_BILINEAR",
            OpKind::Activation(ActivationKind::Relu, _) => "RELU",
            OpKind::Relu6(_) => "RELU6",
            OpKind::Activation(ActivationKind::LeakyRelu, _) => "LEAKY_RELU",
            OpKind::Prelu(_) => "PRELU",
            OpKind::Logistic(_) => "LOGISTIC",
            OpKind::HardSwish(_) => "HARD_SWISH",
            OpKind::Maximum => "MAXIMUM",
            OpKind::Minimum => "MINIMUM",
            OpKind::ReduceMax(_) => "REDUCE_MAX",
            OpKind::Concat(_) => "CONCATENATION",
            OpKind::Quantize(_) => "QUANTIZE",
            OpKind::Dequantize => "DEQUANTIZE",
        }
    }

    /// The sliding window of a spatial windowed op.
    pub const fn window(&self) -> Option<Window> {
        match self {
            OpKind::Conv2d(c) | OpKind::DepthwiseConv2d(c) => Some(c.window),
            OpKind::AveragePool2d(p) | OpKind::MaxPool2d(p) => Some(p.window),
            _ => None,
        }
    }

    /// True when every output pixel depends only on a spatial neighbourhood of the inputs,
    /// so the op can run tile by tile inside a patch stage.
    pub const fn is_spatial(&self) -> bool {
        matches!(
            self,
            OpKind::Conv2d(_)
                | OpKind::DepthwiseConv2d(_)
                | OpKind::Add(_)
                | OpKind::Mul(_)
                | OpKind::AveragePool2d(_)
                | OpKind::MaxPool2d(_)
                | OpKind::Pad(_)
                | OpKind::Quantize(_)
                | OpKind::Dequantize
                | OpKind::ResizeNearest(_)
                | OpKind::ResizeBilinear(_)
                | OpKind::Activation(..)
                | OpKind::Relu6(_)
                | OpKind::Prelu(_)
                | OpKind::Logistic(_)
                | OpKind::HardSwish(_)
                | OpKind::Maximum
                | OpKind::Minimum
                // Along channels every output pixel comes from the same pixel of the inputs.
                | OpKind::Concat(2)
        )
    }
}

/// One node of the graph.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Op {
    /// What it computes.
    pub kind: OpKind,
    /// Inputs: activations or [`Model::constants`], as many as [`OpKind::arity`] says, then
    /// [`NO_TENSOR`].
    pub inputs: [TensorId; MAX_OP_INPUTS],
    /// The activation it produces.
    pub output: TensorId,
}

impl Op {
    /// An op reading `inputs`: [`MAX_OP_INPUTS`] at most (more are dropped; validation then
    /// finds the op's shapes wrong).
    pub fn new(kind: OpKind, inputs: &[TensorId], output: TensorId) -> Op {
        let mut ids = [NO_TENSOR; MAX_OP_INPUTS];
        for (slot, &t) in ids.iter_mut().zip(inputs) {
            *slot = t;
        }
        Op { kind, inputs: ids, output }
    }

    /// The inputs actually used.
    pub fn input_ids(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.inputs.iter().copied().filter(|&t| t != NO_TENSOR)
    }
}

/// A model borrowed from wherever it lives (flash statics on the device, a [`ModelBuf`] on
/// the host).
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// Name (zoo name or file stem).
    pub name: &'a str,
    /// Activation tensors.
    pub tensors: &'a [Tensor],
    /// Ops in graph (= execution) order.
    pub ops: &'a [Op],
    /// The model input tensor.
    pub input: TensorId,
    /// The model output tensors, in the graph's order (1 to [`MAX_OUTPUTS`]).
    pub outputs: &'a [TensorId],
    /// Constant operands (values in `weights`).
    pub constants: &'a [Constant],
    /// int8 weight pool.
    pub weights: &'a [i8],
    /// int32 pool: biases, multipliers, shifts.
    pub params: &'a [i32],
}

/// Why a model is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// An op refers to a tensor index past the tensor table.
    BadTensor {
        /// Op index.
        op: u16,
    },
    /// A tensor is read before any op produced it (or is produced twice).
    NotTopological {
        /// Op index.
        op: u16,
    },
    /// An op's shapes do not agree with its parameters.
    BadShape {
        /// Op index.
        op: u16,
    },
    /// An op reads another number of inputs than its kind takes ([`OpKind::arity`]).
    BadInputs {
        /// Op index.
        op: u16,
    },
    /// More activation tensors than [`MAX_TENSORS`].
    TooManyTensors {
        /// Tensors in the model.
        count: u32,
    },
    /// A span points outside the weight or parameter pool, or has the wrong length.
    BadSpan {
        /// Op index.
        op: u16,
    },
    /// An op reads or writes an element type it does not compute in.
    BadType {
        /// Op index.
        op: u16,
    },
    /// The graph outputs are none, too many, repeated, or not produced by any op.
    Outputs {
        /// Graph outputs declared.
        count: u32,
    },
}

impl core::fmt::Display for ModelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ModelError::BadTensor { op } => {
                write!(f, "op {op} refers to a tensor that does not exist")
            }
            ModelError::NotTopological { op } => {
                write!(f, "op {op} reads a tensor that no earlier op produced (ops must be in graph order)")
            }
            ModelError::BadShape { op } => write!(f, "op {op}: input and output shapes do not fit the op's parameters"),
            ModelError::BadInputs { op } => write!(
                f,
                "op {op}: the wrong number of inputs (one, two for element-wise ops, 1 to {MAX_OP_INPUTS} for CONCATENATION)"
            ),
            ModelError::TooManyTensors { count } => {
                write!(f, "the model has {count} activation tensors; at most {MAX_TENSORS} are supported")
            }
            ModelError::BadSpan { op } => {
                write!(f, "op {op}: weights or parameters out of range or of the wrong length")
            }
            ModelError::BadType { op } => write!(
                f,
                "op {op}: ops compute in int8; only QUANTIZE reads (and DEQUANTIZE writes) another element type"
            ),
            ModelError::Outputs { count } => write!(
                f,
                "{count} graph outputs: 1 to {MAX_OUTPUTS} distinct tensors, each produced by an op, are supported"
            ),
        }
    }
}

impl<'a> Model<'a> {
    /// A tensor by id.
    pub fn tensor(&self, id: TensorId) -> &'a Tensor {
        &self.tensors[id as usize]
    }

    /// Multiply-accumulates of op `i` for its full output.
    pub fn op_macs(&self, i: usize) -> u64 {
        let op = &self.ops[i];
        let out = self.tensor(op.output);
        crate::plan::macs_for_rows(self, op, out.h, out.w)
    }

    /// Multiply-accumulates of one whole inference.
    pub fn macs(&self) -> u64 {
        (0..self.ops.len()).map(|i| self.op_macs(i)).sum()
    }

    /// Checks the structural invariants every planner and executor relies on: valid tensor
    /// ids, graph order, shapes consistent with windows and strides, spans in range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let n = self.tensors.len();
        let mut produced = [false; MAX_TENSORS];
        if n > MAX_TENSORS {
            return Err(ModelError::TooManyTensors { count: n as u32 });
        }
        if self.input as usize >= n {
            return Err(ModelError::BadTensor { op: 0 });
        }
        if self.outputs.is_empty() || self.outputs.len() > MAX_OUTPUTS {
            return Err(ModelError::Outputs { count: self.outputs.len() as u32 });
        }
        for (k, &t) in self.outputs.iter().enumerate() {
            if t as usize >= n || self.outputs[..k].contains(&t) {
                return Err(ModelError::Outputs { count: self.outputs.len() as u32 });
            }
        }
        produced[self.input as usize] = true;
        for k in self.constants {
            let t = k.tensor as usize;
            let tensor = self.tensors.get(t).ok_or(ModelError::BadTensor { op: 0 })?;
            if produced[t] || tensor.dtype != DType::I8 || !self.span_ok(k.values, true, tensor.bytes()) {
                return Err(ModelError::BadTensor { op: 0 });
            }
            produced[t] = true;
        }
        for (i, op) in self.ops.iter().enumerate() {
            let opi = i as u16;
            for t in op.input_ids().chain(core::iter::once(op.output)) {
                if t as usize >= n {
                    return Err(ModelError::BadTensor { op: opi });
                }
            }
            for t in op.input_ids() {
                if !produced[t as usize] {
                    return Err(ModelError::NotTopological { op: opi });
                }
            }
            if produced[op.output as usize] {
                return Err(ModelError::NotTopological { op: opi });
            }
            // Inputs fill the first slots, as many as the kind takes.
            let count = op.input_ids().count();
            let used = op.inputs.iter().take_while(|&&t| t != NO_TENSOR).count();
            let arity_ok = match op.kind.arity() {
                Arity::Unary => count == 1,
                Arity::Binary => count == 2,
                Arity::Variadic => count >= 1,
            };
            if count != used || !arity_ok {
                return Err(ModelError::BadInputs { op: opi });
            }
            produced[op.output as usize] = true;
            if !self.types_ok(op) {
                return Err(ModelError::BadType { op: opi });
            }
            self.validate_op(op).map_err(|e| e(opi))?;
        }
        if self.outputs.iter().any(|&t| !produced[t as usize] || self.is_constant(t)) {
            return Err(ModelError::Outputs { count: self.outputs.len() as u32 });
        }
        Ok(())
    }

    /// Element types: ops compute in int8; QUANTIZE takes float, uint8 or int8; DEQUANTIZE
    /// gives float; RESHAPE keeps its input's type.
    fn types_ok(&self, op: &Op) -> bool {
        let out = self.tensor(op.output).dtype;
        let input = self.tensor(op.inputs[0]).dtype;
        match op.kind {
            OpKind::Quantize(_) => out == DType::I8,
            OpKind::Dequantize => input == DType::I8 && out == DType::F32,
            OpKind::Reshape => input == out,
            _ => out == DType::I8 && op.input_ids().all(|t| self.tensor(t).dtype == DType::I8),
        }
    }

    fn span_ok(&self, s: Span, weights: bool, len: usize) -> bool {
        let pool = if weights { self.weights.len() } else { self.params.len() };
        s.len as usize == len && (s.start as usize + s.len as usize) <= pool
    }

    fn validate_op(&self, op: &Op) -> Result<(), fn(u16) -> ModelError> {
        let bad_shape: fn(u16) -> ModelError = |op| ModelError::BadShape { op };
        let bad_span: fn(u16) -> ModelError = |op| ModelError::BadSpan { op };
        let input = self.tensor(op.inputs[0]);
        let out = self.tensor(op.output);
        let window_ok = |w: Window| {
            w.kh > 0
                && w.kw > 0
                && w.sh > 0
                && w.sw > 0
                && Window::out_size(w.padding, input.h, w.kh, w.sh) == out.h
                && Window::out_size(w.padding, input.w, w.kw, w.sw) == out.w
        };
        match &op.kind {
            OpKind::Conv2d(c) | OpKind::DepthwiseConv2d(c) => {
                let depthwise = matches!(op.kind, OpKind::DepthwiseConv2d(_));
                // A depthwise conv gives each input channel `out.c / input.c` outputs.
                if !window_ok(c.window) || (depthwise && !out.c.is_multiple_of(input.c)) {
                    return Err(bad_shape);
                }
                let per_filter = c.window.kh as usize * c.window.kw as usize;
                let filter_len = if depthwise {
                    per_filter * out.c as usize
                } else {
                    per_filter * input.c as usize * out.c as usize
                };
                let oc = out.c as usize;
                if !self.span_ok(c.filter, true, filter_len)
                    || !(c.bias.len == 0 || self.span_ok(c.bias, false, oc))
                    || !self.span_ok(c.multiplier, false, oc)
                    || !self.span_ok(c.shift, false, oc)
                    || !self.span_ok(c.packed, false, c.packed.len as usize)
                {
                    return Err(bad_span);
                }
            }
            OpKind::AveragePool2d(p) | OpKind::MaxPool2d(p) => {
                if !window_ok(p.window) || input.c != out.c {
                    return Err(bad_shape);
                }
            }
            OpKind::Add(_) | OpKind::Mul(_) | OpKind::Prelu(_) | OpKind::Maximum | OpKind::Minimum => {
                // Each axis: the output's size in both inputs, or 1 in one of them.
                let other = self.tensor(op.inputs[1]);
                let fits = |a: u16, b: u16, o: u16| (a == o || a == 1) && (b == o || b == 1) && o == a.max(b);
                if !(fits(input.h, other.h, out.h) && fits(input.w, other.w, out.w) && fits(input.c, other.c, out.c)) {
                    return Err(bad_shape);
                }
            }
            OpKind::Pad(p) => {
                let (h, w) = (
                    u32::from(input.h) + u32::from(p.top) + u32::from(p.bottom),
                    u32::from(input.w) + u32::from(p.left) + u32::from(p.right),
                );
                if (h, w, input.c) != (u32::from(out.h), u32::from(out.w), out.c) {
                    return Err(bad_shape);
                }
            }
            OpKind::Reshape => {
                if input.len() != out.len() {
                    return Err(bad_shape);
                }
            }
            OpKind::FullyConnected(fc) => {
                let (n_in, n_out) = (input.len(), out.c as usize);
                if out.h != 1 || out.w != 1 {
                    return Err(bad_shape);
                }
                let m = fc.multiplier.len as usize;
                if !self.span_ok(fc.filter, true, n_in * n_out)
                    || !(fc.bias.len == 0 || self.span_ok(fc.bias, false, n_out))
                    || !(m == 1 || m == n_out)
                    || !self.span_ok(fc.multiplier, false, m)
                    || !self.span_ok(fc.shift, false, m)
                {
                    return Err(bad_span);
                }
            }
            OpKind::Softmax(_) | OpKind::LogSoftmax(_) => {
                if input.len() != out.len() {
                    return Err(bad_shape);
                }
            }
            OpKind::Mean(MeanParams { axes, .. }) | OpKind::ReduceMax(axes) => {
                let dims = [input.h, input.w, input.c];
                let kept: usize = (0..3).filter(|k| axes & (1 << k) == 0).map(|k| usize::from(dims[k])).product();
                if *axes == 0 || *axes > 7 || out.len() != kept {
                    return Err(bad_shape);
                }
            }
            OpKind::Concat(axis) => {
                // The axis adds up; every other axis is the output's in every input.
                let k = usize::from(*axis);
                let o = [out.h, out.w, out.c].map(u32::from);
                let mut along = 0;
                for t in op.input_ids() {
                    let x = self.tensor(t);
                    let d = [x.h, x.w, x.c].map(u32::from);
                    if k >= 3 || (0..3).any(|j| j != k && d[j] != o[j]) {
                        return Err(bad_shape);
                    }
                    along += d[k];
                }
                if along != o[k] {
                    return Err(bad_shape);
                }
            }
            OpKind::Transpose(t) => {
                let dims = [input.h, input.w, input.c];
                let mut seen = [false; 3];
                for &a in &t.perm {
                    if a > 2 || core::mem::replace(&mut seen[usize::from(a)], true) {
                        return Err(bad_shape);
                    }
                }
                let [a, b, c] = t.perm.map(|a| dims[usize::from(a)]);
                if (out.h, out.w, out.c) != (a, b, c) {
                    return Err(bad_shape);
                }
            }
            OpKind::ResizeNearest(_) | OpKind::ResizeBilinear(_) => {
                if input.c != out.c || out.h == 0 || out.w == 0 {
                    return Err(bad_shape);
                }
            }
            OpKind::Quantize(_)
            | OpKind::Dequantize
            | OpKind::Activation(..)
            | OpKind::Relu6(_)
            | OpKind::Logistic(_)
            | OpKind::HardSwish(_) => {
                if (input.h, input.w, input.c) != (out.h, out.w, out.c) {
                    return Err(bad_shape);
                }
            }
        }
        Ok(())
    }

    /// True when `op` can run tile by tile inside a patch stage: a spatial kind
    /// ([`OpKind::is_spatial`]), or a RESHAPE that keeps height, width and channels (a copy,
    /// as a flat model input reshaped to its image becomes on import).
    pub fn op_is_spatial(&self, op: &Op) -> bool {
        let same = |a: &Tensor, b: &Tensor| (a.h, a.w, a.c) == (b.h, b.w, b.c);
        // A tile of an element-wise op reads the same tile of its inputs: an activation that
        // broadcasts over height or width would be needed whole (constants always are).
        let whole = |t: TensorId| {
            let (x, out) = (self.tensor(t), self.tensor(op.output));
            !self.is_constant(t) && (x.h, x.w) != (out.h, out.w)
        };
        let elementwise = op.kind.arity() == Arity::Binary;
        (op.kind.is_spatial() && !(elementwise && op.input_ids().any(whole)))
            || (matches!(op.kind, OpKind::Reshape) && same(self.tensor(op.inputs[0]), self.tensor(op.output)))
    }

    /// The values of tensor `t` if it is a constant.
    pub fn constant(&self, t: TensorId) -> Option<Span> {
        self.constants.iter().find(|k| k.tensor == t).map(|k| k.values)
    }

    /// True for a constant tensor.
    pub fn is_constant(&self, t: TensorId) -> bool {
        self.constant(t).is_some()
    }

    /// Index of the op producing each tensor is its position; this finds it.
    pub fn producer(&self, t: TensorId) -> Option<usize> {
        self.ops.iter().position(|op| op.output == t)
    }

    /// A stable 64-bit FNV-1a hash of everything that defines the model's arithmetic.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv::new();
        for t in self.tensors {
            h.write(&t.h.to_le_bytes());
            h.write(&t.w.to_le_bytes());
            h.write(&t.c.to_le_bytes());
            h.write(&t.scale.to_bits().to_le_bytes());
            h.write(&t.zero_point.to_le_bytes());
            h.write(&[t.dtype as u8]);
        }
        for op in self.ops {
            // The Debug form covers every parameter; it is stable for a given source tree.
            let mut w = FnvWriter(&mut h);
            let _ = core::fmt::write(&mut w, format_args!("{op:?}"));
        }
        h.write(&self.input.to_le_bytes());
        for t in self.outputs {
            h.write(&t.to_le_bytes());
        }
        for k in self.constants {
            h.write(&k.tensor.to_le_bytes());
            h.write(&k.values.start.to_le_bytes());
            h.write(&k.values.len.to_le_bytes());
        }
        h.write(bytemuck::cast_slice(self.weights));
        for p in self.params {
            h.write(&p.to_le_bytes());
        }
        h.finish()
    }
}

struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    const fn finish(&self) -> u64 {
        self.0
    }
}

struct FnvWriter<'a>(&'a mut Fnv);

impl core::fmt::Write for FnvWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// An owned model (host side): build one op at a time, then borrow it as a [`Model`].
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default)]
pub struct ModelBuf {
    /// Name.
    pub name: String,
    /// Activation tensors.
    pub tensors: Vec<Tensor>,
    /// Ops in graph order.
    pub ops: Vec<Op>,
    /// Model input.
    pub input: TensorId,
    /// Model outputs, in the graph's order.
    pub outputs: Vec<TensorId>,
    /// Constant operands.
    pub constants: Vec<Constant>,
    /// int8 weight pool.
    pub weights: Vec<i8>,
    /// int32 parameter pool.
    pub params: Vec<i32>,
}

#[cfg(feature = "std")]
impl ModelBuf {
    /// Borrows the model.
    pub fn as_model(&self) -> Model<'_> {
        Model {
            name: &self.name,
            tensors: &self.tensors,
            ops: &self.ops,
            input: self.input,
            outputs: &self.outputs,
            constants: &self.constants,
            weights: &self.weights,
            params: &self.params,
        }
    }

    /// Adds a tensor and returns its id.
    pub fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.tensors.push(t);
        (self.tensors.len() - 1) as TensorId
    }

    /// Appends int8 weights, returning their span.
    pub fn push_weights(&mut self, w: &[i8]) -> Span {
        let start = self.weights.len() as u32;
        self.weights.extend_from_slice(w);
        Span { start, len: w.len() as u32 }
    }

    /// Appends int32 parameters, returning their span.
    pub fn push_params(&mut self, p: &[i32]) -> Span {
        let start = self.params.len() as u32;
        self.params.extend_from_slice(p);
        Span { start, len: p.len() as u32 }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ModelError {}
