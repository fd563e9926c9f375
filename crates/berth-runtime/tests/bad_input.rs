//! Bad configs and arguments: each is refused with an error naming the field at fault, and
//! afterwards nothing of the container is left (state directory, cgroups, mounts, processes).
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::*;

/// Creates a container whose config `edit` spoils; asserts the error names every needle and
/// that nothing is left behind.
#[track_caller]
fn refused(name: &str, edit: impl FnOnce(&mut Ctr), needles: &[&str]) {
    let mut c = Ctr::new(name, &["true"]);
    edit(&mut c);
    c.create_with(&[]).fails_with(needles);
    assert_nothing_left(&c);
    // `run` takes the same path and must refuse just the same.
    let o = c.run_with(&[]);
    o.fails_with(needles);
    assert_nothing_left(&c);
}

fn write_raw(c: &Ctr, data: &str) {
    std::fs::write(c.bundle().join("config.json"), data).unwrap();
}

#[test]
fn malformed_json() {
    let c = Ctr::new("badjson", &["true"]);
    write_raw(&c, "{\"ociVersion\": \"1.0.0\", \"process\": ");
    let o = run_cmd(
        c.cmd()
            .args(["create", "--bundle"])
            .arg(c.bundle())
            .arg(&c.id),
        None,
    );
    o.fails_with(&["config.json", "EOF"]);
    assert_nothing_left(&c);

    write_raw(
        &c,
        r#"{"ociVersion": "1.0.0", "process": {"args": "sh", "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#,
    );
    let o = run_cmd(
        c.cmd()
            .args(["create", "--bundle"])
            .arg(c.bundle())
            .arg(&c.id),
        None,
    );
    o.fails_with(&["config.json", "process.args"]);
    assert_nothing_left(&c);
}

#[test]
fn missing_config() {
    let c = Ctr::new("noconfig", &["true"]);
    let o = run_cmd(
        c.cmd()
            .args(["create", "--bundle"])
            .arg(c.bundle())
            .arg(&c.id),
        None,
    );
    o.fails_with(&["config.json", "No such file"]);
    assert_nothing_left(&c);
}

#[test]
fn unsupported_oci_version() {
    refused(
        "badversion",
        |c| c.spec["ociVersion"] = json!("1.4.0"),
        &["ociVersion", "1.4.0"],
    );
}

#[test]
fn missing_rootfs() {
    refused(
        "norootfs",
        |c| c.spec["root"]["path"] = json!("no-such-rootfs"),
        &["root.path", "no-such-rootfs"],
    );
}

#[test]
fn bind_source_that_does_not_exist() {
    // This one fails inside the container's init, after the cgroup and namespaces exist.
    refused(
        "nobindsrc",
        |c| {
            c.add_mount(json!({"destination": "/data", "type": "bind", "source": "/nonexistent/berth-test", "options": ["rbind"]}))
        },
        &["mounts[7]", "/nonexistent/berth-test", "No such file"],
    );
}

#[test]
fn soft_rlimit_above_hard() {
    refused(
        "badrlimit",
        |c| {
            c.spec["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}])
        },
        &[
            "process.rlimits[0]",
            "soft limit 2048 exceeds hard limit 1024",
        ],
    );
}

#[test]
fn unknown_rlimit_type() {
    refused(
        "badrlimittype",
        |c| c.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
        &["process.rlimits[0].type", "RLIMIT_BOGUS"],
    );
}

#[test]
fn duplicate_namespace() {
    refused(
        "dupns",
        |c| {
            c.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "network"}))
        },
        &["linux.namespaces[6].type", "duplicate", "net"],
    );
}

#[test]
fn unknown_namespace_type() {
    refused(
        "badns",
        |c| {
            c.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "bogus"}))
        },
        &["linux.namespaces[6].type", "bogus"],
    );
}

#[test]
fn relative_namespace_path() {
    refused(
        "relns",
        |c| c.spec["linux"]["namespaces"][1] = json!({"type": "network", "path": "proc/1/ns/net"}),
        &["linux.namespaces[1].path", "absolute"],
    );
}

#[test]
fn non_namespaced_sysctl() {
    refused(
        "badsysctl",
        |c| c.spec["linux"]["sysctl"] = json!({"vm.swappiness": "10"}),
        &["linux.sysctl.vm.swappiness"],
    );
}

#[test]
fn seccomp_unknown_action() {
    refused(
        "badseccomp",
        |c| {
            c.spec["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}],
            })
        },
        &["linux.seccomp.syscalls[0].action", "SCMP_ACT_EXPLODE"],
    );
}

#[test]
fn seccomp_unknown_syscall_name_in_a_rule() {
    // An unknown syscall name is skipped (runc does the same); the rest still applies.
    let mut c = Ctr::new("seccompname", &["sh", "-c", "mkdir /tmp/x || echo refused"]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    });
    assert_eq!(c.run().ok().stdout, "refused\n");
}

