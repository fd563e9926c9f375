//! Tests against the real cgroup filesystem (they need root). Every test uses its own
//! cgroup name and a guard that kills its processes and removes its directories, also when
//! the test fails.
//!
//! Children are either `sleep` processes started with std::process::Command, or forked
//! children that only make raw system calls before `_exit` (the test harness is
//! multi-threaded). A forked child waits for a byte on a pipe before doing its work, so the
//! test can move it into the cgroup first.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "berth-test-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root and a writable cgroup filesystem");
            return;
        }
    };
}

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

/// Kills the test's processes and removes its cgroups when dropped.
struct Guard {
    cg: Cgroup,
    /// Extra directories to remove after the cgroup (parents of nested test paths).
    extra: Vec<PathBuf>,
    pids: Vec<i32>,
}

impl Guard {
    fn new(cg: Cgroup) -> Guard {
        Guard {
            cg,
            extra: Vec::new(),
            pids: Vec::new(),
        }
    }

    /// Also removes the parents of the cgroup's directories (for `/<test>/<child>` paths).
    fn with_parents(mut self) -> Guard {
        self.extra = self
            .cg
            .dirs()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .collect();
        self
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: kill/waitpid on our own children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        let _ = self.cg.thaw();
        let _ = self.cg.destroy();
        for d in &self.extra {
            let _ = util::remove_cgroup(d);
        }
    }
}

fn assert_gone(cg: &Cgroup) {
    for d in cg.dirs() {
        assert!(!d.exists(), "{} was left behind", d.display());
    }
}

/// A forked child that runs `work` (raw system calls only) once told to go.
struct Child {
    pid: i32,
    go: i32,
    ready: i32,
}

fn fork_child(work: impl FnOnce(i32) -> i32) -> Child {
    let mut go = [0i32; 2];
    let mut ready = [0i32; 2];
    // SAFETY: plain pipe2/fork; the child only makes raw system calls and _exits.
    unsafe {
        assert_eq!(libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC), 0);
        assert_eq!(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(go[1]);
            libc::close(ready[0]);
            let mut b = 0u8;
            libc::read(go[0], (&mut b as *mut u8).cast(), 1);
            let code = work(ready[1]);
            libc::_exit(code);
        }
        libc::close(go[0]);
        libc::close(ready[1]);
        Child {
            pid,
            go: go[1],
            ready: ready[0],
        }
    }
}

impl Child {
    fn go(&self) {
        // SAFETY: writing one byte to our pipe.
        unsafe {
            assert_eq!(libc::write(self.go, b"g".as_ptr().cast(), 1), 1);
        }
    }

    /// Waits for the child to signal readiness (one byte on the ready pipe).
    fn wait_ready(&self) {
        let mut b = 0u8;
        // SAFETY: reading one byte from our pipe.
        let n = unsafe { libc::read(self.ready, (&mut b as *mut u8).cast(), 1) };
        assert_eq!(n, 1, "child did not get ready");
    }

    /// Waits for the child and returns its raw wait status.
    fn wait(&self) -> i32 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid);
        // SAFETY: closing our pipe ends.
        unsafe {
            libc::close(self.go);
            libc::close(self.ready);
        }
        status
    }
}

fn exit_code(status: i32) -> i32 {
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// In a forked child: opens `path` with `flags`; 0 on success, else the errno.
fn try_open(path: &std::ffi::CStr, flags: i32) -> i32 {
    // SAFETY: open/close with a valid C string.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags);
        if fd < 0 {
            return errno();
        }
        libc::close(fd);
        0
    }
}

