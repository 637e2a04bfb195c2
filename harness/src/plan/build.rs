//! Building a [`Plan`] on the host.

use super::memory::{layout_tied, live_by_step, lower_bound, Interval, Layout, Order, Tie, ALIGN};
use super::{
    check_schedule, check_split, macs_for_rows, max_split, overlap_lag, span_regions, ExecPlan, ExecStage, Grid,
    InputPlacement, PatchConfig, PlanError, Region, Schedule, IN_FLASH, NO_ROW_BUFFER,
};
use crate::model::{Model, OpKind, TensorId};

/// One op's line of a plan.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OpReport {
    /// Index in graph order.
    pub index: usize,
    /// TFLite operator name.
    pub name: &'static str,
    /// Output shape `[h, w, c]`.
    pub shape: [u16; 3],
    /// MACs of the op run once over its whole output (layer-wise).
    pub macs: u64,
    /// MACs of the op under this config (summed over patches in the patch stage).
    pub planned_macs: u64,
    /// Largest output tile `[h, w]` over the patches (patch stage only).
    pub tile: Option<[u16; 2]>,
    /// Bytes of the op's output buffer (a tile buffer in the patch stage).
    pub buffer_bytes: usize,
    /// Offset of that buffer in the arena (`None`: aliased into flash).
    pub offset: Option<u32>,
    /// The output overwrites the op's dying input as it is computed, one row at a time
    /// through a row buffer (layer-wise ops only).
    pub overwrites_input: bool,
    /// Arena bytes live while the op runs.
    pub live_bytes: usize,
}

/// A complete plan: layout, tiles and cost of a model under one schedule.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Plan {
    /// Model name.
    pub model: String,
    /// The schedule that runs ([`Schedule::effective`] of the one asked for).
    pub schedule: Schedule,
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// The patched stages as the executors run them (one-patch stages run layer-wise and are
    /// not listed).
    pub stages: Vec<ExecStage>,
    /// Input shape `[h, w, c]`.
    pub input_shape: [u16; 3],
    /// Shape `[h, w, c]` of each graph output.
    pub output_shapes: Vec<[u16; 3]>,
    /// Per-op lines.
    pub ops: Vec<OpReport>,
    /// MACs of one layer-wise inference.
    pub macs: u64,
    /// MACs under this schedule (halos recomputed).
    pub planned_macs: u64,
    /// `(planned_macs - macs) / macs` in percent: halo recompute, less the pixels no later op
    /// reads, which patches skip (so it can be negative).
    pub recompute_overhead_pct: f64,
    /// Arena bytes (the peak of the layout).
    pub arena_peak_bytes: usize,
    /// No layout of these buffers can be smaller than this.
    pub arena_lower_bound_bytes: usize,
    /// Heuristic that produced the layout.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub layout_order: Order,
    /// Bytes of the input tensor (in the arena or in flash, per `input_in`).
    pub input_bytes: usize,
    /// Largest tile a patch of the first stage reads of the tensor before it (the model
    /// input when that stage starts at op 0); `None` when layer-wise.
    pub input_tile: Option<[u16; 2]>,
    /// Per tensor: arena offset or [`IN_FLASH`].
    pub offsets: Vec<u32>,
    /// The tiles of every stage (see [`ExecStage::regions_at`]).
    pub regions: Vec<Region>,
    /// Per op: arena offset of its row buffer, or [`NO_ROW_BUFFER`].
    pub row_buffers: Vec<u32>,
}

impl Plan {
    /// The part the executors run from.
    pub fn exec(&self) -> ExecPlan<'_> {
        ExecPlan {
            stages: &self.stages,
            input_in: self.input_in,
            arena_bytes: self.arena_peak_bytes as u32,
            offsets: &self.offsets,
            regions: &self.regions,
            row_buffers: &self.row_buffers,
        }
    }

    /// The config of a one-stage recompute schedule from op 0 (or layer-wise); `None` for
    /// other schedules.
    pub fn config(&self) -> Option<PatchConfig> {
        PatchConfig::from_schedule(&self.schedule, self.input_in).ok().map(PatchConfig::effective)
    }

    /// The patched stage op `i` runs in, if any.
    pub fn stage_of(&self, i: usize) -> Option<&ExecStage> {
        self.stages.iter().find(|s| s.contains(i))
    }

    /// Every region op `i` computes in one inference: its tile in each patch of its stage,
    /// or its whole output.
    pub fn op_regions(&self, model: &Model, i: usize) -> Vec<Region> {
        match self.stage_of(i) {
            Some(s) => (0..usize::from(s.patches)).filter_map(|p| s.region(&self.regions, p, i)).collect(),
            None => vec![Region::full(model.tensor(model.ops[i].output))],
        }
    }
}

