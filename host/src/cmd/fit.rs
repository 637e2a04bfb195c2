//! `patchbench fit`: the cycles model of a board, fitted on results folders.

use patchbench::costmodel::TERM_NAMES;
use patchbench::results::ResultSet;
use patchbench::{boards, recommend};
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Results folders, or folders of them such as results/.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Board whose rows are fitted.
    #[arg(long, short, default_value = "qemu-m4")]
    board: String,
    /// Kernel set whose rows are fitted (default: the board's own).
    #[arg(long, value_parser = super::parse_kernels)]
    kernels: Option<harness::kernels::KernelSet>,
    /// Print a `[[model]]` entry for host/cost-defaults.toml instead of the table.
    #[arg(long)]
    toml: bool,
    /// Also print every row's held-out prediction and error.
    #[arg(long)]
    residuals: bool,
    /// Predict the `ok` rows of these results folders (models the fit has not seen) and
    /// print the errors: how well the model calibrated on RESULTS transfers.
    #[arg(long, value_name = "DIR")]
    predict: Vec<PathBuf>,
    /// Write the fitted rows (model, measured counts, work per term) as CSV to FILE, to
    /// study the model elsewhere.
    #[arg(long, value_name = "FILE")]
    samples: Option<PathBuf>,
}

impl Cmd {
    fn predict(&self, bm: &recommend::BoardModel, board: &boards::Board) -> anyhow::Result<()> {
        let set = ResultSet::load(&self.predict)?;
        let mut errors = Vec::new();
        println!("{:<28} {:<24} {:>16} {:>16} {:>8}", "model", "schedule", "measured", "predicted", "error %");
        let ours = |r: &&patchbench::results::Row| {
            r.board == board.name && r.kernels == board.kernels() && r.status == patchbench::results::Status::Ok
        };
        for r in set.rows.iter().filter(ours) {
            let Some(s) = set.models.get(&r.model_hash).and_then(|m| patchbench::costmodel::sample(&m.as_model(), r))
            else {
                continue;
            };
            let p = bm.cost.predict(&s.work);
            let e = (p - s.cycles) / s.cycles * 100.0;
            errors.push(e.abs());
            println!("{:<28} {:<24} {:>16.0} {:>16.0} {:>+8.2}", r.model, r.schedule.to_string(), s.cycles, p, e);
        }
        if errors.is_empty() {
            anyhow::bail!("the folders to predict hold no ok rows of {} whose model loads", board.name);
        }
        errors.sort_by(f64::total_cmp);
        println!(
            "prediction error on {} rows the fit never saw: median {:.2} %, worst {:.2} %",
            errors.len(),
            patchbench::costmodel::median(&errors),
            errors.last().copied().unwrap_or(0.0)
        );
        Ok(())
    }

    pub fn run(self) -> anyhow::Result<()> {
        let board = boards::find(&self.board)?.with_kernels(self.kernels)?;
        let set = ResultSet::load(&self.results)?;
        let bm = recommend::board_model(&set, &board)?;
        if bm.samples.is_empty() {
            anyhow::bail!("the folders hold no measured rows of {} whose model loads: nothing to fit", board.name);
        }
        if let Some(path) = &self.samples {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["model", "measured"].into_iter().chain(TERM_NAMES))?;
            for s in &bm.samples {
                let fields = [patchbench::results::guard_cell(&s.model).into_owned(), s.cycles.to_string()].into_iter();
                w.write_record(fields.chain(s.work.0.iter().map(|v| v.to_string())))?;
            }
            let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
            patchbench::files::write_whole(path, &bytes)?;
        }
        if !self.predict.is_empty() {
            return self.predict(&bm, &board);
        }
        if self.toml {
            let mut cost = bm.cost.clone();
            cost.source = String::new();
            println!("[[model]]\n{}", toml::to_string(&cost)?);
            return Ok(());
        }
        println!("{} ({} per unit of work):", bm.cost.source, board.cycle_source.unit());
        for (name, c) in TERM_NAMES.iter().zip(&bm.cost.coefficients) {
            println!("  {c:>14.4}  {name}");
        }
        println!("static {} B, stack {} B", bm.static_bytes, bm.stack_bytes);
        if self.residuals {
            println!("{:<28} {:>16} {:>16} {:>8}", "model", "measured", "held-out pred.", "error %");
            for (i, p) in patchbench::costmodel::held_out_predictions(&board.name, &bm.samples) {
                let s = &bm.samples[i];
                println!("{:<28} {:>16.0} {:>16.0} {:>+8.2}", s.model, s.cycles, p, (p - s.cycles) / s.cycles * 100.0);
            }
        }
        match bm.error {
            Some(e) => println!(
                "held-out error (each model predicted by a fit on the others): median {:.2} %, worst {:.2} % over {} rows",
                e.median_pct, e.worst_pct, e.rows
            ),
            None => println!("held-out error: too few rows"),
        }
        Ok(())
    }
}
