//! Sweep specs (TOML) and running a grid of jobs on all cores.
//!
//! ```toml
//! name = "mbv2-qemu-m4"            # default output: results/<name>/runs.csv
//! models = ["mbv2-w0.35-r144"]     # zoo names or .tflite paths (relative to the spec file)
//! boards = ["qemu-m4"]
//! repeats = 3                      # measured runs per image, after one warm-up
//! input_in = "flash"               # or "arena"
//! timeout_s = 900                  # per deployment
//! layerwise = true                 # include split 0
//! configs = [{ split = 13, patches = "4x4" }]   # explicit configs, and/or
//! splits = [10, 13]                # every split in `splits` x every grid in `patches`
//! patches = ["2x2", "3x3"]
//! budgets = ["64KiB", "128KiB"]     # RAM budgets of the folder's figures and summary
//! ```

use crate::boards::{self, Board};
use crate::results::{CsvSink, Row, Status};
use crate::runner::{self, Job};
use anyhow::{bail, Context};
use harness::plan::{Grid, InputPlacement};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// One explicit config of a spec.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// Ops in the patch stage.
    pub split: u16,
    /// Grid `NxM`.
    pub patches: Grid,
}

/// A sweep spec file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Name: the default output directory is `results/<name>`.
    pub name: String,
    /// Models.
    pub models: Vec<String>,
    /// Boards.
    pub boards: Vec<String>,
    /// Measured runs per image.
    #[serde(default = "default_repeats")]
    pub repeats: u16,
    /// Where the input lives.
    #[serde(default)]
    pub input_in: InputPlacement,
    /// Seconds per deployment.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Include layer-wise inference.
    #[serde(default = "default_true")]
    pub layerwise: bool,
    /// Explicit configs.
    #[serde(default)]
    pub configs: Vec<ConfigSpec>,
    /// Splits crossed with `patches`.
    #[serde(default)]
    pub splits: Vec<u16>,
    /// Grids crossed with `splits`.
    #[serde(default)]
    pub patches: Vec<Grid>,
    /// Schedules, each in its text (`"13@4x4"`, `"6@2x2,13@3x3"`), measured beside the
    /// configs above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<harness::plan::Schedule>,
    /// The debug probe of each real board, `VID:PID[:SERIAL]` (`patchbench probes`); a board
    /// without one takes the only attached probe.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub probes: std::collections::BTreeMap<String, String>,
    /// Profile every image op by op (an `ops.csv` beside `runs.csv`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub profile: bool,
    /// Kernel set of every image (default: each board's own, `dsp` on cores with the DSP
    /// extension, `portable` elsewhere); `"reference"` measures TFLM's reference kernels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<harness::kernels::KernelSet>,
    /// RAM budgets drawn in the folder's figures and tabled in its summary (`"64KiB"`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<crate::units::Bytes>,
    /// The spec file: relative model paths are resolved against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_repeats() -> u16 {
    3
}
fn default_timeout() -> u64 {
    900
}
fn default_true() -> bool {
    true
}

