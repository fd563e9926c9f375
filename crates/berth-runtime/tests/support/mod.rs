//! Shared harness of the integration tests: busybox bundles, a runtime with its own `--root`
//! per test, a guard that deletes what a test made even when it panics, and the reaping of
//! the container processes the test process inherits.
//!
//! The test process is a child subreaper: the init of a container made by `create` (or
//! `run -d`) and processes started by `exec -d` are reparented to it when the runtime exits,
//! and PID 1 on the test machines does not reap orphans. A reaper thread collects every such
//! child; the runtime commands the tests spawn are registered while they run so that it never
//! steals their exit status (which keeps the suite correct under plain `cargo test`, where
//! all tests share one process, as well as under `cargo nextest`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The runtime under test.
pub const RUNTIME: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// How long any one runtime command may take before the test gives up on it. Generous: the
/// machines are noisy, and this only has to catch hangs.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// How long to wait for something a container does asynchronously.
pub const WAIT: Duration = Duration::from_secs(60);

/// Where the busybox binary comes from (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// Pids of the commands the tests are waiting for; the reaper leaves them alone.
static COMMANDS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
static SETUP: Once = Once::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Makes the test process a subreaper and starts the reaper thread (once per process).
pub fn setup() {
    SETUP.call_once(|| {
        assert!(
            rustix::process::geteuid().is_root(),
            "the integration tests create namespaces, mounts and cgroups: run them as root"
        );
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install -y busybox-static"
        );
        // SAFETY: prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            r,
            0,
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        );
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(|| {
                loop {
                    reap_orphans();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .expect("starting the reaper thread");
    });
}

/// Our children (of any of our threads), from `/proc/self/task/*/children`.
fn children() -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Reaps every exited child that is not a command a test waits for.
pub fn reap_orphans() {
    let guard = COMMANDS.lock().unwrap_or_else(|e| e.into_inner());
    let busy = guard.as_ref();
    for pid in children() {
        if busy.is_some_and(|b| b.contains(&pid)) {
            continue;
        }
        // SAFETY: non-blocking waitpid on one of our children.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
    }
}

/// Children of ours that are not commands a test waits for (leftover container processes).
pub fn stray_children() -> Vec<i32> {
    reap_orphans();
    let guard = COMMANDS.lock().unwrap_or_else(|e| e.into_inner());
    let busy = guard.clone().unwrap_or_default();
    drop(guard);
    children()
        .into_iter()
        .filter(|p| !busy.contains(p))
        .collect()
}

/// The result of a command.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts failure and returns self.
    #[track_caller]
    pub fn failed(self) -> Out {
        assert_ne!(
            self.code, 0,
            "command succeeded but should not have:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts failure with an error message containing every one of `needles`.
    #[track_caller]
    pub fn fails_with(self, needles: &[&str]) -> Out {
        let o = self.failed();
        for n in needles {
            assert!(
                o.stderr.contains(n),
                "error message lacks {n:?}:\nstderr: {}\nstdout: {}",
                o.stderr,
                o.stdout
            );
        }
        o
    }

    /// stdout, trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }
}

/// An anonymous temporary file for a command's output, readable after the command exits.
pub fn capture_file() -> File {
    tempfile::tempfile().expect("creating a capture file")
}

/// Reads a whole file from its start.
pub fn read_all(f: &File) -> String {
    let mut f = f.try_clone().expect("dup");
    let mut s = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.read_to_end(&mut s).expect("read");
    String::from_utf8_lossy(&s).into_owned()
}

/// Runs `cmd` (stdin from `stdin` or /dev/null, stdout and stderr captured) with a timeout,
/// keeping the reaper away from it.
#[track_caller]
pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
    let out = capture_file();
    let err = capture_file();
    run_cmd_into(cmd, stdin, &out, &err)
}

/// Like [`run_cmd`], with stdout and stderr going to the given files (which whatever the
/// command leaves running, such as a container, keeps writing to).
#[track_caller]
pub fn run_cmd_into(cmd: &mut Command, stdin: Option<&[u8]>, out: &File, err: &File) -> Out {
    setup();
    let start_out = out.metadata().map(|m| m.len()).unwrap_or(0);
    let start_err = err.metadata().map(|m| m.len()).unwrap_or(0);
    let stdin = match stdin {
        Some(data) => {
            let mut f = capture_file();
            f.write_all(data).expect("writing stdin");
            f.seek(SeekFrom::Start(0)).expect("seek");
            Stdio::from(f)
        }
        None => Stdio::null(),
    };
    cmd.stdin(stdin)
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"));
    let mut child = {
        let mut guard = COMMANDS.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        guard
            .get_or_insert_with(HashSet::new)
            .insert(child.id() as i32);
        child
    };
    let pid = child.id() as i32;
    let deadline = Instant::now() + CMD_TIMEOUT;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    if let Some(set) = COMMANDS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        set.remove(&pid);
    }
    let tail = |f: &File, from: u64| {
        let all = read_all(f);
        all.get(from as usize..).unwrap_or("").to_string()
    };
    let (stdout, stderr) = (tail(out, start_out), tail(err, start_err));
    let Some(status) = status else {
        panic!("{cmd:?} timed out after {CMD_TIMEOUT:?}\nstdout: {stdout}\nstderr: {stderr}");
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Out {
        code,
        stdout,
        stderr,
    }
}

/// Runs `sh -c script` on the host.
#[track_caller]
pub fn host_sh(script: &str) -> Out {
    run_cmd(Command::new("/bin/sh").args(["-c", script]), None)
}

/// Polls `f` until it returns `Some`, or panics with `what` after [`WAIT`].
#[track_caller]
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let o = run_cmd(Command::new(BUSYBOX).arg("--list"), None).ok();
        o.stdout
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

/// Makes a busybox root filesystem in `dir`: the binary, a symlink per applet, /etc/passwd
/// and /etc/group, and the usual empty directories.
pub fn make_rootfs(dir: &Path) {
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "root",
        "home/user",
    ] {
        fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    fs::copy(BUSYBOX, dir.join("bin/busybox")).expect("copying busybox");
    for a in applets() {
        symlink("busybox", dir.join("bin").join(a)).expect("applet symlink");
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
}

/// A temporary directory whose name says it is ours (`berth-test-…`).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-test-")
        .tempdir()
        .expect("temp dir")
}

/// A unique container id for a test.
pub fn unique_id(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The cgroup v1 and v2 mount points of the host (`/sys/fs/cgroup/memory`, …).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mp = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mp))
        })
        .collect()
}

