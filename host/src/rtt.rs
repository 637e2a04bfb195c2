//! Reading SEGGER RTT up channels through any target memory interface (QEMU's gdbstub now,
//! probe-rs later), so the logic is tested against a fake memory.

use anyhow::{bail, Context};

/// Target memory as the host sees it.
pub trait Memory {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> anyhow::Result<()>;
    /// Writes `data` at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> anyhow::Result<()>;
}

const ID: &[u8; 16] = b"SEGGER RTT\0\0\0\0\0\0";
const HEADER: u64 = 24; // id[16], max_up: i32, max_down: i32
const DESCRIPTOR: u64 = 24; // name, buffer, size, write, read, flags: u32 each

/// An RTT control block at a known address (the ELF's `_SEGGER_RTT`).
pub struct Rtt {
    address: u64,
    ready: bool,
}

impl Rtt {
    /// The control block at `address`.
    pub fn new(address: u64) -> Self {
        Rtt { address, ready: false }
    }

    /// Drains up channel `channel` into `out`; returns how many bytes were read. Before the
    /// target initialized the block, reads nothing.
    pub fn drain(&mut self, mem: &mut dyn Memory, channel: u32, out: &mut Vec<u8>) -> anyhow::Result<usize> {
        if !self.ready {
            let mut head = [0u8; HEADER as usize];
            mem.read(self.address, &mut head)?;
            if &head[..16] != ID {
                return Ok(0);
            }
            let max_up = u32::from_le_bytes(head[16..20].try_into().unwrap());
            if channel >= max_up {
                bail!("the firmware has {max_up} RTT up channels; channel {channel} does not exist");
            }
            self.ready = true;
        }
        let desc = self.address + HEADER + DESCRIPTOR * u64::from(channel);
        let mut d = [0u8; DESCRIPTOR as usize];
        mem.read(desc, &mut d)?;
        let word = |i: usize| u32::from_le_bytes(d[i * 4..i * 4 + 4].try_into().unwrap());
        let (buffer, size, write, read) = (u64::from(word(1)), word(2), word(3), word(4));
        if size == 0 || write >= size || read >= size {
            bail!("RTT channel {channel} descriptor is corrupt (size {size}, write {write}, read {read})");
        }
        if write == read {
            return Ok(0);
        }
        let start = out.len();
        let mut chunk = |from: u32, to: u32, out: &mut Vec<u8>| -> anyhow::Result<()> {
            let n = (to - from) as usize;
            let at = out.len();
            out.resize(at + n, 0);
            mem.read(buffer + u64::from(from), &mut out[at..]).context("reading the RTT buffer")
        };
        if write > read {
            chunk(read, write, out)?;
        } else {
            chunk(read, size, out)?;
            chunk(0, write, out)?;
        }
        // Hand the space back: the read offset is the 5th word of the descriptor.
        mem.write(desc + 16, &write.to_le_bytes())?;
        Ok(out.len() - start)
    }
}

/// A fake target memory for tests: a byte vector at a base address.
pub struct FakeMemory {
    /// First address.
    pub base: u64,
    /// Contents.
    pub bytes: Vec<u8>,
}