impl Spec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> anyhow::Result<Spec> {
        if path.is_dir() {
            bail!("{} is a directory; give the spec file (e.g. specs/mbv2-qemu-m4.toml)", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Spec::parse(&text, path)
    }

    /// Parses and checks the text of a spec file at `path` (relative models resolve against
    /// its directory).
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Spec> {
        let mut spec: Spec = toml::from_str(text).with_context(|| format!("parsing sweep spec {}", path.display()))?;
        spec.path = path.to_path_buf();
        let at = path.display();
        if !is_plain_name(&spec.name) {
            bail!(
                "{at}: name `{}` is not a plain folder name (letters, digits, `.`, `-`, `_`, not starting with `.`): it names the results folder results/<name>",
                spec.name
            );
        }
        if spec.models.is_empty() || spec.boards.is_empty() {
            bail!("{at}: a sweep needs at least one model and one board");
        }
        if spec.splits.is_empty() != spec.patches.is_empty() {
            bail!("{at}: `splits` and `patches` go together (every split is run with every grid)");
        }
        if spec.repeats == 0 {
            bail!("{at}: repeats must be at least 1");
        }
        if !(1..=MAX_TIMEOUT_S).contains(&spec.timeout_s) {
            bail!(
                "{at}: timeout_s = {} is out of range: give 1 to {MAX_TIMEOUT_S} seconds per deployment",
                spec.timeout_s
            );
        }
        // The same model or board twice would measure every job twice.
        for list in [&mut spec.models, &mut spec.boards] {
            let mut seen = HashSet::new();
            list.retain(|m| seen.insert(m.clone()));
        }
        Ok(spec)
    }

    /// Jobs the spec asks for before invalid configs and duplicates are dropped: known
    /// without expanding anything, so that a huge spec is refused before it uses memory.
    pub fn job_count(&self) -> u128 {
        let configs = u128::from(self.layerwise)
            + self.configs.len() as u128
            + self.schedules.len() as u128
            + self.splits.len() as u128 * self.patches.len() as u128;
        self.models.len() as u128 * self.boards.len() as u128 * configs
    }

    /// The schedules of the spec, in order, without duplicates (a 1x1 grid is layer-wise at
    /// any split): layer-wise, `configs`, `splits` x `patches`, then `schedules`.
    pub fn configs(&self) -> Vec<harness::plan::Schedule> {
        let mut out = Vec::new();
        if self.layerwise {
            out.push(harness::plan::Schedule::LAYERWISE);
        }
        for c in &self.configs {
            out.push(harness::plan::Schedule::one_stage(c.split, c.patches));
        }
        for &split in &self.splits {
            for &grid in &self.patches {
                out.push(harness::plan::Schedule::one_stage(split, grid));
            }
        }
        out.extend(self.schedules.iter().copied());
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.effective()));
        out
    }

    /// The directory of the spec file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// What `load_model` gets for a `models` entry: a zoo name as it is, a relative path
    /// joined to the spec's directory.
    pub fn model_source(&self, entry: &str) -> String {
        if is_zoo_name(entry) || Path::new(entry).is_absolute() {
            entry.to_string()
        } else {
            self.dir().join(entry).to_string_lossy().into_owned()
        }
    }

    /// Loads every model of the spec, each under a name no other model of the spec has: two
    /// different files with the same stem (`v1/model.tflite`, `v2/model.tflite`), or stems
    /// that are the same once made safe (`a,b` and `a;b`), would otherwise share rows,
    /// figures and summary sections. Such models are named by as many of their path's last
    /// components as tell them apart (`v1-model`, `v2-model`), or with their hash's first 8
    /// digits when nothing else does. An entry that does not load is returned as its error.
    pub fn load_models(&self) -> anyhow::Result<Vec<(String, anyhow::Result<Arc<harness::model::ModelBuf>>)>> {
        let mut out = Vec::new();
        for name in &self.models {
            let source = self.model_source(name);
            if !is_zoo_name(name)
                && !Path::new(&source).exists()
                && !name.contains(['/', '\\'])
                && !name.ends_with(".tflite")
            {
                let e = anyhow::anyhow!(
                    "model `{name}` is neither a zoo name ({}), random:SEED, nor a file",
                    crate::models::zoo_names()
                );
                out.push((name.clone(), Err(e)));
                continue;
            }
            out.push((name.clone(), crate::load_model(&source).map_err(anyhow::Error::from)));
        }
        let names: Vec<Option<(String, u64)>> =
            out.iter().map(|(_, m)| m.as_ref().ok().map(|m| (m.name.clone(), m.as_model().hash()))).collect();
        let clashes = |i: usize| {
            names[i].as_ref().is_some_and(|(n, h)| names.iter().flatten().any(|(n2, h2)| n2 == n && h2 != h))
        };
        let clashing: Vec<usize> = (0..out.len()).filter(|&i| clashes(i)).collect();
        let mut out: Vec<_> = out.into_iter().map(|(e, m)| (e, m.map(Arc::new))).collect();
        if clashing.is_empty() {
            return Ok(out);
        }
        let mut taken: HashSet<String> = (0..out.len())
            .filter(|i| !clashing.contains(i))
            .filter_map(|i| names[i].as_ref())
            .map(|(n, _)| n.clone())
            .collect();
        let components = |entry: &str| -> Vec<String> {
            let p = Path::new(entry);
            let mut parts: Vec<String> = p
                .parent()
                .into_iter()
                .flat_map(|d| d.components())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            parts.push(p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            parts
        };
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &i in &clashing {
            let name = names[i].as_ref().map(|(n, _)| n);
            match groups.iter_mut().find(|g| names[g[0]].as_ref().map(|(n, _)| n) == name) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        for group in groups {
            let longest = group.iter().map(|&i| components(&out[i].0).len()).max().unwrap_or(1);
            let by_path = (2..=longest).find_map(|k| {
                let candidates: Vec<String> = group
                    .iter()
                    .map(|&i| {
                        let parts = components(&out[i].0);
                        crate::models::safe_name(&parts[parts.len().saturating_sub(k)..].join("-"))
                    })
                    .collect();
                let unique = candidates.iter().collect::<HashSet<_>>().len() == candidates.len();
                (unique && candidates.iter().all(|c| !taken.contains(c))).then_some(candidates)
            });
            let renamed = by_path.unwrap_or_else(|| {
                group
                    .iter()
                    .map(|&i| {
                        let (n, h) = names[i].as_ref().expect("clashing models loaded");
                        format!("{n}-{:08x}", h >> 32)
                    })
                    .collect()
            });
            for (&i, name) in group.iter().zip(renamed) {
                taken.insert(name.clone());
                if let Ok(m) = &mut out[i].1 {
                    Arc::make_mut(m).name = name;
                }
            }
        }
        Ok(out)
    }

    /// Writes this spec as `spec.toml` into the results folder `out`, model paths relative to
    /// `out`, so that `patchbench sweep OUT/spec.toml` runs it again and readers of the folder
    /// find its models.
    pub fn write_to(&self, out: &Path) -> anyhow::Result<()> {
        crate::files::create_dir(out)?;
        let abs_out = out.canonicalize().with_context(|| format!("resolving {}", out.display()))?;
        let mut copy = self.clone();
        for m in &mut copy.models {
            if !is_zoo_name(m) {
                let path = PathBuf::from(self.model_source(m));
                let abs = path.canonicalize().unwrap_or(path);
                *m = pathdiff::diff_paths(&abs, &abs_out).unwrap_or(abs).to_string_lossy().into_owned();
            }
        }
        let text = format!(
            "# The spec that produced runs.csv in this folder (models relative to it).\n\
             # `patchbench sweep {}` measures what is missing; `--rerun` measures all again.\n{}",
            // One line whatever the path holds: a newline would end the comment.
            crate::results::shell_word(&crate::results::display_path(&out.join("spec.toml"))),
            toml::to_string(&copy).context("writing the spec as TOML")?
        );
        crate::files::write_whole(&out.join("spec.toml"), text.as_bytes())
    }

    /// Every job: models x boards x configs.
    pub fn jobs(&self) -> anyhow::Result<Jobs> {
        let at = || self.path.display().to_string();
        let boards: Vec<Board> = self
            .boards
            .iter()
            .map(|b| boards::find(b)?.with_kernels(self.kernels))
            .collect::<Result<_, _>>()
            .with_context(at)?;
        let mut probes = std::collections::HashMap::new();
        for (board, selector) in &self.probes {
            if !self.boards.contains(board) {
                bail!(
                    "{}: probes names board {board}, which is not among the spec's boards ({})",
                    at(),
                    self.boards.join(", ")
                );
            }
            let s: crate::deploy::probe::Selector =
                selector.parse().map_err(|e: String| anyhow::anyhow!("{}: probes.{board}: {e}", at()))?;
            probes.insert(board.clone(), s);
        }
        let configs = self.configs();
        let mut jobs = Vec::new();
        let mut invalid: Vec<String> = Vec::new();
        for (_, model) in self.load_models()? {
            let model = model.map_err(|e| anyhow::anyhow!("{}: {e:#}", at()))?;
            let m = model.as_model();
            // Invalid configs are reported once per model, not run and not recorded.
            let mut valid = Vec::new();
            for &schedule in &configs {
                match harness::plan::check_schedule(&m, &schedule) {
                    Ok(()) => valid.push(schedule),
                    Err(e) => invalid.push(format!("{}: {schedule}: {e}", model.name)),
                }
            }
            for board in &boards {
                for &schedule in &valid {
                    jobs.push(Job {
                        model: model.clone(),
                        schedule,
                        input_in: self.input_in,
                        board: board.clone(),
                        repeats: self.repeats,
                        timeout: Duration::from_secs(self.timeout_s),
                        probe: probes.get(&board.name).cloned(),
                        inject: Default::default(),
                        profile: self.profile,
                    });
                }
            }
        }
        Ok(Jobs { jobs, invalid })
    }
}

/// The jobs of a spec, and the configs it names that cannot run (one line each, with why).
#[derive(Debug)]
pub struct Jobs {
    /// Every (model, board, valid config).
    pub jobs: Vec<Job>,
    /// `model: split S NxM: reason`, once per model and config.
    pub invalid: Vec<String>,
}

/// What [`run_jobs`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The new rows, in job order.
    pub rows: Vec<Row>,
    /// Jobs skipped because `runs.csv` already has an `ok` row with their image key.
    pub skipped: usize,
    /// What was found wrong in `runs.csv` and dealt with (an incomplete last line set aside,
    /// corrupt lines skipped), for the user.
    pub notes: Vec<String>,
}

