//! Folding shape arithmetic into constants at import.
//!
//! Keras writes a flatten as SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, and broadcasts
//! constants with TILE. Their inputs are constants or only a tensor's (static) shape, so their
//! outputs are constants too: they are computed here, once, and the ops leave the graph. An
//! op of these kinds that reads a run-time value is refused, naming it.

use super::fb;
use super::reader::{type_name, FLOAT32, INT16, INT32, INT64, INT8, UINT8};
use super::{ops, Decoded};
use std::collections::HashMap;

/// TFLite `TensorType` BOOL.
const BOOL: i8 = 6;

/// The constants folding computed, by TFLite tensor index (raw little-endian bytes, as a
/// buffer holds them), and which operators they replace.
#[derive(Default)]
pub(super) struct Folded {
    pub(super) values: HashMap<usize, Vec<u8>>,
    pub(super) ops: Vec<bool>,
}

/// True for the operators folding computes.
pub(super) fn folds(builtin: i32) -> bool {
    matches!(builtin, ops::SHAPE | ops::STRIDED_SLICE | ops::PACK | ops::TILE)
}

/// A constant: its element type, shape and raw bytes.
struct Value<'v> {
    dtype: i8,
    shape: Vec<usize>,
    bytes: &'v [u8],
}

impl Value<'_> {
    /// The values of an INT32 or INT64 constant.
    fn ints(&self, what: &str) -> Result<Vec<i64>, String> {
        match self.dtype {
            INT32 => Ok(self
                .bytes
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect()),
            INT64 => {
                Ok(self.bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect())
            }
            t => Err(format!("the {what} is {}; INT32 or INT64 expected", type_name(t))),
        }
    }
}

fn element_bytes(dtype: i8) -> Result<usize, String> {
    match dtype {
        INT8 | UINT8 | BOOL => Ok(1),
        INT16 => Ok(2),
        INT32 | FLOAT32 => Ok(4),
        INT64 => Ok(8),
        t => Err(format!("a {} constant cannot be folded", type_name(t))),
    }
}

/// Row-major strides of `shape`, in elements.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// Computes every SHAPE, STRIDED_SLICE, PACK and TILE of `ops`, in graph order (a folded
/// output may feed the next).
pub(super) fn fold(
    tensors: &[fb::Tensor],
    buffers: &[fb::Buffer],
    decoded: &[Decoded],
) -> Result<Folded, (usize, String)> {
    let mut folded = Folded { values: HashMap::new(), ops: vec![false; decoded.len()] };
    for (index, d) in decoded.iter().enumerate() {
        if !folds(d.builtin) {
            continue;
        }
        let f = Folder { tensors, buffers, values: &folded.values };
        let (shape, bytes) = f.op(d).map_err(|e| (index, e))?;
        let out = f.tensor(d.io.output).map_err(|e| (index, e))?;
        let declared: Vec<usize> =
            out.shape.as_deref().unwrap_or_default().iter().map(|&v| v.max(0) as usize).collect();
        if declared.iter().product::<usize>() != shape.iter().product::<usize>() {
            return Err((
                index,
                format!("folds to shape {shape:?}, but the file declares {declared:?} for its output"),
            ));
        }
        folded.values.insert(d.io.output, bytes);
        folded.ops[index] = true;
    }
    Ok(folded)
}

struct Folder<'a> {
    tensors: &'a [fb::Tensor],
    buffers: &'a [fb::Buffer],
    values: &'a HashMap<usize, Vec<u8>>,
}

