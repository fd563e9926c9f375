//! A private dockerd shared by every test process of this crate, and helpers to drive
//! `berth` and docker's CLI against it.
//!
//! nextest runs each test in its own process, so "one daemon per test binary" is done with
//! a lease instead of an in-process guard: each test process holds a shared flock on
//! `BASE/lease` for its whole life (the kernel drops it however the process ends). The first
//! process to find no daemon starts `dockerd-watchdog.sh` detached; the watchdog runs
//! dockerd, and once no process has held the lease for a few seconds it removes every
//! container, stops dockerd by PID, kills leftovers of its tree by PID, unmounts and deletes
//! its state. Nothing survives the last test.
#![allow(dead_code, clippy::unwrap_used)]

mod lease;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const IMAGE: &str = "busybox:latest";
pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct Daemon {
    pub host: String,
    pub base: PathBuf,
    _lease: File,
}

/// The shared daemon (started on first use).
pub fn daemon() -> &'static Daemon {
    static D: OnceLock<Daemon> = OnceLock::new();
    D.get_or_init(|| {
        let l = lease::acquire();
        let d = Daemon {
            host: l.host,
            base: l.base,
            _lease: l.lease,
        };
        if !docker(&d, &["image", "inspect", IMAGE]).status.success() {
            import_busybox(&d);
        }
        drop(l.start);
        d
    })
}

/// A busybox image: /bin/busybox (busybox-static) and its applet links, imported.
fn import_busybox(d: &Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    for sub in ["bin", "tmp", "etc", "root"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if a != "busybox" && !a.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let tar = dir.path().join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = docker(
        d,
        &["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), IMAGE],
    );
    assert!(out.status.success(), "import: {}", text(&out.stderr));
}

fn cmd(d: &Daemon, prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120")
        .arg(prog)
        .args(args)
        .env_remove("BERTH_HOST")
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_CONFIG", d.base.join("cfg"))
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null());
    c
}

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

/// Runs `berth args` against the daemon.
pub fn berth(d: &Daemon, args: &[&str]) -> Output {
    cmd(d, berth_bin(), args).output().unwrap()
}

/// Runs docker's CLI against the daemon.
pub fn docker(d: &Daemon, args: &[&str]) -> Output {
    cmd(d, DOCKER, args).output().unwrap()
}

/// Runs a command line on a pty through `pty_drive.py` (steps: `expect:…`, `send:…`).
pub fn pty(d: &Daemon, steps: &[&str], argv: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pty_drive.py");
    let mut c = Command::new("python3");
    c.arg(script)
        .arg("60")
        .args(steps)
        .arg("--")
        .args(argv)
        .env_remove("BERTH_HOST")
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_CONFIG", d.base.join("cfg"))
        .stdin(Stdio::null());
    c.output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn out(o: &Output) -> String {
    text(&o.stdout)
}

/// A name unique to this test process.
pub fn name(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

/// Removes containers by name when dropped (even when the test panics).
pub struct Cleanup<'a> {
    pub d: &'a Daemon,
    pub names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(self.names.iter().map(String::as_str));
            let _ = docker(self.d, &a);
        }
    }
}

/// Polls `f` until it holds (generous timeout for loaded machines).
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Docker's CLI output with `docker` swapped for `berth` where it names itself.
pub fn as_berth(s: &str) -> String {
    s.replace("docker: ", "berth: ")
        .replace("'docker run --help'", "'berth run --help'")
}
