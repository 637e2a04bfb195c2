//! Executors: layer-wise and patch-based inference over one caller-provided arena.
//!
//! Both run the same kernels; the patch stage just hands them tiles. Every tensor lives at
//! the offset the plan gave it ([`ExecPlan::offsets`]); the executor never allocates. The
//! kernel set is a type parameter ([`Kernels`]): the `*_with` functions take it, the others
//! run the [`Reference`] kernels, the oracle.

use crate::kernels::{
    reference, AddArgs, Broadcast, ConvArgs, FcArgs, Kernels, MulArgs, PadArgs, PoolArgs, Reference, View, ViewMut,
};
use crate::model::{Conv, DType, Model, Op, OpKind, Pool, Span, TensorId, MAX_OP_INPUTS, MAX_OUTPUTS};
use crate::plan::{ExecPlan, InputPlacement, Region, IN_FLASH, NO_ROW_BUFFER};
use core::ops::Range;

/// Why an inference could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecError {
    /// The arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: u32,
        /// Bytes given.
        given: u32,
    },
    /// The input has the wrong number of bytes.
    InputSize {
        /// Bytes the model input has.
        expected: u32,
        /// Bytes given.
        given: u32,
    },
    /// The plan does not belong to this model (offsets or tiles do not match).
    PlanMismatch,
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::ArenaTooSmall { needed, given } => {
                write!(f, "arena of {given} B is smaller than the {needed} B the plan needs")
            }
            ExecError::InputSize { expected, given } => {
                write!(f, "input has {given} B but the model input tensor has {expected} B")
            }
            ExecError::PlanMismatch => write!(f, "the plan was made for a different model"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ExecError {}

/// Where a tensor's bytes are: an arena range, the caller's input, or a constant's values in
/// the weight pool.
#[derive(Clone, Copy)]
enum Place {
    Arena(usize),
    Input,
    Const(Span),
}

struct Ctx<'m, 'p> {
    model: &'m Model<'m>,
    plan: &'p ExecPlan<'p>,
}

impl Ctx<'_, '_> {
    fn place(&self, t: TensorId) -> Place {
        if let Some(values) = self.model.constant(t) {
            return Place::Const(values);
        }
        match self.plan.offsets[t as usize] {
            IN_FLASH => Place::Input,
            off => Place::Arena(off as usize),
        }
    }
}

/// Splits the arena into the output range (mutable) and the input ranges (shared); the plan
/// guarantees they do not overlap, and this checks it instead of trusting it.
fn borrow<'a>(
    arena: &'a mut [u8],
    input: &'a [i8],
    weights: &'a [i8],
    out: Range<usize>,
    ins: [Option<(Place, usize)>; MAX_OP_INPUTS],
) -> Result<(&'a mut [i8], [&'a [i8]; MAX_OP_INPUTS]), ExecError> {
    if out.end > arena.len() {
        return Err(ExecError::PlanMismatch);
    }
    let (below, rest) = arena.split_at_mut(out.start);
    let (out_bytes, above) = rest.split_at_mut(out.end - out.start);
    let (below, above): (&'a [u8], &'a [u8]) = (below, above);
    let mut res: [&'a [i8]; MAX_OP_INPUTS] = [&[]; MAX_OP_INPUTS];
    for (slot, src) in res.iter_mut().zip(ins) {
        *slot = match src {
            None => &[],
            Some((Place::Input, len)) => input.get(..len).ok_or(ExecError::PlanMismatch)?,
            Some((Place::Const(values), _)) => weights.get(values.range()).ok_or(ExecError::PlanMismatch)?,
            Some((Place::Arena(off), len)) => {
                let bytes = if off + len <= out.start {
                    &below[off..off + len]
                } else if off >= out.end {
                    above.get(off - out.end..off - out.end + len).ok_or(ExecError::PlanMismatch)?
                } else {
                    return Err(ExecError::PlanMismatch);
                };
                bytemuck::cast_slice(bytes)
            }
        };
    }
    Ok((bytemuck::cast_slice_mut(out_bytes), res))
}

/// How each input of an element-wise op broadcasts to its output.
fn broadcasts(model: &Model, op: &Op) -> [Broadcast; 2] {
    let out = model.tensor(op.output);
    [0, 1].map(|k: usize| {
        let x = model.tensor(op.inputs[k]);
        Broadcast { h: x.h != out.h, w: x.w != out.w, c: x.c != out.c }
    })
}

fn span<T>(pool: &[T], s: Span) -> &[T] {
    &pool[s.range()]
}

/// The kernel arguments of CONV_2D or DEPTHWISE_CONV_2D op `op`.
pub(crate) fn conv_args<'a>(model: &Model<'a>, c: &Conv, op: &Op) -> ConvArgs<'a> {
    let input = model.tensor(op.inputs[0]);
    let out = model.tensor(op.output);
    ConvArgs {
        kh: c.window.kh as usize,
        kw: c.window.kw as usize,
        sh: c.window.sh as usize,
        sw: c.window.sw as usize,
        pad_top: c.window.pad_top as usize,
        pad_left: c.window.pad_left as usize,
        in_h: input.h as usize,
        in_w: input.w as usize,
        filter: span(model.weights, c.filter),
        bias: span(model.params, c.bias),
        multiplier: span(model.params, c.multiplier),
        shift: span(model.params, c.shift),
        input_offset: -input.zero_point,
        output_offset: out.zero_point,
        clamp: c.clamp,
        packed: span(model.params, c.packed),
    }
}

