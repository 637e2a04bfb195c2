//! The device -> host wire format: [`Record`]s, each sent as one frame
//! `COBS(postcard(record) ++ crc32_le(postcard(record))) ++ 0x00` on RTT up channel 1.
//!
//! The first record of a stream is a [`Record::Header`] carrying [`PROTOCOL_VERSION`]; the
//! host refuses a stream whose version differs (as defmt checks its `_defmt_version_`).

use serde::{Deserialize, Serialize};

/// Bumped on any change of [`Record`] or the framing.
pub const PROTOCOL_VERSION: u16 = 6;

/// Largest encoded frame, delimiter included.
pub const MAX_FRAME: usize = 256;

/// How `cycles` were counted. Named `dwt`, `systick`, `qemu-icount` in the board catalog and
/// CSV (postcard sends the variant index, so names do not touch the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CycleSource {
    /// DWT CYCCNT: core clock cycles.
    Dwt,
    /// SysTick at the core clock (cores without DWT): cycles.
    Systick,
    /// QEMU `-icount shift=0`: instructions, derived from SysTick ticks; never cycles. The
    /// default target's source, and what a CSV row without the column reads as.
    #[default]
    QemuIcount,
}

impl CycleSource {
    /// The name used in CSV and plots.
    pub const fn as_str(self) -> &'static str {
        match self {
            CycleSource::Dwt => "dwt",
            CycleSource::Systick => "systick",
            CycleSource::QemuIcount => "qemu-icount",
        }
    }

    /// What one count is.
    pub const fn unit(self) -> &'static str {
        match self {
            CycleSource::QemuIcount => "instructions (QEMU)",
            _ => "cycles",
        }
    }

    /// True when counts are core cycles (not QEMU instructions).
    pub const fn is_cycles(self) -> bool {
        !matches!(self, CycleSource::QemuIcount)
    }
}

impl core::fmt::Display for CycleSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message from the device.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record<'a> {
    /// Sent first: what runs where.
    Header {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol: u16,
        /// Board catalog name.
        board: &'a str,
        /// Core, e.g. `cortex-m4`.
        cpu: &'a str,
        /// Core clock in Hz.
        clock_hz: u32,
        /// How `cycles` are counted.
        cycle_source: CycleSource,
        /// Model name.
        model: &'a str,
        /// [`crate::model::Model::hash`] of the embedded model.
        model_hash: u64,
        /// The schedule that runs, in its canonical text ([`crate::plan::Schedule`]).
        schedule: &'a str,
        /// Where the input lives.
        input_in: crate::plan::InputPlacement,
        /// The image enabled the I- and D-caches.
        caches: bool,
        /// Planned arena bytes (= the static arena's size).
        arena_planned: u32,
        /// Measured runs that follow.
        repeats: u16,
    },
    /// One measured inference.
    Run {
        /// 0-based run index.
        index: u16,
        /// Cycles (or instructions, see the header's cycle source).
        cycles: u64,
        /// CRC-32 (IEEE) of the output tensor bytes.
        output_crc: u32,
    },
    /// High-water marks of painted memory, over all runs.
    Watermark {
        /// Highest arena byte touched + 1.
        arena_bytes: u32,
        /// Deepest stack use in bytes.
        stack_bytes: u32,
        /// Bytes available to the stack.
        stack_capacity: u32,
    },
    /// Inference failed on the device.
    Error {
        /// What failed.
        message: &'a str,
    },
    /// Last record: the device parks after it.
    End,
    /// The core took a HardFault (sent by the fault handler, which then parks).
    Fault {
        /// The faulting instruction's address (stacked PC).
        pc: u32,
        /// The stacked link register.
        lr: u32,
        /// Configurable Fault Status Register (0 on Armv6-M, which has none).
        cfsr: u32,
        /// HardFault Status Register (0 on Armv6-M).
        hfsr: u32,
    },
    /// What a kernel-check image found (`harness::kernels::check` of its kernel set against
    /// the reference), sent instead of runs.
    KernelCheck {
        /// Kernel set checked.
        kernels: crate::kernels::KernelSet,
        /// Kernel calls compared.
        calls: u32,
        /// Of them, windows beyond the set's scratch.
        large: u32,
        /// The first kernel that departed (empty: none).
        failed: &'a str,
        /// Its case seed.
        seed: u64,
        /// Its first differing output byte.
        byte: u32,
    },
    /// One op's share of a profiled inference (an image built with the profile option sends
    /// one per op, after its measured runs, from one more run).
    OpCount {
        /// Op index.
        op: u16,
        /// Times it ran: 1, or once per patch in the patch stage.
        runs: u32,
        /// Cycles (instructions on QEMU) over all its runs.
        count: u64,
    },
}

