//! Harness for berthd's end-to-end tests: a private berthd (own data root, exec root and
//! socket) driven by the real docker CLI and by raw HTTP, and a busybox image imported from
//! Debian's busybox-static.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/local/bin/docker";
const BUSYBOX: &str = "/bin/busybox";

static SETUP: Once = Once::new();
static BUILD: Once = Once::new();
/// Pids of commands a test waits for: the reaper leaves them alone.
static WAITING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Subreaper + reaper thread, so daemonized shims that end are reaped (PID 1 here does not).
pub fn setup() {
    SETUP.call_once(|| {
        assert!(
            rustix::process::geteuid().is_root(),
            "the end-to-end tests need root"
        );
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install -y busybox-static"
        );
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        std::thread::spawn(|| {
            loop {
                reap();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    });
}

fn children() -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

fn reap() {
    let g = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    for pid in children() {
        if g.as_ref().is_some_and(|w| w.contains(&pid)) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Only zombies that are not a test's own commands.
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        {
            // SAFETY: non-blocking waitpid on our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

/// Output of a command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

/// Runs a command to completion, shielded from the reaper.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
    setup();
    let mut g = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    g.get_or_insert_with(HashSet::new).insert(child.id() as i32);
    drop(g);
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    WAITING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .remove(&pid);
    Out {
        code: out.status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
        }),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The directory holding berthd, berth-runtime and berth-shim, building the two helpers if
/// this test run did not.
pub fn bin_dir() -> PathBuf {
    let berthd = PathBuf::from(env!("CARGO_BIN_EXE_berthd"));
    let dir = berthd.parent().unwrap().to_path_buf();
    BUILD.call_once(|| {
        if ["berth-runtime", "berth-shim", "berth"]
            .iter()
            .any(|b| !dir.join(b).exists())
        {
            let target = dir.parent().unwrap();
            let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            c.args([
                "build",
                "--workspace",
                "--bin",
                "berth-runtime",
                "--bin",
                "berth-shim",
                "--bin",
                "berth",
            ])
            .env("CARGO_TARGET_DIR", target);
            if dir.file_name().is_some_and(|n| n == "release") {
                c.arg("--release");
            }
            run(&mut c, None).ok();
        }
    });
    dir
}

/// A private berthd.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    /// This daemon's own bridge and nftables table (never shared with another test's).
    pub bridge: String,
    pub table: String,
    child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        setup();
        let dir = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = dir.path().join("d.sock");
        let tag: String = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .skip(2)
            .collect::<String>()
            .to_lowercase();
        let bridge = format!("bt{}", &tag[..tag.len().min(10)]);
        let table = format!("berth-test-{tag}");
        let mut d = Daemon {
            dir,
            sock,
            bridge,
            table,
            child: None,
        };
        d.spawn();
        d
    }

    /// This daemon's own parent cgroup, removed when the daemon is dropped.
    /// A /24 no other test daemon uses, derived from this daemon's (unique) table name, for
    /// user networks: (`10.b.c.0/24`, `10.b.c`), `n` picking one of several.
    pub fn own_subnet(&self, n: u8) -> (String, String) {
        let h: u32 = self.table.bytes().fold(2166136261u32, |a, b| {
            (a ^ u32::from(b)).wrapping_mul(16777619)
        });
        let b = 100 + (h % 100) as u8;
        let c = ((h >> 8) % 200) as u8 + n;
        (format!("10.{b}.{c}.0/24"), format!("10.{b}.{c}"))
    }

    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.table)
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("exec")
    }

    /// (Re)starts the berthd process on the same roots.
    pub fn spawn(&mut self) {
        let bins = bin_dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(bins.join("berthd"))
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--pidfile")
            .arg(self.dir.path().join("berthd.pid"))
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--nft-table")
            .arg(&self.table)
            .arg("--cgroup-parent")
            .arg(self.cgroup_parent())
            .env("BERTH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        WAITING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(child.id() as i32);
        self.child = Some(child);
        let t = Instant::now();
        while self.get("/_ping").0 != 200 {
            if t.elapsed() > Duration::from_secs(60) {
                panic!("berthd did not answer within 60 s; log:\n{}", self.log());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("berthd exited ({st}); log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Kills berthd with `sig` and waits for it.
    pub fn kill(&mut self, sig: i32) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
            WAITING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashSet::new)
                .remove(&(c.id() as i32));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// The docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Out {
        run(
            Command::new(DOCKER)
                .args(args)
                .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
                .env("DOCKER_CONFIG", self.dir.path().join("dockercfg")),
            None,
        )
    }

    /// berth's own CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Out {
        run(
            Command::new(bin_dir().join("berth"))
                .args(args)
                .env("BERTH_HOST", format!("unix://{}", self.sock.display())),
            None,
        )
    }

    pub fn docker_in(&self, args: &[&str], stdin: &[u8]) -> Out {
        run(
            Command::new(DOCKER)
                .args(args)
                .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
                .env("DOCKER_CONFIG", self.dir.path().join("dockercfg")),
            Some(stdin),
        )
    }

    /// One HTTP/1.0-style request; returns (status, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let Ok(mut s) = UnixStream::connect(&self.sock) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (
            status,
            dechunk(
                &body,
                text.contains("Transfer-Encoding: chunked")
                    || text.contains("transfer-encoding: chunked"),
            ),
        )
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None)
    }

    /// Imports the busybox image (`busybox:latest`) from Debian's busybox-static.
    pub fn busybox(&self) {
        let tar = busybox_tar();
        let out = self.docker(&["import", tar.to_str().unwrap(), "busybox:latest"]);
        assert_eq!(out.code, 0, "import: {out:?}\n{}", self.log());
    }
}

