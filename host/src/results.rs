//! The `runs.csv` schema and appending to it without ever losing collected rows.

use anyhow::Context;
use harness::plan::{Grid, InputPlacement, PatchConfig};
use harness::record::CycleSource;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a run ended; the `status` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Measured, device output equal to the host engine's.
    Ok,
    /// The image does not fit the board's RAM or flash (message: region and bytes needed).
    DoesNotFit,
    /// Measured, but the device output CRC differs from the host engine's.
    WrongOutput,
    /// No end record within the timeout.
    Timeout,
    /// The device stopped: a HardFault (message: PC, LR, CFSR, HFSR) or the firmware reported
    /// an error (message: what and the device log).
    Fault,
    /// The config cannot run on the model (message: why).
    Invalid,
    /// Anything else went wrong (message: what), the emulator dying mid-run among it. Also
    /// what a row without a status reads as.
    #[default]
    Error,
}

impl Status {
    /// The CSV text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::DoesNotFit => "does-not-fit",
            Status::WrongOutput => "wrong-output",
            Status::Timeout => "timeout",
            Status::Fault => "fault",
            Status::Invalid => "invalid",
            Status::Error => "error",
        }
    }

    /// A verdict the sweep accepts: measured, or a definite "does not fit" (both say
    /// something true about the config); everything else is a failure to report.
    pub const fn is_result(self) -> bool {
        matches!(self, Status::Ok | Status::DoesNotFit)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `runs.csv`: one (model, patch config, board) image, measured `repeats` times.
/// On QEMU the `cycles_*` columns hold instructions and `cycle_source` is `qemu-icount`.
///
/// Readers match columns by name, so files written before a column existed still read:
/// a missing column takes the default of its type (empty text, 0, false, no value), a
/// missing `input_in` is `flash`, `cycle_source` `qemu-icount`, `status` `error`, `caches`
/// `false` (files before the column come from QEMU, which models no cache).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Row {
    /// Unique id of this row.
    pub run_id: String,
    /// RFC 3339 UTC time the row was written.
    pub timestamp: String,
    /// `git describe --always --dirty` of the patchbench tree.
    pub git_rev: String,
    /// Board catalog name.
    pub board: String,
    /// Core.
    pub cpu: String,
    /// Kernel set the image ran (`reference` in files written before the column).
    pub kernels: harness::kernels::KernelSet,
    /// `dwt`, `systick` (cycles) or `qemu-icount` (instructions, not cycles).
    pub cycle_source: CycleSource,
    /// Core clock in Hz.
    pub clock_hz: u32,
    /// Model name.
    pub model: String,
    /// Model hash (hex).
    pub model_hash: String,
    /// The schedule that ran, in its canonical text (`13@4x4`, `layer-wise`); files written
    /// before the column read it from `split` and `patches`.
    pub schedule: harness::plan::Schedule,
    /// Ops in the patch stage of the config that ran (0: layer-wise).
    pub split: u16,
    /// Patch grid of the config that ran (`1x1` when layer-wise).
    pub patches: Grid,
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// Measured runs.
    pub repeats: u16,
    /// MACs of one layer-wise inference.
    pub macs: u64,
    /// MACs under this config.
    pub planned_macs: u64,
    /// Extra MACs in % of `macs`.
    pub recompute_overhead_pct: f64,
    /// Fewest cycles (instructions on QEMU) of one inference.
    pub cycles_min: Option<u64>,
    /// Median.
    pub cycles_median: Option<u64>,
    /// Most.
    pub cycles_max: Option<u64>,
    /// Planned arena bytes.
    pub arena_planned_bytes: u64,
    /// Arena high-water mark measured on the device.
    pub arena_measured_bytes: Option<u64>,
    /// Stack high-water mark measured on the device.
    pub stack_measured_bytes: Option<u64>,
    /// `.data + .bss` without the arena.
    pub static_ram_bytes: Option<u64>,
    /// `arena + stack + static` (measured arena and stack).
    pub total_ram_bytes: Option<u64>,
    /// Flash bytes of the image.
    pub flash_bytes: Option<u64>,
    /// Graph outputs of the model (detection heads have several; 0 in files written before
    /// the column).
    pub outputs: u8,
    /// Bytes of all graph outputs, each in its own type: what `output_crc` covers.
    pub output_bytes: u64,
    /// Output CRC-32 reported by the device (hex), over every graph output's raw bytes in the
    /// graph's order.
    pub output_crc: String,
    /// Device output CRC equals the host engine's for every run.
    pub output_ok: bool,
    /// How the run ended.
    pub status: Status,
    /// Detail for a status other than `ok`.
    pub message: String,
    /// Seconds spent building the image (0 when cached).
    pub build_seconds: f64,
    /// Seconds the deployment took.
    pub run_seconds: f64,
    /// Hash of everything that goes into the image (generated sources, board target,
    /// firmware and engine sources): a sweep skips a job whose key has an `ok` row. Empty in
    /// files written before the column existed (such rows are never skipped).
    pub image_key: String,
    /// The image enabled the I- and D-caches (Cortex-M7 images do).
    pub caches: bool,
    /// The debug probe a real board ran through (`VID:PID[:SERIAL]`; empty on QEMU, or when
    /// the only attached probe was taken).
    pub probe: String,
    /// A profiled image's per-op counts (not a column: they go to `ops.csv`).
    #[serde(skip)]
    pub op_counts: Vec<OpCount>,
}

