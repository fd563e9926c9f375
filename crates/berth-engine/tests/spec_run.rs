//! The spec builder's output, run for real: a busybox bundle written from a create request
//! and run with the berth-runtime binary, checking what the container sees (user, groups,
//! environment, capabilities, seccomp, masked and read-only paths).
//!
//! Needs root and the runtime binary of this target dir: `cargo build -p berth-runtime`
//! (or `BERTH_RUNTIME=/path/to/berth-runtime`).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_api_types::models::ContainerCreateBody;
use berth_engine::spec::{
    ALL_CAPABILITIES, ContainerFiles, DEFAULT_CAPABILITIES, Host, ImageConfig, JoinKind,
    SpecRequest, build_spec,
};
use serde_json::json;

const BUSYBOX: &str = "/bin/busybox";
/// How long one container run may take before the test gives up (noisy machines).
const TIMEOUT: Duration = Duration::from_secs(120);
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The runtime binary: `$BERTH_RUNTIME`, or the one next to this test's deps directory.
fn runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("berth-runtime"))
        .unwrap();
    assert!(
        candidate.exists(),
        "{} is missing: build it first with `cargo build -p berth-runtime` (same target dir), \
         or set BERTH_RUNTIME",
        candidate.display()
    );
    candidate
}

/// A busybox rootfs: the binary, its applets, passwd and group files.
fn make_rootfs(dir: &Path) {
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
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if !applet.is_empty() && applet != "busybox" {
            symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nwheel:x:10:user\nextra:x:2000:\n",
    )
    .unwrap();
}

/// A container of this test: its bundle and runtime root, deleted (with its cgroup) on drop.
struct Run {
    id: String,
    bundle: tempfile::TempDir,
    root: tempfile::TempDir,
    cgroup: String,
}

impl Run {
    fn new() -> Run {
        let id = format!(
            "berth-test-spec-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = || {
            tempfile::Builder::new()
                .prefix("berth-test-")
                .tempdir()
                .unwrap()
        };
        let bundle = tmp();
        make_rootfs(&bundle.path().join("rootfs"));
        Run {
            cgroup: format!("/berth-test/{id}"),
            id,
            bundle,
            root: tmp(),
        }
    }

    /// Builds the spec for `create` and runs it in the foreground: (exit code, stdout,
    /// stderr).
    fn run(&self, create: serde_json::Value) -> (i32, String, String) {
        let mut create: ContainerCreateBody = serde_json::from_value(create).unwrap();
        create
            .host_config
            .get_or_insert_with(Default::default)
            .cgroup_parent = Some("berth-test".to_string());
        let image = ImageConfig {
            env: vec!["IMAGE_VAR=from-image".into()],
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        };
        let host = Host::detect().unwrap();
        let rootfs = self.bundle.path().join("rootfs");
        let no_join = |_: JoinKind, _: &str| None;
        let built = build_spec(&SpecRequest {
            id: &self.id,
            create: &create,
            image: &image,
            rootfs: &rootfs,
            files: &ContainerFiles::default(),
            init_binary: None,
            network_namespace: None,
            join: &no_join,
            host: &host,
        })
        .unwrap();
        assert_eq!(
            built
                .spec
                .linux()
                .as_ref()
                .unwrap()
                .cgroups_path()
                .as_deref(),
            Some(Path::new(&self.cgroup))
        );
        fs::write(
            self.bundle.path().join("config.json"),
            serde_json::to_vec_pretty(&built.spec).unwrap(),
        )
        .unwrap();

        let mut child = Command::new(runtime())
            .arg("--root")
            .arg(self.root.path())
            .arg("run")
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the container did not finish within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(self.root.path())
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Whatever cgroup directories are left (the runtime removes them on delete).
        if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let dir = e.path().join(self.cgroup.trim_start_matches('/'));
                let _ = fs::remove_dir(&dir);
                let _ = fs::remove_dir(dir.parent().unwrap());
            }
        }
    }
}

/// The value of `key:` in /proc/self/status output.
fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{key} missing in {out}"))
}

/// The capability mask of `names`.
fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| 1u64 << ALL_CAPABILITIES.iter().position(|c| c == n).unwrap())
        .fold(0, |a, b| a | b)
}

/// The script both containers run: what a user would look at.
const SCRIPT: &str = "id -u; id -g; id -G; echo FOO=$FOO; echo IMAGE_VAR=$IMAGE_VAR; \
    echo HOME=$HOME; echo PATH=$PATH; grep -E '^(Cap|Seccomp:|NoNewPrivs)' /proc/self/status; \
    echo timer_list_bytes=$(cat /proc/timer_list | wc -c); \
    (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=writable || echo procsys=readonly; \
    hostname";

#[test]
fn a_default_container_runs_as_specified() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test creates containers: run it as root"
    );
    assert!(Path::new(BUSYBOX).exists(), "{BUSYBOX} is missing");
    // The masked file has content on the host, so an empty read inside means masked.
    assert!(!fs::read("/proc/timer_list").unwrap().is_empty());

    let run = Run::new();
    let (code, out, err) = run.run(json!({
        "User": "user",
        "Env": ["FOO=bar"],
        "Cmd": ["sh", "-c", SCRIPT],
        "Hostname": "specbox",
        "HostConfig": {"GroupAdd": ["extra"]}
    }));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(groups, ["1000", "10", "2000"], "{out}");
    assert!(out.contains("\nFOO=bar\n"), "{out}");
    assert!(out.contains("\nIMAGE_VAR=from-image\n"), "{out}");
    assert!(out.contains("\nHOME=/home/user\n"), "{out}");
    assert!(
        out.contains("\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"),
        "{out}"
    );
    // A non-root user keeps the bounding set only: exec clears its effective set.
    let bnd = u64::from_str_radix(status_field(&out, "CapBnd:"), 16).unwrap();
    assert_eq!(bnd, mask(&DEFAULT_CAPABILITIES), "{out}");
    assert_eq!(status_field(&out, "CapEff:"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "Seccomp:"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0", "{out}");
    assert!(out.contains("\ntimer_list_bytes=0\n"), "{out}");
    assert!(out.contains("\nprocsys=readonly\n"), "{out}");
    assert_eq!(lines.last().copied(), Some("specbox"), "{out}");
}

#[test]
fn root_with_changed_capabilities_and_no_new_privileges() {
    let run = Run::new();
    let (code, out, err) = run.run(json!({
        "Cmd": ["sh", "-c", SCRIPT],
        "HostConfig": {
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["chown", "CAP_KILL"],
            "SecurityOpt": ["no-new-privileges"]
        }
    }));
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let mut want: Vec<&str> = DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .filter(|c| *c != "CAP_CHOWN" && *c != "CAP_KILL")
        .collect();
    want.push("CAP_NET_ADMIN");
    for key in ["CapBnd:", "CapEff:", "CapPrm:"] {
        let v = u64::from_str_radix(status_field(&out, key), 16).unwrap();
        assert_eq!(v, mask(&want), "{key} {out}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1", "{out}");
    assert!(out.starts_with("0\n0\n"), "{out}");
    assert!(out.contains("\nHOME=/root\n"), "{out}");
}
