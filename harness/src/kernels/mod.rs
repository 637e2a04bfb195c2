//! int8 kernels. Every kernel reads its inputs through [`View`]s and writes a [`Region`] of
//! its output through a [`ViewMut`]; a view holds any stored rectangle of a tensor, so the
//! same kernel runs a whole layer (layer-wise) or one tile of it (patch stage), with borders
//! decided by the tensor's full size, never by the tile's.
//!
//! A kernel set ([`Kernels`]) is what the executors are generic over. [`reference`](mod@reference) is the
//! portable, obviously-correct set and the oracle: every other set runs the same tests against
//! it (`harness/tests/kernels.rs`). [`dsp`] is the set for cores with the DSP extension
//! (Cortex-M4, M7, M33), and its [`dsp::Portable`] twin (the same algorithms, the SIMD
//! instructions in plain Rust) the one for cores without (M0+, M3); [`KernelSet`] names them
//! from the CLI to the CSV.

pub mod check;
pub mod dsp;
pub mod reference;
pub mod simd;

use crate::model::Clamp;
use crate::plan::Region;

/// Which kernel set an image runs: chosen per board at build time, recorded in every row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum KernelSet {
    /// [`reference`](mod@reference): TFLM's reference kernels in Rust, the oracle.
    #[default]
    Reference,
    /// [`dsp::Portable`]: the [`dsp`] set's algorithms with its SIMD instructions in plain
    /// Rust, for cores without the DSP extension (Cortex-M0+, M3).
    Portable,
    /// [`dsp::Dsp`]: dual 16-bit multiply-accumulates (SMLAD) on cores with the DSP
    /// extension.
    Dsp,
}

impl KernelSet {
    /// Every set, in order.
    pub const ALL: [KernelSet; 3] = [KernelSet::Reference, KernelSet::Portable, KernelSet::Dsp];

    /// Name on the CLI, in specs and in the CSV.
    pub const fn name(self) -> &'static str {
        match self {
            KernelSet::Reference => "reference",
            KernelSet::Portable => "portable",
            KernelSet::Dsp => "dsp",
        }
    }

    /// The set named `name`.
    pub fn from_name(name: &str) -> Option<KernelSet> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl core::str::FromStr for KernelSet {
    type Err = UnknownKernelSet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownKernelSet)
    }
}

/// A name that is no kernel set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKernelSet;

impl core::fmt::Display for UnknownKernelSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("no such kernel set; the sets are `reference` and `dsp`")
    }
}

impl core::fmt::Display for KernelSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel set: the kernels of the ops that take the time. Every method defaults to the
/// [`reference`](mod@reference) kernel, so a set overrides what it speeds up; an override must give the
/// reference kernel's bytes for every input, view and region.
pub trait Kernels {
    /// Which set this is.
    const SET: KernelSet;

    /// CONV_2D over `compute` (filter OHWI).
    #[inline]
    fn conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        reference::conv2d(a, input, out, compute)
    }

    /// DEPTHWISE_CONV_2D over `compute` (filter HWC, any depth multiplier).
    #[inline]
    fn depthwise_conv2d(a: &ConvArgs, input: &View, out: &mut ViewMut, compute: Region) {
        reference::depthwise_conv2d(a, input, out, compute)
    }

    /// AVERAGE_POOL_2D over `compute`.
    #[inline]
    fn average_pool(a: &PoolArgs, input: &View, out: &mut ViewMut, compute: Region) {
        reference::average_pool(a, input, out, compute)
    }

    /// MAX_POOL_2D over `compute`.
    #[inline]
    fn max_pool(a: &PoolArgs, input: &View, out: &mut ViewMut, compute: Region) {
        reference::max_pool(a, input, out, compute)
    }

    /// ADD over `compute`, either input broadcasting as `bcast` says.
    #[inline]
    fn add(a: &AddArgs, in1: &View, in2: &View, bcast: [Broadcast; 2], out: &mut ViewMut, compute: Region) {
        reference::add(a, in1, in2, bcast, out, compute)
    }

    /// FULLY_CONNECTED of the whole `input` into the whole `out`.
    #[inline]
    fn fully_connected(a: &FcArgs, input: &[i8], out: &mut [i8]) {
        reference::fully_connected(a, input, out)
    }

    /// Build time, on the host: lays out what this set's DEPTHWISE_CONV_2D derives from a
    /// layer's constants on every call (widened weights, starting accumulators, requantization
    /// parameters) into `out`, for the image to keep in flash (`ConvArgs::packed`); returns the
    /// words written, 0 when the set packs nothing for these arguments (depth multiplier 1,
    /// `channels` channels). The same arguments with the packed words must give the same bytes.
    #[inline]
    fn pack_depthwise(a: &ConvArgs, channels: usize, out: &mut [i32]) -> usize {
        let _ = (a, channels, out);
        0
    }
}

