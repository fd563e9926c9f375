//! Images from containers through the docker CLI and `berth`: diff, commit, export/import,
//! history and image inspect.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Instant;

use serde_json::Value;
use support::*;

fn image(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["image", "inspect", name]).ok();
    serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
}

/// Image ids and snapshot directories, to show a failed request left nothing.
fn footprint(d: &Daemon) -> (String, usize) {
    let ids = d.docker(&["images", "-aq", "--no-trunc"]).ok().stdout;
    let snaps = std::fs::read_dir(d.data_root().join("snapshots/snapshots"))
        .unwrap()
        .count();
    (ids, snaps)
}

#[test]
fn diff_lists_changes_as_docker() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/new; rm /etc/group; echo x >> /etc/passwd; mkdir -p /var/a/b",
    ])
    .ok();
    let want =
        "C /etc\nD /etc/group\nC /etc/passwd\nC /tmp\nA /tmp/new\nC /var\nA /var/a\nA /var/a/b\n";
    assert_eq!(d.docker(&["diff", "changer"]).ok().stdout, want);
    assert_eq!(d.berth(&["diff", "changer"]).ok().stdout, want);
    assert_eq!(d.berth(&["container", "diff", "changer"]).ok().stdout, want);
    // The mount points the runtime made (/etc/hosts …) are not the container's changes.
    d.docker(&["run", "--name", "quiet", "busybox", "true"])
        .ok();
    assert_eq!(d.docker(&["diff", "quiet"]).ok().stdout, "");
    // A running container's changes show at once.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo hi > /root/file; sleep 1000",
    ])
    .ok();
    wait_for("the running container's change", || {
        let out = d.docker(&["diff", "live"]).ok().stdout;
        (out == "C /root\nA /root/file\n").then_some(())
    });
    let out = d.docker(&["diff", "nosuch"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("nosuch"), "{out:?}");
}

#[test]
fn commit_then_run_the_new_image() {
    let d = Daemon::start();
    d.busybox();
    let base = image(&d, "busybox");
    d.docker(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        "echo hello > /greeting",
    ])
    .ok();
    let id = d
        .docker(&[
            "commit",
            "-c",
            "CMD [\"cat\", \"/greeting\"]",
            "-c",
            "ENV WHO=world",
            "-m",
            "add a greeting",
            "-a",
            "Ada <ada@example.com>",
            "maker",
            "greeter:1",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker(&["run", "--rm", "greeter:1"]).ok().stdout,
        "hello\n"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "greeter:1", "sh", "-c", "echo $WHO"])
            .ok()
            .stdout,
        "world\n"
    );

    // The layer holds the container's own change, not the mount points the runtime made:
    // of the two snapshot directories with /greeting (the container's upper and the new
    // layer), one has no /etc/hosts.
    let with_greeting: Vec<_> = std::fs::read_dir(d.data_root().join("snapshots/snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("fs"))
        .filter(|fs| fs.join("greeting").exists())
        .collect();
    assert_eq!(with_greeting.len(), 2, "{with_greeting:?}");
    assert!(
        with_greeting
            .iter()
            .any(|fs| !fs.join("etc/hosts").exists()),
        "the committed layer has the runtime's mount points"
    );

    let img = image(&d, "greeter:1");
    assert_eq!(img["Id"], id);
    assert_eq!(img["Comment"], "add a greeting");
    assert_eq!(img["Author"], "Ada <ada@example.com>");
    assert_eq!(img["Parent"], base["Id"]);
    assert_eq!(base["Parent"], "");
    assert!(
        matches!(
            img["GraphDriver"]["Name"].as_str(),
            Some("overlay" | "copy")
        ),
        "{img}"
    );
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/greeting"])
    );
    let layers = img["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base["RootFS"]["Layers"][0]);
    assert!(img["Size"].as_i64().unwrap() > base["Size"].as_i64().unwrap());
    assert!(img["Created"].as_str().unwrap() >= base["Created"].as_str().unwrap());

    // History: the commit on top, with the image's id, then the base image's entry.
    let h = d
        .docker(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
            "greeter:1",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 2, "{h}");
    assert_eq!(
        lines[0],
        format!("{id}|sh -c echo hello > /greeting|add a greeting")
    );
    assert!(lines[1].starts_with(base["Id"].as_str().unwrap()), "{h}");
    let bh = d.berth(&["history", "greeter:1"]).ok().stdout;
    assert!(bh.starts_with("IMAGE"), "{bh}");
    assert!(bh.contains("add a greeting"), "{bh}");
    assert_eq!(bh.lines().count(), 3, "{bh}");

    // The parent is now needed: removing it is refused.
    let out = d.docker(&["rmi", base["Id"].as_str().unwrap()]);
    assert_ne!(out.code, 0, "{out:?}");

    // berth commit of a running container, paused while read (-p default) and running after.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "echo live > /state; sleep 1000",
    ])
    .ok();
    wait_for("the file", || {
        d.docker(&["diff", "busy"])
            .ok()
            .stdout
            .contains("A /state")
            .then_some(())
    });
    let out = d
        .berth(&[
            "commit",
            "-m",
            "from berth",
            "-c",
            "CMD cat /state",
            "busy",
            "fromberth",
        ])
        .ok();
    assert!(out.stdout.trim().starts_with("sha256:"), "{out:?}");
    let state = d
        .docker(&["inspect", "-f", "{{.State.Status}}", "busy"])
        .ok()
        .stdout;
    assert_eq!(state.trim(), "running");
    assert_eq!(
        d.docker(&["run", "--rm", "fromberth"]).ok().stdout,
        "live\n"
    );
    assert_eq!(
        image(&d, "fromberth")["Config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "cat /state"])
    );
    // --pause=false works too.
    d.berth(&["commit", "--pause=false", "busy", "nopause:1"])
        .ok();
    assert_eq!(
        d.docker(&["run", "--rm", "nopause:1", "cat", "/state"])
            .ok()
            .stdout,
        "live\n"
    );
}

