//! Deploying to QEMU: spawn `qemu-system-arm` halted with its gdbstub on a free loopback
//! port, then drive it over the GDB remote protocol (interrupt, `m`/`M`, continue) to read
//! RTT. QEMU is killed on every exit path.

use super::{DeployError, Deployable, Link, Target};
use crate::collect::Measurement;
use crate::rtt::Memory;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps the child when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running QEMU, halted at reset until the first [`Qemu::resume`].
pub struct Qemu {
    child: KillOnDrop,
    gdb: Gdb,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Qemu {
    /// Starts `machine` with `elf`: `-icount shift=0` (one instruction = 1 ns of virtual time,
    /// deterministic), halted (`-S`), gdbstub on loopback.
    pub fn start(machine: &str, elf: &Path) -> anyhow::Result<Qemu> {
        let mut last_err = None;
        // The port is free when probed; another process may take it before QEMU binds it.
        for _ in 0..5 {
            let port = free_port()?;
            let child = Command::new("qemu-system-arm")
                .args(["-machine", machine, "-icount", "shift=0", "-nographic", "-monitor", "none", "-serial", "null"])
                .args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S", "-kernel"])
                .arg(elf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting qemu-system-arm (install it with `apt-get install qemu-system-arm`, or run scripts/setup.sh)")?;
            let mut child = KillOnDrop(child);
            match Gdb::connect(port, &mut child.0) {
                Ok(gdb) => return Ok(Qemu { child, gdb }),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap())
    }

    /// Lets the target run.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        self.gdb.send(b"c")
    }

    /// Halts the target (virtual time stops with it).
    pub fn halt(&mut self) -> anyhow::Result<()> {
        self.gdb.stream.write_all(&[0x03])?;
        let reply = self.gdb.recv()?;
        if !(reply.starts_with(b"T") || reply.starts_with(b"S")) {
            bail!("QEMU answered an interrupt with {:?}", String::from_utf8_lossy(&reply));
        }
        Ok(())
    }

    /// True while the QEMU process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }

    /// The target memory (valid while halted).
    pub fn memory(&mut self) -> &mut dyn Memory {
        &mut self.gdb
    }
}

/// Deploys to `qemu-system-arm -machine <machine>`.
pub struct QemuTarget {
    /// The QEMU machine (`-machine`).
    pub machine: String,
}

impl Target for QemuTarget {
    fn deploy(&mut self, image: Deployable, timeout: Duration) -> Result<Measurement, DeployError> {
        let mut qemu = Qemu::start(&self.machine, image.elf)?;
        super::stream(&mut qemu, image.rtt_address, timeout)
    }
}

impl Link for Qemu {
    fn pause(&mut self) -> anyhow::Result<&mut dyn Memory> {
        self.halt()?;
        Ok(self.memory())
    }

    fn resume(&mut self) -> anyhow::Result<()> {
        Qemu::resume(self)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        if self.alive() {
            return Ok(());
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.0.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        Err(format!(
            "QEMU exited before the end record{}",
            if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) }
        ))
    }
}

/// A minimal GDB remote protocol client.
struct Gdb {
    stream: TcpStream,
}

impl Gdb {
    fn connect(port: u16, child: &mut Child) -> anyhow::Result<Gdb> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                stream.set_read_timeout(Some(Duration::from_secs(20)))?;
                stream.set_nodelay(true)?;
                let mut gdb = Gdb { stream };
                gdb.send(b"?")?;
                gdb.recv()?;
                return Ok(gdb);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                bail!("qemu-system-arm exited ({status}) before its gdbstub came up: {}", err.trim());
            }
            if Instant::now() > deadline {
                bail!("QEMU's gdbstub did not accept connections on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let sum = payload.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let mut packet = Vec::with_capacity(payload.len() + 4);
        packet.push(b'$');
        packet.extend_from_slice(payload);
        packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
        for _ in 0..3 {
            self.stream.write_all(&packet)?;
            let mut ack = [0u8; 1];
            self.stream.read_exact(&mut ack).context("waiting for QEMU's acknowledgement")?;
            match ack[0] {
                b'+' => return Ok(()),
                b'-' => continue,
                other => bail!("unexpected byte {other:#04x} from QEMU's gdbstub instead of an ack"),
            }
        }
        bail!("QEMU's gdbstub rejected a packet three times")
    }

    fn recv(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut byte = [0u8; 1];
        loop {
            self.stream.read_exact(&mut byte).context("reading from QEMU's gdbstub")?;
            if byte[0] == b'$' {
                break;
            }
        }
        let mut payload = Vec::new();
        loop {
            self.stream.read_exact(&mut byte)?;
            if byte[0] == b'#' {
                break;
            }
            payload.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.stream.read_exact(&mut sum)?;
        self.stream.write_all(b"+")?;
        Ok(payload)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Memory for Gdb {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        // Keep packets well under QEMU's packet size limit.
        for (i, chunk) in buf.chunks_mut(1024).enumerate() {
            let at = addr + (i * 1024) as u64;
            self.send(format!("m{at:x},{:x}", chunk.len()).as_bytes())?;
            let reply = self.recv()?;
            if reply.len() != chunk.len() * 2 {
                bail!("reading {:#x}: QEMU answered {:?}", at, String::from_utf8_lossy(&reply));
            }
            for (j, b) in chunk.iter_mut().enumerate() {
                let s = std::str::from_utf8(&reply[j * 2..j * 2 + 2])?;
                *b = u8::from_str_radix(s, 16)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> anyhow::Result<()> {
        self.send(format!("M{addr:x},{:x}:{}", data.len(), hex(data)).as_bytes())?;
        let reply = self.recv()?;
        if reply != b"OK" {
            bail!("writing {:#x}: QEMU answered {:?}", addr, String::from_utf8_lossy(&reply));
        }
        Ok(())
    }
}
