//! Real boards through a debug probe, with probe-rs as a library (pinned in Cargo.toml: its
//! API changes between releases). Flash with a progress bar, reset, stream RTT from the
//! running core (a probe reads memory without halting it), halt when done. The records and
//! the CSV rows are the same as on QEMU.

use super::{DeployError, Deployable, Link, Target};
use crate::boards::Board;
use crate::collect::Measurement;
use crate::rtt::Memory;
use anyhow::Context;
use probe_rs::probe::list::Lister;
use probe_rs::probe::{DebugProbeInfo, DebugProbeSelector};
use probe_rs::{MemoryInterface, Permissions};
use std::time::Duration;

/// `--probe VID:PID[:SERIAL]` (hexadecimal ids, as `patchbench probes` prints them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(pub DebugProbeSelector);

impl std::str::FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<DebugProbeSelector>()
            .map(Selector)
            .map_err(|e| format!("`{s}` is not a probe: write VID:PID or VID:PID:SERIAL in hex, e.g. 0483:374b ({e})"))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Every probe attached to this host.
pub fn list() -> Vec<DebugProbeInfo> {
    Lister::new().list_all()
}

/// The probe-rs chip name of a board, or an error saying the board is emulated.
fn chip(board: &Board) -> Result<&str, DeployError> {
    board.probe_chip.as_deref().ok_or_else(|| {
        DeployError::Transport(anyhow::anyhow!("board {} is emulated (QEMU), not a probe-rs board", board.name))
    })
}

/// Picks the probe for `board`: the one `selector` names, or the only one attached.
pub fn pick(
    board: &Board,
    selector: Option<&Selector>,
    attached: &[DebugProbeInfo],
) -> Result<DebugProbeInfo, DeployError> {
    let chip = chip(board)?;
    let fail = |what: String| DeployError::Transport(anyhow::anyhow!("{what}"));
    match selector {
        Some(s) => attached.iter().find(|p| DebugProbeSelector::from(*p) == s.0 || matches_loosely(&s.0, p)).cloned().ok_or_else(|| {
            fail(format!(
                "board {} (chip {chip}): no attached probe matches --probe {s}; `patchbench probes` lists the attached ones",
                board.name
            ))
        }),
        None => match attached {
            [] => Err(fail(format!(
                "board {} (chip {chip}) is deployed through a debug probe, and none is attached: connect the board's probe (ST-LINK, J-Link, CMSIS-DAP) and check that `patchbench probes` lists it",
                board.name
            ))),
            [one] => Ok(one.clone()),
            several => Err(fail(format!(
                "board {} (chip {chip}): {} probes are attached; pick one with --probe VID:PID[:SERIAL] (`patchbench probes` lists them)",
                board.name,
                several.len()
            ))),
        },
    }
}

/// A selector without a serial number matches any probe of that VID:PID.
fn matches_loosely(s: &DebugProbeSelector, p: &DebugProbeInfo) -> bool {
    s.serial_number.is_none() && s.vendor_id == p.vendor_id && s.product_id == p.product_id
}

/// A board behind a probe.
pub struct ProbeTarget {
    board: String,
    chip: String,
    probe: DebugProbeInfo,
}

impl ProbeTarget {
    /// Finds the probe for `board` (see [`pick`]); fails at once when there is none.
    pub fn open(board: &Board, selector: Option<&Selector>) -> Result<ProbeTarget, DeployError> {
        let probe = pick(board, selector, &list())?;
        Ok(ProbeTarget { board: board.name.clone(), chip: chip(board)?.to_string(), probe })
    }
}

/// The running core as RTT's memory: probe-rs reads and writes through the debug port
/// while the core runs.
struct CoreLink<'a> {
    core: probe_rs::Core<'a>,
}

impl Memory for CoreLink<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        self.core.read_8(addr, buf).with_context(|| format!("reading {} B at {addr:#x} through the probe", buf.len()))
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> anyhow::Result<()> {
        self.core
            .write_8(addr, data)
            .with_context(|| format!("writing {} B at {addr:#x} through the probe", data.len()))
    }
}

impl Link for CoreLink<'_> {
    fn pause(&mut self) -> anyhow::Result<&mut dyn Memory> {
        Ok(self)
    }

    fn resume(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.core.status() {
            Ok(probe_rs::CoreStatus::LockedUp) => Err("the core locked up (a fault inside the fault handler)".into()),
            Ok(probe_rs::CoreStatus::Halted(reason)) => Err(format!("the core halted ({reason:?})")),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("the probe lost the core: {e}")),
        }
    }
}

