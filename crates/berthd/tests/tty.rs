//! Terminals end to end: the docker CLI and berth on a real pseudo-terminal against a private
//! berthd — `run -it`, `attach`, `exec -it`, the terminal size, and detaching with
//! ctrl-p ctrl-q (or custom keys) while the container keeps running.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::*;

/// The pty driver shared with berth-cli's tests (runs a command on a fresh 24x80 terminal
/// and types into it).
fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../berth-cli/tests/pty_drive.py")
}

/// Runs `cli args` (cli: "docker" or "berth") on a terminal, following `steps`.
fn pty(d: &Daemon, cli: &str, steps: &[&str], args: &[&str]) -> Out {
    let host = format!("unix://{}", d.sock.display());
    let bin = if cli == "docker" {
        PathBuf::from(DOCKER)
    } else {
        bin_dir().join("berth")
    };
    let mut c = Command::new("python3");
    c.arg(driver())
        .arg("60")
        .args(steps)
        .arg("--")
        .arg(bin)
        .args(args)
        .env("DOCKER_HOST", &host)
        .env("BERTH_HOST", &host)
        .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"));
    run(&mut c, None)
}

/// The end of the daemon's log, for failure messages.
fn log_tail(d: &Daemon) -> String {
    let log = d.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn state(d: &Daemon, name: &str) -> String {
    d.docker(&["inspect", "-f", "{{.State.Status}}", name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn run_it_sees_a_terminal_and_returns_the_exit_code() {
    let d = Daemon::start();
    d.busybox();
    for cli in ["docker", "berth"] {
        let o = pty(
            &d,
            cli,
            &[
                "expect:# ",
                "send:tty; echo $((6*7)); stty size\\r",
                "expect:42",
                "send:exit 4\\r",
            ],
            &["run", "-it", "--rm", "busybox", "sh"],
        );
        assert_eq!(o.code, 4, "{cli}: {o:?}");
        assert!(o.stdout.contains("/dev/pts/0"), "{cli}: {o:?}");
        assert!(o.stdout.contains("24 80"), "{cli}: {o:?}");
    }
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
}

#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    d.busybox();
    for cli in ["docker", "berth"] {
        let n = format!("det-{cli}");
        // run -it, then ctrl-p ctrl-q: the client ends, the shell goes on.
        let o = pty(
            &d,
            cli,
            &[
                "expect:# ",
                "send:echo $((5*5))\\r",
                "expect:25",
                "send:\\x10\\x11",
            ],
            &["run", "-it", "--name", &n, "busybox", "sh"],
        );
        assert_eq!(o.code, 0, "{cli}: {o:?}");
        assert_eq!(state(&d, &n), "running", "{cli}");

        // attach, look around, detach again (docker's attach reports the escape sequence
        // and exits 1, as it does against dockerd).
        let o = pty(
            &d,
            cli,
            &[
                "send:\\r",
                "expect:# ",
                "send:echo again $((3*3))\\r",
                "expect:again 9",
                "send:\\x10\\x11",
            ],
            &["attach", &n],
        );
        assert!(o.stdout.contains("again 9"), "{cli}: {o:?}");
        if cli == "docker" {
            assert_eq!(o.code, 1, "{o:?}");
            assert!(o.stdout.contains("read escape sequence"), "{o:?}");
        } else {
            assert_eq!(o.code, 0, "{o:?}");
        }
        assert_eq!(state(&d, &n), "running", "{cli}");

        // Custom keys on attach; then the shell's own exit code comes back through attach.
        let o = pty(
            &d,
            cli,
            &["send:\\r", "expect:# ", "send:\\x18"],
            &["attach", "--detach-keys", "ctrl-x", &n],
        );
        assert!(o.code == 0 || o.code == 1, "{cli}: {o:?}");
        assert_eq!(state(&d, &n), "running", "{cli}");
        let o = pty(
            &d,
            cli,
            &["send:\\r", "expect:# ", "send:exit 7\\r"],
            &["attach", &n],
        );
        assert_eq!(o.code, 7, "{cli}: {o:?}");
        wait_for("container exited", || {
            (state(&d, &n) == "exited").then_some(())
        });
        d.docker(&["rm", &n]).ok();
    }
}

#[test]
fn exec_it_gets_its_own_terminal() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "-d", "--name", "box", "busybox", "sleep", "300"])
        .ok();
    for cli in ["docker", "berth"] {
        let o = pty(
            &d,
            cli,
            &["expect:# ", "send:tty; stty size; exit 6\\r"],
            &["exec", "-it", "box", "sh"],
        );
        assert_eq!(o.code, 6, "{cli}: {o:?}\n{}", log_tail(&d));
        assert!(o.stdout.contains("24 80"), "{cli}: {o:?}");
        assert!(o.stdout.contains("/dev/pts/"), "{cli}: {o:?}");
        // Detaching from an exec leaves the container as it was.
        let o = pty(
            &d,
            cli,
            &["expect:# ", "send:\\x10\\x11"],
            &["exec", "-it", "box", "sh"],
        );
        assert!(o.code == 0 || o.code == 1, "{cli}: {o:?}");
        assert_eq!(state(&d, "box"), "running");
    }
    d.docker(&["rm", "-f", "box"]).ok();
}
