//! berth-shim against the real kernel and the real berth-runtime binary (run as root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::Shutdown;
use std::process::Command;
use std::time::Duration;

use berth_shim::args::{LogConfig, ShimArgs};
use berth_shim::client::{self, Shim};
use berth_shim::protocol::Status;
use common::*;

fn sleeper() -> Fixture {
    Fixture::new("sleep", &["sleep", "1000"])
}

fn exec_process(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "args": args,
        "cwd": "/",
        "env": ["PATH=/bin", "TERM=xterm"],
        "user": {"uid": 0, "gid": 0},
    })
}

#[test]
fn exit_code_zero_and_state_transitions() {
    let mut f = Fixture::new("exit0", &["sh", "-c", "read x < /dev/null; exit 0"]);
    let shim = f.spawn();
    let st = shim.state().unwrap();
    assert_eq!(st.status, Status::Created);
    assert_eq!(st.pid, f.init_pid);
    assert!(st.started_at.is_none());
    shim.start().unwrap();
    let exit = wait_exit(&shim);
    assert_eq!(exit.exit_code, 0);
    check_time(&exit.exited_at);
    let st = shim.state().unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit_code, Some(0));
    check_time(st.started_at.as_deref().unwrap());
    // exit.json was written before the waiter was answered.
    let on_disk: berth_shim::protocol::Exit =
        serde_json::from_slice(&std::fs::read(f.state.join("exit.json")).unwrap()).unwrap();
    assert_eq!(on_disk, exit);
    // Waiting again answers at once; attaching to a stopped container gets EOF.
    assert_eq!(wait_exit(&shim), exit);
    let mut s = shim.attach(false, true, true).unwrap();
    assert_eq!(read_frames(&mut s), (String::new(), String::new()));
    f.delete(&shim);
}

#[test]
fn exit_code_three() {
    let mut f = Fixture::new("exit3", &["sh", "-c", "exit 3"]);
    let shim = f.spawn();
    let waiter = {
        let shim = shim.clone();
        std::thread::spawn(move || shim.wait())
    };
    std::thread::sleep(Duration::from_millis(100));
    shim.start().unwrap();
    assert_eq!(waiter.join().unwrap().unwrap().exit_code, 3);
    f.delete(&shim);
}

#[test]
fn kill_gives_137_and_pause_resume() {
    let mut f = sleeper();
    let shim = f.spawn();
    shim.start().unwrap();
    assert_eq!(shim.state().unwrap().status, Status::Running);
    shim.pause().unwrap();
    assert_eq!(shim.state().unwrap().status, Status::Paused);
    shim.resume().unwrap();
    assert_eq!(shim.state().unwrap().status, Status::Running);
    shim.update(serde_json::json!({"pids": {"limit": 50}}))
        .unwrap();
    let e = shim.resize(10, 10).unwrap_err().to_string();
    assert!(e.contains("has no tty"), "{e}");
    shim.kill(9, false).unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 137);
    // The runtime's own message comes back for a failing command.
    let e = shim.start().unwrap_err().to_string();
    assert!(e.contains("stopped") || e.contains(&f.id), "{e}");
    f.delete(&shim);
}

#[test]
fn log_lines_streams_partials_and_times() {
    let script = "echo one; echo two >&2; printf 'a\\tb <&>\\n'; head -c 20000 /dev/zero | tr '\\0' x; echo; printf tail";
    let mut f = Fixture::new("log", &["sh", "-c", script]);
    let shim = f.spawn();
    shim.start().unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 0);
    f.delete(&shim);
    let raw = std::fs::read_to_string(&f.log).unwrap();
    assert!(
        raw.contains(r#"{"log":"a\tb \u003c\u0026\u003e\n","stream":"stdout","time":""#),
        "{raw}"
    );
    let entries = f.log_entries();
    for e in &entries {
        check_time(e["time"].as_str().unwrap());
    }
    let out: Vec<&str> = entries
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["log"].as_str().unwrap())
        .collect();
    assert_eq!(out[0], "one\n");
    assert_eq!(out[1], "a\tb <&>\n");
    // A 20000-byte line: a 16 KiB partial message, then the rest with its newline.
    assert_eq!(out[2].len(), 16384);
    assert!(!out[2].ends_with('\n'));
    assert_eq!(out[3].len(), 20000 - 16384 + 1);
    assert!(out[3].ends_with("x\n"));
    // What is left at the end of the stream is a partial message.
    assert_eq!(out[4], "tail");
    assert_eq!(out.len(), 5);
    assert_eq!(log_text(&entries, "stderr"), "two\n");
}

