//! Which patch config to deploy: every config the planner can build, its total RAM and
//! cycles (measured where a results folder measured it on the board, else predicted by
//! the plan and the fitted [`CostModel`]), filtered by a RAM budget, the board's RAM and an
//! optional deadline, ordered by the objective.

use crate::boards::Board;
use crate::costmodel::{self, CostModel, HeldOut, Sample};
use crate::results::{ResultSet, Row, Status};
use crate::units::{Bytes, Deadline};
use anyhow::Context;
use harness::model::ModelBuf;
use harness::plan::{candidates, plan, Grid, InputPlacement, PatchConfig};
use serde::Serialize;

/// What to optimize within the constraints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Fewest cycles (instructions on QEMU).
    Latency,
    /// Least total RAM.
    Memory,
}

/// The question.
pub struct Request<'a> {
    /// The model.
    pub model: &'a ModelBuf,
    /// The board.
    pub board: &'a Board,
    /// Total RAM (arena + static + stack) allowed.
    pub budget: Bytes,
    /// Longest inference allowed.
    pub deadline: Option<Deadline>,
    /// What to optimize.
    pub objective: Objective,
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// Largest grid side searched.
    pub max_grid: u16,
}

/// One config with its figures.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// The schedule (`"13@4x4"`, `"layer-wise"`).
    pub schedule: harness::plan::Schedule,
    /// Ops in the patch stage.
    pub split: u16,
    /// The grid.
    pub patches: Grid,
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// Extra MACs in %.
    pub recompute_overhead_pct: f64,
    /// Planned arena bytes.
    pub arena_bytes: u64,
    /// Cost model's cycles (instructions on QEMU).
    pub predicted_cycles: f64,
    /// Planned arena + expected static and stack bytes.
    pub predicted_total_ram_bytes: u64,
    /// Median cycles of the latest `ok` row of this config on the board, if measured.
    pub measured_cycles: Option<u64>,
    /// Its total RAM.
    pub measured_total_ram_bytes: Option<u64>,
    /// A `does-not-fit` row says the image does not link for the board.
    #[serde(skip)]
    pub known_not_to_fit: bool,
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Objective::Latency => "latency",
            Objective::Memory => "memory",
        })
    }
}

impl Candidate {
    /// Cycles: measured where measured, else predicted.
    pub fn cycles(&self) -> f64 {
        self.measured_cycles.map_or(self.predicted_cycles, |c| c as f64)
    }

    /// Total RAM: measured where measured, else predicted.
    pub fn total_ram(&self) -> u64 {
        self.measured_total_ram_bytes.unwrap_or(self.predicted_total_ram_bytes)
    }

    /// The config.
    pub fn config(&self) -> PatchConfig {
        PatchConfig { split: self.split, grid: self.patches, input_in: self.input_in }
    }
}

/// The answer.
#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    /// The best admissible config (none when nothing meets the constraints).
    pub best: Option<Candidate>,
    /// Every admissible config, best first.
    pub candidates: Vec<Candidate>,
    /// Which constraint keeps the unconstrained optimum out: `none`, `ram-budget`,
    /// `board-ram`, `deadline`, or several joined by `+`; `infeasible` when nothing is
    /// admissible.
    pub binding: String,
    /// Held-out error of the cycles model (`None` when it is a default or too few rows).
    pub model_error: Option<HeldOut>,
    /// The config with the least total RAM of all (what to say when nothing fits).
    pub smallest: Candidate,
    /// Candidates searched.
    pub searched: usize,
    /// The cycles model used.
    pub cost_model: CostModel,
    /// The factor its predictions of this model were scaled by: the median of measured over
    /// predicted cycles of the model's measured configs on the board (`None`: none measured).
    pub correction: Option<f64>,
    /// Measured configs of the model on the board.
    pub measured_configs: usize,
    /// `instructions (QEMU)` or `cycles`.
    pub unit: &'static str,
}

/// The cycles model, static and stack bytes of a board, fitted on a result set.
pub struct BoardModel {
    /// Cycles.
    pub cost: CostModel,
    /// Expected `.data + .bss` bytes without the arena.
    pub static_bytes: u64,
    /// Expected stack high-water mark.
    pub stack_bytes: u64,
    /// Held-out error of `cost`.
    pub error: Option<HeldOut>,
    /// Measured rows it was fitted on.
    pub samples: Vec<Sample>,
}

/// Fewest rows a fit needs; below it, the board's default model is used.
const MIN_FIT_ROWS: usize = 4;