impl Target for ProbeTarget {
    fn deploy(&mut self, image: Deployable, timeout: Duration) -> Result<Measurement, DeployError> {
        let (board, chip) = (&self.board, &self.chip);
        let probe = self.probe.open().with_context(|| format!("opening probe {} for board {board}", self.probe))?;
        let mut session = probe
            .attach(chip.as_str(), Permissions::default())
            .with_context(|| format!("attaching to chip {chip} of board {board} through {}", self.probe))?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("flashing {msg} [{bar:30}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(board.clone());
        let mut options = probe_rs::flashing::DownloadOptions::default();
        options.progress = probe_rs::flashing::FlashProgress::new(|event| {
            use probe_rs::flashing::{ProgressEvent, ProgressOperation};
            match event {
                ProgressEvent::AddProgressBar { operation: ProgressOperation::Program, total: Some(t) } => {
                    bar.set_length(t)
                }
                ProgressEvent::Progress { operation: ProgressOperation::Program, size, .. } => bar.inc(size),
                _ => {}
            }
        });
        probe_rs::flashing::download_file_with_options(
            &mut session,
            image.elf,
            probe_rs::flashing::FormatKind::Elf,
            options,
        )
        .with_context(|| format!("flashing {} to board {board} (chip {chip})", image.elf.display()))?;
        bar.finish_and_clear();
        let mut core = session.core(0).with_context(|| format!("attaching to core 0 of {chip}"))?;
        core.reset().with_context(|| format!("resetting {chip}"))?;
        let mut link = CoreLink { core };
        let result = super::stream(&mut link, image.rtt_address, timeout);
        // Stop the core whatever happened: a parked or hung image must not keep running.
        let halted = link.core.halt(Duration::from_millis(500));
        match (result, halted) {
            (Ok(_), Err(e)) => {
                Err(DeployError::Transport(anyhow::Error::new(e).context(format!("halting {chip} after the run"))))
            }
            (r, _) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_say_what_a_probe_id_is() {
        let s: Selector = "0483:374b".parse().unwrap();
        assert_eq!((s.0.vendor_id, s.0.product_id, s.0.serial_number.as_deref()), (0x0483, 0x374b, None));
        let s: Selector = "1366:0101:000123456".parse().unwrap();
        assert_eq!(s.0.serial_number.as_deref(), Some("000123456"));
        assert!("stlink".parse::<Selector>().unwrap_err().contains("VID:PID"));
    }

    #[test]
    fn without_a_probe_a_board_names_itself_its_chip_and_the_probes_command() {
        let board = crate::boards::find("stm32f746g-disco").unwrap();
        let e = pick(&board, None, &[]).unwrap_err().to_string();
        for part in ["stm32f746g-disco", board.probe_chip.as_deref().unwrap(), "patchbench probes"] {
            assert!(e.contains(part), "{part} in {e}");
        }
        let s: Selector = "0483:374b".parse().unwrap();
        let e = pick(&board, Some(&s), &[]).unwrap_err().to_string();
        assert!(e.contains("--probe 0483:374b") && e.contains("patchbench probes"), "{e}");
        let qemu = crate::boards::find("qemu-m4").unwrap();
        assert!(pick(&qemu, None, &[]).unwrap_err().to_string().contains("emulated"));
    }

    #[test]
    fn every_catalog_chip_is_known_to_the_pinned_probe_rs() {
        let registry = probe_rs::config::Registry::from_builtin_families();
        for b in crate::boards::all().unwrap().iter().filter(|b| b.probe_chip.is_some()) {
            let chip = b.probe_chip.as_deref().unwrap();
            let target = registry.get_target_by_name(chip).unwrap_or_else(|e| panic!("{}: {chip}: {e}", b.name));
            // The catalog's RAM lies in the chip's RAM, its flash in the chip's flash; adjacent
            // regions (DTCM then SRAM on the STM32F7, two flash banks on the H7) count as one.
            let covered = |origin: u64, length: u64, ram: bool| {
                let ranges: Vec<std::ops::Range<u64>> = target
                    .memory_map
                    .iter()
                    .filter_map(|r| match r {
                        probe_rs::config::MemoryRegion::Ram(m) if ram => Some(m.range.clone()),
                        probe_rs::config::MemoryRegion::Nvm(m) if !ram => Some(m.range.clone()),
                        _ => None,
                    })
                    .collect();
                crate::boards::ranges_cover(&ranges, origin..origin + length)
            };
            let (ram, flash) = (b.ram, b.flash);
            assert!(covered(u64::from(ram.origin), u64::from(ram.length), true), "{}: RAM {ram:?} of {chip}", b.name);
            assert!(
                covered(u64::from(flash.origin), u64::from(flash.length), false),
                "{}: flash {flash:?} of {chip}",
                b.name
            );
        }
    }
}
