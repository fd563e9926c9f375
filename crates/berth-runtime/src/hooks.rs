//! OCI lifecycle hooks: run each hook with the container state on its stdin.
//!
//! Which hooks run where and when follows the runtime spec: `prestart`/`createRuntime` in the
//! runtime's namespaces during `create`; `createContainer` from inside the container's
//! namespaces before pivot_root; `startContainer` inside the container just before the user's
//! program; `poststart` after it started; `poststop` when the container is deleted.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs `hooks` in order; the first failure stops the run and is returned, naming the hook
/// by `field` (e.g. `hooks.createRuntime`) and index.
pub fn run(field: &str, hooks: &[Hook], state_json: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json)
            .map_err(|e| Error::msg(format!("{field}[{i}] ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

/// Runs `hooks`, logging failures instead of returning them (for poststart and poststop,
/// whose failures the spec says must not stop the lifecycle).
pub fn run_warn(field: &str, hooks: &[Hook], state_json: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state_json) {
            tracing::warn!("{field}[{i}] ({}): {e}", h.path().display());
        }
    }
}

fn run_one(h: &Hook, state_json: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or(&[]);
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| e.to_string())?,
        Some(t) => wait_timeout(&mut child, t)?,
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut stderr);
    }
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    })
}

fn wait_timeout(
    child: &mut std::process::Child,
    t: Duration,
) -> std::result::Result<std::process::ExitStatus, String> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(child.id() as i32).ok_or("bad pid")?,
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + t;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", t.as_secs()));
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let pfd = pidfd.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &pfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return child.wait().map_err(|e| e.to_string()),
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str, args: &[&str], timeout: Option<i64>) -> Hook {
        let mut h = Hook::default();
        h.set_path(path.into());
        h.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        h.set_env(Some(vec!["FOO=bar".into()]));
        h.set_timeout(timeout);
        h
    }

    #[test]
    fn hook_gets_state_on_stdin_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {}; echo \"$FOO\" >> {}",
            out.display(),
            out.display()
        );
        let h = hook("/bin/sh", &["sh", "-c", &script], None);
        run("hooks.poststart", &[h], "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"id\":\"x\"}bar\n");
    }

    #[test]
    fn failing_and_slow_hooks_are_named() {
        let h = hook("/bin/sh", &["sh", "-c", "echo nope >&2; exit 3"], None);
        let e = run("hooks.createRuntime", &[h], "{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "hooks.createRuntime[0] (/bin/sh): exited with status 3: nope"
        );
        let h = hook("/bin/sleep", &["sleep", "10"], Some(1));
        let t = Instant::now();
        let e = run("hooks.prestart", &[h], "{}").unwrap_err().to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
