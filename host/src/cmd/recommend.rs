//! `patchbench recommend`: the patch config to deploy on a board under a RAM budget and an
//! optional deadline.

use super::{parse_placement, ModelArgs};
use harness::plan::InputPlacement;
use patchbench::costmodel::TERM_NAMES;
use patchbench::recommend::{self, Candidate, Objective, Recommendation, Request};
use patchbench::report::thousands;
use patchbench::results::ResultSet;
use patchbench::units::{si, Bytes, Deadline};
use patchbench::{boards, runner};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    model: ModelArgs,
    /// Board from the catalog (`patchbench boards`).
    #[arg(long, short, default_value = "qemu-m4")]
    board: String,
    /// Kernel set the images would run (default: the board's own).
    #[arg(long, value_parser = super::parse_kernels)]
    kernels: Option<harness::kernels::KernelSet>,
    /// Total RAM allowed (arena + stack + static): `64KiB`, `65536`, `1MiB`.
    #[arg(long)]
    ram_budget: Bytes,
    /// Longest inference: a time (`50ms`; on QEMU 1 instruction = 1 ns) or a count (`20M`).
    #[arg(long)]
    deadline: Option<Deadline>,
    /// `latency`: fewest cycles within the budget; `memory`: least RAM within the deadline.
    #[arg(long, value_enum, default_value_t = Objective::Latency)]
    objective: Objective,
    /// Where the input tensor lives.
    #[arg(long, default_value = "flash", value_parser = parse_placement)]
    input_in: InputPlacement,
    /// Results folders (or folders of them, such as results/) with measured rows: measured
    /// configs use their measurements, and the cycles model is fitted on the board's rows.
    #[arg(long)]
    results: Vec<PathBuf>,
    /// Largest grid side searched.
    #[arg(long, default_value_t = 8)]
    max_grid: u16,
    /// Runners-up listed.
    #[arg(long, default_value_t = 5)]
    show: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Print the cycles model: its coefficients and held-out error.
    #[arg(long)]
    explain: bool,
    /// Build and run the recommended config on the board; print measured vs predicted.
    #[arg(long)]
    verify: bool,
    /// Directory whose runs.csv gets the row of `--verify`.
    #[arg(long, default_value = "results/runs")]
    out: PathBuf,
}

fn entry(c: &Candidate) -> serde_json::Value {
    json!({
        "split": c.split,
        "patches": c.patches.to_string(),
        "input_in": c.input_in.as_str(),
        "recompute_overhead_pct": c.recompute_overhead_pct,
        "arena_bytes": c.arena_bytes,
        "predicted_cycles": c.predicted_cycles as u64,
        "predicted_total_ram_bytes": c.predicted_total_ram_bytes,
        "measured_cycles": c.measured_cycles,
        "measured_total_ram_bytes": c.measured_total_ram_bytes,
    })
}