/// One op's share of a profiled inference, as the device counted it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpCount {
    /// Op index.
    pub op: u16,
    /// TFLite operator name.
    pub kind: &'static str,
    /// The op runs in the patch stage (once per patch).
    pub stage: bool,
    /// Times it ran.
    pub runs: u32,
    /// Cycles (instructions on QEMU) over all its runs.
    pub count: u64,
}

/// A row of `ops.csv` (beside `runs.csv`): one op of a profiled run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpRow {
    /// The `runs.csv` row of the run.
    pub run_id: String,
    /// Board catalog name.
    pub board: String,
    /// Model name.
    pub model: String,
    /// Kernel set.
    pub kernels: harness::kernels::KernelSet,
    /// `qemu-icount`: `count` is instructions, not cycles.
    pub cycle_source: CycleSource,
    /// The schedule (files written before the column read it from `split` and `patches`).
    pub schedule: harness::plan::Schedule,
    /// Ops in the patch stage (0: layer-wise).
    pub split: u16,
    /// Patch grid.
    pub patches: Grid,
    /// Where the input lives.
    pub input_in: InputPlacement,
    /// Op index.
    pub op: u16,
    /// TFLite operator name.
    pub kind: String,
    /// In the patch stage.
    pub stage: bool,
    /// Times it ran (the patches, in the stage).
    pub runs: u32,
    /// Cycles (instructions on QEMU) over all its runs.
    pub count: u64,
    /// Share of the profiled inference, %.
    pub share_pct: f64,
}

impl OpRow {
    /// The `ops.csv` rows of a profiled `row` (none for an unprofiled one).
    pub fn of(row: &Row) -> Vec<OpRow> {
        let total: u64 = row.op_counts.iter().map(|c| c.count).sum();
        row.op_counts
            .iter()
            .map(|c| OpRow {
                run_id: row.run_id.clone(),
                board: row.board.clone(),
                model: row.model.clone(),
                kernels: row.kernels,
                cycle_source: row.cycle_source,
                schedule: row.schedule,
                split: row.split,
                patches: row.patches,
                input_in: row.input_in,
                op: c.op,
                kind: c.kind.to_string(),
                stage: c.stage,
                runs: c.runs,
                count: c.count,
                share_pct: if total == 0 { 0.0 } else { (c.count as f64 * 100_000.0 / total as f64).round() / 1000.0 },
            })
            .collect()
    }
}

/// Appends `rows` to an `ops.csv` (header first when new) in one synced write; a line a killed
/// process left incomplete is set aside first, as for `runs.csv`. The caller holds the
/// folder's lock.
pub fn append_ops(path: &Path, rows: &[OpRow]) -> anyhow::Result<()> {
    use std::io::Write;
    if rows.is_empty() {
        return Ok(());
    }
    let mut file = crate::files::open_append(path)?;
    repair::<OpRow>(&mut file, path)?;
    if complete_header(&mut file, path)?.is_some_and(|have| have != columns::<OpRow>()) {
        // Written before today's columns: rewritten whole with them (values kept, new
        // columns derived or at their defaults), then appended to.
        rewrite(path, read_ops(path)?)?;
        file = crate::files::open_append(path)?;
    }
    let fresh = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
    let mut w = csv::WriterBuilder::new().has_headers(fresh).from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    file.write_all(&bytes).and_then(|_| file.sync_data()).with_context(|| format!("appending to {}", path.display()))
}

/// The schedule of a row written before the `schedule` column: its one stage, `split@patches`
/// (`layer-wise` for split 0 or a 1x1 grid).
fn legacy_schedule(split: u16, patches: Grid) -> harness::plan::Schedule {
    harness::plan::Schedule::one_stage(split, patches).effective()
}

/// Reads an `ops.csv`.
pub fn read_ops(path: &Path) -> anyhow::Result<Vec<OpRow>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let has_schedule =
        r.headers().with_context(|| format!("reading {}", path.display()))?.iter().any(|h| h == "schedule");
    r.deserialize::<OpRow>()
        .map(|row| {
            let mut row = row.with_context(|| format!("reading {}", path.display()))?;
            if !has_schedule {
                row.schedule = legacy_schedule(row.split, row.patches);
            }
            Ok(row)
        })
        .collect()
}

/// What identifies a measurement: board, model (name and hash: two models may share a name),
/// schedule, input placement, kernel set.
pub type RowKey = (String, String, String, harness::plan::Schedule, InputPlacement, harness::kernels::KernelSet);

impl Row {
    /// This row as written: its free-text cells (model, board, message, probe) safe to open
    /// in a spreadsheet (see [`guard_cell`]).
    pub fn guarded(&self) -> std::borrow::Cow<'_, Row> {
        let cells = [&self.model, &self.board, &self.cpu, &self.message, &self.probe, &self.git_rev];
        if cells.iter().all(|c| matches!(guard_cell(c), std::borrow::Cow::Borrowed(_))) {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut r = self.clone();
        for c in [&mut r.model, &mut r.board, &mut r.cpu, &mut r.message, &mut r.probe, &mut r.git_rev] {
            *c = guard_cell(c).into_owned();
        }
        std::borrow::Cow::Owned(r)
    }

    /// The config that ran.
    pub fn config(&self) -> PatchConfig {
        PatchConfig { split: self.split, grid: self.patches, input_in: self.input_in }
    }