#[test]
fn a_burst_right_before_exit_is_all_in_the_log() {
    // 10000 lines (~0.7 MB of json, within the writer pipe's buffer) written as fast as the
    // container can, then exit: `delete` returns only once the writer thread has written
    // every one of them, in order.
    let mut f = Fixture::new("burst", &["sh", "-c", "seq 1 10000"]);
    let shim = f.spawn();
    shim.start().unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 0);
    f.delete(&shim);
    let entries = f.log_entries();
    let want: String = (1..=10000).map(|i| format!("{i}\n")).collect();
    let got = log_text(&entries, "stdout");
    assert_eq!(entries.len(), 10000, "one entry per line");
    assert!(got == want, "the log lost or reordered lines");
}

#[test]
fn log_rotation() {
    let mut f = Fixture::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    f.args.log = Some(LogConfig {
        path: f.log.clone(),
        max_size: Some(2048),
        max_file: 3,
    });
    let shim = f.spawn();
    shim.start().unwrap();
    wait_exit(&shim);
    f.delete(&shim);
    let dir = f.log.parent().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["c.log", "c.log.1", "c.log.2"]);
    let mut all = Vec::new();
    for n in ["c.log.2", "c.log.1", "c.log"] {
        let p = dir.join(n);
        let len = std::fs::metadata(&p).unwrap().len();
        // Rotation happens before an entry once the file holds max-size bytes.
        assert!(len < 2048 + 100, "{n} has {len} bytes");
        all.extend(read_entries(&p));
    }
    let lines: Vec<String> = all
        .iter()
        .map(|e| e["log"].as_str().unwrap().trim_end().to_string())
        .collect();
    // The newest lines survive, in order, up to the last.
    assert_eq!(lines.last().unwrap(), "line-299");
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    assert!(first > 0, "old files were dropped");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("line-{}", first + i));
    }
}

#[test]
fn attach_stdcopy_stdin_once_and_fanout() {
    let mut f = Fixture::with("attach", &["sh", "-c", "cat; echo bye >&2"], false, true);
    f.args.stdin_once = true;
    let shim = f.spawn();
    let mut a = shim.attach(true, true, true).unwrap();
    let mut b = shim.attach(false, true, true).unwrap();
    shim.start().unwrap();
    send(&mut a, "hello\n");
    // The client's half-close closes the container's stdin: cat ends.
    a.shutdown(Shutdown::Write).unwrap();
    let (out, err) = read_frames(&mut a);
    assert_eq!((out.as_str(), err.as_str()), ("hello\n", "bye\n"));
    let (out_b, err_b) = read_frames(&mut b);
    assert_eq!((out_b.as_str(), err_b.as_str()), ("hello\n", "bye\n"));
    assert_eq!(wait_exit(&shim).exit_code, 0);
    f.delete(&shim);
    let entries = f.log_entries();
    assert_eq!(log_text(&entries, "stdout"), "hello\n");
    assert_eq!(log_text(&entries, "stderr"), "bye\n");
}

#[test]
fn output_while_detached_goes_only_to_the_log() {
    let mut f = Fixture::new(
        "detached",
        &["sh", "-c", "echo early; sleep 1; echo late; sleep 1000"],
    );
    let shim = f.spawn();
    shim.start().unwrap();
    Fixture::eventually("early in the log", || {
        log_text(&f.log_entries(), "stdout").contains("early")
    });
    let mut a = shim.attach(false, true, false).unwrap();
    let got = read_until(&mut a, "late");
    assert!(!got.contains("early"), "{got:?}");
    // The init is PID 1 of its namespace and has no SIGTERM handler: only SIGKILL ends it.
    shim.kill(9, false).unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 137);
    f.delete(&shim);
}