/// Splits that end a clean patch stage (all ops spatial, only the stage output crosses),
/// excluding 0.
pub fn valid_splits(model: &Model) -> Vec<u16> {
    (1..=max_split(model)).filter(|&s| check_split(model, s).is_ok()).collect()
}

/// The ends of every patch stage that can start at op `start` ([`super::check_span`]): what
/// a schedule's next stage may end at.
pub fn valid_ends(model: &Model, start: u16) -> Vec<u16> {
    (start + 1..=model.ops.len() as u16).filter(|&e| super::check_span(model, start, e).is_ok()).collect()
}

/// Every config the planner can build with grids up to `max_grid x max_grid` (square and
/// non-square, clipped to each stage output), layer-wise first: the one enumeration that
/// `plan --sweep`, `recommend` and the figures search. New kinds of config (several patch
/// stages, halo caching) join here.
pub fn candidates(model: &Model, max_grid: u16, input_in: super::InputPlacement) -> Vec<PatchConfig> {
    let mut out = vec![PatchConfig { input_in, ..PatchConfig::LAYERWISE }];
    for split in valid_splits(model) {
        let stage_out = model.tensor(model.ops[split as usize - 1].output);
        for nh in 1..=max_grid.min(stage_out.h) {
            for nw in 1..=max_grid.min(stage_out.w) {
                if (nh, nw) != (1, 1) {
                    out.push(PatchConfig { split, grid: super::Grid::new(nh, nw), input_in });
                }
            }
        }
    }
    out
}

fn shape(model: &Model, t: TensorId) -> [u16; 3] {
    let t = model.tensor(t);
    [t.h, t.w, t.c]
}

/// Planner switches (the defaults are what patchbench runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Let a layer-wise op write its output over its dying input, row by row
    /// ([`ExecPlan::row_buffers`]); off: every live tensor has bytes of its own.
    pub overlap: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { overlap: true }
    }
}

/// Plans `model` under `config` with the default [`PlanOptions`].
pub fn plan(model: &Model, config: PatchConfig) -> Result<Plan, PlanError> {
    plan_with(model, config, PlanOptions::default())
}

/// Plans `model` under `config`: validates both, computes every patch's tiles, lays out the
/// arena and counts MACs.
pub fn plan_with(model: &Model, config: PatchConfig, options: PlanOptions) -> Result<Plan, PlanError> {
    super::check_config(model, &config)?;
    plan_schedule(model, &config.schedule(), config.input_in, options)
}