/// The cgroup v1 directory of `controller` for the cgroup path `cg` (`/berth-test-…`).
pub fn v1_dir(controller: &str, cg: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(cg.trim_start_matches('/'))
}

/// A container under test; deleted (forcibly) with everything it holds when dropped.
pub struct Ctr {
    pub id: String,
    /// The config, edited by the test and written to the bundle before `create`/`run`.
    pub spec: Value,
    /// The runtime binary to run (the build's, unless a test uses a copy).
    pub runtime: PathBuf,
    root: Arc<tempfile::TempDir>,
    bundle: tempfile::TempDir,
    /// Where the container's stdout and stderr go when it was made by `create` or `run -d`.
    pub console_out: File,
    pub console_err: File,
    /// Init pids to see gone (reaped) before the guard is done.
    pids: Vec<i32>,
    attempted: bool,
}

impl Ctr {
    /// A container running `args` from a fresh busybox bundle, with its own runtime root.
    pub fn new(name: &str, args: &[&str]) -> Ctr {
        Self::build(name, args, Arc::new(temp_dir()))
    }

    /// A second container using the same runtime root as `other`.
    pub fn sharing_root(other: &Ctr, name: &str, args: &[&str]) -> Ctr {
        Self::build(name, args, other.root.clone())
    }

    fn build(name: &str, args: &[&str], root: Arc<tempfile::TempDir>) -> Ctr {
        setup();
        let id = unique_id(name);
        let bundle = temp_dir();
        make_rootfs(&bundle.path().join("rootfs"));
        let mut spec = berth_runtime::commands::spec::default_spec();
        spec["process"]["args"] = json!(args);
        spec["process"]["terminal"] = json!(false);
        spec["linux"]["cgroupsPath"] = json!(format!("/berth-test-{id}"));
        Ctr {
            id,
            spec,
            runtime: PathBuf::from(RUNTIME),
            root,
            bundle,
            console_out: capture_file(),
            console_err: capture_file(),
            pids: Vec::new(),
            attempted: false,
        }
    }

    pub fn bundle(&self) -> &Path {
        self.bundle.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.path().join("rootfs")
    }

