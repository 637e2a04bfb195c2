//! Human and machine renderings of plans.

use harness::model::Model;
use harness::plan::{candidates, plan, valid_splits, Grid, InputPlacement, PatchConfig, Plan, PlanError};
use serde::Serialize;
use std::fmt::Write;

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shape(s: [u16; 3]) -> String {
    format!("{}x{}x{}", s[0], s[1], s[2])
}

/// Where a profiled run's time went, op by op and by operator kind, as `run --profile`
/// prints it.
pub fn op_profile_table(row: &crate::results::Row) -> String {
    let unit = if row.cycle_source == harness::record::CycleSource::QemuIcount { "instr (QEMU)" } else { "cycles" };
    let total: u64 = row.op_counts.iter().map(|c| c.count).sum();
    let pct = |n: u64| if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "profile of {} on {} ({} kernels, split {} {}), {unit}; in the patch stage, summed over its runs:",
        row.model, row.board, row.kernels, row.split, row.patches
    );
    let _ = writeln!(s, "{:>4} {:<24} {:>5} {:>14} {:>7}", "op", "kind", "runs", unit, "share");
    for c in &row.op_counts {
        let _ =
            writeln!(s, "{:>4} {:<24} {:>5} {:>14} {:>6.2}%", c.op, c.kind, c.runs, thousands(c.count), pct(c.count));
    }
    let mut kinds: Vec<(&str, u64)> = Vec::new();
    for c in &row.op_counts {
        match kinds.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, n)) => *n += c.count,
            None => kinds.push((c.kind, c.count)),
        }
    }
    kinds.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let by_kind: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {:.1}%", pct(*n))).collect();
    let _ = writeln!(s, "total {} {unit}; by kind: {}", thousands(total), by_kind.join(", "));
    s
}

/// The per-op table and totals of a plan, as printed by `patchbench plan`.
pub fn plan_table(model: &Model, p: &Plan) -> String {
    let mut s = String::new();
    let mode = if p.stages.is_empty() {
        "layer-wise".to_string()
    } else {
        let stages: Vec<String> = p
            .schedule
            .spans()
            .filter(|(_, st)| st.grid != harness::plan::Grid::ONE)
            .map(|(start, st)| format!("ops {start}..{} in a {} grid", st.end, st.grid))
            .collect();
        format!("schedule {}: patch stages = {}", p.schedule, stages.join(", "))
    };
    let _ =
        writeln!(s, "model {}  input {}  ({mode}, input in {})", p.model, shape(p.input_shape), p.input_in.as_str());
    let _ = writeln!(
        s,
        "{:>3}  {:<18} {:>11} {:>12} {:>12} {:>7} {:>9} {:>9} {:>9}",
        "op", "name", "output", "MACs", "planned MACs", "tile", "buffer B", "offset", "live B"
    );
    for o in &p.ops {
        let tile = o.tile.map(|[h, w]| format!("{h}x{w}")).unwrap_or_else(|| "-".into());
        let mut offset = o.offset.map(|v| v.to_string()).unwrap_or_else(|| "flash".into());
        if o.overwrites_input {
            offset.push('~');
        }
        let _ = writeln!(
            s,
            "{:>3}  {:<18} {:>11} {:>12} {:>12} {:>7} {:>9} {:>9} {:>9}",
            o.index,
            o.name,
            shape(o.shape),
            thousands(o.macs),
            thousands(o.planned_macs),
            tile,
            o.buffer_bytes,
            offset,
            o.live_bytes
        );
    }
    // Below zero when the patches skip pixels no later op reads, which layer-wise computes.
    let skipped = if p.planned_macs < p.macs { "; the patches skip pixels no later op reads" } else { "" };
    let _ = writeln!(
        s,
        "MACs            {} (planned {}, recompute overhead {:.2} %{skipped})",
        thousands(p.macs),
        thousands(p.planned_macs),
        p.recompute_overhead_pct
    );
    let _ = writeln!(
        s,
        "arena peak      {} B (lower bound for these buffers {} B; input {} B in {})",
        thousands(p.arena_peak_bytes as u64),
        thousands(p.arena_lower_bound_bytes as u64),
        thousands(p.input_bytes as u64),
        p.input_in.as_str()
    );
    if let Some([h, w]) = p.input_tile {
        let _ = writeln!(s, "input tile      up to {h}x{w} per patch");
    }
    let overlapping = p.ops.iter().filter(|o| o.overwrites_input).count();
    if overlapping > 0 {
        let _ = writeln!(
            s,
            "overlap         {overlapping} ops (offset~) write their output over their dying input, row by row through a row buffer"
        );
    }
    let splits = valid_splits(model);
    let _ = writeln!(s, "valid splits    {}", splits.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" "));
    s
}