    /// What readers keep one row of: the latest per (board, model, schedule, input
    /// placement, kernel set).
    pub fn key(&self) -> RowKey {
        (
            self.board.clone(),
            self.model.clone(),
            self.model_hash.clone(),
            self.schedule.effective(),
            self.input_in,
            self.kernels,
        )
    }
}

/// Appends rows to `path`: the header when the file is new, then every row in one write,
/// synced to disk before the next, so that a killed process leaves at most one incomplete
/// last line, which the next [`CsvSink::open`] repairs.
pub struct CsvSink {
    file: std::fs::File,
    path: std::path::PathBuf,
    _lock: FolderLock,
    /// What opening found and repaired (an incomplete last line set aside), for the user.
    pub repaired: Option<String>,
}

/// The exclusive lock of a results folder, held while a process writes anything into it.
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    /// Takes the lock of the folder of `csv` (`.runs.csv.lock` beside it), or says which
    /// process holds it. The lock file is never opened through a link, nor written before
    /// the lock is held.
    pub fn take(csv: &Path) -> anyhow::Result<FolderLock> {
        use std::io::{Read, Seek, Write};
        let path =
            csv.with_file_name(format!(".{}.lock", csv.file_name().and_then(|n| n.to_str()).unwrap_or("runs.csv")));
        let mut file = crate::files::open_rw(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = Read::by_ref(&mut file).take(4096).read_to_string(&mut holder);
                anyhow::bail!(
                    "{} is being written by another patchbench ({}); wait for it to finish, or write to another folder with --out",
                    csv.display(),
                    holder.trim()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        // Who holds it, for the message of the next one that tries.
        let args: Vec<String> = std::env::args().map(|a| a.escape_debug().to_string()).collect();
        let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| {
            write!(
                file,
                "pid {}, since {}: {}",
                std::process::id(),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                args.join(" ")
            )
        });
        Ok(FolderLock { _file: file })
    }
}

impl CsvSink {
    /// Opens (creating directories) for appending, under the folder's lock. Before anything
    /// is written the file is checked: a file with columns patchbench does not know is
    /// refused and left untouched; a link, FIFO or second name is refused. Then a last line
    /// that is not a complete row (a process killed while writing) is moved to
    /// `runs.csv.fragment-<time>` and reported in [`CsvSink::repaired`]; a complete last row
    /// that only lacks its newline gets it. A file written before newer columns existed is
    /// rewritten with today's header (its rows keep their values; the new columns take their
    /// defaults), by renaming a complete copy over it.
    pub fn open(path: &Path) -> anyhow::Result<CsvSink> {
        if path.is_dir() {
            anyhow::bail!("{} is a directory, not a runs.csv; choose another --out", path.display());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_dir(dir)?;
        }
        let lock = FolderLock::take(path)?;
        // ops.csv is appended to later, after rows of runs.csv: checked now, so a sweep never
        // stops half way on it.
        let ops = path.with_file_name("ops.csv");
        if std::fs::symlink_metadata(&ops).is_ok() {
            refuse_unknown_columns(&mut crate::files::open_append(&ops)?, &ops, &columns::<OpRow>(), "an ops.csv")?;
        }
        let mut file = crate::files::open_append(path)?;
        let want = header();
        refuse_unknown_columns(&mut file, path, &want, "a runs.csv")?;
        let repaired = repair::<Row>(&mut file, path)?;
        let fresh = file.metadata().with_context(|| format!("checking {}", path.display()))?.len() == 0;
        if !fresh && complete_header(&mut file, path)?.is_some_and(|have| have != want) {
            upgrade(path)?;
            // The upgrade renamed a new file over the path: append to that one.
            file = crate::files::open_append(path)?;
        }
        let mut sink = CsvSink { file, path: path.to_path_buf(), _lock: lock, repaired };
        if fresh {
            sink.write_whole(&(want.join(",") + "\n"))?;
        }
        Ok(sink)
    }

    /// The `runs.csv` it appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one row, whole, and syncs it.
    pub fn append(&mut self, row: &Row) -> anyhow::Result<()> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.serialize(row.guarded())?;
        let line = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
        self.write_whole(&line)
    }

    fn write_whole(&mut self, text: &str) -> anyhow::Result<()> {
        use std::io::Write;
        // One write of the whole line: O_APPEND puts it at the end in one piece. A write that
        // fails half way (a full disk) leaves an incomplete line the next open sets aside.
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("appending a row to {}", self.path.display()))
    }
}

/// Refuses the CSV open as `file` when its header names a column not in `want` (a newer
/// patchbench wrote it, or it is not `what`), before anything is written to it.
fn refuse_unknown_columns(file: &mut std::fs::File, path: &Path, want: &[String], what: &str) -> anyhow::Result<()> {
    if let Some(col) = complete_header(file, path)?.and_then(|have| have.into_iter().find(|c| !want.contains(c))) {
        anyhow::bail!(
            "{} has a column `{col}` this patchbench does not write (a newer patchbench, or not {what}); move it away or choose another --out",
            path.display()
        );
    }
    Ok(())
}

