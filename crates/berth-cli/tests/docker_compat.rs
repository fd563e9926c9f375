//! `berth` against a real dockerd, compared with docker's own CLI on the same daemon.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use serde_json::Value;

fn rc(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs the same arguments through both CLIs.
fn both(d: &Daemon, args: &[&str]) -> (std::process::Output, std::process::Output) {
    (berth(d, args), docker(d, args))
}

/// Compares outputs that may differ only by a clock tick ("1 second" vs "2 seconds"),
/// retrying a few times.
fn same_eventually(d: &Daemon, args: &[&str]) {
    let mut last = (String::new(), String::new());
    for _ in 0..8 {
        let (b, k) = both(d, args);
        assert_eq!(rc(&b), rc(&k), "exit codes of {args:?}");
        if out(&b) == out(&k) {
            return;
        }
        last = (out(&b), out(&k));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("{args:?} differ:\nberth:\n{}\ndocker:\n{}", last.0, last.1);
}

#[test]
fn run_output_and_exit_codes_match_docker() {
    let d = daemon();
    let (b, k) = both(d, &["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(out(&b), "hi\n");
    assert_eq!(out(&b), out(&k));
    assert_eq!(rc(&b), 0);

    let (b, k) = both(
        d,
        &["run", "--rm", IMAGE, "sh", "-c", "echo err >&2; exit 3"],
    );
    assert_eq!(rc(&b), 3);
    assert_eq!(rc(&k), 3);
    assert!(text(&b.stderr).contains("err\n"), "{}", text(&b.stderr));

    let (b, k) = both(d, &["run", "--rm", IMAGE, "nonexistent-cmd"]);
    assert_eq!(rc(&b), 127, "{}", text(&b.stderr));
    assert_eq!(rc(&k), 127);
    assert!(text(&b.stderr).contains("executable file not found"));

    // A missing image with --pull never: the daemon's message, docker's framing, 125.
    let missing = format!("{}:latest", name("nosuch"));
    let (b, k) = both(d, &["run", "--pull", "never", "--rm", &missing]);
    assert_eq!(rc(&b), 125);
    assert_eq!(rc(&k), 125);
    assert!(
        text(&b.stderr).contains(&format!(
            "Error response from daemon: No such image: {missing}"
        )),
        "{}",
        text(&b.stderr)
    );
    assert_eq!(
        text(&b.stderr).lines().last(),
        as_berth(&text(&k.stderr)).lines().last()
    );

    // Usage errors are 125 and say what is wrong.
    let b = berth(d, &["run", "--ulimit", "nofile=20:10", IMAGE]);
    assert_eq!(rc(&b), 125);
    assert!(
        text(&b.stderr).contains("soft limit"),
        "{}",
        text(&b.stderr)
    );
    let b = berth(d, &["run", "--no-such-flag", IMAGE]);
    assert_eq!(rc(&b), 125);
    assert!(text(&b.stderr).contains("--no-such-flag"));
}

#[test]
fn run_flags_take_effect() {
    let d = daemon();
    let n = name("flags");
    let _c = Cleanup {
        d,
        names: vec![n.clone()],
    };
    let b = berth(
        d,
        &[
            "run",
            "--name",
            &n,
            "-e",
            "A=one",
            "-w",
            "/tmp",
            "-u",
            "65534:65534",
            "-h",
            "boxhost",
            "--read-only",
            "--tmpfs",
            "/scratch",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cap-drop",
            "ALL",
            "-l",
            "app=web",
            "--network",
            "none",
            "--stop-signal",
            "SIGUSR1",
            "--ulimit",
            "nofile=100:200",
            "--shm-size",
            "8m",
            IMAGE,
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u) $(hostname) $(ulimit -n); touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs",
        ],
    );
    assert_eq!(rc(&b), 0, "{}", text(&b.stderr));
    assert_eq!(out(&b), "one /tmp 65534 boxhost 100\nro\ntmpfs\n");
    let f = "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CapDrop}} {{.Config.Labels.app}} {{.HostConfig.NetworkMode}} {{.Config.StopSignal}} {{.HostConfig.ShmSize}} {{.HostConfig.ReadonlyRootfs}}";
    let (b, k) = both(d, &["inspect", "-f", f, &n]);
    assert_eq!(out(&b), "67108864 50 [ALL] web none SIGUSR1 8388608 true\n");
    assert_eq!(out(&b), out(&k));
}

#[test]
fn ps_tables_and_formats_match_docker() {
    let d = daemon();
    let n1 = name("ps1");
    let n2 = name("ps2");
    let _c = Cleanup {
        d,
        names: vec![n1.clone(), n2.clone()],
    };
    let b = berth(
        d,
        &[
            "run", "-d", "--name", &n1, "-l", "tier=web", IMAGE, "sleep", "300",
        ],
    );
    assert_eq!(rc(&b), 0, "{}", text(&b.stderr));
    assert_eq!(out(&b).trim().len(), 64, "run -d prints the full id");
    let b = berth(d, &["create", "--name", &n2, IMAGE, "sh", "-c", "exit 0"]);
    assert_eq!(rc(&b), 0, "{}", text(&b.stderr));
    // Both containers of this test and no other (names end in -ps1, -ps2).
    let filt = format!("name={}", &n1[..n1.len() - 1]);
    same_eventually(d, &["ps", "-a", "--filter", &filt]);
    same_eventually(d, &["ps", "-a", "-s", "--filter", &filt]);
    same_eventually(d, &["ps", "-a", "--no-trunc", "--filter", &filt]);
    same_eventually(d, &["ps", "-aq", "--filter", &filt]);
    same_eventually(
        d,
        &[
            "ps",
            "--filter",
            &filt,
            "--format",
            "table {{.ID}}\t{{.Names}}",
        ],
    );
    same_eventually(
        d,
        &[
            "ps",
            "-a",
            "--filter",
            &filt,
            "--format",
            "{{.Names}} {{.Label \"tier\"}} {{.State}}",
        ],
    );
    same_eventually(d, &["ps", "-a", "-n", "1", "--format", "{{.Names}}"]);
    same_eventually(
        d,
        &["container", "ls", "-l", "--format", "{{.ID}} {{.Image}}"],
    );
    // {{json .}}: the same object (the clock-driven fields aside).
    let strip = |s: String| -> Vec<Value> {
        s.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let m = v.as_object_mut().unwrap();
                m.remove("RunningFor");
                m.remove("Status");
                v
            })
            .collect()
    };
    let (b, k) = both(
        d,
        &["ps", "-a", "--filter", &filt, "--format", "{{json .}}"],
    );
    assert_eq!(strip(out(&b)), strip(out(&k)));
    assert_eq!(strip(out(&b)).len(), 2);
}

#[test]
fn images_match_docker() {
    let d = daemon();
    same_eventually(d, &["images"]);
    same_eventually(d, &["images", "-q"]);
    same_eventually(d, &["images", "--digests"]);
    same_eventually(d, &["images", "--no-trunc", "busybox"]);
    same_eventually(
        d,
        &[
            "image",
            "ls",
            "--format",
            "table {{.Repository}}:{{.Tag}}\t{{.ID}}",
        ],
    );
    same_eventually(
        d,
        &[
            "images",
            "--filter",
            "reference=busybox",
            "--format",
            "{{json .}}",
        ],
    );
}

#[test]
fn inspect_matches_docker() {
    let d = daemon();
    let n = name("insp");
    let _c = Cleanup {
        d,
        names: vec![n.clone()],
    };
    assert_eq!(
        rc(&berth(
            d,
            &["run", "-d", "--name", &n, IMAGE, "sleep", "300"]
        )),
        0
    );
    for f in [
        "{{.State.Pid}} {{.Name}} {{json .Config.Cmd}} {{.State.Running}}",
        "{{range .Config.Env}}{{println .}}{{end}}",
        "{{if .State.Running}}up{{else}}down{{end}} {{.Config.Image | upper}} {{join .Config.Cmd \",\"}}",
        "{{.Id}}\t{{.HostConfig.NetworkMode}}",
    ] {
        let (b, k) = both(d, &["inspect", "--format", f, &n]);
        assert_eq!(rc(&b), 0, "{}", text(&b.stderr));
        assert_eq!(out(&b), out(&k), "format {f}");
    }
    // Without a format: the same JSON document (the daemon's key order kept).
    let (b, k) = both(d, &["inspect", &n]);
    let bv: Value = serde_json::from_str(&out(&b)).unwrap();
    let kv: Value = serde_json::from_str(&out(&k)).unwrap();
    assert_eq!(bv, kv);
    assert!(
        out(&b).starts_with("[\n    {\n        \"Id\": "),
        "{}",
        out(&b)
    );
    let (b, k) = both(
        d,
        &[
            "inspect",
            "--type",
            "image",
            "-f",
            "{{.Id}} {{.RepoTags}}",
            IMAGE,
        ],
    );
    assert_eq!(out(&b), out(&k));
    let (b, k) = both(d, &["inspect", "nosuch-object-xyz"]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));
    assert_eq!(rc(&b), 1);
    let b = berth(d, &["inspect", "-f", "{{.State.Pid", &n]);
    assert_ne!(rc(&b), 0);
    assert!(text(&b.stderr).contains("template"), "{}", text(&b.stderr));
}