#[test]
fn tty_attach_is_raw_and_resize_is_seen() {
    let mut f = Fixture::with("tty", &["sh"], true, true);
    let shim = f.spawn();
    let mut a = shim.attach(true, true, true).unwrap();
    shim.start().unwrap();
    shim.resize(31, 101).unwrap();
    send(&mut a, "stty size\n");
    // Raw bytes (no stdcopy header) straight from the pty.
    let got = read_until(&mut a, "31 101");
    assert!(!got.as_bytes().contains(&0u8), "{got:?}");
    send(&mut a, "exit 5\n");
    assert_eq!(wait_exit(&shim).exit_code, 5);
    f.delete(&shim);
    let entries = f.log_entries();
    assert!(entries.iter().all(|e| e["stream"] == "stdout"));
    assert!(log_text(&entries, "stdout").contains("31 101\r\n"));
}

#[test]
fn exec_with_pipes() {
    let mut f = sleeper();
    let shim = f.spawn();
    shim.start().unwrap();
    let (pid, mut s) = shim
        .exec(
            "e1",
            exec_process(&["sh", "-c", "echo out; echo err >&2; exit 7"]),
            false,
            false,
        )
        .unwrap();
    assert!(pid > 0);
    assert_eq!(
        read_frames(&mut s),
        ("out\n".to_string(), "err\n".to_string())
    );
    // The exit is recorded before the stream ends.
    let st = shim.exec_state("e1").unwrap();
    assert!(!st.running);
    assert_eq!(st.exit_code, Some(7));
    assert_eq!(st.pid, pid);

    // stdin, closed by the client's half-close.
    let (_, mut s) = shim
        .exec("e2", exec_process(&["cat"]), false, true)
        .unwrap();
    send(&mut s, "ping\n");
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_frames(&mut s).0, "ping\n");
    assert_eq!(shim.exec_state("e2").unwrap().exit_code, Some(0));

    // exec_kill, duplicate ids, unknown ids, runtime errors.
    let (_, mut s) = shim
        .exec("e3", exec_process(&["sleep", "1000"]), false, false)
        .unwrap();
    shim.exec_kill("e3", 9).unwrap();
    read_frames(&mut s);
    assert_eq!(shim.exec_state("e3").unwrap().exit_code, Some(137));
    assert!(
        shim.exec("e3", exec_process(&["true"]), false, false)
            .unwrap_err()
            .to_string()
            .contains("already exists")
    );
    assert!(
        shim.exec_state("nope")
            .unwrap_err()
            .to_string()
            .contains("not found")
    );
    let e = shim
        .exec("e4", exec_process(&["/does/not/exist"]), false, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/does/not/exist"), "{e}");

    f.delete(&shim);
    // Exec output never goes to the container's log.
    let text = log_text(&f.log_entries(), "stdout") + &log_text(&f.log_entries(), "stderr");
    assert!(!text.contains("out") && !text.contains("ping"), "{text:?}");
    // No exec files are left behind.
    let left: Vec<_> = std::fs::read_dir(&f.state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn exec_with_tty_and_resize() {
    let mut f = sleeper();
    let shim = f.spawn();
    shim.start().unwrap();
    let (_, mut s) = shim.exec("t1", exec_process(&["sh"]), true, true).unwrap();
    shim.exec_resize("t1", 42, 123).unwrap();
    send(&mut s, "stty size\n");
    read_until(&mut s, "42 123");
    send(&mut s, "exit 4\n");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut rest).unwrap();
    let st = shim.exec_state("t1").unwrap();
    assert_eq!((st.running, st.exit_code), (false, Some(4)));
    f.delete(&shim);
}

#[test]
fn shim_survives_its_parent_and_reconnects() {
    let mut f = Fixture::new(
        "orphan",
        &[
            "sh",
            "-c",
            "i=0; while [ ! -e /tmp/stop ]; do echo tick-$i; i=$((i+1)); sleep 0.1; done; exit 42",
        ],
    );
    let report = f.dir.path().join("report");
    // A short-lived "daemon": runs the shim, then lingers until killed.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("\"$@\" > \"$REPORT\"; exec sleep 1000")
        .arg("sh")
        .arg(shim_bin())
        .args(f.args.to_args())
        .env("REPORT", &report);
    let mut daemon = cmd.spawn().unwrap();
    Fixture::eventually("the shim's report", || {
        std::fs::read_to_string(&report).is_ok_and(|s| s.contains('\n'))
    });
    let line = std::fs::read_to_string(&report).unwrap();
    assert!(line.starts_with("{\"pid\":"), "{line}");
    let shim = Shim::connect(&f.state).unwrap();
    shim.start().unwrap();
    Fixture::eventually("ticks", || {
        log_text(&f.log_entries(), "stdout").contains("tick-2")
    });
    // A client that dies in the middle of a wait, then the "daemon" itself.
    let waiter = shim.send(&berth_shim::protocol::Request::Wait).unwrap();
    drop(waiter);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let before = f.log_entries().len();
    std::thread::sleep(Duration::from_millis(600));
    assert!(f.log_entries().len() > before, "the container kept logging");
    // A new "daemon" reconnects.
    let shim = Shim::connect(&f.state).unwrap();
    assert_eq!(shim.state().unwrap().status, Status::Running);
    let mut a = shim.attach(false, true, false).unwrap();
    read_until(&mut a, "tick-");
    // The container exits while this client is attached; a wait gets its real code, and so
    // does exit.json.
    std::fs::write(f.bundle.join("rootfs/tmp/stop"), "").unwrap();
    read_frames(&mut a);
    assert_eq!(wait_exit(&shim).exit_code, 42);
    assert_eq!(client::read_exit(&f.state).unwrap().unwrap().exit_code, 42);
    f.delete(&shim);
}

#[test]
fn linger_ends_the_shim_and_keeps_the_exit() {
    let mut f = Fixture::new("linger", &["sh", "-c", "echo bye; exit 3"]);
    f.args.linger = Some(Duration::from_millis(500));
    let shim = f.spawn();
    let pid = f.shim_pid().unwrap();
    assert_eq!(client::read_exit(&f.state).unwrap(), None);
    shim.start().unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 3);
    // Nobody deletes it: the shim goes away by itself after the linger.
    assert!(
        reap(pid, Duration::from_secs(20)),
        "shim {pid} still running"
    );
    assert!(Shim::connect(&f.state).is_err());
    assert!(!f.state.join("shim.sock").exists());
    // A daemon that comes back later reads the exit from the state dir.
    let exit = client::read_exit(&f.state).unwrap().unwrap();
    assert_eq!(exit.exit_code, 3);
    check_time(&exit.exited_at);
    // The log is complete.
    assert_eq!(log_text(&f.log_entries(), "stdout"), "bye\n");
    // The container is left to the runtime (stopped) for the daemon to delete.
    let out = Command::new(runtime_bin())
        .arg("--root")
        .arg(&f.rt_root)
        .args(["state", &f.id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{out:?}"
    );
}

#[test]
fn delete_cleans_everything_but_the_log() {
    let mut f = Fixture::new("delete", &["sh", "-c", "echo hi; exec sleep 1000"]);
    let shim = f.spawn();
    shim.start().unwrap();
    Fixture::eventually("hi in the log", || !f.log_entries().is_empty());
    let shim_pid = f.shim_pid().unwrap();
    let init = f.init_pid;
    assert!(
        cgroup_dirs(&f.id).iter().any(|d| d.exists()),
        "a cgroup exists while running"
    );
    f.delete(&shim);
    assert!(!alive(shim_pid), "shim exited");
    assert!(!alive(init), "init is gone");
    let left: Vec<_> = std::fs::read_dir(&f.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state dir still holds {left:?}");
    assert!(!f.rt_root.join(&f.id).exists(), "runtime state left");
    for d in cgroup_dirs(&f.id) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    assert_eq!(log_text(&f.log_entries(), "stdout"), "hi\n");
    assert!(Shim::connect(&f.state).is_err());
}

#[test]
fn runtime_failure_reports_and_leaves_nothing() {
    let mut f = Fixture::new("bad", &["true"]);
    std::fs::remove_dir_all(f.bundle.join("rootfs")).unwrap();
    let err = client::spawn(&shim_bin(), &f.args).unwrap_err().to_string();
    assert!(err.contains("rootfs") || err.contains("root"), "{err}");
    assert!(
        !f.state.exists(),
        "the state dir the shim created is removed"
    );
    assert!(!f.rt_root.join(&f.id).exists());
    assert_eq!(
        procs_mentioning(&f.id),
        Vec::<i32>::new(),
        "no shim process is left"
    );
    for d in cgroup_dirs(&f.id) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    // The raw report line is one JSON object with "error".
    let out = Command::new(shim_bin())
        .args(f.args.to_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].is_string());
    // A missing runtime binary, and bad arguments, are reported the same way.
    let mut a = f.args.clone();
    a.runtime = "/nonexistent/runtime".into();
    assert!(
        client::spawn(&shim_bin(), &a)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/runtime")
    );
    f.init_pid = 0;
}

#[test]
fn bad_config_reaches_the_caller_verbatim() {
    let f = Fixture::new("badcfg", &["true"]);
    // A config the runtime rejects: a relative cwd.
    let path = f.bundle.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["process"]["cwd"] = serde_json::json!("relative/dir");
    std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
    let err = client::spawn(&shim_bin(), &f.args).unwrap_err();
    assert!(matches!(err, berth_shim::Error::Shim(_)), "{err:?}");
    let err = err.to_string();
    // The same runtime run by hand on the same bundle says exactly the same.
    let root = f.dir.path().join("rt-direct");
    let log = f.dir.path().join("direct.log");
    let out = Command::new(runtime_bin())
        .arg("--root")
        .arg(&root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(&f.bundle)
        .arg(&f.id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let direct = std::fs::read_to_string(&log).unwrap();
    let msg = direct
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
        .unwrap();
    assert_eq!(err, msg);
    assert!(err.contains("cwd") || err.contains("relative"), "{err}");
    assert!(!f.state.exists());
    assert_eq!(procs_mentioning(&f.id), Vec::<i32>::new());
}

#[test]
fn bad_arguments_and_help() {
    let out = Command::new(shim_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--state-dir"));
    let out = Command::new(shim_bin())
        .args(["--id", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("--bundle"));
    let a = ShimArgs::new("x", "/b", "/s", "/r");
    assert!(matches!(
        ShimArgs::parse(a.to_args()),
        Ok(berth_shim::args::Command::Run(_))
    ));
}

#[test]
fn memory_is_reported() {
    // A running container with output going to the log and to an attached client.
    let mut f = Fixture::new(
        "rss",
        &[
            "sh",
            "-c",
            "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.05; done",
        ],
    );
    let shim = f.spawn();
    let mut a = shim.attach(false, true, true).unwrap();
    shim.start().unwrap();
    read_until(&mut a, "line-5");
    let pid = f.shim_pid().unwrap();
    let (rss, anon, file) = rss_kib(pid);
    let pss = pss_kib(pid);
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
        .unwrap();
    println!(
        "berth-shim {} pid {pid}: VmRSS {rss} KiB (RssAnon {anon}, RssFile {file}, Pss {pss}), {threads} threads",
        shim_bin().display()
    );
    assert!(rss > 0 && anon > 0, "no VmRSS for the shim {pid}");
    // Generous bound (a debug build, pages shared with libc counted): catches a leak or a
    // runaway buffer, not a regression of a few pages.
    assert!(anon < 8 * 1024, "shim RssAnon {anon} KiB");
    // One process per container: the log is written by the shim's second thread, not by a
    // child process.
    assert_eq!(
        children_of(pid),
        vec![f.init_pid],
        "the shim's only child is the container's init"
    );
    assert_eq!(
        threads, "2",
        "the shim's main loop and its log writer thread"
    );
    Fixture::eventually("the log writer thread to write line-5", || {
        log_text(&f.log_entries(), "stdout").contains("line-5\n")
    });
    shim.kill(9, false).unwrap();
    assert_eq!(wait_exit(&shim).exit_code, 137);
    f.delete(&shim);
}

#[test]
fn shutdown_leaves_the_container_running() {
    let mut f = sleeper();
    let shim = f.spawn();
    shim.start().unwrap();
    let pid = f.shim_pid().unwrap();
    shim.shutdown().unwrap();
    assert!(
        reap(pid, Duration::from_secs(10)),
        "shim {pid} did not exit"
    );
    assert!(alive(f.init_pid), "the container's init was left running");
    assert!(Shim::connect(&f.state).is_err());
    assert!(!f.state.join("shim.pid").exists());
    let out = Command::new(runtime_bin())
        .arg("--root")
        .arg(&f.rt_root)
        .args(["state", &f.id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("running"),
        "{out:?}"
    );
}