/// Longest `timeout_s` a spec may ask for: one day per deployment.
pub const MAX_TIMEOUT_S: u64 = 86_400;

/// Most jobs a sweep runs without `--allow-large`.
pub const MAX_JOBS: u128 = 5_000;

/// A name usable as one folder: no separators, not `.`/`..`, not hidden, not empty.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_zoo_name(entry: &str) -> bool {
    crate::models::is_builtin(entry)
}

/// `--partition K/N`: the K-th of N shards of a sweep (K from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which shard, from 1.
    pub k: usize,
    /// How many shards.
    pub n: usize,
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("`{s}` is not a partition: write K/N with 1 <= K <= N, e.g. 2/4 for the second of four shards");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

impl Partition {
    /// The shard's jobs: every N-th of the spec's job list (models x boards x configs, in
    /// spec order) from the K-th on, so shards are disjoint, cover every job, and are the
    /// same on every machine that reads the same spec.
    pub fn select<T>(self, jobs: Vec<T>) -> Vec<T> {
        jobs.into_iter().enumerate().filter(|(i, _)| i % self.n == self.k - 1).map(|(_, j)| j).collect()
    }
}

/// What [`merge`] did.
#[derive(Debug, Default)]
pub struct Merged {
    /// Rows added to the merged folder.
    pub added: usize,
    /// Rows left out because the merged folder had them already (the same `run_id`).
    pub duplicates: usize,
    /// Lines of the merged folders that are not rows (file, line, why): not merged, and
    /// left where they are.
    pub skipped: Vec<String>,
}