#[test]
fn logs_match_docker() {
    let d = daemon();
    let n = name("logs");
    let _c = Cleanup {
        d,
        names: vec![n.clone()],
    };
    let b = berth(
        d,
        &[
            "run",
            "--name",
            &n,
            IMAGE,
            "sh",
            "-c",
            "for i in 1 2 3; do echo out$i; echo err$i >&2; done",
        ],
    );
    assert_eq!(rc(&b), 0);
    for args in [
        vec!["logs", n.as_str()],
        vec!["logs", "--tail", "1", n.as_str()],
        vec!["logs", "-n", "2", n.as_str()],
        vec!["logs", "--since", "1h", n.as_str()],
        vec!["logs", "--until", "2000-01-01T00:00:00Z", n.as_str()],
    ] {
        let (b, k) = both(d, &args);
        assert_eq!(out(&b), out(&k), "{args:?}");
        assert_eq!(text(&b.stderr), text(&k.stderr), "{args:?}");
    }
    assert_eq!(out(&berth(d, &["logs", &n])), "out1\nout2\nout3\n");
    // (--tail would race stdout against stderr for the last line.)
    let t = out(&berth(d, &["logs", "-t", &n]));
    assert!(
        t.starts_with("20") && t.contains("Z out3"),
        "timestamps: {t:?}"
    );
    let (b, k) = both(d, &["logs", "nosuch-container-xyz"]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));
}

