//! `exec` into running containers, and terminals over a console socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::fd::AsFd;

use serde_json::json;
use support::*;

const NS: [&str; 7] = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user"];

#[test]
fn exec_joins_the_containers_namespaces() {
    let mut c = Ctr::new("execns", &["sleep", "1000"]);
    c.create_start();
    let init = c.pid();
    let script: String = NS
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}; "))
        .collect::<String>()
        + "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; echo $$";
    let o = c.sh(&script).ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    for (i, n) in NS.iter().enumerate() {
        assert_eq!(lines[i], ns_id(&format!("/proc/{init}/ns/{n}")), "{n}");
    }
    assert_eq!(
        lines[NS.len()].trim(),
        "sleep 1000",
        "the init is pid 1 in the exec'd process's view"
    );
    assert_eq!(lines[NS.len() + 1], "berth");
    assert_ne!(lines[NS.len() + 2], "1");
    // It also ran in the container's cgroup and root: only what the container has is visible.
    let o = c.sh("cat /proc/self/cgroup; ls /").ok();
    assert!(o.stdout.contains(":memory:/\n"), "{o:?}");
    assert!(
        !o.stdout.contains("work") && o.stdout.contains("bin"),
        "{o:?}"
    );
}

#[test]
fn exec_gets_the_containers_process_settings() {
    let mut c = Ctr::new("execdefaults", &["sleep", "1000"]);
    c.spec["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=yes"]);
    c.spec["process"]["cwd"] = json!("/home");
    c.create_start();
    let o = c
        .sh("echo $FROM_CONFIG; pwd; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
        .ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "yes");
    assert_eq!(lines[1], "/home");
    assert_eq!(lines[2].split_whitespace().last(), Some("0000000020000420"));
    assert_eq!(lines[3].split_whitespace().last(), Some("1"));
}

