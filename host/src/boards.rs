//! The board catalog: `boards.toml` (compiled in) plus the users' own catalog files
//! (`--boards FILE` or `PATCHBENCH_BOARDS=FILE[:FILE...]`), in the same format.

use harness::kernels::KernelSet;
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

/// A named RAM region of a chip, for the record: which one holds the image's RAM.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedRegion {
    /// Name in the reference manual (`DTCM`, `SRAM1`, `AXI SRAM`).
    pub name: String,
    /// Start address.
    pub origin: u32,
    /// Bytes.
    pub length: u32,
    /// What the image keeps there (`arena, stack, .data, .bss`), or why it is unused.
    #[serde(default)]
    pub holds: String,
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
    /// Every RAM region of the chip, and which holds the arena and the stack (`ram`).
    #[serde(default)]
    pub regions: Vec<NamedRegion>,
    /// Enable the I- and D-caches at start, as deployments do (default: on Cortex-M7).
    #[serde(default)]
    pub caches: Option<bool>,
    /// A second-stage boot block the chip needs at the start of flash (`rp2040-w25q080`).
    #[serde(default)]
    pub boot2: Option<String>,
    /// The kernel set images run (default: `dsp` on cores with the DSP extension,
    /// `portable` elsewhere); `--kernels` and a spec's `kernels` override it.
    #[serde(default)]
    pub kernels: Option<KernelSet>,
}

/// Cores with the DSP extension (dual 16-bit multiply-accumulate): the `dsp` kernel set runs
/// there. (The Cortex-M33's is optional in silicon; every M33 in the catalog has it.)
const DSP_CORES: [&str; 5] = ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55"];

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
    /// The kernel set asked for cannot run on the board's core.
    #[error("{0}")]
    Kernels(String),
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

    /// True when the image enables the caches.
    pub fn caches_on(&self) -> bool {
        self.caches.unwrap_or(self.cpu == "cortex-m7")
    }

    /// True when the core has the DSP extension.
    pub fn has_dsp(&self) -> bool {
        DSP_CORES.contains(&self.cpu.as_str())
    }

    /// The kernel set its images run.
    pub fn kernels(&self) -> KernelSet {
        self.kernels.unwrap_or(if self.has_dsp() { KernelSet::Dsp } else { KernelSet::Portable })
    }

    /// This board running kernel set `kernels` (`None`: its own); refused where the core
    /// lacks the instructions the set needs.
    pub fn with_kernels(mut self, kernels: Option<KernelSet>) -> Result<Board, BoardError> {
        if let Some(k) = kernels {
            self.kernels = Some(k);
        }
        if self.kernels() == KernelSet::Dsp && !self.has_dsp() {
            return Err(BoardError::Kernels(format!(
                "board {}: its {} has no DSP extension, which the `dsp` kernel set needs ({} have it); use `portable` (the same kernels without those instructions) or `reference`",
                self.name,
                self.cpu,
                DSP_CORES.join(", ")
            )));
        }
        Ok(self)
    }
}

const CATALOG: &str = include_str!("../boards.toml");

/// Catalog files given with `--boards` (set once, at start).
static EXTRA: std::sync::OnceLock<Vec<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Adds users' catalog files to the built-in one (the CLI's `--boards`).
pub fn add_catalogs(files: Vec<std::path::PathBuf>) {
    let _ = EXTRA.set(files);
}

