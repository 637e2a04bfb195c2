//! `patchbench sweep SPEC.toml`.

use indicatif::{ProgressBar, ProgressStyle};
use patchbench::sweep::{self, Spec};
use std::path::PathBuf;

#[derive(clap::Parser)]
pub struct Cmd {
    /// Sweep spec (see `patchbench::sweep` or specs/*.toml).
    spec: PathBuf,
    /// Results folder (default results/<spec name>): its runs.csv gets the rows, spec.toml a
    /// copy of the spec, figures/ and summary.md are rendered again at the end.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Parallel builds and deployments (default: all cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Measure again the jobs whose image already has an `ok` row in the folder (they are
    /// skipped otherwise: the same image measures the same).
    #[arg(long)]
    rerun: bool,
    /// Do not render figures/ and summary.md.
    #[arg(long)]
    no_figures: bool,
    /// Run only the K-th of N shards of the jobs (e.g. `--partition 2/4`), the same on every
    /// machine: run each shard into its own folder, then `patchbench merge` them.
    #[arg(long, value_name = "K/N")]
    partition: Option<sweep::Partition>,
    /// Run only the jobs of this board (repeatable): a machine with one of the spec's boards
    /// runs its part, and `patchbench merge` joins the parts.
    #[arg(long = "only-board", value_name = "BOARD")]
    only_boards: Vec<String>,
    /// Run a spec of more than 5,000 jobs (they are refused otherwise, as a likely mistake).
    #[arg(long)]
    allow_large: bool,
    /// The probe of a real board, `BOARD=VID:PID[:SERIAL]` (repeatable; overrides the spec's
    /// `probes`).
    #[arg(long = "probe", value_name = "BOARD=PROBE")]
    probes: Vec<String>,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let mut spec = Spec::load(&self.spec)?;
        for p in &self.probes {
            let (board, probe) = p.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--probe {p}: write BOARD=VID:PID[:SERIAL], e.g. nucleo-f767zi=0483:374b")
            })?;
            spec.probes.insert(board.to_string(), probe.to_string());
        }
        if let Some(b) = self.only_boards.iter().find(|b| !spec.boards.contains(b)) {
            anyhow::bail!("--only-board {b}: the spec's boards are {}", spec.boards.join(", "));
        }
        let asked = spec.job_count();
        if asked > sweep::MAX_JOBS && !self.allow_large {
            anyhow::bail!(
                "{} asks for {asked} jobs ({} models x {} boards x {} configs); narrow `splits` and `patches` (or use `configs`), or pass --allow-large",
                self.spec.display(),
                spec.models.len(),
                spec.boards.len(),
                asked / (spec.models.len() * spec.boards.len()).max(1) as u128
            );
        }
        let planned = spec.jobs()?;
        if !planned.invalid.is_empty() {
            eprintln!("{} configs of the spec cannot run and are left out:", planned.invalid.len());
            for line in planned.invalid.iter().take(10) {
                eprintln!("  {line}");
            }
            if planned.invalid.len() > 10 {
                eprintln!("  ... and {} more", planned.invalid.len() - 10);
            }
        }
        let mut jobs = planned.jobs;
        if !self.only_boards.is_empty() {
            jobs.retain(|j| self.only_boards.contains(&j.board.name));
        }
        if let Some(part) = self.partition {
            let all = jobs.len();
            jobs = part.select(jobs);
            println!("shard {}/{}: {} of {all} jobs", part.k, part.n, jobs.len());
        }
        // One job per board: every board's tools, and every real board's probe, are found
        // before anything is built.
        let first_of_board: Vec<&patchbench::runner::Job> = {
            let mut seen = std::collections::HashSet::new();
            jobs.iter().filter(|j| seen.insert(j.board.name.clone())).collect()
        };
        patchbench::firmware::check_tools(&first_of_board.iter().map(|j| &j.board).collect::<Vec<_>>())?;
        for j in first_of_board.iter().filter(|j| !j.board.is_qemu()) {
            patchbench::deploy::probe::ProbeTarget::open(&j.board, j.probe.as_ref())?;
        }
        let out = self.out.unwrap_or_else(|| sweep::default_out(&spec));
        let csv = out.join("runs.csv");
        // The folder's lock, and the check of its runs.csv, before anything is written in it:
        // a sweep another one holds the folder of is refused with its spec.toml untouched.
        let sink = patchbench::results::CsvSink::open(&csv)?;
        spec.write_to(&out)?;
        let total = jobs.len();
        let workers = self.jobs.unwrap_or_else(sweep::default_workers).min(total).max(1);
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("{} on {workers} workers", spec.name));
        let start = std::time::Instant::now();
        let outcome = sweep::run_jobs(jobs, workers, sink, self.rerun, |r| {
            bar.inc(1);
            bar.set_message(format!("{} {} {}: {}", r.board, r.model, r.schedule, r.status));
        })?;
        bar.finish_and_clear();
        for n in &outcome.notes {
            eprintln!("warning: {n}");
        }
        let rows = &outcome.rows;
        for r in rows.iter().filter(|r| r.status == patchbench::results::Status::WrongOutput) {
            eprintln!("warning: {} {} on {}: {}", r.model, r.schedule, r.board, r.message);
        }
        if !rows.is_empty() {
            print!("{}", sweep::summary_table(rows));
        }
        let ok = rows.iter().filter(|r| r.status == patchbench::results::Status::Ok).count();
        println!(
            "{} of {total} jobs measured ({ok} ok) in {:.1} s, appended to {}",
            rows.len(),
            start.elapsed().as_secs_f64(),
            csv.display()
        );
        if outcome.skipped > 0 {
            println!(
                "skipped {} jobs whose image already has an `ok` row in {} (--rerun measures them again)",
                outcome.skipped,
                csv.display()
            );
        }
        if !self.no_figures {
            let report = patchbench::figures::render_folder(&out, &[])?;
            println!("{}", report.describe());
        }
        let failed = rows.iter().filter(|r| !r.status.is_result()).count();
        if failed > 0 {
            anyhow::bail!("{failed} of {} runs failed (status and message are in {})", rows.len(), csv.display());
        }
        Ok(())
    }
}