fn dechunk(body: &str, chunked: bool) -> String {
    if !chunked {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut a = vec!["rm", "-f"];
                a.extend(ids);
                let _ = self.docker(&a);
            }
            self.kill(libc::SIGTERM);
        }
        // Shims of containers a test left behind.
        if let Ok(rd) = std::fs::read_dir(self.exec_root().join("containers")) {
            for e in rd.flatten() {
                if let Ok(p) = std::fs::read_to_string(e.path().join("shim").join("shim.pid"))
                    && let Ok(pid) = p.trim().parse::<i32>()
                {
                    // SAFETY: kill by pid read from our own state dir.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        // Our bridge and nftables table (veths went with their containers).
        let _ = run(Command::new("ip").args(["link", "del", &self.bridge]), None);
        let _ = run(
            Command::new("nft").args(["delete", "table", "ip", &self.table]),
            None,
        );
        // Our bridge and nftables table (veths went with their containers).
        let _ = run(Command::new("ip").args(["link", "del", &self.bridge]), None);
        let _ = run(
            Command::new("nft").args(["delete", "table", "ip", &self.table]),
            None,
        );
        // Bridges of user networks a test left behind (their state dirs name them).
        if let Ok(rd) = std::fs::read_dir(self.data_root().join("network")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != self.bridge {
                    let _ = run(Command::new("ip").args(["link", "del", &name]), None);
                }
            }
        }
        // Our parent cgroup in every hierarchy (its containers' cgroups went with them).
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let _ = std::fs::remove_dir(h.path().join(&self.table));
            }
        }
        // Mounts under our directory, deepest first.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .filter(|m| m.starts_with(&root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A tarball of a busybox root filesystem (built once per test binary).
pub fn busybox_tar() -> PathBuf {
    static TAR: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut g = TAR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = g.as_ref() {
        return p.clone();
    }
    // One tar per busybox binary, shared by every test process: built under a private name,
    // then renamed into place (so no process sees a half-written one), never per process.
    let meta = std::fs::metadata(BUSYBOX).unwrap();
    let cache = std::env::temp_dir().join("berthd-test-busybox");
    std::fs::create_dir_all(&cache).unwrap();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let tar = cache.join(format!("busybox-{}-{mtime}.tar", meta.len()));
    if tar.exists() {
        *g = Some(tar.clone());
        return tar;
    }
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&cache)
        .unwrap();
    let dir = work.path();
    let root = dir.join("rootfs");
    for d in [
        "bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "home",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = run(Command::new(BUSYBOX).arg("--list"), None).ok().stdout;
    for applet in list.split_whitespace() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let part = dir.join("busybox.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&part)
            .arg("."),
        None,
    )
    .ok();
    std::fs::rename(&part, &tar).unwrap();
    *g = Some(tar.clone());
    tar
}

/// Polls `f` until it returns `Some` (60 s at most).
#[track_caller]
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
