//! One measurement job: plan, build (or reuse) the image, deploy, collect, check, and turn
//! the outcome into a [`Row`], whatever happens.

use crate::boards::Board;
use crate::deploy::{self, DeployError, Deployable};
use crate::firmware::{self, Build};
use crate::results::{Row, Status};
use harness::model::ModelBuf;
use harness::plan::{plan, PatchConfig, Plan};
use harness::record::CRC32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Job {
    /// The model.
    pub model: Arc<ModelBuf>,
    /// The schedule.
    pub schedule: harness::plan::Schedule,
    /// Where the input lives.
    pub input_in: harness::plan::InputPlacement,
    /// The board.
    pub board: Board,
    /// Measured runs after the warm-up.
    pub repeats: u16,
    /// Limit for one deployment.
    pub timeout: Duration,
    /// The debug probe of a probe-rs board (`None`: the only one attached).
    pub probe: Option<deploy::probe::Selector>,
    /// A failure the image commits on purpose (tests of the failure paths).
    pub inject: firmware::Inject,
    /// Profile one more run op by op (the row's [`Row::op_counts`]).
    pub profile: bool,
}

/// `git describe --always` of the checkout, with `-dirty` when tracked files other than the
/// committed results differ from it (a sweep writes `results/`, which must not mark the rows
/// of the next sweep as built from changed code), or `unknown`.
pub fn git_rev() -> String {
    git_rev_in(&firmware::workspace_root())
}