fn pool_args(model: &Model, p: &Pool, op: &Op) -> PoolArgs {
    let input = model.tensor(op.inputs[0]);
    PoolArgs {
        kh: p.window.kh as usize,
        kw: p.window.kw as usize,
        sh: p.window.sh as usize,
        sw: p.window.sw as usize,
        pad_top: p.window.pad_top as usize,
        pad_left: p.window.pad_left as usize,
        in_h: input.h as usize,
        in_w: input.w as usize,
        clamp: p.clamp,
    }
}

/// Runs op `i`: its inputs are stored as `in_stored` rectangles, its output buffer holds
/// `out_stored`, and it computes `compute` (inside `out_stored`). An op with a row buffer
/// computes a whole output one row at a time through it.
fn run_op<K: Kernels>(
    ctx: &Ctx,
    arena: &mut [u8],
    input: &[i8],
    i: usize,
    in_stored: [Region; MAX_OP_INPUTS],
    out_stored: Region,
    compute: Region,
) -> Result<(), ExecError> {
    let row_buffer = ctx.plan.row_buffers[i];
    if row_buffer == NO_ROW_BUFFER {
        return run_op_into::<K>(ctx, arena, input, i, in_stored, None, out_stored, compute);
    }
    let out_t = ctx.model.tensor(ctx.model.ops[i].output);
    let Place::Arena(out_off) = ctx.place(ctx.model.ops[i].output) else {
        return Err(ExecError::PlanMismatch);
    };
    let (row_buffer, row) = (row_buffer as usize, out_t.w as usize * out_t.pixel_bytes());
    // Row buffers belong to layer-wise ops, which compute whole rows of a whole tensor.
    if compute.x0 != 0 || compute.w != out_t.w || out_stored != Region::full(out_t) {
        return Err(ExecError::PlanMismatch);
    }
    for y in compute.y0..compute.y0 + compute.h {
        let r = Region { y0: y, x0: 0, h: 1, w: out_t.w };
        run_op_into::<K>(ctx, arena, input, i, in_stored, Some(row_buffer), r, r)?;
        // Rows above the next row's window are dead: the plan put the output over them.
        let dst = out_off + y as usize * row;
        if dst + row > arena.len() || row_buffer + row > arena.len() {
            return Err(ExecError::PlanMismatch);
        }
        arena.copy_within(row_buffer..row_buffer + row, dst);
    }
    Ok(())
}