#[test]
fn export_import_round_trip() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo payload > /data/f && rm /etc/group",
    ])
    .ok();
    let tar = d.dir.path().join("src.tar");
    d.docker(&["export", "-o", tar.to_str().unwrap(), "src"])
        .ok();
    let list = run(std::process::Command::new("tar").arg("tf").arg(&tar), None)
        .ok()
        .stdout;
    assert!(list.lines().any(|l| l == "data/f"), "{list}");
    assert!(list.lines().any(|l| l == "bin/busybox"), "{list}");
    assert!(
        !list.lines().any(|l| l == "etc/group"),
        "deleted file exported"
    );
    assert!(!list.contains(".wh."), "whiteout exported");
    d.docker(&["import", tar.to_str().unwrap(), "roundtrip:1"])
        .ok();
    assert_eq!(
        d.docker(&["run", "--rm", "roundtrip:1", "cat", "/data/f"])
            .ok()
            .stdout,
        "payload\n"
    );
    assert_ne!(
        d.docker(&["run", "--rm", "roundtrip:1", "cat", "/etc/group"])
            .code,
        0
    );
    // berth export -o, and to stdout, give the same files.
    let tar2 = d.dir.path().join("src2.tar");
    d.berth(&["export", "-o", tar2.to_str().unwrap(), "src"])
        .ok();
    let list2 = run(std::process::Command::new("tar").arg("tf").arg(&tar2), None)
        .ok()
        .stdout;
    assert_eq!(list, list2);
    let out = d.berth(&["export", "src"]).ok();
    assert!(out.stdout.len() > 1_000_000, "{}", out.stdout.len());
    // Exporting a running container works and leaves nothing mounted.
    d.docker(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"])
        .ok();
    let out = d
        .docker(&["export", "-o", tar2.to_str().unwrap(), "up"])
        .ok();
    assert_eq!(out.code, 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("export-"),
        "an export mount was left behind"
    );
    let out = d.docker(&["export", "-o", tar2.to_str().unwrap(), "nosuch"]);
    assert_ne!(out.code, 0);
}

#[test]
fn commit_of_a_thousand_small_files() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "many",
        "busybox",
        "sh",
        "-c",
        "mkdir /many && cd /many && i=0; while [ $i -lt 1000 ]; do echo $i > f$i; i=$((i+1)); done",
    ])
    .ok();
    let t = Instant::now();
    d.docker(&["commit", "many", "many:1"]).ok();
    eprintln!("commit of 1000 small files took {:?}", t.elapsed());
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "many:1",
            "sh",
            "-c",
            "ls /many | wc -l; cat /many/f999"
        ])
        .ok()
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["1000", "999"]
    );
}

#[test]
fn bad_commits_leave_nothing() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "--name", "box", "busybox", "touch", "/x"])
        .ok();
    let before = footprint(&d);

    let out = d.docker(&["commit", "-c", "FROBNICATE now", "box", "bad:1"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("FROBNICATE"), "{out:?}");
    let out = d.berth(&[
        "commit",
        "-c",
        "HEALTHCHECK --interval=5x CMD true",
        "box",
        "bad:2",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("invalid duration"), "{out:?}");
    let out = d.docker(&["commit", "nosuch", "bad:3"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("nosuch"), "{out:?}");

    let (s, body) = d.request(
        "POST",
        "/v1.50/commit?container=box&changes=BOGUS%20x",
        None,
    );
    assert_eq!(s, 400, "{body}");
    let (s, body) = d.request("POST", "/v1.50/commit?container=nosuch", None);
    assert_eq!(s, 404, "{body}");
    let (s, body) = d.request("POST", "/v1.50/commit", None);
    assert_eq!(s, 400, "{body}");
    let (s, body) = d.request("POST", "/v1.50/commit?container=box&repo=Bad%20Name", None);
    assert_eq!(s, 400, "{body}");
    let (s, body) = d.request(
        "POST",
        "/v1.50/commit?container=box",
        Some("{\"Bogus\": 1}"),
    );
    assert_eq!(s, 400, "{body}");

    assert_eq!(footprint(&d), before);
    assert!(
        !d.docker(&["images"]).ok().stdout.contains("bad"),
        "a failed commit left an image"
    );
}
