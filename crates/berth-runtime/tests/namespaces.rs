//! Namespaces: new ones differ from the host's, joined ones are the holder's, user namespace
//! id maps, hostname and domainname, time namespace offsets, the cgroup namespace.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

const ALL_BUT_USER: [&str; 7] = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "time"];

fn ns_script(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("echo {n}=$(readlink /proc/self/ns/{n});"))
        .collect()
}

fn parse_ns(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .to_string()
}

#[test]
fn every_new_namespace_differs_from_the_host() {
    let mut c = Ctr::new(
        "newns",
        &[
            "sh",
            "-c",
            &format!("{} echo pid1=$$", ns_script(&ALL_BUT_USER)),
        ],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    let o = c.run().ok();
    for n in ALL_BUT_USER {
        let inside = parse_ns(&o.stdout, n);
        let host = ns_id(&format!("/proc/self/ns/{n}"));
        assert!(inside.starts_with(&format!("{n}:[")), "{inside}");
        assert_ne!(inside, host, "{n} namespace is the host's");
    }
    assert_eq!(
        parse_ns(&o.stdout, "pid1"),
        "1",
        "the program is pid 1 of its pid namespace"
    );
}

#[test]
fn without_namespaces_the_host_ones_are_kept() {
    let mut c = Ctr::new(
        "hostns",
        &["sh", "-c", &ns_script(&["net", "ipc", "uts", "cgroup"])],
    );
    c.spec["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    c.spec.as_object_mut().unwrap().remove("hostname");
    let o = c.run().ok();
    for n in ["net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            parse_ns(&o.stdout, n),
            ns_id(&format!("/proc/self/ns/{n}")),
            "{n}"
        );
    }
}

#[test]
fn namespaces_joined_by_path_are_the_holders() {
    let holder = NsHolder::new(&["--net", "--uts", "--ipc"], "hostname holder-host");
    let mut c = Ctr::new(
        "joinns",
        &[
            "sh",
            "-c",
            &format!("{} hostname", ns_script(&["net", "uts", "ipc"])),
        ],
    );
    c.spec.as_object_mut().unwrap().remove("hostname");
    c.spec["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "cgroup"},
        {"type": "network", "path": holder.ns("net")},
        {"type": "uts", "path": holder.ns("uts")},
        {"type": "ipc", "path": holder.ns("ipc")},
    ]);
    let o = c.run().ok();
    for n in ["net", "uts", "ipc"] {
        let inside = parse_ns(&o.stdout, n);
        assert_eq!(inside, ns_id(&holder.ns(n)), "{n}");
        assert_ne!(inside, ns_id(&format!("/proc/self/ns/{n}")), "{n}");
    }
    assert_eq!(o.stdout.lines().last().unwrap(), "holder-host");
    // The runtime itself went back to its own namespaces: the host's hostname is unchanged.
    assert_ne!(
        rustix::system::uname().nodename().to_str().unwrap(),
        "holder-host"
    );
}

#[test]
fn joining_a_namespace_that_does_not_exist_fails_naming_it() {
    let mut c = Ctr::new("joinmissing", &["true"]);
    c.spec["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "network", "path": "/proc/999999999/ns/net"}]);
    c.spec.as_object_mut().unwrap().remove("hostname");
    c.create_with(&[])
        .fails_with(&["linux.namespaces[1].path", "/proc/999999999/ns/net"]);
    assert_nothing_left(&c);
}

#[test]
fn user_namespace_maps_ids() {
    let mut c = Ctr::new(
        "userns",
        &[
            "sh",
            "-c",
            "echo uid_map; cat /proc/self/uid_map; echo gid_map; cat /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user; stat -c %u:%g /bin/busybox",
        ],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
    let o = c.run().ok();
    let lines: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["uid_map"]);
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["gid_map"]);
    assert_eq!(lines[3], ["0", "200000", "1000"]);
    assert_eq!(lines[4], ["0"], "root in the container");
    assert_eq!(lines[5], ["0"]);
    assert_ne!(lines[6][0], ns_id("/proc/self/ns/user"));
    // Host root is not mapped: its files show the overflow ids.
    assert_eq!(lines[7], ["65534:65534"]);
}

