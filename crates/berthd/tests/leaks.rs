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
    // A dead container's veth goes with its namespace, or is deleted in the background:
    // give the last few a moment, then nothing may be left.
    let veths_left = || {
        run(
            std::process::Command::new("ip").args(["-o", "link", "show", "master", &d.bridge]),
            None,
        )
        .stdout
    };
    let mut veths = String::new();
    for _ in 0..200 {
        veths = veths_left();
        if veths.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(veths.trim(), "", "veths left on the bridge");
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
    for id in &ids {
        for ctl in ["memory", "pids", "cpu", "freezer"] {
            let p = format!("/sys/fs/cgroup/{ctl}{}/{id}", d.cgroup_parent());
            assert!(!std::path::Path::new(&p).exists(), "{p} left behind");
        }
    }
    // A removed container's directories go in the background, right after the answer.
    let dirs_left = || -> Vec<std::path::PathBuf> {
        let exec = ["containers", "s"].map(|s| d.exec_root().join(s));
        exec.iter()
            .chain([d.data_root().join("containers")].iter())
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flat_map(|r| r.flatten().map(|e| e.path()))
            .collect()
    };
    let mut left = dirs_left();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = dirs_left();
    }
    assert!(left.is_empty(), "container directories left: {left:?}");
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

/// Rules in the daemon's nft table.
fn nft_rules(d: &Daemon) -> usize {
    run(
        std::process::Command::new("nft").args(["-j", "list", "table", "ip", &d.table]),
        None,
    )
    .stdout
    .matches("\"rule\"")
    .count()
}

/// This daemon's bridges (one state directory each) and the links attached to each: other
/// test daemons' links come and go meanwhile, so only ours are compared.
fn own_links(d: &Daemon) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = std::fs::read_dir(d.data_root().join("network"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .map(|b| {
            let ports = run(
                std::process::Command::new("ip").args(["-o", "link", "show", "master", &b]),
                None,
            )
            .stdout
            .lines()
            .count();
            (b, ports)
        })
        .collect();
    v.sort();
    v
}

/// 1000 containers through a user network (with an alias, so a DNS record) and the default
/// bridge (with a published port): afterwards no veth, nft rule, address allocation, DNS
/// record, mount or container is left, and the network still works.
#[test]
fn a_thousand_networked_cycles_leave_nothing() {
    let d = Daemon::start();
    d.busybox();
    let (sub, _) = d.own_subnet(0);
    d.docker(&["network", "create", "--subnet", &sub, "cyc"])
        .ok();
    // A long-lived container on the network: its lookups show what DNS still knows.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "probe",
        "--network",
        "cyc",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let links0 = own_links(&d);
    assert_eq!(links0.len(), 2, "{links0:?}");
    let rules0 = nft_rules(&d);
    let cycle = |n: usize| {
        let body = if n.is_multiple_of(2) {
            format!(
                r#"{{"Image": "busybox", "Cmd": ["true"], "HostConfig": {{"NetworkMode": "cyc"}},
                "NetworkingConfig": {{"EndpointsConfig": {{"cyc": {{"Aliases": ["alias{n}"]}}}}}}}}"#
            )
        } else {
            r#"{"Image": "busybox", "Cmd": ["true"], "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}}"#
                .to_string()
        };
        let (code, text) = d.request(
            "POST",
            &format!("/containers/create?name=c{n}"),
            Some(&body),
        );
        assert_eq!(code, 201, "create c{n}: {text}");
        let (code, text) = d.request("POST", &format!("/containers/c{n}/start"), None);
        assert_eq!(code, 204, "start c{n}: {text}");
        let (code, text) = d.request("POST", &format!("/containers/c{n}/wait"), None);
        assert_eq!(code, 200, "wait c{n}: {text}");
        let (code, text) = d.request("DELETE", &format!("/containers/c{n}?v=1"), None);
        assert_eq!(code, 204, "rm c{n}: {text}");
    };
    for n in 0..1000 {
        cycle(n);
    }
    // The last veths may still be on their way out (deleted in the background).
    let mut links = own_links(&d);
    for _ in 0..200 {
        if links == links0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        links = own_links(&d);
    }
    assert_eq!(links, links0, "links left on the bridges");
    assert_eq!(nft_rules(&d), rules0, "nft rules left in {}", d.table);
    let ps = d.docker(&["ps", "-aq"]).ok().stdout;
    assert_eq!(ps.lines().count(), 1, "{ps}");
    let net: serde_json::Value =
        serde_json::from_str(&d.docker(&["network", "inspect", "cyc"]).ok().stdout).unwrap();
    let attached = net[0]["Containers"].as_object().map_or(0, |m| m.len());
    assert_eq!(attached, 1, "endpoints left: {}", net[0]["Containers"]);
    // DNS: the probe still resolves itself, no longer the cycled names.
    let me = d.docker(&["exec", "probe", "nslookup", "probe"]);
    assert_eq!(me.code, 0, "{me:?}");
    for gone in ["c998", "alias998", "c0"] {
        let o = d.docker(&["exec", "probe", "nslookup", gone]);
        assert_ne!(o.code, 0, "{gone} still resolves: {o:?}");
    }
    // 500 containers went through a /24: only because their addresses were released did
    // they fit. A static address is still free too.
    let ip = sub.replace(".0/24", ".200");
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "cyc",
        "--ip",
        &ip,
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&["rm", "-f", "probe"]).ok();
    d.docker(&["network", "rm", "cyc"]).ok();
    assert_eq!(mounts_under(&d.exec_root()), Vec::<String>::new());
}