/// The JSON object of `patchbench plan --json`.
#[derive(Serialize)]
pub struct PlanJson<'a> {
    /// Model name.
    pub model: &'a str,
    /// `[1, h, w, c]`.
    pub input_shape: [u16; 4],
    /// `[1, h, w, c]` of each graph output, in the graph's order.
    pub output_shapes: Vec<[u16; 4]>,
    /// The schedule, in its canonical text (`"13@4x4"`, `"6@2x2,13@3x3"`, `"layer-wise"`).
    pub schedule: harness::plan::Schedule,
    /// Ops in the patch stage of a one-stage schedule from op 0 (0: layer-wise or several
    /// stages; kept for readers of older output).
    pub split: u16,
    /// `"NxM"` of that stage (`1x1` otherwise).
    pub patches: Grid,
    /// `flash` or `arena`.
    pub input_in: InputPlacement,
    /// MACs of one layer-wise inference.
    pub macs: u64,
    /// MACs under this config.
    pub planned_macs: u64,
    /// Extra MACs in % of `macs`.
    pub recompute_overhead_pct: f64,
    /// Planned arena bytes.
    pub arena_peak_bytes: usize,
    /// Lower bound of any layout of the same buffers.
    pub arena_lower_bound_bytes: usize,
    /// Splits that can end a patch stage.
    pub valid_splits: Vec<u16>,
    /// Per-op lines.
    pub ops: &'a [harness::plan::OpReport],
}

impl<'a> PlanJson<'a> {
    /// Wraps a plan.
    pub fn new(model: &Model, p: &'a Plan) -> Self {
        let [h, w, c] = p.input_shape;
        PlanJson {
            model: &p.model,
            input_shape: [1, h, w, c],
            output_shapes: p.output_shapes.iter().map(|&[h, w, c]| [1, h, w, c]).collect(),
            schedule: p.schedule,
            split: p.config().map_or(0, |c| c.split),
            patches: p.config().map_or(harness::plan::Grid::ONE, |c| c.grid),
            input_in: p.input_in,
            macs: p.macs,
            planned_macs: p.planned_macs,
            recompute_overhead_pct: p.recompute_overhead_pct,
            arena_peak_bytes: p.arena_peak_bytes,
            arena_lower_bound_bytes: p.arena_lower_bound_bytes,
            valid_splits: valid_splits(model),
            ops: &p.ops,
        }
    }
}

/// One line of a config sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// Ops in the patch stage.
    pub split: u16,
    /// The patch grid.
    pub patches: Grid,
    /// Stage output `[h, w, c]` (empty for layer-wise).
    pub stage_output: Option<[u16; 3]>,
    /// Planned arena bytes.
    pub arena_peak_bytes: usize,
    /// Recompute overhead in %.
    pub recompute_overhead_pct: f64,
    /// True when no other config has both a smaller-or-equal arena and overhead with one of
    /// them smaller, and no config before it (layer-wise first) has the same arena and
    /// overhead: a config that only ties another is not marked.
    pub pareto: bool,
}

