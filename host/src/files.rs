//! Writing files that another local user, a symbolic link, a kill or a full disk cannot
//! corrupt: private directories whatever the umask, whole files by temporary name and rename,
//! appends that never follow a link, and errors that name their file.
//!
//! A results folder may be shared (a lab's NFS export, `/tmp`): whoever else can write to it
//! may leave a symbolic link or a hard link where patchbench writes. So nothing in it is
//! opened through a link, a file patchbench rewrites is replaced by `rename` (which replaces
//! a link itself, never its target), and a file it appends to must be a regular file with one
//! name.

use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The prefix of every temporary file patchbench writes into a results folder: a killed
/// process may leave one behind (`.pb-tmp-*`); no reader ever takes it for a result.
pub const TMP_PREFIX: &str = ".pb-tmp-";

/// A new directory only this user can enter (mode 0700, whatever the umask), for sockets and
/// scratch files other users must not reach. Checked after creation: a directory that ended
/// up readable by others is an error, not a warning.
pub fn private_tempdir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .with_context(|| format!("creating a private directory {prefix}* in {}", std::env::temp_dir().display()))?;
    let meta = std::fs::symlink_metadata(dir.path()).with_context(|| format!("checking {}", dir.path().display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.mode() & 0o077 != 0 || meta.uid() != me {
        anyhow::bail!(
            "{} is not private (mode {:o}, owner {}): patchbench needs a directory only it can enter; check TMPDIR",
            dir.path().display(),
            meta.mode() & 0o7777,
            meta.uid()
        );
    }
    Ok(dir)
}

/// The process umask, read without changing it (Linux's `/proc/self/status`; 022 elsewhere).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
        })
        .unwrap_or(0o022)
}

/// Makes `path` hold exactly `bytes`: written to a new temporary file beside it (created
/// exclusively, so no link is followed), synced, then renamed over it. Whoever reads `path`,
/// and whenever the process is killed, sees the old file or the new one, whole. A link at
/// `path` is replaced, its target left alone. The new file gets the umask's usual mode.
pub fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("{} is a directory; patchbench writes a file there: move the directory away", path.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{name}."))
        .tempfile_in(dir)
        .with_context(|| format!("writing {}: creating a temporary file in {}", path.display(), dir.display()))?;
    let written = tmp
        .write_all(bytes)
        .and_then(|_| tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o666 & !umask())))
        .and_then(|_| tmp.as_file().sync_all());
    // On any error the temporary file is removed when `tmp` drops: no partial file is left.
    written.with_context(|| format!("writing {} (left as it was)", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("replacing {} (left as it was)", path.display()))?;
    // The rename itself reaches the disk with the directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why a path in a results folder is refused as a file to append to.
fn refuse(path: &Path, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is {what}; patchbench appends only to a regular file with one name (another user may have put it there): move it away, or choose another --out",
        path.display()
    )
}

/// Opens `path` for reading and appending, creating it when missing: never through a
/// symbolic link, never a FIFO or device (opened without blocking, then checked), never a
/// file with a second name (a hard link to someone's file elsewhere).
pub fn open_append(path: &Path) -> anyhow::Result<File> {
    open_checked(path, OpenOptions::new().read(true).append(true).create(true))
}

/// [`open_append`] for reading and writing at any offset (lock files).
pub fn open_rw(path: &Path) -> anyhow::Result<File> {
    open_checked(path, OpenOptions::new().read(true).write(true).create(true))
}

fn open_checked(path: &Path, opts: &mut OpenOptions) -> anyhow::Result<File> {
    let file = match opts.mode(0o666).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse(path, "a symbolic link")),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let meta = file.metadata().with_context(|| format!("checking {}", path.display()))?;
    if !meta.is_file() {
        return Err(refuse(path, "not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(refuse(path, &format!("a file with {} names (a hard link)", meta.nlink())));
    }
    Ok(file)
}

/// Refuses `path` when it is a symbolic link (a directory or file patchbench would write
/// into); a missing path is fine.
pub fn refuse_link(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(anyhow::anyhow!(
            "{} is a symbolic link; patchbench does not write through links in a results folder: replace it with a directory or file of its own",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Creates `dir` (and its parents) when missing. A folder the user named may be a link (their
/// choice); a folder inside a results folder is checked with [`refuse_link`] first.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `bytes` as a new file at `path`, failing if anything (a link included) is there;
/// removed again if it cannot be written whole.
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    if let Err(e) = f.write_all(bytes).and_then(|_| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("writing {} (removed again)", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_private_whatever_the_umask() {
        // Run in a child process: the umask is process-wide and other tests create files.
        if std::env::var_os("PB_UMASK_CHILD").is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args(["--exact", "files::tests::private_dirs_are_private_whatever_the_umask", "--nocapture"])
                .env("PB_UMASK_CHILD", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
            assert!(String::from_utf8_lossy(&out.stdout).contains("mode 700"), "the child ran the check");
            return;
        }
        // SAFETY: umask has no preconditions; this child process runs this test alone.
        unsafe { libc::umask(0) };
        let dir = private_tempdir("pb-test-").unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        println!("mode {mode:o}");
    }

    #[test]
    fn whole_writes_replace_links_not_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("summary.md");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_whole(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }

    #[test]
    fn appends_refuse_links_hard_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("runs.csv");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_append(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let hard = dir.path().join("ops.csv");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = open_append(&hard).unwrap_err().to_string();
        assert!(e.contains("hard link"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_append(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let e = write_new(&link, b"x").unwrap_err().to_string();
        assert!(e.contains("creating"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
