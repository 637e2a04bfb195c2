//! Reading the flatbuffer: tensors, their types, shapes, quantization and constant data, as
//! the op mappings ask for them. Nothing here knows an operator.

use super::fb;
use harness::model::{Constant, DType, ModelBuf, Tensor, TensorId};
use std::collections::HashMap;

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
pub(super) const FLOAT32: i8 = 0;
pub(super) const INT32: i8 = 2;
pub(super) const UINT8: i8 = 3;
pub(super) const INT64: i8 = 4;
pub(super) const INT16: i8 = 7;
pub(super) const INT8: i8 = 9;

pub(super) fn type_name(t: i8) -> String {
    usize::try_from(t).ok().and_then(|i| TENSOR_TYPES.get(i)).map_or_else(|| format!("type {t}"), |s| s.to_string())
}

/// One import in progress: the file's tensors and buffers, and the IR built so far.
pub(super) struct Importer<'a> {
    pub(super) tensors: &'a [fb::Tensor],
    pub(super) buffers: &'a [fb::Buffer],
    /// Constants computed at import (`fold`), by TFLite tensor index.
    pub(super) folded: &'a HashMap<usize, Vec<u8>>,
    pub(super) ir: ModelBuf,
    /// IR activation of each TFLite tensor, once produced.
    pub(super) ids: Vec<Option<TensorId>>,
}

/// Quantization of a constant tensor: scales, zero points, quantized dimension.
pub(super) struct Quant<'a> {
    pub(super) scales: &'a [f32],
    pub(super) zero_points: &'a [i64],
    pub(super) dim: i32,
}