/// Plans `model` under `schedule` with the input in `input_in`: validates both, computes
/// every patch's tiles, lays out the arena and counts MACs.
pub fn plan_schedule(
    model: &Model,
    schedule: &Schedule,
    input_in: InputPlacement,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    model.validate()?;
    check_schedule(model, schedule)?;
    let schedule = schedule.effective();
    let n = model.ops.len();

    // The patched stages, and every stage op's tiles for every patch, the largest of each.
    let mut stages: Vec<ExecStage> = Vec::new();
    let mut regions: Vec<Region> = Vec::new();
    let mut tile_max = vec![Region::default(); n];
    let mut tile_bytes = vec![0usize; n];
    let mut planned_macs_op: Vec<Option<u64>> = vec![None; n];
    let mut input_tile: Option<[u16; 2]> = None;
    for (start, st) in schedule.spans().filter(|(_, st)| st.grid != Grid::ONE) {
        let stage =
            ExecStage { start, end: st.end, patches: st.grid.patches() as u16, regions_at: regions.len() as u32 };
        let ops = stage.ops();
        let mut r = vec![Region::default(); ops];
        for p in 0..usize::from(stage.patches) {
            let input = span_regions(model, start, st.end, st.grid, p, &mut r);
            if stages.is_empty() {
                let it = input_tile.get_or_insert([0, 0]);
                *it = [it[0].max(input.h), it[1].max(input.w)];
            }
            for (k, region) in r.iter().enumerate() {
                let i = usize::from(start) + k;
                let op = &model.ops[i];
                let bytes = region.pixels() * model.tensor(op.output).pixel_bytes();
                if bytes > tile_bytes[i] {
                    tile_bytes[i] = bytes;
                    tile_max[i] = *region;
                }
                *planned_macs_op[i].get_or_insert(0) += macs_for_rows(model, op, region.h, region.w);
            }
            regions.extend_from_slice(&r);
        }
        stages.push(stage);
    }
    let in_stage = |i: usize| stages.iter().find(|s| s.contains(i));

    // Storage: one buffer per tensor, except that a RESHAPE output outside the patch stages
    // aliases its input (inside a stage it is a tile copy of its own).
    let nt = model.tensors.len();
    let mut storage: Vec<usize> = (0..nt).collect();
    for (i, op) in model.ops.iter().enumerate() {
        if matches!(op.kind, OpKind::Reshape) && in_stage(i).is_none() {
            storage[op.output as usize] = storage[op.inputs[0] as usize];
        }
    }
    let flash_storage = (input_in == InputPlacement::Flash).then_some(storage[model.input as usize]);
    let mut first = vec![usize::MAX; nt];
    let mut last = vec![0usize; nt];
    let mut size = vec![0usize; nt];
    let mut used = vec![false; nt];
    let input_s = storage[model.input as usize];
    used[input_s] = true;
    first[input_s] = 0;
    size[input_s] = model.tensor(model.input).bytes();
    for (i, op) in model.ops.iter().enumerate() {
        let s = storage[op.output as usize];
        let stage = in_stage(i);
        if s == op.output as usize {
            used[s] = true;
            let stage_end = stage.is_some_and(|st| i + 1 == usize::from(st.end));
            // A stage output is assembled patch by patch: live from the stage's first step.
            first[s] = match stage {
                Some(st) if stage_end => usize::from(st.start),
                _ => i,
            };
            size[s] = if stage.is_some() && !stage_end { tile_bytes[i] } else { model.tensor(op.output).bytes() };
        }
        last[s] = last[s].max(i);
        for t in op.input_ids() {
            let ts = storage[t as usize];
            last[ts] = last[ts].max(i);
            // Every patch reads again what was made before its stage: it must survive the
            // whole stage.
            if let Some(st) = stage {
                let made_before = model.ops[usize::from(st.start)..i].iter().all(|o| o.output != t);
                if made_before {
                    last[ts] = last[ts].max(usize::from(st.end) - 1);
                }
            }
        }
    }
    // The graph outputs are read after the last op.
    for &t in model.outputs {
        let s = storage[t as usize];
        last[s] = last[s].max(n.saturating_sub(1));
    }

    let arena_storages: Vec<usize> = (0..nt).filter(|&s| used[s] && Some(s) != flash_storage).collect();
    let intervals: Vec<Interval> = arena_storages
        .iter()
        .map(|&s| Interval { size: size[s], first: first[s], last: last[s].max(first[s]) })
        .collect();
    let mut interval_of = vec![None; nt];
    for (k, &s) in arena_storages.iter().enumerate() {
        interval_of[s] = Some(k);
    }

    // Layer-wise ops whose output may overwrite an input that dies with them.
    let mut overlaps: Vec<Overlap> = Vec::new();
    for (i, op) in model.ops.iter().enumerate().filter(|&(i, _)| options.overlap && in_stage(i).is_none()) {
        let out_s = storage[op.output as usize];
        let Some(later) = interval_of[out_s].filter(|_| out_s == op.output as usize) else { continue };
        let out = model.tensor(op.output);
        for t in op.input_ids() {
            let s = storage[t as usize];
            let Some(earlier) = interval_of[s] else { continue };
            if last[s] != i || s == out_s || model.outputs.iter().any(|&t| storage[t as usize] == s) {
                continue;
            }
            if let Some(lag) = overlap_lag(op, model.tensor(t), out) {
                let tie = Tie { earlier, later, lag: lag.next_multiple_of(ALIGN) };
                overlaps.push(Overlap { op: i, tie, row_bytes: out.w as usize * out.pixel_bytes() });
                break;
            }
        }
    }
    let chosen = choose_overlaps(&intervals, &overlaps);
    let (intervals, ties, lay) = with_overlaps(&intervals, &overlaps, &chosen);

    let mut storage_offset = vec![IN_FLASH; nt];
    for (k, &s) in arena_storages.iter().enumerate() {
        storage_offset[s] = lay.offsets[k] as u32;
    }
    let offsets: Vec<u32> = (0..nt).map(|t| storage_offset[storage[t]]).collect();
    let mut row_buffers = vec![NO_ROW_BUFFER; n];
    for (k, &c) in chosen.iter().enumerate() {
        row_buffers[overlaps[c].op] = lay.offsets[arena_storages.len() + k] as u32;
    }

    let live = live_by_step(&intervals, &ties);
    let ops: Vec<OpReport> = model
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let macs = model.op_macs(i);
            OpReport {
                index: i,
                name: op.kind.name(),
                shape: shape(model, op.output),
                macs,
                planned_macs: planned_macs_op[i].unwrap_or(macs),
                tile: in_stage(i).map(|_| [tile_max[i].h, tile_max[i].w]),
                buffer_bytes: size[storage[op.output as usize]],
                offset: (offsets[op.output as usize] != IN_FLASH).then_some(offsets[op.output as usize]),
                overwrites_input: row_buffers[i] != NO_ROW_BUFFER,
                live_bytes: live.get(i).copied().unwrap_or(0),
            }
        })
        .collect();
    let macs = model.macs();
    let planned_macs: u64 = ops.iter().map(|o| o.planned_macs).sum();
    Ok(Plan {
        model: model.name.to_string(),
        schedule,
        input_in,
        stages,
        input_shape: shape(model, model.input),
        output_shapes: model.outputs.iter().map(|&t| shape(model, t)).collect(),
        ops,
        macs,
        planned_macs,
        // Negative when the patches skip pixels no later op reads (a VALID window that drops a
        // border), which layer-wise computes anyway.
        recompute_overhead_pct: if macs == 0 { 0.0 } else { (planned_macs as f64 - macs as f64) * 100.0 / macs as f64 },
        arena_peak_bytes: lay.peak,
        arena_lower_bound_bytes: live.iter().copied().max().unwrap_or(0),
        layout_order: lay.order,
        input_bytes: model.tensor(model.input).bytes(),
        input_tile,
        offsets,
        regions,
        row_buffers,
    })
}