/// Combines the `runs.csv` of `folders` into `out`: every row once (rows are the same row
/// when their `run_id` is; a folder merged twice adds nothing), `out`'s own rows kept, and
/// the first folder's `spec.toml` copied with model paths made relative to `out`. `out`'s
/// lock is taken, and its `runs.csv` checked, before anything is read or written.
pub fn merge(folders: &[PathBuf], out: &Path) -> anyhow::Result<Merged> {
    let csv = out.join("runs.csv");
    for f in folders {
        if !f.join("runs.csv").is_file() {
            bail!("{} has no runs.csv: merge takes results folders written by `patchbench sweep`", f.display());
        }
    }
    let mut sink = CsvSink::open(&csv)?;
    let mut merged = Merged::default();
    let (own, skipped) = crate::results::read_checked(&csv)?;
    merged.skipped.extend(skipped);
    let mut seen: HashSet<String> = own.into_iter().map(|r| r.run_id).collect();
    let mut rows = Vec::new();
    for f in folders {
        let (theirs, skipped) = crate::results::read_checked(&f.join("runs.csv"))?;
        merged.skipped.extend(skipped);
        for r in theirs {
            if seen.insert(r.run_id.clone()) {
                rows.push(r);
            } else {
                merged.duplicates += 1;
            }
        }
    }
    // Time order, so that readers' "later line wins" is also "later measurement wins".
    rows.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.run_id.cmp(&b.run_id)));
    for r in &rows {
        sink.append(r)?;
    }
    merged.added = rows.len();
    if !out.join("spec.toml").is_file() {
        if let Some(spec) = folders.iter().map(|f| f.join("spec.toml")).find(|p| p.is_file()) {
            Spec::load(&spec)?.write_to(out)?;
        }
    }
    Ok(merged)
}

/// The jobs left, and the real boards in use: one job at a time per board (its probe),
/// while QEMU boards and different boards' probes run in parallel.
struct Queue {
    state: Mutex<Pending>,
    freed: std::sync::Condvar,
}

/// Jobs not started (with their index), and the names of real boards running one.
type Pending = (VecDeque<(usize, Job)>, HashSet<String>);

impl Queue {
    fn new(jobs: Vec<Job>) -> Queue {
        Queue {
            state: Mutex::new((jobs.into_iter().enumerate().collect(), HashSet::new())),
            freed: std::sync::Condvar::new(),
        }
    }

