//! End to end on QEMU: build images, deploy, collect over RTT, check against the host engine.
//! Needs `qemu-system-arm` and the thumb targets (scripts/setup.sh installs both).

mod common;

use harness::plan::{InputPlacement, PatchConfig};
use harness::record::CycleSource;
use patchbench::boards;
use patchbench::results::{self, CsvSink, Row, Status};
use patchbench::runner::{self, Job};
use patchbench::sweep::run_jobs;
use std::sync::Arc;
use std::time::Duration;

fn require_qemu() {
    let ok = std::process::Command::new("qemu-system-arm").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "qemu-system-arm is not installed: run scripts/setup.sh (the test command does)");
}

fn job(model: &str, board: &str, config: PatchConfig) -> Job {
    Job {
        model: Arc::new(patchbench::load_model(model).unwrap()),
        schedule: config.schedule(),
        input_in: config.input_in,
        board: boards::find(board).unwrap(),
        repeats: 3,
        timeout: Duration::from_secs(300),
        probe: None,
        inject: Default::default(),
        profile: false,
    }
}

fn assert_measured(r: &Row) {
    assert_eq!(r.status, Status::Ok, "{}: {}", r.run_id, r.message);
    assert!(r.output_ok, "device output CRC must equal the host engine's");
    assert_eq!(r.cycle_source, CycleSource::QemuIcount);
    let (min, med, max) = (r.cycles_min.unwrap(), r.cycles_median.unwrap(), r.cycles_max.unwrap());
    assert!(min > 0 && min <= med && med <= max);
    // QEMU is deterministic: every measured run of an image counts the same, to SysTick's
    // resolution of one tick (1e9 / clock instructions: 40 on the an386, 50 on the an505).
    let tick = 1_000_000_000 / u64::from(r.clock_hz);
    assert!(max - min <= tick, "runs differ by more than one tick ({tick}): {min}..{max}");
    assert_eq!(r.arena_measured_bytes, Some(r.arena_planned_bytes), "oracle 4: measured arena == planned");
    let (stack, stat) = (r.stack_measured_bytes.unwrap(), r.static_ram_bytes.unwrap());
    assert!(stack > 0 && stat > 0);
    assert_eq!(r.total_ram_bytes, Some(r.arena_planned_bytes + stack + stat));
    assert!(r.flash_bytes.unwrap() > 0);
}

#[test]
fn tiny_layerwise_and_patched_on_qemu_match_the_host_and_repeat_exactly() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("runs.csv");
    let arena_input = PatchConfig { input_in: InputPlacement::Arena, ..PatchConfig::new(4, 2, 3) };
    let jobs = vec![
        job("tiny", "qemu-m4", PatchConfig::LAYERWISE),
        job("tiny", "qemu-m4", arena_input),
        job("tiny", "qemu-m33", PatchConfig::new(7, 4, 4)),
    ];
    let rows = run_jobs(jobs.clone(), 2, CsvSink::open(&csv).unwrap(), true, |_| {}).unwrap().rows;
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_measured(r);
    }
    assert_eq!(rows[1].input_in, InputPlacement::Arena);
    assert!(rows[1].planned_macs > rows[0].planned_macs, "halos are recomputed");
    // Every row reached the CSV (in completion order).
    let mut written = results::read(&csv).unwrap();
    written.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let mut expected = rows.clone();
    expected.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(written, expected);

    // Same image again: cached, and the same instruction count.
    let again = runner::execute(&jobs[1], 0, "test");
    assert_measured(&again);
    assert_eq!(again.build_seconds, 0.0, "an unchanged image is not rebuilt");
    assert_eq!(again.cycles_median, rows[1].cycles_median);
}