/// The header of the CSV open as `file`, when its first line is complete; `None` when the
/// file is empty or its header itself was cut short.
fn complete_header(file: &mut std::fs::File, path: &Path) -> anyhow::Result<Option<Vec<String>>> {
    use std::io::{BufRead, Read, Seek};
    file.rewind().with_context(|| format!("reading {}", path.display()))?;
    let mut first = String::new();
    // Bounded: a "header" of gigabytes without a newline is not read whole.
    let read = std::io::BufReader::new(file.by_ref().take(1 << 20)).read_line(&mut first);
    if read.is_err() || !first.ends_with('\n') {
        return Ok(None);
    }
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(first.as_bytes());
    Ok(r.records().next().and_then(Result::ok).map(|rec| rec.iter().map(String::from).collect()))
}

/// Where the complete rows of a CSV end: the length of the longest prefix of `bytes` made of
/// the header and rows that each end in a newline outside quotes (a torn row whose quoted
/// field holds a newline is not complete at that newline), and whether the text after it is
/// one complete row of type `T` that only lacks its final newline.
fn complete_prefix<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> (usize, bool) {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut keep = 0;
    let mut header: Option<csv::ByteRecord> = None;
    loop {
        let start = r.position().byte() as usize;
        match r.read_byte_record(&mut record) {
            Ok(true) => {}
            // Nothing more, or bytes that are not CSV: the rest is set aside.
            Ok(false) | Err(_) => return (keep, false),
        }
        let end = (r.position().byte() as usize).min(bytes.len());
        let raw = &bytes[start..end];
        // The writer doubles quotes inside quoted fields: an odd count is an open quote.
        let closed = raw.iter().filter(|&&b| b == b'"').count() % 2 == 0;
        if closed && raw.ends_with(b"\n") {
            if header.is_none() {
                header = Some(record.clone());
            }
            keep = end;
            continue;
        }
        if end < bytes.len() || !closed {
            return (keep, false);
        }
        // The last line, without its newline: a row only if it is one, whole, as written.
        let whole = header.as_ref().is_some_and(|h| {
            h.len() == record.len()
                && record.deserialize::<T>(Some(h)).is_ok()
                && reserialized(&record).is_some_and(|again| again == raw)
        });
        return (keep, whole);
    }
}

/// `record` as the CSV writer writes it, without the newline.
fn reserialized(record: &csv::ByteRecord) -> Option<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_byte_record(record).ok()?;
    let mut out = w.into_inner().ok()?;
    out.pop_if(|b| *b == b'\n');
    Some(out)
}

/// Sets aside what follows the last complete row of the CSV open as `file` (at `path`),
/// or completes a last row that only lacks its newline; returns what it did. The text set
/// aside is written whole to a new file first; if that fails (a full disk), the CSV is left
/// as it is and the error says so.
fn repair<T: serde::de::DeserializeOwned>(file: &mut std::fs::File, path: &Path) -> anyhow::Result<Option<String>> {
    use std::io::{Read, Seek, Write};
    file.rewind().with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    let (keep, whole_row) = complete_prefix::<T>(&bytes);
    if keep == bytes.len() {
        return Ok(None);
    }
    if whole_row {
        file.write_all(b"\n")
            .and_then(|_| file.sync_data())
            .with_context(|| format!("completing the last line of {} (it lacked its newline)", path.display()))?;
        return Ok(Some(format!("{}: its last row lacked its final newline; added", path.display())));
    }
    let fragment = path.with_file_name(format!(
        "{}.fragment-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("runs.csv"),
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f")
    ));
    crate::files::write_new(&fragment, &bytes[keep..]).with_context(|| {
        format!("{} ends in an incomplete line that could not be set aside; it is left as it was", path.display())
    })?;
    file.set_len(keep as u64).and_then(|_| file.sync_all()).with_context(|| {
        format!("cutting the incomplete line off {} (saved in {})", path.display(), fragment.display())
    })?;
    Ok(Some(format!(
        "{} ended in an incomplete line ({} B, a process killed while writing?): moved to {}",
        path.display(),
        bytes.len() - keep,
        fragment.display()
    )))
}

/// Rewrites an older `runs.csv` with today's columns, whole (a temporary file renamed over
/// it); the caller holds the folder's lock.
fn upgrade(path: &Path) -> anyhow::Result<()> {
    let (rows, skipped) = read_checked(path)?;
    if let Some(first) = skipped.first() {
        // Rewriting would drop those lines: leave the file as it is.
        anyhow::bail!(
            "{first}; {} needs today's columns, but rewriting it would lose that line: repair or move it",
            path.display()
        );
    }
    rewrite(path, rows.iter().map(Row::guarded))
}

/// Writes `rows` as the whole CSV at `path` (today's header first), by renaming a complete
/// new file over it.
fn rewrite<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::files::write_whole(path, &bytes)
}

/// `word` quoted for a POSIX shell (a line of `summary.md` is there to be pasted): a path
/// such as `$(touch x).tflite` stays one literal word. Inside a Markdown code span, so no
/// backtick either: a word holding one is written with `?` in its place, unquotable.
pub fn shell_word(word: &str) -> String {
    let plain = word.replace(['`', '\n', '\r'], "?");
    shlex::try_quote(&plain).map_or_else(|_| "'?'".to_string(), |q| q.into_owned())
}

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first) gets a leading `'`, the spreadsheets' own "this is text" mark.
pub fn guard_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The column names, in order.
pub fn header() -> Vec<String> {
    columns::<Row>()
}

