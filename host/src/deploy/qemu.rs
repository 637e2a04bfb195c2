//! Deploying to QEMU: spawn `qemu-system-arm` halted, with its gdbstub on a Unix socket in
//! a directory only this user can enter (a TCP gdbstub would let any local user send QEMU
//! `monitor` commands), then drive it over the GDB remote protocol (interrupt, `m`/`M`,
//! continue) to read RTT. QEMU is killed on every exit path, and by the kernel when
//! patchbench itself dies (`PR_SET_PDEATHSIG`), SIGKILL included. Every exchange with the
//! gdbstub has a deadline: a silent or garbled peer is an error, never a hang.

use super::{DeployError, Deployable, Link, Target};
use crate::child::{die_with_parent, KillOnDrop};
use crate::collect::Measurement;
use crate::rtt::Memory;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running QEMU, halted at reset until the first [`Qemu::resume`].
pub struct Qemu {
    child: KillOnDrop,
    gdb: Gdb,
    _dir: tempfile::TempDir,
}

/// Longest wait for one packet (or acknowledgement) from the gdbstub.
const PACKET_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait, after the gdbstub failed, for QEMU's exit status.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Largest packet accepted: RTT polls read a few hundred bytes.
const MAX_PACKET: usize = 1 << 20;

impl Qemu {
    /// Starts `machine` with `elf`: `-icount shift=0` (one instruction = 1 ns of virtual time,
    /// deterministic), halted (`-S`), gdbstub on a private Unix socket.
    pub fn start(machine: &str, elf: &Path) -> anyhow::Result<Qemu> {
        // Mode 0700 whatever the umask: no other user reaches the socket (whoever connects
        // to a gdbstub can send QEMU monitor commands as this user).
        let dir = crate::files::private_tempdir("patchbench-qemu-")
            .context("creating a private directory for QEMU's gdbstub")?;
        let socket = dir.path().join("gdb.sock");
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-machine", machine, "-icount", "shift=0", "-nographic", "-monitor", "none", "-serial", "null"])
            .arg("-chardev")
            .arg(format!("socket,id=gdb0,path={},server=on,wait=off", socket.display()))
            .args(["-gdb", "chardev:gdb0", "-S", "-kernel"])
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().context(
            "starting qemu-system-arm (install it with `apt-get install qemu-system-arm`, or run scripts/setup.sh)",
        )?;
        let mut child = KillOnDrop(child);
        let gdb = Gdb::connect(&socket, &mut child.0)?;
        Ok(Qemu { child, gdb, _dir: dir })
    }

    /// Lets the target run.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        self.gdb.send(b"c")
    }

    /// Halts the target (virtual time stops with it).
    pub fn halt(&mut self) -> anyhow::Result<()> {
        self.gdb.stream.write_all(&[0x03]).context("interrupting QEMU through its gdbstub")?;
        let reply = self.gdb.recv()?;
        if !(reply.starts_with(b"T") || reply.starts_with(b"S")) {
            bail!("QEMU answered an interrupt with {:?}", String::from_utf8_lossy(&reply));
        }
        Ok(())
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
        exit_reason(&mut self.child.0, Duration::ZERO, "before the end record").map_or(Ok(()), Err)
    }

    fn explain(&mut self, e: anyhow::Error) -> anyhow::Error {
        died_or(&mut self.child.0, e, "before the end record")
    }
}

/// Why QEMU is gone (`QEMU exited (<status>) <when>: <its stderr>`), once it exits within
/// `grace`; `None` while it runs.
fn exit_reason(child: &mut Child, grace: Duration, when: &str) -> Option<String> {
    let since = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.to_string(),
            Err(e) => break format!("status unknown: {e}"),
            Ok(None) if since.elapsed() >= grace => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Some(format!(
        "QEMU exited ({status}) {when}{}",
        if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
    ))
}

/// `e`, a failed exchange with the gdbstub, or QEMU's death when that caused it. QEMU closes
/// the socket before its process ends: on a loaded machine the exit status lags the broken
/// pipe by a second or more, hence the grace.
fn died_or(child: &mut Child, e: anyhow::Error, when: &str) -> anyhow::Error {
    exit_reason(child, EXIT_GRACE, when).map_or(e, |died| anyhow::anyhow!(died))
}

/// A minimal GDB remote protocol client.
struct Gdb {
    stream: UnixStream,
    /// Longest wait for one packet or acknowledgement.
    patience: Duration,
}