/// `model` with what kernel set `K` packs at build time ([`Kernels::pack_depthwise`]) added to
/// its parameters: the model an image of that set is generated from. Its arithmetic is the
/// same; its ops name the packed words.
#[cfg(feature = "std")]
pub fn packed<K: Kernels>(model: &crate::model::Model) -> crate::model::ModelBuf {
    use crate::model::{OpKind, Span};
    let mut buf = crate::model::ModelBuf {
        name: model.name.into(),
        tensors: model.tensors.to_vec(),
        ops: model.ops.to_vec(),
        input: model.input,
        outputs: model.outputs.to_vec(),
        constants: model.constants.to_vec(),
        weights: model.weights.to_vec(),
        params: model.params.to_vec(),
    };
    let mut words = std::vec::Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        let OpKind::DepthwiseConv2d(c) = &op.kind else { continue };
        let (input, out) = (model.tensor(op.inputs[0]), model.tensor(op.output));
        if input.c != out.c {
            continue;
        }
        let a = crate::exec::conv_args(model, c, op);
        words.clear();
        words.resize((out.c as usize / 4 + 1) * (2 * a.kh * a.kw + 32), 0);
        let n = K::pack_depthwise(&a, out.c as usize, &mut words);
        if n > 0 {
            let start = buf.params.len() as u32;
            buf.params.extend_from_slice(&words[..n]);
            if let OpKind::DepthwiseConv2d(c) = &mut buf.ops[i].kind {
                c.packed = Span { start, len: n as u32 };
            }
        }
    }
    buf
}

/// The reference kernels as a set.
#[derive(Clone, Copy, Debug)]
pub struct Reference;

impl Kernels for Reference {
    const SET: KernelSet = KernelSet::Reference;
}

/// A read-only stored rectangle of an NHWC tensor (int8; raw bytes at a QUANTIZE or
/// DEQUANTIZE boundary).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// `stored.h * stored.w * c` values, row-major.
    pub data: &'a [i8],
    /// Which rectangle of the tensor `data` holds.
    pub stored: Region,
    /// Bytes per pixel: the channels of an int8 tensor, 4 x channels of a float one.
    pub c: usize,
}

impl<'a> View<'a> {
    /// Index of `(y, x, 0)` (global coordinates) in `data`.
    #[inline]
    pub fn index(&self, y: usize, x: usize) -> usize {
        ((y - self.stored.y0 as usize) * self.stored.w as usize + (x - self.stored.x0 as usize)) * self.c
    }

    /// The `c` channels of pixel `(y, x)`.
    #[inline]
    pub fn pixel(&self, y: usize, x: usize) -> &'a [i8] {
        let i = self.index(y, x);
        &self.data[i..i + self.c]
    }
}

/// The axes along which an element-wise op's input has size 1 and repeats over the output
/// (TFLite broadcasting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Broadcast {
    /// One row for every output row.
    pub h: bool,
    /// One column for every output column.
    pub w: bool,
    /// One channel for every output channel.
    pub c: bool,
}

impl Broadcast {
    /// No broadcasting: the input has the output's shape.
    pub const NONE: Broadcast = Broadcast { h: false, w: false, c: false };

    /// The value of output `(y, x, ch)` in `input`.
    #[inline]
    pub fn at(self, input: &View, y: usize, x: usize, ch: usize) -> i8 {
        let y = if self.h { input.stored.y0 as usize } else { y };
        let x = if self.w { input.stored.x0 as usize } else { x };
        input.data[input.index(y, x) + if self.c { 0 } else { ch }]
    }
}