impl<'a> Folder<'a> {
    fn tensor(&self, t: usize) -> Result<&'a fb::Tensor, String> {
        self.tensors.get(t).ok_or_else(|| format!("tensor index {t} does not exist (or a required input is omitted)"))
    }

    fn describe(&self, t: usize) -> String {
        match self.tensors.get(t).and_then(|t| t.name.as_deref()) {
            Some(n) => format!("tensor {t} `{n}`"),
            None => format!("tensor {t}"),
        }
    }

    /// Input `k` of `d` as a constant; an error naming it when it is computed at run time.
    fn value(&self, d: &Decoded, k: usize) -> Result<Value<'_>, String> {
        let t = *d.io.inputs.get(k).ok_or_else(|| format!("input {k} is missing"))?;
        let tensor = self.tensor(t)?;
        let shape: Vec<usize> =
            tensor.shape.as_deref().unwrap_or_default().iter().map(|&v| v.max(0) as usize).collect();
        let bytes = match self.values.get(&t) {
            Some(v) => v.as_slice(),
            None => match self.buffers.get(tensor.buffer as usize).and_then(|b| b.data.as_deref()) {
                Some(data) if !data.is_empty() => data,
                _ => {
                    return Err(format!(
                        "{} is computed at run time; patchbench folds {} only when its inputs are constants or shapes",
                        self.describe(t),
                        ops::builtin_name(d.builtin).unwrap_or("the op")
                    ))
                }
            },
        };
        let size = element_bytes(tensor.type_)?;
        if bytes.len() != shape.iter().product::<usize>() * size {
            return Err(format!(
                "{} holds {} bytes, its shape {shape:?} needs more or fewer",
                self.describe(t),
                bytes.len()
            ));
        }
        Ok(Value { dtype: tensor.type_, shape, bytes })
    }

    /// The folded output of `d`: its shape and raw bytes.
    fn op(&self, d: &Decoded) -> Result<(Vec<usize>, Vec<u8>), String> {
        match d.builtin {
            ops::SHAPE => self.shape(d),
            ops::STRIDED_SLICE => self.strided_slice(d),
            ops::PACK => self.pack(d),
            _ => self.tile(d),
        }
    }

    /// SHAPE: the input's static shape, as INT32 or INT64.
    fn shape(&self, d: &Decoded) -> Result<(Vec<usize>, Vec<u8>), String> {
        let t = *d.io.inputs.first().ok_or("input 0 is missing")?;
        let dims = self.tensor(t)?.shape.as_deref().unwrap_or_default();
        let bytes = match self.tensor(d.io.output)?.type_ {
            INT32 => dims.iter().flat_map(|v| v.to_le_bytes()).collect(),
            INT64 => dims.iter().flat_map(|&v| i64::from(v).to_le_bytes()).collect(),
            t => return Err(format!("its output is {}; INT32 or INT64 expected", type_name(t))),
        };
        Ok((vec![dims.len()], bytes))
    }

    /// STRIDED_SLICE as TFLite resolves it (`strided_slice_logic.h`: negative indices, masks,
    /// clamping, `offset` ends); ellipsis and new-axis masks are refused.
    fn strided_slice(&self, d: &Decoded) -> Result<(Vec<usize>, Vec<u8>), String> {
        let o = match d.io.options()? {
            Some(fb::BuiltinOptionsRef::StridedSliceOptions(o)) => {
                fb::StridedSliceOptions::try_from(o).map_err(|e| e.to_string())?
            }
            _ => fb::StridedSliceOptions::default(),
        };
        if o.ellipsis_mask != 0 || o.new_axis_mask != 0 {
            return Err("an ellipsis or new-axis mask; patchbench folds slices without them".into());
        }
        let x = self.value(d, 0)?;
        let (begin, end, step) =
            (self.value(d, 1)?.ints("begin")?, self.value(d, 2)?.ints("end")?, self.value(d, 3)?.ints("strides")?);
        let rank = x.shape.len();
        if begin.len() != end.len() || begin.len() != step.len() || begin.len() > rank {
            return Err(format!(
                "begin, end and strides of {}, {} and {} values for a rank-{rank} input",
                begin.len(),
                end.len(),
                step.len()
            ));
        }
        let bit = |mask: i32, k: usize| k < 32 && mask & (1 << k) != 0;
        // The input index each output position reads, per axis.
        let mut picks: Vec<Vec<usize>> = Vec::with_capacity(rank);
        let mut out_shape = Vec::new();
        for (k, &n) in x.shape.iter().enumerate() {
            let n = n as i64;
            if k >= begin.len() {
                picks.push((0..n as usize).collect());
                out_shape.push(n as usize);
                continue;
            }
            let s = step[k];
            if s == 0 {
                return Err(format!("stride 0 on axis {k}"));
            }
            let (lo, hi) = if s > 0 { (0, n) } else { (-1, n - 1) };
            let resolve = |v: i64| (if v < 0 { v + n } else { v }).clamp(lo, hi);
            let start = resolve(if bit(o.begin_mask, k) {
                if s > 0 {
                    i64::MIN / 2
                } else {
                    i64::MAX / 2
                }
            } else {
                begin[k]
            });
            let shrink = bit(o.shrink_axis_mask, k);
            let stop = if shrink {
                start + 1
            } else if bit(o.end_mask, k) {
                resolve(if s > 0 { i64::MAX / 2 } else { i64::MIN / 2 })
            } else {
                resolve(if o.offset { start + end[k] } else { end[k] })
            };
            let s = if shrink { 1 } else { s };
            let mut axis = Vec::new();
            let mut i = start;
            while (s > 0 && i < stop) || (s < 0 && i > stop) {
                axis.push(i as usize);
                i += s;
            }
            if shrink && axis.len() != 1 {
                return Err(format!("axis {k} shrinks to index {start}, outside its {n} elements"));
            }
            if !shrink {
                out_shape.push(axis.len());
            }
            picks.push(axis);
        }
        let size = element_bytes(x.dtype)?;
        let in_strides = strides(&x.shape);
        let mut bytes = Vec::new();
        let total: usize = picks.iter().map(Vec::len).product();
        for flat in 0..total {
            let (mut rest, mut at) = (flat, 0);
            for k in (0..rank).rev() {
                at += picks[k][rest % picks[k].len()] * in_strides[k];
                rest /= picks[k].len();
            }
            bytes.extend_from_slice(&x.bytes[at * size..][..size]);
        }
        Ok((out_shape, bytes))
    }

    /// PACK: the inputs (one shape and type) stacked along a new axis.
    fn pack(&self, d: &Decoded) -> Result<(Vec<usize>, Vec<u8>), String> {
        let axis = match d.io.options()? {
            Some(fb::BuiltinOptionsRef::PackOptions(o)) => o.axis().map_err(|e| e.to_string())?,
            _ => 0,
        };
        let values: Vec<Value> = (0..d.io.inputs.len()).map(|k| self.value(d, k)).collect::<Result<_, _>>()?;
        let first = values.first().ok_or("no inputs")?;
        if values.iter().any(|v| v.shape != first.shape || v.dtype != first.dtype) {
            return Err("inputs of different shapes or types".into());
        }
        let rank = first.shape.len() as i32;
        let a = if axis < 0 { axis + rank + 1 } else { axis };
        if !(0..=rank).contains(&a) {
            return Err(format!("axis {axis} for rank-{rank} inputs"));
        }
        let a = a as usize;
        // Each input contributes one block of its trailing axes per leading index.
        let block = first.shape[a..].iter().product::<usize>() * element_bytes(first.dtype)?;
        let outer: usize = first.shape[..a].iter().product();
        let mut bytes = Vec::with_capacity(block * outer * values.len());
        for i in 0..outer {
            for v in &values {
                bytes.extend_from_slice(&v.bytes[i * block..][..block]);
            }
        }
        let mut shape = first.shape.clone();
        shape.insert(a, values.len());
        Ok((shape, bytes))
    }

    /// TILE of a constant: each axis repeated `multiples` times.
    fn tile(&self, d: &Decoded) -> Result<(Vec<usize>, Vec<u8>), String> {
        let x = self.value(d, 0)?;
        let multiples = self.value(d, 1)?.ints("multiples")?;
        if multiples.len() != x.shape.len() || multiples.iter().any(|&m| m < 0) {
            return Err(format!("multiples {multiples:?} for an input of shape {:?}", x.shape));
        }
        let shape: Vec<usize> = x.shape.iter().zip(&multiples).map(|(&n, &m)| n * m as usize).collect();
        let size = element_bytes(x.dtype)?;
        let (in_strides, total) = (strides(&x.shape), shape.iter().product::<usize>());
        if total.saturating_mul(size) > 1 << 26 {
            return Err(format!("folds to {total} elements; a constant over 64 MiB is refused"));
        }
        let mut bytes = Vec::with_capacity(total * size);
        for flat in 0..total {
            let (mut rest, mut at) = (flat, 0);
            for k in (0..shape.len()).rev() {
                at += (rest % shape[k]) % x.shape[k] * in_strides[k];
                rest /= shape[k];
            }
            bytes.extend_from_slice(&x.bytes[at * size..][..size]);
        }
        Ok((shape, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::super::synth::{quant, Builder};
    use super::super::{import, import_mapped};
    use super::*;
    use harness::exec;
    use harness::plan::{plan, PatchConfig};

    /// An int8 constant `[2, 3, 4]` holding 0..24 in order.
    fn counting(s: &mut Builder) -> i32 {
        s.tensor("k", &[2, 3, 4], INT8, Some((0..24).collect()), quant(&[0.1], &[0], 0))
    }

    fn ints(s: &mut Builder, name: &str, values: &[i32]) -> i32 {
        s.bias(name, values)
    }

    /// Folds a STRIDED_SLICE of [`counting`] into an output of `shape`: its values.
    fn slice(begin: &[i32], end: &[i32], strides: &[i32], o: fb::StridedSliceOptions, shape: &[i32]) -> Vec<i8> {
        let mut s = Builder::new();
        let k = counting(&mut s);
        let (b, e, st) = (ints(&mut s, "b", begin), ints(&mut s, "e", end), ints(&mut s, "s", strides));
        let sliced = s.tensor("sliced", shape, INT8, None, quant(&[0.1], &[0], 0));
        s.op(ops::STRIDED_SLICE, &[k, b, e, st], &[sliced], Some(fb::BuiltinOptions::StridedSliceOptions(Box::new(o))));
        // The folded constant is read as MUL's operand.
        let dims: Vec<i32> = std::iter::repeat_n(1, 4 - shape.len()).chain(shape.iter().copied()).collect();
        let x = s.act("x", &dims, 1.0, 0);
        let y = s.act("y", &dims, 0.1, 0);
        s.op(ops::MUL, &[x, sliced], &[y], None);
        let m = import(&s.bytes(x, y), "slice").unwrap_or_else(|e| panic!("{e}"));
        let [k] = m.constants[..] else { panic!("one constant expected") };
        m.weights[k.values.range()].to_vec()
    }

    #[test]
    fn strided_slices_resolve_negative_indices_reverse_strides_and_masks() {
        // k[0:2, -1:0:-1, 3:0:-2]: rows 2, 1 and columns 3, 1, backwards.
        let o = fb::StridedSliceOptions::default();
        assert_eq!(slice(&[0, -1, 3], &[2, 0, 0], &[1, -1, -2], o, &[2, 2, 2]), [11, 9, 7, 5, 23, 21, 19, 17]);
        // k[:, 1, 1:]: begin and end masks on axis 0, an end mask on axis 2, axis 1 shrunk.
        let o = fb::StridedSliceOptions { begin_mask: 1, end_mask: 5, shrink_axis_mask: 2, ..Default::default() };
        assert_eq!(slice(&[1, 1, 1], &[1, 2, 0], &[1, 1, 1], o, &[2, 3]), [5, 6, 7, 17, 18, 19]);
        // Indices past the ends clamp; `offset` makes `end` relative to the resolved start;
        // axes past `begin`'s length are taken whole.
        let o = fb::StridedSliceOptions { offset: true, ..Default::default() };
        assert_eq!(slice(&[1, -9], &[5, 2], &[1, 1], o, &[1, 2, 4]), [12, 13, 14, 15, 16, 17, 18, 19]);
    }

    /// MUL of an input by a constant `[1, 1, 1, 3]`, tiled to the input's `[1, 2, 2, 3]` or
    /// broadcast.
    fn scaled(tiled: bool) -> Vec<u8> {
        let mut s = Builder::new();
        let x = s.act("x", &[1, 2, 2, 3], 0.5, 1);
        let k = s.tensor("k", &[1, 1, 1, 3], INT8, Some(vec![7, 250, 30]), quant(&[0.05], &[2], 0));
        let operand = if tiled {
            let multiples = s.bias("multiples", &[1, 2, 2, 1]);
            let big = s.tensor("big", &[1, 2, 2, 3], INT8, None, quant(&[0.05], &[2], 0));
            s.op(ops::TILE, &[k, multiples], &[big], None);
            big
        } else {
            k
        };
        let y = s.act("y", &[1, 2, 2, 3], 0.3, -4);
        s.op(ops::MUL, &[x, operand], &[y], None);
        s.bytes(x, y)
    }

    #[test]
    fn a_tiled_constant_computes_what_the_broadcast_one_does() {
        let input: Vec<i8> = (0..12).map(|i| (i * 23 - 120) as i8).collect();
        let run = |bytes: &[u8]| {
            let (m, sources) = import_mapped(bytes, "tile").unwrap_or_else(|e| panic!("{e}"));
            let model = m.as_model();
            let p = plan(&model, PatchConfig::LAYERWISE).unwrap();
            let mut arena = vec![0u8; p.arena_peak_bytes];
            (exec::run(&model, &p.exec(), &mut arena, &input).unwrap().concat(), sources.ops)
        };
        let (tiled, ops) = run(&scaled(true));
        // TILE left the graph: MUL is the file's operator 1.
        assert_eq!(ops, [1]);
        assert_eq!(tiled, run(&scaled(false)).0);
    }

    #[test]
    fn pack_stacks_along_its_axis_and_shape_gives_the_static_shape() {
        let mut s = Builder::new();
        let x = s.act("x", &[1, 2, 3, 4], 1.0, 0);
        let shape = s.tensor("shape", &[4], INT32, None, None);
        s.op(ops::SHAPE, &[x], &[shape], None);
        let other = s.bias("other", &[10, 20, 30, 40]);
        let packed = s.tensor("packed", &[4, 2], INT32, None, None);
        let options = fb::BuiltinOptions::PackOptions(Box::new(fb::PackOptions { values_count: 2, axis: -1 }));
        s.op(ops::PACK, &[shape, other], &[packed], Some(options));
        let y = s.act("y", &[1, 24], 1.0, 0);
        s.op(ops::RESHAPE, &[x, packed], &[y], None);
        let bytes = s.bytes(x, y);
        // Fold by hand, as the importer does, to see the values.
        let model = <fb::ModelRef as planus::ReadAsRoot>::read_as_root(&bytes).unwrap();
        let graph = model.subgraphs().unwrap().unwrap().get(0).unwrap().unwrap();
        let tensors: Vec<fb::Tensor> = super::super::read_vec(graph.tensors()).unwrap();
        let buffers: Vec<fb::Buffer> = super::super::read_vec(model.buffers()).unwrap();
        let codes: Vec<fb::OperatorCode> = super::super::read_vec(model.operator_codes()).unwrap();
        let decoded: Vec<Decoded> = graph
            .operators()
            .unwrap()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, op)| super::super::decode(&codes, i, op.unwrap()).unwrap())
            .collect();
        let folded = fold(&tensors, &buffers, &decoded).unwrap_or_else(|(i, e)| panic!("op {i}: {e}"));
        assert_eq!(folded.ops, [true, true, false]);
        let values: Vec<i32> = folded.values[&(packed as usize)]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values, [1, 10, 2, 20, 3, 30, 4, 40]);
    }

    #[test]
    fn shape_arithmetic_on_run_time_values_is_refused_naming_the_op() {
        let mut s = Builder::new();
        let x = s.act("x", &[1, 2, 2, 3], 1.0, 0);
        let (b, e, st) = (s.bias("b", &[0, 0, 0, 0]), s.bias("e", &[1, 2, 2, 2]), s.bias("s", &[1, 1, 1, 1]));
        let y = s.act("y", &[1, 2, 2, 2], 1.0, 0);
        s.op(ops::STRIDED_SLICE, &[x, b, e, st], &[y], None);
        let e = super::super::tests::refusal(&s.bytes(x, y));
        assert!(
            e.starts_with("op 0 (STRIDED_SLICE): tensor 0 `x` is computed at run time; patchbench folds STRIDED_SLICE only when its inputs are constants or shapes"),
            "{e}"
        );
        let mut s = Builder::new();
        let x = s.act("x", &[1, 2, 2, 3], 1.0, 0);
        let k = counting(&mut s);
        let (b, e, st) = (s.bias("b", &[0]), s.bias("e", &[1]), s.bias("s", &[1]));
        let sliced = s.tensor("sliced", &[1, 3, 4], INT8, None, None);
        let o = fb::StridedSliceOptions { ellipsis_mask: 1, ..Default::default() };
        s.op(ops::STRIDED_SLICE, &[k, b, e, st], &[sliced], Some(fb::BuiltinOptions::StridedSliceOptions(Box::new(o))));
        let y = s.act("y", &[1, 2, 2, 3], 1.0, 0);
        s.op(ops::RELU, &[x], &[y], None);
        let e = super::super::tests::refusal(&s.bytes(x, y));
        assert!(e.starts_with("op 0 (STRIDED_SLICE): an ellipsis or new-axis mask"), "{e}");
    }
}
