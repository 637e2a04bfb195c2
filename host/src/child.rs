//! Child processes (emulators, firmware builds) never outlive patchbench: killed when their
//! handle drops, and by the kernel when patchbench dies, SIGKILL included.

use std::process::{Child, Command};

/// Kills and reaps the child when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks the kernel to SIGKILL the child when the thread that started it dies, whatever ends
/// it (Linux; elsewhere [`KillOnDrop`] covers every exit but SIGKILL).
pub fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork
        // and exec here.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then nobody would kill us.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("patchbench exited while starting a child process"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// How long a tool may take to answer `--version` and similar questions
/// (`$PATCHBENCH_TOOL_TIMEOUT_S`, default 30 s): a tool that hangs is an error, not a hang.
pub fn tool_timeout() -> std::time::Duration {
    let secs = std::env::var("PATCHBENCH_TOOL_TIMEOUT_S").ok().and_then(|v| v.parse().ok()).filter(|&s| s > 0);
    std::time::Duration::from_secs(secs.unwrap_or(30))
}

/// Why a bounded call of an external tool failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The tool could not be started (not installed, not executable).
    #[error("{what}: could not start it: {source}")]
    Start {
        /// The call, for the message.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The tool did not finish in time; it was killed.
    #[error("{what} did not finish within {} s and was killed", limit.as_secs())]
    Timeout {
        /// The call.
        what: String,
        /// The limit.
        limit: std::time::Duration,
    },
}

/// Runs `cmd` to completion with its output captured, stdin closed, killed at `limit` and
/// when patchbench dies ([`die_with_parent`]); `what` names the call in errors.
pub fn output_within(
    cmd: &mut Command,
    limit: std::time::Duration,
    what: &str,
) -> Result<std::process::Output, CallError> {
    use std::io::Read;
    use std::process::Stdio;
    die_with_parent(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CallError::Start { what: what.to_string(), source })?;
    let mut child = KillOnDrop(child);
    // Both pipes drained while the tool runs, so a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.0.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.0.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = std::time::Instant::now();
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                // Dropping the handle kills and reaps it; the drains end when the pipes close
                // (a grandchild still holding them keeps its thread, not us).
                return Err(CallError::Timeout { what: what.to_string(), limit });
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(source) => return Err(CallError::Start { what: what.to_string(), source }),
        }
    };
    Ok(std::process::Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_tool_is_killed_at_its_limit() {
        let t = std::time::Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo $$; exec sleep 600"]);
        let e = output_within(&mut cmd, std::time::Duration::from_millis(300), "sleep").unwrap_err();
        assert!(matches!(e, CallError::Timeout { .. }) && e.to_string().contains("killed"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        let ok = output_within(Command::new("sh").args(["-c", "echo hi; echo err >&2"]), tool_timeout(), "sh").unwrap();
        assert_eq!((ok.stdout.as_slice(), ok.stderr.as_slice()), (&b"hi\n"[..], &b"err\n"[..]));
        let e = output_within(&mut Command::new("/nonexistent/tool"), tool_timeout(), "the tool").unwrap_err();
        assert!(e.to_string().contains("could not start"), "{e}");
    }
}