/// CRC-32 (IEEE 802.3), the checksum of frames and of output tensors.
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why a frame could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The record does not fit [`MAX_FRAME`].
    TooLong,
    /// Not valid COBS.
    Cobs,
    /// The checksum does not match: bytes were lost or corrupted.
    Crc,
    /// The payload is not a record of this protocol.
    Decode,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::TooLong => "record too long for a frame",
            FrameError::Cobs => "frame is not valid COBS",
            FrameError::Crc => "frame checksum mismatch (lost or corrupted bytes)",
            FrameError::Decode => "frame payload is not a record of this protocol version",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Encodes `record` into `out` as one frame, delimiter included; returns its length.
pub fn encode(record: &Record, out: &mut [u8; MAX_FRAME]) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_FRAME];
    let n = postcard::to_slice(record, &mut raw[..MAX_FRAME - 16]).map_err(|_| FrameError::TooLong)?.len();
    let crc = CRC32.checksum(&raw[..n]);
    raw[n..n + 4].copy_from_slice(&crc.to_le_bytes());
    let len = cobs::try_encode(&raw[..n + 4], &mut out[..MAX_FRAME - 1]).map_err(|_| FrameError::TooLong)?;
    out[len] = 0;
    Ok(len + 1)
}

/// Decodes one frame (without its 0x00 delimiter) in place and returns the record, which
/// borrows from `frame`.
pub fn decode(frame: &mut [u8]) -> Result<Record<'_>, FrameError> {
    let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    if n < 4 {
        return Err(FrameError::Cobs);
    }
    let (payload, crc) = frame[..n].split_at(n - 4);
    if CRC32.checksum(payload).to_le_bytes() != crc {
        return Err(FrameError::Crc);
    }
    postcard::from_bytes(payload).map_err(|_| FrameError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_catch_corruption() {
        let records = [
            Record::Header {
                protocol: PROTOCOL_VERSION,
                board: "qemu-m4",
                cpu: "cortex-m4",
                clock_hz: 25_000_000,
                cycle_source: CycleSource::QemuIcount,
                model: "tiny",
                model_hash: 0x0123_4567_89ab_cdef,
                schedule: "4@2x3",
                input_in: crate::plan::InputPlacement::Flash,
                caches: false,
                arena_planned: 6144,
                repeats: 3,
            },
            Record::Run { index: 2, cycles: 1 << 40, output_crc: 0xdead_beef },
            Record::Watermark { arena_bytes: 6144, stack_bytes: 900, stack_capacity: 8192 },
            Record::Error { message: "arena too small" },
            Record::End,
        ];
        for r in records {
            let mut buf = [0u8; MAX_FRAME];
            let n = encode(&r, &mut buf).unwrap();
            assert_eq!(buf[n - 1], 0);
            assert!(!buf[..n - 1].contains(&0), "COBS leaves no zero inside a frame");
            let mut frame = buf[..n - 1].to_vec();
            assert_eq!(decode(&mut frame).unwrap(), r);
            // Flip one payload bit: the CRC (or COBS) must notice.
            let mut bad = buf[..n - 1].to_vec();
            let i = bad.len() / 2;
            bad[i] ^= 0x10;
            if bad[i] != 0 {
                assert!(decode(&mut bad).is_err());
            }
        }
    }
}