fn spawn_sleep() -> std::process::Child {
    Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn mem_dir(cg: &Cgroup) -> &Path {
    cg.v1_dir("memory").unwrap()
}

fn hybrid() -> bool {
    detect_layout().ok() == Some(Layout::Hybrid)
}

#[test]
fn path_resolution() {
    let hs = mounted_hierarchies().unwrap();
    let cg = Cgroup::new(Some("/a/b/../c"), "ignored").unwrap();
    assert_eq!(cg.path, "/a/c");
    assert_eq!(cg.layout, detect_layout().unwrap());
    for h in &hs {
        assert_eq!(cg.v1[&h.name], h.mountpoint.join("a/c"), "{}", h.name);
    }
    if let Some(u) = unified_mountpoint().unwrap() {
        assert_eq!(cg.v2.as_deref(), Some(u.join("a/c").as_path()));
    }

    // Relative paths (and no path: the id) start at the runtime's own cgroup, which differs
    // per hierarchy.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own: BTreeMap<String, String> = own
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let _ = p.next()?;
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect();
    for (raw, id, want) in [(Some("x/./y"), "id", "x/y"), (None, "ctr-1", "ctr-1")] {
        let cg = Cgroup::new(raw, id).unwrap();
        assert_eq!(cg.path, want);
        for h in &hs {
            let expect = hierarchy::join_rel(&h.mountpoint, &own[&h.name]).join(want);
            assert_eq!(cg.v1[&h.name], expect, "{}", h.name);
        }
        if let (Some(u), Some(p)) = (unified_mountpoint().unwrap(), own.get("")) {
            assert_eq!(
                cg.v2.clone().unwrap(),
                hierarchy::join_rel(&u, p).join(want)
            );
        }
    }

    for bad in ["../x", "/a/../../x", "/", ".", "a/.."] {
        let e = Cgroup::new(Some(bad), "id").unwrap_err().to_string();
        assert!(e.starts_with("linux.cgroupsPath: "), "{bad}: {e}");
    }
    let e = Cgroup::new(None, "..").unwrap_err().to_string();
    assert!(e.starts_with("container id: "), "{e}");

    // The state round-trips.
    let cg = Cgroup::new(Some("/berth/x"), "x").unwrap();
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.v1, cg.v1);
    assert_eq!(back.v2, cg.v2);
    assert_eq!(back.layout, cg.layout);
}

#[test]
fn create_and_destroy_leave_nothing() {
    require_root!();
    let name = unique("lifecycle");
    let cg = Cgroup::new(Some(&format!("/{name}/inner")), "x").unwrap();
    let guard = Guard::new(cg.clone()).with_parents();
    cg.create(None).unwrap();
    for d in cg.dirs() {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    // A sub-cgroup in one hierarchy must be removed first.
    fs::create_dir(mem_dir(&cg).join("sub")).unwrap();
    cg.destroy().unwrap();
    assert_gone(&cg);
    cg.destroy().unwrap(); // already gone: fine
    for d in &guard.extra {
        fs::remove_dir(d).unwrap();
    }

    // Relative (the container id below the runtime's own cgroup).
    let cg = Cgroup::new(None, &unique("rel")).unwrap();
    let _g = Guard::new(cg.clone());
    cg.create(Some(&res(serde_json::json!({"pids": {"limit": 5}}))))
        .unwrap();
    assert_eq!(read(cg.v1_dir("pids").unwrap(), "pids.max"), "5");
    cg.destroy().unwrap();
    assert_gone(&cg);
}

#[test]
fn memory_limit_and_swap() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("mem"))), "x").unwrap();
    let _g = Guard::new(cg.clone());
    const M: i64 = 1 << 20;
    cg.create(Some(&res(serde_json::json!({"memory": {
        "limit": 64 * M, "swap": 128 * M, "reservation": 16 * M,
        "swappiness": 10, "disableOOMKiller": true
    }}))))
    .unwrap();
    let d = mem_dir(&cg);
    let get = |f: &str| read(d, f).parse::<i64>().unwrap();
    assert_eq!(get("memory.limit_in_bytes"), 64 * M);
    assert_eq!(get("memory.memsw.limit_in_bytes"), 128 * M);
    assert_eq!(get("memory.soft_limit_in_bytes"), 16 * M);
    assert_eq!(get("memory.swappiness"), 10);
    assert!(read(d, "memory.oom_control").contains("oom_kill_disable 1"));

    // Lowering both needs memory first, raising both needs memsw first.
    cg.apply(&res(
        serde_json::json!({"memory": {"limit": 32 * M, "swap": 48 * M}}),
    ))
    .unwrap();
    assert_eq!(get("memory.limit_in_bytes"), 32 * M);
    assert_eq!(get("memory.memsw.limit_in_bytes"), 48 * M);
    cg.apply(&res(
        serde_json::json!({"memory": {"limit": 256 * M, "swap": 512 * M}}),
    ))
    .unwrap();
    assert_eq!(get("memory.limit_in_bytes"), 256 * M);
    assert_eq!(get("memory.memsw.limit_in_bytes"), 512 * M);
    // -1: unlimited (swap follows the memory limit when not given).
    cg.apply(&res(serde_json::json!({"memory": {"limit": -1}})))
        .unwrap();
    assert!(get("memory.limit_in_bytes") > 1 << 60);
    assert!(get("memory.memsw.limit_in_bytes") > 1 << 60);

    // A swap limit below the memory limit is refused, naming the field.
    let e = cg
        .apply(&res(
            serde_json::json!({"memory": {"limit": 64 * M, "swap": 32 * M}}),
        ))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.memory."), "{e}");
    let e = cg
        .apply(&res(serde_json::json!({"memory": {"swappiness": 101}})))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.memory.swappiness: "), "{e}");
}

