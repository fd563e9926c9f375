//! Test fixtures: busybox bundles run by the real berth-runtime binary through the real
//! berth-shim binary, with unique ids and cgroups, cleaned up even when a test fails.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_shim::args::{LogConfig, ShimArgs};
use berth_shim::client::{self, Shim};
use berth_shim::stdcopy;

/// The prefix of every test container's cgroup (`/berth-shim-test-<id>`, one level, so the
/// runtime's delete leaves no parent directory behind).
pub const CGROUP_PARENT: &str = "berth-shim-test";

/// The shim binary under test: `$BERTH_SHIM` (e.g. a release build, to measure memory), or
/// this crate's.
pub fn shim_bin() -> PathBuf {
    std::env::var_os("BERTH_SHIM").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_berth-shim")),
        PathBuf::from,
    )
}

/// `VmRSS`, `RssAnon` and `RssFile` of a process, in KiB, from /proc/<pid>/status.
pub fn rss_kib(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

/// The berth-runtime binary: `$BERTH_RUNTIME`, or the one next to this test's profile
/// directory, built with cargo (once, under a lock) if it is missing.
pub fn runtime_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
            return PathBuf::from(p);
        }
        // <target>/<profile>/deps/<test exe>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile directory");
        let bin = profile_dir.join("berth-runtime");
        let target = profile_dir.parent().expect("target directory");
        let lock =
            std::fs::File::create(target.join(".berth-shim-test-build.lock")).expect("lock file");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(p) => p.to_string(),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // Always ask cargo: it rebuilds a stale binary and is quick when nothing changed.
        let st = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "berth-runtime",
                "--bin",
                "berth-runtime",
                "--profile",
                &profile,
            ])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build -p berth-runtime");
        assert!(st.success(), "cargo build -p berth-runtime failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Makes this process the subreaper of what it spawns: shims reparent to it when their first
/// process exits (PID 1 here does not reap orphans), and the tests reap them.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reaps `pid` if it is our child and has exited, waiting up to `t`.
pub fn reap(pid: i32, t: Duration) -> bool {
    let end = Instant::now() + t;
    loop {
        let mut st = 0;
        // SAFETY: waitpid for one specific pid with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid || r < 0 {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process exists (zombies included).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One container: its bundle, runtime root, shim state directory and log.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub bundle: PathBuf,
    pub rt_root: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    pub args: ShimArgs,
    pub init_pid: i32,
}

/// Writes a busybox bundle in `dir` whose process is `args`.
pub fn busybox_bundle(dir: &Path, id: &str, args: &[&str], tty: bool) {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "dev", "proc", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("copying /bin/busybox (install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    let st = Command::new(runtime_bin())
        .arg("spec")
        .arg("--bundle")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "berth-runtime spec");
    let path = dir.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["process"]["args"] = serde_json::json!(args);
    c["process"]["terminal"] = serde_json::json!(tty);
    c["linux"]["cgroupsPath"] = serde_json::json!(format!("/{CGROUP_PARENT}-{id}"));
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

impl Fixture {
    /// A container running `args` (not spawned yet), with a log.
    pub fn new(name: &str, args: &[&str]) -> Fixture {
        Fixture::with(name, args, false, false)
    }

    /// Same, with a tty and/or an open stdin.
    pub fn with(name: &str, args: &[&str], tty: bool, stdin: bool) -> Fixture {
        become_subreaper();
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-test-")
            .tempdir()
            .unwrap();
        let id = format!(
            "shimtest-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let bundle = dir.path().join("bundle");
        busybox_bundle(&bundle, &id, args, tty);
        let rt_root = dir.path().join("rt");
        let state = dir.path().join("state");
        let log = dir.path().join("logs").join("c.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let mut a = ShimArgs::new(&id, &bundle, &state, runtime_bin());
        a.runtime_root = Some(rt_root.clone());
        a.tty = tty;
        a.stdin = stdin;
        a.log = Some(LogConfig::new(&log));
        Fixture {
            dir,
            id,
            bundle,
            rt_root,
            state,
            log,
            args: a,
            init_pid: 0,
        }
    }

    /// Spawns the shim (the container is created, not started).
    pub fn spawn(&mut self) -> Shim {
        self.init_pid = client::spawn(&shim_bin(), &self.args).expect("spawning the shim");
        Shim::connect(&self.state).expect("connecting to the shim")
    }

    /// The shim's pid, from its pid file.
    pub fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state.join("shim.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The log's entries.
    pub fn log_entries(&self) -> Vec<serde_json::Value> {
        read_entries(&self.log)
    }

    /// Polls `f` until it holds, for up to 10 s.
    pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deletes through the shim and reaps it.
    pub fn delete(&mut self, shim: &Shim) {
        let pid = self.shim_pid();
        shim.delete().expect("delete");
        if let Some(pid) = pid {
            assert!(
                reap(pid, Duration::from_secs(10)),
                "shim {pid} did not exit after delete"
            );
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid()
            && alive(pid)
        {
            // The shim's children (the container's init, execs) come to us once it is killed.
            let children = children_of(pid);
            // SAFETY: killing the shim this fixture started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid, Duration::from_secs(5));
            let _ = Command::new(runtime_bin())
                .arg("--root")
                .arg(&self.rt_root)
                .args(["delete", "--force", &self.id])
                .output();
            for c in children {
                // SAFETY: killing a process the shim started.
                unsafe { libc::kill(c, libc::SIGKILL) };
                reap(c, Duration::from_secs(2));
            }
        } else {
            let _ = Command::new(runtime_bin())
                .arg("--root")
                .arg(&self.rt_root)
                .args(["delete", "--force", &self.id])
                .output();
            if self.init_pid > 0 {
                // Its shim is gone, so the killed init came to us.
                reap(self.init_pid, Duration::from_secs(5));
            }
        }
    }
}

/// The processes whose command line mentions `s` (e.g. a container id).
pub fn procs_mentioning(s: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(s) {
            v.push(pid);
        }
    }
    v
}

/// The children of `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The proportional set size of a process (shared pages divided among their users), in KiB.
pub fn pss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (up to 60 s) for the container to exit.
pub fn wait_exit(shim: &Shim) -> berth_shim::protocol::Exit {
    shim.wait_timeout(Duration::from_secs(60))
        .expect("wait")
        .expect("the container did not exit within 60s")
}

/// Parses a json-file log.
pub fn read_entries(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
        .collect()
}

/// The concatenated `log` of entries of `stream`.
pub fn log_text(entries: &[serde_json::Value], stream: &str) -> String {
    entries
        .iter()
        .filter(|e| e["stream"] == stream)
        .map(|e| e["log"].as_str().unwrap_or(""))
        .collect()
}

/// Reads stdcopy frames until EOF (or the read timeout), returning (stdout, stderr).
pub fn read_frames(s: &mut UnixStream) -> (String, String) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((stream, data)) = stdcopy::read_frame(s).expect("reading a frame") {
        match stream {
            stdcopy::STDOUT => out.extend(data),
            stdcopy::STDERR => err.extend(data),
            x => panic!("unexpected stream byte {x}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Reads raw bytes until `needle` appears (or panics after 20 s); returns what was read.
pub fn read_until(s: &mut UnixStream, needle: &str) -> String {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        assert!(
            Instant::now() < end,
            "timed out waiting for {needle:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut b) {
            Ok(0) => panic!(
                "EOF before {needle:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Writes all of `data`.
pub fn send(s: &mut UnixStream, data: &str) {
    s.write_all(data.as_bytes()).unwrap();
}

/// Checks a json-file time: RFC 3339, UTC, Go's RFC3339Nano shape.
pub fn check_time(t: &str) {
    let b = t.as_bytes();
    assert!(t.len() >= 20 && t.ends_with('Z'), "time {t:?}");
    assert!(
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':',
        "time {t:?}"
    );
    let digits = |r: std::ops::Range<usize>| t[r].bytes().all(|c| c.is_ascii_digit());
    assert!(
        digits(0..4)
            && digits(5..7)
            && digits(8..10)
            && digits(11..13)
            && digits(14..16)
            && digits(17..19),
        "time {t:?}"
    );
    let frac = &t[19..t.len() - 1];
    if !frac.is_empty() {
        assert!(
            frac.starts_with('.')
                && frac.len() <= 10
                && frac[1..].bytes().all(|c| c.is_ascii_digit()),
            "time {t:?}"
        );
        assert!(!frac.ends_with('0'), "trailing zeros are trimmed: {t:?}");
    }
}

/// The cgroup directories a container id could have on this host.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            v.push(e.path().join(format!("{CGROUP_PARENT}-{id}")));
        }
    }
    v.push(PathBuf::from("/sys/fs/cgroup").join(format!("{CGROUP_PARENT}-{id}")));
    v
}
