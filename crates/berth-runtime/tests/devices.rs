//! Devices: the default nodes, `linux.devices` entries, and the device cgroup.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

#[test]
fn default_devices_exist_with_the_right_numbers() {
    let script = "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
                  for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; \
                  head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; head -c 8 /dev/urandom | wc -c";
    let mut c = Ctr::new("devs", &["sh", "-c", script]);
    let o = c.run().ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
        "4",
        "null-ok",
        "8",
    ];
    assert_eq!(lines, want, "{o:?}");
}

#[test]
fn default_devices_in_a_user_namespace_are_usable() {
    // mknod is not allowed in a user namespace: the runtime binds the host's nodes instead.
    let mut c = Ctr::new(
        "devsuserns",
        &[
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/null /dev/urandom; head -c 3 /dev/zero | wc -c",
        ],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let o = c.run().ok();
    assert_eq!(o.stdout, "1:3\n1:9\n3\n");
}

#[test]
fn config_device_is_created_with_mode_and_owner() {
    let mut c = Ctr::new(
        "cfgdev",
        &[
            "sh",
            "-c",
            "stat -c '%F %t:%T %a %u:%g' /dev/sub/mynull; echo x > /dev/sub/mynull && echo usable",
        ],
    );
    c.spec["linux"]["devices"] = json!([{
        "path": "/dev/sub/mynull", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1000, "gid": 1001,
    }]);
    // The owner may write to it (root may not: it has no CAP_DAC_OVERRIDE here).
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let o = c.run().ok();
    assert_eq!(
        o.stdout,
        "character special file 1:3 640 1000:1001\nusable\n"
    );
}

#[test]
fn config_fifo_device() {
    let mut c = Ctr::new("cfgfifo", &["stat", "-c", "%F %a", "/dev/myfifo"]);
    c.spec["linux"]["devices"] =
        json!([{"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o600}]);
    assert_eq!(c.run().ok().stdout, "fifo 600\n");
}

/// The device cgroup denies what it does not allow, even to a process that can mknod.
#[test]
fn device_cgroup_denies_devices_not_allowed() {
    // /dev/net/tun (c 10:200) is not among the defaults: opening it is refused by the device
    // cgroup (EPERM); when a rule allows it, the open succeeds and reading fails with EBADFD.
    let script = "mknod /dev/tun c 10 200 && cat /dev/tun";
    for allow in [false, true] {
        let mut c = Ctr::new("devcg", &["sh", "-c", script]);
        let caps = json!(["CAP_MKNOD"]);
        for set in ["bounding", "effective", "permitted"] {
            c.spec["process"]["capabilities"][set] = caps.clone();
        }
        if allow {
            c.spec["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(
                    json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}),
                );
        }
        let o = c.run();
        assert_ne!(o.code, 0, "{o:?}");
        if allow {
            assert!(
                o.stderr.contains("File descriptor in bad state"),
                "allowed: {o:?}"
            );
        } else {
            assert!(
                o.stderr.contains("Operation not permitted"),
                "denied: {o:?}"
            );
        }
    }
}

/// The device cgroup v1 list of a running container holds exactly what the runtime allowed.
#[test]
fn device_cgroup_list() {
    let mut c = Ctr::new("devlist", &["sleep", "1000"]);
    c.spec["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    c.create();
    let list = std::fs::read_to_string(c.v1("devices").join("devices.list")).unwrap();
    let rules: Vec<&str> = list.lines().collect();
    for want in [
        "c 1:3 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 136:* rwm",
        "c *:* m",
        "b *:* m",
        "c 10:229 rwm",
    ] {
        assert!(rules.contains(&want), "{want} missing from {rules:?}");
    }
    assert!(!rules.contains(&"a *:* rwm"), "{rules:?}");
    assert!(
        !rules.iter().any(|r| r.starts_with("c 10:200")),
        "{rules:?}"
    );
}
