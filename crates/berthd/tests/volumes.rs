//! Volumes end to end: named and anonymous volumes, copy-up from the image, binds, tmpfs,
//! `--volumes-from`, in-use protection, restarts, and bad input leaving nothing behind —
//! driven by the docker CLI and by berth against a private berthd.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, what: &str) -> Value {
    let v: Value = serde_json::from_str(&d.docker(&["inspect", what]).ok().stdout).unwrap();
    v[0].clone()
}

fn volume_names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["volume", "ls", "-q"]).ok().stdout;
    out.split_whitespace().map(str::to_string).collect()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn named_volume_shares_data_and_is_protected_while_in_use() {
    let d = Daemon::start();
    d.busybox();
    // Auto-created on first use; the next container reads what the first wrote.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ])
    .ok();
    assert_eq!(volume_names(&d), ["data"]);
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f",
        ])
        .ok();
    assert_eq!(out.stdout, "hello\n");
    // Read-only refuses writes.
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    // A stopped (never started) container keeps the volume in use.
    let id = d
        .docker(&[
            "create",
            "--name",
            "holder",
            "-v",
            "data:/data",
            "busybox",
            "true",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let out = d.docker(&["volume", "rm", "data"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("volume is in use") && out.stderr.contains(&id),
        "{out:?}"
    );
    let (code, body) = d.request("DELETE", "/volumes/data", None);
    assert_eq!(code, 409, "{body}");
    // Inspect's mount entry, like docker's.
    let m = &inspect(&d, "holder")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "data");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    let src = m["Source"].as_str().unwrap();
    assert_eq!(
        src,
        d.data_root().join("volumes/data/_data").to_str().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(format!("{src}/f")).unwrap(),
        "hello\n"
    );
    let v: Value =
        serde_json::from_str(&d.docker(&["volume", "inspect", "data"]).ok().stdout).unwrap();
    assert_eq!(v[0]["Mountpoint"], src);
    assert_eq!(v[0]["Scope"], "local");
    // In use also per the dangling filter.
    let dangling = d
        .docker(&["volume", "ls", "-q", "--filter", "dangling=true"])
        .ok();
    assert_eq!(dangling.stdout, "");
    d.docker(&["rm", "holder"]).ok();
    // Removing a container without -v leaves named volumes alone.
    assert_eq!(volume_names(&d), ["data"]);
    d.docker(&["volume", "rm", "data"]).ok();
    assert!(volume_names(&d).is_empty());
    assert!(!d.data_root().join("volumes/data").exists());
    let out = d.docker(&["volume", "inspect", "data"]);
    assert!(out.stderr.contains("no such volume"), "{out:?}");
    let (code, body) = d.get("/volumes/data");
    assert_eq!(code, 404);
    assert!(body.contains("get data: no such volume"), "{body}");

    // berth's own CLI.
    d.berth(&["volume", "create", "--label", "team=a", "bv"])
        .ok();
    d.berth(&["volume", "create", "other"]).ok();
    let out = d
        .berth(&["volume", "ls", "-q", "--filter", "label=team=a"])
        .ok();
    assert_eq!(out.stdout, "bv\n");
    let out = d.berth(&["volume", "ls"]).ok();
    assert!(out.stdout.starts_with("DRIVER"), "{out:?}");
    assert!(out.stdout.contains("local     bv"), "{out:?}");
    let out = d
        .berth(&[
            "volume",
            "inspect",
            "-f",
            "{{.Driver}} {{.Labels.team}}",
            "bv",
        ])
        .ok();
    assert_eq!(out.stdout, "local a\n");
    d.berth(&["run", "--rm", "-v", "bv:/b", "busybox", "touch", "/b/x"])
        .ok();
    d.berth(&["volume", "rm", "bv", "other"]).ok();
    assert!(volume_names(&d).is_empty());
    let out = d.berth(&["volume", "rm", "bv"]);
    assert_ne!(out.code, 0);
    d.berth(&["volume", "rm", "-f", "bv"]).ok();
}

#[test]
fn anonymous_volumes_are_removed_with_the_container() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["create", "--name", "anon", "-v", "/data", "busybox", "true"])
        .ok();
    let names = volume_names(&d);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(is_hex64(&names[0]), "{names:?}");
    let m = &inspect(&d, "anon")["Mounts"][0];
    assert_eq!(m["Name"], names[0].as_str());
    assert_eq!(m["Destination"], "/data");
    let v: Value =
        serde_json::from_str(&d.docker(&["volume", "inspect", &names[0]]).ok().stdout).unwrap();
    assert!(
        v[0]["Labels"]
            .as_object()
            .unwrap()
            .contains_key("com.docker.volume.anonymous")
    );
    d.docker(&["rm", "-v", "anon"]).ok();
    assert!(volume_names(&d).is_empty());

    // --rm takes its anonymous volumes along, not the named ones.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "-v",
        "keep:/keep",
        "busybox",
        "true",
    ])
    .ok();
    wait_for("the --rm container's removal", || {
        d.docker(&["ps", "-aq"])
            .stdout
            .trim()
            .is_empty()
            .then_some(())
    });
    assert_eq!(volume_names(&d), ["keep"]);

    // Prune: anonymous only by default (API >= 1.42), everything unused with --all.
    d.docker(&["create", "--name", "left", "-v", "/x", "busybox", "true"])
        .ok();
    d.docker(&["rm", "left"]).ok();
    assert_eq!(volume_names(&d).len(), 2);
    let out = d.docker(&["volume", "prune", "-f"]).ok();
    assert!(out.stdout.contains("Total reclaimed space"), "{out:?}");
    assert_eq!(volume_names(&d), ["keep"]);
    // API 1.41 prunes named ones too.
    let (code, body) = d.request("POST", "/v1.41/volumes/prune", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("keep"), "{body}");
    assert!(volume_names(&d).is_empty());
}

