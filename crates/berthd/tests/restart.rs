//! berthd restarts while containers run: they keep running and are re-adopted, and an exit
//! that happened while berthd was down is recorded with its real code.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::process::Command;
use support::*;

#[test]
fn containers_survive_a_killed_daemon() {
    let mut d = Daemon::start();
    d.busybox();
    let counter = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done";
    let mut ids = Vec::new();
    for n in 0..20 {
        let out = d
            .docker(&[
                "run",
                "-d",
                "--name",
                &format!("c{n}"),
                "busybox",
                "sh",
                "-c",
                counter,
            ])
            .ok();
        ids.push(out.stdout.trim().to_string());
    }
    d.docker(&[
        "run",
        "-d",
        "--name",
        "quitter",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 7",
    ])
    .ok();
    let pids: Vec<i64> = ids
        .iter()
        .map(|id| {
            let v: Value = serde_json::from_str(&d.docker(&["inspect", id]).ok().stdout).unwrap();
            v[0]["State"]["Pid"].as_i64().unwrap()
        })
        .collect();
    wait_for("some log lines", || {
        d.docker(&["logs", "c0"])
            .stdout
            .contains("\n5\n")
            .then_some(())
    });
    d.kill(libc::SIGKILL);
    // The quitter exits while nobody watches.
    std::thread::sleep(std::time::Duration::from_secs(4));
    d.spawn();
    let running = d.docker(&["ps", "-q", "--no-trunc"]).ok().stdout;
    let mut running: Vec<&str> = running.split_whitespace().collect();
    running.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(running, want, "all 20 still running after the restart");
    for (id, pid) in ids.iter().zip(&pids) {
        let v: Value = serde_json::from_str(&d.docker(&["inspect", id]).ok().stdout).unwrap();
        assert_eq!(v[0]["State"]["Pid"].as_i64().unwrap(), *pid, "{id}");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    let q: Value = serde_json::from_str(&d.docker(&["inspect", "quitter"]).ok().stdout).unwrap();
    assert_eq!(q[0]["State"]["Status"], "exited");
    assert_eq!(q[0]["State"]["ExitCode"], 7);
    // The log went on while berthd was down: consecutive numbers, none lost or doubled.
    wait_for("more log lines", || {
        let l = d.docker(&["logs", "c0"]).stdout;
        (l.lines().count() > 60).then_some(())
    });
    let logs = d.docker(&["logs", "c0"]).ok().stdout;
    for (i, l) in logs.lines().enumerate() {
        assert_eq!(l, i.to_string(), "line {i} of c0's log");
    }
    // The re-adopted containers still stop and exit as usual.
    d.docker(&["stop", "-t", "0", "c1"]).ok();
    let v: Value = serde_json::from_str(&d.docker(&["inspect", "c1"]).ok().stdout).unwrap();
    assert_eq!(v[0]["State"]["Status"], "exited");
    assert_eq!(v[0]["State"]["ExitCode"], 137);
}

/// An exec root too long for the shims' unix sockets is refused at startup, naming it,
/// instead of failing every container start later.
#[test]
fn too_long_an_exec_root_is_refused_at_startup() {
    setup();
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let long = dir.path().join("x".repeat(80));
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(&long)
            .arg("-H")
            .arg(format!("unix://{}", dir.path().join("d.sock").display()))
            .arg("--bridge")
            .arg("none"),
        None,
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("exec root"), "{out:?}");
    assert!(out.stderr.contains("too long"), "{out:?}");
    assert!(!dir.path().join("d.sock").exists());
}

#[test]
fn directories_without_a_container_are_swept_at_start_up() {
    // A removal writes the record's deletion first and the directories go after the
    // answer; a daemon killed in between leaves them, and the next start removes them.
    let mut d = Daemon::start();
    d.busybox();
    let kept = d
        .docker(&["create", "--name", "kept", "busybox", "true"])
        .ok()
        .stdout
        .trim()
        .to_string();
    d.kill(libc::SIGKILL);
    let orphan = "0123456789abcdef".repeat(4);
    let orphans = [
        d.data_root().join("containers").join(&orphan),
        d.exec_root().join("containers").join(&orphan),
        d.exec_root().join("s").join(&orphan[..16]),
    ];
    for dir in &orphans {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
    }
    d.spawn();
    for dir in &orphans {
        assert!(!dir.exists(), "{} was not swept", dir.display());
    }
    assert!(
        d.data_root().join("containers").join(&kept).is_dir(),
        "a real container's directory was swept"
    );
    d.docker(&["start", "-a", "kept"]).ok();
}