#[test]
fn pids_limit_enforced() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("pids"))), "x").unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create(Some(&res(serde_json::json!({"pids": {"limit": 3}}))))
        .unwrap();
    assert_eq!(read(cg.v1_dir("pids").unwrap(), "pids.max"), "3");
    // The child forks until it fails; it may have 2 children (3 tasks in all).
    let child = fork_child(|_| {
        let mut kids = [0i32; 8];
        let mut n = 0;
        let mut err = 0;
        // SAFETY: raw fork/pause/kill/waitpid in a single-threaded child.
        unsafe {
            while n < kids.len() {
                let pid = libc::fork();
                if pid == 0 {
                    loop {
                        libc::pause();
                    }
                }
                if pid < 0 {
                    err = errno();
                    break;
                }
                kids[n] = pid;
                n += 1;
            }
            for &k in &kids[..n] {
                libc::kill(k, libc::SIGKILL);
                libc::waitpid(k, std::ptr::null_mut(), 0);
            }
        }
        if err == libc::EAGAIN {
            n as i32
        } else {
            100 + n as i32
        }
    });
    g.pids.push(child.pid);
    cg.add_task(child.pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid]);
    child.go();
    assert_eq!(exit_code(child.wait()), 2);
    g.pids.clear();
}

#[test]
fn cpuset_copied_from_parent() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}/inner", unique("cpuset"))), "x").unwrap();
    let g = Guard::new(cg.clone()).with_parents();
    cg.create(Some(&res(
        serde_json::json!({"cpu": {"cpus": "0", "mems": "0"}}),
    )))
    .unwrap();
    let d = cg.v1_dir("cpuset").unwrap();
    let parent = d.parent().unwrap();
    let root = Path::new("/sys/fs/cgroup/cpuset");
    let root = if root.is_dir() {
        root
    } else {
        parent.parent().unwrap()
    };
    assert_eq!(read(parent, "cpuset.cpus"), read(root, "cpuset.cpus"));
    assert_eq!(read(parent, "cpuset.mems"), read(root, "cpuset.mems"));
    assert_eq!(read(d, "cpuset.cpus"), "0");
    assert_eq!(read(d, "cpuset.mems"), "0");
    // A task can join.
    let mut child = spawn_sleep();
    cg.add_task(child.id() as i32).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(g);
}