#[test]
fn copy_up_from_the_image_keeps_owners_and_modes() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo img > /data/sub/f && chown -R 65534:65534 /data/sub && chmod 750 /data/sub",
    ])
    .ok();
    d.docker(&["commit", "--change", "VOLUME /data", "src", "withvol"])
        .ok();
    d.docker(&["rm", "src"]).ok();
    let probe = "stat -c '%u:%g %a' /data/sub; cat /data/sub/f";
    // A fresh named volume takes the image's content.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "fresh:/data",
            "withvol",
            "sh",
            "-c",
            probe,
        ])
        .ok();
    assert_eq!(out.stdout, "65534:65534 750\nimg\n");
    // So does the image's own anonymous volume.
    let out = d
        .docker(&["run", "--rm", "withvol", "sh", "-c", probe])
        .ok();
    assert_eq!(out.stdout, "65534:65534 750\nimg\n");
    // The request's anonymous volumes add to the image's.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "/other",
            "withvol",
            "sh",
            "-c",
            "grep -c ' /data ' /proc/mounts; grep -c ' /other ' /proc/mounts",
        ])
        .ok();
    assert_eq!(out.stdout, "1\n1\n");
    // A volume that is not empty is left alone.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "withvol",
        "sh",
        "-c",
        "echo mine > /data/sub/f",
    ])
    .ok();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "fresh:/data",
            "withvol",
            "cat",
            "/data/sub/f",
        ])
        .ok();
    assert_eq!(out.stdout, "mine\n");
    // nocopy, both ways.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "empty:/data:nocopy",
            "withvol",
            "ls",
            "-A",
            "/data",
        ])
        .ok();
    assert_eq!(out.stdout, "");
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=empty2,dst=/data,volume-nocopy",
            "withvol",
            "ls",
            "-A",
            "/data",
        ])
        .ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn binds_tmpfs_and_volumes_from() {
    let d = Daemon::start();
    d.busybox();
    let host = tempfile::tempdir().unwrap();
    // --mount bind with a missing source fails and leaves nothing.
    let missing = host.path().join("missing");
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "shouldnotexist:/v",
        "--mount",
        &format!("type=bind,src={},dst=/x", missing.display()),
        "busybox",
        "true",
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(!missing.exists());
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
    assert!(volume_names(&d).is_empty());
    // -v creates a missing host directory, as docker does.
    let made = host.path().join("made/deeper");
    d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/x", made.display()),
        "busybox",
        "touch",
        "/x/file",
    ])
    .ok();
    assert!(made.join("file").exists());
    // --mount bind, read-only, shows in inspect.
    let id = d
        .docker(&[
            "create",
            "--mount",
            &format!("type=bind,src={},dst=/ro,readonly", made.display()),
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "busybox",
            "true",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mounts = inspect(&d, &id)["Mounts"].clone();
    let bind = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Type"] == "bind")
        .unwrap();
    assert_eq!(bind["Source"], made.to_str().unwrap());
    assert_eq!(bind["RW"], false);
    assert_eq!(bind["Propagation"], "rprivate");
    d.docker(&["rm", &id]).ok();
    // tmpfs with a size, seen inside.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "busybox",
            "grep",
            " /t ",
            "/proc/mounts",
        ])
        .ok();
    assert!(
        out.stdout.starts_with("tmpfs /t tmpfs") && out.stdout.contains("size=1024k"),
        "{out:?}"
    );
    // A volume with driver options is a real tmpfs, mounted only while used.
    d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m",
        "tv",
    ])
    .ok();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "-v",
            "tv:/tv",
            "busybox",
            "grep",
            " /tv ",
            "/proc/mounts",
        ])
        .ok();
    assert!(
        out.stdout.starts_with("tmpfs /tv tmpfs") && out.stdout.contains("size=2048k"),
        "{out:?}"
    );
    let data = d.data_root().join("volumes/tv/_data");
    wait_for("the tmpfs volume's unmount", || {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        (!mi.contains(data.to_str().unwrap())).then_some(())
    });
    // --volumes-from, read-write and read-only.
    d.docker(&[
        "run",
        "--name",
        "vsrc",
        "-v",
        "shared:/shared",
        "-v",
        &format!("{}:/hostdir", made.display()),
        "busybox",
        "sh",
        "-c",
        "echo v > /shared/x",
    ])
    .ok();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "vsrc",
            "busybox",
            "sh",
            "-c",
            "cat /shared/x; ls /hostdir",
        ])
        .ok();
    assert_eq!(out.stdout, "v\nfile\n");
    let out = d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "vsrc:ro",
        "busybox",
        "touch",
        "/shared/y",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    let out = d.docker(&["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"]);
    assert!(out.stderr.contains("No such container: nosuch"), "{out:?}");
}