/// Fits the board's model on `set`'s `ok` rows of `board` (any model whose plan is known),
/// or falls back to the default of the board (or of its core).
pub fn board_model(set: &ResultSet, board: &Board) -> anyhow::Result<BoardModel> {
    let ours = |r: &&Row| r.board == board.name && r.kernels == board.kernels();
    let rows: Vec<&Row> = set.rows.iter().filter(ours).filter(|r| r.status == Status::Ok).collect();
    let samples = costmodel::samples(set, board);
    let max = |f: fn(&Row) -> Option<u64>| rows.iter().filter_map(|r| f(r)).max();
    let default = costmodel::default_for(board);
    let static_bytes = max(|r| r.static_ram_bytes).or(default.as_ref().map(|d| d.static_bytes)).unwrap_or(0);
    let stack_bytes = max(|r| r.stack_measured_bytes).or(default.as_ref().map(|d| d.stack_bytes)).unwrap_or(0);
    if samples.len() >= MIN_FIT_ROWS {
        let mut cost = costmodel::fit(&board.name, &samples).expect("samples are not empty");
        cost.kernels = board.kernels();
        cost.static_bytes = static_bytes;
        cost.stack_bytes = stack_bytes;
        let error = costmodel::held_out(&board.name, &samples);
        return Ok(BoardModel { cost, static_bytes, stack_bytes, error, samples });
    }
    let cost = default.with_context(|| {
        format!(
            "no cycles model for board {}: it has no default and the results given hold {} measured rows of it (a fit needs {MIN_FIT_ROWS}); run a sweep on it first and pass its folder with --results",
            board.name,
            samples.len()
        )
    })?;
    Ok(BoardModel { cost, static_bytes, stack_bytes, error: None, samples })
}