#[test]
fn exec_matches_docker() {
    let d = daemon();
    let n = name("exec");
    let _c = Cleanup {
        d,
        names: vec![n.clone()],
    };
    assert_eq!(
        rc(&berth(
            d,
            &["run", "-d", "--name", &n, IMAGE, "sleep", "300"]
        )),
        0
    );
    let (b, k) = both(
        d,
        &["exec", &n, "sh", "-c", "echo out; echo err >&2; exit 5"],
    );
    assert_eq!((rc(&b), out(&b)), (5, "out\n".to_string()));
    assert_eq!(text(&b.stderr), "err\n");
    assert_eq!(rc(&k), 5);
    let args = [
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "65534",
        &n,
        "sh",
        "-c",
        "echo $FOO $PWD $(id -u)",
    ];
    let (b, k) = both(d, &args);
    assert_eq!(out(&b), "bar /tmp 65534\n");
    assert_eq!(out(&b), out(&k));
    let (b, k) = both(d, &["exec", &n, "nonexistent-cmd"]);
    assert_eq!(rc(&b), rc(&k));
    assert_eq!(text(&b.stderr), text(&k.stderr));
    assert_eq!(
        rc(&berth(d, &["exec", "-d", &n, "touch", "/tmp/detached"])),
        0
    );
    wait_until("exec -d ran", || {
        rc(&berth(d, &["exec", &n, "test", "-e", "/tmp/detached"])) == 0
    });
    let (b, k) = both(d, &["exec", "nosuch-container-xyz", "true"]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));
}