#[test]
fn volumes_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/k",
        "busybox",
        "sh",
        "-c",
        "echo kept > /k/f",
    ])
    .ok();
    d.docker(&[
        "run", "-d", "--name", "up", "-v", "keep:/k", "busybox", "sleep", "1000",
    ])
    .ok();
    // A graceful stop, while a container runs: berthd exits at once (it used to wait for
    // the container's end) and the next one finds everything.
    let t = std::time::Instant::now();
    d.kill(libc::SIGTERM);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t.elapsed()
    );
    d.spawn();
    assert_eq!(volume_names(&d), ["keep"]);
    let out = d.docker(&["volume", "rm", "keep"]);
    assert!(out.stderr.contains("volume is in use"), "{out:?}");
    let out = d
        .docker(&["run", "--rm", "-v", "keep:/k", "busybox", "cat", "/k/f"])
        .ok();
    assert_eq!(out.stdout, "kept\n");
    d.docker(&["rm", "-f", "up"]).ok();
    d.docker(&["volume", "rm", "keep"]).ok();
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let d = Daemon::start();
    d.busybox();
    for (args, want) in [
        (
            vec!["-v", "_a:/x"],
            "includes invalid characters for a local volume name",
        ),
        (vec!["-v", "b@d:/x"], "\"b@d\" includes invalid characters"),
        (vec!["-v", "ok:relative"], "must be an absolute path"),
        (vec!["-v", "ok:/x:bogus"], "invalid mode"),
        (
            vec!["--mount", "type=volume,src=ok,dst=/x,volume-opt=foo=bar"],
            "invalid option key: \"foo\"",
        ),
        (vec!["-v", "ok:/x", "-v", "ok2:/x"], "duplicate mount point"),
    ] {
        let mut a = vec!["create"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        let out = d.docker(&a);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(want), "{args:?}: {out:?}");
    }
    // berth's CLI names an unknown --mount key before sending anything.
    let out = d.berth(&[
        "create",
        "--mount",
        "type=bind,src=/tmp,dst=/x,foo=bar",
        "busybox",
    ]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("unexpected key 'foo'"), "{out:?}");
    // The API names an unknown Mounts field and a bad volume name.
    let (code, body) = d.request(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Target":"/x","Bogus":1}]}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("HostConfig.Mounts[0].Bogus"), "{body}");
    let (code, body) = d.request("POST", "/volumes/create", Some(r#"{"Name":"x/y"}"#));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("x/y"), "{body}");
    let (code, body) = d.request(
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"vv","DriverOpts":{"nope":"1"}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("nope"), "{body}");
    let (code, body) = d.get("/volumes?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("bogus"), "{body}");
    // Nothing was created along the way.
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");
    assert!(volume_names(&d).is_empty());
    let left: Vec<_> = std::fs::read_dir(d.data_root().join("volumes"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
