//! Building a [`Plan`] on the host.

use super::memory::{layout, lower_bound, Interval, Order};
use super::{
    check_config, check_split, macs_for_rows, max_split, stage_regions, ExecPlan, PatchConfig, PlanError, Region,
    IN_FLASH,
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
    /// Arena bytes live while the op runs.
    pub live_bytes: usize,
}

/// A complete plan: layout, tiles and cost of a model under one patch configuration.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Plan {
    /// Model name.
    pub model: String,
    /// The configuration as requested.
    pub config: PatchConfig,
    /// Effective patch-stage length (0 for layer-wise, including 1x1 grids).
    pub split: u16,
    /// Input shape `[h, w, c]`.
    pub input_shape: [u16; 3],
    /// Output shape `[h, w, c]`.
    pub output_shape: [u16; 3],
    /// Per-op lines.
    pub ops: Vec<OpReport>,
    /// MACs of one layer-wise inference.
    pub macs: u64,
    /// MACs under this config (halos recomputed).
    pub planned_macs: u64,
    /// `(planned_macs - macs) / macs` in percent.
    pub recompute_overhead_pct: f64,
    /// Arena bytes (the peak of the layout).
    pub arena_peak_bytes: usize,
    /// No layout of these buffers can be smaller than this.
    pub arena_lower_bound_bytes: usize,
    /// Heuristic that produced the layout.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub layout_order: Order,
    /// Bytes of the input tensor (in the arena or in flash, per `config.input_in`).
    pub input_bytes: usize,
    /// Largest input tile `[h, w]` a patch reads (patch mode only).
    pub input_tile: Option<[u16; 2]>,
    /// Per tensor: arena offset or [`IN_FLASH`].
    pub offsets: Vec<u32>,
    /// `regions[p * split + i]`.
    pub regions: Vec<Region>,
}

impl Plan {
    /// The part the executors run from.
    pub fn exec(&self) -> ExecPlan<'_> {
        ExecPlan {
            split: self.split,
            patches: if self.split == 0 { 1 } else { self.config.patches() as u16 },
            input_in: self.config.input_in,
            arena_bytes: self.arena_peak_bytes as u32,
            offsets: &self.offsets,
            regions: &self.regions,
        }
    }
}

/// Splits that end a clean patch stage (all ops spatial, only the stage output crosses),
/// excluding 0.
pub fn valid_splits(model: &Model) -> Vec<u16> {
    (1..=max_split(model)).filter(|&s| check_split(model, s).is_ok()).collect()
}

fn shape(model: &Model, t: TensorId) -> [u16; 3] {
    let t = model.tensor(t);
    [t.h, t.w, t.c]
}

