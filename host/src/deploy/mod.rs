//! Deploy targets: where an image runs. QEMU and probe-rs boards implement [`Target`]; both
//! stream the device's RTT channels through [`stream`], which reads the RTT control block
//! over the target's memory ([`crate::rtt::Memory`]) and decodes records with
//! [`crate::collect::Collector`]. Targets return a [`Measurement`] or a typed
//! [`DeployError`]; only the runner turns either into a CSV row.

pub mod probe;
pub mod qemu;

use crate::boards::Board;
use crate::collect::{Collector, Measurement};
use crate::rtt::{Memory, Rtt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a deployment produced no measurement.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No end record within the timeout.
    #[error("no end record within {seconds} s{}", log_suffix(.log))]
    Timeout {
        /// The timeout.
        seconds: u64,
        /// What the device logged on RTT channel 0.
        log: String,
    },
    /// The device stopped working: a HardFault, or the firmware reported an error.
    #[error("the device failed: {reason}{}", log_suffix(.log))]
    Fault {
        /// What happened.
        reason: String,
        /// What the device logged on RTT channel 0.
        log: String,
    },
    /// The device sent something that is not a valid record stream of this protocol.
    #[error("the device's record stream is invalid: {0}")]
    Protocol(String),
    /// The host could not talk to the target, or the target went away (the emulator exited,
    /// the probe, USB or flashing failed).
    #[error("{0:#}")]
    Transport(anyhow::Error),
}

fn log_suffix(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        String::new()
    } else {
        format!("; device log: {log}")
    }
}

impl From<anyhow::Error> for DeployError {
    fn from(e: anyhow::Error) -> Self {
        DeployError::Transport(e)
    }
}

/// A linked image and where its RTT control block is.
#[derive(Clone, Copy, Debug)]
pub struct Deployable<'a> {
    /// The ELF.
    pub elf: &'a Path,
    /// Address of `_SEGGER_RTT`.
    pub rtt_address: u64,
}

/// Something that runs images.
pub trait Target {
    /// Runs `image` until its end record or `timeout`, and returns what it sent.
    fn deploy(&mut self, image: Deployable, timeout: Duration) -> Result<Measurement, DeployError>;
}

/// A running target as [`stream`] sees it.
pub trait Link {
    /// Memory for one poll. QEMU halts here (its gdbstub reads a stopped target, and virtual
    /// time stands still meanwhile); a probe reads the running core.
    fn pause(&mut self) -> anyhow::Result<&mut dyn Memory>;
    /// Lets the target run again after [`Link::pause`].
    fn resume(&mut self) -> anyhow::Result<()>;
    /// `Err` with the reason once the target can no longer run (an emulator exited).
    fn check_alive(&mut self) -> Result<(), String>;
    /// The error to report for `e`, a failed exchange with the target. A link whose target
    /// can die (an emulator) waits briefly for that death and reports its reason instead of
    /// the broken pipe it caused.
    fn explain(&mut self, e: anyhow::Error) -> anyhow::Error {
        e
    }
}

/// Polls `link` for RTT records at `rtt_address` until the end record or `timeout`.
pub fn stream(link: &mut dyn Link, rtt_address: u64, timeout: Duration) -> Result<Measurement, DeployError> {
    let mut rtt = Rtt::new(rtt_address);
    let mut collector = Collector::default();
    let mut log = Vec::new();
    let start = Instant::now();
    let mut poll = Duration::from_millis(5);
    link.resume().map_err(|e| link.explain(e))?;
    loop {
        std::thread::sleep(poll);
        // Back off to 100 ms: a halt costs host time, not virtual time.
        poll = (poll * 2).min(Duration::from_millis(100));
        let mut bytes = Vec::new();
        drain(link, &mut rtt, &mut bytes, &mut log).map_err(|e| link.explain(e))?;
        let ended = collector.feed(&bytes).map_err(|e| DeployError::Protocol(format!("{e:#}")))?;
        let text = || String::from_utf8_lossy(&log).into_owned();
        if let Some((pc, lr, cfsr, hfsr)) = collector.measurement.fault {
            return Err(DeployError::Fault {
                reason: format!(
                    "HardFault at PC {pc:#010x} (LR {lr:#010x}), CFSR {cfsr:#010x}{}, HFSR {hfsr:#010x}",
                    cfsr_names(cfsr)
                ),
                log: text(),
            });
        }
        if let Some(e) = &collector.measurement.error {
            return Err(DeployError::Fault { reason: format!("the firmware reported: {e}"), log: text() });
        }
        if ended {
            return Ok(collector.measurement);
        }
        if start.elapsed() > timeout {
            return Err(DeployError::Timeout { seconds: timeout.as_secs(), log: text() });
        }
        if let Err(reason) = link.check_alive() {
            return Err(DeployError::Transport(anyhow::anyhow!("{reason}{}", log_suffix(&text()))));
        }
        link.resume().map_err(|e| link.explain(e))?;
    }
}

/// One poll: pauses `link` and appends what the device wrote to RTT channels 1 (records)
/// and 0 (log).
fn drain(link: &mut dyn Link, rtt: &mut Rtt, records: &mut Vec<u8>, log: &mut Vec<u8>) -> anyhow::Result<()> {
    let mem = link.pause()?;
    rtt.drain(mem, 1, records)?;
    rtt.drain(mem, 0, log)?;
    Ok(())
}