impl<'a> Importer<'a> {
    pub(super) fn tensor(&self, t: usize) -> Result<&'a fb::Tensor, String> {
        self.tensors.get(t).ok_or_else(|| format!("tensor index {t} does not exist (or a required input is omitted)"))
    }

    pub(super) fn describe(&self, t: usize) -> String {
        match self.tensors.get(t).and_then(|t| t.name.as_deref()) {
            Some(n) => format!("tensor {t} `{n}`"),
            None => format!("tensor {t}"),
        }
    }

    /// The constant data of tensor `t`, or `None` for a tensor computed at run time.
    pub(super) fn data(&self, t: usize) -> Result<Option<&'a [u8]>, String> {
        if let Some(v) = self.folded.get(&t) {
            return Ok(Some(v));
        }
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

    pub(super) fn quant(&self, t: usize) -> Result<Quant<'a>, String> {
        let q = self.tensor(t)?.quantization.as_deref();
        let scales = q.and_then(|q| q.scale.as_deref()).unwrap_or_default();
        let zero_points = q.and_then(|q| q.zero_point.as_deref()).unwrap_or_default();
        if scales.is_empty() || zero_points.len() != scales.len() {
            return Err(format!("{} is not quantized (no scale and zero point)", self.describe(t)));
        }
        Ok(Quant { scales, zero_points, dim: q.map_or(0, |q| q.quantized_dimension) })
    }

    pub(super) fn shape(&self, t: usize) -> Result<&'a [i32], String> {
        Ok(self.tensor(t)?.shape.as_deref().unwrap_or_default())
    }

    /// The IR activation holding TFLite tensor `t`, which an earlier op (or the graph input)
    /// produced.
    pub(super) fn activation(&self, t: usize) -> Result<TensorId, String> {
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

    /// The element type of activation `t`.
    pub(super) fn dtype(&self, t: usize) -> Result<DType, String> {
        match self.tensor(t)?.type_ {
            INT8 => Ok(DType::I8),
            UINT8 => Ok(DType::U8),
            FLOAT32 => Ok(DType::F32),
            INT16 => Err(format!(
                "{} is INT16: 16-bit activations (16x8 quantization) are not supported; convert with int8 activations",
                self.describe(t)
            )),
            other => Err(format!(
                "{} is {}; patchbench runs int8 models (with float, uint8 or int8 at the graph's boundaries)",
                self.describe(t),
                type_name(other)
            )),
        }
    }

    /// Declares TFLite tensor `t` as a new IR activation: batch 1, per-tensor quantized (or
    /// float).
    pub(super) fn new_activation(&mut self, t: usize) -> Result<TensorId, String> {
        let tensor = self.tensor(t)?;
        let dtype = self.dtype(t)?;
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
        let id = self.ir.add_tensor(Tensor { h, w, c, scale, zero_point, dtype });
        self.ids[t] = Some(id);
        Ok(id)
    }

    /// The IR tensor of operand `t`: an activation an earlier op produced, or a constant,
    /// declared (once) as a [`Constant`] whose int8 values go to the weight pool.
    pub(super) fn operand(&mut self, t: usize) -> Result<Tensor, String> {
        let Some(data) = self.data(t)? else {
            return Ok(self.ir.tensors[usize::from(self.activation(t)?)]);
        };
        if let Some(id) = self.ids.get(t).copied().flatten() {
            return Ok(self.ir.tensors[usize::from(id)]);
        }
        if self.tensor(t)?.type_ != INT8 {
            return Err(format!(
                "{} is a {} constant; int8 constants are supported",
                self.describe(t),
                type_name(self.tensor(t)?.type_)
            ));
        }
        // Broadcasting aligns trailing axes: `[c]` and `[h, w, c]` are `[1, 1, 1, c]` and
        // `[1, h, w, c]`.
        let shape = self.shape(t)?;
        let dim = |k: usize| shape.len().checked_sub(k).and_then(|i| shape.get(i)).copied().unwrap_or(1);
        let dims = [dim(3), dim(2), dim(1)].map(|d| u16::try_from(d).ok().filter(|&d| d > 0));
        let (Some(h), Some(w), Some(c)) = (dims[0], dims[1], dims[2]) else {
            return Err(format!("{} has shape {shape:?}; each dimension must be 1..=65535", self.describe(t)));
        };
        if shape.len() > 4 || (shape.len() == 4 && shape[0] != 1) {
            return Err(format!(
                "{} has shape {shape:?}; a constant operand has at most [1, h, w, c]",
                self.describe(t)
            ));
        }
        let (scale, zero_point) = self.activation_quant(t)?;
        let tensor = Tensor { h, w, c, scale, zero_point, dtype: DType::I8 };
        let id = self.ir.add_tensor(tensor);
        self.ids[t] = Some(id);
        if data.len() != tensor.bytes() {
            return Err(format!("{} holds {} bytes, its shape needs {}", self.describe(t), data.len(), tensor.bytes()));
        }
        let values = self.ir.push_weights(bytemuck::cast_slice(data));
        self.ir.constants.push(Constant { tensor: id, values });
        Ok(tensor)
    }

    /// The IR tensor that op input `k` will be (its quantization is needed before the op
    /// is pushed).
    pub(super) fn in_tensor(&self, op_inputs: &[usize], k: usize) -> Result<Tensor, String> {
        let t = *op_inputs.get(k).ok_or_else(|| format!("input {k} is missing"))?;
        Ok(self.ir.tensors[usize::from(self.activation(t)?)])
    }

    /// The quantization and channels op output `t` will get (its whole shape is checked when
    /// it is declared).
    pub(super) fn out_tensor(&self, t: usize) -> Result<Tensor, String> {
        let (scale, zero_point) = self.activation_quant(t)?;
        let dtype = self.dtype(t)?;
        let shape = self.shape(t)?;
        let c = shape.last().and_then(|&c| u16::try_from(c).ok()).filter(|&c| c > 0);
        let c = c.ok_or_else(|| format!("{} has shape {shape:?}; its channels must be 1..=65535", self.describe(t)))?;
        Ok(Tensor { h: 0, w: 0, c, scale, zero_point, dtype })
    }

    /// Per-tensor quantization of an activation: a positive scale and a zero point in its
    /// type's range; `(1, 0)` for a float tensor.
    pub(super) fn activation_quant(&self, t: usize) -> Result<(f32, i32), String> {
        let dtype = self.dtype(t)?;
        if dtype == DType::F32 {
            return Ok((1.0, 0));
        }
        let q = self.quant(t)?;
        if q.scales.len() != 1 {
            return Err(format!("{} has per-channel quantization; activations must be per-tensor", self.describe(t)));
        }
        let (scale, zero_point) = (q.scales[0], q.zero_points[0]);
        let range = if dtype == DType::U8 { 0..=255 } else { -128..=127 };
        if !(range.contains(&zero_point) && scale.is_finite() && scale > 0.0) {
            return Err(format!(
                "{} has scale {scale} and zero point {zero_point}; {} needs a positive scale and a zero point in {range:?}",
                self.describe(t),
                dtype.name()
            ));
        }
        Ok((scale, zero_point as i32))
    }

    /// An int8 constant weight tensor with the given shape and symmetric quantization.
    pub(super) fn weights(&self, t: usize, what: &str, shape: &[i32]) -> Result<(&'a [i8], Quant<'a>), String> {
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
    pub(super) fn bias(&self, op_inputs: &[usize], k: usize, n: usize) -> Result<Vec<i32>, String> {
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
}
pub(super) const OPTIONS_MISSING: &str = "its options are missing";

/// The tensors and options of the op being mapped.
pub(super) struct OpIo<'o> {
    /// TFLite tensor indices of the inputs (`usize::MAX`: an omitted optional input).
    pub(super) inputs: Vec<usize>,
    pub(super) output: usize,
    pub(super) op: fb::OperatorRef<'o>,
}

impl<'o> OpIo<'o> {
    /// The op's options, read only for the ops the importer maps: other ops may carry
    /// option tables this reader does not declare.
    pub(super) fn options(&self) -> Result<Option<fb::BuiltinOptionsRef<'o>>, String> {
        self.op.builtin_options().map_err(|e| format!("options unreadable: {e}"))
    }
}