/// [`run_op`] writing to `out_at` instead of the output tensor's own offset.
#[allow(clippy::too_many_arguments)]
fn run_op_into<K: Kernels>(
    ctx: &Ctx,
    arena: &mut [u8],
    input: &[i8],
    i: usize,
    in_stored: [Region; MAX_OP_INPUTS],
    out_at: Option<usize>,
    out_stored: Region,
    compute: Region,
) -> Result<(), ExecError> {
    let model = ctx.model;
    let op = &model.ops[i];
    let out_t = model.tensor(op.output);
    let mut srcs: [Option<(Place, usize)>; MAX_OP_INPUTS] = [None; MAX_OP_INPUTS];
    let mut chans = [0usize; MAX_OP_INPUTS];
    // Views count bytes per pixel: channels for int8, 4 x channels for float.
    for (k, t) in op.input_ids().enumerate() {
        let c = model.tensor(t).pixel_bytes();
        chans[k] = c;
        srcs[k] = Some((ctx.place(t), in_stored[k].pixels() * c));
    }
    let Place::Arena(own_off) = ctx.place(op.output) else {
        // Only a RESHAPE of the flash input can live in flash: nothing to compute.
        return if matches!(op.kind, OpKind::Reshape) { Ok(()) } else { Err(ExecError::PlanMismatch) };
    };
    let out_off = out_at.unwrap_or(own_off);
    if matches!(op.kind, OpKind::Reshape) {
        if let Some((Place::Arena(off), _)) = srcs[0] {
            if off == out_off {
                return Ok(()); // aliased: same bytes, new shape
            }
        }
    }
    let out_len = out_stored.pixels() * out_t.pixel_bytes();
    let (out, ins) = borrow(arena, input, model.weights, out_off..out_off + out_len, srcs)?;
    let view = |k: usize| View { data: ins[k], stored: in_stored[k], c: chans[k] };
    let mut out_view = ViewMut { data: out, stored: out_stored, c: out_t.pixel_bytes() };
    match &op.kind {
        OpKind::Conv2d(c) => K::conv2d(&conv_args(model, c, op), &view(0), &mut out_view, compute),
        OpKind::DepthwiseConv2d(c) => K::depthwise_conv2d(&conv_args(model, c, op), &view(0), &mut out_view, compute),
        OpKind::AveragePool2d(p) => K::average_pool(&pool_args(model, p, op), &view(0), &mut out_view, compute),
        OpKind::MaxPool2d(p) => K::max_pool(&pool_args(model, p, op), &view(0), &mut out_view, compute),
        OpKind::Add(a) => {
            let args = AddArgs {
                input1_offset: -model.tensor(op.inputs[0]).zero_point,
                input2_offset: -model.tensor(op.inputs[1]).zero_point,
                output_offset: out_t.zero_point,
                input1: a.input1,
                input2: a.input2,
                output: a.output,
                clamp: a.clamp,
            };
            K::add(&args, &view(0), &view(1), broadcasts(model, op), &mut out_view, compute)
        }
        OpKind::Mul(m) => {
            let args = MulArgs {
                input1_offset: -model.tensor(op.inputs[0]).zero_point,
                input2_offset: -model.tensor(op.inputs[1]).zero_point,
                output_offset: out_t.zero_point,
                output: m.output,
                clamp: m.clamp,
            };
            reference::mul(&args, &view(0), &view(1), broadcasts(model, op), &mut out_view, compute)
        }
        OpKind::Pad(p) => {
            let input_t = model.tensor(op.inputs[0]);
            let args = PadArgs {
                top: p.top as usize,
                left: p.left as usize,
                in_h: input_t.h as usize,
                in_w: input_t.w as usize,
                value: p.value,
            };
            reference::pad(&args, &view(0), &mut out_view, compute)
        }
        OpKind::Reshape => {
            let input_t = model.tensor(op.inputs[0]);
            if (input_t.h, input_t.w, input_t.c) == (out_t.h, out_t.w, out_t.c) {
                // Same shape (a RESHAPE in a patch stage): copy the tile through the PAD kernel.
                let args = PadArgs { top: 0, left: 0, in_h: input_t.h as usize, in_w: input_t.w as usize, value: 0 };
                reference::pad(&args, &view(0), &mut out_view, compute)
            } else {
                out_view.data.copy_from_slice(ins[0])
            }
        }
        OpKind::FullyConnected(fc) => {
            let args = FcArgs {
                filter: span(model.weights, fc.filter),
                bias: span(model.params, fc.bias),
                multiplier: span(model.params, fc.multiplier),
                shift: span(model.params, fc.shift),
                input_offset: -model.tensor(op.inputs[0]).zero_point,
                output_offset: out_t.zero_point,
                clamp: fc.clamp,
            };
            K::fully_connected(&args, ins[0], out_view.data)
        }
        OpKind::Softmax(s) => reference::softmax(s, ins[0], out_view.data, out_t.c as usize),
        OpKind::LogSoftmax(s) => reference::log_softmax(s, ins[0], out_view.data, out_t.c as usize),
        OpKind::Mean(p) => {
            let input_t = model.tensor(op.inputs[0]);
            let dims = [input_t.h, input_t.w, input_t.c].map(usize::from);
            reference::mean(p, (input_t.zero_point, out_t.zero_point), dims, ins[0], out_view.data)
        }
        OpKind::Activation(_, a) => {
            let zero_points = (model.tensor(op.inputs[0]).zero_point, out_t.zero_point);
            reference::activation(a, zero_points, &view(0), &mut out_view, compute)
        }
        OpKind::Prelu(p) => {
            let zero_points =
                (model.tensor(op.inputs[0]).zero_point, model.tensor(op.inputs[1]).zero_point, out_t.zero_point);
            reference::prelu(p, zero_points, &view(0), &view(1), broadcasts(model, op), &mut out_view, compute)
        }
        OpKind::Logistic(l) => {
            reference::logistic(l, model.tensor(op.inputs[0]).zero_point, &view(0), &mut out_view, compute)
        }
        OpKind::HardSwish(h) => {
            let zero_points = (model.tensor(op.inputs[0]).zero_point, out_t.zero_point);
            reference::hard_swish(h, zero_points, &view(0), &mut out_view, compute)
        }
        OpKind::Relu6(c) => reference::clamp_raw(*c, &view(0), &mut out_view, compute),
        OpKind::Maximum | OpKind::Minimum => {
            let max = matches!(op.kind, OpKind::Maximum);
            reference::max_min(max, &view(0), &view(1), broadcasts(model, op), &mut out_view, compute)
        }
        OpKind::Concat(axis) => {
            let count = op.input_ids().count();
            let views: [View; MAX_OP_INPUTS] = core::array::from_fn(view);
            reference::concat(*axis, &views[..count], &mut out_view, compute)
        }
        OpKind::ReduceMax(axes) => {
            let input_t = model.tensor(op.inputs[0]);
            let dims = [input_t.h, input_t.w, input_t.c].map(usize::from);
            reference::reduce_max(*axes, dims, ins[0], out_view.data)
        }
        OpKind::ResizeBilinear(r) => {
            let input_t = model.tensor(op.inputs[0]);
            let sizes = [input_t.h, input_t.w, out_t.h, out_t.w];
            reference::resize_bilinear(r, sizes, &view(0), &mut out_view, compute)
        }
        OpKind::ResizeNearest(r) => {
            let input_t = model.tensor(op.inputs[0]);
            let sizes = [input_t.h, input_t.w, out_t.h, out_t.w];
            reference::resize_nearest(r, sizes, &view(0), &mut out_view, compute)
        }
        OpKind::Transpose(t) => {
            let input_t = model.tensor(op.inputs[0]);
            let dims = [input_t.h, input_t.w, input_t.c].map(usize::from);
            reference::transpose(t.perm, dims, ins[0], out_view.data)
        }
        OpKind::Quantize(q) => {
            let input_t = model.tensor(op.inputs[0]);
            match input_t.dtype {
                DType::F32 => reference::quantize_f32(out_t.scale, out_t.zero_point, &view(0), &mut out_view, compute),
                dtype => reference::quantize_int(
                    (q.multiplier, q.shift),
                    (input_t.zero_point, out_t.zero_point),
                    dtype == DType::U8,
                    &view(0),
                    &mut out_view,
                    compute,
                ),
            }
        }
        OpKind::Dequantize => {
            let input_t = model.tensor(op.inputs[0]);
            reference::dequantize(input_t.scale, input_t.zero_point, &view(0), &mut out_view, compute)
        }
    }
    Ok(())
}

