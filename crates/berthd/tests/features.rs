//! Container features through the docker CLI: restart policies, wait, logs -f, events,
//! stats, top, update, rename, signals, and the run options that shape the container.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["inspect", name]).ok();
    serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    wait_for("two restarts, then rest", || {
        let i = inspect(&d, "flaky");
        (i["RestartCount"] == 2 && i["State"]["Status"] == "exited").then_some(())
    });
    assert_eq!(inspect(&d, "flaky")["State"]["ExitCode"], 3);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let pid1 = inspect(&d, "phoenix")["State"]["Pid"].as_i64().unwrap();
    d.docker(&["kill", "phoenix"]).ok();
    let pid2 = wait_for("a restart after kill", || {
        let i = inspect(&d, "phoenix");
        let p = i["State"]["Pid"].as_i64().unwrap();
        (i["State"]["Status"] == "running" && p != pid1 && p != 0).then_some(p)
    });
    assert!(std::path::Path::new(&format!("/proc/{pid2}")).exists());
    // stop is final: no restart.
    d.docker(&["stop", "-t", "0", "phoenix"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(inspect(&d, "phoenix")["State"]["Status"], "exited");
}

#[test]
fn wait_logs_follow_events_and_signals() {
    let d = Daemon::start();
    d.busybox();
    let since = d.docker(&["version", "-f", "{{.Server.Version}}"]).ok();
    assert!(!since.stdout.trim().is_empty());
    d.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo n$i; sleep 0.2; done; exit 5",
    ])
    .ok();
    // logs -f returns when the container exits, with everything.
    let logs = d.docker(&["logs", "-f", "counter"]).ok();
    assert_eq!(logs.stdout, "n1\nn2\nn3\n");
    let w = d.docker(&["wait", "counter"]).ok();
    assert_eq!(w.stdout.trim(), "5");
    let ts = d
        .docker(&["logs", "-t", "--tail", "1", "counter"])
        .ok()
        .stdout;
    assert!(
        ts.ends_with(" n3\n") && ts.contains('T') && ts.contains('Z'),
        "{ts}"
    );
    // `--until 0s` is now in whole seconds (the CLI drops the fraction): let this second end.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ev = d
        .docker(&[
            "events",
            "--since",
            "5m",
            "--until",
            "0s",
            "--filter",
            "container=counter",
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .stdout;
    let actions: Vec<&str> = ev.lines().collect();
    for a in ["create", "start", "die"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // A trapped signal reaches the process.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got USR1; exit 0' USR1; while true; do sleep 0.1; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.docker(&["kill", "-s", "USR1", "trap"]).ok();
    assert_eq!(d.docker(&["wait", "trap"]).ok().stdout.trim(), "0");
    assert!(d.docker(&["logs", "trap"]).ok().stdout.contains("got USR1"));
    let out = d.docker(&["kill", "trap"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("is not running"), "{out:?}");
}

#[test]
fn stats_top_update_rename() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000",
    ])
    .ok();
    let st = d
        .docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}}|{{.PIDs}}",
            "busy",
        ])
        .ok()
        .stdout;
    assert!(st.contains("/ 64MiB"), "{st}");
    // sh runs the last command with exec: two sleeps.
    assert_eq!(st.trim().rsplit('|').next(), Some("2"), "{st}");
    let top = d.docker(&["top", "busy"]).ok().stdout;
    assert_eq!(
        top.lines().filter(|l| l.contains("sleep 1000")).count(),
        2,
        "{top}"
    );
    d.docker(&["update", "--memory", "96m", "--memory-swap", "96m", "busy"])
        .ok();
    let lim = d
        .docker(&[
            "exec",
            "busy",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
        .ok()
        .stdout;
    assert_eq!(lim.trim(), (96u64 << 20).to_string());
    assert_eq!(inspect(&d, "busy")["HostConfig"]["Memory"], 96 << 20);
    d.docker(&["rename", "busy", "renamed"]).ok();
    assert_eq!(inspect(&d, "renamed")["Name"], "/renamed");
    let out = d.docker(&["inspect", "busy"]);
    assert_ne!(out.code, 0);
}

#[test]
fn run_options_shape_the_container() {
    let d = Daemon::start();
    d.busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from the host").unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    let out = d
        .docker(&[
            "run", "--rm", "-v", &bind, "--tmpfs", "/scratch", "--read-only", "-u", "65534", "-w", "/data",
            "-e", "A=1", "--hostname", "box", "--cap-drop", "ALL", "--network", "none", "busybox", "sh", "-c",
            "cat in.txt; echo; id -u; echo $A; hostname; touch /x 2>&1 | grep -c Read-only; touch /scratch/y && echo tmpfs-ok; grep CapEff /proc/self/status; ls /sys/class/net",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from the host", "{out}");
    assert_eq!(lines[1], "65534");
    assert_eq!(lines[2], "1");
    assert_eq!(lines[3], "box");
    assert_eq!(lines[4], "1", "the root filesystem is read-only: {out}");
    assert_eq!(lines[5], "tmpfs-ok");
    assert_eq!(lines[6], "CapEff:\t0000000000000000");
    assert_eq!(lines[7..], ["lo"], "--network none: only loopback");
    let out = d
        .docker(&["run", "--rm", "--network", "host", "busybox", "hostname"])
        .ok()
        .stdout;
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(out.trim(), host_name.trim());
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        ])
        .ok()
        .stdout;
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["20", "50000"]);
}

#[test]
fn init_runs_as_pid_1_and_forwards_signals() {
    if !std::path::Path::new("/usr/bin/tini-static").exists()
        && !std::path::Path::new("/usr/bin/tini").exists()
    {
        eprintln!("skipping: no tini installed (apt-get install tini)");
        return;
    }
    let d = Daemon::start();
    d.busybox();
    let ps = d
        .docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"])
        .ok()
        .stdout;
    let first = ps.lines().nth(1).unwrap_or("");
    assert!(first.trim().starts_with("1 /sbin/docker-init"), "{ps}");
    d.docker(&[
        "run", "-d", "--name", "inited", "--init", "busybox", "sleep", "1000",
    ])
    .ok();
    let t = std::time::Instant::now();
    d.docker(&["stop", "inited"]).ok();
    // sleep as pid 1 would ignore TERM and take the 10 s timeout; under the init it dies.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(inspect(&d, "inited")["State"]["ExitCode"], 143);
}

#[test]
fn stats_and_top_follow_a_cgroup_parent() {
    let d = Daemon::start();
    d.busybox();
    let parent = format!("/berth-test-{}", d.table);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "parented",
        "--cgroup-parent",
        &parent,
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    let pid = inspect(&d, "parented")["State"]["Pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{parent}/")), "{cg}");
    let top = d.docker(&["top", "parented"]).ok().stdout;
    assert!(top.contains("sleep 1000"), "{top}");
    let st = d
        .docker(&["stats", "--no-stream", "--format", "{{.PIDs}}", "parented"])
        .ok()
        .stdout;
    assert_eq!(st.trim(), "1");
    d.docker(&["rm", "-f", "parented"]).ok();
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(ctl.path().join(parent.trim_start_matches('/')));
    }
}