/// The causes a CFSR value names, as ` (UNDEFINSTR, ...)`.
fn cfsr_names(cfsr: u32) -> String {
    const BITS: [(u32, &str); 14] = [
        (0, "IACCVIOL"),
        (1, "DACCVIOL"),
        (3, "MUNSTKERR"),
        (4, "MSTKERR"),
        (8, "IBUSERR"),
        (9, "PRECISERR"),
        (10, "IMPRECISERR"),
        (11, "UNSTKERR"),
        (12, "STKERR"),
        (16, "UNDEFINSTR"),
        (17, "INVSTATE"),
        (18, "INVPC"),
        (19, "NOCP"),
        (25, "DIVBYZERO"),
    ];
    let names: Vec<&str> = BITS.iter().filter(|(b, _)| cfsr & (1 << b) != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    }
}

/// The deploy target of a board: QEMU for emulated boards, a debug probe for real ones.
pub fn target_for(board: &Board, probe: Option<&probe::Selector>) -> Result<Box<dyn Target>, DeployError> {
    if let Some(machine) = &board.qemu_machine {
        return Ok(Box::new(qemu::QemuTarget { machine: machine.clone() }));
    }
    Ok(Box::new(probe::ProbeTarget::open(board, probe)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtt::FakeTarget;
    use harness::record::{encode, CycleSource, Record, PROTOCOL_VERSION};

    /// A link over a fake memory whose device writes one more frame per poll.
    struct FakeLink {
        target: FakeTarget,
        frames: Vec<Vec<u8>>,
        dies_after: Option<usize>,
        /// After the death, the next pause fails as a closed socket does.
        breaks: bool,
        polls: usize,
    }

    impl Link for FakeLink {
        fn pause(&mut self) -> anyhow::Result<&mut dyn Memory> {
            if self.breaks && self.check_alive().is_err() {
                return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
            }
            if let Some(f) = self.frames.get(self.polls) {
                self.target.device_write(1, f);
            }
            self.polls += 1;
            Ok(&mut self.target)
        }
        fn resume(&mut self) -> anyhow::Result<()> {
            Ok(())
        }
        fn check_alive(&mut self) -> Result<(), String> {
            match self.dies_after {
                Some(n) if self.polls >= n => Err("QEMU exited".into()),
                _ => Ok(()),
            }
        }
        fn explain(&mut self, e: anyhow::Error) -> anyhow::Error {
            self.check_alive().err().map_or(e, |died| anyhow::anyhow!(died))
        }
    }

    fn frame(r: &Record) -> Vec<u8> {
        let mut buf = [0u8; harness::record::MAX_FRAME];
        let n = encode(r, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn header() -> Record<'static> {
        Record::Header {
            protocol: PROTOCOL_VERSION,
            board: "b",
            cpu: "cortex-m4",
            clock_hz: 1,
            cycle_source: CycleSource::Dwt,
            model: "m",
            model_hash: 7,
            schedule: "layer-wise",
            input_in: harness::plan::InputPlacement::Flash,
            caches: false,
            arena_planned: 16,
            repeats: 1,
        }
    }

    fn link(frames: Vec<Vec<u8>>, dies_after: Option<usize>) -> FakeLink {
        FakeLink { target: FakeTarget::new(0x2000_0000, 128), frames, dies_after, breaks: false, polls: 0 }
    }

    #[test]
    fn a_stream_ends_with_its_end_record_or_a_typed_error() {
        let run = Record::Run { index: 0, cycles: 1234, output_crc: 5 };
        let frames = vec![frame(&header()), frame(&run), frame(&Record::End)];
        let m = stream(&mut link(frames.clone(), None), 0x2000_0000, Duration::from_secs(5)).unwrap();
        assert_eq!(m.runs, [(1234, 5)]);
        assert!(m.ended);
        // No end record: a timeout.
        let e = stream(&mut link(frames[..2].to_vec(), None), 0x2000_0000, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, DeployError::Timeout { .. }), "{e}");
        // The emulator dies: an error of the host's tools, not a device fault.
        let e = stream(&mut link(frames[..1].to_vec(), Some(2)), 0x2000_0000, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, DeployError::Transport(_)) && e.to_string().contains("QEMU exited"), "{e}");
        // ... and the link to it breaks first: the death is reported, not the broken pipe.
        let mut dying = link(frames[..1].to_vec(), Some(2));
        dying.breaks = true;
        let e = stream(&mut dying, 0x2000_0000, Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("QEMU exited") && !e.to_string().contains("pipe"), "{e}");
        // The firmware reports an error: a fault naming it.
        let err = frame(&Record::Error { message: "arena too small" });
        let e = stream(&mut link(vec![frame(&header()), err], None), 0x2000_0000, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, DeployError::Fault { .. }) && e.to_string().contains("arena too small"), "{e}");
        // A corrupted frame: a protocol error.
        let mut bad = frame(&run);
        bad[2] ^= 0x55;
        let e = stream(&mut link(vec![frame(&header()), bad], None), 0x2000_0000, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, DeployError::Protocol(_)), "{e}");
    }
}
