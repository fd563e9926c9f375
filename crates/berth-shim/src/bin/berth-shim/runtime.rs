//! Running the OCI runtime binary (runc's command line) and reading its errors.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_shim::args::ShimArgs;

/// How much of the end of runtime.log is searched for an error.
const LOG_TAIL: u64 = 256 << 10;

/// The runtime binary with the container's global options.
pub struct Runtime {
    bin: PathBuf,
    root: Option<PathBuf>,
    extra: Vec<OsString>,
    log: PathBuf,
    /// The container id.
    pub id: String,
}

impl Runtime {
    /// The runtime for `args`, logging to `log`.
    pub fn new(args: &ShimArgs, log: PathBuf) -> Runtime {
        Runtime {
            bin: args.runtime.clone(),
            root: args.runtime_root.clone(),
            extra: args.runtime_args.clone(),
            log,
            id: args.id.clone(),
        }
    }

    /// `<runtime> [--root R] --log L --log-format json [extra…] <args…>`, stdio all /dev/null
    /// until the caller sets them.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        c.arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        c.args(&self.extra);
        c.args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// The runtime binary (for error messages).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The current length of runtime.log: errors of the next command are looked for after it.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The error of a failed runtime command: the last `"level":"error"` message it logged
    /// after `offset`, else what it wrote on stderr, else its exit status.
    pub fn error_since(&self, what: &str, offset: u64, stderr: &[u8], status: i32) -> String {
        if let Some(m) = last_error(&self.log, offset) {
            return m;
        }
        let text = String::from_utf8_lossy(stderr);
        let text = text.trim();
        if !text.is_empty() {
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            let mut lines: Vec<&str> = tail.into_iter().rev().collect();
            lines.retain(|l| !l.trim().is_empty());
            return lines.join("; ");
        }
        format!(
            "{} {what} {}: {}",
            self.bin.display(),
            self.id,
            describe_status(status)
        )
    }

    /// Runs `delete --force ID` and waits for it (used when a create fails).
    pub fn delete_force(&self) {
        if let Ok(mut child) = self
            .command(&["delete", "--force", self.id.as_str()])
            .spawn()
        {
            let _ = crate::sys::waitpid(child.id() as i32, false);
            let _ = child.try_wait();
        }
    }
}

/// Describes a wait status.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

/// The message of the last `"level":"error"` line in `path` after `offset`.
fn last_error(path: &Path, offset: u64) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = offset.max(len.saturating_sub(LOG_TAIL));
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(LOG_TAIL).read_to_end(&mut buf).ok()?;
    let mut found = None;
    for line in buf.split(|&b| b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
            && v.get("level").and_then(|l| l.as_str()) == Some("error")
            && let Some(m) = v.get("msg").and_then(|m| m.as_str())
        {
            found = Some(m.to_string());
        }
    }
    found
}

/// Reads what a runtime wrote into a memfd (from its start, at most 64 KiB).
pub fn read_memfd(fd: BorrowedFd<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 64 << 10];
    let n = rustix::io::pread(fd.as_fd(), &mut buf, 0).unwrap_or(0);
    buf.truncate(n);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_come_from_the_log_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runtime.log");
        std::fs::write(&log, "{\"level\":\"error\",\"msg\":\"old\"}\n").unwrap();
        let off = std::fs::metadata(&log).unwrap().len();
        let rt = Runtime::new(&ShimArgs::new("c1", "/b", "/s", "/rt"), log.clone());
        assert_eq!(
            rt.error_since("start", off, b"", 256),
            "/rt start c1: exit status 1"
        );
        assert_eq!(
            rt.error_since("start", off, b"berth-runtime: bad\n", 256),
            "berth-runtime: bad"
        );
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"old\"}\n{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"container c1: no such file\"}\n",
        )
        .unwrap();
        assert_eq!(
            rt.error_since("start", off, b"x", 256),
            "container c1: no such file"
        );
    }
}
