//! Importing TFLite int8 models (`.tflite`, schema v3) into the engine IR.
//!
//! Every integer TFLM derives when it prepares a model (per-channel requantization multipliers
//! and shifts, fused-activation ranges, ADD and SOFTMAX parameters) is derived here the same
//! way, from the same float scales, so the engine reproduces TFLM's bytes. Ops map one to one
//! (op `i` of the file is op `i` of the IR), so per-op dumps line up with TFLite's operator
//! order. What the engine cannot run exactly is refused before anything runs, naming the op.

pub mod ops;
#[cfg(test)]
mod tests;
#[allow(clippy::all, clippy::pedantic, missing_docs, unused_imports, dead_code)]
#[rustfmt::skip]
mod schema_generated;

use harness::model::{
    AddParams, Clamp, Conv, FcParams, ModelBuf, Op, OpKind, PadParams, Padding, Pool, SoftmaxParams, Tensor, TensorId,
    Window, NO_TENSOR,
};
use harness::quant::{add_params, quantize_multiplier, softmax_params};
use planus::ReadAsRoot;
use schema_generated::tflite as fb;
use std::path::Path;

/// Why a `.tflite` file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not a TFLite flatbuffer.
    #[error("not a TFLite model: {0}")]
    NotTflite(String),
    /// The graph as a whole uses something the engine does not support.
    #[error("{0}")]
    Model(String),
    /// One operator is not supported (or malformed).
    #[error("op {index} ({name}): {what}")]
    Op {
        /// Operator index in TFLite's operator order.
        index: usize,
        /// TFLite operator name.
        name: String,
        /// What is missing or wrong.
        what: String,
    },
}

/// The TFLite operators the importer maps, for messages.
pub const SUPPORTED_OPS: &str =
    "CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D, MAX_POOL_2D, PAD, RESHAPE, FULLY_CONNECTED, SOFTMAX";

/// Reads and imports a `.tflite` file; the model is named after the file stem.
pub fn import_file(path: &Path) -> Result<ModelBuf, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io { path: path.display().to_string(), source })?;
    let name = path.file_stem().map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    import(&bytes, &name)
}

/// Imports a TFLite flatbuffer.
pub fn import(bytes: &[u8], name: &str) -> Result<ModelBuf, ImportError> {
    import_mapped(bytes, name).map(|(model, _)| model)
}