/// Runs one inference of `model` under `plan` in `arena` and returns the graph outputs.
///
/// `input` is the model input: raw bytes in its element type (int8, uint8, or little-endian
/// float), NHWC. With [`InputPlacement::Arena`] it is first
/// copied into the arena, as a sensor would write it; with [`InputPlacement::Flash`] it is
/// read in place.
pub fn run<'a>(model: &Model, plan: &ExecPlan, arena: &'a mut [u8], input: &'a [i8]) -> Result<Outputs<'a>, ExecError> {
    run_with::<Reference>(model, plan, arena, input)
}

/// [`run`] with kernel set `K`.
pub fn run_with<'a, K: Kernels>(
    model: &Model,
    plan: &ExecPlan,
    arena: &'a mut [u8],
    input: &'a [i8],
) -> Result<Outputs<'a>, ExecError> {
    struct Silent;
    impl Trace for Silent {}
    run_traced_with::<K>(model, plan, arena, input, &mut Silent)
}

/// [`run`], calling `observe(op_index, output)` for every op whose output tensor exists in
/// full: every op layer-wise; with a patch stage, its last op once all patches ran, then
/// every later op.
pub fn run_observed<'a>(
    model: &Model,
    plan: &ExecPlan,
    arena: &'a mut [u8],
    input: &'a [i8],
    observe: impl FnMut(usize, &[i8]),
) -> Result<Outputs<'a>, ExecError> {
    struct Full<F>(F);
    impl<F: FnMut(usize, &[i8])> Trace for Full<F> {
        fn full(&mut self, op: usize, output: &[i8]) {
            (self.0)(op, output);
        }
    }
    run_traced(model, plan, arena, input, &mut Full(observe))
}