#[test]
fn cpu_limits_v1() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("cpu"))), "x").unwrap();
    let _g = Guard::new(cg.clone());
    cg.create(Some(&res(serde_json::json!({"cpu": {
        "shares": 512, "quota": 50000, "period": 100000, "burst": 10000
    }}))))
    .unwrap();
    let d = cg.v1_dir("cpu").unwrap();
    assert_eq!(read(d, "cpu.shares"), "512");
    assert_eq!(read(d, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(d, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(d, "cpu.cfs_burst_us"), "10000");
    // Shorter period with a smaller quota: the period write fails first and is retried.
    cg.apply(&res(
        serde_json::json!({"cpu": {"quota": 5000, "period": 10000, "burst": 0}}),
    ))
    .unwrap();
    assert_eq!(read(d, "cpu.cfs_quota_us"), "5000");
    assert_eq!(read(d, "cpu.cfs_period_us"), "10000");
    let e = cg
        .apply(&res(serde_json::json!({"cpu": {"shares": 1}})))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("linux.resources.cpu.shares: "), "{e}");
}

#[test]
fn hugetlb_goes_to_v2_on_hybrid() {
    require_root!();
    if !hybrid() || !hugepage_sizes().iter().any(|s| s == "2MB") {
        eprintln!("skipped: needs a hybrid host with 2MB huge pages");
        return;
    }
    let cg = Cgroup::new(Some(&format!("/{}", unique("huge"))), "x").unwrap();
    let _g = Guard::new(cg.clone());
    if cg.v1_dir("hugetlb").is_some() {
        eprintln!("skipped: hugetlb is a v1 hierarchy here");
        return;
    }
    cg.create(Some(&res(serde_json::json!({"hugepageLimits": [
        {"pageSize": "2MB", "limit": 4194304}
    ]}))))
    .unwrap();
    let v2 = cg.v2.as_deref().unwrap();
    assert_eq!(read(v2, "hugetlb.2MB.max"), "4194304");
    let s = cg.stats().unwrap();
    assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);

    let e = cg
        .apply(&res(
            serde_json::json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.resources.hugepageLimits[0].pageSize: "),
        "{e}"
    );
}

#[test]
fn freeze_and_thaw() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("freeze"))), "x").unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create(None).unwrap();
    let mut child = spawn_sleep();
    let pid = child.id() as i32;
    g.pids.push(pid);
    cg.add_task(pid).unwrap();
    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    let (v1, dir) = cg.freezer().unwrap();
    if v1 {
        assert_eq!(read(dir, "freezer.state"), "FROZEN");
    } else {
        assert!(read(dir, "cgroup.events").contains("frozen 1"));
    }
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    if v1 {
        assert_eq!(read(dir, "freezer.state"), "THAWED");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    g.pids.clear();
}

#[test]
fn signal_all_kills_children() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("kill"))), "x").unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create(None).unwrap();
    let mut kids: Vec<_> = (0..2).map(|_| spawn_sleep()).collect();
    for k in &kids {
        g.pids.push(k.id() as i32);
        cg.add_task(k.id() as i32).unwrap();
    }
    assert_eq!(cg.pids().unwrap().len(), 2);
    cg.signal_all(libc::SIGTERM).unwrap();
    for k in &mut kids {
        let st = k.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
    }
    assert!(!cg.is_frozen().unwrap());

    let mut k = spawn_sleep();
    cg.add_task(k.id() as i32).unwrap();
    cg.signal_all(libc::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(k.wait().unwrap().signal(), Some(libc::SIGKILL));
    g.pids.clear();
    cg.destroy().unwrap();
    assert_gone(&cg);
}

