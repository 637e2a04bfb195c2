//! `patchbench sweep SPEC.toml`.

use indicatif::{ProgressBar, ProgressStyle};
use patchbench::sweep::{self, Spec};
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Sweep spec (see `patchbench::sweep` or specs/*.toml).
    spec: PathBuf,
    /// Output directory (default results/<spec name>); rows are appended to its runs.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Parallel builds and deployments (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let spec = Spec::load(&self.spec)?;
        let jobs = spec.jobs()?;
        let out = self.out.unwrap_or_else(|| sweep::default_out(&spec));
        let csv = out.join("runs.csv");
        let workers = self.jobs.unwrap_or_else(sweep::default_workers).min(jobs.len()).max(1);
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("{} on {workers} workers", spec.name));
        let start = std::time::Instant::now();
        let rows = sweep::run_jobs(jobs, workers, &csv, |r| {
            bar.inc(1);
            bar.set_message(format!("{} {} split {} {}: {}", r.board, r.model, r.split, r.patches, r.status));
        })?;
        bar.finish_and_clear();
        print!("{}", sweep::summary_table(&rows));
        let ok = rows.iter().filter(|r| r.status == "ok").count();
        println!(
            "{} rows ({ok} ok) in {:.1} s, appended to {}",
            rows.len(),
            start.elapsed().as_secs_f64(),
            csv.display()
        );
        let failed = rows.iter().filter(|r| !matches!(r.status.as_str(), "ok" | "does-not-fit")).count();
        if failed > 0 {
            anyhow::bail!("{failed} of {} runs failed (status and message are in {})", rows.len(), csv.display());
        }
        Ok(())
    }
}