/// What an executor reports as it goes (both methods default to doing nothing).
pub trait Trace {
    /// Op `op` finished its whole `output`: every op layer-wise; with a patch stage, its last
    /// op once all patches ran, then every later op.
    fn full(&mut self, op: usize, output: &[i8]) {
        let _ = (op, output);
    }

    /// A patch computed `region` of the output of op `op` of the patch stage (all stage ops
    /// but the last, whose output exists in full): `pixels` are its `region.h x region.w x c`
    /// values. Tiles of neighbouring patches overlap where halos are recomputed.
    fn tile(&mut self, op: usize, region: Region, pixels: &[i8]) {
        let _ = (op, region, pixels);
    }

    /// Op `op` ran once: layer-wise, or on one patch's tile (a per-op profile reads its
    /// clock here).
    fn ran(&mut self, op: usize) {
        let _ = op;
    }
}

/// [`run`], reporting every op output and every patch-stage tile to `trace`.
pub fn run_traced<'a>(
    model: &Model,
    plan: &ExecPlan,
    arena: &'a mut [u8],
    input: &'a [i8],
    trace: &mut impl Trace,
) -> Result<Outputs<'a>, ExecError> {
    run_traced_with::<Reference>(model, plan, arena, input, trace)
}

/// [`run_traced`] with kernel set `K`.
pub fn run_traced_with<'a, K: Kernels>(
    model: &Model,
    plan: &ExecPlan,
    arena: &'a mut [u8],
    input: &'a [i8],
    trace: &mut impl Trace,
) -> Result<Outputs<'a>, ExecError> {
    let in_t = model.tensor(model.input);
    if input.len() != in_t.bytes() {
        return Err(ExecError::InputSize { expected: in_t.bytes() as u32, given: input.len() as u32 });
    }
    if arena.len() < plan.arena_bytes as usize {
        return Err(ExecError::ArenaTooSmall { needed: plan.arena_bytes, given: arena.len() as u32 });
    }
    if plan.offsets.len() != model.tensors.len() || plan.row_buffers.len() != model.ops.len() {
        return Err(ExecError::PlanMismatch);
    }
    // Stages in op order, inside the model, each with all its tiles.
    let mut after = 0;
    let mut regions = 0;
    for s in plan.stages {
        if s.start < after || s.end <= s.start || s.end as usize > model.ops.len() || s.patches < 2 {
            return Err(ExecError::PlanMismatch);
        }
        if s.regions_at as usize != regions {
            return Err(ExecError::PlanMismatch);
        }
        after = s.end;
        regions += s.patches as usize * s.ops();
    }
    if plan.regions.len() != regions {
        return Err(ExecError::PlanMismatch);
    }
    let ctx = Ctx { model, plan };
    let full = |t: TensorId| Region::full(model.tensor(t));
    if plan.input_in == InputPlacement::Arena {
        let Place::Arena(off) = ctx.place(model.input) else {
            return Err(ExecError::PlanMismatch);
        };
        let dst = arena.get_mut(off..off + input.len()).ok_or(ExecError::PlanMismatch)?;
        dst.copy_from_slice(bytemuck::cast_slice(input));
    }

    let mut stages = plan.stages.iter().peekable();
    let mut i = 0;
    while i < model.ops.len() {
        let Some(stage) = stages.next_if(|s| usize::from(s.start) == i) else {
            // Layer by layer on whole tensors.
            let op = &model.ops[i];
            let mut in_stored = [Region::default(); MAX_OP_INPUTS];
            for (k, t) in op.input_ids().enumerate() {
                in_stored[k] = full(t);
            }
            run_op::<K>(&ctx, arena, input, i, in_stored, full(op.output), full(op.output))?;
            trace.ran(i);
            trace.full(i, tensor_bytes(&ctx, arena, input, op.output));
            i += 1;
            continue;
        };
        // A patch stage: every patch runs its ops on tiles, reading whole the tensors made
        // before the stage; the last op writes its tile of the whole stage output.
        let (start, end) = (usize::from(stage.start), usize::from(stage.end));
        for p in 0..usize::from(stage.patches) {
            for (i, op) in model.ops.iter().enumerate().take(end).skip(start) {
                let tile = |j: usize| stage.region(plan.regions, p, j).ok_or(ExecError::PlanMismatch);
                let mut in_stored = [Region::default(); MAX_OP_INPUTS];
                for (k, t) in op.input_ids().enumerate() {
                    in_stored[k] = match model.ops[start..i].iter().rposition(|o| o.output == t) {
                        Some(j) => tile(start + j)?,
                        None => full(t),
                    };
                }
                let last = i + 1 == end;
                let out_stored = if last { full(op.output) } else { tile(i)? };
                run_op::<K>(&ctx, arena, input, i, in_stored, out_stored, tile(i)?)?;
                trace.ran(i);
                if !last {
                    let Place::Arena(off) = ctx.place(op.output) else {
                        return Err(ExecError::PlanMismatch);
                    };
                    let len = tile(i)?.pixels() * model.tensor(op.output).pixel_bytes();
                    trace.tile(
                        i,
                        tile(i)?,
                        bytemuck::cast_slice(arena.get(off..off + len).ok_or(ExecError::PlanMismatch)?),
                    );
                }
            }
        }
        trace.full(end - 1, tensor_bytes(&ctx, arena, input, model.ops[end - 1].output));
        i = end;
    }

    let mut outputs = Outputs { parts: [&[]; MAX_OUTPUTS], count: model.outputs.len().min(MAX_OUTPUTS) };
    for (part, &t) in outputs.parts.iter_mut().zip(model.outputs) {
        *part = tensor_bytes(&ctx, arena, input, t);
    }
    Ok(outputs)
}

