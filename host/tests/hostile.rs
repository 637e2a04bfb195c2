//! What a hostile local user, or a careless one, tries: another user at QEMU's gdbstub, links
//! and locks in a results folder, absurd models, a hanging tool, a full disk, corrupt shards,
//! and `plot`, `sweep` and `merge` killed at random moments. Each test reproduces the attack
//! through the CLI, as a user meets it.

use patchbench::results::{self, Row, Status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn pb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchbench"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A results folder as a sweep of `tiny` on qemu-m4 leaves it, without running anything: a
/// spec, `rows` rows (layer-wise first, then patch configs) with the image keys the sweep
/// computes (so a sweep of the spec skips them all), and no figures yet.
fn fake_folder(dir: &Path, rows: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let spec_text = "name = \"t\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\"]\nsplits = [1, 2]\npatches = [\"2x2\", \"2x1\"]\nbudgets = [\"8KiB\"]\n";
    std::fs::write(dir.join("spec.toml"), spec_text).unwrap();
    let spec = patchbench::sweep::Spec::load(&dir.join("spec.toml")).unwrap();
    let jobs = spec.jobs().unwrap().jobs;
    let mut sink = results::CsvSink::open(&dir.join("runs.csv")).unwrap();
    for (i, job) in jobs.iter().take(rows).enumerate() {
        let prepared = patchbench::runner::prepare(job).unwrap();
        let m = job.model.as_model();
        let p = harness::plan::plan_schedule(&m, &job.schedule, job.input_in, Default::default()).unwrap();
        let (split, grid) = job.schedule.as_one_stage().unwrap();
        let count = 100_000 + 7_000 * i as u64;
        let arena = p.arena_peak_bytes as u64;
        sink.append(&Row {
            run_id: format!("20261201T000000.{i:03}-fake-{}", job.board.name),
            timestamp: format!("2026-12-01T00:00:00.{i:03}Z"),
            board: job.board.name.clone(),
            cpu: job.board.cpu.clone(),
            kernels: job.board.kernels(),
            cycle_source: job.board.cycle_source,
            clock_hz: job.board.clock_hz,
            model: m.name.to_string(),
            model_hash: format!("{:016x}", m.hash()),
            schedule: job.schedule.effective(),
            split,
            patches: grid,
            input_in: job.input_in,
            repeats: 3,
            macs: m.macs(),
            planned_macs: p.planned_macs,
            recompute_overhead_pct: p.recompute_overhead_pct,
            cycles_min: Some(count),
            cycles_median: Some(count),
            cycles_max: Some(count),
            arena_planned_bytes: arena,
            arena_measured_bytes: Some(arena),
            stack_measured_bytes: Some(900),
            static_ram_bytes: Some(300),
            total_ram_bytes: Some(arena + 1200),
            flash_bytes: Some(40_000),
            outputs: 1,
            output_crc: "01234567".into(),
            output_ok: true,
            status: Status::Ok,
            image_key: prepared.key.clone(),
            ..Row::default()
        })
        .unwrap();
    }
    dir.join("runs.csv")
}

/// Every file below `dir` (relative path -> bytes), but the lock and `.pb-tmp-*` files a
/// killed process may leave (no reader takes them for results).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !name.starts_with(patchbench::files::TMP_PREFIX) && !name.ends_with(".lock") {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// A copy of the real `qemu-system-arm` to call from fakes, or `None` (said) without QEMU.
fn real_qemu() -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", "command -v qemu-system-arm"]).output().ok()?;
    let path = text(&out.stdout).trim().to_string();
    if path.is_empty() {
        eprintln!("SKIPPED (no qemu-system-arm)");
        return None;
    }
    Some(PathBuf::from(path))
}