fn line(c: &Candidate, unit: &str) -> String {
    let measured = |m: Option<u64>| m.map_or("not measured".to_string(), |v| format!("{} measured", thousands(v)));
    format!(
        "split {} {}: total RAM {} B predicted ({}), {} {unit} predicted ({}), recompute overhead {:.2} %",
        c.split,
        c.patches,
        thousands(c.predicted_total_ram_bytes),
        measured(c.measured_total_ram_bytes),
        thousands(c.predicted_cycles as u64),
        measured(c.measured_cycles),
        c.recompute_overhead_pct
    )
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = boards::find(&self.board)?.with_kernels(self.kernels)?;
        let model = self.model.load()?;
        let set = if self.results.is_empty() { ResultSet::empty() } else { ResultSet::load(&self.results)? };
        let req = Request {
            model: &model,
            board: &board,
            budget: self.ram_budget,
            deadline: self.deadline,
            objective: self.objective,
            input_in: self.input_in,
            max_grid: self.max_grid,
        };
        let rec = recommend::recommend(&req, &set)?;
        if self.json {
            let out = json!({
                "model": model.name,
                "board": board.name,
                "unit": rec.unit,
                "ram_budget_bytes": self.ram_budget.0,
                "objective": self.objective,
                "best": rec.best.as_ref().map(entry),
                "candidates": rec.candidates.iter().map(entry).collect::<Vec<_>>(),
                "binding": rec.binding,
                "model_error": rec.model_error,
                "smallest": entry(&rec.smallest),
                "searched": rec.searched,
                "cost_model": rec.cost_model,
                "cycles_correction": rec.correction,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            self.print(&rec, &board, &model.name, &set);
        }
        if self.verify {
            let Some(best) = &rec.best else { anyhow::bail!("nothing to verify: no config meets the constraints") };
            self.verify(best, &rec, board, model)?;
        }
        Ok(())
    }

    fn print(&self, rec: &Recommendation, board: &boards::Board, model: &str, set: &ResultSet) {
        let unit = rec.unit;
        println!(
            "{model} on {} ({}), total RAM budget {}{}, objective {}, input in {}",
            board.name,
            board.cpu,
            self.ram_budget,
            self.deadline
                .map_or(String::new(), |d| format!(", deadline {}", si(d.counts(board.cycle_source, board.clock_hz)))),
            self.objective,
            self.input_in
        );
        let error = rec.model_error.map_or("held-out error unknown (a default model, or too few rows)".into(), |e| {
            format!("held-out error median {:.2} %, worst {:.2} % over {} rows", e.median_pct, e.worst_pct, e.rows)
        });
        println!(
            "searched {} configs (layer-wise and every valid split with grids up to {g}x{g}); cycles model {}; {error}",
            rec.searched,
            rec.cost_model.source,
            g = self.max_grid
        );
        if let Some(c) = rec.correction {
            println!(
                "{} configs of {model} were measured on {}: the predictions of the others are scaled by {c:.4} (median measured / predicted)",
                rec.measured_configs, board.name
            );
        }
        for w in &set.warnings {
            println!("note: {w}");
        }
        if self.explain {
            println!("cycles model ({unit} per unit of work):");
            for (name, c) in TERM_NAMES.iter().zip(&rec.cost_model.coefficients) {
                println!("  {c:>14.4}  {name}");
            }
            println!(
                "  static {} B + stack {} B are added to every planned arena",
                rec.cost_model.static_bytes, rec.cost_model.stack_bytes
            );
        }
        match &rec.best {
            Some(best) => {
                println!("best: {}", line(best, unit));
                let why = match rec.binding.as_str() {
                    "none" => "none: the best config without constraints is admissible".to_string(),
                    b => format!("{b} (the unconstrained optimum violates it)"),
                };
                println!("binding constraint: {why}");
                if rec.candidates.len() > 1 {
                    println!("runners-up ({} admissible configs in all):", rec.candidates.len());
                    for c in rec.candidates.iter().skip(1).take(self.show) {
                        println!("  {}", line(c, unit));
                    }
                }
            }
            None => {
                println!(
                    "no config meets the constraints; the smallest total RAM reachable is {} B: {}",
                    thousands(rec.smallest.total_ram()),
                    line(&rec.smallest, unit)
                );
            }
        }
    }

    fn verify(
        &self,
        best: &Candidate,
        rec: &Recommendation,
        board: boards::Board,
        model: harness::model::ModelBuf,
    ) -> anyhow::Result<()> {
        let job = runner::Job {
            model: std::sync::Arc::new(model),
            schedule: best.schedule,
            input_in: best.input_in,
            board,
            repeats: 3,
            timeout: std::time::Duration::from_secs(900),
            probe: None,
            inject: Default::default(),
            profile: false,
        };
        let csv = self.out.join("runs.csv");
        let row = patchbench::sweep::run_jobs(vec![job], 1, patchbench::results::CsvSink::open(&csv)?, true, |_| {})?
            .rows
            .remove(0);
        let pct = |m: f64, p: f64| (p - m) / m * 100.0;
        match (row.cycles_median, row.total_ram_bytes) {
            (Some(c), Some(t)) if row.status.is_result() => {
                println!(
                    "verified on {}: {} {} measured vs {} predicted ({:+.2} %); total RAM {} B measured vs {} B predicted ({:+.2} %); row appended to {}",
                    row.board,
                    thousands(c),
                    rec.unit,
                    thousands(best.predicted_cycles as u64),
                    pct(c as f64, best.predicted_cycles),
                    thousands(t),
                    thousands(best.predicted_total_ram_bytes),
                    pct(t as f64, best.predicted_total_ram_bytes as f64),
                    csv.display()
                );
                Ok(())
            }
            _ => anyhow::bail!("the verification run ended {}: {}", row.status, row.message),
        }
    }
}