    /// The runtime root (`--root`).
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// The container's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join(&self.id)
    }

    /// `linux.cgroupsPath`.
    pub fn cgroup_path(&self) -> String {
        self.spec["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every directory the container's cgroup has (or would have) on the host. Empty unless
    /// the path is one of the tests' own (`berth-test` in it): the guard kills what is in
    /// these directories, and must never touch a hierarchy's root or anyone else's cgroup.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let cg = self.cgroup_path();
        let rel = cg.trim_start_matches('/');
        if rel.is_empty()
            || !rel.contains("berth-test")
            || rel.split('/').any(|c| c == ".." || c == ".")
        {
            return Vec::new();
        }
        cgroup_mounts().into_iter().map(|m| m.join(rel)).collect()
    }

    /// The directory in one cgroup v1 hierarchy.
    pub fn v1(&self, controller: &str) -> PathBuf {
        v1_dir(controller, &self.cgroup_path())
    }

    /// Writes the config to the bundle.
    pub fn write_config(&self) {
        let data = serde_json::to_vec_pretty(&self.spec).expect("json");
        fs::write(self.bundle.path().join("config.json"), data).expect("writing config.json");
    }

    /// A runtime command with our `--root`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Runs the runtime with `args`.
    #[track_caller]
    pub fn rt(&self, args: &[&str]) -> Out {
        run_cmd(self.cmd().args(args), None)
    }

    /// `create` with extra arguments before the id; stdout/stderr of the container go to the
    /// console files. Records the init pid on success.
    #[track_caller]
    pub fn create_with(&mut self, extra: &[&str]) -> Out {
        self.write_config();
        self.attempted = true;
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(self.bundle.path())
            .args(extra)
            .arg(&self.id);
        let o = run_cmd_into(&mut c, None, &self.console_out, &self.console_err);
        if o.code == 0 {
            self.note_pid();
        }
        o
    }

    /// `create`, asserting success.
    #[track_caller]
    pub fn create(&mut self) -> Out {
        self.create_with(&[]).ok()
    }

    fn note_pid(&mut self) {
        if let Some(pid) = self
            .try_state()
            .and_then(|s| s["pid"].as_i64())
            .filter(|p| *p > 0)
        {
            self.pids.push(pid as i32);
        }
    }

    /// Remembers a pid to see gone when the guard drops (a process from `exec -d`).
    pub fn track_pid(&mut self, pid: i32) {
        self.pids.push(pid);
    }

    #[track_caller]
    pub fn start(&self) -> Out {
        self.rt(&["start", &self.id])
    }

    /// `run` in the foreground with extra arguments; returns the container's output.
    #[track_caller]
    pub fn run_with(&mut self, extra: &[&str]) -> Out {
        self.write_config();
        self.attempted = true;
        let mut c = self.cmd();
        c.arg("run")
            .arg("--bundle")
            .arg(self.bundle.path())
            .args(extra)
            .arg(&self.id);
        run_cmd(&mut c, None)
    }

    /// `run` in the foreground.
    #[track_caller]
    pub fn run(&mut self) -> Out {
        self.run_with(&[])
    }

    /// `run -d`: the container's output goes to the console files.
    #[track_caller]
    pub fn run_detached(&mut self) -> Out {
        self.write_config();
        self.attempted = true;
        let mut c = self.cmd();
        c.arg("run")
            .arg("-d")
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg(&self.id);
        let o = run_cmd_into(&mut c, None, &self.console_out, &self.console_err);
        if o.code == 0 {
            self.note_pid();
        }
        o
    }

    /// `create` + `start`, asserting both succeed.
    #[track_caller]
    pub fn create_start(&mut self) {
        self.create();
        self.start().ok();
    }

    /// The state JSON, if the runtime gives one.
    pub fn try_state(&self) -> Option<Value> {
        let o = self.rt(&["state", &self.id]);
        (o.code == 0).then(|| serde_json::from_str(&o.stdout).expect("state is JSON"))
    }

    #[track_caller]
    pub fn state(&self) -> Value {
        let o = self.rt(&["state", &self.id]).ok();
        serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", o.stdout))
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().expect("pid") as i32
    }

    /// Waits until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        wait_for(&format!("{} to be {want}", self.id), || {
            (self.status() == want).then_some(())
        });
    }

    /// `exec` in the foreground: the runtime's exit code is the process's.
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Out {
        let mut a = vec!["exec"];
        let sep = args.iter().position(|a| *a == "--");
        match sep {
            Some(i) => {
                a.extend_from_slice(&args[..i]);
                a.push(&self.id);
                a.extend_from_slice(&args[i + 1..]);
            }
            None => {
                a.push(&self.id);
                a.extend_from_slice(args);
            }
        }
        self.rt(&a)
    }

    /// Runs `sh -c script` in the container with `exec`.
    #[track_caller]
    pub fn sh(&self, script: &str) -> Out {
        self.exec(&["sh", "-c", script])
    }

    /// What the container (made by `create` or `run -d`) wrote to its stdout so far.
    pub fn console(&self) -> String {
        read_all(&self.console_out)
    }

    /// What the container wrote to its stderr so far (with the runtime's own messages).
    pub fn console_errors(&self) -> String {
        read_all(&self.console_err)
    }

    /// Waits until the container's stdout contains `needle`; returns all of it.
    #[track_caller]
    pub fn wait_console(&self, needle: &str) -> String {
        wait_for(&format!("{needle:?} on the console of {}", self.id), || {
            let s = self.console();
            s.contains(needle).then_some(s)
        })
    }

    /// Adds a mount to the config.
    pub fn add_mount(&mut self, m: Value) {
        self.spec["mounts"].as_array_mut().expect("mounts").push(m);
    }

    /// Forcibly deletes the container now and waits until its processes are reaped.
    pub fn cleanup(&mut self) {
        if self.attempted {
            let o = self.rt(&["delete", "--force", &self.id]);
            if o.code != 0 {
                eprintln!(
                    "cleanup of {}: delete --force failed: {}",
                    self.id, o.stderr
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for pid in self.pids.drain(..) {
            loop {
                reap_orphans();
                if !is_our_child(pid) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A safety net: nothing of the container's cgroup may stay on the host.
        for d in self.cgroup_dirs() {
            if d.exists() {
                eprintln!(
                    "cleanup of {}: cgroup {} was left behind; removing it",
                    self.id,
                    d.display()
                );
                let _ = fs::write(d.join("cgroup.kill"), "1");
                if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                    for p in procs
                        .split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                    {
                        // SAFETY: killing a leftover container process.
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
                let _ = fs::write(d.join("freezer.state"), "THAWED");
                for _ in 0..100 {
                    reap_orphans();
                    if fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Whether `pid` is still a child of ours (alive or a zombie not yet reaped).
fn is_our_child(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let ppid: i32 = rest
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    ppid == std::process::id() as i32
}

impl Drop for Ctr {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Asserts that nothing of container `c` is left on the host: no state directory, no cgroup
/// in any hierarchy, no mount mentioning the bundle, no stray process.
#[track_caller]
pub fn assert_nothing_left(c: &Ctr) {
    assert!(
        !c.state_dir().exists(),
        "{} was left behind",
        c.state_dir().display()
    );
    for d in c.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} was left behind", d.display());
    }
    let bundle = c.bundle().to_string_lossy().into_owned();
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let leaked: Vec<&str> = info.lines().filter(|l| l.contains(&bundle)).collect();
    assert!(leaked.is_empty(), "mounts left behind: {leaked:#?}");
    // The runtime reaps what it forks; anything reparented to us is a leak.
    let stray = wait_until_no_strays();
    assert!(stray.is_empty(), "processes left behind: {stray:?}");
}

/// Waits a little for exiting children to be reaped; returns what is still there.
fn wait_until_no_strays() -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stray_children();
        if s.is_empty() || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process holding namespaces for a container to join; killed and reaped on drop.
pub struct NsHolder {
    pub pid: i32,
    child: std::process::Child,
}

impl NsHolder {
    /// `unshare <flags> sh -c "<script>; exec sleep 1000"`; waits until `ready` (a file the
    /// script creates) exists.
    pub fn new(unshare_flags: &[&str], script: &str) -> NsHolder {
        setup();
        let dir = temp_dir();
        let ready = dir.path().join("ready");
        let full = format!("{script}; touch {}; exec sleep 1000", ready.display());
        let child = {
            let mut guard = COMMANDS.lock().unwrap_or_else(|e| e.into_inner());
            let child = Command::new("unshare")
                .args(unshare_flags)
                .args(["/bin/sh", "-c", &full])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawning unshare");
            guard
                .get_or_insert_with(HashSet::new)
                .insert(child.id() as i32);
            child
        };
        let pid = child.id() as i32;
        wait_for("the namespace holder", || ready.exists().then_some(()));
        NsHolder { pid, child }
    }

    /// `/proc/<pid>/ns/<name>`.
    pub fn ns(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.pid)
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(set) = COMMANDS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            set.remove(&self.pid);
        }
    }
}

/// The inode of a namespace file, as `ls -L -i` / `readlink` show it (`net:[4026531840]`).
pub fn ns_id(path: &str) -> String {
    fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Reads from `fd` until the text contains `needle` (or the timeout passes); returns the text.
pub fn read_until(fd: BorrowedFd<'_>, needle: &str) -> String {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: 0,
        };
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Writes all of `data` to `fd`.
pub fn write_fd(fd: BorrowedFd<'_>, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        match rustix::io::write(fd, &data[off..]) {
            Ok(n) => off += n,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// A unix socket listening for a pty master (`--console-socket`).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: std::os::unix::net::UnixListener,
    _dir: tempfile::TempDir,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = temp_dir();
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind console socket");
        ConsoleSocket {
            path,
            listener,
            _dir: dir,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// Accepts the runtime's connection and receives the pty master.
    pub fn receive_master(&self) -> OwnedFd {
        self.listener.set_nonblocking(true).expect("nonblocking");
        let stream = wait_for("the runtime to connect to the console socket", || {
            self.listener.accept().ok()
        })
        .0;
        stream.set_nonblocking(false).expect("blocking");
        berth_runtime::sync::recv_fd(stream.as_fd()).expect("receiving the pty master")
    }
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

/// The raw fd number, for messages.
pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}