#[test]
fn empty_args() {
    refused(
        "noargs",
        |c| c.spec["process"]["args"] = json!([]),
        &["process.args", "must not be empty"],
    );
}

#[test]
fn relative_cwd() {
    refused(
        "relcwd",
        |c| c.spec["process"]["cwd"] = json!("tmp"),
        &["process.cwd", "absolute"],
    );
}

#[test]
fn env_without_equals() {
    refused(
        "badenv",
        |c| c.spec["process"]["env"] = json!(["PATH=/bin", "JUSTANAME"]),
        &["process.env[1]", "JUSTANAME"],
    );
}

#[test]
fn id_maps_without_a_user_namespace() {
    refused(
        "mapsnouserns",
        |c| c.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
        &["linux.uidMappings", "no user namespace"],
    );
}

#[test]
fn user_namespace_without_maps() {
    refused(
        "usernsnomaps",
        |c| {
            c.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}))
        },
        &["linux.uidMappings"],
    );
}

#[test]
fn cgroups_path_escaping_its_base() {
    refused(
        "badcgpath",
        |c| c.spec["linux"]["cgroupsPath"] = json!("/berth-test/../../etc"),
        &["cgroupsPath", ".."],
    );
}

#[test]
fn unknown_rootfs_propagation() {
    refused(
        "badprop",
        |c| c.spec["linux"]["rootfsPropagation"] = json!("sideways"),
        &["linux.rootfsPropagation", "sideways"],
    );
}

#[test]
fn relative_device_path() {
    refused(
        "reldev",
        |c| {
            c.spec["linux"]["devices"] =
                json!([{"path": "dev/x", "type": "c", "major": 1, "minor": 3}])
        },
        &["linux.devices[0].path", "absolute"],
    );
}

#[test]
fn unknown_capability() {
    refused(
        "badcap",
        |c| c.spec["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_MAKE_COFFEE"]),
        &["process.capabilities.bounding", "CAP_MAKE_COFFEE"],
    );
}

#[test]
fn oom_score_adj_out_of_range() {
    refused(
        "badoom",
        |c| c.spec["process"]["oomScoreAdj"] = json!(1001),
        &["process.oomScoreAdj", "1001"],
    );
}

#[test]
fn invalid_container_id() {
    let c = Ctr::new("badid", &["true"]);
    c.write_config();
    for id in ["a/b", "..", "with space"] {
        let o = run_cmd(
            c.cmd().args(["create", "--bundle"]).arg(c.bundle()).arg(id),
            None,
        );
        o.fails_with(&["invalid container id"]);
    }
    let entries: Vec<_> = std::fs::read_dir(c.root_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".seccomp-cache")
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn failing_program_lookup_leaves_nothing() {
    refused(
        "noprog",
        |c| c.spec["process"]["args"] = json!(["/bin/not-there"]),
        &["/bin/not-there"],
    );
}

#[test]
fn a_failed_create_can_be_retried_with_the_same_id() {
    let mut c = Ctr::new("retry", &["sh", "-c", "echo second-try"]);
    c.add_mount(json!({"destination": "/data", "type": "bind", "source": "/nonexistent/berth-test", "options": ["rbind"]}));
    c.create_with(&[]).failed();
    c.spec["mounts"].as_array_mut().unwrap().pop();
    c.create();
    c.start().ok();
    c.wait_console("second-try");
}

/// A container whose cgroup is another's is refused before anything is done to the cgroup:
/// undoing a failed create must never kill (or re-limit) someone else's processes.
#[test]
fn a_cgroup_in_use_is_refused() {
    let mut good = Ctr::new("bystander", &["sleep", "1000"]);
    good.spec["linux"]["resources"]["pids"] = json!({"limit": 100});
    good.create_start();
    let mut bad = Ctr::sharing_root(&good, "intruder", &["true"]);
    let own = bad.spec["linux"]["cgroupsPath"].clone();
    bad.spec["linux"]["cgroupsPath"] = good.spec["linux"]["cgroupsPath"].clone();
    bad.spec["linux"]["resources"]["pids"] = json!({"limit": 5});
    // Even a config that would fail late, inside the init.
    bad.add_mount(json!({"destination": "/data", "type": "bind", "source": "/nonexistent/berth-test", "options": ["rbind"]}));
    bad.create_with(&[])
        .fails_with(&["linux.cgroupsPath", "not empty"]);
    assert!(!bad.state_dir().exists());
    let s: Value = good.state();
    assert_eq!(s["status"], "running");
    let procs = std::fs::read_to_string(good.v1("pids").join("cgroup.procs")).unwrap();
    assert!(
        procs
            .split_whitespace()
            .any(|p| Some(p) == s["pid"].as_u64().map(|n| n.to_string()).as_deref()),
        "{procs}"
    );
    assert_eq!(
        std::fs::read_to_string(good.v1("pids").join("pids.max"))
            .unwrap()
            .trim(),
        "100"
    );
    // bad's guard must not touch good's cgroup.
    bad.spec["linux"]["cgroupsPath"] = own;
}
