//! The board catalog (`boards.toml`, compiled in).

use harness::record::CycleSource;
use serde::Deserialize;

/// A memory region.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Start address.
    pub origin: u32,
    /// Bytes.
    pub length: u32,
}

/// One board of the catalog.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Catalog name (`--board`).
    pub name: String,
    /// One line for `patchbench boards`.
    pub description: String,
    /// QEMU machine (`-machine`), for emulated boards.
    pub qemu_machine: Option<String>,
    /// probe-rs chip name, for real boards.
    pub probe_chip: Option<String>,
    /// Rust target triple of the firmware.
    pub target: String,
    /// Core name.
    pub cpu: String,
    /// Core clock in Hz.
    pub clock_hz: u32,
    /// Flash the image may use.
    pub flash: MemoryRegion,
    /// RAM the image may use.
    pub ram: MemoryRegion,
    /// `dwt`, `systick` or `qemu-icount`.
    pub cycle_source: CycleSource,
    /// Bytes kept free for the stack at link time (default 8 KiB).
    #[serde(default = "default_stack_reserve")]
    pub stack_reserve: u32,
}

fn default_stack_reserve() -> u32 {
    8 * 1024
}

#[derive(Deserialize)]
struct Catalog {
    board: Vec<Board>,
}

/// Why a board could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// Not in the catalog.
    #[error("unknown board `{0}`; `patchbench boards` lists them ({1})")]
    Unknown(String, String),
    /// The catalog is malformed.
    #[error("board catalog: {0}")]
    Catalog(String),
}

impl Board {
    /// Counts per SysTick tick: on QEMU, instructions per tick (1 ns per instruction under
    /// `-icount shift=0`); on boards, 1 (a tick is a core cycle).
    pub fn counts_per_tick(&self) -> u64 {
        match self.cycle_source {
            CycleSource::QemuIcount => 1_000_000_000 / u64::from(self.clock_hz),
            _ => 1,
        }
    }

    /// True for a QEMU board.
    pub fn is_qemu(&self) -> bool {
        self.qemu_machine.is_some()
    }
}

const CATALOG: &str = include_str!("../boards.toml");

/// Every board of the catalog.
pub fn all() -> Result<Vec<Board>, BoardError> {
    let c: Catalog = toml::from_str(CATALOG).map_err(|e| BoardError::Catalog(e.to_string()))?;
    for b in &c.board {
        if b.qemu_machine.is_some() == b.probe_chip.is_some() {
            return Err(BoardError::Catalog(format!("board {} needs exactly one of qemu_machine, probe_chip", b.name)));
        }
    }
    Ok(c.board)
}

/// A board by name.
pub fn find(name: &str) -> Result<Board, BoardError> {
    let all = all()?;
    let names = all.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ");
    all.into_iter().find(|b| b.name == name).ok_or_else(|| BoardError::Unknown(name.to_string(), names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_has_the_qemu_boards() {
        let all = all().unwrap();
        for name in ["qemu-m4", "qemu-m3", "qemu-m7", "qemu-m33", "qemu-m4-256k", "qemu-m7-320k"] {
            assert!(all.iter().any(|b| b.name == name), "{name}");
        }
        let m4 = find("qemu-m4").unwrap();
        assert_eq!(m4.counts_per_tick(), 40);
        assert_eq!(find("qemu-m33").unwrap().counts_per_tick(), 50);
        assert!(find("nope").unwrap_err().to_string().contains("qemu-m4"));
    }
}
