//! Health checks end to end: `--health-*` flags and an image's HEALTHCHECK drive
//! `State.Health`, `ps`'s status and `health` filter, and `health_status` events, through the
//! docker CLI and berth against a private berthd.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

fn health(d: &Daemon, name: &str) -> Value {
    let out = d
        .docker(&["inspect", "-f", "{{json .State.Health}}", name])
        .ok();
    serde_json::from_str(out.stdout.trim()).unwrap()
}

fn status(d: &Daemon, name: &str) -> String {
    health(d, name)["Status"].as_str().unwrap_or("").to_string()
}

fn wait_status(d: &Daemon, name: &str, want: &str) {
    wait_for(&format!("{name} {want}"), || {
        (status(d, name) == want).then_some(())
    });
}

#[test]
fn probe_results_drive_the_health_state() {
    let t0 = now_secs();
    let d = Daemon::start();
    d.busybox();
    // Healthy once /tmp/ok exists; failures before that fall in the start period.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -e /tmp/ok && echo fine",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "--health-start-period",
        "1h",
        "--health-start-interval",
        "100ms",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; exec sleep 300",
    ])
    .ok();
    assert_eq!(status(&d, "web"), "starting");
    let ps = d.docker(&["ps", "--format", "{{.Status}}"]).ok().stdout;
    assert!(ps.contains("(health: starting)"), "{ps}");
    wait_status(&d, "web", "healthy");
    let h = health(&d, "web");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "fine\n", "{h}");
    assert!(last["Start"].as_str().unwrap().ends_with('Z'), "{h}");
    let ps = d.docker(&["ps", "--format", "{{.Status}}"]).ok().stdout;
    assert!(ps.contains("(healthy)"), "{ps}");
    let names = d
        .docker(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    assert_eq!(names.trim(), "web");
    let names = d
        .docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    assert_eq!(names.trim(), "");

    // Two failures in a row (the start period no longer counts once healthy): unhealthy.
    d.docker(&["exec", "web", "rm", "/tmp/ok"]).ok();
    wait_status(&d, "web", "unhealthy");
    let h = health(&d, "web");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    assert!(
        d.docker(&["ps", "--format", "{{.Status}}"])
            .ok()
            .stdout
            .contains("(unhealthy)")
    );
    // The events told the story.
    let ev = d
        .docker(&[
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &format!("{}", now_secs() + 1),
            "--filter",
            "container=web",
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .stdout;
    assert!(ev.contains("health_status: healthy"), "{ev}");
    assert!(ev.contains("health_status: unhealthy"), "{ev}");
    assert!(ev.contains("exec_die"), "{ev}");

    // Recovery; after a berthd restart the probe loop is re-adopted (starting again, as
    // dockerd does, then healthy from the next probe).
    d.docker(&["exec", "web", "touch", "/tmp/ok"]).ok();
    wait_status(&d, "web", "healthy");
    let mut d = d;
    d.kill(libc::SIGKILL);
    d.spawn();
    let last_start = |h: &Value| h["Log"].as_array().unwrap().last().unwrap()["Start"].clone();
    let before = last_start(&health(&d, "web"));
    wait_for("a probe after the restart", || {
        let h = health(&d, "web");
        (h["Status"] == "healthy" && last_start(&h) != before).then_some(())
    });

    // Stopped: no more probes, the last state stays visible.
    d.docker(&["stop", "-t", "1", "web"]).ok();
    let n = health(&d, "web")["Log"].as_array().unwrap().len();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(health(&d, "web")["Log"].as_array().unwrap().len(), n);
    d.docker(&["rm", "web"]).ok();
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_probe_past_its_timeout_fails() {
    let d = Daemon::start();
    d.busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo started; sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    wait_status(&d, "slow", "unhealthy");
    let h = health(&d, "slow");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h}");
    let out = last["Output"].as_str().unwrap();
    assert!(
        out.starts_with("Health check exceeded timeout (0.3s)"),
        "{out}"
    );
    assert!(out.contains("started"), "{out}");
    // The timed-out probes were killed: no sleep 30 piles up in the container.
    let top = d.docker(&["top", "slow"]).ok().stdout;
    assert!(
        top.matches("sleep 30").count() <= 1,
        "probes pile up: {top}"
    );
    d.docker(&["rm", "-f", "slow"]).ok();
}

#[test]
fn image_healthcheck_is_inherited_and_can_be_disabled() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["create", "--name", "base", "busybox", "true"])
        .ok();
    d.docker(&[
        "commit",
        "--change",
        "HEALTHCHECK --interval=200ms --retries=1 CMD [\"test\", \"-e\", \"/etc/passwd\"]",
        "base",
        "checked:1",
    ])
    .ok();
    let img = d
        .docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck}}",
            "checked:1",
        ])
        .ok()
        .stdout;
    let img: Value = serde_json::from_str(img.trim()).unwrap();
    assert_eq!(
        img["Test"],
        serde_json::json!(["CMD", "test", "-e", "/etc/passwd"])
    );
    assert_eq!(img["Interval"], 200_000_000);

    d.docker(&[
        "run",
        "-d",
        "--name",
        "inherits",
        "checked:1",
        "sleep",
        "300",
    ])
    .ok();
    wait_status(&d, "inherits", "healthy");
    // The request's fields win; the image's test stays.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tuned",
        "--health-retries",
        "5",
        "checked:1",
        "sleep",
        "300",
    ])
    .ok();
    let cfg = d
        .docker(&["inspect", "-f", "{{json .Config.Healthcheck}}", "tuned"])
        .ok()
        .stdout;
    let cfg: Value = serde_json::from_str(cfg.trim()).unwrap();
    assert_eq!(cfg["Retries"], 5);
    assert_eq!(cfg["Test"][0], "CMD");
    wait_status(&d, "tuned", "healthy");
    // --no-healthcheck: no probe, no Health in inspect.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "checked:1",
        "sleep",
        "300",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(600));
    let h = d
        .docker(&["inspect", "-f", "{{json .State.Health}}", "off"])
        .ok()
        .stdout;
    assert_eq!(h.trim(), "null");
    let names = d
        .docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    assert_eq!(names.trim(), "off");
    d.docker(&["rm", "-f", "inherits", "tuned", "off", "base"])
        .ok();
}

#[test]
fn bad_healthchecks_are_refused_naming_the_problem() {
    let d = Daemon::start();
    d.busybox();
    for (hc, want) in [
        (r#"{"Test": ["BOGUS", "x"]}"#, "unknown type"),
        (r#"{"Test": ["CMD"]}"#, "needs a command"),
        (r#"{"Test": ["CMD", "true"], "Interval": 10}"#, "Interval"),
        (r#"{"Test": ["CMD", "true"], "Retries": -1}"#, "Retries"),
    ] {
        let body = format!(r#"{{"Image": "busybox", "Cmd": ["true"], "Healthcheck": {hc}}}"#);
        let (code, text) = d.request("POST", "/containers/create", Some(&body));
        assert_eq!(code, 400, "{hc}: {text}");
        assert!(text.contains(want), "{hc}: {text}");
    }
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
    let out = d.berth(&["run", "--health-interval", "5x", "busybox", "true"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("health-interval"), "{out:?}");
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout.trim(), "");
}
