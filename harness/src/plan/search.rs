//! Searching schedules (host side): msf-CNN's two problems as shortest paths over the cuts of
//! a model.
//!
//! A *cut* is a position between ops where exactly one tensor is live: the output of the op
//! before it (the model input at position 0). Every schedule runs from cut to cut: an edge
//! `a -> b` is either ops `a..b` layer by layer, or ops `a..b` as one recompute stage over a
//! grid of op `b - 1`'s output. Each edge has a cost in MACs and a peak of live bytes (the
//! whole tensor at `a`, the whole tensor at `b`, and the tile buffers live at each step in
//! between), so a schedule's MACs are the sum over its edges and its live peak the maximum:
//!
//! - **P2** (fewest MACs within an arena budget): the shortest path by MACs over the edges
//!   whose peak fits the budget;
//! - **P1** (least arena within a MAC factor): the smallest edge-peak threshold whose P2 path
//!   is within the MAC budget, found by bisection over the distinct edge peaks.
//!
//! Both are dynamic programs over (cut, stages used), not enumerations. The path found is then
//! planned for real ([`super::plan_schedule`]): the arena reported is the planner's layout,
//! which is the live peak plus whatever the layout cannot pack; P2 tightens its threshold by
//! that difference until the planned arena fits.

use super::build::{plan_schedule, Plan, PlanOptions};
use super::config::{check_span, Grid, InputPlacement};
use super::geometry::{macs_for_rows, Region};
use super::patch::span_regions;
use super::{PlanError, Schedule, Stage, Strategy, MAX_STAGES};
use crate::model::Model;

/// What to search for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// P1: the least arena whose planned MACs are within `max_mac_factor` x layer-wise.
    LeastArena {
        /// Planned MACs / layer-wise MACs allowed (1.0: no recompute).
        max_mac_factor: f64,
    },
    /// P2: the fewest planned MACs whose arena fits `arena_budget` bytes.
    FewestMacs {
        /// Arena bytes allowed.
        arena_budget: usize,
    },
}

/// Why a search found nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum SearchError {
    /// No schedule meets the objective's bound.
    Infeasible {
        /// The least arena any searched schedule reaches (for a budget below it).
        least_arena: usize,
    },
    /// The model or a planned schedule failed to plan.
    Plan(PlanError),
}

