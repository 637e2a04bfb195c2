//! `patchbench bench`: the kernel benchmark. The three MLPerf Tiny CNNs on a board (QEMU:
//! instructions, not cycles), layer-wise and at their best patch configs, with each set of
//! kernels, next to TFLM's figures for the same emulated core.

use anyhow::Context;
use harness::kernels::KernelSet;
use harness::plan::PatchConfig;
use patchbench::report::thousands;
use patchbench::results::{Row, Status};
use patchbench::runner::Job;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// TFLM's instructions per inference on QEMU mps2-an386 (`-icount shift=0`), measured for
/// issue 13 with TFLM's own build (not by patchbench): reference kernels, and CMSIS-NN.
const TFLM: [(&str, f64, f64); 3] =
    [("vww_96_int8", 100.4e6, 24.1e6), ("pretrainedResnet_quant", 107.4e6, 29.9e6), ("kws_ref_model", 43.1e6, 7.70e6)];

#[derive(clap::Parser)]
pub struct Cmd {
    /// Directory holding `mlperf-tiny/` (default: `$PATCHBENCH_MODELS`, else `../shared/models`
    /// beside the checkout).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Board from the catalog.
    #[arg(long, short, default_value = "qemu-m4")]
    board: String,
    /// Kernel sets to measure (default: the board's own and `reference`).
    #[arg(long, value_parser = super::parse_kernels, num_args = 1.., value_delimiter = ',')]
    kernels: Vec<KernelSet>,
    /// Patch configs per model besides layer-wise: the smallest-arena ones of the planner's
    /// Pareto front.
    #[arg(long, default_value_t = 2)]
    configs: usize,
    /// Directory whose runs.csv gets the rows (measured images are not measured again).
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Parallel QEMU workers.
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// First run N cases of the kernel check on the board: each optimized set against the
    /// reference kernels, on the device itself (0: skip).
    #[arg(long, default_value_t = 0, value_name = "N")]
    check_kernels: u64,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let dir = self.models.clone().unwrap_or_else(patchbench::models::shared_models_dir).join("mlperf-tiny");
        let base = patchbench::boards::find(&self.board)?;
        let sets = if self.kernels.is_empty() {
            let mut sets = vec![base.kernels(), KernelSet::Reference];
            sets.dedup();
            sets
        } else {
            self.kernels.clone()
        };
        let boards = sets.iter().map(|&k| base.clone().with_kernels(Some(k))).collect::<Result<Vec<_>, _>>()?;
        patchbench::firmware::check_tools(&boards.iter().collect::<Vec<_>>())?;
        for board in boards.iter().filter(|b| b.kernels() != KernelSet::Reference && self.check_kernels > 0) {
            let r = patchbench::runner::kernel_check(board, self.check_kernels, None, Duration::from_secs(900))?;
            match r.failure {
                None => println!(
                    "kernel check on {}: the {} set gave the reference bytes in {} kernel calls ({} cases)",
                    board.name, r.kernels, r.calls, self.check_kernels
                ),
                Some((kernel, seed, byte)) => anyhow::bail!(
                    "kernel check on {}: the {} set's {kernel} departs from the reference in case {seed} (byte {byte})",
                    board.name,
                    r.kernels
                ),
            }
        }
        let mut jobs = Vec::new();
        for (name, _, _) in TFLM {
            let path = dir.join(format!("{name}.tflite"));
            let model = patchbench::load_model(&path.to_string_lossy())
                .with_context(|| format!("the benchmark reads the MLPerf Tiny models from {}", dir.display()))?;
            let m = model.as_model();
            let sweep = patchbench::report::sweep(&m, 4, PatchConfig::LAYERWISE)?;
            let mut best = patchbench::report::best_configs(&sweep);
            best.reverse(); // smallest arena first
            let configs = std::iter::once(PatchConfig::LAYERWISE)
                .chain(best.iter().take(self.configs).map(|r| PatchConfig::new(r.split, r.patches.nh, r.patches.nw)));
            let model = Arc::new(model);
            for config in configs {
                for board in &boards {
                    jobs.push(Job {
                        model: model.clone(),
                        schedule: config.schedule(),
                        input_in: config.input_in,
                        board: board.clone(),
                        repeats: 1,
                        timeout: Duration::from_secs(900),
                        probe: None,
                        inject: Default::default(),
                        profile: false,
                    });
                }
            }
        }
        let csv = self.out.join("runs.csv");
        let workers = self.jobs.unwrap_or_else(patchbench::sweep::default_workers);
        let outcome =
            patchbench::sweep::run_jobs(jobs, workers, patchbench::results::CsvSink::open(&csv)?, false, |r| {
                eprintln!("{} {} split {} {} ({}): {}", r.model, r.board, r.split, r.patches, r.kernels, r.status);
            })?;
        let rows = patchbench::results::latest(patchbench::results::read(&csv)?);
        print!("{}", table(&rows, &base.name, &sets));
        if outcome.rows.iter().any(|r| r.status != Status::Ok) {
            anyhow::bail!("some images did not measure (see {})", csv.display());
        }
        Ok(())
    }
}

/// The benchmark table: per model and config, each kernel set's count and count per MAC, and
/// TFLM's layer-wise figures with the ratio to them.
fn table(rows: &[Row], board: &str, sets: &[KernelSet]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let unit = rows.iter().find(|r| r.board == board).map_or("cycles", |r| {
        if r.cycle_source == harness::record::CycleSource::QemuIcount {
            "instructions (QEMU, not cycles)"
        } else {
            "cycles"
        }
    });
    let _ = writeln!(s, "{board}, {unit} per inference; TFLM figures are layer-wise, measured for issue 13");
    let _ = writeln!(
        s,
        "{:<24} {:>6} {:>5} {:>10} {:>8} {:>14} {:>7} {:>13} {:>11}",
        "model", "split", "grid", "MACs", "kernels", "count", "/MAC", "vs TFLM ref", "vs CMSIS-NN"
    );
    for (name, tflm_ref, cmsis) in TFLM {
        let mut mine: Vec<&Row> =
            rows.iter().filter(|r| r.board == board && r.model == name && sets.contains(&r.kernels)).collect();
        mine.sort_by_key(|r| (r.split != 0, r.split, r.patches.nh, r.patches.nw, r.kernels));
        for r in mine {
            let Some(count) = r.cycles_median else { continue };
            let per_mac = count as f64 / r.planned_macs.max(1) as f64;
            let vs = |t: f64| format!("{:.2}x", count as f64 / t);
            let _ = writeln!(
                s,
                "{:<24} {:>6} {:>5} {:>10} {:>8} {:>14} {:>7.2} {:>13} {:>11}",
                name,
                r.split,
                r.patches.to_string(),
                thousands(r.planned_macs),
                r.kernels.name(),
                thousands(count),
                per_mac,
                vs(tflm_ref),
                vs(cmsis)
            );
        }
        let _ = writeln!(
            s,
            "{:<24} TFLM reference kernels {}, TFLM + CMSIS-NN {}",
            "",
            thousands(tflm_ref as u64),
            thousands(cmsis as u64)
        );
    }
    s
}
