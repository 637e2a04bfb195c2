//! Per-patch tiles: walking back from a patch of a stage's output to the region every op of
//! the stage must compute (`no_std`, allocation-free).

use super::config::{Grid, PatchConfig};
use super::geometry::{input_region, split_axis, Region};
use crate::model::Model;

/// The tile of the output of op `end - 1` covered by patch `p` of `grid` (row-major).
pub fn stage_tile(model: &Model, end: u16, grid: Grid, p: usize) -> Region {
    let out = model.tensor(model.ops[end as usize - 1].output);
    let (i, j) = ((p / grid.nw as usize) as u16, (p % grid.nw as usize) as u16);
    let (y0, h) = split_axis(out.h, grid.nh, i);
    let (x0, w) = split_axis(out.w, grid.nw, j);
    Region { y0, x0, h, w }
}

/// The tile of the patch stage's output covered by patch `p` (row-major over the grid).
pub fn patch_tile(model: &Model, config: &PatchConfig, p: usize) -> Region {
    stage_tile(model, config.split, config.grid, p)
}

/// Fills `regions[i - start]` with the output region op `i` computes for patch `p` of the
/// stage of ops `start..end` over `grid`, and returns the bounding box of what the stage
/// reads of the tensors that exist before it (the model input, or the previous stage's
/// output), for reports.
///
/// Walking back in reverse graph order, a tensor read by several ops (a residual branch)
/// gets the bounding box of what its readers need.
pub fn span_regions(model: &Model, start: u16, end: u16, grid: Grid, p: usize, regions: &mut [Region]) -> Region {
    let (start, end) = (start as usize, end as usize);
    let stage = &mut regions[..end - start];
    stage.fill(Region::default());
    stage[end - start - 1] = stage_tile(model, end as u16, grid, p);
    let mut input = Region::default();
    for i in (start..end).rev() {
        let op = &model.ops[i];
        let out = stage[i - start];
        for t in op.input_ids() {
            let need = input_region(op, model.tensor(t), model.tensor(op.output), out);
            match model.ops[start..i].iter().rposition(|o| o.output == t) {
                Some(j) => stage[j] = stage[j].union(need),
                None if model.constant(t).is_none() => input = input.union(need),
                None => {}
            }
        }
    }
    input
}

/// Fills `regions[i]` with the output region op `i` computes for patch `p`, for every op of
/// the stage (`regions.len() >= split`), and returns the region of the model input it reads.
pub fn stage_regions(model: &Model, config: &PatchConfig, p: usize, regions: &mut [Region]) -> Region {
    span_regions(model, 0, config.split, config.grid, p, regions)
}
