//! Per-patch tiles: walking back from a patch of the stage output to the region every stage
//! op must compute (`no_std`, allocation-free).

use super::config::PatchConfig;
use super::geometry::{input_region, split_axis, Region};
use crate::model::Model;

/// The tile of the patch stage's output covered by patch `p` (row-major over the grid).
pub fn patch_tile(model: &Model, config: &PatchConfig, p: usize) -> Region {
    let out = model.tensor(model.ops[config.split as usize - 1].output);
    let (i, j) = ((p / config.grid.nw as usize) as u16, (p % config.grid.nw as usize) as u16);
    let (y0, h) = split_axis(out.h, config.grid.nh, i);
    let (x0, w) = split_axis(out.w, config.grid.nw, j);
    Region { y0, x0, h, w }
}

/// Fills `regions[i]` with the output region op `i` computes for patch `p`, for every op of
/// the stage (`regions.len() >= split`), and returns the region of the model input it reads.
///
/// Walking back in reverse graph order, a tensor read by several ops (a residual branch)
/// gets the bounding box of what its readers need.
pub fn stage_regions(model: &Model, config: &PatchConfig, p: usize, regions: &mut [Region]) -> Region {
    let split = config.split as usize;
    let stage = &mut regions[..split];
    stage.fill(Region::default());
    stage[split - 1] = patch_tile(model, config, p);
    let mut input = Region::default();
    for i in (0..split).rev() {
        let op = &model.ops[i];
        let out = stage[i];
        for t in op.input_ids() {
            let need = input_region(op, model.tensor(t), model.tensor(op.output), out);
            if t == model.input {
                input = input.union(need);
            } else if let Some(j) = model.ops[..i].iter().rposition(|o| o.output == t) {
                stage[j] = stage[j].union(need);
            }
        }
    }
    input
}
