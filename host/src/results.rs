//! The `runs.csv` schema and appending to it without ever losing collected rows.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of `runs.csv`: one (model, patch config, board) image, measured `repeats` times.
/// On QEMU the `cycles_*` columns hold instructions and `cycle_source` is `qemu-icount`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// `dwt`, `systick` or `qemu-icount` (instructions, not cycles).
    pub cycle_source: String,
    /// Core clock in Hz.
    pub clock_hz: u32,
    /// Model name.
    pub model: String,
    /// Model hash (hex).
    pub model_hash: String,
    /// Ops in the patch stage (0: layer-wise).
    pub split: u16,
    /// Patch grid `NxM`.
    pub patches: String,
    /// `flash` or `arena`.
    pub input_in: String,
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
    /// Output CRC-32 reported by the device (hex).
    pub output_crc: String,
    /// Device output CRC equals the host engine's for every run.
    pub output_ok: bool,
    /// `ok`, `does-not-fit`, `wrong-output`, `timeout` or `error`.
    pub status: String,
    /// Detail for a status other than `ok`.
    pub message: String,
    /// Seconds spent building the image (0 when cached).
    pub build_seconds: f64,
    /// Seconds the deployment took.
    pub run_seconds: f64,
}

/// Appends rows to `path`, writing the header when the file is new, and flushing after each
/// row so an interrupted sweep keeps everything collected so far.
pub struct CsvSink {
    writer: csv::Writer<std::fs::File>,
}

impl CsvSink {
    /// Opens (creating directories) for appending.
    pub fn open(path: &Path) -> anyhow::Result<CsvSink> {
        use anyhow::Context;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let fresh = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
        if !fresh {
            // Refuse to mix schemas: the header must be ours.
            let mut r = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
            let have: Vec<String> = r.headers()?.iter().map(String::from).collect();
            let want = header();
            if have != want {
                anyhow::bail!(
                    "{} has a different column set (an older patchbench?); move it away or choose another --out",
                    path.display()
                );
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let writer = csv::WriterBuilder::new().has_headers(fresh).from_writer(file);
        Ok(CsvSink { writer })
    }

    /// Appends and flushes one row.
    pub fn append(&mut self, row: &Row) -> anyhow::Result<()> {
        self.writer.serialize(row)?;
        self.writer.flush()?;
        Ok(())
    }
}

/// The column names, in order.
pub fn header() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(Row::default()).expect("a default row serializes");
    let bytes = w.into_inner().expect("in-memory writer");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.lines().next().unwrap_or_default().split(',').map(String::from).collect()
}

/// Reads every row of a `runs.csv`.
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    use anyhow::Context;
    let mut r = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    r.deserialize().map(|row| row.with_context(|| format!("parsing {}", path.display()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_keep_one_header_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/runs.csv");
        let row = Row { run_id: "a".into(), status: "ok".into(), cycles_min: Some(5), ..Row::default() };
        CsvSink::open(&path).unwrap().append(&row).unwrap();
        let row2 = Row { run_id: "b".into(), status: "does-not-fit".into(), ..Row::default() };
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
        assert!(CsvSink::open(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n", "left untouched");
    }
}