#[test]
fn interactive_tty_with_detach_keys() {
    let d = daemon();
    let bin = berth_bin();
    // -it: a tty inside, typed input, the terminal size, the shell's exit code.
    let o = pty(
        d,
        &[
            "expect:# ",
            "send:tty; echo $((6*7)); stty size\\r",
            "expect:42",
            "send:exit 4\\r",
        ],
        &[bin, "run", "-it", "--rm", IMAGE, "sh"],
    );
    let s = out(&o);
    assert_eq!(rc(&o), 4, "{s}");
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(s.contains("24 80"), "{s}");

    // ctrl-p ctrl-q detaches and leaves the container running; attach comes back.
    let n = name("detach");
    let _c = Cleanup {
        d,
        names: vec![n.clone()],
    };
    let o = pty(
        d,
        &["expect:# ", "send:\\x10\\x11"],
        &[bin, "run", "-it", "--name", &n, IMAGE, "sh"],
    );
    assert_eq!(rc(&o), 0, "{}", out(&o));
    assert_eq!(
        out(&berth(d, &["inspect", "-f", "{{.State.Running}}", &n])),
        "true\n"
    );
    let o = pty(
        d,
        &["send:\\r", "expect:# ", "send:echo back; exit 7\\r"],
        &[bin, "attach", &n],
    );
    assert_eq!(rc(&o), 7, "{}", out(&o));
    assert!(out(&o).contains("back"));
    wait_until("container exited", || {
        out(&berth(d, &["inspect", "-f", "{{.State.Status}}", &n])) == "exited\n"
    });

    // Custom detach keys, and exec -it.
    let n2 = name("exectty");
    let _c2 = Cleanup {
        d,
        names: vec![n2.clone()],
    };
    assert_eq!(
        rc(&berth(
            d,
            &["run", "-d", "--name", &n2, IMAGE, "sleep", "300"]
        )),
        0
    );
    let o = pty(
        d,
        &["expect:# ", "send:stty size; exit 6\\r"],
        &[bin, "exec", "-it", &n2, "sh"],
    );
    assert_eq!(rc(&o), 6, "{}", out(&o));
    assert!(out(&o).contains("24 80"));
    let o = pty(
        d,
        &["expect:# ", "send:\\x18"],
        &[bin, "exec", "-it", "--detach-keys", "ctrl-x", &n2, "sh"],
    );
    assert_eq!(rc(&o), 0, "{}", out(&o));

    // -it without a terminal is refused as docker does.
    let b = berth(d, &["run", "-it", "--rm", IMAGE, "true"]);
    assert_eq!(rc(&b), 1);
    assert!(text(&b.stderr).contains("not a TTY"));
}

#[test]
fn stdin_is_forwarded_without_tty() {
    let d = daemon();
    let mut c = std::process::Command::new(berth_bin());
    c.args(["run", "-i", "--rm", IMAGE, "sh", "-c", "tr a-z A-Z; exit 9"])
        .env("DOCKER_HOST", &d.host)
        .env_remove("BERTH_HOST")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"hello stdin\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(out(&o), "HELLO STDIN\n");
    assert_eq!(rc(&o), 9);
}