/// A directory holding an executable `qemu-system-arm` with `script` as its body, to put first
/// on PATH.
fn fake_qemu(dir: &Path, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("qemu-system-arm");
    std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// The name of a second local user for the two-user tests: created when this runs as root
/// (`useradd`), `None` (said) otherwise.
fn other_user() -> Option<&'static str> {
    const NAME: &str = "pbhostile";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED (two users): not root, cannot create a second user");
        return None;
    }
    let exists = Command::new("id").arg(NAME).output().is_ok_and(|o| o.status.success());
    if !exists {
        let made = Command::new("useradd").args(["--system", "--no-create-home", NAME]).output();
        // A parallel test may have made it in between.
        let exists = Command::new("id").arg(NAME).output().is_ok_and(|o| o.status.success());
        if !exists {
            eprintln!("SKIPPED (two users): useradd failed: {made:?}");
            return None;
        }
    }
    Some(NAME)
}

#[test]
fn another_user_cannot_reach_the_gdbstub_whatever_the_umask() {
    let Some(qemu) = real_qemu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir(&log).unwrap();
    // The fake starts the real QEMU, then, once the socket is there, records its directory's
    // mode and tries to connect as the other user.
    let path = fake_qemu(
        dir.path(),
        &format!(
            r#"sock=""
for a in "$@"; do case "$a" in socket,*) sock=$(printf '%s' "$a" | sed 's/.*path=\([^,]*\),.*/\1/');; esac; done
[ -z "$sock" ] && exec '{qemu}' "$@"
'{qemu}' "$@" &
pid=$!
i=0; while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
stat -c %a "$(dirname "$sock")" > '{log}/mode'
if [ -n "$PB_OTHER" ]; then
  runuser -u "$PB_OTHER" -- python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$sock" 2> '{log}/connect.err'
  echo $? > '{log}/connect.rc'
fi
wait $pid"#,
            qemu = qemu.display(),
            log = log.display()
        ),
    );
    let other = other_user();
    let out = dir.path().join("out");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "umask 000; exec '{}' run --model tiny --board qemu-m4 --out '{}'",
            env!("CARGO_BIN_EXE_patchbench"),
            out.display()
        ))
        .env("PATH", path);
    if let Some(u) = other {
        cmd.env("PB_OTHER", u);
    }
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(std::fs::read_to_string(log.join("mode")).unwrap().trim(), "700", "the socket's directory");
    if other.is_some() {
        let rc = std::fs::read_to_string(log.join("connect.rc")).unwrap();
        let err = std::fs::read_to_string(log.join("connect.err")).unwrap();
        assert_ne!(rc.trim(), "0", "the other user connected to the gdbstub");
        assert!(err.contains("Permission denied"), "{err}");
    }
}

#[test]
fn a_sweep_refused_by_the_folder_lock_leaves_every_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("r");
    let csv = fake_folder(&folder, 2);
    let before = snapshot(&folder);
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "name = \"o\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m3\"]\n").unwrap();
    let held = results::FolderLock::take(&csv).unwrap();
    let o = run(pb().arg("sweep").arg(&other).arg("--out").arg(&folder));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("another patchbench"), "{}", text(&o.stderr));
    assert_eq!(snapshot(&folder), before, "spec.toml and runs.csv untouched");
    drop(held);
}

#[test]
fn lock_and_results_links_to_another_users_file_are_refused_or_replaced_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim-bashrc");
    std::fs::write(&victim, "export PRECIOUS=1\n").unwrap();
    let shard = dir.path().join("shard");
    fake_folder(&shard, 3);
    // A shared folder another user prepared: the lock is a link to the victim's file.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::symlink(&victim, shared.join(".runs.csv.lock")).unwrap();
    let o = run(pb().arg("merge").arg(&shard).arg("--out").arg(&shared));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("symbolic link"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "export PRECIOUS=1\n");
    assert!(!shared.join("runs.csv").exists(), "nothing written");
    // summary.md and a figure as links: plot replaces the links, not their targets.
    let o = run(pb().arg("plot").arg(&shard));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let figure = std::fs::read_dir(shard.join("figures")).unwrap().next().unwrap().unwrap().path();
    for link in [shard.join("summary.md"), figure] {
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();
    }
    let o = run(pb().arg("plot").arg(&shard));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "export PRECIOUS=1\n");
    assert!(std::fs::read_to_string(shard.join("summary.md")).unwrap().contains("tiny"));
    // The figures folder itself as a link is refused.
    std::fs::rename(shard.join("figures"), dir.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), shard.join("figures")).unwrap();
    let o = run(pb().arg("plot").arg(&shard));
    assert!(!o.status.success() && text(&o.stderr).contains("symbolic link"), "{}", text(&o.stderr));
}

