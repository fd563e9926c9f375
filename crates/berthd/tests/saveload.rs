//! `docker save` / `docker load` end to end: berth's own round trip, the docker CLI against
//! berthd, and real peers: a private dockerd (20.10) loading what berth saves and the other
//! way round, skopeo reading berth's OCI archives, and a daemon killed in mid-load.
#![allow(clippy::unwrap_used)]

#[path = "saveload/dockerd.rs"]
mod dockerd;
mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// `sh -c script` with docker and berth pointed at `d`.
fn sh(d: &Daemon, script: &str) -> Out {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
            .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
            .env("DOCKER_CONFIG", d.dir.path().join("dockercfg"))
            .env("PATH", path),
        None,
    )
}

/// A member of a tar archive, as bytes.
fn member(tar: &Path, name: &str) -> Vec<u8> {
    // Through the harness's `run`, which shields its child from the test reaper; binary-safe
    // since every member read here is JSON.
    let out = run(Command::new("tar").arg("-xOf").arg(tar).arg(name), None);
    assert_eq!(out.code, 0, "no {name} in {}", tar.display());
    out.stdout.into_bytes()
}

fn members(tar: &Path) -> Vec<String> {
    let out = run(Command::new("tar").arg("-tf").arg(tar), None).ok();
    out.stdout.lines().map(str::to_string).collect()
}

/// Every blob in berthd's content store hashes to its name; returns how many there are.
fn blobs_verify(d: &Daemon) -> usize {
    let dir = d.data_root().join("content/blobs/sha256");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let out = run(Command::new("sha256sum").arg(e.path()), None).ok();
        let sum = out.stdout;
        assert_eq!(
            sum.split_whitespace().next().unwrap_or(""),
            e.file_name().to_string_lossy(),
            "blob {} does not verify",
            e.path().display()
        );
        n += 1;
    }
    n
}

fn image_ids(d: &Daemon) -> String {
    d.docker(&["images", "-aq", "--no-trunc"]).ok().stdout
}

/// An image `app:1` = busybox + a layer holding `/hello` = `text`.
fn make_app(d: &Daemon, name: &str, text: &str) {
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        &format!("echo {text} > /hello"),
    ])
    .ok();
    d.docker(&["commit", "maker", name]).ok();
    d.docker(&["rm", "maker"]).ok();
}

#[test]
fn save_and_load_round_trip() {
    let d = Daemon::start();
    make_app(&d, "app:1", "saved-content");
    let tmp = d.dir.path();
    let tar = tmp.join("app.tar");
    sh(&d, &format!("berth save -o {} app:1", tar.display())).ok();
    let names = members(&tar);
    for m in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|n| n == m), "{m} missing: {names:?}");
    }
    let manifest: Value = serde_json::from_slice(&member(&tar, "manifest.json")).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["app:1"]));
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "busybox + the committed layer");
    assert!(layers[0].as_str().unwrap().starts_with("blobs/sha256/"));
    let index: Value = serde_json::from_slice(&member(&tar, "index.json")).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:1"
    );

    // Loaded into an empty store: every layer unpacked again.
    d.docker(&["rmi", "app:1", "busybox"]).ok();
    assert_eq!(image_ids(&d), "");
    let out = sh(&d, &format!("berth load -i {}", tar.display())).ok();
    assert_eq!(out.stdout, "Loaded image: app:1\n");
    let out = d.docker(&["run", "--rm", "app:1", "cat", "/hello"]).ok();
    assert_eq!(out.stdout, "saved-content\n");

    // The docker CLI against berthd, through a pipe, into a store that has the layers.
    let out = sh(&d, "docker save app:1 | docker load").ok();
    assert_eq!(out.stdout.trim(), "Loaded image: app:1");
    // Several images in one archive; an id saves untagged.
    d.busybox();
    let id = d
        .docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let two = tmp.join("two.tar");
    sh(&d, &format!("docker save -o {} app:1 {id}", two.display())).ok();
    let manifest: Value = serde_json::from_slice(&member(&two, "manifest.json")).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2);
    assert_eq!(manifest[1]["RepoTags"], serde_json::json!([]));
    d.docker(&["rmi", "app:1", "busybox"]).ok();
    let out = sh(&d, &format!("docker load -q -i {}", two.display())).ok();
    assert_eq!(
        out.stdout,
        format!("Loaded image: app:1\nLoaded image ID: {id}\n")
    );
    // Unknown images are refused before a byte is written.
    let out = sh(
        &d,
        &format!("berth save -o {} nosuch:1", tmp.join("x.tar").display()),
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no such image"), "{out:?}");
    assert!(!tmp.join("x.tar").exists());
    blobs_verify(&d);
}