#[test]
fn stats_of_a_child_that_allocates() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("stats"))), "x").unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create(Some(&res(serde_json::json!({
        "memory": {"limit": 256i64 << 20},
        "pids": {"limit": 10}
    }))))
    .unwrap();
    const SIZE: usize = 32 << 20;
    let child = fork_child(|ready| {
        // SAFETY: raw mmap/write/pause in the child; the mapping is ours.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return 1;
            }
            let b = p.cast::<u8>();
            let mut i = 0;
            while i < SIZE {
                b.add(i).write_volatile(1);
                i += 4096;
            }
            libc::write(ready, b"r".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    });
    g.pids.push(child.pid);
    cg.add_task(child.pid).unwrap();
    child.go();
    child.wait_ready();
    let s = cg.stats().unwrap();
    assert!(s.memory.usage.usage >= SIZE as u64, "{:?}", s.memory.usage);
    assert_eq!(s.memory.usage.limit, 256 << 20);
    assert!(s.memory.usage.max >= s.memory.usage.usage);
    assert!(!s.memory.raw.is_empty());
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 10);
    assert!(s.cpu.usage.total > 0, "{:?}", s.cpu.usage);
    let v = serde_json::to_value(&s).unwrap();
    eprintln!("{v}");
    for k in ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    assert!(v["memory"]["usage"]["usage"].as_u64().unwrap() >= SIZE as u64);

    // checkBeforeUpdate refuses a limit below what is in use.
    let e = cg
        .apply(&res(serde_json::json!({"memory": {
            "limit": 16i64 << 20, "checkBeforeUpdate": true
        }})))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.resources.memory.limit: rejecting"),
        "{e}"
    );
}

#[test]
fn blkio_v1() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("blkio"))), "x").unwrap();
    let Some(d) = cg.v1_dir("blkio").map(Path::to_path_buf) else {
        eprintln!("skipped: no cgroup v1 blkio hierarchy");
        return;
    };
    let _g = Guard::new(cg.clone());
    // The first disk, for the throttle rule.
    let parts = fs::read_to_string("/proc/partitions").unwrap();
    let dev = parts
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| format!("{}:{}", f[0], f[1]))
        })
        .unwrap();
    let (ma, mi) = dev.split_once(':').unwrap();
    let (ma, mi): (i64, i64) = (ma.parse().unwrap(), mi.parse().unwrap());
    cg.create(Some(&res(serde_json::json!({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}]
    }}))))
    .unwrap();
    let weight = if d.join("blkio.weight").exists() {
        read(&d, "blkio.weight")
    } else {
        read(&d, "blkio.bfq.weight")
    };
    assert!(weight.contains("500"), "{weight}");
    assert_eq!(
        read(&d, "blkio.throttle.read_bps_device"),
        format!("{dev} 1048576")
    );
    assert_eq!(
        read(&d, "blkio.throttle.write_iops_device"),
        format!("{dev} 100")
    );
    let _ = cg.stats().unwrap();
}

#[test]
fn missing_controllers() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("missing"))), "x").unwrap();
    let _g = Guard::new(cg.clone());
    cg.create(None).unwrap();
    // net_cls / net_prio are only skipped (with a warning) when not mounted.
    cg.apply(&res(serde_json::json!({"network": {
        "classID": 1048577, "priorities": [{"name": "lo", "priority": 1}]
    }})))
    .unwrap();
    if let Some(d) = cg.v1_dir("net_cls") {
        assert_eq!(read(d, "net_cls.classid"), "1048577");
    }
    // Requested limits for an absent controller are errors naming the field.
    let has_rdma = cg.v1_dir("rdma").is_some()
        || cg
            .v2
            .as_deref()
            .is_some_and(|d| v2::controllers(d).unwrap().contains("rdma"));
    if !has_rdma {
        let e = cg
            .apply(&res(
                serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}),
            ))
            .unwrap_err()
            .to_string();
        eprintln!("{e}");
        assert!(e.starts_with("linux.resources.rdma: "), "{e}");
    }
    // Empty sections ask for nothing.
    cg.apply(&res(serde_json::json!({
        "memory": {}, "cpu": {}, "blockIO": {}, "hugepageLimits": [], "rdma": {},
        "unified": {}, "devices": []
    })))
    .unwrap();
}