#[test]
fn a_model_named_with_a_newline_generates_sources_that_say_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("new\nline.tflite");
    std::fs::write(&model, patchbench::tflite::synth::random_cnn(7)).unwrap();
    let gen = dir.path().join("gen");
    let o = run(pb().args(["gen", "--board", "qemu-m4", "--model"]).arg(&model).arg("--out").arg(&gen));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let src = std::fs::read_to_string(gen.join("model.rs")).unwrap();
    let first = src.lines().next().unwrap();
    assert!(first.starts_with("// Generated by patchbench for new_line /"), "{first}");
    assert!(src.contains("pub const MODEL_NAME: &str = \"new_line\";"));
    assert!(!src.lines().any(|l| l == "line / qemu-m4" || l.starts_with("line")), "no line of the name of its own");
}

/// A 5 KB `.tflite` whose one op (MAX_POOL_2D 2x2) declares a `1 x side x side x channels` input.
fn absurd_model(side: i32, channels: i32) -> Vec<u8> {
    use patchbench::tflite::schema as fb;
    let mut s = patchbench::tflite::synth::Builder::new();
    let x = s.act("input", &[1, side, side, channels], 0.02, 0);
    let y = s.act("pool", &[1, side / 2, side / 2, channels], 0.02, 0);
    let options = fb::BuiltinOptions::Pool2DOptions(Box::new(fb::Pool2DOptions {
        padding: fb::Padding::Valid,
        stride_w: 2,
        stride_h: 2,
        filter_width: 2,
        filter_height: 2,
        ..Default::default()
    }));
    s.op(patchbench::tflite::ops::MAX_POOL_2D, &[x], &[y], Some(options));
    s.bytes(x, y)
}

#[test]
fn an_absurd_model_is_does_not_fit_before_anything_is_made_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huge.tflite"), absurd_model(65535, 64)).unwrap();
    std::fs::write(dir.path().join("wide.tflite"), absurd_model(65535, 1)).unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "name = \"s\"\nmodels = [\"huge.tflite\", \"wide.tflite\", \"tiny\"]\nboards = [\"qemu-m4\"]\nrepeats = 1\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let start = Instant::now();
    let o = run(pb().arg("sweep").arg(&spec).arg("--out").arg(&out).arg("--no-figures"));
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let rows = results::read(&out.join("runs.csv")).unwrap();
    let status = |m: &str| rows.iter().find(|r| r.model == m).map(|r| (r.status, r.message.clone()));
    for m in ["huge", "wide"] {
        let (s, msg) = status(m).unwrap();
        assert_eq!(s, Status::DoesNotFit, "{m}: {msg}");
        assert!(msg.contains("RAM needs at least") && msg.contains("planned arena"), "{msg}");
    }
    assert_eq!(status("tiny").unwrap().0, Status::Ok);
    eprintln!("sweep with absurd models: {:.1} s", start.elapsed().as_secs_f64());
    // Nothing of gigabytes was made anywhere: the cache holds no input of the absurd models.
    let o = run(pb()
        .args(["random-input", "--model"])
        .arg(dir.path().join("wide.tflite"))
        .arg("--out")
        .arg(dir.path().join("in.bin")));
    assert!(!o.status.success() && text(&o.stderr).contains("input shape"), "{}", text(&o.stderr));
    assert!(!dir.path().join("in.bin").exists());
    let o = run(pb()
        .args(["run", "--board", "qemu-m4", "--model"])
        .arg(dir.path().join("huge.tflite"))
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "a does-not-fit run is a result: {}", text(&o.stderr));
    assert!(text(&o.stdout).contains("does-not-fit"), "{}", text(&o.stdout));
    let o = run(pb().args(["build", "--board", "qemu-m4", "--model"]).arg(dir.path().join("wide.tflite")));
    assert!(o.status.success() && text(&o.stdout).contains("does-not-fit: RAM"), "{}", text(&o.stderr));
    let o = run(pb()
        .args(["gen", "--board", "qemu-m4", "--model"])
        .arg(dir.path().join("wide.tflite"))
        .arg("--out")
        .arg(dir.path().join("gen")));
    assert!(!o.status.success() && text(&o.stderr).contains("planned arena"), "{}", text(&o.stderr));
    assert!(!dir.path().join("gen/input.bin").exists());
}