/// The columns of a CSV of `T` rows, in order: the header the writer makes for a default row.
fn columns<T: Serialize + Default>() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(T::default()).expect("a default row serializes");
    let bytes = w.into_inner().expect("in-memory writer");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.lines().next().unwrap_or_default().split(',').map(String::from).collect()
}

/// Reads every row of a `runs.csv`, matching columns by name (see [`Row`] for the defaults
/// of columns an older file lacks). A line that is not a row (corrupt, cut short) is
/// skipped: [`read_checked`] says which.
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    Ok(read_checked(path)?.0)
}

/// [`read`], with one message per skipped line (file, line, why).
pub fn read_checked(path: &Path) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory, not a runs.csv", path.display());
    }
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers = r.headers().with_context(|| format!("reading the header of {}", path.display()))?.clone();
    // Files written before the `schedule` column: it follows from `split` and `patches`.
    let has_schedule = headers.iter().any(|h| h == "schedule");
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for record in r.records() {
        let line = |rec: &csv::StringRecord| rec.position().map_or(0, |p| p.line());
        match record {
            Ok(rec) if rec.len() != headers.len() => skipped.push(format!(
                "{}: line {} has {} fields, the header {}: skipped",
                path.display(),
                line(&rec),
                rec.len(),
                headers.len()
            )),
            Ok(rec) => match rec.deserialize::<Row>(Some(&headers)) {
                Ok(mut row) => {
                    if !has_schedule {
                        row.schedule = legacy_schedule(row.split, row.patches);
                    }
                    rows.push(row)
                }
                Err(e) => skipped.push(format!(
                    "{}: line {} is not a runs.csv row ({e}): skipped",
                    path.display(),
                    line(&rec)
                )),
            },
            Err(e) => skipped.push(format!("{}: {e}: skipped", path.display())),
        }
    }
    Ok((rows, skipped))
}

/// The latest row of every (board, model, config, input placement), in first-seen order:
/// later lines win, and across files the later timestamp.
pub fn latest(rows: impl IntoIterator<Item = Row>) -> Vec<Row> {
    let mut order: Vec<RowKey> = Vec::new();
    let mut by_key: std::collections::HashMap<_, Row> = std::collections::HashMap::new();
    for row in rows {
        let key = row.key();
        match by_key.get(&key) {
            Some(old) if old.timestamp > row.timestamp => {}
            Some(_) => {
                by_key.insert(key, row);
            }
            None => {
                order.push(key.clone());
                by_key.insert(key, row);
            }
        }
    }
    order.into_iter().filter_map(|k| by_key.remove(&k)).collect()
}

/// `path` as a user would type it from the current directory: relative when it is below
/// it, as given otherwise (messages and generated pages name no machine's absolute paths).
pub fn display_path(path: &Path) -> String {
    let Ok(cwd) = std::env::current_dir() else { return path.display().to_string() };
    if let Ok(below) = path.strip_prefix(&cwd) {
        return below.display().to_string();
    }
    // A sibling such as ../shared/models reads better relative; far away, absolute.
    match pathdiff::diff_paths(path, &cwd) {
        Some(rel) if path.is_absolute() && rel.components().take_while(|c| c.as_os_str() == "..").count() <= 1 => {
            rel.display().to_string()
        }
        _ => path.display().to_string(),
    }
}

/// The rows of one or more results folders, with the models their specs name.
pub struct ResultSet {
    /// The folders read (each holds a `runs.csv`).
    pub folders: Vec<std::path::PathBuf>,
    /// The latest row of every (board, model, config, input placement), over all folders.
    pub rows: Vec<Row>,
    /// Models by hash (hex, as in the `model_hash` column): those of the folders' `spec.toml`
    /// that could be loaded, and zoo models named by rows.
    pub models: std::collections::HashMap<String, std::sync::Arc<harness::model::ModelBuf>>,
    /// By model hash, how to name the model on a command line (`--model`): a zoo name,
    /// `random:SEED`, or the file's path as seen from the current directory.
    pub sources: std::collections::HashMap<String, String>,
    /// What could not be used, for the user (a model a spec names that does not load).
    pub warnings: Vec<String>,
}

impl ResultSet {
    /// No rows: what `recommend` works from without `--results`.
    pub fn empty() -> ResultSet {
        ResultSet {
            folders: vec![],
            rows: vec![],
            models: Default::default(),
            sources: Default::default(),
            warnings: vec![],
        }
    }