fn extra_catalogs() -> Vec<std::path::PathBuf> {
    let mut files = EXTRA.get().cloned().unwrap_or_default();
    if let Some(v) = std::env::var_os("PATCHBENCH_BOARDS") {
        files.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    files
}

fn parse(text: &str, origin: &str) -> Result<Vec<Board>, BoardError> {
    let c: Catalog = toml::from_str(text).map_err(|e| BoardError::Catalog(format!("{origin}: {e}")))?;
    for b in &c.board {
        if b.qemu_machine.is_some() == b.probe_chip.is_some() {
            return Err(BoardError::Catalog(format!(
                "{origin}: board {} needs exactly one of qemu_machine, probe_chip",
                b.name
            )));
        }
        if let Some(block) = b.boot2.as_deref().filter(|n| !crate::firmware::BOOT2_BLOCKS.contains(n)) {
            return Err(BoardError::Catalog(format!(
                "{origin}: board {}: unknown boot2 block `{block}`; known: {}",
                b.name,
                crate::firmware::BOOT2_BLOCKS.join(", ")
            )));
        }
        if b.boot2.is_some() && b.flash.origin < 0x100 {
            return Err(BoardError::Catalog(format!(
                "{origin}: board {}: a boot2 block needs 256 B of flash before `flash`",
                b.name
            )));
        }
        b.clone().with_kernels(None).map_err(|e| BoardError::Catalog(format!("{origin}: {e}")))?;
        let r = b.ram;
        if !b.regions.is_empty() && !covered(&b.regions, r) {
            return Err(BoardError::Catalog(format!(
                "{origin}: board {}: ram {:#x}+{:#x} is not inside its listed regions",
                b.name, r.origin, r.length
            )));
        }
    }
    Ok(c.board)
}

/// True when `regions`, one or several adjacent ones (DTCM followed by SRAM on the STM32F7),
/// cover `r`.
fn covered(regions: &[NamedRegion], r: MemoryRegion) -> bool {
    let ranges: Vec<std::ops::Range<u64>> =
        regions.iter().map(|n| u64::from(n.origin)..u64::from(n.origin) + u64::from(n.length)).collect();
    ranges_cover(&ranges, u64::from(r.origin)..u64::from(r.origin) + u64::from(r.length))
}

/// True when `ranges`, joined where one ends at or inside the next, cover `want`.
pub fn ranges_cover(ranges: &[std::ops::Range<u64>], want: std::ops::Range<u64>) -> bool {
    let mut at = want.start;
    while at < want.end {
        match ranges.iter().find(|r| r.contains(&at)) {
            Some(r) => at = r.end,
            None => return false,
        }
    }
    true
}

/// Every board: the built-in catalog, then the users' files.
pub fn all() -> Result<Vec<Board>, BoardError> {
    catalog(&extra_catalogs())
}

/// The built-in catalog and `files`, in that order; a name defined twice is refused.
pub fn catalog(files: &[std::path::PathBuf]) -> Result<Vec<Board>, BoardError> {
    let mut boards = parse(CATALOG, "built-in catalog (host/boards.toml)")?;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            BoardError::Catalog(format!(
                "{}: {e} (a board catalog file, given with --boards or PATCHBENCH_BOARDS)",
                file.display()
            ))
        })?;
        for b in parse(&text, &file.display().to_string())? {
            if boards.iter().any(|o| o.name == b.name) {
                return Err(BoardError::Catalog(format!(
                    "{}: board {} is already in the catalog; give it another name",
                    file.display(),
                    b.name
                )));
            }
            boards.push(b);
        }
    }
    Ok(boards)
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

    #[test]
    fn users_add_boards_with_a_file_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my-boards.toml");
        std::fs::write(
            &file,
            r#"
            [[board]]
            name = "my-f4"
            description = "a custom STM32F4 board"
            probe_chip = "STM32F412ZG"
            target = "thumbv7em-none-eabihf"
            cpu = "cortex-m4"
            clock_hz = 16_000_000
            flash = { origin = 0x0800_0000, length = 0x10_0000 }
            ram = { origin = 0x2000_0000, length = 0x2_0000 }
            cycle_source = "dwt"
            "#,
        )
        .unwrap();
        let boards = catalog(std::slice::from_ref(&file)).unwrap();
        let mine = boards.iter().find(|b| b.name == "my-f4").unwrap();
        assert_eq!(mine.cycle_source, CycleSource::Dwt);
        assert!(!mine.caches_on(), "an M4 has no caches to enable");
        // A name already in the catalog is refused, naming the file.
        std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("my-f4", "qemu-m4")).unwrap();
        let e = catalog(std::slice::from_ref(&file)).unwrap_err().to_string();
        assert!(e.contains("my-boards.toml") && e.contains("qemu-m4"), "{e}");
        // A malformed file says where.
        std::fs::write(&file, "[[board]]\nname = 3\n").unwrap();
        assert!(catalog(std::slice::from_ref(&file)).unwrap_err().to_string().contains("my-boards.toml"));
        let e = catalog(&[dir.path().join("missing.toml")]).unwrap_err().to_string();
        assert!(e.contains("missing.toml") && e.contains("PATCHBENCH_BOARDS"), "{e}");
    }

    #[test]
    fn real_boards_say_which_region_holds_the_arena_and_the_stack() {
        for b in all().unwrap().iter().filter(|b| !b.is_qemu()) {
            assert!(!b.regions.is_empty(), "{}", b.name);
            assert!(b.regions.iter().any(|r| r.holds.contains("arena") && r.holds.contains("stack")), "{}", b.name);
            assert!(covered(&b.regions, b.ram), "{}", b.name);
            assert_eq!(b.caches_on(), b.cpu == "cortex-m7", "{}", b.name);
            let expected = if b.cpu == "cortex-m0plus" { CycleSource::Systick } else { CycleSource::Dwt };
            assert_eq!(b.cycle_source, expected, "{}", b.name);
        }
        assert_eq!(find("rp-pico").unwrap().target, "thumbv6m-none-eabi");
    }
}