/// Plans `model` under `config`: validates both, computes every patch's tiles, lays out the
/// arena and counts MACs.
pub fn plan(model: &Model, config: PatchConfig) -> Result<Plan, PlanError> {
    model.validate()?;
    check_config(model, &config)?;
    let n = model.ops.len();
    let split = if config.is_layerwise() { 0 } else { config.split as usize };
    let patches = if split == 0 { 1 } else { config.patches() };

    // Tiles of every stage op for every patch, and the largest of each.
    let mut regions = vec![Region::default(); patches * split];
    let mut tile_max = vec![Region::default(); split];
    let mut tile_bytes = vec![0usize; split];
    let mut planned_macs_stage = vec![0u64; split];
    let mut input_tile: Option<[u16; 2]> = None;
    for p in 0..if split == 0 { 0 } else { patches } {
        let r = &mut regions[p * split..(p + 1) * split];
        let input = stage_regions(model, &config, p, r);
        let it = input_tile.get_or_insert([0, 0]);
        *it = [it[0].max(input.h), it[1].max(input.w)];
        for i in 0..split {
            let op = &model.ops[i];
            let bytes = r[i].pixels() * model.tensor(op.output).c as usize;
            if bytes > tile_bytes[i] {
                tile_bytes[i] = bytes;
                tile_max[i] = r[i];
            }
            planned_macs_stage[i] += macs_for_rows(model, op, r[i].h, r[i].w);
        }
    }

    // Storage: one buffer per tensor, except that RESHAPE output aliases its input.
    let nt = model.tensors.len();
    let mut storage: Vec<usize> = (0..nt).collect();
    for op in model.ops {
        if matches!(op.kind, OpKind::Reshape) {
            storage[op.output as usize] = storage[op.inputs[0] as usize];
        }
    }
    let flash_storage = (config.input_in == super::InputPlacement::Flash).then_some(storage[model.input as usize]);
    let mut first = vec![usize::MAX; nt];
    let mut last = vec![0usize; nt];
    let mut size = vec![0usize; nt];
    let mut used = vec![false; nt];
    let input_s = storage[model.input as usize];
    used[input_s] = true;
    first[input_s] = 0;
    size[input_s] = model.tensor(model.input).len();
    for (i, op) in model.ops.iter().enumerate() {
        let s = storage[op.output as usize];
        if s == op.output as usize {
            used[s] = true;
            // The stage output is assembled patch by patch: live from the first stage step.
            first[s] = if split > 0 && i == split - 1 { 0 } else { i };
            size[s] = if i + 1 < split { tile_bytes[i] } else { model.tensor(op.output).len() };
        }
        last[s] = last[s].max(i);
        for t in op.input_ids() {
            let s = storage[t as usize];
            last[s] = last[s].max(i);
        }
    }
    // Every patch reads the input again: it must survive the whole patch stage.
    if split > 0 {
        last[input_s] = last[input_s].max(split - 1);
    }
    let out_s = storage[model.output as usize];
    last[out_s] = last[out_s].max(n.saturating_sub(1));

    let arena_storages: Vec<usize> = (0..nt).filter(|&s| used[s] && Some(s) != flash_storage).collect();
    let intervals: Vec<Interval> = arena_storages
        .iter()
        .map(|&s| Interval { size: size[s], first: first[s], last: last[s].max(first[s]) })
        .collect();
    let lay = layout(&intervals);
    let mut storage_offset = vec![IN_FLASH; nt];
    for (k, &s) in arena_storages.iter().enumerate() {
        storage_offset[s] = lay.offsets[k] as u32;
    }
    let offsets: Vec<u32> = (0..nt).map(|t| storage_offset[storage[t]]).collect();

    let live_at =
        |step: usize| -> usize { intervals.iter().filter(|b| b.first <= step && step <= b.last).map(|b| b.size).sum() };
    let ops: Vec<OpReport> = model
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let macs = model.op_macs(i);
            let in_stage = i < split;
            OpReport {
                index: i,
                name: op.kind.name(),
                shape: shape(model, op.output),
                macs,
                planned_macs: if in_stage { planned_macs_stage[i] } else { macs },
                tile: in_stage.then(|| [tile_max[i].h, tile_max[i].w]),
                buffer_bytes: size[storage[op.output as usize]],
                offset: (offsets[op.output as usize] != IN_FLASH).then_some(offsets[op.output as usize]),
                live_bytes: live_at(i),
            }
        })
        .collect();
    let macs = model.macs();
    let planned_macs: u64 = ops.iter().map(|o| o.planned_macs).sum();
    Ok(Plan {
        model: model.name.to_string(),
        config,
        split: split as u16,
        input_shape: shape(model, model.input),
        output_shape: shape(model, model.output),
        ops,
        macs,
        planned_macs,
        recompute_overhead_pct: if macs == 0 { 0.0 } else { (planned_macs - macs) as f64 * 100.0 / macs as f64 },
        arena_peak_bytes: lay.peak,
        arena_lower_bound_bytes: lower_bound(&intervals),
        layout_order: lay.order,
        input_bytes: model.tensor(model.input).len(),
        input_tile,
        offsets,
        regions,
    })
}