/// An op that may compute its output over its dying input (see [`overlap_lag`]).
struct Overlap {
    op: usize,
    tie: Tie,
    /// Bytes of one output row: the row buffer the op computes into.
    row_bytes: usize,
}

/// The intervals plus a row buffer for each chosen overlap, the ties, and their layout.
fn with_overlaps(intervals: &[Interval], overlaps: &[Overlap], chosen: &[usize]) -> (Vec<Interval>, Vec<Tie>, Layout) {
    let mut all = intervals.to_vec();
    let mut ties = Vec::with_capacity(chosen.len());
    for &c in chosen {
        let o = &overlaps[c];
        ties.push(o.tie);
        all.push(Interval { size: o.row_bytes, first: o.op, last: o.op });
    }
    let lay = layout_tied(&all, &ties);
    (all, ties, lay)
}

/// Which overlaps to use. Each saves bytes while its op runs but pins its output to its
/// input's place, and a chain of them drifts; so try none, all, adding one at a time (kept
/// unless the arena grows; in op order and in reverse) and dropping one at a time (dropped
/// when the arena shrinks), and keep the smallest arena (fewest overlaps among equals). No
/// choice can go below the live-bytes bound with all overlaps, so reaching it ends the search.
fn choose_overlaps(intervals: &[Interval], overlaps: &[Overlap]) -> Vec<usize> {
    let peak = |chosen: &[usize]| with_overlaps(intervals, overlaps, chosen).2.peak;
    let all: Vec<usize> = (0..overlaps.len()).collect();
    let bound = {
        let (ivs, ties, _) = with_overlaps(intervals, overlaps, &all);
        lower_bound(&ivs, &ties)
    };
    let mut best = (usize::MAX, Vec::new());
    let mut consider = |chosen: Vec<usize>, p: usize| {
        if (p, chosen.len()) < (best.0, best.1.len()) {
            best = (p, chosen);
        }
        (best.0 <= bound).then(|| best.1.clone())
    };
    if let Some(done) = consider(Vec::new(), peak(&[])).or_else(|| consider(all.clone(), peak(&all))) {
        return done;
    }
    // Adding from the first op and from the last: a chain drifts in one direction, so the
    // two orders keep different ends of it.
    for forward in [true, false] {
        let mut adding: Vec<usize> = Vec::new();
        let mut current = peak(&adding);
        for k in 0..overlaps.len() {
            let c = if forward { k } else { overlaps.len() - 1 - k };
            adding.push(c);
            let p = peak(&adding);
            if p <= current {
                current = p;
            } else {
                adding.pop();
            }
        }
        adding.sort_unstable();
        if let Some(done) = consider(adding, current) {
            return done;
        }
    }
    let mut dropping = all;
    let mut current = peak(&dropping);
    for c in (0..overlaps.len()).rev() {
        let without: Vec<usize> = dropping.iter().copied().filter(|&d| d != c).collect();
        let p = peak(&without);
        if p < current {
            current = p;
            dropping = without;
        }
    }
    consider(dropping, current);
    best.1
}