impl core::fmt::Display for SearchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SearchError::Infeasible { least_arena } => write!(
                f,
                "no schedule fits: the least arena any recompute schedule with grids up to 8x8 reaches is about {least_arena} B"
            ),
            SearchError::Plan(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SearchError {}

impl From<PlanError> for SearchError {
    fn from(e: PlanError) -> Self {
        SearchError::Plan(e)
    }
}

/// One way from a cut to a later one.
#[derive(Clone, Copy, Debug)]
struct Edge {
    from: usize,
    to: usize,
    /// `Grid::ONE`: layer by layer.
    grid: Grid,
    macs: u64,
    peak: usize,
}

/// The cuts of `model`: positions (0..=n) where the only live tensor is the one just made.
fn cuts(model: &Model) -> Vec<usize> {
    let n = model.ops.len();
    let mut out = vec![0];
    for c in 1..n {
        let made = |t: u16| model.ops[..c].iter().any(|o| o.output == t) || t == model.input;
        let crossing: Vec<u16> = model.ops[c..]
            .iter()
            .flat_map(|op| op.input_ids())
            .chain(model.outputs.iter().copied())
            .filter(|&t| model.constant(t).is_none() && made(t))
            .collect();
        let cut_tensor = model.ops[c - 1].output;
        if !crossing.is_empty() && crossing.iter().all(|&t| t == cut_tensor) {
            out.push(c);
        }
    }
    out.push(n);
    out
}

/// Bytes of the tensor live at cut `c` (the model input at 0, 0 when it stays in flash).
fn cut_bytes(model: &Model, c: usize, input_in: InputPlacement) -> usize {
    if c == 0 {
        return if input_in == InputPlacement::Arena { model.tensor(model.input).bytes() } else { 0 };
    }
    model.tensor(model.ops[c - 1].output).bytes()
}

/// The recompute stage of ops `a..b` over `grid`: its MACs and live peak.
fn stage_cost(model: &Model, a: usize, b: usize, grid: Grid, input_in: InputPlacement) -> (u64, usize) {
    let ops = b - a;
    let mut r = vec![Region::default(); ops];
    let mut tile_bytes = vec![0usize; ops];
    let mut macs = 0u64;
    for p in 0..grid.patches() {
        span_regions(model, a as u16, b as u16, grid, p, &mut r);
        for (k, region) in r.iter().enumerate() {
            let op = &model.ops[a + k];
            tile_bytes[k] = tile_bytes[k].max(region.pixels() * model.tensor(op.output).pixel_bytes());
            macs += macs_for_rows(model, op, region.h, region.w);
        }
    }
    // Tile buffer k lives from its op to its last reader in the stage (the last op writes
    // into the whole output instead).
    let mut last = (0..ops).collect::<Vec<_>>();
    for (k, op) in model.ops[a..b].iter().enumerate() {
        for t in op.input_ids() {
            if let Some(j) = model.ops[a..a + k].iter().rposition(|o| o.output == t) {
                last[j] = last[j].max(k);
            }
        }
    }
    let tiles = (0..ops)
        .map(|i| (0..ops - 1).filter(|&k| k <= i && i <= last[k]).map(|k| tile_bytes[k]).sum::<usize>())
        .max()
        .unwrap_or(0);
    (macs, cut_bytes(model, a, input_in) + model.tensor(model.ops[b - 1].output).bytes() + tiles)
}

/// Every edge between cuts: layer-wise runs, and recompute stages with grids up to
/// `max_grid` per side.
fn edges(model: &Model, layerwise: &Plan, max_grid: u16, input_in: InputPlacement) -> Vec<Edge> {
    let cuts = cuts(model);
    let mut out = Vec::new();
    for (x, &a) in cuts.iter().enumerate() {
        for &b in &cuts[x + 1..] {
            let macs = (a..b).map(|i| model.op_macs(i)).sum();
            let peak = layerwise.ops[a..b].iter().map(|o| o.live_bytes).max().unwrap_or(0);
            out.push(Edge { from: a, to: b, grid: Grid::ONE, macs, peak });
            if check_span(model, a as u16, b as u16).is_err() {
                continue;
            }
            let stage_out = model.tensor(model.ops[b - 1].output);
            for nh in 1..=max_grid.min(stage_out.h) {
                for nw in 1..=max_grid.min(stage_out.w) {
                    if (nh, nw) == (1, 1) {
                        continue;
                    }
                    let grid = Grid::new(nh, nw);
                    let (macs, peak) = stage_cost(model, a, b, grid, input_in);
                    out.push(Edge { from: a, to: b, grid, macs, peak });
                }
            }
        }
    }
    out
}

/// The fewest-MAC path from op 0 to the end over edges whose peak is at most `limit`, using
/// at most [`MAX_STAGES`] stages; `None` when there is none.
fn cheapest(n: usize, edges: &[Edge], limit: usize) -> Option<(u64, Vec<Edge>)> {
    // best[c][k]: fewest MACs to reach cut c with k stages, and the edge taken.
    let mut best: Vec<[Option<(u64, usize)>; MAX_STAGES + 1]> = vec![[None; MAX_STAGES + 1]; n + 1];
    best[0][0] = Some((0, usize::MAX));
    let mut order: Vec<usize> = (0..edges.len()).filter(|&e| edges[e].peak <= limit).collect();
    order.sort_by_key(|&e| edges[e].from);
    for e in order {
        let edge = &edges[e];
        for k in 0..=MAX_STAGES {
            let Some((macs, _)) = best[edge.from][k] else { continue };
            // A layer-wise run to the end needs no stage of its own.
            let k2 = if edge.grid == Grid::ONE && edge.to == n { k } else { k + 1 };
            if k2 > MAX_STAGES {
                continue;
            }
            let total = macs + edge.macs;
            if best[edge.to][k2].is_none_or(|(m, _)| total < m) {
                best[edge.to][k2] = Some((total, e));
            }
        }
    }
    let (k, &(macs, _)) =
        best[n].iter().enumerate().filter_map(|(k, b)| b.as_ref().map(|b| (k, b))).min_by_key(|(_, b)| b.0)?;
    // Walk back.
    let mut path = Vec::new();
    let (mut c, mut k) = (n, k);
    while c > 0 {
        let (_, e) = best[c][k]?;
        let edge = edges[e];
        path.push(edge);
        if !(edge.grid == Grid::ONE && edge.to == n) {
            k -= 1;
        }
        c = edge.from;
    }
    path.reverse();
    Some((macs, path))
}

/// The schedule of a path: a stage per edge, the layer-wise run to the end left out.
fn schedule_of(path: &[Edge], n: usize) -> Schedule {
    let stages: Vec<Stage> = path
        .iter()
        .filter(|e| !(e.grid == Grid::ONE && e.to == n))
        .map(|e| Stage { end: e.to as u16, grid: e.grid, strategy: Strategy::Recompute })
        .collect();
    Schedule::new(&stages).map(|s| s.effective()).unwrap_or_default()
}

/// Searches the recompute schedules of `model` (any number of stages at any cuts, grids up to
/// 8x8) for `objective`, and plans the one found.
pub fn search(model: &Model, input_in: InputPlacement, objective: Objective) -> Result<Plan, SearchError> {
    const MAX_GRID: u16 = 8;
    let options = PlanOptions::default();
    let layerwise = plan_schedule(model, &Schedule::LAYERWISE, input_in, options)?;
    let n = model.ops.len();
    let edges = edges(model, &layerwise, MAX_GRID, input_in);
    let mut peaks: Vec<usize> = edges.iter().map(|e| e.peak).collect();
    peaks.sort_unstable();
    peaks.dedup();
    // The least threshold with any path at all.
    let feasible = |limit: usize| cheapest(n, &edges, limit);
    let lo = peaks.partition_point(|&p| feasible(p).is_none());
    let least = peaks.get(lo).copied().ok_or(SearchError::Infeasible { least_arena: usize::MAX })?;
    // P2 over the edges made once: the fewest-MAC path under a live-peak threshold, planned,
    // the threshold tightened until the planned layout fits `arena_budget`.
    let fewest_macs = |arena_budget: usize| -> Result<Plan, SearchError> {
        let mut limit = arena_budget;
        loop {
            let Some((_, path)) = feasible(limit) else {
                return Err(SearchError::Infeasible { least_arena: least });
            };
            let p = plan_schedule(model, &schedule_of(&path, n), input_in, options)?;
            if p.arena_peak_bytes <= arena_budget {
                return Ok(p);
            }
            // The layout needs more than the live peak: ask the edges for that much less.
            let excess = p.arena_peak_bytes - arena_budget;
            limit = match limit.checked_sub(excess.max(1)) {
                Some(l) if l >= least => l,
                _ => return Err(SearchError::Infeasible { least_arena: least }),
            };
        }
    };
    match objective {
        Objective::FewestMacs { arena_budget } => fewest_macs(arena_budget),
        Objective::LeastArena { max_mac_factor } => {
            let budget = (layerwise.macs as f64 * max_mac_factor).floor() as u64;
            let within = |limit: usize| feasible(limit).filter(|(macs, _)| *macs <= budget);
            // Bisection: the first threshold whose cheapest path is within the MAC budget
            // (the cheapest path's MACs only fall as the threshold rises).
            let first = lo + peaks[lo..].partition_point(|&p| within(p).is_none());
            let limit = *peaks.get(first).ok_or(SearchError::Infeasible { least_arena: least })?;
            let (_, path) = within(limit).ok_or(SearchError::Infeasible { least_arena: least })?;
            let p = plan_schedule(model, &schedule_of(&path, n), input_in, options)?;
            // Other paths reach the same planned arena with fewer MACs (the threshold is on
            // live bytes, the arena is the layout's): P2 at that arena finds the cheapest.
            Ok(match fewest_macs(p.arena_peak_bytes) {
                Ok(q) if q.planned_macs < p.planned_macs => q,
                _ => p,
            })
        }
    }
}
