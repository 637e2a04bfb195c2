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
    /// Print a `[[model]]` entry for host/cost-defaults.toml instead of the table.
    #[arg(long)]
    toml: bool,
    /// Also print every row's held-out prediction and error.
    #[arg(long)]
    residuals: bool,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = boards::find(&self.board)?;
        let set = ResultSet::load(&self.results)?;
        let bm = recommend::board_model(&set, &board)?;
        if bm.samples.is_empty() {
            anyhow::bail!("the folders hold no measured rows of {} whose model loads: nothing to fit", board.name);
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