/// [`import`], also returning the TFLite tensor index of every IR tensor.
pub fn import_mapped(bytes: &[u8], name: &str) -> Result<(ModelBuf, Vec<usize>), ImportError> {
    if bytes.get(4..8) != Some(b"TFL3".as_slice()) {
        return Err(ImportError::NotTflite("the file identifier is not TFL3".into()));
    }
    let not_tflite = |e: planus::Error| ImportError::NotTflite(e.to_string());
    let model = fb::ModelRef::read_as_root(bytes).map_err(not_tflite)?;
    let version = model.version().map_err(not_tflite)?;
    if version != 3 {
        return Err(ImportError::Model(format!("schema version {version}; patchbench reads version 3")));
    }
    let codes: Vec<fb::OperatorCode> = read_vec(model.operator_codes()).map_err(not_tflite)?;
    let buffers: Vec<fb::Buffer> = read_vec(model.buffers()).map_err(not_tflite)?;
    let subgraphs = model.subgraphs().map_err(not_tflite)?.ok_or_else(|| ImportError::Model("no subgraph".into()))?;
    if subgraphs.len() != 1 {
        return Err(ImportError::Model(format!(
            "{} subgraphs (control flow); patchbench imports single-subgraph models",
            subgraphs.len()
        )));
    }
    let graph = subgraphs.get(0).ok_or_else(|| ImportError::Model("no subgraph".into()))?.map_err(not_tflite)?;
    let tensors: Vec<fb::Tensor> = read_vec(graph.tensors()).map_err(not_tflite)?;
    let graph_inputs = read_ints(graph.inputs()).map_err(not_tflite)?;
    let graph_outputs = read_ints(graph.outputs()).map_err(not_tflite)?;
    let operators = graph.operators().map_err(not_tflite)?.ok_or_else(|| ImportError::Model("no operators".into()))?;

    let mut im = Importer {
        tensors: &tensors,
        buffers: &buffers,
        ir: ModelBuf { name: name.to_string(), ..Default::default() },
        ids: vec![None; tensors.len()],
    };
    let [input] = graph_inputs[..] else {
        return Err(ImportError::Model(format!(
            "{} graph inputs; patchbench imports models with one input tensor",
            graph_inputs.len()
        )));
    };
    let [output] = graph_outputs[..] else {
        return Err(ImportError::Model(format!(
            "{} graph outputs; patchbench imports models with one output tensor",
            graph_outputs.len()
        )));
    };
    im.ir.input = im.new_activation(input).map_err(|e| ImportError::Model(format!("graph input: {e}")))?;

    for (index, op) in operators.iter().enumerate() {
        let op = op.map_err(not_tflite)?;
        let opcode_index = op.opcode_index().map_err(not_tflite)? as usize;
        let code = codes.get(opcode_index).ok_or_else(|| {
            ImportError::NotTflite(format!("op {index} uses operator code {opcode_index}, which does not exist"))
        })?;
        // Codes below 127 may sit only in the deprecated byte (files written before schema 3a).
        let builtin = code.builtin_code.max(i32::from(code.deprecated_builtin_code));
        let name = match builtin {
            ops::CUSTOM => format!("custom op `{}`", code.custom_code.as_deref().unwrap_or("?")),
            _ => ops::builtin_name(builtin).map_or_else(|| format!("builtin operator code {builtin}"), str::to_string),
        };
        let err = |what: String| ImportError::Op { index, name: name.clone(), what };
        let inputs = read_ints(op.inputs()).map_err(|e| err(e.to_string()))?;
        let outputs = read_ints(op.outputs()).map_err(|e| err(e.to_string()))?;
        let io = OpIo { output: *outputs.first().ok_or_else(|| err("no output".into()))?, inputs, op };
        let kind = im.map_op(builtin, &io).map_err(err)?;
        let inputs = io.inputs;
        let act_inputs: Vec<usize> = match kind {
            OpKind::Add(_) => inputs.get(..2).unwrap_or(&inputs).to_vec(),
            _ => inputs.first().copied().into_iter().collect(),
        };
        let [out] = outputs[..] else {
            return Err(err(format!("{} outputs; supported ops have one", outputs.len())));
        };
        let mut ir_inputs = [NO_TENSOR; 2];
        for (slot, &t) in ir_inputs.iter_mut().zip(&act_inputs) {
            *slot = im.activation(t).map_err(err)?;
        }
        let output = im.new_activation(out).map_err(err)?;
        im.ir.ops.push(Op { kind, inputs: ir_inputs, output });
    }
    im.ir.output = im.activation(output).map_err(|e| ImportError::Model(format!("graph output: {e}")))?;
    let mut sources = vec![0; im.ir.tensors.len()];
    for (t, id) in im.ids.iter().enumerate() {
        if let Some(id) = id {
            sources[usize::from(*id)] = t;
        }
    }
    let ir = im.ir;
    ir.as_model().validate().map_err(|e| match e {
        harness::ModelError::BadTensor { op }
        | harness::ModelError::NotTopological { op }
        | harness::ModelError::BadShape { op }
        | harness::ModelError::BadSpan { op } => ImportError::Op {
            index: usize::from(op),
            name: ir.ops.get(usize::from(op)).map_or("?", |o| o.kind.name()).to_string(),
            what: e.to_string(),
        },
        other => ImportError::Model(other.to_string()),
    })?;
    Ok((ir, sources))
}