#[test]
fn oom_watch_sees_kills() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("oom"))), "x").unwrap();
    let mut g = Guard::new(cg.clone());
    cg.create(Some(&res(
        serde_json::json!({"memory": {"limit": 16i64 << 20, "swap": 16i64 << 20}}),
    )))
    .unwrap();
    let mut w = cg.oom_watch().unwrap().expect("memory controller");
    assert_eq!(w.oom_kills().unwrap(), 0);
    let child = fork_child(|_| {
        const SIZE: usize = 128 << 20;
        // SAFETY: raw mmap in the child; touching it gets the child OOM-killed.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return 1;
            }
            let b = p.cast::<u8>();
            let mut i = 0;
            while i < SIZE {
                b.add(i).write_volatile(1);
                i += 4096;
            }
        }
        0
    });
    g.pids.push(child.pid);
    cg.add_task(child.pid).unwrap();
    child.go();
    let st = child.wait();
    g.pids.clear();
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "{st:#x}"
    );
    let ev = w
        .wait(Some(Duration::from_secs(5)))
        .unwrap()
        .expect("an OOM event");
    assert!(ev.ooms >= 1, "{ev:?}");
    assert!(w.oom_kills().unwrap() >= 1);
    drop(g);
}

/// Child for the device tests: 0 if `/dev/null` and `/dev/zero` behave as `expect` says.
fn device_probe(expect: &'static [(&'static std::ffi::CStr, i32, i32)]) -> Child {
    fork_child(move |_| {
        for (i, (path, flags, want)) in expect.iter().enumerate() {
            if try_open(path, *flags) != *want {
                return 10 + i as i32;
            }
        }
        0
    })
}

#[test]
fn v1_devices_block_dev_null() {
    require_root!();
    let cg = Cgroup::new(Some(&format!("/{}", unique("dev1"))), "x").unwrap();
    if cg.v1_dir("devices").is_none() {
        eprintln!("skipped: no cgroup v1 devices hierarchy");
        return;
    }
    let mut g = Guard::new(cg.clone());
    cg.create(Some(&res(serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]}))))
    .unwrap();
    let d = cg.v1_dir("devices").unwrap();
    let list = read(d, "devices.list");
    assert_eq!(list, "c 1:3 w\nc 1:5 rwm", "{list}");
    let child = device_probe(&[
        (c"/dev/null", libc::O_RDONLY, libc::EPERM),
        (c"/dev/null", libc::O_WRONLY, 0),
        (c"/dev/zero", libc::O_RDONLY, 0),
    ]);
    g.pids.push(child.pid);
    cg.add_task(child.pid).unwrap();
    child.go();
    assert_eq!(exit_code(child.wait()), 0);
    g.pids.clear();

    // An update writes only the difference.
    cg.apply(&res(serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    ]})))
    .unwrap();
    assert_eq!(read(d, "devices.list"), "c 1:3 rw");
}

#[test]
fn v2_ebpf_device_filter() {
    require_root!();
    let Some(root) = unified_mountpoint().unwrap() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let dir = root.join(unique("bpf"));
    fs::create_dir(&dir).unwrap();
    struct Rm(PathBuf, Vec<i32>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for &pid in &self.1 {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            let _ = util::remove_cgroup(&self.0);
        }
    }
    let mut rm = Rm(dir.clone(), Vec::new());
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "r"}
        ]))
        .unwrap();
    devices::apply_v2(&dir, &rules).unwrap();
    let run = |rm: &mut Rm, expect: &'static [(&'static std::ffi::CStr, i32, i32)]| {
        let child = device_probe(expect);
        rm.1.push(child.pid);
        util::write_pid(&dir, child.pid).unwrap();
        child.go();
        let code = exit_code(child.wait());
        rm.1.clear();
        code
    };
    assert_eq!(
        run(
            &mut rm,
            &[
                (c"/dev/null", libc::O_RDONLY, libc::EPERM),
                (c"/dev/null", libc::O_RDWR, libc::EPERM),
                (c"/dev/null", libc::O_WRONLY, 0),
                (c"/dev/zero", libc::O_RDONLY, 0),
            ]
        ),
        0
    );

    // Replacing: an allow-list program takes the old one's place.
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
        ]))
        .unwrap();
    devices::apply_v2(&dir, &rules).unwrap();
    let f = fs::File::open(&dir).unwrap();
    assert_eq!(bpf::attached_device_programs(&f).unwrap().len(), 1);
    assert_eq!(
        run(
            &mut rm,
            &[
                (c"/dev/null", libc::O_RDWR, 0),
                (c"/dev/zero", libc::O_RDONLY, 0),
                (c"/dev/zero", libc::O_WRONLY, libc::EPERM),
                (c"/dev/full", libc::O_RDONLY, libc::EPERM),
            ]
        ),
        0
    );
}

