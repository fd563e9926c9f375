//! berthd end to end: the real docker CLI against a private berthd.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["inspect", name]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v[0].clone()
}

#[test]
fn run_echo_and_exit_codes() {
    let d = Daemon::start();
    d.busybox();
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello"]).ok();
    assert_eq!(out.stdout, "hello\n");
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("oops"), "{out:?}");
    // --rm removed both containers.
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    let out = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(out.code, 127, "{out:?}");
    let out = d.docker(&["run", "--rm", "nosuchimage"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("No such image"), "{out:?}");
}

#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    d.busybox();
    let id = d
        .docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .ok()
        .stdout;
    assert!(ps.starts_with("web Up"), "{ps}");
    let i = inspect(&d, "web");
    assert_eq!(i["State"]["Status"], "running");
    let pid = i["State"]["Pid"].as_i64().unwrap();
    // A real host process, in berth's cgroup for this container.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{}/{id}", d.cgroup_parent())), "{cg}");
    wait_for("log lines", || {
        let l = d.docker(&["logs", "web"]).stdout;
        l.contains("line 3").then_some(())
    });
    let host = d
        .docker(&["exec", "web", "cat", "/etc/hostname"])
        .ok()
        .stdout;
    assert_eq!(host.trim(), &id[..12]);
    let out = d.docker(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7);
    d.docker(&["pause", "web"]).ok();
    assert_eq!(inspect(&d, "web")["State"]["Status"], "paused");
    d.docker(&["unpause", "web"]).ok();
    let t = std::time::Instant::now();
    d.docker(&["stop", "-t", "1", "web"]).ok();
    assert!(t.elapsed().as_secs() < 15);
    let i = inspect(&d, "web");
    assert_eq!(i["State"]["Status"], "exited");
    assert_eq!(
        i["State"]["ExitCode"], 137,
        "sh ignores TERM as pid 1: killed after the timeout"
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = d.docker(&["rm", "web"]).ok();
    assert_eq!(out.stdout.trim(), "web");
    let out = d.docker(&["rm", "web"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("No such container: web"), "{out:?}");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let d = Daemon::start();
    d.busybox();
    let (code, body) = d.request(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"Bogus":1}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Bogus"), "{body}");
    let (code, body) = d.request("POST", "/v1.50/containers/create", Some("{not json"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.request(
        "POST",
        "/v1.50/containers/create?name=bad%2Fname",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.request(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"StorageOpt":{"size":"1G"}}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("StorageOpt"), "{body}");
    // A link to a container that does not exist.
    let (code, body) = d.request(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Links":["db:db"]}}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("could not get container for db"), "{body}");
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    let n = std::fs::read_dir(d.data_root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(n, 0, "container directories left behind");
    assert_eq!(d.get("/_ping").0, 200, "berthd is still up");
}

#[test]
fn berth_cli_end_to_end() {
    let d = Daemon::start();
    let out = d.berth(&["image", "bootstrap", "busybox"]).ok();
    assert!(
        out.stdout.contains("Tagged busybox:latest as sha256:"),
        "{out:?}"
    );
    let out = d.berth(&["run", "--rm", "busybox", "echo", "hello"]).ok();
    assert_eq!(out.stdout, "hello\n");
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(out.code, 4, "{out:?}");
    let id = d
        .berth(&[
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "GREETING=hi there",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING; sleep 1000",
        ])
        .ok()
        .stdout;
    assert_eq!(id.trim().len(), 64);
    let ps = d
        .berth(&["ps", "--format", "{{.Names}}\t{{.Image}}"])
        .ok()
        .stdout;
    assert_eq!(ps.trim(), "web\tbusybox");
    wait_for("the greeting", || {
        d.berth(&["logs", "web"])
            .stdout
            .contains("hi there")
            .then_some(())
    });
    let out = d.berth(&["exec", "web", "sh", "-c", "echo $GREETING"]).ok();
    assert_eq!(out.stdout.trim(), "hi there");
    // Both CLIs see the same daemon.
    let names = d.docker(&["ps", "--format", "{{.Names}}"]).ok().stdout;
    assert_eq!(names.trim(), "web");
    d.berth(&["rm", "-f", "web"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.trim(), "");
    let out = d.berth(&["image", "bootstrap", "nosuch"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("nosuch"), "{out:?}");
}