#[test]
fn lifecycle_commands() {
    let d = daemon();
    let n = name("life");
    let n2 = format!("{n}-renamed");
    let _c = Cleanup {
        d,
        names: vec![n.clone(), n2.clone()],
    };
    let st = |c: &str| out(&berth(d, &["inspect", "-f", "{{.State.Status}}", c]));
    assert_eq!(
        rc(&berth(d, &["create", "--name", &n, IMAGE, "sleep", "300"])),
        0
    );
    assert_eq!(st(&n), "created\n");
    assert_eq!(out(&berth(d, &["start", &n])), format!("{n}\n"));
    assert_eq!(st(&n), "running\n");
    assert_eq!(rc(&berth(d, &["pause", &n])), 0);
    assert_eq!(st(&n), "paused\n");
    assert_eq!(rc(&berth(d, &["unpause", &n])), 0);
    let top = out(&berth(d, &["top", &n]));
    assert!(top.starts_with("UID") && top.contains("sleep 300"), "{top}");
    let stats = berth(
        d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            &n,
        ],
    );
    assert_eq!(out(&stats), format!("{n} 1\n"), "{}", text(&stats.stderr));
    assert_eq!(
        rc(&berth(
            d,
            &["update", "--memory", "32m", "--memory-swap", "64m", &n]
        )),
        0
    );
    assert_eq!(
        out(&berth(d, &["inspect", "-f", "{{.HostConfig.Memory}}", &n])),
        "33554432\n"
    );
    assert_eq!(rc(&berth(d, &["rename", &n, &n2])), 0);
    assert_eq!(
        out(&berth(d, &["kill", "-s", "KILL", &n2])),
        format!("{n2}\n")
    );
    assert_eq!(out(&berth(d, &["wait", &n2])), "137\n");
    assert_eq!(rc(&berth(d, &["restart", "-t", "1", &n2])), 0);
    assert_eq!(st(&n2), "running\n");
    assert_eq!(rc(&berth(d, &["stop", "-t", "1", &n2])), 0);
    assert_eq!(st(&n2), "exited\n");
    let (b, k) = both(d, &["stop", "nosuch-container-xyz"]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));
    assert_eq!(out(&berth(d, &["rm", "-f", &n2])), format!("{n2}\n"));
    let (b, k) = both(d, &["rm", &n2]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));

    // start -a returns the container's exit code.
    assert_eq!(
        rc(&berth(
            d,
            &[
                "create",
                "--name",
                &n,
                IMAGE,
                "sh",
                "-c",
                "echo hey; exit 2"
            ]
        )),
        0
    );
    let b = berth(d, &["start", "-a", &n]);
    assert_eq!((rc(&b), out(&b)), (2, "hey\n".to_string()));
}

#[test]
fn import_tag_rmi() {
    let d = daemon();
    let repo = name("imp");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from import\n").unwrap();
    let tar = dir.path().join("x.tar");
    assert!(
        std::process::Command::new("tar")
            .args([
                "-C",
                dir.path().to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                "hello.txt"
            ])
            .status()
            .unwrap()
            .success()
    );
    let b = berth(
        d,
        &[
            "import",
            "-c",
            "LABEL a=b",
            "-m",
            "msg",
            tar.to_str().unwrap(),
            &format!("{repo}:v1"),
        ],
    );
    assert_eq!(rc(&b), 0, "{}", text(&b.stderr));
    assert!(out(&b).starts_with("sha256:"), "{}", out(&b));
    let f = "{{.Config.Labels.a}} {{.Comment}} {{.RepoTags}}";
    assert_eq!(
        out(&berth(
            d,
            &["image", "inspect", "-f", f, &format!("{repo}:v1")]
        )),
        format!("b msg [{repo}:v1]\n")
    );
    assert_eq!(
        rc(&berth(
            d,
            &["tag", &format!("{repo}:v1"), &format!("{repo}:v2")]
        )),
        0
    );
    same_eventually(d, &["images", &repo]);
    let b = berth(d, &["rmi", &format!("{repo}:v2")]);
    assert_eq!(out(&b), format!("Untagged: {repo}:v2\n"));
    let b = berth(d, &["rmi", &format!("{repo}:v1")]);
    assert!(out(&b).contains("Deleted: sha256:"), "{}", out(&b));
    let (b, k) = both(d, &["rmi", &format!("{repo}:v1")]);
    assert_eq!((rc(&b), text(&b.stderr)), (rc(&k), text(&k.stderr)));
    // A file that does not exist: a clear error, nothing imported.
    let b = berth(d, &["import", "/nonexistent.tar", &format!("{repo}:bad")]);
    assert_eq!(rc(&b), 1);
    assert!(text(&b.stderr).contains("/nonexistent.tar"));
    assert_eq!(out(&berth(d, &["images", "-q", &repo])), "");
}