#[test]
fn a_hanging_qemu_is_a_bounded_error_and_dies_with_patchbench() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let path = fake_qemu(dir.path(), &format!("echo $$ > '{}'\nexec sleep 600", pid_file.display()));
    let alive = |pid: i32| unsafe { libc::kill(pid, 0) } == 0 && !zombie(pid);
    let start = Instant::now();
    let o = run(pb()
        .args(["run", "--model", "tiny", "--board", "qemu-m4", "--out"])
        .arg(dir.path().join("out"))
        .env("PATH", &path)
        .env("PATCHBENCH_TOOL_TIMEOUT_S", "2"));
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("qemu-system-arm --version") && e.contains("did not finish within 2 s"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(60));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(!alive(pid), "the hanging check was killed");
    // patchbench SIGKILLed while it waits: the check dies with it.
    std::fs::remove_file(&pid_file).unwrap();
    let mut child = pb()
        .args(["run", "--model", "tiny", "--board", "qemu-m4", "--out"])
        .arg(dir.path().join("out"))
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let since = Instant::now();
    while !pid_file.exists() && since.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let since = Instant::now();
    while alive(pid) && since.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "the --version child outlived patchbench");
}

/// A process that exited but was not reaped yet (its parent died: init reaps it soon).
fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

#[test]
fn merge_says_which_lines_of_a_shard_are_not_rows() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("shard");
    let csv = fake_folder(&shard, 3);
    let mut t = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    let broken = lines[2].replacen(",ok,", ",maybe,", 1);
    t = format!("{}\n{}\n{broken}\n{}\n", lines[0], lines[1], lines[3]);
    std::fs::write(&csv, t).unwrap();
    let out = dir.path().join("merged");
    let o = run(pb().arg("merge").arg(&shard).arg("--out").arg(&out).arg("--no-figures"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (so, se) = (text(&o.stdout), text(&o.stderr));
    assert!(so.contains("2 rows merged") && so.contains("1 lines that are not rows skipped"), "{so}");
    assert!(se.contains("line 3") && se.contains("maybe"), "{se}");
}

#[test]
fn a_full_disk_leaves_every_file_whole_and_errors_name_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("f");
    let shard = dir.path().join("shard");
    fake_folder(&folder, 2);
    fake_folder(&shard, 4);
    // Rows of their own: a merge adds them.
    let mut t = std::fs::read_to_string(shard.join("runs.csv")).unwrap();
    t = t.replace("-fake-", "-shard-");
    std::fs::write(shard.join("runs.csv"), t).unwrap();
    let o = run(pb().arg("plot").arg(&folder));
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A killed writer's torn last line, for the repair to set aside.
    let mut csv = std::fs::OpenOptions::new().append(true).open(folder.join("runs.csv")).unwrap();
    std::io::Write::write_all(&mut csv, b"20261201T9-torn,2026-12").unwrap();
    drop(csv);
    let states = dir.path().join("states");
    std::fs::create_dir(&states).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // A small tmpfs of its own, in a mount namespace of its own, filled to the last byte.
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=16m tmpfs '{mnt}' || exit 77
cp -a '{folder}' '{mnt}/f' && cp -a '{shard}' '{mnt}/shard' || exit 78
dd if=/dev/zero of='{mnt}/fill' bs=4k 2>/dev/null
dd if=/dev/zero of='{mnt}/fill2' bs=1 2>/dev/null
'{pb}' merge '{mnt}/shard' --out '{mnt}/f' --no-figures > '{states}/merge.out' 2> '{states}/merge.err'; echo $? > '{states}/merge.rc'
cp -a '{mnt}/f' '{states}/after-merge'
'{pb}' plot '{mnt}/f' > '{states}/plot.out' 2> '{states}/plot.err'; echo $? > '{states}/plot.rc'
cp -a '{mnt}/f' '{states}/after-plot'
rm -f '{mnt}/fill' '{mnt}/fill2'
'{pb}' merge '{mnt}/shard' --out '{mnt}/f' > '{states}/free.out' 2> '{states}/free.err'; echo $? > '{states}/free.rc'
cp -a '{mnt}/f' '{states}/after-free'
"#,
        mnt = mnt.display(),
        folder = folder.display(),
        shard = shard.display(),
        pb = env!("CARGO_BIN_EXE_patchbench"),
        states = states.display(),
    );
    let o = run(Command::new("unshare").arg("-m").arg("sh").arg("-c").arg(&script));
    if matches!(o.status.code(), Some(77)) || (!o.status.success() && text(&o.stderr).contains("unshare")) {
        assert!(std::env::var_os("PATCHBENCH_REQUIRE_DISK_FULL").is_none(), "{}", text(&o.stderr));
        eprintln!("SKIPPED (full disk): cannot mount a tmpfs here: {}", text(&o.stderr));
        return;
    }
    assert!(o.status.success(), "{}", text(&o.stderr));
    let read = |f: &str| std::fs::read_to_string(states.join(f)).unwrap_or_default();
    let before = snapshot(&folder);
    // The merge on a full disk fails, naming the file it could not write; runs.csv, torn
    // line included, is as it was, and no empty fragment is left.
    assert_ne!(read("merge.rc").trim(), "0");
    let e = read("merge.err");
    assert!(e.contains("No space left on device") && e.contains("runs.csv"), "{e}");
    assert_eq!(snapshot(&states.join("after-merge")), before);
    // plot on the full disk: every figure and summary.md as they were, named in the error.
    assert_ne!(read("plot.rc").trim(), "0");
    let e = read("plot.err");
    assert!(e.contains("No space left on device") && (e.contains(".svg") || e.contains(".png")), "{e}");
    assert_eq!(snapshot(&states.join("after-plot")), before);
    // Space again: the repair and the merge go through.
    assert_eq!(read("free.rc").trim(), "0", "{}", read("free.err"));
    let after = snapshot(&states.join("after-free"));
    let fragment = after.iter().find(|(p, _)| p.to_string_lossy().contains("fragment")).expect("a fragment");
    assert_eq!(fragment.1, b"20261201T9-torn,2026-12");
    let (rows, skipped) = results::read_checked(&states.join("after-free/runs.csv")).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    let shard_rows = results::read(&shard.join("runs.csv")).unwrap().len();
    assert!(shard_rows >= 3);
    assert_eq!(ids.len(), 2 + shard_rows, "{ids:?}\n{}", read("free.out"));
}