#[test]
fn user_namespace_process_has_the_mapped_host_uid() {
    let mut c = Ctr::new("usernshost", &["sleep", "1000"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.create_start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let gid_line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("101000"),
        "{uid_line}"
    );
    assert_eq!(
        gid_line.split_whitespace().nth(1),
        Some("101000"),
        "{gid_line}"
    );
}

#[test]
fn hostname_and_domainname() {
    let mut c = Ctr::new(
        "uts",
        &["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
    );
    c.spec["hostname"] = json!("box-one");
    c.spec["domainname"] = json!("example.test");
    let o = c.run().ok();
    assert_eq!(o.stdout, "box-one\nexample.test\n");
    assert_ne!(
        rustix::system::uname().nodename().to_str().unwrap(),
        "box-one"
    );
}

#[test]
fn hostname_without_a_uts_namespace_is_refused() {
    let mut c = Ctr::new("noutsns", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    c.spec["hostname"] = json!("nope");
    c.create_with(&[])
        .fails_with(&["hostname", "UTS namespace"]);
    assert_nothing_left(&c);
}

#[test]
fn time_namespace_offsets() {
    const YEAR: u64 = 365 * 24 * 3600;
    let mut c = Ctr::new(
        "timens",
        &[
            "sh",
            "-c",
            "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime",
        ],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    c.spec["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 2 * YEAR, "nanosecs": 0},
        "boottime": {"secs": YEAR, "nanosecs": 500},
    });
    let o = c.run().ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let offs: Vec<Vec<&str>> = lines[..2]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        offs.contains(&vec!["monotonic", &(2 * YEAR).to_string(), "0"]),
        "{offs:?}"
    );
    assert!(
        offs.contains(&vec!["boottime", &YEAR.to_string(), "500"]),
        "{offs:?}"
    );
    // /proc/uptime counts boottime: the container sees the host's uptime plus a year.
    let up: u64 = lines[2].parse().unwrap();
    let host_up: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up >= YEAR && up <= YEAR + host_up + 5,
        "uptime inside {up}, host {host_up}"
    );
}

#[test]
fn time_offsets_without_a_time_namespace_are_refused() {
    let mut c = Ctr::new("notimens", &["true"]);
    c.spec["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    c.create_with(&[]).fails_with(&["linux.timeOffsets"]);
    assert_nothing_left(&c);
}

#[test]
fn cgroup_namespace_roots_the_container_cgroup() {
    let mut c = Ctr::new("cgns", &["cat", "/proc/self/cgroup"]);
    let o = c.run().ok();
    for l in o.stdout.lines() {
        assert!(
            l.ends_with(":/"),
            "with a cgroup namespace every path is /: {}",
            o.stdout
        );
    }
    assert!(o.stdout.contains(":memory:/"), "{}", o.stdout);

    let mut c = Ctr::new("nocgns", &["cat", "/proc/self/cgroup"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let o = c.run().ok();
    let want = format!(":memory:{}", c.cgroup_path());
    assert!(
        o.stdout.lines().any(|l| l.ends_with(&want)),
        "without one the host path shows: {}",
        o.stdout
    );
    assert_in_every_hierarchy(&o.stdout, &c.cgroup_path());
}

/// `/proc/PID/cgroup` of a process (without a cgroup namespace) shows `path` in every
/// hierarchy the host has, cgroup v1 ones and the cgroup2 line (`0::`) alike.
fn assert_in_every_hierarchy(proc_cgroup: &str, path: &str) {
    let host = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let hierarchies: Vec<&str> = host
        .lines()
        .filter_map(|l| l.split_once(':').and_then(|(_, r)| r.rsplit_once(':')))
        .map(|(name, _)| name)
        .collect();
    assert!(!hierarchies.is_empty(), "{host}");
    for h in hierarchies {
        let want = format!(":{h}:{path}");
        assert!(
            proc_cgroup.lines().any(|l| l.ends_with(&want)),
            "not in the container's cgroup in hierarchy {h:?}: {proc_cgroup}"
        );
    }
}

#[test]
fn init_and_exec_processes_join_every_hierarchy() {
    // The init moves itself into its cgroup right after the fork (a v1 `tasks` write of 0,
    // cgroup2 by clone3 into the directory); an exec'd process does the same.
    let mut c = Ctr::new("cgjoin", &["sleep", "1000"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    c.create_start();
    let init = c.state()["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_in_every_hierarchy(&own, &c.cgroup_path());
    let o = c.sh("cat /proc/self/cgroup").ok();
    assert_in_every_hierarchy(&o.stdout, &c.cgroup_path());
}