#[test]
fn events_version_info() {
    let d = daemon();
    let n = name("ev");
    let t0 = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    assert_eq!(
        rc(&berth(d, &["run", "--rm", "--name", &n, IMAGE, "true"])),
        0
    );
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let f = format!("container={n}");
    let args = [
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        &f,
        "--format",
        "{{.Type}} {{.Action}}",
    ];
    let (b, k) = both(d, &args);
    assert_eq!(out(&b), out(&k));
    assert!(out(&b).contains("container start"), "{}", out(&b));
    let args = ["events", "--since", &t0, "--until", &until, "--filter", &f];
    let (b, k) = both(d, &args);
    assert_eq!(out(&b), out(&k));

    let (b, k) = both(
        d,
        &[
            "version",
            "--format",
            "{{.Server.Version}} {{.Server.APIVersion}}",
        ],
    );
    assert_eq!(out(&b), out(&k));
    let (b, k) = both(
        d,
        &[
            "info",
            "--format",
            "{{.ServerVersion}} {{.Driver}} {{.NCPU}}",
        ],
    );
    assert_eq!(out(&b), out(&k));
    assert!(out(&berth(d, &["info"])).contains("Server Version: 20.10"));
    assert!(out(&berth(d, &["version"])).contains("API version:      1.41"));
}

#[test]
fn unreachable_daemon_and_completion() {
    let b = std::process::Command::new(berth_bin())
        .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
        .output()
        .unwrap();
    assert_eq!(rc(&b), 1);
    assert!(
        text(&b.stderr).contains("/nonexistent/berth.sock"),
        "{}",
        text(&b.stderr)
    );
    let b = std::process::Command::new(berth_bin())
        .args(["-H", "tcp://1.2.3.4:2375", "ps"])
        .output()
        .unwrap();
    assert_eq!(rc(&b), 125);

    let dir = tempfile::tempdir().unwrap();
    for (sh, check) in [("bash", vec!["-n"]), ("zsh", vec!["-n"])] {
        let o = std::process::Command::new(berth_bin())
            .args(["completion", sh])
            .output()
            .unwrap();
        assert_eq!(rc(&o), 0);
        let s = out(&o);
        assert!(s.contains("berth") && s.contains("inspect"), "{sh}");
        let f = dir.path().join(format!("c.{sh}"));
        std::fs::write(&f, &s).unwrap();
        if sh == "bash"
            || std::path::Path::new("/usr/bin/zsh").exists()
            || std::path::Path::new("/bin/zsh").exists()
        {
            let st = std::process::Command::new(sh)
                .args(&check)
                .arg(&f)
                .output()
                .unwrap();
            assert!(st.status.success(), "{sh} -n: {}", text(&st.stderr));
        } else {
            assert!(s.starts_with("#compdef berth"), "zsh script header");
        }
    }
    let h = std::process::Command::new(berth_bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert_eq!(rc(&h), 0);
    assert!(out(&h).contains("Examples:") && out(&h).contains("--hostname"));
}
