//! The container lifecycle: create, start, state, kill, delete, run, list, and the errors of
//! each command on containers in the wrong state.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::*;

/// Checks a state document against the OCI state schema (runtime-spec `state-schema.json`):
/// required `ociVersion`, `id`, `status`, `bundle`; `status` one of the spec's values (plus
/// runc's `paused`); `pid` a non-negative integer; `annotations` a map of non-empty string
/// keys to strings.
#[track_caller]
fn assert_oci_state(s: &Value) {
    let o = s.as_object().expect("state is a JSON object");
    for k in ["ociVersion", "id", "status", "bundle"] {
        assert!(o.contains_key(k), "state lacks required {k}: {s}");
    }
    assert!(s["ociVersion"].is_string(), "{s}");
    assert!(s["id"].is_string(), "{s}");
    assert!(s["bundle"].is_string(), "{s}");
    let status = s["status"].as_str().expect("status is a string");
    assert!(
        ["creating", "created", "running", "stopped", "paused"].contains(&status),
        "{s}"
    );
    if let Some(pid) = o.get("pid") {
        assert!(pid.as_u64().is_some(), "pid must be an integer >= 0: {s}");
    }
    if let Some(a) = o.get("annotations") {
        for (k, v) in a.as_object().expect("annotations is an object") {
            assert!(
                !k.is_empty() && v.is_string(),
                "annotations must map strings to strings: {s}"
            );
        }
    }
}

#[test]
fn create_start_kill_delete() {
    let mut c = Ctr::new(
        "life",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo started; while :; do sleep 1; done",
        ],
    );
    c.spec["annotations"] = json!({"org.example.key": "value"});
    let pid_file = c.bundle().join("init.pid");
    c.create_with(&["--pid-file", pid_file.to_str().unwrap()])
        .ok();

    let s = c.state();
    assert_oci_state(&s);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], c.id.as_str());
    assert_eq!(s["bundle"], c.bundle().to_str().unwrap());
    assert_eq!(s["annotations"]["org.example.key"], "value");
    let pid = s["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Created but not started: the program has not run yet.
    assert!(!c.console().contains("started"));
    // The init is in the container's cgroup.
    let procs = std::fs::read_to_string(c.v1("memory").join("cgroup.procs")).unwrap();
    assert!(
        procs.split_whitespace().any(|p| p == pid.to_string()),
        "{procs}"
    );

    c.start().ok();
    c.wait_console("started");
    let s = c.state();
    assert_oci_state(&s);
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"].as_i64().unwrap(), pid);

    c.rt(&["kill", &c.id]).ok(); // TERM by default
    c.wait_status("stopped");
    let s = c.state();
    assert_oci_state(&s);
    assert_eq!(s["pid"], 0, "a stopped container reports pid 0");

    c.rt(&["delete", &c.id]).ok();
    assert!(!c.state_dir().exists());
    for d in c.cgroup_dirs() {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    c.rt(&["state", &c.id]).fails_with(&["does not exist"]);
}

#[test]
fn run_propagates_exit_codes() {
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("echo out; echo err >&2; exit 42", 42),
    ] {
        let mut c = Ctr::new("exit", &["sh", "-c", script]);
        let o = c.run();
        assert_eq!(o.code, code, "{script}: {o:?}");
        if code == 42 {
            assert_eq!(o.stdout, "out\n");
            assert!(o.stderr.contains("err"), "{o:?}");
        }
        // `run` deletes the container when it exits.
        assert!(!c.state_dir().exists());
        for d in c.cgroup_dirs() {
            assert!(!d.exists(), "{} left after run", d.display());
        }
    }
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    // Without a pid namespace of its own the program is not a namespace init, so a signal
    // it sends itself kills it.
    let mut c = Ctr::new("sig", &["sh", "-c", "kill -KILL $$"]);
    let ns = c.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    assert_eq!(c.run().code, 128 + 9);

    let mut c = Ctr::new("sig", &["sh", "-c", "kill -TERM $$; sleep 10"]);
    let ns = c.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    assert_eq!(c.run().code, 128 + 15);
}