/// How many times each command is killed (`PATCHBENCH_KILLS`, 3 by default, 10 in CI).
fn kills() -> usize {
    std::env::var("PATCHBENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// Runs `args` on a copy of `start` once to the end (the new state), then `kills()` times on
/// fresh copies, each killed (SIGKILL) at a random moment of that run: every file must then
/// be its old or its new self, whole, except `runs.csv`, which may hold a prefix of the new
/// rows (appends are row by row); running the command again then gives the new state.
fn kill_at_random_moments(start: &Path, scratch: &Path, args: &dyn Fn(&Path) -> Vec<String>) {
    use rand::{Rng, SeedableRng};
    let old = snapshot(start);
    std::fs::create_dir_all(scratch).unwrap();
    // Every run at the same path: spec.toml and summary.md name their folder.
    let work = scratch.join("work");
    copy_dir(start, &work);
    let t = Instant::now();
    let o = run(pb().args(args(&work)));
    let took = t.elapsed();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let new = snapshot(&work);
    assert_ne!(new, old, "the command changes the folder");
    let seed = rand::random::<u64>();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..kills() {
        std::fs::remove_dir_all(&work).unwrap();
        copy_dir(start, &work);
        let at = Duration::from_micros(rng.gen_range(0..took.as_micros().max(1) as u64));
        let mut child = pb()
            .args(args(&work))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        let now = snapshot(&work);
        let why = format!("{:?}, seed {seed}, killed at {at:?} of {took:?}", args(&work)[0]);
        for (path, bytes) in &now {
            let (o, n) = (old.get(path), new.get(path));
            if path.file_name().is_some_and(|n| n == "runs.csv") {
                let o = o.map_or(&[][..], |v| v.as_slice());
                let n = n.expect("runs.csv stays");
                assert!(
                    bytes.starts_with(o) && n.starts_with(bytes) && bytes.ends_with(b"\n"),
                    "{}: {why}",
                    path.display()
                );
                continue;
            }
            assert!(
                Some(bytes) == o || Some(bytes) == n,
                "{} is neither its old nor its new self ({} B): {why}",
                path.display(),
                bytes.len()
            );
        }
        for path in old.keys() {
            assert!(now.contains_key(path), "{} lost: {why}", path.display());
        }
        // Run to the end again: the new state.
        let o = run(pb().args(args(&work)));
        assert!(o.status.success(), "{}: {why}", text(&o.stderr));
        assert_eq!(snapshot(&work), new, "{why}");
    }
}

fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn plot_sweep_and_merge_killed_at_random_moments_leave_files_old_or_new_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    // A folder with figures of its first 2 rows, then 2 more rows: plot redraws them all.
    let folder = dir.path().join("f");
    fake_folder(&folder, 4);
    let csv = std::fs::read_to_string(folder.join("runs.csv")).unwrap();
    let first: String = csv.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(folder.join("runs.csv"), &first).unwrap();
    let o = run(pb().arg("plot").arg(&folder));
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::write(folder.join("runs.csv"), &csv).unwrap();
    kill_at_random_moments(&folder, &dir.path().join("plot"), &|f| vec!["plot".into(), arg(f)]);
    // A sweep whose jobs are all measured: it checks, skips, and redraws.
    kill_at_random_moments(&folder, &dir.path().join("sweep"), &|f| {
        vec!["sweep".into(), arg(&f.join("spec.toml")), "--out".into(), arg(f)]
    });
    // A merge of a shard with rows of its own.
    let shard = dir.path().join("shard");
    fake_folder(&shard, 6);
    let t = std::fs::read_to_string(shard.join("runs.csv")).unwrap().replace("-fake-", "-shard-");
    std::fs::write(shard.join("runs.csv"), t).unwrap();
    let shard_arg = arg(&shard);
    kill_at_random_moments(&folder, &dir.path().join("merge"), &|f| {
        vec!["merge".into(), shard_arg.clone(), "--out".into(), arg(f)]
    });
}

#[test]
fn a_row_of_a_board_this_catalog_does_not_know_leaves_the_others_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("f");
    let csv = fake_folder(&folder, 3);
    let t = std::fs::read_to_string(&csv).unwrap();
    let last = t.lines().last().unwrap().replace(",qemu-m4,", ",lab-board-7,").replace("-fake-", "-lab-");
    std::fs::write(&csv, format!("{t}{last}\n")).unwrap();
    let o = run(pb().arg("plot").arg(&folder));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("lab-board-7") && text(&o.stdout).contains("left out"), "{}", text(&o.stdout));
    assert!(folder.join("figures/tiny-qemu-m4-pareto.svg").is_file());
}