/// The graph outputs of one inference, in the graph's order: each output's raw bytes in its
/// own element type (int8, or little-endian float after a DEQUANTIZE).
#[derive(Clone, Copy, Debug)]
pub struct Outputs<'a> {
    parts: [&'a [i8]; MAX_OUTPUTS],
    count: usize,
}

impl<'a> Outputs<'a> {
    /// Number of graph outputs.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True for a model without outputs (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Output `k`.
    pub fn get(&self, k: usize) -> Option<&'a [i8]> {
        self.parts[..self.count].get(k).copied()
    }

    /// The outputs in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [i8]> + '_ {
        self.parts[..self.count].iter().copied()
    }

    /// All outputs' bytes, one after another (what `infer --output` writes and the device's
    /// output CRC covers).
    #[cfg(feature = "std")]
    pub fn concat(&self) -> Vec<i8> {
        self.iter().flatten().copied().collect()
    }
}

/// The bytes of a whole tensor (wherever it lives).
fn tensor_bytes<'a>(ctx: &Ctx, arena: &'a [u8], input: &'a [i8], t: TensorId) -> &'a [i8] {
    let len = ctx.model.tensor(t).bytes();
    match ctx.place(t) {
        Place::Input => &input[..len],
        Place::Arena(off) => bytemuck::cast_slice(&arena[off..off + len]),
        // Op outputs and graph outputs are never constants (validation).
        Place::Const(_) => &[],
    }
}