/// A hostile archive over the API: 400 naming the problem, and nothing left behind.
#[test]
fn load_refuses_bad_archives_and_leaves_nothing() {
    let d = Daemon::start();
    let tmp = d.dir.path();
    let before = blobs_verify(&d);
    let mut b = tar::Builder::new(Vec::new());
    let layer = b"not a tar at all, but a blob".to_vec();
    let mut h = tar::Header::new_ustar();
    h.set_size(layer.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "l/layer.tar", &layer[..]).unwrap();
    let manifest =
        br#"[{"Config":"../../etc/passwd","RepoTags":["evil:1"],"Layers":["l/layer.tar"]}]"#;
    let mut h = tar::Header::new_ustar();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &manifest[..])
        .unwrap();
    let bad = tmp.join("bad.tar");
    std::fs::write(&bad, b.into_inner().unwrap()).unwrap();
    let out = run(
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/stderr",
                "-w",
                "%{http_code}",
                "--unix-socket",
            ])
            .arg(&d.sock)
            .arg("--data-binary")
            .arg(format!("@{}", bad.display()))
            .arg("http://d/v1.47/images/load"),
        None,
    );
    assert_eq!(out.stdout, "400", "{out:?}");
    assert!(out.stderr.contains("'..' in path"), "{out:?}");
    let out = sh(&d, &format!("berth load -i {}", bad.display()));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("manifest.json entry 1 refers to"),
        "{out:?}"
    );
    let out = sh(&d, &format!("docker load -i {}", bad.display()));
    assert_ne!(out.code, 0);
    // Refused at the first member while the client still sends 64 MB: the client reads the
    // answer, not a reset connection.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..8].copy_from_slice(b"../evil\0");
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "big/layer.tar", std::io::repeat(7).take(64 << 20))
        .unwrap();
    let early = tmp.join("early.tar");
    std::fs::write(&early, b.into_inner().unwrap()).unwrap();
    let out = sh(&d, &format!("berth load -i {}", early.display()));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("archive member \"../evil\": '..' in path"),
        "{out:?}"
    );
    let out = sh(&d, &format!("docker load -i {}", early.display()));
    assert!(out.stderr.contains("'..' in path"), "{out:?}");

    assert_eq!(image_ids(&d), "");
    assert_eq!(
        blobs_verify(&d),
        before,
        "the spooled layer blob was removed"
    );
    assert!(
        std::fs::read_dir(d.data_root().join("content/ingest"))
            .map(|r| r.count())
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn berth_save_loads_into_docker() {
    let dk = dockerd::dockerd();
    let d = Daemon::start();
    let tag = format!("berth-saved-{}:1", std::process::id());
    make_app(&d, &tag, "hello-from-berth");
    let tar = d.dir.path().join("to-docker.tar");
    sh(&d, &format!("berth save -o {} {tag}", tar.display())).ok();
    let out = dk.docker(&["load", "-i", tar.to_str().unwrap()]);
    let _ = dk.docker(&["rmi", "-f", &tag]);
    let out = out.ok();
    assert!(
        out.stdout.contains(&format!("Loaded image: {tag}")),
        "{out:?}"
    );
    let out = dk.docker(&["load", "-i", tar.to_str().unwrap()]).ok();
    assert!(out.stdout.contains(&tag), "{out:?}");
    let run = dk.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/hello"]);
    let _ = dk.docker(&["rmi", "-f", &tag]);
    assert_eq!(run.ok().stdout, "hello-from-berth\n");
}

#[test]
fn docker_save_loads_into_berth() {
    let dk = dockerd::dockerd();
    let d = Daemon::start();
    let pid = std::process::id();
    let tag = format!("docker-saved-{pid}:1");
    let ctr = format!("docker-saved-{pid}");
    let tar = d.dir.path().join("from-docker.tar");
    dk.docker(&[
        "run",
        "--name",
        &ctr,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data && echo hello-from-docker > /data/f && ln -s f /data/link",
    ])
    .ok();
    let commit = dk.docker(&["commit", &ctr, &tag]);
    let _ = dk.docker(&["rm", "-f", &ctr]);
    commit.ok();
    let save = dk.docker(&["save", "-o", tar.to_str().unwrap(), &tag]);
    let _ = dk.docker(&["rmi", "-f", &tag]);
    save.ok();
    let out = sh(&d, &format!("berth load -i {}", tar.display())).ok();
    assert_eq!(out.stdout, format!("Loaded image: {tag}\n"));
    let out = d.berth(&["run", "--rm", &tag, "cat", "/data/link"]).ok();
    assert_eq!(out.stdout, "hello-from-docker\n");
    // The same archive again: layers already there, still checked, same image.
    let out = sh(&d, &format!("docker load < {}", tar.display())).ok();
    assert!(out.stdout.contains(&tag), "{out:?}");
    assert_eq!(image_ids(&d).lines().count(), 1);
    blobs_verify(&d);
}

#[test]
fn oci_archives_work_with_skopeo() {
    if run(Command::new("skopeo").arg("--version"), None).code != 0 {
        panic!("skopeo is not installed (apt-get install -y skopeo)");
    }
    let d = Daemon::start();
    make_app(&d, "ociapp:2", "oci-content");
    let tmp = d.dir.path();
    let oci = tmp.join("app.oci.tar");
    sh(
        &d,
        &format!("berth save --format oci -o {} ociapp:2", oci.display()),
    )
    .ok();
    let names = members(&oci);
    assert!(!names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let out = run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", oci.display())),
        None,
    )
    .ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");
    let dir = tmp.join("copied");
    run(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci-archive:{}", oci.display()))
            .arg(format!("dir:{}", dir.display())),
        None,
    )
    .ok();
    assert!(dir.join("manifest.json").exists());
    // And back: skopeo's own OCI archive (no manifest.json) loads into berth.
    let back = tmp.join("skopeo.oci.tar");
    run(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("dir:{}", dir.display()))
            .arg(format!(
                "oci-archive:{}:docker.io/library/fromskopeo:3",
                back.display()
            )),
        None,
    )
    .ok();
    let out = sh(&d, &format!("berth load -i {}", back.display())).ok();
    assert_eq!(out.stdout, "Loaded image: fromskopeo:3\n");
    let out = d
        .berth(&["run", "--rm", "fromskopeo:3", "cat", "/hello"])
        .ok();
    assert_eq!(out.stdout, "oci-content\n");
}

