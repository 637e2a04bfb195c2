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
        let p = self.config.plan(&model).with_context(|| format!("planning {}", m.name))?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report::PlanJson::new(&model, &p))?);
        } else {
            print!("{}", report::plan_table(&model, &p));
            // The layer-wise view also says what patches would buy.
            if self.config.config()?.is_layerwise() && !harness::plan::valid_splits(&model).is_empty() {
                let rows = report::sweep(&model, BEST_GRID, self.config.config()?)?;
                print!("{}", report::best_configs_table(&rows, BEST_GRID));
            }
        }
        Ok(())
    }
}