/// A flatbuffer vector of tables, as owned values (absent = empty).
fn read_vec<'a, R, T>(v: planus::Result<Option<planus::Vector<'a, planus::Result<R>>>>) -> planus::Result<Vec<T>>
where
    planus::Result<R>: planus::VectorRead<'a>,
    T: TryFrom<R, Error = planus::Error>,
{
    v?.map_or(Ok(Vec::new()), |v| v.iter().map(|r| T::try_from(r?)).collect())
}

/// A flatbuffer vector of tensor indices (absent = empty; -1 = an omitted optional input).
fn read_ints(v: planus::Result<Option<planus::Vector<'_, i32>>>) -> planus::Result<Vec<usize>> {
    Ok(v?.map_or(Vec::new(), |v| v.iter().map(|i| usize::try_from(i).unwrap_or(usize::MAX)).collect()))
}

/// TFLite `TensorType` names, by value.
const TENSOR_TYPES: [&str; 19] = [
    "FLOAT32",
    "FLOAT16",
    "INT32",
    "UINT8",
    "INT64",
    "STRING",
    "BOOL",
    "INT16",
    "COMPLEX64",
    "INT8",
    "FLOAT64",
    "COMPLEX128",
    "UINT64",
    "RESOURCE",
    "VARIANT",
    "UINT32",
    "UINT16",
    "INT4",
    "BFLOAT16",
];
const INT8: i8 = 9;
const INT32: i8 = 2;
const INT64: i8 = 4;

fn type_name(t: i8) -> String {
    usize::try_from(t).ok().and_then(|i| TENSOR_TYPES.get(i)).map_or_else(|| format!("type {t}"), |s| s.to_string())
}

/// A TFLite fused activation as an output clamp (TFLM `CalculateActivationRangeQuantized`:
/// the float bounds quantized with the output's scale in f32, rounded half away from zero).
fn fused_clamp(activation: i8, out: &Tensor) -> Result<Clamp, String> {
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

fn padding(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

/// A kernel size or stride as the IR's byte.
fn small(what: &str, v: i32) -> Result<u8, String> {
    u8::try_from(v).ok().filter(|&b| b > 0).ok_or_else(|| format!("{what} {v}; 1..=255 is supported"))
}

struct Importer<'a> {
    tensors: &'a [fb::Tensor],
    buffers: &'a [fb::Buffer],
    ir: ModelBuf,
    /// IR activation of each TFLite tensor, once produced.
    ids: Vec<Option<TensorId>>,
}

/// Quantization of a constant tensor: scales, zero points, quantized dimension.
struct Quant<'a> {
    scales: &'a [f32],
    zero_points: &'a [i64],
    dim: i32,
}

