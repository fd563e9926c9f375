//! The real docker CLI against the fake backend: what users see and the exit codes.
#![allow(clippy::unwrap_used)]

mod fake;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use fake::Daemon;

const DOCKER: &str = "/usr/local/bin/docker";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the docker CLI against `d` (killed after 60 s), feeding `stdin`.
async fn docker(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let host = format!("unix://{}", d.sock.display());
    let config = d.dir.path().join("docker-config");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new("timeout");
        c.arg("60").arg(DOCKER).args(&args);
        c.env("DOCKER_HOST", host)
            .env("DOCKER_CONFIG", config)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            let mut i = child.stdin.take().unwrap();
            i.write_all(&input).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn have_cli() -> bool {
    if std::path::Path::new(DOCKER).exists() {
        return true;
    }
    eprintln!("skipping: no docker CLI at {DOCKER}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_ps_inspect() {
    if !have_cli() {
        return;
    }
    let d = Daemon::start().await;
    let o = docker(&d, &["version"], None).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("Server: berth fake"), "{}", o.stdout);
    assert!(o.stdout.contains("0.1.0-fake"), "{}", o.stdout);
    assert!(
        o.stdout.contains("1.50 (minimum version 1.24)"),
        "{}",
        o.stdout
    );

    let id = d.fake.add("one", &["sleep", "9"], false, true);
    d.fake.add("two", &["sleep"], false, false);
    let o = docker(&d, &["ps", "--format", "{{.Names}} {{.Status}}"], None).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "one Up 2 seconds\n"),
        "{}",
        o.stderr
    );
    let o = docker(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}",
        ],
        None,
    )
    .await;
    assert_eq!(o.stdout, "two\n", "{}", o.stderr);
    let o = docker(&d, &["ps", "-aq", "--no-trunc"], None).await;
    assert_eq!(o.stdout.lines().count(), 2);
    assert!(o.stdout.contains(&id));

    let o = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Running}} {{.Name}} {{.Config.Image}}",
            "one",
        ],
        None,
    )
    .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "true /one busybox:latest\n"),
        "{}",
        o.stderr
    );
    let o = docker(&d, &["container", "inspect", "nosuch"], None).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such container: nosuch"),
        "{}",
        o.stderr
    );
    let o = docker(&d, &["stop", "nosuch"], None).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Error response from daemon: No such container: nosuch"),
        "{}",
        o.stderr
    );
    let o = docker(&d, &["rm", "one"], None).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Error response from daemon: cannot remove container \"/one\""),
        "{}",
        o.stderr
    );
    let o = docker(&d, &["rm", "-f", "one"], None).await;
    assert_eq!((o.code, o.stdout.as_str()), (0, "one\n"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_and_logs() {
    if !have_cli() {
        return;
    }
    let d = Daemon::start().await;
    let id = d.fake.add("w", &["sleep"], false, true);
    let before = d.fake.waits_registered.load(Ordering::SeqCst);
    let waiter = docker(&d, &["wait", "w"], None);
    let fake = d.fake.clone();
    let exiter = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while fake.waits_registered.load(Ordering::SeqCst) == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the CLI never registered its wait"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fake.exit(&id, 5);
    };
    let (o, ()) = tokio::join!(waiter, exiter);
    assert_eq!((o.code, o.stdout.as_str()), (0, "5\n"), "{}", o.stderr);
    let o = docker(&d, &["wait", "ghost"], None).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such container: ghost"),
        "{}",
        o.stderr
    );

    d.fake.add("f", &["fail"], false, false);
    assert_eq!(docker(&d, &["start", "f"], None).await.code, 0);
    let o = docker(&d, &["logs", "f"], None).await;
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "trying\n", "oops\n")
    );
    let o = docker(&d, &["logs", "-t", "--tail", "1", "f"], None).await;
    assert!(
        o.stderr.ends_with(" oops\n") && o.stderr.contains('T'),
        "{:?}",
        o.stderr
    );
    assert_eq!(o.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_pipes_stdin_and_output() {
    if !have_cli() {
        return;
    }
    let d = Daemon::start().await;
    d.fake.add("cat", &["cat"], false, true);
    let o = docker(
        &d,
        &["attach", "cat"],
        Some(b"hello over the wire\nsecond line\n"),
    )
    .await;
    assert_eq!(
        o.stdout, "hello over the wire\nsecond line\n",
        "stderr: {}",
        o.stderr
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        !d.fake.container("cat").unwrap().running,
        "stdin EOF ended the fake cat"
    );
}

/// `docker run` sends the CLI's full create body (so no field it sends is refused), attaches,
/// waits, starts, and exits with the container's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_creates_attaches_and_exits_with_the_code() {
    if !have_cli() {
        return;
    }
    let d = Daemon::start().await;
    let o = docker(
        &d,
        &[
            "run", "--name", "r1", "-e", "A=b", "-l", "x=y", "--memory", "64m", "busybox", "echo",
            "hi", "there",
        ],
        None,
    )
    .await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "hi there\n"),
        "{}",
        o.stderr
    );
    let c = d.fake.container("r1").unwrap();
    assert_eq!(c.cmd, ["echo", "hi", "there"]);
    assert_eq!(c.labels["x"], "y");
    let o = docker(&d, &["run", "busybox", "fail"], None).await;
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (3, "trying\n", "oops\n")
    );
    let o = docker(&d, &["run", "--name", "r1", "busybox", "echo"], None).await;
    assert_eq!(o.code, 125);
    assert!(
        o.stderr.contains(
            "Error response from daemon: Conflict. The container name \"/r1\" is already in use"
        ),
        "{}",
        o.stderr
    );
    // Many flags: every field the CLI fills in must be accepted.
    let o = docker(
        &d,
        &[
            "create",
            "-it",
            "--name",
            "many",
            "-p",
            "8080:80",
            "-v",
            "/x:/y:ro",
            "--restart",
            "on-failure:3",
            "--health-cmd",
            "true",
            "--entrypoint",
            "sh",
            "-w",
            "/w",
            "-u",
            "1:2",
            "--stop-signal",
            "TERM",
            "--stop-timeout",
            "3",
            "--network",
            "none",
            "--cpus",
            "0.5",
            "--pids-limit",
            "10",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/t",
            "--ulimit",
            "nofile=10:20",
            "--add-host",
            "h:1.2.3.4",
            "--dns",
            "1.1.1.1",
            "--init",
            "--read-only",
            "--shm-size",
            "1m",
            "--mount",
            "type=volume,src=v,dst=/v",
            "--device",
            "/dev/null",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--hostname",
            "hn",
            "--log-opt",
            "max-size=1m",
            "--annotation",
            "a=b",
            "busybox",
            "-c",
            "true",
        ],
        None,
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let raw = d
        .fake
        .last_create
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .2
        .clone();
    assert_eq!(raw["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(raw["Entrypoint"][0], "sh");
    let o = docker(
        &d,
        &["create", "--platform", "windows/amd64", "busybox"],
        None,
    )
    .await;
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("windows/amd64"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_stdin() {
    if !have_cli() {
        return;
    }
    let d = Daemon::start().await;
    d.fake.add("e", &["sleep"], false, true);
    let o = docker(&d, &["exec", "-i", "e", "cat"], Some(b"via exec\n")).await;
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "exec> via exec\n"),
        "{}",
        o.stderr
    );
    let o = docker(&d, &["exec", "-d", "e", "cat"], None).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = docker(&d, &["exec", "nosuch", "cat"], None).await;
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("No such container: nosuch"),
        "{}",
        o.stderr
    );
}