/// A cgroup that lives only in the cgroup2 hierarchy, as on a pure cgroup2 host: on this
/// hybrid host that exercises the v2 code for freezing, cgroup.kill, eBPF devices, hugetlb,
/// unified keys and missing controllers.
#[test]
fn v2_only_cgroup() {
    require_root!();
    let Some(root) = unified_mountpoint().unwrap() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let name = unique("v2");
    let cg = Cgroup {
        layout: Layout::Unified,
        path: format!("/{name}"),
        v1: BTreeMap::new(),
        v2: Some(root.join(&name)),
    };
    let mut g = Guard::new(cg.clone());
    let mut r = serde_json::json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]});
    let huge = hugepage_sizes().iter().any(|s| s == "2MB")
        && v2::controllers(&root).unwrap().contains("hugetlb");
    if huge {
        r["hugepageLimits"] = serde_json::json!([{"pageSize": "2MB", "limit": 2097152}]);
        r["unified"] = serde_json::json!({"hugetlb.2MB.rsvd.max": "4194304"});
    }
    cg.create(Some(&res(r))).unwrap();
    let d = cg.v2.as_deref().unwrap();
    if huge {
        assert_eq!(read(d, "hugetlb.2MB.max"), "2097152");
        assert_eq!(read(d, "hugetlb.2MB.rsvd.max"), "4194304");
    }

    // A controller that is not in cgroup v2 here: the field is named.
    if !v2::controllers(d).unwrap().contains("pids") {
        let e = cg
            .apply(&res(serde_json::json!({"pids": {"limit": 3}})))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.resources.pids.limit: "), "{e}");
        let e = cg
            .apply(&res(serde_json::json!({"unified": {"pids.max": "3"}})))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.resources.unified.pids.max: "), "{e}");
    }

    let mut k = spawn_sleep();
    g.pids.push(k.id() as i32);
    cg.add_task(k.id() as i32).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![k.id() as i32]);
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    cg.signal_all(libc::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(k.wait().unwrap().signal(), Some(libc::SIGKILL));
    g.pids.clear();
    let _ = cg.stats().unwrap();
    cg.destroy().unwrap();
    assert_gone(&cg);
}

#[test]
fn bad_input_named_and_nothing_left() {
    require_root!();
    let cases = [
        (
            serde_json::json!({"unified": {"../memory.max": "1"}}),
            "linux.resources.unified.",
        ),
        (
            serde_json::json!({"cpu": {"cpus": "abc"}}),
            "linux.resources.cpu.cpus: ",
        ),
        (
            serde_json::json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
            "linux.resources.devices[0].access: ",
        ),
        (
            serde_json::json!({"memory": {"limit": 1048576, "swap": 1}}),
            "linux.resources.memory.",
        ),
    ];
    for (r, want) in cases {
        let cg = Cgroup::new(Some(&format!("/{}/inner", unique("bad"))), "x").unwrap();
        let _g = Guard::new(cg.clone()).with_parents();
        let e = cg.create(Some(&res(r.clone()))).unwrap_err().to_string();
        eprintln!("{e}");
        assert!(e.starts_with(want), "{r}: {e}");
        assert_gone(&cg);
        for d in cg.dirs() {
            assert!(!d.parent().unwrap().exists(), "{} left behind", d.display());
        }
    }
}
