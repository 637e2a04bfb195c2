//! `patchbench plot RESULTS_DIR...`: figures and summary.md from results folders.

use patchbench::figures;
use patchbench::results::ResultSet;
use patchbench::units::Bytes;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Results folders (each with a runs.csv), or folders of them such as results/.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Draw every folder's rows together into DIR (board comparisons across folders);
    /// without it, each folder gets its own figures/ and summary.md.
    #[arg(long)]
    out: Option<PathBuf>,
    /// RAM budgets to draw (repeatable): `64KiB`, `65536`, `1MiB`; added to the budgets of
    /// each folder's spec.
    #[arg(long = "budget")]
    budgets: Vec<Bytes>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let set = ResultSet::load(&self.results)?;
        if let Some(out) = &self.out {
            let rendered = figures::render(&set, out, &self.budgets)?;
            println!("{}", rendered.describe());
            return Ok(());
        }
        for folder in &set.folders {
            println!("{}", figures::render_folder(folder, &self.budgets)?.describe());
        }
        Ok(())
    }
}