    /// The first job whose board is free (waiting while only busy boards' jobs are left).
    fn take(&self) -> Option<(usize, Job)> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.0.is_empty() {
                return None;
            }
            let busy = &st.1;
            if let Some(pos) = st.0.iter().position(|(_, j)| j.board.is_qemu() || !busy.contains(&j.board.name)) {
                let (i, job) = st.0.remove(pos)?;
                if !job.board.is_qemu() {
                    st.1.insert(job.board.name.clone());
                }
                return Some((i, job));
            }
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn release(&self, job: &Job) {
        if !job.board.is_qemu() {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).1.remove(&job.board.name);
            self.freed.notify_all();
        }
    }
}

/// Runs `jobs` on `workers` threads, appending each row to `csv` as soon as it is known.
/// Unless `rerun`, a job whose image key already has an `ok` row in `csv` is skipped: the
/// same image would measure the same. `progress` is called after every row.
///
/// `sink` is the folder's `runs.csv`, opened (and so locked and checked) by the caller before
/// it wrote anything into the folder.
pub fn run_jobs(
    jobs: Vec<Job>,
    workers: usize,
    mut sink: CsvSink,
    rerun: bool,
    mut progress: impl FnMut(&Row),
) -> anyhow::Result<Outcome> {
    let csv = &sink.path().to_path_buf();
    let mut notes: Vec<String> = sink.repaired.take().into_iter().collect();
    let measured: HashSet<String> = if rerun {
        HashSet::new()
    } else {
        let (rows, skipped) = crate::results::read_checked(csv)?;
        notes.extend(skipped);
        rows.into_iter().filter(|r| r.status == Status::Ok && !r.image_key.is_empty()).map(|r| r.image_key).collect()
    };
    let git_rev = runner::git_rev();
    let queue = Queue::new(jobs);
    let (tx, rx) = mpsc::channel::<(usize, Option<Row>)>();
    let mut rows = Vec::new();
    let mut skipped = 0;
    std::thread::scope(|s| -> anyhow::Result<()> {
        for worker in 0..workers.max(1) {
            let tx = tx.clone();
            let (queue, git_rev, measured) = (&queue, &git_rev, &measured);
            s.spawn(move || {
                while let Some((i, job)) = queue.take() {
                    let row = match runner::prepare(&job) {
                        Ok(p) if measured.contains(&p.key) => None,
                        Ok(p) => Some(runner::execute_prepared(&job, &p, worker, git_rev)),
                        Err(e) => Some(runner::unprepared_row(&job, &e, git_rev)),
                    };
                    queue.release(&job);
                    if tx.send((i, row)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, row) in rx {
            match row {
                Some(row) => {
                    sink.append(&row)?;
                    crate::results::append_ops(&csv.with_file_name("ops.csv"), &crate::results::OpRow::of(&row))?;
                    progress(&row);
                    rows.push((i, row));
                }
                None => skipped += 1,
            }
        }
        Ok(())
    })?;
    rows.sort_by_key(|(i, _)| *i);
    Ok(Outcome { rows: rows.into_iter().map(|(_, r)| r).collect(), skipped, notes })
}

/// Cores to use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The default output directory of a spec: the folder of a results folder's own
/// `spec.toml` (rerunning it fills that folder), else `results/<name>`.
pub fn default_out(spec: &Spec) -> PathBuf {
    if spec.path.file_name().is_some_and(|n| n == "spec.toml") && spec.dir().join("runs.csv").is_file() {
        return spec.dir().to_path_buf();
    }
    crate::firmware::workspace_root().join("results").join(&spec.name)
}

/// A summary table of rows (cycles column labelled by cycle source).
pub fn summary_table(rows: &[Row]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let unit = |r: &Row| if r.cycle_source.is_cycles() { "cycles" } else { "instr (QEMU)" };
    let mw = rows.iter().map(|r| r.model.len()).max().unwrap_or(0).max(17);
    let sw = rows.iter().map(|r| r.schedule.to_string().len()).max().unwrap_or(0).max(10);
    let _ = writeln!(
        s,
        "{:<14} {:<mw$} {:<sw$} {:>10} {:>15} {:<12} {:>10} {:>10} {:>8} {:>8}  status",
        "board", "model", "schedule", "overhead%", "median", "unit", "arena plan", "arena meas", "stack", "static"
    );
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    for r in rows {
        let status = if r.status == Status::Ok { "ok".to_string() } else { format!("{}: {}", r.status, r.message) };
        let _ = writeln!(
            s,
            "{:<14} {:<mw$} {:<sw$} {:>10.2} {:>15} {:<12} {:>10} {:>10} {:>8} {:>8}  {}",
            r.board,
            r.model,
            r.schedule.to_string(),
            r.recompute_overhead_pct,
            opt(r.cycles_median),
            unit(r),
            r.arena_planned_bytes,
            opt(r.arena_measured_bytes),
            opt(r.stack_measured_bytes),
            opt(r.static_ram_bytes),
            status
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_expands_to_unique_configs() {
        let spec: Spec = toml::from_str(
            r#"
            name = "t"
            models = ["tiny"]
            boards = ["qemu-m4", "qemu-m3"]
            configs = [{ split = 4, patches = "2x2" }]
            splits = [4, 5]
            patches = ["2x2", "3"]
            "#,
        )
        .unwrap();
        let c = spec.configs();
        assert_eq!(c.len(), 5, "layer-wise + 4:2x2 + 4:3x3 + 5:2x2 + 5:3x3 with 4:2x2 once: {c:?}");
        assert_eq!(spec.jobs().unwrap().jobs.len(), 10);
        // Schedules beside them: the shorthand's twin is the same config; several stages run
        // too, and a schedule that cuts a branch is listed as one that cannot run, with why.
        let schedules = ["4@2x2", "5@1x2", "1@2x2,5@2x2", "2@2x2,5@2x2"];
        let spec = Spec { schedules: schedules.iter().map(|s| s.parse().unwrap()).collect(), ..spec };
        assert_eq!(spec.configs().len(), 8);
        let jobs = spec.jobs().unwrap();
        assert_eq!(jobs.jobs.len(), 14);
        assert!(jobs.jobs.iter().any(|j| j.schedule.to_string() == "1@2x2,5@2x2"));
        assert!(
            jobs.invalid.len() == 1
                && jobs.invalid[0].contains("2@2x2,5@2x2: invalid patch config: split 2 cuts a branch")
                || jobs.invalid.len() == 1 && jobs.invalid[0].contains("2@2x2,5@2x2: split 2 cuts a branch"),
            "{:?}",
            jobs.invalid
        );
        let text = toml::to_string(&spec).unwrap();
        assert!(text.contains("schedules = [\"4@2x2\", \"5@1x2\", \"1@2x2,5@2x2\", \"2@2x2,5@2x2\"]"), "{text}");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let bad: Result<Spec, _> = toml::from_str("name = \"t\"\nmodels = []\nboards = []\nbogus = 1\n");
        assert!(bad.unwrap_err().to_string().contains("bogus"));
        let grid: Result<Spec, _> = toml::from_str("name = \"t\"\nmodels = []\nboards = []\npatches = [\"3xq\"]\n");
        assert!(grid.unwrap_err().to_string().contains("`3xq`: a patch grid is `NxM`"));
        let placement: Result<Spec, _> = toml::from_str("name = \"t\"\nmodels = []\nboards = []\ninput_in = \"ram\"\n");
        assert!(placement.unwrap_err().to_string().contains("`flash` or `arena`"));
        let spec: Spec = toml::from_str("name = \"t\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m9\"]\n").unwrap();
        assert!(format!("{:#}", spec.jobs().unwrap_err()).contains("unknown board"));
    }

    #[test]
    fn relative_model_paths_are_resolved_against_the_spec_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "name = \"s\"\nmodels = [\"tiny\", \"m/a.tflite\", \"/abs/b.tflite\"]\nboards = [\"qemu-m4\"]\n",
        )
        .unwrap();
        let spec = Spec::load(&path).unwrap();
        let sources: Vec<String> = spec.models.iter().map(|m| spec.model_source(m)).collect();
        let joined = dir.path().join("m/a.tflite").to_string_lossy().into_owned();
        assert_eq!(sources, ["tiny".to_string(), joined, "/abs/b.tflite".to_string()]);
        // A missing file is reported by path, not as an unknown zoo name.
        let e = format!("{:#}", spec.jobs().err().unwrap());
        assert!(e.contains("m/a.tflite"), "{e}");
    }

    #[test]
    fn a_results_folder_keeps_a_spec_that_runs_again_from_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("specs/m")).unwrap();
        std::fs::write(dir.path().join("specs/m/a.tflite"), b"x").unwrap();
        let path = dir.path().join("specs/s.toml");
        std::fs::write(
            &path,
            "name = \"s\"\nmodels = [\"tiny\", \"m/a.tflite\"]\nboards = [\"qemu-m4\"]\ninput_in = \"arena\"\n\
             configs = [{ split = 4, patches = \"2x3\" }, { split = 2, patches = \"1x1\" }]\nbudgets = [\"64KiB\"]\n",
        )
        .unwrap();
        let spec = Spec::load(&path).unwrap();
        let out = dir.path().join("results/s");
        spec.write_to(&out).unwrap();
        let again = Spec::load(&out.join("spec.toml")).unwrap();
        assert_eq!(again.models[0], "tiny");
        let model = PathBuf::from(again.model_source(&again.models[1]));
        assert_eq!(model.canonicalize().unwrap(), dir.path().join("specs/m/a.tflite").canonicalize().unwrap());
        assert_eq!(again.configs(), spec.configs());
        assert_eq!(again.budgets, [crate::units::Bytes(65536)]);
        // `split 2, 1x1` is layer-wise: one config, not two.
        assert_eq!(spec.configs().len(), 2);
        assert_eq!(spec.input_in, InputPlacement::Arena);
        // Run from inside the folder, the spec fills that folder.
        std::fs::write(out.join("runs.csv"), "").unwrap();
        assert_eq!(default_out(&again), out);
        assert_eq!(default_out(&spec), crate::firmware::workspace_root().join("results/s"));
    }

    #[test]
    fn partitions_are_disjoint_cover_every_job_and_parse_strictly() {
        let jobs: Vec<usize> = (0..23).collect();
        let mut all: Vec<usize> = (1..=4).flat_map(|k| Partition { k, n: 4 }.select(jobs.clone())).collect();
        all.sort_unstable();
        assert_eq!(all, jobs);
        assert_eq!(Partition { k: 2, n: 4 }.select(jobs.clone()), [1, 5, 9, 13, 17, 21]);
        assert_eq!("2/4".parse::<Partition>(), Ok(Partition { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Partition>().unwrap_err().contains("K/N"), "{bad}");
        }
    }

    #[test]
    fn merging_keeps_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let row =
            |id: &str, ts: &str| Row { run_id: id.into(), timestamp: ts.into(), status: Status::Ok, ..Row::default() };
        let write = |name: &str, rows: &[Row]| {
            let folder = dir.path().join(name);
            let mut sink = CsvSink::open(&folder.join("runs.csv")).unwrap();
            for r in rows {
                sink.append(r).unwrap();
            }
            folder
        };
        let a = write("a", &[row("1", "2026-01-01T00:00:02Z"), row("2", "2026-01-01T00:00:01Z")]);
        let b = write("b", &[row("2", "2026-01-01T00:00:01Z"), row("3", "2026-01-01T00:00:03Z")]);
        let out = dir.path().join("merged");
        let m = merge(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!((m.added, m.duplicates, m.skipped.len()), (3, 1, 0));
        let ids: Vec<String> =
            crate::results::read(&out.join("runs.csv")).unwrap().into_iter().map(|r| r.run_id).collect();
        assert_eq!(ids, ["2", "1", "3"], "in time order");
        let m = merge(&[a, b], &out).unwrap();
        assert_eq!((m.added, m.duplicates), (0, 4), "merging again adds nothing");
        assert!(merge(&[dir.path().join("none")], &out).unwrap_err().to_string().contains("no runs.csv"));
    }

    #[test]
    fn a_real_board_runs_one_job_at_a_time_while_other_boards_run_in_parallel() {
        let model = Arc::new(crate::load_model("tiny").unwrap());
        let job = |board: &str| Job {
            model: model.clone(),
            schedule: harness::plan::Schedule::LAYERWISE,
            input_in: InputPlacement::Flash,
            board: boards::find(board).unwrap(),
            repeats: 1,
            timeout: Duration::from_secs(1),
            probe: None,
            inject: Default::default(),
            profile: false,
        };
        let boards = ["nucleo-f767zi", "nucleo-f767zi", "qemu-m4", "nucleo-f412zg", "qemu-m4", "nucleo-f767zi"];
        let queue = Queue::new(boards.iter().map(|b| job(b)).collect());
        let running: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let most_at_once = Mutex::new(std::collections::HashMap::<String, usize>::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    while let Some((_, j)) = queue.take() {
                        {
                            let mut r = running.lock().unwrap();
                            r.push(j.board.name.clone());
                            let n = r.iter().filter(|b| **b == j.board.name).count();
                            let total = r.len();
                            let mut m = most_at_once.lock().unwrap();
                            let e = m.entry(j.board.name.clone()).or_default();
                            *e = (*e).max(n);
                            let all = m.entry("all".into()).or_default();
                            *all = (*all).max(total);
                        }
                        std::thread::sleep(Duration::from_millis(30));
                        {
                            let mut r = running.lock().unwrap();
                            let at = r.iter().position(|b| *b == j.board.name).unwrap();
                            r.remove(at);
                        }
                        queue.release(&j);
                    }
                });
            }
        });
        let m = most_at_once.into_inner().unwrap();
        assert_eq!(m["nucleo-f767zi"], 1, "one probe, one job at a time");
        assert_eq!(m["nucleo-f412zg"], 1);
        assert!(m["all"] >= 2, "different boards run side by side");
        assert!(queue.state.lock().unwrap().0.is_empty(), "every job ran");
    }

    #[test]
    fn specs_are_checked_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let path = dir.path().join("s.toml");
            std::fs::write(&path, text).unwrap();
            Spec::load(&path)
        };
        for bad in ["../../x", "", ".", "a/b", ".hidden", "x y"] {
            let e = load(&format!("name = {bad:?}\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\"]\n")).unwrap_err();
            assert!(e.to_string().contains("not a plain folder name"), "{bad}: {e}");
        }
        let e = load("name = \"t\"\nmodels = [\"tiny\"]\nboards = [\"qemu-m4\"]\ntimeout_s = 9223372036854775807\n")
            .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        // Duplicates are dropped, so nothing is measured twice.
        let spec = load("name = \"t\"\nmodels = [\"tiny\", \"tiny\"]\nboards = [\"qemu-m4\", \"qemu-m4\"]\nsplits = [4, 9999]\npatches = [\"2x2\"]\n").unwrap();
        assert_eq!((spec.models.len(), spec.boards.len()), (1, 1));
        // The count is known up front; invalid configs are reported once, not run.
        assert_eq!(spec.job_count(), 3);
        let jobs = spec.jobs().unwrap();
        assert_eq!(jobs.jobs.len(), 2);
        assert_eq!(jobs.invalid.len(), 1);
        assert!(jobs.invalid[0].contains("9999@2x2") && jobs.invalid[0].contains("out of range"), "{:?}", jobs.invalid);
        // A huge grid is counted without being expanded.
        let huge = Spec { splits: (1..=1000).collect(), patches: vec![Grid::new(2, 2); 10_000], ..spec.clone() };
        assert_eq!(huge.job_count(), 1 + 10_000_000);
        // A zoo-name typo names the spec and the zoo, not a path the user never wrote.
        let e = load("name = \"t\"\nmodels = [\"mbv2-w035\"]\nboards = [\"qemu-m4\"]\n")
            .unwrap()
            .jobs()
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("s.toml") && e.contains("mbv2-w0.35-r144") && !e.contains("no such file"), "{e}");
        let e = Spec::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn models_of_a_spec_that_share_a_name_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, seed: u64| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, crate::tflite::synth::random_cnn(seed)).unwrap();
        };
        put("v1/model.tflite", 1);
        put("v2/model.tflite", 2);
        put("a,b.tflite", 3);
        put("a;b.tflite", 4);
        put("new\nline.tflite", 5);
        let spec = Spec::parse(
            "name = \"s\"\nmodels = [\"v1/model.tflite\", \"v2/model.tflite\", \"a,b.tflite\", \"a;b.tflite\", \"new\\nline.tflite\", \"tiny\"]\nboards = [\"qemu-m4\"]\n",
            &dir.path().join("s.toml"),
        )
        .unwrap();
        let names: Vec<String> =
            spec.load_models().unwrap().into_iter().map(|(_, m)| m.unwrap().name.clone()).collect();
        assert_eq!(names[..2], ["v1-model", "v2-model"]);
        assert!(names[2].starts_with("a_b-") && names[3].starts_with("a_b-") && names[2] != names[3], "{names:?}");
        assert_eq!(names[4..], ["new_line", "tiny"]);
        // The jobs carry the same names (readers load the same spec the same way).
        let jobs = spec.jobs().unwrap().jobs;
        let job_names: HashSet<&str> = jobs.iter().map(|j| j.model.name.as_str()).collect();
        assert_eq!(job_names.len(), 6);
    }
}