#[test]
fn exec_options_env_cwd_user_cap() {
    let mut c = Ctr::new("execopts", &["sleep", "1000"]);
    c.spec["process"]["env"] = json!(["PATH=/bin", "FOO=config"]);
    c.create_start();
    let o = c
        .exec(&[
            "--env",
            "FOO=cli",
            "--env",
            "BAR=2",
            "--cwd",
            "/etc",
            "--",
            "sh",
            "-c",
            "echo $FOO $BAR; pwd",
        ])
        .ok();
    assert_eq!(o.stdout, "cli 2\n/etc\n");

    let o = c
        .exec(&[
            "--user",
            "1000:1001",
            "--additional-gids",
            "5",
            "--",
            "sh",
            "-c",
            "id -u; id -g; id -G",
        ])
        .ok();
    assert_eq!(o.stdout, "1000\n1001\n1001 5\n");

    let o = c
        .exec(&[
            "--cap",
            "CAP_CHOWN",
            "--",
            "grep",
            "CapBnd",
            "/proc/self/status",
        ])
        .ok();
    assert_eq!(o.stdout.split_whitespace().last(), Some("0000000020000421"));
    let o = c
        .exec(&[
            "--cap",
            "sys_admin",
            "--",
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .ok();
    assert_eq!(o.stdout.split_whitespace().last(), Some("0000000020200420"));

    c.exec(&["--cap", "CAP_NOPE", "--", "true"])
        .fails_with(&["CAP_NOPE"]);
}

#[test]
fn exec_propagates_exit_codes() {
    let mut c = Ctr::new("execcode", &["sleep", "1000"]);
    c.create_start();
    assert_eq!(c.sh("exit 0").code, 0);
    assert_eq!(c.sh("exit 7").code, 7);
    assert_eq!(c.sh("kill -KILL $$").code, 128 + 9);
    let o = c.exec(&["no-such-program"]);
    o.fails_with(&["no-such-program", "not found"]);
    assert_eq!(
        c.status(),
        "running",
        "a failed exec does not hurt the container"
    );
}

#[test]
fn exec_detached_with_pid_file() {
    let mut c = Ctr::new("execd", &["sleep", "1000"]);
    c.create_start();
    let pid_file = c.bundle().join("exec.pid");
    c.exec(&[
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--",
        "sleep",
        "999",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(pid);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\0999\0");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid: Vec<&str> = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        nspid.len(),
        3,
        "the process has a pid in the container's pid namespace: {nspid:?}"
    );
    let procs = std::fs::read_to_string(c.v1("memory").join("cgroup.procs")).unwrap();
    assert!(
        procs.split_whitespace().any(|p| p == pid.to_string()),
        "{procs}"
    );
    let o = c.rt(&["ps", "--format", "json", &c.id]).ok();
    assert!(
        serde_json::from_str::<Vec<i32>>(&o.stdout)
            .unwrap()
            .contains(&pid)
    );
}

#[test]
fn exec_with_a_process_json() {
    let mut c = Ctr::new("execjson", &["sleep", "1000"]);
    c.create_start();
    let p = c.bundle().join("process.json");
    std::fs::write(
        &p,
        json!({
            "terminal": false, "args": ["sh", "-c", "echo $X; pwd; id -u; exit 4"],
            "env": ["PATH=/bin", "X=from-json"], "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000},
        })
        .to_string(),
    )
    .unwrap();
    let o = c.exec(&["--process", p.to_str().unwrap()]);
    assert_eq!(o.code, 4, "{o:?}");
    assert_eq!(o.stdout, "from-json\n/tmp\n1000\n");

    std::fs::write(
        &p,
        r#"{"args": ["true"], "cwd": "relative", "user": {"uid": 0, "gid": 0}}"#,
    )
    .unwrap();
    c.exec(&["--process", p.to_str().unwrap()])
        .fails_with(&["cwd"]);
    std::fs::write(&p, r#"{"args": 5}"#).unwrap();
    c.exec(&["--process", p.to_str().unwrap()])
        .fails_with(&["--process", "args"]);
}

#[test]
fn exec_in_a_created_container_works() {
    let mut c = Ctr::new("execcreated", &["sleep", "1000"]);
    c.create();
    assert_eq!(c.sh("echo hi").ok().stdout, "hi\n");
    assert_eq!(c.status(), "created");
}

#[test]
fn exec_into_a_stopped_container_fails_cleanly() {
    let mut c = Ctr::new("execstopped", &["true"]);
    c.create_start();
    c.wait_status("stopped");
    c.exec(&["true"]).fails_with(&["stopped"]);
    c.rt(&["delete", &c.id]).ok();
    c.exec(&["true"]).fails_with(&["does not exist"]);
}

#[test]
fn exec_follows_the_containers_seccomp_filter() {
    let mut c = Ctr::new("execseccomp", &["sleep", "1000"]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
    c.create_start();
    let o = c.sh("mkdir /tmp/x || echo refused").ok();
    assert_eq!(o.stdout, "refused\n");
}

#[test]
fn terminal_over_a_console_socket() {
    let sock = ConsoleSocket::new();
    let mut c = Ctr::new(
        "tty",
        &["sh", "-c", "tty; stty size; read line; echo got:$line"],
    );
    c.spec["process"]["terminal"] = json!(true);
    c.spec["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    c.create_with(&["--console-socket", sock.path_str()]).ok();
    let master = sock.receive_master();
    c.start().ok();
    let out = read_until(master.as_fd(), "33 111");
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("33 111"), "{out:?}");
    write_fd(master.as_fd(), b"hello\n");
    let out = read_until(master.as_fd(), "got:hello");
    assert!(out.contains("got:hello"), "{out:?}");
    c.wait_status("stopped");
}

#[test]
fn terminal_without_a_console_socket_is_refused() {
    let mut c = Ctr::new("ttynosock", &["true"]);
    c.spec["process"]["terminal"] = json!(true);
    c.create_with(&[]).fails_with(&["--console-socket"]);
    assert_nothing_left(&c);
}

#[test]
fn exec_with_a_tty() {
    let mut c = Ctr::new("exectty", &["sleep", "1000"]);
    c.create_start();
    let sock = ConsoleSocket::new();
    c.exec(&[
        "-d",
        "-t",
        "--console-socket",
        sock.path_str(),
        "--",
        "sh",
        "-c",
        "tty; read x; echo exec-got:$x",
    ])
    .ok();
    let master = sock.receive_master();
    let out = read_until(master.as_fd(), "/dev/pts/");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    write_fd(master.as_fd(), b"ping\n");
    let out = read_until(master.as_fd(), "exec-got:ping");
    assert!(out.contains("exec-got:ping"), "{out:?}");
}