/// Answers `req` from `set` (which may be empty).
pub fn recommend(req: &Request, set: &ResultSet) -> anyhow::Result<Recommendation> {
    let m = req.model.as_model();
    let bm = board_model(set, req.board)?;
    let hash = format!("{:016x}", m.hash());
    let rows: Vec<&Row> = set
        .rows
        .iter()
        .filter(|r| r.board == req.board.name && r.kernels == req.board.kernels() && r.model_hash == hash)
        .collect();
    let configs = candidates(&m, req.max_grid, req.input_in);
    let searched = configs.len();
    // The model's own measurements on the board sharpen the predictions of its other
    // configs: the cycles model's error is mostly one factor per model (held-out errors are
    // offsets shared by a model's configs), and stack and static bytes belong to its images.
    let own: Vec<&Row> = rows.iter().filter(|r| r.status == Status::Ok && r.cycles_median.is_some()).copied().collect();
    let mut ratios: Vec<f64> = own
        .iter()
        .filter_map(|r| costmodel::sample(&m, r))
        .map(|s| s.cycles / bm.cost.predict(&s.work))
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let correction = (!ratios.is_empty()).then(|| costmodel::median(&ratios));
    let own_max = |f: fn(&Row) -> Option<u64>, layerwise: Option<bool>| {
        own.iter().filter(|r| layerwise.is_none_or(|l| r.schedule.is_layerwise() == l)).filter_map(|r| f(r)).max()
    };
    let static_bytes = own_max(|r| r.static_ram_bytes, None).unwrap_or(bm.static_bytes);
    // Patched images run other code than layer-wise ones: their own stack where measured.
    let stack_bytes = |layerwise: bool| {
        own_max(|r| r.stack_measured_bytes, Some(layerwise))
            .or_else(|| own_max(|r| r.stack_measured_bytes, None))
            .unwrap_or(bm.stack_bytes)
    };
    let all: Vec<Candidate> = {
        use rayon::prelude::*;
        configs
            .par_iter()
            .map(|&config| {
                let p = plan(&m, config)?;
                let work = costmodel::work(&m, &p);
                let config = config.effective();
                let row = rows.iter().find(|r| r.schedule == config.schedule() && r.input_in == config.input_in);
                let measured = row.filter(|r| r.status == Status::Ok);
                Ok(Candidate {
                    schedule: config.schedule(),
                    split: config.split,
                    patches: config.grid,
                    input_in: config.input_in,
                    recompute_overhead_pct: p.recompute_overhead_pct,
                    arena_bytes: p.arena_peak_bytes as u64,
                    predicted_cycles: (bm.cost.predict(&work) * correction.unwrap_or(1.0)).round(),
                    predicted_total_ram_bytes: p.arena_peak_bytes as u64
                        + static_bytes
                        + stack_bytes(p.stages.is_empty()),
                    measured_cycles: measured.and_then(|r| r.cycles_median),
                    measured_total_ram_bytes: measured.and_then(|r| r.total_ram_bytes),
                    known_not_to_fit: row.is_some_and(|r| r.status == Status::DoesNotFit),
                })
            })
            .collect::<Result<Vec<_>, harness::plan::PlanError>>()
            .with_context(|| format!("planning the candidates of {}", req.model.name))?
    };
    let deadline = req.deadline.map(|d| d.counts(req.board.cycle_source, req.board.clock_hz));
    let board_ram = u64::from(req.board.ram.length);
    let violations = |c: &Candidate| {
        let mut v = Vec::new();
        if c.total_ram() > req.budget.0 {
            v.push("ram-budget");
        }
        if c.total_ram() > board_ram || c.known_not_to_fit {
            v.push("board-ram");
        }
        if deadline.is_some_and(|d| c.cycles() > d) {
            v.push("deadline");
        }
        v
    };
    let order = |a: &Candidate, b: &Candidate| {
        let (ka, kb) = match req.objective {
            Objective::Latency => ((a.cycles(), a.total_ram() as f64), (b.cycles(), b.total_ram() as f64)),
            Objective::Memory => ((a.total_ram() as f64, a.cycles()), (b.total_ram() as f64, b.cycles())),
        };
        ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    };
    let mut sorted = all.clone();
    sorted.sort_by(order);
    let admissible: Vec<Candidate> = sorted.iter().filter(|c| violations(c).is_empty()).cloned().collect();
    let binding = match (admissible.first(), sorted.first()) {
        (None, _) => "infeasible".to_string(),
        (Some(best), Some(free)) if best.config() == free.config() => "none".to_string(),
        (Some(_), Some(free)) => {
            let v = violations(free);
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join("+")
            }
        }
        (Some(_), None) => "none".to_string(),
    };
    let smallest = all
        .iter()
        .min_by(|a, b| a.total_ram().cmp(&b.total_ram()).then(a.cycles().total_cmp(&b.cycles())))
        .cloned()
        .context("the model has no config (not even layer-wise)")?;
    Ok(Recommendation {
        best: admissible.first().cloned(),
        candidates: admissible,
        binding,
        model_error: bm.error,
        smallest,
        searched,
        cost_model: bm.cost,
        correction,
        measured_configs: own.len(),
        unit: req.board.cycle_source.unit(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boards;

    fn empty() -> ResultSet {
        ResultSet::empty()
    }

    #[test]
    fn a_tight_budget_binds_and_an_impossible_one_says_what_is_reachable() {
        let m = crate::load_model("mbv2-w0.35-r144").unwrap();
        let board = boards::find("qemu-m4").unwrap();
        let req = |budget: u64| Request {
            model: &m,
            board: &board,
            budget: Bytes(budget),
            deadline: None,
            objective: Objective::Latency,
            input_in: InputPlacement::Flash,
            max_grid: 4,
        };
        let roomy = recommend(&req(4 << 20), &empty()).unwrap();
        assert_eq!(roomy.binding, "none");
        let best = roomy.best.as_ref().unwrap();
        // Without a RAM limit: the fastest predicted config of all (with the DSP kernels that
        // may be a patch stage, whose ops make fewer kernel calls than row-by-row ones).
        assert!(roomy.candidates.iter().all(|c| best.cycles() <= c.cycles()), "the fastest config");
        let tight = recommend(&req(100 * 1024), &empty()).unwrap();
        assert_eq!(tight.binding, "ram-budget");
        let best = tight.best.as_ref().unwrap();
        assert!(best.split > 0 && best.total_ram() <= 100 * 1024);
        assert!(tight.candidates.windows(2).all(|w| w[0].cycles() <= w[1].cycles()), "best first");
        assert!(tight.candidates.iter().all(|c| c.total_ram() <= 100 * 1024));
        let none = recommend(&req(1024), &empty()).unwrap();
        assert!(none.best.is_none() && none.binding == "infeasible");
        assert!(none.smallest.total_ram() > 1024);
        assert!(none.searched > 100, "every split with grids up to 4x4, square and not");
    }

    #[test]
    fn the_memory_objective_takes_the_least_ram_within_the_deadline() {
        let m = crate::load_model("mbv1-w0.25-r96").unwrap();
        let board = boards::find("qemu-m4").unwrap();
        let req = |deadline: Option<Deadline>| Request {
            model: &m,
            board: &board,
            budget: Bytes(1 << 20),
            deadline,
            objective: Objective::Memory,
            input_in: InputPlacement::Flash,
            max_grid: 4,
        };
        let free = recommend(&req(None), &ResultSet::empty()).unwrap();
        assert_eq!(free.binding, "none");
        let least = free.best.clone().unwrap();
        assert_eq!(least.total_ram(), free.smallest.total_ram(), "without a deadline: the smallest RAM");
        assert!(free.candidates.windows(2).all(|w| w[0].total_ram() <= w[1].total_ram()), "best first");
        // A deadline just under the smallest config's time: it binds, and everything kept meets it.
        let limit = least.cycles() - 1.0;
        let timed = recommend(&req(Some(Deadline::Count(limit))), &ResultSet::empty()).unwrap();
        assert_eq!(timed.binding, "deadline");
        let best = timed.best.unwrap();
        assert!(best.cycles() <= limit && best.total_ram() >= least.total_ram());
        assert!(timed.candidates.iter().all(|c| c.cycles() <= limit));
        // On QEMU a time is instructions at 1 ns each: 1 ms admits nothing.
        let none = recommend(&req(Some("1ms".parse().unwrap())), &ResultSet::empty()).unwrap();
        assert_eq!(none.binding, "infeasible");
    }
}
