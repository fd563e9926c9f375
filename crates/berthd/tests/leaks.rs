//! Many run/rm cycles leave nothing behind: no mounts, cgroups, shims, database rows or
//! descriptors, and berthd's memory does not grow.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;

fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
        .filter(|m| m.starts_with(&d))
        .collect()
}

#[test]
fn three_hundred_run_rm_cycles_leave_nothing() {
    let d = Daemon::start();
    d.busybox();
    let cycle = |n: usize| {
        let name = format!("leak{n}");
        let out = d.docker(&["run", "--name", &name, "busybox", "true"]);
        assert_eq!(out.code, 0, "{out:?}");
        let id = d
            .docker(&["inspect", "-f", "{{.Id}}", &name])
            .ok()
            .stdout
            .trim()
            .to_string();
        d.docker(&["rm", &name]).ok();
        id
    };
    for n in 0..50 {
        cycle(n);
    }
    let (rss0, fds0) = (rss_kib(d.pid()), fds(d.pid()));
    let mut ids = Vec::new();
    for n in 50..300 {
        ids.push(cycle(n));
    }
    let (rss1, fds1) = (rss_kib(d.pid()), fds(d.pid()));
    assert!(
        fds1 <= fds0 + 2,
        "berthd's descriptors grew from {fds0} to {fds1}"
    );
    assert!(
        rss1 < rss0 + 8 * 1024,
        "berthd's RSS grew from {rss0} KiB to {rss1} KiB"
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    assert_eq!(mounts_under(d.dir.path()), Vec::<String>::new());
    let veths = run(
        std::process::Command::new("ip").args(["-o", "link", "show", "master", &d.bridge]),
        None,
    )
    .stdout;
    assert_eq!(veths.trim(), "", "veths left on the bridge");
    for id in &ids {
        for ctl in ["memory", "pids", "cpu", "freezer"] {
            let p = format!("/sys/fs/cgroup/{ctl}{}/{id}", d.cgroup_parent());
            assert!(!std::path::Path::new(&p).exists(), "{p} left behind");
        }
    }
    assert_eq!(
        std::fs::read_dir(d.data_root().join("containers"))
            .unwrap()
            .count(),
        0
    );
    let left: Vec<_> = ["containers", "s"]
        .iter()
        .filter_map(|s| std::fs::read_dir(d.exec_root().join(s)).ok())
        .flat_map(|r| r.flatten().map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "runtime directories left: {left:?}");
    // Processes whose command line names our exec root, other than berthd: shims.
    let shims: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| *pid != d.pid())
        .filter_map(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        })
        .filter(|c| c.contains(&*d.exec_root().to_string_lossy()))
        .collect();
    assert!(shims.is_empty(), "shim processes left: {shims:?}");
    let runtime_state: Vec<_> = std::fs::read_dir(d.exec_root().join("runtime"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        runtime_state.iter().all(|p| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))),
        "runtime state left: {runtime_state:?}"
    );
}