impl Gdb {
    fn connect(socket: &Path, child: &mut Child) -> anyhow::Result<Gdb> {
        let deadline = Instant::now() + PACKET_DEADLINE;
        loop {
            if let Ok(stream) = UnixStream::connect(socket) {
                // Reads wake up regularly, so every wait can check its deadline.
                stream.set_read_timeout(Some(Duration::from_millis(200)))?;
                stream.set_write_timeout(Some(PACKET_DEADLINE))?;
                let mut gdb = Gdb { stream, patience: PACKET_DEADLINE };
                return match gdb.send(b"?").and_then(|()| gdb.recv()) {
                    Ok(_) => Ok(gdb),
                    Err(e) => Err(died_or(child, e, "during the gdbstub handshake")),
                };
            }
            if let Some(died) = exit_reason(child, Duration::ZERO, "before its gdbstub came up") {
                bail!(died);
            }
            if Instant::now() > deadline {
                bail!("QEMU's gdbstub did not come up on {} within {} s", socket.display(), PACKET_DEADLINE.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One byte, or an error once `deadline` passes.
    fn byte(&mut self, deadline: Instant, waiting_for: &str) -> anyhow::Result<u8> {
        let mut b = [0u8; 1];
        loop {
            match self.stream.read(&mut b) {
                Ok(1) => return Ok(b[0]),
                Ok(_) => bail!("QEMU's gdbstub closed the connection while we waited for {waiting_for}"),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).with_context(|| format!("reading {waiting_for} from QEMU's gdbstub")),
            }
            if Instant::now() > deadline {
                bail!("QEMU's gdbstub sent no {waiting_for} within {:.1} s", self.patience.as_secs_f64());
            }
        }
    }

    fn send(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let sum = payload.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        let mut packet = Vec::with_capacity(payload.len() + 4);
        packet.push(b'$');
        packet.extend_from_slice(payload);
        packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
        let deadline = Instant::now() + self.patience;
        for _ in 0..3 {
            self.stream.write_all(&packet).context("writing to QEMU's gdbstub")?;
            match self.byte(deadline, "acknowledgement")? {
                b'+' => return Ok(()),
                b'-' => continue,
                other => bail!("unexpected byte {other:#04x} from QEMU's gdbstub instead of an acknowledgement"),
            }
        }
        bail!("QEMU's gdbstub rejected a packet three times")
    }

    fn recv(&mut self) -> anyhow::Result<Vec<u8>> {
        let deadline = Instant::now() + self.patience;
        let mut skipped = 0usize;
        while self.byte(deadline, "packet")? != b'$' {
            skipped += 1;
            if skipped > MAX_PACKET {
                bail!("QEMU's gdbstub sent {skipped} bytes without a packet start: not a GDB stub?");
            }
        }
        let mut payload = Vec::new();
        loop {
            let b = self.byte(deadline, "packet end")?;
            if b == b'#' {
                break;
            }
            if payload.len() >= MAX_PACKET {
                bail!("QEMU's gdbstub sent a packet of more than {MAX_PACKET} B without its end");
            }
            payload.push(b);
        }
        let sum = [self.byte(deadline, "checksum")?, self.byte(deadline, "checksum")?];
        let want = payload.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        if std::str::from_utf8(&sum).ok().and_then(|t| u8::from_str_radix(t, 16).ok()) != Some(want) {
            self.stream.write_all(b"-").context("writing to QEMU's gdbstub")?;
            bail!("a packet from QEMU's gdbstub failed its checksum");
        }
        self.stream.write_all(b"+").context("writing to QEMU's gdbstub")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A client of a fake gdbstub that `serve` plays.
    fn against(serve: impl FnOnce(UnixStream) + Send + 'static) -> (Gdb, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || serve(listener.accept().unwrap().0));
        let stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        (Gdb { stream, patience: Duration::from_millis(400) }, dir)
    }

    #[test]
    fn a_silent_slow_or_garbling_gdbstub_is_an_error_within_the_deadline() {
        let start = Instant::now();
        // Accepts and says nothing.
        let (mut g, _d) = against(|s| {
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        let e = g.recv().unwrap_err().to_string();
        assert!(e.contains("sent no packet"), "{e}");
        // Streams bytes without ever starting a packet.
        let (mut g, _d) = against(|mut s| {
            let junk = [b'x'; 4096];
            while s.write_all(&junk).is_ok() {}
        });
        let e = g.recv().unwrap_err().to_string();
        assert!(e.contains("without a packet start") || e.contains("sent no"), "{e}");
        // Starts a packet and never ends it.
        let (mut g, _d) = against(|mut s| {
            let _ = s.write_all(b"$");
            let junk = [b'a'; 4096];
            while s.write_all(&junk).is_ok() {}
        });
        let e = g.recv().unwrap_err().to_string();
        assert!(e.contains("without its end") || e.contains("sent no packet end"), "{e}");
        // Never acknowledges.
        let (mut g, _d) = against(|s| {
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        assert!(g.send(b"?").unwrap_err().to_string().contains("acknowledgement"));
        // A wrong checksum is refused, not taken.
        let (mut g, _d) = against(|mut s| {
            let _ = s.write_all(b"$OK#00");
            std::thread::sleep(Duration::from_secs(1));
        });
        assert!(g.recv().unwrap_err().to_string().contains("checksum"));
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }

    #[test]
    fn a_well_formed_exchange_works() {
        let (mut g, _d) = against(|mut s| {
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"$?#3f");
            s.write_all(b"+$S05#b8").unwrap();
            let _ = s.read(&mut buf);
        });
        g.send(b"?").unwrap();
        assert_eq!(g.recv().unwrap(), b"S05");
    }
}