#[test]
fn killed_during_load_leaves_no_partial_image() {
    let mut d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 150000000 /dev/urandom > /big",
    ])
    .ok();
    d.docker(&["commit", "big", "big:1"]).ok();
    d.docker(&["rm", "big"]).ok();
    let tar = d.dir.path().join("big.tar");
    sh(&d, &format!("berth save -o {} big:1", tar.display())).ok();
    d.docker(&["rmi", "big:1"]).ok();
    let ids_before = image_ids(&d);

    // Kill berthd while the load is writing into the content store or unpacking the layer.
    // Should a load outrun the polling (a fast, idle machine), it is undone and tried again.
    let ingest = d.data_root().join("content/ingest");
    let snapshots = d.data_root().join("snapshots/snapshots");
    let n_snaps = || {
        std::fs::read_dir(&snapshots)
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let snaps_before = n_snaps();
    let mut attempts = 0;
    let mut child = loop {
        attempts += 1;
        let mut child = Command::new(bin_dir().join("berth"))
            .args(["load", "-i"])
            .arg(&tar)
            .env("BERTH_HOST", format!("unix://{}", d.sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let caught = loop {
            let spooling = std::fs::read_dir(&ingest)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.metadata().map(|m| m.len() > 10 << 20).unwrap_or(false));
            if spooling || n_snaps() > snaps_before {
                break true;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break false;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "load never started");
            std::thread::sleep(Duration::from_millis(2));
        };
        if caught {
            break child;
        }
        assert!(
            attempts < 5,
            "the load always finished before it could be killed"
        );
        let _ = d.docker(&["rmi", "big:1"]);
    };
    d.kill(libc::SIGKILL);
    let _ = child.wait();
    d.spawn();
    assert_eq!(image_ids(&d), ids_before, "no partial image");
    assert!(!d.docker(&["images"]).ok().stdout.contains("big"));
    blobs_verify(&d);
    // The store still works: the same archive loads.
    let out = sh(&d, &format!("berth load -i {}", tar.display())).ok();
    assert_eq!(out.stdout, "Loaded image: big:1\n");
    blobs_verify(&d);
}
