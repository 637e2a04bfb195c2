//! `patchbench run`: one image, built, deployed, measured, appended to runs.csv.

use super::ImageArgs;
use patchbench::runner::Job;
use patchbench::sweep;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    image: ImageArgs,
    /// Directory whose runs.csv gets the row.
    #[arg(long, default_value = "results/runs")]
    out: PathBuf,
    /// Seconds before the deployment is abandoned (1 to 86400).
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    /// Debug probe of a real board, `VID:PID[:SERIAL]` (`patchbench probes`); without it,
    /// the only attached probe.
    #[arg(long)]
    probe: Option<patchbench::deploy::probe::Selector>,
    /// Profile one more run op by op: prints where the time goes and appends it to ops.csv
    /// beside runs.csv.
    #[arg(long)]
    profile: bool,
    /// Make the image fail on purpose (testing patchbench's failure handling).
    #[arg(long, value_enum, default_value = "none", hide = true)]
    inject: patchbench::firmware::Inject,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = self.image.board()?;
        // A real board needs its probe: say so before anything is built.
        if !board.is_qemu() {
            patchbench::deploy::probe::ProbeTarget::open(&board, self.probe.as_ref())?;
        }
        let model = Arc::new(self.image.model.load()?);
        // An invalid schedule is a mistake to explain, not a row to record.
        self.image.config.plan(&model.as_model()).map_err(|e| anyhow::anyhow!("{}: {e:#}", model.name))?;
        patchbench::firmware::check_tools(&[&board])?;
        let job = Job {
            model,
            schedule: self.image.config.schedule(),
            input_in: self.image.config.input_in,
            board,
            repeats: self.image.repeats,
            timeout: Duration::from_secs(self.timeout),
            probe: self.probe.clone(),
            inject: self.inject,
            profile: self.profile,
        };
        let csv = self.out.join("runs.csv");
        // An explicit run always measures (`rerun`), even an image measured before.
        let rows = sweep::run_jobs(vec![job], 1, patchbench::results::CsvSink::open(&csv)?, true, |_| {})?.rows;
        print!("{}", sweep::summary_table(&rows));
        for r in rows.iter().filter(|r| r.status == patchbench::results::Status::WrongOutput) {
            eprintln!("warning: the device computed another output than the host engine: {}", r.message);
        }
        for r in rows.iter().filter(|r| !r.op_counts.is_empty()) {
            print!("{}", patchbench::report::op_profile_table(r));
            println!("appended {} ops to {}", r.op_counts.len(), csv.with_file_name("ops.csv").display());
        }
        println!("appended to {}", csv.display());
        match rows.first() {
            Some(r) if r.status.is_result() => Ok(()),
            _ => anyhow::bail!("the run did not succeed (see the status above and {})", csv.display()),
        }
    }
}