impl Memory for FakeMemory {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        let at = addr.checked_sub(self.base).context("read below the fake memory")? as usize;
        let src = self.bytes.get(at..at + buf.len()).context("read past the fake memory")?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> anyhow::Result<()> {
        let at = (addr - self.base) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// A target with the device side of RTT: a control block with two up channels (log and
/// records) whose ring buffers the "device" fills as the firmware would, and whose read
/// offsets the host advances. Tests of every deploy backend stream records through it.
pub struct FakeTarget {
    mem: FakeMemory,
    size: u32,
}

impl FakeTarget {
    /// A control block at `address`; each up channel gets a `size`-byte ring.
    pub fn new(address: u64, size: u32) -> FakeTarget {
        let desc = HEADER + 2 * DESCRIPTOR;
        let total = desc as usize + 2 * size as usize;
        let mut mem = FakeMemory { base: address, bytes: vec![0; total] };
        mem.bytes[..16].copy_from_slice(ID);
        mem.bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
        for ch in 0..2u64 {
            let d = (HEADER + DESCRIPTOR * ch) as usize;
            let buffer = address + desc + ch * u64::from(size);
            for (i, v) in [0u32, buffer as u32, size, 0, 0, 2].into_iter().enumerate() {
                mem.bytes[d + i * 4..d + i * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        FakeTarget { mem, size }
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.mem.bytes[at..at + 4].try_into().unwrap())
    }

    /// The device writes `data` to up channel `channel`, blocking (here: failing) if the
    /// host has not read enough of the ring.
    pub fn device_write(&mut self, channel: u32, data: &[u8]) {
        let d = (HEADER + DESCRIPTOR * u64::from(channel)) as usize;
        let (buffer, write, read) = (self.word(d + 4), self.word(d + 12), self.word(d + 16));
        let free = (read + self.size - write - 1) % self.size;
        assert!(data.len() as u32 <= free, "the fake ring is full: the host did not read");
        let mut w = write;
        for &b in data {
            let at = (u64::from(buffer) - self.mem.base) as usize + w as usize;
            self.mem.bytes[at] = b;
            w = (w + 1) % self.size;
        }
        self.mem.bytes[d + 12..d + 16].copy_from_slice(&w.to_le_bytes());
    }
}

impl Memory for FakeTarget {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        self.mem.read(addr, buf)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> anyhow::Result<()> {
        self.mem.write(addr, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control block at 0x2000_0000 with two up channels; channel 1's 16-byte buffer at
    /// 0x2000_0100.
    fn target() -> FakeMemory {
        let mut m = FakeMemory { base: 0x2000_0000, bytes: vec![0; 0x200] };
        m.bytes[..16].copy_from_slice(ID);
        m.bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
        m
    }

    fn set_channel(m: &mut FakeMemory, write: u32, read: u32) {
        let d = (HEADER + DESCRIPTOR) as usize;
        for (i, v) in [0u32, 0x2000_0100, 16, write, read, 2].into_iter().enumerate() {
            m.bytes[d + i * 4..d + i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    #[test]
    fn reads_linear_and_wrapped_data_and_advances_the_read_offset() {
        let mut m = target();
        m.bytes[0x100..0x110].copy_from_slice(b"0123456789abcdef");
        set_channel(&mut m, 6, 2);
        let mut rtt = Rtt::new(0x2000_0000);
        let mut out = Vec::new();
        assert_eq!(rtt.drain(&mut m, 1, &mut out).unwrap(), 4);
        assert_eq!(out, b"2345");
        assert_eq!(rtt.drain(&mut m, 1, &mut out).unwrap(), 0, "read offset was advanced");
        // Wrapped: read at 14, write at 3.
        set_channel(&mut m, 3, 14);
        out.clear();
        rtt.drain(&mut m, 1, &mut out).unwrap();
        assert_eq!(out, b"ef012");
        let d = (HEADER + DESCRIPTOR) as usize + 16;
        assert_eq!(u32::from_le_bytes(m.bytes[d..d + 4].try_into().unwrap()), 3);
    }

    #[test]
    fn waits_for_initialisation_and_rejects_missing_channels() {
        let mut m = FakeMemory { base: 0x2000_0000, bytes: vec![0; 0x200] };
        let mut rtt = Rtt::new(0x2000_0000);
        assert_eq!(rtt.drain(&mut m, 1, &mut Vec::new()).unwrap(), 0);
        let mut m = target();
        m.bytes[16..20].copy_from_slice(&1u32.to_le_bytes());
        let err = Rtt::new(0x2000_0000).drain(&mut m, 1, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("channel 1 does not exist"));
    }

    #[test]
    fn corrupt_descriptors_are_errors_not_panics() {
        let mut m = target();
        set_channel(&mut m, 99, 0);
        let err = Rtt::new(0x2000_0000).drain(&mut m, 1, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("corrupt"));
    }
}
