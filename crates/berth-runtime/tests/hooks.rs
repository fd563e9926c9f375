//! OCI hooks: all six kinds, in order, with the state on stdin, in the right namespaces;
//! failures and timeouts abort `create` without leaving anything behind.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use support::*;

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that records its stdin, its mount namespace and its turn in `dir` (as seen by the
/// hook: startContainer runs inside the container, where `dir` is bind-mounted at /hooks).
fn recording_hook(kind: &str, dir: &str, sh: &str) -> Value {
    // busybox (in the container) picks its applet by argv[0]: keep "sh" there.
    let argv0 = if kind == "startContainer" {
        "sh"
    } else {
        "hook-argv0"
    };
    let script = format!(
        "cat > {dir}/{kind}.json; readlink /proc/self/ns/mnt > {dir}/{kind}.mnt; echo {kind} >> {dir}/order; echo $(tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1) $0 $HOOK_ENV > {dir}/{kind}.args"
    );
    json!({"path": sh, "args": [argv0, "-c", script, "first-arg"], "env": ["PATH=/usr/bin:/bin", format!("HOOK_ENV={kind}-env")]})
}

#[test]
fn all_hooks_run_in_order_with_state_and_namespaces() {
    let host = temp_dir();
    let h = host.path().to_str().unwrap().to_string();
    let mut c = Ctr::new("hooks", &["sh", "-c", "echo running; sleep 1000"]);
    c.add_mount(
        json!({"destination": "/hooks", "type": "bind", "source": h, "options": ["rbind", "rw"]}),
    );
    let mut hooks = json!({});
    for k in KINDS {
        let (dir, sh) = if k == "startContainer" {
            ("/hooks", "/bin/sh")
        } else {
            (h.as_str(), "/bin/sh")
        };
        hooks[k] = json!([recording_hook(k, dir, sh)]);
    }
    c.spec["hooks"] = hooks;
    c.create();
    let pid = c.pid();
    let read = |name: &str| fs::read_to_string(host.path().join(name)).unwrap_or_default();
    assert_eq!(
        read("order"),
        "prestart\ncreateRuntime\ncreateContainer\n",
        "after create"
    );

    c.start().ok();
    c.wait_console("running");
    wait_for("poststart", || {
        host.path().join("poststart.json").exists().then_some(())
    });
    assert_eq!(
        read("order"),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\n"
    );

    let container_mnt = ns_id(&format!("/proc/{pid}/ns/mnt"));
    let host_mnt = ns_id("/proc/self/ns/mnt");
    assert_ne!(container_mnt, host_mnt);

    c.rt(&["delete", "--force", &c.id]).ok();
    assert_eq!(
        read("order"),
        KINDS.iter().map(|k| format!("{k}\n")).collect::<String>()
    );

    for k in KINDS {
        let state: Value = serde_json::from_str(&read(&format!("{k}.json")))
            .unwrap_or_else(|e| panic!("{k}: {e}: {}", read(&format!("{k}.json"))));
        assert_eq!(state["id"], c.id.as_str(), "{k}: {state}");
        assert_eq!(
            state["bundle"],
            c.bundle().to_str().unwrap(),
            "{k}: {state}"
        );
        assert!(state["ociVersion"].is_string(), "{k}: {state}");
        let want_status: &[&str] = match k {
            "prestart" => &["created"],
            "createRuntime" | "createContainer" => &["creating", "created"],
            "startContainer" | "poststart" => &["running"],
            _ => &["stopped"],
        };
        assert!(
            want_status.contains(&state["status"].as_str().unwrap()),
            "{k}: {state}"
        );
        if k != "poststop" {
            assert_eq!(state["pid"].as_i64().unwrap() as i32, pid, "{k}: {state}");
        }
        let mnt = read(&format!("{k}.mnt"));
        let want_mnt = if matches!(k, "createContainer" | "startContainer") {
            &container_mnt
        } else {
            &host_mnt
        };
        assert_eq!(mnt.trim(), want_mnt, "{k} ran in the wrong mount namespace");
        // Args (after argv[0]) and env reach every hook; argv[0] itself is checked where the
        // hook's /proc is its own pid namespace's (not in createContainer, which runs in the
        // container's pid namespace with the host's /proc still mounted).
        let args = read(&format!("{k}.args"));
        assert!(
            args.trim().ends_with(&format!("first-arg {k}-env")),
            "{k}: args and env: {args}"
        );
        match k {
            "createContainer" => {}
            "startContainer" => assert!(args.starts_with("sh "), "{k}: {args}"),
            _ => assert!(args.starts_with("hook-argv0 "), "{k}: {args}"),
        }
    }
}

#[test]
fn failing_create_runtime_hook_aborts_create_and_leaves_nothing() {
    let host = temp_dir();
    let mut c = Ctr::new("hookfail", &["true"]);
    c.spec["hooks"] = json!({
        "createRuntime": [
            {"path": "/bin/true"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo broken hook >&2; exit 3"]},
        ],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}/poststop", host.path().display())]}],
    });
    c.create_with(&[]).fails_with(&[
        "hooks.createRuntime[1]",
        "/bin/sh",
        "exited with status 3",
        "broken hook",
    ]);
    assert_nothing_left(&c);
}

#[test]
fn failing_create_container_hook_aborts_create() {
    let mut c = Ctr::new("hookfail2", &["true"]);
    c.spec["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]});
    c.create_with(&[])
        .fails_with(&["hooks.createContainer[0]", "/bin/false", "status 1"]);
    assert_nothing_left(&c);
}

#[test]
fn missing_hook_binary_fails_naming_it() {
    let mut c = Ctr::new("hookmissing", &["true"]);
    c.spec["hooks"] = json!({"prestart": [{"path": "/no/such/hook"}]});
    c.create_with(&[])
        .fails_with(&["hooks.prestart[0]", "/no/such/hook"]);
    assert_nothing_left(&c);
}

#[test]
fn hook_timeout() {
    let host = temp_dir();
    let marker = host.path().join("hook-pid");
    let mut c = Ctr::new("hooktimeout", &["true"]);
    let script = format!("echo $$ > {}; exec sleep 600", marker.display());
    c.spec["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 1}]});
    c.create_with(&[])
        .fails_with(&["hooks.createRuntime[0]", "timed out after 1s"]);
    assert_nothing_left(&c);
    // The hook itself was killed.
    let pid = fs::read_to_string(&marker).unwrap().trim().to_string();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the timed-out hook {pid} still runs"
    );
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    let mut c = Ctr::new("hookwarn", &["sh", "-c", "echo alive; sleep 1000"]);
    c.spec["hooks"] =
        json!({"poststart": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]});
    c.create();
    c.start().ok();
    c.wait_console("alive");
    assert_eq!(c.status(), "running");
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(!c.state_dir().exists());
}

#[test]
fn start_container_hook_failure_stops_the_program() {
    let mut c = Ctr::new("hookstart", &["sh", "-c", "echo program-ran"]);
    c.spec["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]});
    c.create();
    c.start()
        .fails_with(&["hooks.startContainer[0]", "status 5"]);
    assert!(!c.console().contains("program-ran"));
}

#[test]
fn run_runs_poststop_when_the_container_exits() {
    let host = temp_dir();
    let mut c = Ctr::new("hookrun", &["true"]);
    c.spec["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/state", host.path().display())]}]});
    c.run().ok();
    let state: Value =
        serde_json::from_str(&fs::read_to_string(host.path().join("state")).unwrap()).unwrap();
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["id"], c.id.as_str());
}
