//! Resources on cgroup v1 (hybrid host): memory and pids limits at work, cpu and cpuset
//! values, update, events --stats, pause and resume.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use support::*;

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn memory_limit_oom_kills_a_process_exceeding_it() {
    // busybox tail buffers "lines" of /dev/zero forever.
    let mut c = Ctr::new("oom", &["tail", "/dev/zero"]);
    c.spec["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
    let o = c.run();
    assert_eq!(o.code, 128 + libc::SIGKILL, "{o:?}");
}

#[test]
fn memory_limit_is_written_and_oom_is_counted() {
    let mut c = Ctr::new("oomcount", &["sh", "-c", "tail /dev/zero; echo survived"]);
    c.spec["linux"]["resources"]["memory"] = json!({"limit": 24 << 20, "reservation": 16 << 20});
    c.create();
    assert_eq!(
        read(&c.v1("memory").join("memory.limit_in_bytes")),
        (24u64 << 20).to_string()
    );
    assert_eq!(
        read(&c.v1("memory").join("memory.soft_limit_in_bytes")),
        (16u64 << 20).to_string()
    );
    c.start().ok();
    // The shell (pid 1) survives: only tail, the biggest process, is killed.
    c.wait_console("survived");
    let oom = read(&c.v1("memory").join("memory.oom_control"));
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "{oom}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    // The bomb runs in a subshell: ash gives up when a fork fails, the container's init
    // (the outer shell) carries on with builtins only, with the bomb's sleepers still there.
    let script = "(for i in $(seq 1 40); do sleep 1000 & done); echo survived; \
                  read n < /sys/fs/cgroup/pids/pids.current; echo $n";
    let mut c = Ctr::new("pids", &["sh", "-c", script]);
    c.spec["linux"]["resources"]["pids"] = json!({"limit": 10});
    let o = c.run().ok();
    assert!(
        o.stderr.contains("can't fork") && o.stderr.contains("Resource temporarily unavailable"),
        "{o:?}"
    );
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "survived", "{o:?}");
    let current: u32 = lines[1].parse().unwrap();
    assert!((2..=10).contains(&current), "{o:?}");
}

