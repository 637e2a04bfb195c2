//! `patchbench plan`: what a config will cost, without running anything.

use super::{ConfigArgs, ModelArgs};
use anyhow::Context;
use patchbench::report;

/// Largest square grid the layer-wise plan's "best patch configs" look at.
const BEST_GRID: u16 = 8;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Plan every valid split with square grids up to NxN instead of one config.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "8")]
    sweep: Option<u16>,
    /// Search the schedules (any number of recompute stages at any cut, grids up to 8x8) for
    /// the least arena within `--max-mac-factor` (msf-CNN's P1), or the fewest planned MACs
    /// within `--arena-budget` (P2); prints the plan of the one found.
    #[arg(long, conflicts_with_all = ["sweep", "schedule", "split", "patches"])]
    search: bool,
    /// With --search: planned MACs at most this factor x layer-wise (1.0: no recompute).
    #[arg(long, requires = "search", conflicts_with = "arena_budget", value_name = "F")]
    max_mac_factor: Option<f64>,
    /// With --search: arena at most this (`64KiB`, `25000`).
    #[arg(long, requires = "search", value_name = "BYTES")]
    arena_budget: Option<patchbench::units::Bytes>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let m = self.model.load()?;
        let model = m.as_model();
        if let Some(max_grid) = self.sweep {
            let rows = report::sweep(&model, max_grid, self.config.config()?)?;
            if self.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", report::sweep_table(&m.name, &rows));
            }
            return Ok(());
        }
        let p = if self.search {
            use harness::plan::Objective;
            let objective = match (self.max_mac_factor, self.arena_budget) {
                (Some(f), None) if f.is_finite() && f >= 1.0 => Objective::LeastArena { max_mac_factor: f },
                (Some(f), None) => {
                    anyhow::bail!("--max-mac-factor {f}: give a factor of at least 1.0 (1.0: no recompute)")
                }
                (None, Some(b)) => Objective::FewestMacs { arena_budget: b.0 as usize },
                _ => anyhow::bail!(
                    "--search needs --max-mac-factor F (least arena) or --arena-budget BYTES (fewest MACs)"
                ),
            };
            harness::plan::search(&model, self.config.input_in, objective)
                .with_context(|| format!("searching the schedules of {}", m.name))?
        } else {
            self.config.plan(&model).with_context(|| format!("planning {}", m.name))?
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report::PlanJson::new(&model, &p))?);
        } else {
            print!("{}", report::plan_table(&model, &p));
            // The layer-wise view also says what patches would buy.
            if !self.search && self.config.config()?.is_layerwise() && !harness::plan::valid_splits(&model).is_empty() {
                let rows = report::sweep(&model, BEST_GRID, self.config.config()?)?;
                print!("{}", report::best_configs_table(&rows, BEST_GRID));
            }
        }
        Ok(())
    }
}