#[test]
fn a_config_over_the_ram_budget_is_recorded_as_does_not_fit() {
    require_qemu();
    // Layer-wise MobileNetV2 needs a ~250 KB arena: more than 128 KiB of RAM.
    let j = job("mbv2-w0.35-r144", "qemu-m4-128k", PatchConfig::LAYERWISE);
    let arena = harness::plan::plan(&j.model.as_model(), PatchConfig::LAYERWISE).unwrap().arena_peak_bytes as u64;
    assert!(arena > 128 * 1024);
    let r = runner::execute(&j, 2, "test");
    assert_eq!(r.status, Status::DoesNotFit, "{}", r.message);
    // Known from the plan, before anything is built: at least the arena and the stack reserve.
    let needed: u64 = r.message.split_whitespace().find_map(|w| w.parse().ok()).unwrap();
    assert!(needed > arena && needed < arena + 64 * 1024, "{}", r.message);
    assert!(r.message.contains("RAM needs at least") && r.message.contains("planned arena"), "{}", r.message);
    assert_eq!(r.arena_planned_bytes, arena);
    assert!(r.build_seconds == 0.0 && r.image_key.is_empty(), "nothing was built");
    assert!(r.cycles_median.is_none());
}

#[test]
fn imported_tflite_models_run_on_qemu_with_the_host_output() {
    require_qemu();
    let Some(dir) = common::models_dir() else { return };
    let path = |name: &str| dir.join(format!("mlperf-tiny/{name}.tflite")).to_string_lossy().into_owned();
    let (kws, resnet) = (path("kws_ref_model"), path("pretrainedResnet_quant"));
    let jobs = vec![
        job(&kws, "qemu-m4", PatchConfig::LAYERWISE),
        job(&kws, "qemu-m33", PatchConfig { input_in: InputPlacement::Arena, ..PatchConfig::new(3, 2, 2) }),
        // Two residual blocks in the patch stage: their ADDs run tile by tile on the device.
        job(&resnet, "qemu-m4", PatchConfig::new(8, 2, 2)),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let rows = run_jobs(jobs, 2, CsvSink::open(&tmp.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    for r in &rows {
        assert_measured(r);
    }
    assert_eq!((rows[0].model.as_str(), rows[2].model.as_str()), ("kws_ref_model", "pretrainedResnet_quant"));
    assert_eq!(rows[1].input_in, InputPlacement::Arena);
    // The patch stage of ResNet-8 takes its arena below layer-wise's 49,152 B.
    assert!(rows[2].arena_planned_bytes < 49_152, "{}", rows[2].arena_planned_bytes);
}

#[test]
fn random_cnns_with_mean_pad_a_leading_reshape_and_float_boundaries_run_on_qemu_with_the_host_output() {
    require_qemu();
    // The largest patch stage of at least 2x2 pixels that holds an op `wanted` (the
    // differential tests compare such models with TFLM on the host).
    let stage_with = |m: &harness::model::ModelBuf, wanted: &str| {
        let model = m.as_model();
        harness::plan::valid_splits(&model).into_iter().rev().find_map(|split| {
            let out = model.tensor(model.ops[usize::from(split) - 1].output);
            let holds = model.ops[..usize::from(split)].iter().any(|op| op.kind.name() == wanted);
            (holds && out.h >= 2 && out.w >= 2).then(|| PatchConfig::new(split, out.h.min(3), out.w.min(3)))
        })
    };
    let first = |accept: &dyn Fn(&harness::model::ModelBuf) -> Option<PatchConfig>| {
        (0..)
            .find_map(|seed| {
                let bytes = patchbench::tflite::synth::random_cnn(seed);
                let m = patchbench::tflite::import(&bytes, "random").unwrap();
                accept(&m).map(|config| (seed, bytes, config))
            })
            .unwrap()
    };
    // A MEAN, and a PAD in the stage (whose border patches read no input).
    let with_mean_and_pad =
        first(&|m| stage_with(m, "PAD").filter(|_| m.ops.iter().any(|op| op.kind.name() == "MEAN")));
    // A flat input whose RESHAPE runs as the stage's first op.
    let with_flat_input = first(&|m| stage_with(m, "RESHAPE").filter(|_| m.ops[0].kind.name() == "RESHAPE"));
    // A float input QUANTIZEd in the stage, a float output from DEQUANTIZE, two graph outputs:
    // the device CRC covers both outputs' raw bytes.
    let with_boundaries = first(&|m| {
        let model = m.as_model();
        let float = |t| model.tensor(t).dtype == harness::model::DType::F32;
        let ok = float(model.input) && model.outputs.len() == 2 && model.outputs.iter().any(|&t| float(t));
        stage_with(m, "QUANTIZE").filter(|_| ok)
    });
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    for (seed, bytes, config) in [with_mean_and_pad, with_flat_input, with_boundaries] {
        let path = dir.path().join(format!("random{seed}.tflite"));
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_string_lossy().into_owned();
        jobs.extend([job(&path, "qemu-m4", PatchConfig::LAYERWISE), job(&path, "qemu-m4", config)]);
    }
    let rows = run_jobs(jobs, 2, CsvSink::open(&dir.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    for r in &rows {
        assert_measured(r);
        assert!(r.outputs >= 1 && r.output_bytes > 0, "{r:?}");
    }
    // The boundary model's rows: two outputs, one of them float.
    assert!(rows[4..].iter().all(|r| r.outputs == 2), "{:?}", &rows[4..]);
}

/// Every op kind of the deployed models' world on the device: random CNNs chosen until each
/// kind below appears in one of them (in a patch stage where it can be), each run layer-wise
/// and with its largest patch stage; device CRC == host CRC, measured arena == planned.
#[test]
fn every_op_kind_runs_on_qemu_with_the_host_output() {
    require_qemu();
    let kinds = [
        "MUL",
        "CONCATENATION",
        "PRELU",
        "LOGISTIC",
        "HARD_SWISH",
        "LEAKY_RELU",
        "RELU",
        "RELU6",
        "MAXIMUM",
        "MINIMUM",
        "REDUCE_MAX",
        "TRANSPOSE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "QUANTIZE",
        "DEQUANTIZE",
        "LOG_SOFTMAX",
        "CONCATENATION (3 to 5 inputs)",
    ];
    let mut missing: Vec<&str> = kinds.to_vec();
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    for seed in 0..2000 {
        if missing.is_empty() {
            break;
        }
        let bytes = patchbench::tflite::synth::random_cnn(seed);
        let m = patchbench::tflite::import(&bytes, "random").unwrap();
        let model = m.as_model();
        let mut has: Vec<&str> = model.ops.iter().map(|op| op.kind.name()).collect();
        if model.ops.iter().any(|op| op.kind.name() == "CONCATENATION" && op.input_ids().count() > 2) {
            has.push("CONCATENATION (3 to 5 inputs)");
        }
        if !missing.iter().any(|k| has.contains(k)) {
            continue;
        }
        missing.retain(|k| !has.contains(k));
        let path = dir.path().join(format!("random{seed}.tflite"));
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_string_lossy().into_owned();
        jobs.push(job(&path, "qemu-m4", PatchConfig::LAYERWISE));
        if let Some(&split) = harness::plan::valid_splits(&model).last() {
            let out = model.tensor(model.ops[usize::from(split) - 1].output);
            jobs.push(job(&path, "qemu-m4", PatchConfig::new(split, out.h.min(2), out.w.min(2))));
        }
    }
    assert!(missing.is_empty(), "the generator never emitted {missing:?}");
    let rows = run_jobs(jobs, 2, CsvSink::open(&dir.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    for r in &rows {
        assert_measured(r);
    }
}

/// Runs the `patchbench` binary; returns stdout, panics with stderr on failure.
fn patchbench(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench")).args(args).output().unwrap();
    assert!(out.status.success(), "patchbench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_results_folder_skips_measured_images_renders_figures_and_recommends_the_measured_optimum() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    // Every candidate config of `tiny` with grids up to 2x2, on two boards.
    let m = patchbench::load_model("tiny").unwrap();
    let configs = harness::plan::candidates(&m.as_model(), 2, InputPlacement::Flash);
    let listed: Vec<String> =
        configs.iter().skip(1).map(|c| format!("{{ split = {}, patches = \"{}\" }}", c.split, c.grid)).collect();
    let spec = dir.path().join("tiny.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"tiny-all\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\", \"qemu-m33\"]\nrepeats = 1\nbudgets = [\"6KiB\"]\nconfigs = [{}]\n",
            listed.join(", ")
        ),
    )
    .unwrap();
    let out = dir.path().join("tiny-all");
    let (spec_s, out_s) = (spec.to_str().unwrap(), out.to_str().unwrap());
    let first = patchbench(&["sweep", spec_s, "--out", out_s]);
    let csv = out.join("runs.csv");
    let rows = results::read(&csv).unwrap();
    assert_eq!(rows.len(), 2 * configs.len(), "{first}");
    for r in &rows {
        assert_measured(r);
        assert_eq!(r.image_key.len(), 24);
    }
    let keys: std::collections::HashSet<&str> = rows.iter().map(|r| r.image_key.as_str()).collect();
    assert_eq!(keys.len(), rows.len(), "one image per (config, board)");

    // Again: every image has an ok row, nothing is measured, the CSV is unchanged.
    let before = std::fs::read(&csv).unwrap();
    let again = patchbench(&["sweep", spec_s, "--out", out_s]);
    assert!(again.contains(&format!("skipped {} jobs", rows.len())), "{again}");
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    // The folder's own spec.toml reruns into the folder; --rerun measures again.
    let rerun = patchbench(&["sweep", out.join("spec.toml").to_str().unwrap(), "--rerun", "--no-figures"]);
    assert!(!rerun.contains("skipped"), "{rerun}");
    let all = results::read(&csv).unwrap();
    assert_eq!(all.len(), 2 * rows.len());
    assert_eq!(results::latest(all.clone()).len(), rows.len(), "readers keep one row per config");

    // Figures: SVG and PNG of every kind, on QEMU labelled as instructions.
    let figures = out.join("figures");
    for board in ["qemu-m4", "qemu-m33"] {
        for kind in ["memory-profile", "ram-vs-patches", "overhead", "heatmap", "pareto", "predicted"] {
            let svg = std::fs::read_to_string(figures.join(format!("tiny-{board}-{kind}.svg"))).unwrap();
            assert!(svg.contains("instructions (QEMU)"), "{board} {kind}");
            assert!(!svg.contains(">cycles"), "{board} {kind}: QEMU counts are not cycles");
            let png = std::fs::read(figures.join(format!("tiny-{board}-{kind}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{board} {kind}");
        }
    }
    assert!(figures.join("tiny-boards.svg").is_file() && figures.join("tiny-boards.png").is_file());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for part in ["Best measured config per RAM budget", "Pareto front", "patchbench plot", "| 6KiB |"] {
        assert!(summary.contains(part), "{part} in summary.md");
    }

    // With every candidate measured, the recommendation is the exhaustive optimum: fewest
    // median instructions among ok rows within the budget.
    let latest = results::latest(all);
    for board in ["qemu-m4", "qemu-m33"] {
        let mut budgets: Vec<u64> =
            latest.iter().filter(|r| r.board == board).filter_map(|r| r.total_ram_bytes).collect();
        budgets.sort_unstable();
        budgets.dedup();
        let tried: Vec<u64> = budgets.iter().step_by(3).copied().chain([budgets[0] - 1]).collect();
        for budget in tried {
            let json = patchbench(&[
                "recommend",
                "--model",
                "tiny",
                "--board",
                board,
                "--ram-budget",
                &budget.to_string(),
                "--max-grid",
                "2",
                "--results",
                out_s,
                "--json",
            ]);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let optimum = latest
                .iter()
                .filter(|r| r.board == board && r.status == Status::Ok && r.total_ram_bytes.unwrap() <= budget)
                .min_by_key(|r| (r.cycles_median, r.total_ram_bytes));
            match optimum {
                Some(o) => {
                    let best = &v["best"];
                    assert_eq!(best["split"], o.split, "{board} {budget}: {json}");
                    assert_eq!(best["patches"], o.patches.to_string(), "{board} {budget}");
                    assert_eq!(best["measured_cycles"], o.cycles_median.unwrap(), "{board} {budget}");
                    assert_eq!(best["measured_total_ram_bytes"], o.total_ram_bytes.unwrap());
                    let n = v["candidates"].as_array().unwrap().len();
                    let admissible =
                        latest.iter().filter(|r| r.board == board && r.total_ram_bytes.unwrap() <= budget).count();
                    assert_eq!(n, admissible, "{board} {budget}: every admissible config, measured");
                }
                None => {
                    assert!(v["best"].is_null() && v["binding"] == "infeasible", "{json}");
                    assert_eq!(v["smallest"]["measured_total_ram_bytes"], budgets[0]);
                }
            }
            assert!(v["model_error"]["rows"].as_u64().unwrap() > 0);
        }
    }
}

#[test]
fn the_shards_of_a_partitioned_sweep_merge_into_the_unpartitioned_sweep() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "name = \"s\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\", \"qemu-m3\"]\nrepeats = 1\nsplits = [4, 7]\npatches = [\"2x2\", \"3x1\"]\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    patchbench(&["sweep", spec, "--out", &folder("whole"), "--no-figures"]);
    for k in 1..=3 {
        let part = format!("{k}/3");
        let out =
            patchbench(&["sweep", spec, "--out", &folder(&format!("shard{k}")), "--partition", &part, "--no-figures"]);
        assert!(out.contains(&format!("shard {k}/3")), "{out}");
    }
    let merged = folder("merged");
    patchbench(&["merge", &folder("shard1"), &folder("shard2"), &folder("shard3"), "--out", &merged, "--no-figures"]);
    // Merging a shard again adds nothing.
    let again = patchbench(&["merge", &folder("shard2"), "--out", &merged, "--no-figures"]);
    assert!(again.starts_with("0 rows merged"), "{again}");
    let keys = |name: &str| {
        let rows = results::read(&dir.path().join(name).join("runs.csv")).unwrap();
        let mut k: Vec<(String, String, u16, String, String)> = rows
            .iter()
            .map(|r| (r.board.clone(), r.model.clone(), r.split, r.patches.to_string(), r.image_key.clone()))
            .collect();
        k.sort();
        k
    };
    let (whole, merged) = (keys("whole"), keys("merged"));
    assert_eq!(whole.len(), 10, "2 boards x (layer-wise + 2 splits x 2 grids)");
    assert_eq!(merged, whole, "same keys, no duplicates");
    assert!(dir.path().join("merged/spec.toml").is_file());
}

/// Child processes of `pid` (from /proc), with their names.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else { continue };
        let comm = &stat[stat.find('(').unwrap_or(0) + 1..close];
        let ppid: u32 = stat[close + 2..].split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        if ppid == pid {
            out.push((child, comm.to_string()));
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').is_some_and(|c| !s[c + 2..].starts_with('Z')))
}

type Key = (String, u16, String);

/// The rows of a folder after a kill: no line is corrupt, no job has two rows, every row is ok.
fn rows_after_kill(csv: &std::path::Path) -> Vec<Key> {
    if !csv.exists() {
        return Vec::new();
    }
    let (rows, skipped) = results::read_checked(csv).unwrap();
    assert!(skipped.is_empty(), "a kill left a corrupt line: {skipped:?}");
    assert!(rows.iter().all(|r| r.status == Status::Ok), "{rows:?}");
    let mut keys: Vec<Key> = rows.iter().map(|r| (r.model.clone(), r.split, r.patches.to_string())).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, keys.len(), "a job has two rows: {keys:?}");
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "run_id unique per row");
    keys
}

/// Kills a real sweep again and again at random moments (`PATCHBENCH_KILLS` times, 3 by
/// default; `PATCHBENCH_KILL_SEED` replays a run), alternating SIGKILL and SIGTERM: nothing
/// it started may outlive it, no row may be lost, torn or doubled, and the last sweep measures
/// exactly what is missing.
#[test]
fn sweeps_killed_at_random_moments_lose_no_row_and_leave_no_process() {
    use rand::{Rng, SeedableRng};
    require_qemu();
    let kills: usize = std::env::var("PATCHBENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed: u64 = std::env::var("PATCHBENCH_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    eprintln!("kill moments from PATCHBENCH_KILL_SEED={seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("k.toml");
    // MobileNetV2 runs for seconds on QEMU, tiny for a fraction of one: kills land in builds,
    // in runs, and between rows.
    std::fs::write(
        &spec,
        "name = \"k\"\nmodels = [\"tiny\", \"mbv2-w0.35-r144\"]\nboards = [\"qemu-m4\"]\nrepeats = 4\n\
         splits = [6]\npatches = [\"2x2\", \"3x1\", \"1x3\"]\n",
    )
    .unwrap();
    let sweep_args = |out: &std::path::Path| -> Vec<String> {
        let mut a: Vec<String> = ["sweep", spec.to_str().unwrap(), "--out"].map(String::from).to_vec();
        a.push(out.display().to_string());
        a.extend(["--no-figures", "--jobs", "2"].map(String::from));
        a
    };
    let complete = |csv: &std::path::Path| {
        let keys = rows_after_kill(csv);
        assert_eq!(keys.len(), 8, "2 models x (layer-wise + 3 grids): {keys:?}");
    };
    // A sweep that ends before its kill is checked whole, and the next round starts afresh.
    let (mut round, mut landed, mut in_run) = (0, 0, 0);
    let mut before: Vec<Key> = Vec::new();
    while landed < kills {
        let out = dir.path().join(format!("k{round}"));
        let csv = out.join("runs.csv");
        let mut sweep = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench"))
            .args(sweep_args(&out))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = sweep.id();
        let at = Duration::from_millis(rng.gen_range(0..4000));
        let start = std::time::Instant::now();
        let mut started = std::collections::BTreeSet::new();
        while start.elapsed() < at && sweep.try_wait().unwrap().is_none() {
            started.extend(children(pid));
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(status) = sweep.try_wait().unwrap() {
            assert!(status.success(), "round {round}: the sweep failed");
            complete(&csv);
            eprintln!("round {round}: the sweep finished before its kill at {at:?}");
            (round, before) = (round + 1, Vec::new());
            assert!(round <= kills + 10, "the sweep is too quick to be killed");
            continue;
        }
        // Whatever runs now must die with the sweep.
        started.extend(children(pid));
        let signal = if landed % 2 == 0 { libc::SIGKILL } else { libc::SIGTERM };
        // SAFETY: plain kill(2) of our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
        sweep.wait().unwrap();
        landed += 1;
        in_run += usize::from(started.iter().any(|(_, name)| name.starts_with("qemu-system")));
        let killed = std::time::Instant::now();
        while let Some((p, name)) = started.iter().find(|(p, _)| alive(*p)) {
            assert!(killed.elapsed() < Duration::from_secs(10), "{name} ({p}) outlived the sweep that started it");
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = rows_after_kill(&csv);
        assert!(before.iter().all(|key| now.contains(key)), "a kill lost rows: {before:?} -> {now:?}");
        eprintln!(
            "round {round}: killed at {at:?} (signal {signal}): {} rows, {} children ran",
            now.len(),
            started.len()
        );
        before = now;
    }
    // The last sweep measures what is missing; every job ends with exactly one row.
    let out = dir.path().join(format!("k{round}"));
    patchbench(&sweep_args(&out).iter().map(String::as_str).collect::<Vec<_>>());
    complete(&out.join("runs.csv"));
    eprintln!(
        "{landed} kills landed, {in_run} while an emulator ran, {round} sweeps ended first; no row lost, none left"
    );
}

#[test]
fn device_failures_on_qemu_end_as_their_own_status_with_the_reason() {
    require_qemu();
    use patchbench::firmware::Inject;
    let with = |inject: Inject| Job {
        inject,
        timeout: Duration::from_secs(5),
        ..job("tiny", "qemu-m4", PatchConfig::LAYERWISE)
    };
    let jobs = vec![
        with(Inject::Hardfault),
        with(Inject::Hang),
        with(Inject::CorruptFrame),
        with(Inject::WrongOutput),
        with(Inject::OldProtocol),
    ];
    let dir = tempfile::tempdir().unwrap();
    let rows = run_jobs(jobs, 2, CsvSink::open(&dir.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    let expect = [
        (Status::Fault, "HardFault at PC 0x"),
        (Status::Timeout, "no end record within 5 s"),
        (Status::Invalid, "checksum"),
        (Status::WrongOutput, "differs from the host engine's"),
        (Status::Invalid, "record protocol"),
    ];
    for (r, (status, text)) in rows.iter().zip(expect) {
        assert_eq!(r.status, status, "{}", r.message);
        assert!(r.message.contains(text), "{text} in {}", r.message);
        assert!(r.run_seconds > 0.0, "a failed run records how long it took");
    }
    assert!(rows[0].message.contains("UNDEFINSTR"), "{}", rows[0].message);
    // A corrupt or foreign stream is never taken as a measurement.
    assert!(rows[2].cycles_median.is_none() && rows[4].cycles_median.is_none());
}

#[test]
fn an_emulator_dying_mid_run_ends_the_run_as_error_with_its_stderr() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_patchbench"))
        .args(["run", "--model", "tiny", "--board", "qemu-m4", "--inject", "hang", "--timeout", "120"])
        .arg("--out")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    // The emulator that runs the image (not the `qemu-system-arm --version` of the tool check).
    let qemu = loop {
        let emulator = children(run.id()).into_iter().find(|(pid, name)| {
            name.starts_with("qemu-system")
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.windows(7).any(|w| w == b"-kernel"))
        });
        if let Some((pid, _)) = emulator {
            break pid;
        }
        assert!(run.try_wait().unwrap().is_none(), "patchbench run ended before its emulator started");
        assert!(start.elapsed() < Duration::from_secs(600), "no emulator started");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) of a live process this test found; QEMU says who terminated it.
    assert_eq!(unsafe { libc::kill(qemu as libc::pid_t, libc::SIGTERM) }, 0);
    let out = run.wait_with_output().unwrap();
    assert!(!out.status.success(), "a run whose emulator died must fail");
    assert!(start.elapsed() < Duration::from_secs(100), "noticed long before the 120 s timeout");
    let rows = results::read(&dir.path().join("runs.csv")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, Status::Error, "{}", rows[0].message);
    assert!(rows[0].message.contains("QEMU exited"), "{}", rows[0].message);
    assert!(rows[0].message.contains("terminating on signal"), "QEMU's stderr: {}", rows[0].message);
}

/// QEMU that refuses to start says why, with its own words.
#[test]
fn an_emulator_that_cannot_start_says_why() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.elf");
    let e = patchbench::deploy::qemu::Qemu::start("mps2-an386", &missing).err().expect("no image, no emulator");
    let e = format!("{e:#}");
    // QEMU opens the gdbstub socket before it loads the image: it may die before or during
    // the handshake, and either way the error is its exit, not a broken pipe.
    assert!(e.contains("QEMU exited (exit status: 1)"), "{e}");
    assert!(e.contains("missing.elf"), "QEMU's stderr: {e}");
}

/// The optimized kernel sets on the cores that run them: a kernel-check image runs the cases
/// of `harness::kernels::check` (the suite the host runs against the portable twins) on
/// qemu-m4 (Armv7E-M) and qemu-m33 (Armv8-M Mainline with the DSP extension), where the `dsp`
/// set runs its inline assembly, and on qemu-m3 (Armv7-M), where the `portable` set runs the
/// twins; every kernel call gives the reference kernels' bytes.
#[test]
fn the_optimized_kernel_sets_give_the_reference_bytes_on_qemu_m4_m33_and_m3() {
    use harness::kernels::KernelSet;
    require_qemu();
    for (name, set) in [("qemu-m4", KernelSet::Dsp), ("qemu-m33", KernelSet::Dsp), ("qemu-m3", KernelSet::Portable)] {
        let board = patchbench::boards::find(name).unwrap();
        assert_eq!(board.kernels(), set, "{name} runs the {set} set");
        let report = patchbench::runner::kernel_check(&board, 150, None, Duration::from_secs(300)).unwrap();
        assert_eq!(report.kernels, set);
        assert_eq!(report.failure, None, "{name}");
        assert_eq!(report.calls, 7 * 150, "{name}");
        assert!(report.large > 0, "{name}: no window beyond the set's scratch");
    }
}

/// `profile`: one more run, op by op, on the device; every op of the model has its count,
/// patch-stage ops ran once per patch, the counts add up to about one inference (plus the
/// profile's own clock reads), and `ops.csv` gets one row per op beside `runs.csv`.
#[test]
fn a_profiled_image_reports_every_op_and_writes_ops_csv() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let config = PatchConfig::new(4, 2, 2);
    let job = Job { profile: true, ..job("tiny", "qemu-m4", config) };
    let ops = job.model.ops.len();
    let rows = run_jobs(vec![job], 1, CsvSink::open(&dir.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    let r = &rows[0];
    assert_measured(r);
    assert_eq!(r.op_counts.len(), ops);
    let patches = u32::from(config.grid.nh) * u32::from(config.grid.nw);
    for c in &r.op_counts {
        assert_eq!(c.runs, if c.stage { patches } else { 1 }, "op {} ({})", c.op, c.kind);
        assert!(c.count > 0, "op {} ({}) counted nothing", c.op, c.kind);
    }
    let total: u64 = r.op_counts.iter().map(|c| c.count).sum();
    let median = r.cycles_median.unwrap();
    assert!(total >= median * 9 / 10 && total <= median * 3 / 2, "profile {total} vs inference {median}");
    let written = patchbench::results::read_ops(&dir.path().join("ops.csv")).unwrap();
    assert_eq!(written.len(), ops);
    assert!(written.iter().all(|o| o.run_id == r.run_id && o.kernels == r.kernels));
    let share: f64 = written.iter().map(|o| o.share_pct).sum();
    assert!((share - 100.0).abs() < 0.1, "shares add up to {share} %");
}

/// Oracles 3 and 4 for several stages: schedules of several recompute stages, some found by
/// the search, run on QEMU with the host engine's output CRC and the planned arena measured,
/// on the zoo's models and on random CNNs nobody has seen; the row carries the schedule whole.
#[test]
fn multi_stage_schedules_run_on_qemu_with_the_host_output_and_the_planned_arena() {
    use harness::plan::{search, Objective, Schedule};
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut with = |model: &str, schedule: Schedule, input_in: InputPlacement| {
        let j = Job { schedule, input_in, ..job(model, "qemu-m4", PatchConfig::LAYERWISE) };
        jobs.push(j);
    };
    with("mbv2-w0.35-r144", "6@4x4,13@4x4".parse().unwrap(), InputPlacement::Flash);
    with("tiny", "1@2x2,4@1x1,7@2x2".parse().unwrap(), InputPlacement::Arena);
    for model in ["tiny", "random:11", "random:12"] {
        let m = patchbench::load_model(model).unwrap();
        let found =
            search(&m.as_model(), InputPlacement::Flash, Objective::LeastArena { max_mac_factor: 1.5 }).unwrap();
        with(model, found.schedule, InputPlacement::Flash);
    }
    let expected: Vec<Schedule> = jobs.iter().map(|j| j.schedule.effective()).collect();
    assert!(expected.iter().filter(|s| s.stages().len() > 1).count() >= 2, "{expected:?}");
    let rows = run_jobs(jobs, 2, CsvSink::open(&dir.path().join("runs.csv")).unwrap(), true, |_| {}).unwrap().rows;
    for (r, s) in rows.iter().zip(&expected) {
        assert_measured(r);
        assert_eq!(r.schedule, *s);
    }
    // Read back whole: the schedule column, commas and all.
    let back = results::read(&dir.path().join("runs.csv")).unwrap();
    for s in &expected {
        assert!(back.iter().any(|r| r.schedule == *s), "{s} in runs.csv");
    }
}