/// Integer parameters of an int8 MUL.
#[derive(Clone, Copy, Debug)]
pub struct MulArgs {
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Q31 multiplier and shift of the product.
    pub output: (i32, i32),
    /// Output clamp.
    pub clamp: Clamp,
}

/// A writable stored rectangle of an NHWC tensor (int8; raw bytes at a QUANTIZE or
/// DEQUANTIZE boundary).
#[derive(Debug)]
pub struct ViewMut<'a> {
    /// `stored.h * stored.w * c` values, row-major.
    pub data: &'a mut [i8],
    /// Which rectangle of the tensor `data` holds.
    pub stored: Region,
    /// Bytes per pixel: the channels of an int8 tensor, 4 x channels of a float one.
    pub c: usize,
}

impl ViewMut<'_> {
    /// Index of `(y, x, 0)` (global coordinates) in `data`.
    #[inline]
    pub fn index(&self, y: usize, x: usize) -> usize {
        ((y - self.stored.y0 as usize) * self.stored.w as usize + (x - self.stored.x0 as usize)) * self.c
    }

    /// The `c` channels of pixel `(y, x)` (global coordinates).
    #[inline]
    pub fn pixel_mut(&mut self, y: usize, x: usize) -> &mut [i8] {
        let i = ((y - self.stored.y0 as usize) * self.stored.w as usize + (x - self.stored.x0 as usize)) * self.c;
        &mut self.data[i..i + self.c]
    }
}

/// A PAD's leading padding and fill value.
#[derive(Clone, Copy, Debug)]
pub struct PadArgs {
    /// Rows added above the input.
    pub top: usize,
    /// Columns added left of the input.
    pub left: usize,
    /// Input rows.
    pub in_h: usize,
    /// Input columns.
    pub in_w: usize,
    /// Value of the added pixels.
    pub value: i8,
}

/// Quantization and weights of a CONV_2D / DEPTHWISE_CONV_2D, resolved to slices.
#[derive(Clone, Copy, Debug)]
pub struct ConvArgs<'a> {
    /// Kernel height, width; strides; leading padding.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Rows of padding above the input.
    pub pad_top: usize,
    /// Columns of padding left of the input.
    pub pad_left: usize,
    /// Full input height (border decisions).
    pub in_h: usize,
    /// Full input width.
    pub in_w: usize,
    /// Filter: OHWI (conv) or HWC (depthwise).
    pub filter: &'a [i8],
    /// Per-output-channel bias (empty: none).
    pub bias: &'a [i32],
    /// Per-output-channel Q31 multipliers.
    pub multiplier: &'a [i32],
    /// Per-output-channel shifts.
    pub shift: &'a [i32],
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Output clamp.
    pub clamp: Clamp,
    /// What the image's kernel set packed for this op at build time ([`Kernels::pack_depthwise`];
    /// empty: nothing, the kernel derives it each call).
    pub packed: &'a [i32],
}

/// Window geometry and clamp of a pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolArgs {
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Rows of padding above the input.
    pub pad_top: usize,
    /// Columns of padding left of the input.
    pub pad_left: usize,
    /// Full input height.
    pub in_h: usize,
    /// Full input width.
    pub in_w: usize,
    /// Output clamp.
    pub clamp: Clamp,
}

/// Integer parameters of an int8 ADD.
#[derive(Clone, Copy, Debug)]
pub struct AddArgs {
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Q31 multiplier and shift of input 1.
    pub input1: (i32, i32),
    /// Q31 multiplier and shift of input 2.
    pub input2: (i32, i32),
    /// Q31 multiplier and shift of the sum.
    pub output: (i32, i32),
    /// Output clamp.
    pub clamp: Clamp,
}

/// Quantization and weights of a FULLY_CONNECTED.
#[derive(Clone, Copy, Debug)]
pub struct FcArgs<'a> {
    /// Weights `[out][in]`.
    pub filter: &'a [i8],
    /// Per-output bias (empty: none).
    pub bias: &'a [i32],
    /// One multiplier (per-tensor) or one per output.
    pub multiplier: &'a [i32],
    /// Shifts, same length as `multiplier`.
    pub shift: &'a [i32],
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Output clamp.
    pub clamp: Clamp,
}