#[test]
fn cpu_values_are_written() {
    let mut c = Ctr::new("cpu", &["sleep", "1000"]);
    c.spec["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000});
    c.create();
    assert_eq!(read(&c.v1("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&c.v1("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&c.v1("cpu").join("cpu.cfs_period_us")), "100000");
}

#[test]
fn cpuset_pins_the_container() {
    let mut c = Ctr::new(
        "cpuset",
        &[
            "grep",
            "-E",
            "^(Cpus|Mems)_allowed_list",
            "/proc/self/status",
        ],
    );
    c.spec["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    let o = c.run().ok();
    let vals: Vec<&str> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(vals, ["0", "0"], "{o:?}");

    let mut c = Ctr::new("cpuset2", &["sleep", "1000"]);
    c.spec["linux"]["resources"]["cpu"] = json!({"cpus": "1", "mems": "0"});
    c.create();
    assert_eq!(read(&c.v1("cpuset").join("cpuset.cpus")), "1");
    assert_eq!(read(&c.v1("cpuset").join("cpuset.mems")), "0");
}

#[test]
fn update_changes_limits() {
    let mut c = Ctr::new("update", &["sleep", "1000"]);
    c.spec["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    c.spec["linux"]["resources"]["pids"] = json!({"limit": 50});
    c.create_start();
    let mem = c.v1("memory").join("memory.limit_in_bytes");
    assert_eq!(read(&mem), (64u64 << 20).to_string());

    c.rt(&[
        "update",
        "--memory",
        "128m",
        "--pids-limit",
        "70",
        "--cpu-share",
        "300",
        &c.id,
    ])
    .ok();
    assert_eq!(read(&mem), (128u64 << 20).to_string());
    assert_eq!(read(&c.v1("pids").join("pids.max")), "70");
    assert_eq!(read(&c.v1("cpu").join("cpu.shares")), "300");

    // A second update of something else keeps the first one's values.
    let dir = temp_dir();
    let r = dir.path().join("r.json");
    fs::write(
        &r,
        json!({"cpu": {"quota": 20000, "period": 100000}}).to_string(),
    )
    .unwrap();
    c.rt(&["update", "--resources", r.to_str().unwrap(), &c.id])
        .ok();
    assert_eq!(read(&c.v1("cpu").join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&mem), (128u64 << 20).to_string());
    assert_eq!(read(&c.v1("pids").join("pids.max")), "70");

    c.rt(&["update", "--memory", "lots", &c.id])
        .fails_with(&["--memory lots"]);
    assert_eq!(read(&mem), (128u64 << 20).to_string());
}

#[test]
fn update_of_a_stopped_container_fails() {
    let mut c = Ctr::new("updstopped", &["true"]);
    c.create_start();
    c.wait_status("stopped");
    c.rt(&["update", "--memory", "128m", &c.id])
        .fails_with(&["stopped"]);
}

#[test]
fn events_stats() {
    let mut c = Ctr::new("events", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    c.create_start();
    let o = c.rt(&["events", "--stats", &c.id]).ok();
    let v: Value = serde_json::from_str(o.out()).unwrap_or_else(|e| panic!("{e}: {}", o.stdout));
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    let usage = v["data"]["memory"]["usage"]["usage"].as_u64().unwrap();
    assert!(usage > 0, "{v}");
    let pids = v["data"]["pids"]["current"].as_u64().unwrap();
    assert!(pids >= 2, "{v}");
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().is_some(), "{v}");
}

#[test]
fn events_reports_oom_kills() {
    use std::io::{BufRead, BufReader};
    let host = temp_dir();
    let mut c = Ctr::new(
        "eventsoom",
        &[
            "sh",
            "-c",
            "while [ ! -e /data/go ]; do sleep 0.05; done; tail /dev/zero; sleep 1000",
        ],
    );
    c.spec["linux"]["resources"]["memory"] = json!({"limit": 24 << 20, "swap": 24 << 20});
    c.add_mount(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "rw"]}));
    c.create_start();
    let mut ev = c
        .cmd()
        .args(["events", "--interval", "1h", &c.id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ev.stdout.take().unwrap()).lines();
    // The first stats line comes after the OOM watch is in place.
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "stats", "{first}");
    fs::write(host.path().join("go"), "").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let oom = loop {
        let l = rx
            .recv_timeout(WAIT)
            .expect("an oom event within the wait time");
        let v: Value = serde_json::from_str(&l).unwrap();
        if v["type"] == "oom" {
            break v;
        }
    };
    assert_eq!(oom["id"], c.id.as_str());
    assert!(oom.get("data").is_none(), "{oom}");
    let _ = ev.kill();
    let _ = ev.wait();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let host = temp_dir();
    let counter = host.path().join("counter");
    let mut c = Ctr::new(
        "pause",
        &[
            "sh",
            "-c",
            // Renamed into place: the freezer may stop the shell between truncate and write.
            "i=0; while :; do i=$((i+1)); echo $i > /data/c.tmp; mv /data/c.tmp /data/counter; sleep 0.01; done",
        ],
    );
    c.add_mount(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "rw"]}));
    c.create_start();
    let value = || {
        fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let first = wait_for("the counter to start", value);
    wait_for("the counter to advance", || value().filter(|v| *v > first));

    c.rt(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(read(&c.v1("freezer").join("freezer.state")), "FROZEN");
    let frozen = value().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(value().unwrap(), frozen, "a paused container must not run");
    // The state of a paused container process: stopped by the freezer.
    c.exec(&["true"]).fails_with(&["paused"]);
    c.rt(&["pause", &c.id]).fails_with(&["paused"]);

    c.rt(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    wait_for("the counter to advance after resume", || {
        value().filter(|v| *v > frozen)
    });
    c.rt(&["resume", &c.id])
        .fails_with(&["running", "not paused"]);
}

#[test]
fn a_paused_container_can_be_deleted_by_force() {
    let mut c = Ctr::new("pausedel", &["sleep", "1000"]);
    c.create_start();
    c.rt(&["pause", &c.id]).ok();
    c.rt(&["delete", &c.id]).fails_with(&["paused"]);
    c.rt(&["delete", "--force", &c.id]).ok();
    assert!(!c.state_dir().exists());
    for d in c.cgroup_dirs() {
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn unknown_resource_values_are_refused_naming_the_field() {
    let mut c = Ctr::new("badcpu", &["true"]);
    c.spec["linux"]["resources"]["cpu"] = json!({"cpus": "9999"});
    c.create_with(&[]).fails_with(&["cpu"]);
    assert_nothing_left(&c);
}
