//! Turning the device's RTT byte stream into a [`Measurement`].

use anyhow::bail;
use harness::record::{decode, CycleSource, Record, PROTOCOL_VERSION};

/// The header of a stream, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Board name as the firmware knows it.
    pub board: String,
    /// Core.
    pub cpu: String,
    /// Core clock.
    pub clock_hz: u32,
    /// How cycles are counted.
    pub cycle_source: CycleSource,
    /// Model name.
    pub model: String,
    /// Model hash.
    pub model_hash: u64,
    /// The schedule the image runs.
    pub schedule: harness::plan::Schedule,
    /// Where the input lives.
    pub input_in: harness::plan::InputPlacement,
    /// The image enabled the caches.
    pub caches: bool,
    /// Planned arena bytes.
    pub arena_planned: u32,
    /// Measured runs announced.
    pub repeats: u16,
}

/// Everything one image reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measurement {
    /// The header (first record).
    pub header: Option<Header>,
    /// `(cycles, output_crc)` per measured run.
    pub runs: Vec<(u64, u32)>,
    /// Arena high-water mark.
    pub arena_bytes: Option<u32>,
    /// Stack high-water mark.
    pub stack_bytes: Option<u32>,
    /// Stack capacity.
    pub stack_capacity: Option<u32>,
    /// Error the device reported.
    pub error: Option<String>,
    /// The HardFault the device reported: (PC, LR, CFSR, HFSR).
    pub fault: Option<(u32, u32, u32, u32)>,
    /// The end record arrived.
    pub ended: bool,
    /// `(op, runs, count)` of a profiled run, in op order.
    pub op_counts: Vec<(u16, u32, u64)>,
    /// What a kernel-check image found.
    pub kernel_check: Option<KernelCheck>,
}

/// A kernel-check image's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelCheck {
    /// The set checked.
    pub kernels: harness::kernels::KernelSet,
    /// Kernel calls compared (0 when one failed).
    pub calls: u32,
    /// Of them, windows beyond the set's scratch.
    pub large: u32,
    /// The first failure: kernel, case seed, byte.
    pub failure: Option<(String, u64, u32)>,
}

/// Accumulates frames from a byte stream.
#[derive(Default)]
pub struct Collector {
    pending: Vec<u8>,
    /// What arrived so far.
    pub measurement: Measurement,
}

impl Collector {
    /// Feeds stream bytes; complete frames are decoded. Returns true once the end record
    /// arrived.
    pub fn feed(&mut self, bytes: &[u8]) -> anyhow::Result<bool> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == 0) {
            let mut frame: Vec<u8> = self.pending.drain(..=end).collect();
            frame.pop();
            if frame.is_empty() {
                continue;
            }
            let record = decode(&mut frame).map_err(|e| anyhow::anyhow!("bad frame from the device: {e}"))?;
            self.accept(record)?;
        }
        // No frame is longer than MAX_FRAME: more bytes without a delimiter are not records.
        if self.pending.len() > harness::record::MAX_FRAME {
            bail!("the device sent {} bytes without a frame delimiter: not a record stream", self.pending.len());
        }
        Ok(self.measurement.ended)
    }

    fn accept(&mut self, r: Record) -> anyhow::Result<()> {
        let m = &mut self.measurement;
        if m.header.is_none() && !matches!(r, Record::Header { .. }) {
            bail!("the device's first record is not a header: is this a patchbench image?");
        }
        match r {
            Record::Header {
                protocol,
                board,
                cpu,
                clock_hz,
                cycle_source,
                model,
                model_hash,
                schedule,
                input_in,
                caches,
                arena_planned,
                repeats,
            } => {
                if protocol != PROTOCOL_VERSION {
                    bail!(
                        "the firmware speaks record protocol {protocol}, this host {PROTOCOL_VERSION}: rebuild the image with this version of patchbench"
                    );
                }
                m.header = Some(Header {
                    board: board.into(),
                    cpu: cpu.into(),
                    clock_hz,
                    cycle_source,
                    model: model.into(),
                    model_hash,
                    schedule: schedule
                        .parse()
                        .map_err(|e| anyhow::anyhow!("the device's header names schedule `{schedule}`: {e}"))?,
                    input_in,
                    caches,
                    arena_planned,
                    repeats,
                });
            }
            Record::Run { cycles, output_crc, .. } => m.runs.push((cycles, output_crc)),
            Record::Watermark { arena_bytes, stack_bytes, stack_capacity } => {
                m.arena_bytes = Some(arena_bytes);
                m.stack_bytes = Some(stack_bytes);
                m.stack_capacity = Some(stack_capacity);
            }
            Record::Error { message } => m.error = Some(message.into()),
            Record::Fault { pc, lr, cfsr, hfsr } => m.fault = Some((pc, lr, cfsr, hfsr)),
            Record::End => m.ended = true,
            Record::OpCount { op, runs, count } => m.op_counts.push((op, runs, count)),
            Record::KernelCheck { kernels, calls, large, failed, seed, byte } => {
                let failure = (!failed.is_empty()).then(|| (failed.to_string(), seed, byte));
                m.kernel_check = Some(KernelCheck { kernels, calls, large, failure });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::record::{encode, MAX_FRAME};

    fn frames(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let mut buf = [0u8; MAX_FRAME];
            let n = encode(r, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn header(protocol: u16) -> Record<'static> {
        Record::Header {
            protocol,
            board: "qemu-m4",
            cpu: "cortex-m4",
            clock_hz: 25_000_000,
            cycle_source: CycleSource::QemuIcount,
            model: "tiny",
            model_hash: 1,
            schedule: "layer-wise",
            input_in: harness::plan::InputPlacement::Flash,
            caches: false,
            arena_planned: 100,
            repeats: 2,
        }
    }

    #[test]
    fn collects_a_stream_split_at_any_byte() {
        let stream = frames(&[
            header(PROTOCOL_VERSION),
            Record::Run { index: 0, cycles: 10, output_crc: 7 },
            Record::Run { index: 1, cycles: 12, output_crc: 7 },
            Record::Watermark { arena_bytes: 100, stack_bytes: 300, stack_capacity: 4096 },
            Record::End,
        ]);
        for cut in [1, 7, stream.len() / 2, stream.len() - 1] {
            let mut c = Collector::default();
            assert!(!c.feed(&stream[..cut]).unwrap());
            assert!(c.feed(&stream[cut..]).unwrap());
            assert_eq!(c.measurement.runs, vec![(10, 7), (12, 7)]);
            assert_eq!(c.measurement.arena_bytes, Some(100));
        }
    }

    #[test]
    fn refuses_other_protocol_versions_and_headless_streams() {
        let err = Collector::default().feed(&frames(&[header(PROTOCOL_VERSION + 1)])).unwrap_err();
        assert!(err.to_string().contains("rebuild the image"), "{err}");
        let err = Collector::default().feed(&frames(&[Record::End])).unwrap_err();
        assert!(err.to_string().contains("not a header"), "{err}");
    }
}
