//! `patchbench merge DIR... --out DIR`: one results folder from several (the shards of a
//! partitioned sweep, or sweeps of the same spec on several machines).

use patchbench::results;
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Results folders to combine.
    #[arg(required = true)]
    folders: Vec<PathBuf>,
    /// The merged folder (created; rows it already has are kept and not added twice).
    #[arg(long)]
    out: PathBuf,
    /// Do not render figures/ and summary.md.
    #[arg(long)]
    no_figures: bool,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let csv = self.out.join("runs.csv");
        let merged = patchbench::sweep::merge(&self.folders, &self.out)?;
        for line in &merged.skipped {
            eprintln!("warning: {line}");
        }
        println!(
            "{} rows merged into {} ({} duplicates left out{})",
            merged.added,
            results::display_path(&csv),
            merged.duplicates,
            match merged.skipped.len() {
                0 => String::new(),
                n => format!("; {n} lines that are not rows skipped and left where they are, see above"),
            }
        );
        if !self.no_figures {
            println!("{}", patchbench::figures::render_folder(&self.out, &[])?.describe());
        }
        Ok(())
    }
}