impl<'a> Importer<'a> {
    fn tensor(&self, t: usize) -> Result<&'a fb::Tensor, String> {
        self.tensors.get(t).ok_or_else(|| format!("tensor index {t} does not exist (or a required input is omitted)"))
    }

    fn describe(&self, t: usize) -> String {
        match self.tensors.get(t).and_then(|t| t.name.as_deref()) {
            Some(n) => format!("tensor {t} `{n}`"),
            None => format!("tensor {t}"),
        }
    }

    /// The constant data of tensor `t`, or `None` for a tensor computed at run time.
    fn data(&self, t: usize) -> Result<Option<&'a [u8]>, String> {
        let tensor = self.tensor(t)?;
        let buffer = self.buffers.get(tensor.buffer as usize);
        match buffer {
            Some(b) if b.offset > 1 => Err(format!(
                "{} keeps its data outside the flatbuffer (a model over 2 GB); not supported",
                self.describe(t)
            )),
            Some(fb::Buffer { data: Some(d), .. }) if !d.is_empty() => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    fn quant(&self, t: usize) -> Result<Quant<'a>, String> {
        let q = self.tensor(t)?.quantization.as_deref();
        let scales = q.and_then(|q| q.scale.as_deref()).unwrap_or_default();
        let zero_points = q.and_then(|q| q.zero_point.as_deref()).unwrap_or_default();
        if scales.is_empty() || zero_points.len() != scales.len() {
            return Err(format!("{} is not quantized (no scale and zero point)", self.describe(t)));
        }
        Ok(Quant { scales, zero_points, dim: q.map_or(0, |q| q.quantized_dimension) })
    }

    fn shape(&self, t: usize) -> Result<&'a [i32], String> {
        Ok(self.tensor(t)?.shape.as_deref().unwrap_or_default())
    }

    /// The IR activation holding TFLite tensor `t`, which an earlier op (or the graph input)
    /// produced.
    fn activation(&self, t: usize) -> Result<TensorId, String> {
        if let Some(id) = self.ids.get(t).copied().flatten() {
            return Ok(id);
        }
        if self.data(t)?.is_some() {
            return Err(format!(
                "{} is a constant where a run-time input is expected; not supported",
                self.describe(t)
            ));
        }
        Err(format!("{} is read before any op produced it", self.describe(t)))
    }

    /// Declares TFLite tensor `t` as a new IR activation: int8, per-tensor quantized, batch 1.
    fn new_activation(&mut self, t: usize) -> Result<TensorId, String> {
        let tensor = self.tensor(t)?;
        if tensor.type_ != INT8 {
            return Err(format!(
                "{} is {}; patchbench runs int8 models (convert with full-integer quantization)",
                self.describe(t),
                type_name(tensor.type_)
            ));
        }
        if tensor.is_variable {
            return Err(format!("{} is a variable (stateful) tensor; not supported", self.describe(t)));
        }
        if self.ids.get(t).copied().flatten().is_some() {
            return Err(format!("{} is written twice", self.describe(t)));
        }
        let (scale, zero_point) = self.activation_quant(t)?;
        let shape = self.shape(t)?;
        let dims = match *shape {
            [1, h, w, c] => [h, w, c],
            // Same bytes in NHWC order: a row of `w` pixels, or a flat vector.
            [1, w, c] => [1, w, c],
            [1, n] | [n] => [1, 1, n],
            _ => {
                return Err(format!(
                    "{} has shape {shape:?}; supported are [1, h, w, c], [1, w, c] and [1, n] (batch 1)",
                    self.describe(t)
                ))
            }
        };
        let dim = |v: i32| u16::try_from(v).ok().filter(|&d| d > 0);
        let (Some(h), Some(w), Some(c)) = (dim(dims[0]), dim(dims[1]), dim(dims[2])) else {
            return Err(format!("{} has shape {shape:?}; each dimension must be 1..=65535", self.describe(t)));
        };
        let id = self.ir.add_tensor(Tensor { h, w, c, scale, zero_point });
        self.ids[t] = Some(id);
        Ok(id)
    }

    /// The IR tensor that op input `k` will be (its quantization is needed before the op
    /// is pushed).
    fn in_tensor(&self, op_inputs: &[usize], k: usize) -> Result<Tensor, String> {
        let t = *op_inputs.get(k).ok_or_else(|| format!("input {k} is missing"))?;
        Ok(self.ir.tensors[usize::from(self.activation(t)?)])
    }

    /// The quantization and channels op output `t` will get (its whole shape is checked when
    /// it is declared).
    fn out_tensor(&self, t: usize) -> Result<Tensor, String> {
        let (scale, zero_point) = self.activation_quant(t)?;
        let shape = self.shape(t)?;
        let c = shape.last().and_then(|&c| u16::try_from(c).ok()).filter(|&c| c > 0);
        let c = c.ok_or_else(|| format!("{} has shape {shape:?}; its channels must be 1..=65535", self.describe(t)))?;
        Ok(Tensor { h: 0, w: 0, c, scale, zero_point })
    }

    /// Per-tensor int8 quantization of an activation: a positive scale and a zero point in
    /// the int8 range.
    fn activation_quant(&self, t: usize) -> Result<(f32, i32), String> {
        let q = self.quant(t)?;
        if q.scales.len() != 1 {
            return Err(format!("{} has per-channel quantization; activations must be per-tensor", self.describe(t)));
        }
        let (scale, zero_point) = (q.scales[0], q.zero_points[0]);
        let usable = (-128..=127).contains(&zero_point) && scale.is_finite() && scale > 0.0;
        if !usable {
            return Err(format!(
                "{} has scale {scale} and zero point {zero_point}; int8 needs a positive scale and a zero point in -128..=127",
                self.describe(t)
            ));
        }
        Ok((scale, zero_point as i32))
    }

    /// An int8 constant weight tensor with the given shape and symmetric quantization.
    fn weights(&self, t: usize, what: &str, shape: &[i32]) -> Result<(&'a [i8], Quant<'a>), String> {
        let tensor = self.tensor(t)?;
        let data = self.data(t)?.ok_or_else(|| format!("the {what} ({}) is not a constant", self.describe(t)))?;
        if tensor.type_ != INT8 {
            return Err(format!("the {what} is {}; only int8 weights are supported", type_name(tensor.type_)));
        }
        if self.shape(t)? != shape || shape.iter().any(|&d| d <= 0) {
            return Err(format!("the {what} has shape {:?}, expected {shape:?}", self.shape(t)?));
        }
        let len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d as usize)).unwrap_or(usize::MAX);
        if data.len() != len {
            return Err(format!("the {what} holds {} bytes, its shape needs {len}", data.len()));
        }
        let q = self.quant(t)?;
        if let Some(zp) = q.zero_points.iter().find(|&&z| z != 0) {
            return Err(format!("the {what} has zero point {zp}; int8 weights must be symmetric (zero point 0)"));
        }
        Ok((bytemuck::cast_slice(data), q))
    }

    /// The optional int32 bias (input index `k`), `n` values.
    fn bias(&self, op_inputs: &[usize], k: usize, n: usize) -> Result<Vec<i32>, String> {
        let Some(&t) = op_inputs.get(k).filter(|&&t| t != usize::MAX) else {
            return Ok(Vec::new());
        };
        let tensor = self.tensor(t)?;
        let data = self.data(t)?.ok_or_else(|| format!("the bias ({}) is not a constant", self.describe(t)))?;
        if tensor.type_ != INT32 {
            return Err(format!("the bias is {}; int8 models have INT32 biases", type_name(tensor.type_)));
        }
        if data.len() != 4 * n {
            return Err(format!("the bias holds {} bytes, {n} int32 values expected", data.len()));
        }
        Ok(data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn map_op(&mut self, builtin: i32, io: &OpIo) -> Result<OpKind, String> {
        match builtin {
            ops::CONV_2D => self.conv(io, false),
            ops::DEPTHWISE_CONV_2D => self.conv(io, true),
            ops::AVERAGE_POOL_2D => Ok(OpKind::AveragePool2d(self.pool(io)?)),
            ops::MAX_POOL_2D => Ok(OpKind::MaxPool2d(self.pool(io)?)),
            ops::ADD => self.add(io),
            ops::PAD => self.pad(io),
            ops::RESHAPE => {
                self.in_tensor(&io.inputs, 0)?;
                Ok(OpKind::Reshape)
            }
            ops::FULLY_CONNECTED => self.fully_connected(io),
            ops::SOFTMAX => self.softmax(io),
            ops::CUSTOM => Err(format!("custom operators are not supported; supported: {SUPPORTED_OPS}")),
            _ => Err(format!("operator not supported; supported: {SUPPORTED_OPS}")),
        }
    }

    /// CONV_2D (filter OHWI) or DEPTHWISE_CONV_2D (filter 1HWC, depth multiplier 1).
    fn conv(&mut self, io: &OpIo, depthwise: bool) -> Result<OpKind, String> {
        let o = match (io.options()?, depthwise) {
            (Some(fb::BuiltinOptionsRef::Conv2DOptions(o)), false) => {
                ConvOptions::from(fb::Conv2DOptions::try_from(o).map_err(|e| e.to_string())?)
            }
            (Some(fb::BuiltinOptionsRef::DepthwiseConv2DOptions(o)), true) => {
                let o = fb::DepthwiseConv2DOptions::try_from(o).map_err(|e| e.to_string())?;
                if o.depth_multiplier > 1 {
                    return Err(format!("depth multiplier {}; only 1 is supported", o.depth_multiplier));
                }
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
            if out.c != x.c {
                return Err(format!(
                    "depth multiplier {} ({} output channels for {} input channels); only 1 is supported",
                    f64::from(out.c) / f64::from(x.c),
                    out.c,
                    x.c
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
        };
        Ok(if depthwise { OpKind::DepthwiseConv2d(conv) } else { OpKind::Conv2d(conv) })
    }

    /// AVERAGE_POOL_2D or MAX_POOL_2D.
    fn pool(&mut self, io: &OpIo) -> Result<Pool, String> {
        let Some(fb::BuiltinOptionsRef::Pool2DOptions(o)) = io.options()? else { return Err(OPTIONS_MISSING.into()) };
        let o = fb::Pool2DOptions::try_from(o).map_err(|e| e.to_string())?;
        let x = self.in_tensor(&io.inputs, 0)?;
        let out = self.out_tensor(io.output)?;
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

    /// ADD of two activations of the same shape.
    fn add(&mut self, io: &OpIo) -> Result<OpKind, String> {
        let Some(fb::BuiltinOptionsRef::AddOptions(o)) = io.options()? else { return Err(OPTIONS_MISSING.into()) };
        let act = o.fused_activation_function().map_err(|e| e.to_string())?;
        if io.inputs.len() != 2 {
            return Err(format!("{} inputs; ADD takes 2", io.inputs.len()));
        }
        let (a, b) = (self.in_tensor(&io.inputs, 0)?, self.in_tensor(&io.inputs, 1)?);
        let out = self.out_tensor(io.output)?;
        if (a.h, a.w, a.c) != (b.h, b.w, b.c) {
            return Err(format!(
                "inputs of shapes {}x{}x{} and {}x{}x{}; broadcasting is not supported",
                a.h, a.w, a.c, b.h, b.w, b.c
            ));
        }
        let [input1, input2, output] = add_params(a.scale, b.scale, out.scale);
        Ok(OpKind::Add(AddParams { input1, input2, output, clamp: fused_clamp(act, &out)? }))
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

const OPTIONS_MISSING: &str = "its options are missing";

/// The tensors and options of the op being mapped.
struct OpIo<'o> {
    /// TFLite tensor indices of the inputs (`usize::MAX`: an omitted optional input).
    inputs: Vec<usize>,
    output: usize,
    op: fb::OperatorRef<'o>,
}

impl<'o> OpIo<'o> {
    /// The op's options, read only for the ops the importer maps: other ops may carry
    /// option tables this reader does not declare.
    fn options(&self) -> Result<Option<fb::BuiltinOptionsRef<'o>>, String> {
        self.op.builtin_options().map_err(|e| format!("options unreadable: {e}"))
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

/// Per-output-channel multipliers and shifts: TFLM `PopulateConvolutionQuantizationParams`
/// (`double(input_scale) * double(filter_scale) / double(output_scale)`).
fn channel_multipliers(in_scale: f32, filter: &Quant, out_scale: f32, n: usize) -> (Vec<i32>, Vec<i32>) {
    (0..n)
        .map(|i| {
            let fs = if filter.scales.len() == 1 { filter.scales[0] } else { filter.scales[i] };
            quantize_multiplier(f64::from(in_scale) * f64::from(fs) / f64::from(out_scale))
        })
        .unzip()
}

/// Filter scales: one for the tensor, or one per output channel along `dim`.
fn check_per_channel(filter: &Quant, channels: usize, dim: i32) -> Result<(), String> {
    if filter.scales.len() != 1 && (filter.scales.len() != channels || filter.dim != dim) {
        return Err(format!(
            "filter has {} scales on dimension {}; expected 1, or {channels} on dimension {dim}",
            filter.scales.len(),
            filter.dim
        ));
    }
    Ok(())
}