    /// Reads results folders: each path is a folder with a `runs.csv`, or a folder of such
    /// folders (such as `results/`).
    pub fn load(paths: &[std::path::PathBuf]) -> anyhow::Result<ResultSet> {
        let mut folders = Vec::new();
        for p in paths {
            if p.join("runs.csv").is_file() {
                folders.push(p.clone());
                continue;
            }
            let entries = std::fs::read_dir(p).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; give a results folder (one with a runs.csv, written by `patchbench sweep`) or a folder of them such as results/",
                    p.display()
                )
            })?;
            let mut inner: Vec<_> =
                entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|d| d.join("runs.csv").is_file()).collect();
            if inner.is_empty() {
                anyhow::bail!(
                    "{} holds no runs.csv, nor folders that do: give a results folder written by `patchbench sweep` (or run one first)",
                    p.display()
                );
            }
            inner.sort();
            folders.extend(inner);
        }
        let mut all = Vec::new();
        let mut models = std::collections::HashMap::new();
        let mut sources = std::collections::HashMap::new();
        let mut warnings = Vec::new();
        for f in &folders {
            let (rows, skipped) = read_checked(&f.join("runs.csv"))?;
            all.extend(rows);
            warnings.extend(skipped);
            let spec_path = f.join("spec.toml");
            if !spec_path.is_file() {
                continue;
            }
            let spec = crate::sweep::Spec::load(&spec_path)?;
            for (entry, loaded) in spec.load_models()? {
                match loaded {
                    Ok(m) => {
                        let hash = format!("{:016x}", m.as_model().hash());
                        let named = if crate::models::is_builtin(&entry) {
                            entry.clone()
                        } else {
                            let source = spec.model_source(&entry);
                            let path = Path::new(&source);
                            display_path(&path.canonicalize().unwrap_or_else(|_| path.to_path_buf()))
                        };
                        sources.insert(hash.clone(), named);
                        models.insert(hash, m);
                    }
                    Err(e) => warnings.push(format!(
                        "{}: model `{entry}` does not load ({e:#}); figures and fits that need its plan leave its rows out",
                        spec_path.display()
                    )),
                }
            }
        }
        let rows = latest(all);
        for r in &rows {
            if !models.contains_key(&r.model_hash) {
                if let Some(m) = harness::zoo::build(&r.model) {
                    if format!("{:016x}", m.as_model().hash()) == r.model_hash {
                        models.insert(r.model_hash.clone(), std::sync::Arc::new(m));
                        sources.insert(r.model_hash.clone(), r.model.clone());
                    }
                }
            }
        }
        Ok(ResultSet { folders, rows, models, sources, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_keep_one_header_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/runs.csv");
        let row = Row { run_id: "a".into(), status: Status::Ok, cycles_min: Some(5), ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row).unwrap();
        let row2 = Row { run_id: "b".into(), status: Status::DoesNotFit, ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row2).unwrap();
        assert_eq!(read(&path).unwrap(), vec![row, row2]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("run_id").count(), 1);
        for col in ["cycles_median", "arena_measured_bytes", "output_ok", "total_ram_bytes", "flash_bytes"] {
            assert!(header().iter().any(|h| h == col), "{col}");
        }
    }

    #[test]
    fn refuses_a_foreign_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let e = CsvSink::open(&path).err().unwrap().to_string();
        assert!(e.contains("column `a`"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n", "left untouched");
    }

    /// A line of a runs.csv written before `image_key` existed (and with the timestamp of
    /// that time): it must still read, by column name, with the new column at its default.
    const OLD: &str = "run_id,timestamp,git_rev,board,cpu,cycle_source,clock_hz,model,model_hash,split,patches,input_in,repeats,macs,planned_macs,recompute_overhead_pct,cycles_min,cycles_median,cycles_max,arena_planned_bytes,arena_measured_bytes,stack_measured_bytes,static_ram_bytes,total_ram_bytes,flash_bytes,output_crc,output_ok,status,message,build_seconds,run_seconds\n\
        r1,2026-11-25T14:29:02Z,3452ce2,qemu-m4,cortex-m4,qemu-icount,25000000,vww,6d7e,4,2x3,arena,3,7489664,7573216,1.116,98379880,98379880,98379920,26112,26112,1296,1632,29040,311612,90d2a596,true,ok,,1.78,0.74\n\
        r2,2026-11-25T14:29:03Z,3452ce2,qemu-m4-128k,cortex-m4,qemu-icount,25000000,vww,6d7e,0,1x1,flash,3,7489664,7489664,0.0,,,,37632,,,,,,,false,does-not-fit,RAM needs 1 B,1.5,0.0\n";

    #[test]
    fn older_files_read_by_column_name_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, OLD).unwrap();
        let rows = read(&path).unwrap();
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        assert_eq!(r.config(), PatchConfig { split: 4, grid: Grid::new(2, 3), input_in: InputPlacement::Arena });
        assert_eq!(r.schedule.to_string(), "4@2x3", "derived from split and patches");
        assert_eq!(rows[1].schedule.to_string(), "layer-wise");
        assert_eq!((r.status, r.cycle_source, r.cycles_median), (Status::Ok, CycleSource::QemuIcount, Some(98379880)));
        assert_eq!(r.image_key, "", "a column the file lacks takes its default");
        assert_eq!(rows[1].status, Status::DoesNotFit);
        assert_eq!(rows[1].total_ram_bytes, None);
        // Columns in another order, one missing: still by name.
        std::fs::write(&path, "status,split,model,patches\nwrong-output,3,m,5x1\n").unwrap();
        let r = &read(&path).unwrap()[0];
        assert_eq!(
            (r.status, r.split, r.patches, r.input_in),
            (Status::WrongOutput, 3, Grid::new(5, 1), InputPlacement::Flash)
        );
        // A value that is not of its column's type names the line.
        std::fs::write(&path, "status,patches\nok,3y\n").unwrap();
        let (rows, skipped) = read_checked(&path).unwrap();
        assert!(rows.is_empty() && skipped[0].contains("line 2") && skipped[0].contains("`3y`"), "{skipped:?}");
    }

    #[test]
    fn typed_values_keep_their_csv_text() {
        let row = Row {
            status: Status::DoesNotFit,
            patches: Grid::new(2, 3),
            input_in: InputPlacement::Arena,
            cycle_source: CycleSource::QemuIcount,
            ..Row::default()
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let line = text.lines().nth(1).unwrap();
        for v in ["does-not-fit", ",2x3,", ",arena,", ",qemu-icount,"] {
            assert!(line.contains(v), "{v} in {line}");
        }
        for s in [Status::Ok, Status::DoesNotFit, Status::WrongOutput, Status::Timeout, Status::Invalid, Status::Error]
        {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            w.serialize(Row { status: s, ..Row::default() }).unwrap();
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            assert!(text.contains(&format!(",{},", s.as_str())), "{s}");
        }
    }

    #[test]
    fn appending_to_an_older_file_upgrades_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(&path, OLD).unwrap();
        let before = read(&path).unwrap();
        let new = Row { run_id: "r3".into(), status: Status::Ok, image_key: "k".into(), ..Row::default() };
        CsvSink::open(&path).unwrap().append(&new).unwrap();
        let after = read(&path).unwrap();
        assert_eq!(after[..2], before[..], "old rows keep every value");
        assert_eq!(after[2], new);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&header().join(",")));
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.iter().all(|n| n == "runs.csv" || n == ".runs.csv.lock"), "no temporary file left: {left:?}");
    }

    #[test]
    fn readers_keep_the_latest_row_per_board_model_config_and_placement() {
        let row = |id: &str, ts: &str, split, input_in| Row {
            run_id: id.into(),
            timestamp: ts.into(),
            board: "b".into(),
            model: "m".into(),
            split,
            patches: if split == 0 { Grid::ONE } else { Grid::new(2, 2) },
            schedule: harness::plan::Schedule::one_stage(split, Grid::new(2, 2)),
            input_in,
            ..Row::default()
        };
        let rows = vec![
            row("a", "2026-01-01T00:00:00Z", 0, InputPlacement::Flash),
            row("b", "2026-01-01T00:00:00Z", 4, InputPlacement::Flash),
            row("c", "2026-01-02T00:00:00Z", 0, InputPlacement::Flash),
            row("d", "2026-01-01T00:00:00Z", 0, InputPlacement::Arena),
            // From another folder, older: does not replace `c`.
            row("e", "2025-12-31T00:00:00Z", 0, InputPlacement::Flash),
        ];
        let ids: Vec<String> = latest(rows).into_iter().map(|r| r.run_id).collect();
        assert_eq!(ids, ["c", "b", "d"]);
    }

    #[test]
    fn an_incomplete_last_line_is_set_aside_before_anything_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row = |id: &str| Row { run_id: id.into(), status: Status::Ok, ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row("a")).unwrap();
        // A process killed in the middle of its write.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"b,2026-01-01,x,qemu-m4");
        std::fs::write(&path, &bytes).unwrap();
        let mut sink = CsvSink::open(&path).unwrap();
        let note = sink.repaired.take().unwrap();
        assert!(note.contains("incomplete line") && note.contains("fragment"), "{note}");
        sink.append(&row("c")).unwrap();
        drop(sink);
        let (rows, skipped) = read_checked(&path).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rows.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        let fragments: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("fragment"))
            .collect();
        assert_eq!(fragments.len(), 1);
        assert_eq!(std::fs::read(fragments[0].path()).unwrap(), b"b,2026-01-01,x,qemu-m4");
    }

    #[test]
    fn a_second_writer_of_a_folder_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let first = CsvSink::open(&path).unwrap();
        let e = CsvSink::open(&path).err().unwrap().to_string();
        assert!(e.contains("another patchbench") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        CsvSink::open(&path).unwrap();
        // A directory where runs.csv should be is named, not "no such file".
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let e = CsvSink::open(&dir.path().join("d")).err().unwrap().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn readers_skip_and_report_corrupt_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        {
            let mut sink = CsvSink::open(&path).unwrap();
            sink.append(&Row { run_id: "a".into(), ..Row::default() }).unwrap();
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        // A glued line (61 fields), a wrong type, then a good row.
        let good = text.lines().nth(1).unwrap().to_string();
        text.push_str(&format!("{good}{good}\n"));
        text.push_str(&good.replacen(",ok,", ",maybe,", 1).replacen(",error,", ",maybe,", 1));
        text.push('\n');
        text.push_str(&good.replacen("a,", "z,", 1));
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        let (rows, skipped) = read_checked(&path).unwrap();
        assert_eq!(rows.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["a", "z"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("line 3") && skipped[0].contains("fields"), "{}", skipped[0]);
        assert!(skipped[1].contains("line 4") && skipped[1].contains("maybe"), "{}", skipped[1]);
        // Upgrading such a file would lose the lines: refused, file untouched.
        let before = std::fs::read(&path).unwrap();
        assert!(upgrade(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    fn ids(path: &Path) -> Vec<String> {
        let (rows, skipped) = read_checked(path).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        rows.into_iter().map(|r| r.run_id).collect()
    }

    fn fragments(dir: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("fragment"))
            .collect()
    }

    #[test]
    fn a_torn_row_with_a_newline_inside_quotes_is_cut_at_the_last_complete_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row = |id: &str, message: &str| Row { run_id: id.into(), message: message.into(), ..Row::default() };
        {
            let mut sink = CsvSink::open(&path).unwrap();
            sink.append(&row("a", "two\nlines")).unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        // A row torn right after the newline inside its quoted message, and one torn later.
        let mut line = Vec::new();
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut line);
        w.serialize(row("b", "new\nline")).unwrap();
        drop(w);
        let cut_at_newline = line.iter().position(|&b| b == b'\n').unwrap() + 1;
        for cut in [cut_at_newline, cut_at_newline + 2, line.len() - 3] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&line[..cut]);
            std::fs::write(&path, &bytes).unwrap();
            let mut sink = CsvSink::open(&path).unwrap();
            assert!(sink.repaired.take().unwrap().contains("incomplete line"));
            sink.append(&row("c", "")).unwrap();
            drop(sink);
            assert_eq!(ids(&path), ["a", "c"], "cut at {cut}");
            let f = fragments(dir.path());
            assert_eq!(f.len(), 1);
            assert_eq!(std::fs::read(&f[0]).unwrap(), &line[..cut]);
            std::fs::remove_file(&f[0]).unwrap();
        }
    }

    #[test]
    fn a_complete_last_row_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row = |id: &str| Row { run_id: id.into(), status: Status::Ok, message: "x,\"y\"".into(), ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row("a")).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let mut sink = CsvSink::open(&path).unwrap();
        assert!(sink.repaired.take().unwrap().contains("lacked its final newline"));
        sink.append(&row("b")).unwrap();
        drop(sink);
        assert_eq!(ids(&path), ["a", "b"]);
        assert!(fragments(dir.path()).is_empty());
    }

    #[test]
    fn an_unknown_column_is_refused_before_any_repair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let text = format!("{},extra\nr1,x\nr2,y", header().join(","));
        std::fs::write(&path, &text).unwrap();
        let e = CsvSink::open(&path).err().unwrap().to_string();
        assert!(e.contains("column `extra`"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "left untouched");
        assert!(fragments(dir.path()).is_empty());
    }

    #[test]
    fn links_in_a_results_folder_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("bashrc");
        std::fs::write(&victim, "precious\nprecious tail").unwrap();
        let folder = dir.path().join("shared");
        std::fs::create_dir(&folder).unwrap();
        let csv = folder.join("runs.csv");
        // The lock as a link to the victim's file.
        std::os::unix::fs::symlink(&victim, folder.join(".runs.csv.lock")).unwrap();
        let e = CsvSink::open(&csv).err().unwrap().to_string();
        assert!(e.contains("symbolic link") && e.contains(".runs.csv.lock"), "{e}");
        std::fs::remove_file(folder.join(".runs.csv.lock")).unwrap();
        // runs.csv as a link: refused before its target is read, let alone cut.
        std::os::unix::fs::symlink(&victim, &csv).unwrap();
        let e = CsvSink::open(&csv).err().unwrap().to_string();
        assert!(e.contains("symbolic link") && e.contains("runs.csv"), "{e}");
        let ops = folder.join("ops.csv");
        std::os::unix::fs::symlink(&victim, &ops).unwrap();
        let e = append_ops(&ops, &[OpRow::default()]).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\nprecious tail");
    }

    #[test]
    fn an_ops_csv_that_cannot_be_appended_to_is_refused_before_any_row_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        std::fs::write(dir.path().join("ops.csv"), "run_id,what\n").unwrap();
        let e = CsvSink::open(&path).err().unwrap().to_string();
        assert!(e.contains("ops.csv") && e.contains("`what`"), "{e}");
        assert!(!path.exists(), "runs.csv not started");
        std::fs::remove_file(dir.path().join("ops.csv")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("ops.csv")).unwrap();
        assert!(CsvSink::open(&path).err().unwrap().to_string().contains("symbolic link"));
    }

    #[test]
    fn an_older_ops_csv_is_upgraded_with_its_schedules_before_rows_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.csv");
        std::fs::write(&path, "run_id,board,model,split,patches,op,kind,count\nr1,qemu-m4,m,13,4x4,0,CONV_2D,99\n")
            .unwrap();
        let new = OpRow {
            run_id: "r2".into(),
            schedule: "6@2x2".parse().unwrap(),
            split: 6,
            patches: Grid::new(2, 2),
            ..OpRow::default()
        };
        append_ops(&path, std::slice::from_ref(&new)).unwrap();
        let rows = read_ops(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].schedule.to_string(), rows[0].count), ("13@4x4".to_string(), 99));
        assert_eq!(rows[1], new);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(&columns::<OpRow>().join(",")));
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_marked_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let row =
            Row { run_id: "a".into(), message: "=cmd|' /C calc'!A0".into(), probe: "@SUM(1)".into(), ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.lines().nth(1).unwrap().split(',').any(|c| c.starts_with(['=', '@', '+', '-'])), "{text}");
        let back = &read(&path).unwrap()[0];
        assert_eq!((back.message.as_str(), back.probe.as_str()), ("'=cmd|' /C calc'!A0", "'@SUM(1)"));
        assert_eq!(guard_cell("ok"), "ok");
    }

    #[test]
    fn rows_of_different_models_with_one_name_are_both_kept() {
        let row = |id: &str, hash: &str| Row {
            run_id: id.into(),
            model: "model".into(),
            model_hash: hash.into(),
            ..Row::default()
        };
        let kept: Vec<String> = latest(vec![row("v1", "aa"), row("v2", "bb")]).into_iter().map(|r| r.run_id).collect();
        assert_eq!(kept, ["v1", "v2"]);
    }
}