#[test]
fn run_detached_keeps_running() {
    let mut c = Ctr::new("detach", &["sh", "-c", "echo up; exec sleep 1000"]);
    c.run_detached().ok();
    c.wait_console("up");
    let s = c.state();
    assert_eq!(s["status"], "running");
    assert!(s["pid"].as_i64().unwrap() > 0);
    c.rt(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    c.rt(&["delete", &c.id]).ok();
    assert!(!c.state_dir().exists());
}

#[test]
fn container_that_exits_by_itself_is_stopped() {
    let mut c = Ctr::new("selfexit", &["true"]);
    c.create_start();
    c.wait_status("stopped");
    c.rt(&["delete", &c.id]).ok();
    assert!(!c.state_dir().exists());
}

#[test]
fn commands_on_a_missing_container_fail() {
    let c = Ctr::new("missing", &["true"]);
    for cmd in [
        "state", "start", "delete", "kill", "pause", "resume", "ps", "exec",
    ] {
        let mut args = vec![cmd, c.id.as_str()];
        if cmd == "exec" {
            args.push("true");
        }
        let o = c.rt(&args);
        assert_eq!(o.code, 1, "{cmd}: {o:?}");
        assert!(
            o.stderr
                .contains(&format!("container {} does not exist", c.id)),
            "{cmd}: {o:?}"
        );
    }
    // delete --force of nothing is not an error (runc's behaviour, which engines rely on).
    c.rt(&["delete", "--force", &c.id]).ok();
    // An id that could escape the root is refused.
    c.rt(&["state", "../x"])
        .fails_with(&["invalid container id"]);
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_survives() {
    let mut a = Ctr::new("dup", &["sleep", "1000"]);
    a.create();
    let pid = a.pid();
    let b = Ctr::sharing_root(&a, "dup", &["true"]);
    b.write_config();
    // Not through b's guard: it must not delete a's container afterwards.
    let o = run_cmd(
        b.cmd()
            .args(["create", "--bundle"])
            .arg(b.bundle())
            .arg(&a.id),
        None,
    );
    o.fails_with(&["already exists"]);
    for d in b.cgroup_dirs() {
        assert!(!d.exists(), "the refused create left {}", d.display());
    }
    let s = a.state();
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"].as_i64().unwrap() as i32, pid);
    assert_eq!(s["bundle"], a.bundle().to_str().unwrap());
}

#[test]
fn start_twice_and_start_of_stopped_fail() {
    let mut c = Ctr::new("start2", &["sleep", "1000"]);
    c.create_start();
    c.rt(&["start", &c.id]).fails_with(&["running"]);
    assert_eq!(c.status(), "running");
    c.rt(&["kill", &c.id, "9"]).ok();
    c.wait_status("stopped");
    c.rt(&["start", &c.id]).fails_with(&["stopped"]);
    c.rt(&["kill", &c.id, "9"]).fails_with(&["stopped"]);
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let mut c = Ctr::new("delrun", &["sleep", "1000"]);
    c.create_start();
    let pid = c.pid();
    c.rt(&["delete", &c.id]).fails_with(&["running", "--force"]);
    assert_eq!(c.status(), "running");
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(!c.state_dir().exists());
    wait_for("the init to be gone", || {
        reap_orphans();
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    for d in c.cgroup_dirs() {
        assert!(!d.exists(), "{} left after delete --force", d.display());
    }
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let mut c = Ctr::new("delcreated", &["sh", "-c", "echo ran"]);
    c.create();
    let pid = c.pid();
    c.rt(&["delete", &c.id]).ok();
    assert!(!c.state_dir().exists());
    wait_for("the init to be gone", || {
        reap_orphans();
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(
        !c.console().contains("ran"),
        "the program of a deleted container must never run"
    );
}

#[test]
fn list_formats() {
    let mut a = Ctr::new("lista", &["sleep", "1000"]);
    a.create();
    let mut b = Ctr::sharing_root(&a, "listb", &["sleep", "1000"]);
    b.create_start();

    let o = a.rt(&["list"]).ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", o.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row = |id: &str| -> Vec<String> {
        lines
            .iter()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let ra = row(&a.id);
    assert_eq!(ra[1], a.pid().to_string());
    assert_eq!(ra[2], "created");
    assert_eq!(ra[3], a.bundle().to_str().unwrap());
    assert_eq!(ra[5], "root");
    assert_eq!(row(&b.id)[2], "running");

    let o = a.rt(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for s in arr {
        assert_oci_state(s);
    }
    let find = |id: &str| arr.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(find(&a.id)["status"], "created");
    assert_eq!(find(&b.id)["status"], "running");
    assert_eq!(find(&b.id)["pid"].as_i64().unwrap() as i32, b.pid());

    let o = a.rt(&["list", "-q"]).ok();
    let mut ids: Vec<&str> = o.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_of_an_empty_root() {
    let c = Ctr::new("empty", &["true"]);
    let o = c.rt(&["list", "-q"]).ok();
    assert_eq!(o.stdout, "");
    let o = c.rt(&["list", "--format", "json"]).ok();
    assert_eq!(serde_json::from_str::<Value>(&o.stdout).unwrap(), json!([]));
}

#[test]
fn kill_with_all_signals_every_process() {
    // Without a pid namespace, killing the init alone would leave the background sleeper.
    let mut c = Ctr::new("killall", &["sh", "-c", "sleep 1000 & echo bg; wait"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    c.create_start();
    c.wait_console("bg");
    let procs = c.v1("pids").join("cgroup.procs");
    wait_for("two processes", || {
        (std::fs::read_to_string(&procs)
            .unwrap()
            .split_whitespace()
            .count()
            == 2)
            .then_some(())
    });
    let o = c.rt(&["ps", "--format", "json", &c.id]).ok();
    assert_eq!(
        serde_json::from_str::<Vec<i32>>(&o.stdout).unwrap().len(),
        2
    );
    c.rt(&["kill", "--all", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    wait_for("an empty cgroup", || {
        reap_orphans();
        std::fs::read_to_string(&procs)
            .unwrap()
            .trim()
            .is_empty()
            .then_some(())
    });
}

#[test]
fn kill_refuses_an_unknown_signal() {
    let mut c = Ctr::new("badsig", &["sleep", "1000"]);
    c.create_start();
    c.rt(&["kill", &c.id, "NOPE"])
        .fails_with(&["unknown signal"]);
    assert_eq!(c.status(), "running");
}