/// Plans every candidate config ([`candidates`]: layer-wise and every valid split with
/// every grid up to `max_grid x max_grid`, square and not), marking the Pareto front of
/// (arena, overhead).
pub fn sweep(model: &Model, max_grid: u16, base: PatchConfig) -> Result<Vec<SweepRow>, PlanError> {
    use rayon::prelude::*;
    let configs = candidates(model, max_grid, base.input_in);
    let mut rows = configs
        .par_iter()
        .map(|&c| {
            let p = plan(model, c)?;
            let stage_output = (c.split > 0).then(|| {
                let out = model.tensor(model.ops[c.split as usize - 1].output);
                [out.h, out.w, out.c]
            });
            Ok(SweepRow {
                split: c.effective().split,
                patches: c.effective().grid,
                stage_output,
                arena_peak_bytes: p.arena_peak_bytes,
                recompute_overhead_pct: p.recompute_overhead_pct,
                pareto: false,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    mark_pareto(&mut rows, |r| (r.arena_peak_bytes as f64, r.recompute_overhead_pct));
    Ok(rows)
}

/// Marks `pareto` on the rows whose `(a, b)` (both minimized) no other row beats, keeping
/// only the first of rows with equal values.
fn mark_pareto(rows: &mut [SweepRow], value: impl Fn(&SweepRow) -> (f64, f64)) {
    let values: Vec<(f64, f64)> = rows.iter().map(&value).collect();
    let front = pareto_front(&values);
    for (r, on) in rows.iter_mut().zip(front) {
        r.pareto = on;
    }
}

/// For points `(a, b)`, both minimized: true where no other point is at least as good in
/// both and better in one, and no earlier point is equal (ties keep their first).
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| {
            !points
                .iter()
                .enumerate()
                .any(|(j, &(oa, ob))| (oa <= a && ob <= b && (oa < a || ob < b)) || (j < i && oa == a && ob == b))
        })
        .collect()
}

/// The sweep as a table, Pareto-optimal rows starred.
pub fn sweep_table(model_name: &str, rows: &[SweepRow]) -> String {
    let mut s = String::new();
    let layer = rows.first().map(|r| r.arena_peak_bytes).unwrap_or(1).max(1);
    let _ = writeln!(s, "model {model_name}: {} configs, * = Pareto-optimal (arena, overhead)", rows.len());
    let _ = writeln!(
        s,
        "{:>5} {:>7} {:>13} {:>12} {:>9} {:>10}",
        "split", "patches", "stage output", "arena B", "vs layer", "overhead %"
    );
    for r in rows {
        let stage = r.stage_output.map(shape).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "{:>5} {:>7} {:>13} {:>12} {:>8.2}x {:>10.2}{}",
            r.split,
            r.patches.to_string(),
            stage,
            thousands(r.arena_peak_bytes as u64),
            layer as f64 / r.arena_peak_bytes as f64,
            r.recompute_overhead_pct,
            if r.pareto { " *" } else { "" }
        );
    }
    s
}

/// The configs worth a look: the Pareto front of a [`sweep`] without ties (the first, and
/// so the smallest, config of equal arena and overhead) and without configs that need as
/// much arena as layer-wise.
pub fn best_configs(rows: &[SweepRow]) -> Vec<&SweepRow> {
    let layer = rows.first().map_or(usize::MAX, |r| r.arena_peak_bytes);
    let mut best: Vec<&SweepRow> = rows.iter().skip(1).filter(|r| r.pareto && r.arena_peak_bytes < layer).collect();
    best.sort_by_key(|r| std::cmp::Reverse(r.arena_peak_bytes));
    best
}

/// [`best_configs`] as lines under the layer-wise plan.
pub fn best_configs_table(rows: &[SweepRow], max_grid: u16) -> String {
    let mut s = String::new();
    let layer = rows.first().map_or(1, |r| r.arena_peak_bytes).max(1);
    let best = best_configs(rows);
    if best.is_empty() {
        let _ = writeln!(
            s,
            "best patch configs: none needs less arena than layer-wise (grids up to {max_grid}x{max_grid})"
        );
        return s;
    }
    let _ = writeln!(
        s,
        "best patch configs (Pareto front of arena and recompute overhead, grids up to {max_grid}x{max_grid}; `--sweep` lists every config)"
    );
    let _ = writeln!(s, "{:>5} {:>7} {:>12} {:>9} {:>10}", "split", "patches", "arena B", "vs layer", "overhead %");
    for r in best {
        let _ = writeln!(
            s,
            "{:>5} {:>7} {:>12} {:>8.2}x {:>10.2}",
            r.split,
            r.patches.to_string(),
            thousands(r.arena_peak_bytes as u64),
            layer as f64 / r.arena_peak_bytes as f64,
            r.recompute_overhead_pct
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_not_pareto_optimal_and_best_configs_need_a_gain() {
        let row = |split, n, arena, overhead| SweepRow {
            split,
            patches: Grid::new(n, n),
            stage_output: None,
            arena_peak_bytes: arena,
            recompute_overhead_pct: overhead,
            pareto: false,
        };
        let mut rows = [
            row(0, 1, 100, 0.0),
            row(1, 2, 100, 0.0), // only ties layer-wise
            row(2, 2, 40, 5.0),
            row(3, 2, 40, 5.0), // ties the row before: the smaller split stays
            row(3, 3, 60, 1.0),
            row(4, 2, 50, 9.0), // dominated by 3:3x3
        ];
        mark_pareto(&mut rows, |r| (r.arena_peak_bytes as f64, r.recompute_overhead_pct));
        let marked: Vec<bool> = rows.iter().map(|r| r.pareto).collect();
        assert_eq!(marked, [true, false, true, false, true, false]);
        let best: Vec<(u16, u16)> = best_configs(&rows).iter().map(|r| (r.split, r.patches.nh)).collect();
        assert_eq!(best, [(3, 3), (2, 2)], "largest arena (least overhead) first");
        assert!(best_configs_table(&rows[..2], 8).contains("none needs less arena than layer-wise"));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(23_456_789), "23,456,789");
    }

    #[test]
    fn a_width_one_model_is_helped_by_row_grids_only() {
        use harness::zoo::{Act, Builder};
        // A keyword-spotting shape: 98 frames x 1 x 40 features, convolutions along time.
        let (mut b, input) = Builder::new("kws-w1", 98, 1, 40, 7);
        let mut x = b.conv(input, 64, 3, 1, Act::Relu);
        for _ in 0..3 {
            x = b.dwconv(x, 3, 1, Act::Relu);
            x = b.conv(x, 64, 1, 1, Act::Relu);
        }
        x = b.conv(x, 32, 3, 2, Act::Relu);
        let flat = b.flatten(x);
        let logits = b.fc(flat, 12, Act::None);
        let out = b.softmax(logits);
        let m = b.finish(out);
        let model = m.as_model();
        let rows = sweep(&model, 8, PatchConfig::LAYERWISE).unwrap();
        assert!(rows.iter().all(|r| r.patches.nw == 1), "a width-1 stage output only takes Nx1 grids");
        let best = best_configs(&rows);
        assert!(!best.is_empty(), "{}", sweep_table("kws-w1", &rows));
        let layer = rows[0].arena_peak_bytes;
        assert!(best.iter().all(|r| r.arena_peak_bytes < layer && r.patches.nh > 1));
        let table = best_configs_table(&rows, 8);
        assert!(table.contains("x1 "), "{table}");
    }
}