fn git_rev_in(dir: &std::path::Path) -> String {
    let git = |args: &[&str]| {
        crate::child::output_within(
            std::process::Command::new("git").args(args).current_dir(dir),
            crate::child::tool_timeout(),
            "git",
        )
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(rev) = git(&["describe", "--always"]) else { return "unknown".into() };
    let changed = git(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"]);
    match changed {
        Some(c) if c.is_empty() => rev,
        _ => format!("{rev}-dirty"),
    }
}

fn base_row(job: &Job, p: Option<&Plan>) -> Row {
    let now = chrono::Utc::now();
    let m = job.model.as_model();
    // The row records the schedule that runs: `4@1x1` is layer-wise.
    let schedule = job.schedule.effective();
    // `split` and `patches` are the one-stage view, kept for readers of older files (0 and
    // 1x1 for several stages: the `schedule` column says what ran).
    let (split, grid) = schedule.as_one_stage().unwrap_or((0, harness::plan::Grid::ONE));
    Row {
        // Time, job and a random tag: unique even for the same job in the same millisecond.
        run_id: format!(
            "{}-{:04x}-{}-{}-{}-{}",
            now.format("%Y%m%dT%H%M%S%.3f"),
            rand::random::<u16>(),
            job.board.name,
            job.model.name,
            schedule.to_string().replace(',', "_"),
            job.input_in
        ),
        timestamp: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        board: job.board.name.clone(),
        cpu: job.board.cpu.clone(),
        cycle_source: job.board.cycle_source,
        kernels: job.board.kernels(),
        clock_hz: job.board.clock_hz,
        model: job.model.name.clone(),
        model_hash: format!("{:016x}", m.hash()),
        schedule,
        split,
        patches: grid,
        input_in: job.input_in,
        repeats: job.repeats,
        macs: m.macs(),
        planned_macs: p.map_or(0, |p| p.planned_macs),
        recompute_overhead_pct: p.map_or(0.0, |p| (p.recompute_overhead_pct * 1000.0).round() / 1000.0),
        arena_planned_bytes: p.map_or(0, |p| p.arena_peak_bytes as u64),
        outputs: m.outputs.len() as u8,
        output_bytes: m.outputs.iter().map(|&t| m.tensor(t).bytes() as u64).sum(),
        caches: job.board.caches_on(),
        probe: job.probe.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        ..Row::default()
    }
}

/// Most bytes the host gives one buffer of a model (its arena, its input): no model a
/// microcontroller runs comes near; a model whose shapes ask for more is refused with this
/// said, instead of aborting patchbench on a failed allocation or filling the disk.
pub const MAX_HOST_BYTES: usize = 1 << 30;

/// A zeroed buffer of `bytes` for the host engine; `what` names what needs it in the error
/// (a model declaring absurd shapes is an error, not an abort).
pub fn host_buffer(bytes: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    if bytes > MAX_HOST_BYTES {
        anyhow::bail!(
            "{what} needs {bytes} B, more than the {MAX_HOST_BYTES} B patchbench gives a model on the host: no microcontroller model is this large; check the model's tensor shapes"
        );
    }
    let mut v = Vec::new();
    v.try_reserve_exact(bytes)
        .map_err(|_| anyhow::anyhow!("{what} needs {bytes} B, which this machine could not allocate"))?;
    v.resize(bytes, 0);
    Ok(v)
}

/// A job whose model cannot fit the board whatever the build does: the planned arena and the
/// stack the image reserves exceed its RAM, or the weights and input alone its flash. Found before any source is
/// generated, so an absurd model costs nothing and the spec's other jobs run.
#[derive(Debug, thiserror::Error)]
#[error("{region} needs at least {needed} B ({what}), the board has {have} B")]
pub struct Unfit {
    /// `RAM` or `FLASH`.
    pub region: &'static str,
    /// The lower bound.
    pub needed: u64,
    /// What the bound counts.
    pub what: &'static str,
    /// The board's region size.
    pub have: u32,
    /// The planned arena, for the row.
    pub arena: u64,
}

/// Checks the lower bounds of [`Unfit`].
pub fn check_fits(model: &harness::Model, p: &Plan, board: &Board) -> Result<(), Unfit> {
    let arena = p.arena_peak_bytes as u64;
    let ram = arena + u64::from(board.stack_reserve);
    if ram > u64::from(board.ram.length) {
        return Err(Unfit {
            region: "RAM",
            needed: ram,
            what: "the planned arena and the stack reserve alone",
            have: board.ram.length,
            arena,
        });
    }
    let flash = model.weights.len() as u64 + model.tensor(model.input).bytes() as u64;
    if flash > u64::from(board.flash.length) {
        return Err(Unfit {
            region: "FLASH",
            needed: flash,
            what: "the weights and the input alone",
            have: board.flash.length,
            arena,
        });
    }
    Ok(())
}

/// Checks that the image's header record (board, core, model name, schedule text) fits one
/// record frame: the device could not send it otherwise, and the run would end as a timeout
/// that says nothing.
pub fn check_header(model: &harness::Model, p: &Plan, board: &Board) -> anyhow::Result<()> {
    let schedule = p.schedule.to_string();
    let header = harness::record::Record::Header {
        protocol: harness::record::PROTOCOL_VERSION,
        board: &board.name,
        cpu: &board.cpu,
        clock_hz: board.clock_hz,
        cycle_source: board.cycle_source,
        model: model.name,
        model_hash: u64::MAX,
        schedule: &schedule,
        input_in: p.input_in,
        caches: true,
        arena_planned: u32::MAX,
        repeats: u16::MAX,
    };
    let mut frame = [0u8; harness::record::MAX_FRAME];
    harness::record::encode(&header, &mut frame).map(drop).map_err(|_| {
        anyhow::anyhow!(
            "the image's header (board {}, model {}, schedule {schedule}) does not fit a {} B record frame: use fewer stages or a shorter board or model name",
            board.name,
            model.name,
            harness::record::MAX_FRAME
        )
    })
}

/// The host engine's output CRC for the image's input.
pub fn host_output_crc(model: &ModelBuf, p: &Plan) -> anyhow::Result<u32> {
    let m = model.as_model();
    let input = firmware::input_for(&m);
    let mut arena = host_buffer(p.arena_peak_bytes, "the host run's arena")?;
    let outputs = harness::run(&m, &p.exec(), &mut arena, &input).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(output_crc(&outputs))
}

/// The CRC the device reports: over every graph output's raw bytes, in the graph's order.
pub fn output_crc(outputs: &harness::exec::Outputs) -> u32 {
    let mut digest = CRC32.digest();
    for part in outputs.iter() {
        digest.update(bytemuck::cast_slice(part));
    }
    digest.finalize()
}

/// A job whose plan and image sources are made, so its image key is known before anything
/// is built (a sweep skips keys it has measured).
pub struct Prepared {
    plan: Plan,
    sources: firmware::Sources,
    /// See [`Row::image_key`].
    pub key: String,
}

/// Plans `job` and generates its image sources.
pub fn prepare(job: &Job) -> anyhow::Result<Prepared> {
    let m = job.model.as_model();
    let plan = harness::plan::plan_schedule(&m, &job.schedule, job.input_in, Default::default())?;
    check_fits(&m, &plan, &job.board)?;
    check_header(&m, &plan, &job.board)?;
    let sources = firmware::sources_with(&m, &plan, &job.board, job.repeats, job.inject, job.profile);
    let key = sources.key(&job.board)?;
    Ok(Prepared { plan, sources, key })
}

/// Runs a job on `worker` (which selects the build tree) and returns its row; failures are
/// rows too.
pub fn execute(job: &Job, worker: usize, git_rev: &str) -> Row {
    match prepare(job) {
        Ok(prepared) => execute_prepared(job, &prepared, worker, git_rev),
        Err(e) => unprepared_row(job, &e, git_rev),
    }
}

/// The row of a job that [`prepare`] refused with `e`.
pub fn unprepared_row(job: &Job, e: &anyhow::Error, git_rev: &str) -> Row {
    let mut row = base_row(job, None);
    row.status = if e.is::<harness::plan::PlanError>() { Status::Invalid } else { Status::Error };
    if let Some(unfit) = e.downcast_ref::<Unfit>() {
        row.status = Status::DoesNotFit;
        row.arena_planned_bytes = unfit.arena;
    }
    row.message = format!("{e:#}");
    row.git_rev = git_rev.into();
    row
}

/// [`execute`] with the plan and sources already made.
pub fn execute_prepared(job: &Job, prepared: &Prepared, worker: usize, git_rev: &str) -> Row {
    let mut row = base_row(job, Some(&prepared.plan));
    row.git_rev = git_rev.into();
    row.image_key = prepared.key.clone();
    if let Err(e) = measure(job, prepared, worker, &mut row) {
        row.message = format!("{e:#}").replace('\n', " | ");
    }
    row
}

fn measure(job: &Job, prepared: &Prepared, worker: usize, row: &mut Row) -> anyhow::Result<()> {
    // Until a verdict is reached, a failure is an error.
    row.status = Status::Error;
    let m = job.model.as_model();
    let p = &prepared.plan;
    let image = match firmware::build_sources(&prepared.sources, &prepared.key, m.name, p, &job.board, worker)? {
        Build::Image(image) => image,
        Build::DoesNotFit { region, needed } => {
            row.status = Status::DoesNotFit;
            let have = if region == "FLASH" { job.board.flash.length } else { job.board.ram.length };
            row.message = format!("{region} needs {needed} B, the board has {have} B");
            return Ok(());
        }
    };
    row.build_seconds = (image.build_time.as_secs_f64() * 100.0).round() / 100.0;
    row.static_ram_bytes = Some(image.static_ram_bytes);
    row.flash_bytes = Some(image.flash_bytes);
    let expected_crc = host_output_crc(&job.model, p)?;

    let start = Instant::now();
    let deployed = deploy::target_for(&job.board, job.probe.as_ref())
        .and_then(|mut t| t.deploy(Deployable { elf: &image.elf, rtt_address: image.rtt_address }, job.timeout));
    row.run_seconds = (start.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let measurement = match deployed {
        Ok(m) => m,
        Err(e) => {
            row.status = match e {
                DeployError::Timeout { .. } => Status::Timeout,
                DeployError::Fault { .. } => Status::Fault,
                DeployError::Protocol(_) => Status::Invalid,
                DeployError::Transport(_) => Status::Error,
            };
            return Err(e.into());
        }
    };
    let header = measurement.header.as_ref().expect("collector guarantees a header");
    row.caches = header.caches;
    if header.model_hash != m.hash()
        || header.arena_planned as usize != p.arena_peak_bytes
        || header.schedule != job.schedule.effective()
        || header.input_in != job.input_in
    {
        anyhow::bail!(
            "the image reported another model, plan or schedule ({} input in {}) than was built (stale cache?)",
            header.schedule,
            header.input_in
        );
    }
    let mut cycles: Vec<u64> = measurement.runs.iter().map(|r| r.0).collect();
    cycles.sort_unstable();
    if cycles.is_empty() {
        anyhow::bail!("the device sent no measured runs");
    }
    row.cycles_min = cycles.first().copied();
    row.cycles_max = cycles.last().copied();
    row.cycles_median = Some(cycles[cycles.len() / 2]);
    let crcs: Vec<u32> = measurement.runs.iter().map(|r| r.1).collect();
    row.output_crc = format!("{:08x}", crcs[0]);
    row.output_ok = crcs.iter().all(|&c| c == expected_crc);
    row.op_counts = measurement
        .op_counts
        .iter()
        .filter_map(|&(op, runs, count)| {
            let kind = m.ops.get(usize::from(op))?.kind.name();
            Some(crate::results::OpCount { op, kind, stage: p.stage_of(usize::from(op)).is_some(), runs, count })
        })
        .collect();
    row.arena_measured_bytes = measurement.arena_bytes.map(u64::from);
    row.stack_measured_bytes = measurement.stack_bytes.map(u64::from);
    row.total_ram_bytes = match (row.arena_measured_bytes, row.stack_measured_bytes, row.static_ram_bytes) {
        (Some(a), Some(s), Some(st)) => Some(a + s + st),
        _ => None,
    };
    if !row.output_ok {
        row.status = Status::WrongOutput;
        row.message = format!("device output CRC {:08x} differs from the host engine's {expected_crc:08x}", crcs[0]);
    } else {
        row.status = Status::Ok;
    }
    Ok(())
}

/// Builds and runs a kernel-check image on `board`: `cases` cases of `harness::kernels::check`
/// of the board's kernel set against the reference, on the device (QEMU or a real board), so
/// that the set's instructions themselves are checked, not their portable twins. Returns what
/// the device reported; a departure is an `Ok` report with its failure set.
pub fn kernel_check(
    board: &Board,
    cases: u64,
    probe: Option<&deploy::probe::Selector>,
    timeout: Duration,
) -> anyhow::Result<crate::collect::KernelCheck> {
    let model = harness::zoo::build("tiny").ok_or_else(|| anyhow::anyhow!("the zoo has no `tiny` model"))?;
    let m = model.as_model();
    let p = plan(&m, PatchConfig::LAYERWISE)?;
    let sources = firmware::kernel_check_sources(&m, &p, board, cases);
    let key = sources.key(board)?;
    let image = match firmware::build_sources(&sources, &key, m.name, &p, board, 0)? {
        Build::Image(image) => image,
        Build::DoesNotFit { region, needed } => {
            anyhow::bail!("the kernel-check image does not fit {} on {}: {region} needs {needed} B", region, board.name)
        }
    };
    let measurement = deploy::target_for(board, probe)
        .and_then(|mut t| t.deploy(Deployable { elf: &image.elf, rtt_address: image.rtt_address }, timeout))?;
    measurement
        .kernel_check
        .ok_or_else(|| anyhow::anyhow!("the kernel-check image on {} reported no check", board.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_that_cannot_be_sent_is_refused_before_anything_is_built() {
        let mut m = harness::zoo::build("tiny").unwrap();
        let board = crate::boards::find("qemu-m4").unwrap();
        let p = harness::plan::plan_schedule(
            &m.as_model(),
            &"1@2x2,5@2x2".parse().unwrap(),
            Default::default(),
            Default::default(),
        )
        .unwrap();
        check_header(&m.as_model(), &p, &board).unwrap();
        m.name = "m".repeat(crate::models::MAX_NAME);
        let long = Board { name: "b".repeat(200), ..board };
        let e = check_header(&m.as_model(), &p, &long).unwrap_err().to_string();
        assert!(e.contains("does not fit") && e.contains("1@2x2,5@2x2"), "{e}");
    }

    #[test]
    fn results_written_by_a_sweep_do_not_make_the_code_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        assert_eq!(git_rev_in(dir.path()), "unknown", "not a checkout");
        git(&["init", "-q"]);
        std::fs::create_dir_all(dir.path().join("results/s")).unwrap();
        std::fs::write(dir.path().join("results/s/runs.csv"), "a\n").unwrap();
        std::fs::write(dir.path().join("code.rs"), "fn main() {}\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "c"]);
        let clean = git_rev_in(dir.path());
        assert!(!clean.is_empty() && !clean.ends_with("-dirty") && clean != "unknown", "{clean}");
        std::fs::write(dir.path().join("results/s/runs.csv"), "a\nb\n").unwrap();
        assert_eq!(git_rev_in(dir.path()), clean, "new result rows leave the rev clean");
        std::fs::write(dir.path().join("code.rs"), "fn main() { }\n").unwrap();
        assert_eq!(git_rev_in(dir.path()), format!("{clean}-dirty"));
    }
}
