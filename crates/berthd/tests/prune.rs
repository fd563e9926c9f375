//! Disk usage and reclaiming it, through the docker CLI and `berth`: `images` filters,
//! `image inspect`, `image prune [-a]`, `container prune`, `system df` against `du`, and
//! garbage collection of what a killed daemon left behind.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.docker(&["image", "inspect", name]).ok();
    serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
}

fn id_of(d: &Daemon, name: &str) -> String {
    inspect(d, name)["Id"].as_str().unwrap().to_string()
}

/// `docker images -q --no-trunc` with extra arguments, as a set.
fn images(d: &Daemon, args: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["images", "-q", "--no-trunc"];
    a.extend_from_slice(args);
    let out = d.docker(&a).ok().stdout;
    let berth = d.berth(&a).ok().stdout;
    let set: BTreeSet<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        set,
        berth.lines().map(str::to_string).collect(),
        "docker and berth disagree on {args:?}"
    );
    set
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// `du -s -B1` of directories, summed: what the disk really holds.
fn du(dirs: &[PathBuf]) -> u64 {
    dirs.iter()
        .map(|d| {
            let out = run(Command::new("du").arg("-s").arg("-B1").arg(d), None).ok();
            out.stdout
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// An image made by `docker commit` from busybox plus one file of `kb` KiB.
fn commit_image(d: &Daemon, tag: &str, kb: u32, extra: &[&str]) -> String {
    let name = format!("mk-{}", tag.replace([':', '/'], "-"));
    d.docker(&[
        "run",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        &format!("dd if=/dev/urandom of=/data bs=1024 count={kb} 2>/dev/null"),
    ])
    .ok();
    let mut a = vec!["commit"];
    a.extend_from_slice(extra);
    a.extend([name.as_str(), tag]);
    d.docker(&a).ok();
    d.docker(&["rm", &name]).ok();
    id_of(d, tag)
}

/// A dangling image (no tag): imported from a small tarball.
fn dangling(d: &Daemon, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), content).unwrap();
    let tar = dir.path().join("t.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&tar)
            .arg("f"),
        None,
    )
    .ok();
    let out = d.docker(&["import", tar.to_str().unwrap()]).ok();
    out.stdout.trim().to_string()
}

#[test]
fn images_filters_as_docker() {
    let d = Daemon::start();
    d.busybox();
    let bb = id_of(&d, "busybox");
    let app = commit_image(&d, "app:1", 4, &["--change", "LABEL tier=web"]);
    d.docker(&["tag", "app:1", "me/app:2"]).ok();
    let db = commit_image(&d, "db:1", 4, &["--change", "LABEL tier=db"]);
    let orphan = dangling(&d, "x");
    assert!(orphan.starts_with("sha256:"), "{orphan}");

    // Dangling images are listed by default, and only they with dangling=true.
    assert_eq!(images(&d, &[]), set(&[&bb, &app, &db, &orphan]));
    assert_eq!(images(&d, &["-f", "dangling=true"]), set(&[&orphan]));
    assert_eq!(
        images(&d, &["-f", "dangling=false"]),
        set(&[&bb, &app, &db])
    );
    // Labels: key, key=value.
    assert_eq!(images(&d, &["-f", "label=tier"]), set(&[&app, &db]));
    assert_eq!(images(&d, &["-f", "label=tier=db"]), set(&[&db]));
    assert_eq!(
        images(&d, &["-f", "label=tier=db", "-f", "label=tier"]),
        set(&[&db])
    );
    // References: globs on the familiar reference or name; `*` does not cross `/`.
    assert_eq!(images(&d, &["-f", "reference=busy*"]), set(&[&bb]));
    assert_eq!(images(&d, &["-f", "reference=*:1"]), set(&[&app, &db]));
    assert_eq!(images(&d, &["-f", "reference=*/*"]), set(&[&app]));
    assert_eq!(images(&d, &["me/app"]), set(&[&app]));
    // Only the matching tags are shown.
    let out = d
        .docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "-f",
            "reference=me/*",
        ])
        .ok();
    assert_eq!(out.stdout, "me/app:2\n");
    // before / since: by creation, strictly.
    assert_eq!(images(&d, &["-f", "before=db:1"]), set(&[&bb, &app]));
    assert_eq!(images(&d, &["-f", "since=app:1"]), set(&[&db, &orphan]));
    assert_eq!(
        images(&d, &["-f", "since=busybox", "-f", "before=db:1"]),
        set(&[&app])
    );
    // until: created before a time.
    assert_eq!(images(&d, &["-f", "until=1h"]), set(&[]));
    assert_eq!(images(&d, &["-f", "until=2100-01-01T00:00:00Z"]).len(), 4);
    // --digests: a DIGEST column (imported and committed images have none).
    for cli in [
        d.docker(&["images", "--digests", "busybox"]),
        d.berth(&["images", "--digests", "busybox"]),
    ] {
        let out = cli.ok().stdout;
        let mut lines = out.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(head[..3], ["REPOSITORY", "TAG", "DIGEST"], "{out}");
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(row[..3], ["busybox", "latest", "<none>"], "{out}");
    }
    // The same table (docker orders an image's repositories at random).
    let sorted = |s: String| {
        let mut l: Vec<String> = s.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    let table = d
        .docker(&[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
        ])
        .ok()
        .stdout;
    assert_eq!(
        sorted(
            d.berth(&[
                "images",
                "--format",
                "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"
            ])
            .ok()
            .stdout
        ),
        sorted(table)
    );

    // Bad filters are refused by name.
    let out = d.docker(&["images", "-f", "foo=bar"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("invalid filter 'foo'"), "{out:?}");
    let out = d.berth(&["images", "-f", "dangling=maybe"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("invalid filter 'dangling=maybe'"),
        "{out:?}"
    );
    let out = d.docker(&["images", "-f", "before=nosuch:1"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("No such image: nosuch:1"), "{out:?}");
}

#[test]
fn image_inspect_is_complete() {
    let d = Daemon::start();
    d.busybox();
    let base = inspect(&d, "busybox");
    d.docker(&[
        "run",
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/blob bs=1024 count=300 2>/dev/null",
    ])
    .ok();
    d.docker(&[
        "commit",
        "-m",
        "a blob",
        "-a",
        "Ada",
        "-c",
        "ENV A=1",
        "cc",
        "withblob:1",
    ])
    .ok();
    let img = inspect(&d, "withblob:1");
    assert_eq!(img["RepoTags"], serde_json::json!(["withblob:1"]));
    assert_eq!(img["RepoDigests"], serde_json::json!([]));
    assert_eq!(img["Parent"], base["Id"]);
    assert_eq!(img["Comment"], "a blob");
    assert_eq!(img["Author"], "Ada");
    assert!(img["Created"].as_str().unwrap().ends_with('Z'), "{img}");
    assert!(
        img["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("A=1")),
        "{img}"
    );
    let layers = img["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base["RootFS"]["Layers"][0]);
    // GraphDriver points at the real layer directories, top layer as UpperDir.
    let data = &img["GraphDriver"]["Data"];
    let upper = PathBuf::from(data["UpperDir"].as_str().unwrap());
    let lower = PathBuf::from(data["LowerDir"].as_str().unwrap());
    assert!(upper.starts_with(d.data_root()), "{img}");
    assert!(upper.join("blob").is_file(), "{img}");
    assert!(lower.join("bin/busybox").is_file(), "{img}");
    assert_eq!(
        PathBuf::from(base["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap()),
        lower
    );
    // Size is what the layers take on disk.
    let size = img["Size"].as_u64().unwrap();
    let want = du(&[upper.clone(), lower.clone()]);
    assert!(
        size.abs_diff(want) <= want / 50 + 16384,
        "size {size} vs du {want}"
    );
    assert!(size > base["Size"].as_u64().unwrap() + 300 * 1024);
    // berth shows the same document.
    let b: Value =
        serde_json::from_str(&d.berth(&["image", "inspect", "withblob:1"]).ok().stdout).unwrap();
    assert_eq!(b[0]["GraphDriver"], img["GraphDriver"]);
}

#[test]
fn image_prune_removes_what_docker_would() {
    let d = Daemon::start();
    d.busybox();
    let bb = id_of(&d, "busybox");
    let app = commit_image(&d, "app:1", 64, &["--change", "LABEL keep=no"]);
    let kept = commit_image(&d, "kept:1", 4, &["--change", "LABEL keep=yes"]);
    let unused = dangling(&d, "unused");
    let used = dangling(&d, "used");
    // A container (stopped) keeps its image, dangling or not.
    d.docker(&["create", "--name", "user", &used, "true"]).ok();
    let snaps = || {
        std::fs::read_dir(d.data_root().join("snapshots/snapshots"))
            .unwrap()
            .count()
    };
    let before = snaps();

    // Declined: nothing happens.
    let out = d.docker_in(&["image", "prune"], b"n\n").ok();
    assert!(
        out.stdout
            .contains("WARNING! This will remove all dangling images.")
    );
    assert_eq!(images(&d, &["-a"]).len(), 5);

    // Dangling only: the unused untagged image goes, with its layer.
    let out = d.docker(&["image", "prune", "-f"]).ok();
    assert!(
        out.stdout.contains(&format!("deleted: {unused}")),
        "{out:?}"
    );
    assert!(out.stdout.contains("Total reclaimed space: "), "{out:?}");
    assert_eq!(images(&d, &["-a"]), set(&[&bb, &app, &kept, &used]));
    assert_eq!(snaps(), before - 1);

    // Filters: label!, then label.
    let out = d
        .berth(&[
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            "label!=keep=yes",
            "--filter",
            "label=keep",
        ])
        .ok();
    assert!(out.stdout.contains("untagged: app:1"), "{out:?}");
    assert!(out.stdout.contains(&format!("deleted: {app}")), "{out:?}");
    let reclaimed = out.stdout.lines().last().unwrap().to_string();
    assert!(
        reclaimed.starts_with("Total reclaimed space: ") && reclaimed.contains("kB"),
        "{reclaimed}"
    );
    assert_eq!(images(&d, &["-a"]), set(&[&bb, &kept, &used]));
    // until: nothing is older than an hour.
    let out = d
        .docker(&["image", "prune", "-a", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(out.stdout, "Total reclaimed space: 0B\n");

    // -a: every image no container uses; busybox, kept:1's parent, goes after it.
    let out = d.docker(&["image", "prune", "-a", "-f"]).ok();
    assert!(out.stdout.contains(&format!("deleted: {kept}")), "{out:?}");
    assert_eq!(images(&d, &["-a"]), set(&[&used]));
    // What is left is intact; bad filters are refused by name.
    assert_eq!(id_of(&d, &used), used);
    let (code, body) = d.request(
        "POST",
        "/images/prune?filters=%7B%22foo%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter 'foo'"), "{body}");
    let out = d.docker(&["image", "prune", "-f", "--filter", "until=soon"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("until=soon"), "{out:?}");
}

#[test]
fn prune_keeps_images_in_use() {
    let d = Daemon::start();
    d.busybox();
    let bb = id_of(&d, "busybox");
    let child = commit_image(&d, "child:1", 4, &[]);
    d.docker(&["run", "-d", "--name", "busy", "child:1", "sleep", "1000"])
        .ok();
    let out = d.docker(&["image", "prune", "-a", "-f"]).ok();
    // The running container's image and its parent stay; the parent loses its tag (as with
    // Docker: a tagged image with children is untagged by `prune -a`, not deleted).
    assert_eq!(
        out.stdout,
        "Deleted Images:\nuntagged: busybox:latest\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(images(&d, &["-a"]), set(&[&bb, &child]));
    assert_eq!(images(&d, &[]), set(&[&child]));
    d.docker(&["run", "--rm", "child:1", "true"]).ok();
    // Once the container is gone, both go.
    d.docker(&["rm", "-f", "busy"]).ok();
    let out = d.docker(&["system", "prune", "-a", "-f"]).ok();
    assert!(out.stdout.contains("untagged: child:1"), "{out:?}");
    assert!(out.stdout.contains(&format!("deleted: {child}")), "{out:?}");
    assert!(out.stdout.contains(&format!("deleted: {bb}")), "{out:?}");
    assert_eq!(images(&d, &["-a"]), set(&[]));
    let left = std::fs::read_dir(d.data_root().join("snapshots/snapshots"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "snapshots left after pruning everything");
    let blobs = std::fs::read_dir(d.data_root().join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "blobs left after pruning everything");
}

#[test]
fn container_prune_removes_stopped_containers() {
    let d = Daemon::start();
    d.busybox();
    let run_ = |name: &str, label: &str| {
        d.docker(&[
            "run",
            "--name",
            name,
            "--label",
            label,
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/fill bs=1024 count=512 2>/dev/null",
        ])
        .ok();
    };
    run_("ca", "grp=1");
    run_("cb", "grp=2");
    d.docker(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"])
        .ok();
    let id_a = d.docker(&["inspect", "-f", "{{.Id}}", "ca"]).ok().stdout;
    let out = d
        .docker(&["container", "prune", "-f", "--filter", "label=grp=1"])
        .ok();
    assert!(out.stdout.starts_with("Deleted Containers:\n"), "{out:?}");
    assert!(out.stdout.contains(id_a.trim()), "{out:?}");
    assert!(out.stdout.ends_with("kB\n"), "{out:?}");
    let reclaimed = |s: &str| -> f64 {
        let v = s
            .lines()
            .last()
            .unwrap()
            .trim_start_matches("Total reclaimed space: ");
        v.trim_end_matches("kB").parse::<f64>().unwrap()
    };
    // The 512 KiB file and a few runtime-made files.
    assert!((524.0..600.0).contains(&reclaimed(&out.stdout)), "{out:?}");
    let names = d
        .docker(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    let names: BTreeSet<&str> = names.lines().collect();
    assert_eq!(names, ["cb", "live"].into_iter().collect());
    let out = d.berth(&["container", "prune", "-f"]).ok();
    assert!((524.0..600.0).contains(&reclaimed(&out.stdout)), "{out:?}");
    let names = d
        .docker(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .stdout;
    assert_eq!(names, "live\n");
    let (code, body) = d.request(
        "POST",
        "/containers/prune?filters=%7B%22foo%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter 'foo'"), "{body}");
}

#[test]
fn system_df_is_what_du_says() {
    let d = Daemon::start();
    d.busybox();
    commit_image(&d, "big:1", 2048, &[]);
    d.docker(&[
        "run",
        "--name",
        "writer",
        "big:1",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/out bs=1024 count=1024 2>/dev/null",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "idle",
        "-v",
        "store:/store",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/store/z bs=1024 count=256 2>/dev/null; sleep 1000",
    ])
    .ok();
    wait_for("the volume to be filled", || {
        let out = d.docker(&["exec", "idle", "ls", "-l", "/store/z"]);
        (out.code == 0 && out.stdout.contains("262144")).then_some(())
    });
    let (code, body) = d.get("/system/df");
    assert_eq!(code, 200, "{body}");
    let df: Value = serde_json::from_str(&body).unwrap();
    // Layers: every layer directory of every image.
    let mut dirs = BTreeSet::new();
    for name in ["busybox", "big:1"] {
        let g = &inspect(&d, name)["GraphDriver"]["Data"];
        dirs.insert(PathBuf::from(g["UpperDir"].as_str().unwrap()));
        if let Some(l) = g["LowerDir"].as_str() {
            dirs.extend(l.split(':').map(PathBuf::from));
        }
    }
    let dirs: Vec<PathBuf> = dirs.into_iter().collect();
    assert_eq!(dirs.len(), 2);
    let layers = df["LayersSize"].as_u64().unwrap();
    let want = du(&dirs);
    assert!(
        layers.abs_diff(want) <= want / 50 + 16384,
        "LayersSize {layers} vs du {want}"
    );
    assert!(layers > 2048 * 1024);
    let imgs = df["Images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    let big = imgs.iter().find(|i| i["RepoTags"][0] == "big:1").unwrap();
    let bb = imgs
        .iter()
        .find(|i| i["RepoTags"][0] == "busybox:latest")
        .unwrap();
    assert_eq!(big["Containers"], 1);
    assert_eq!(bb["Containers"], 1);
    assert_eq!(big["SharedSize"], bb["Size"], "busybox's layer is shared");
    assert_eq!(bb["SharedSize"], bb["Size"]);
    // Containers: SizeRw is the writable layer on disk.
    let ctrs = df["Containers"].as_array().unwrap();
    let writer = ctrs.iter().find(|c| c["Names"][0] == "/writer").unwrap();
    let rw = writer["SizeRw"].as_u64().unwrap();
    assert!((1024 * 1024..1100 * 1024).contains(&rw), "SizeRw {rw}");
    assert_eq!(
        writer["SizeRootFs"].as_u64().unwrap(),
        rw + big["Size"].as_u64().unwrap()
    );
    let vols = df["Volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 1, "{df}");
    assert_eq!(vols[0]["Name"], "store");
    assert_eq!(vols[0]["UsageData"]["RefCount"], 1);
    let vsize = vols[0]["UsageData"]["Size"].as_u64().unwrap();
    let want = du(&[PathBuf::from(vols[0]["Mountpoint"].as_str().unwrap())]);
    assert_eq!(vsize, want, "volume size vs du");
    assert!(vsize >= 256 * 1024);
    assert_eq!(df["BuildCache"], serde_json::json!([]));
    // The type parameter limits what is computed.
    let (_, body) = d.get("/system/df?type=container");
    let only: Value = serde_json::from_str(&body).unwrap();
    assert!(
        only.get("Images").is_none() && only["Containers"].is_array(),
        "{only}"
    );
    let (code, body) = d.get("/system/df?type=bogus");
    assert_eq!(code, 400, "{body}");
    // `docker ps -s` shows the same size.
    let out = d
        .docker(&[
            "ps",
            "-as",
            "--filter",
            "name=writer",
            "--format",
            "{{.Size}}",
        ])
        .ok();
    assert!(out.stdout.starts_with("1."), "{out:?}");

    // The CLIs print the same tables.
    let docker = d.docker(&["system", "df"]).ok().stdout;
    assert_eq!(d.berth(&["system", "df"]).ok().stdout, docker);
    let lines: Vec<&str> = docker.lines().collect();
    assert!(
        lines[1].starts_with("Images") && lines[1].split_whitespace().nth(1) == Some("2"),
        "{docker}"
    );
    let docker = d
        .docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Size}}",
        ])
        .ok()
        .stdout;
    assert_eq!(
        d.berth(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Size}}"
        ])
        .ok()
        .stdout,
        docker
    );
    let docker = d.docker(&["system", "df", "-v"]).ok().stdout;
    let berth = d.berth(&["system", "df", "-v"]).ok().stdout;
    let norm = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                // Ages differ by the time between the two commands.
                let age = [
                    "Less", "than", "a", "second", "seconds", "ago", "About", "minute",
                ];
                l.split_whitespace()
                    .filter(|w| !w.chars().all(|c| c.is_ascii_digit()) && !age.contains(w))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(
        norm(&berth),
        norm(&docker),
        "berth:\n{berth}\ndocker:\n{docker}"
    );
}

/// A ustar header for a regular file.
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |off: usize, len: usize, v: String| {
        h[off..off + v.len()].copy_from_slice(v.as_bytes());
        let _ = len;
    };
    field(100, 8, "0000644\0".into());
    field(108, 8, "0000000\0".into());
    field(116, 8, "0000000\0".into());
    field(124, 12, format!("{size:011o}\0"));
    field(136, 12, format!("{:011o}\0", 1_700_000_000u64));
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn verify_blobs(root: &Path) {
    let dir = root.join("content/blobs/sha256");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let out = run(Command::new("sha256sum").arg(e.path()), None).ok();
        let sum = out.stdout.split_whitespace().next().unwrap().to_string();
        assert_eq!(
            sum,
            e.file_name().to_string_lossy(),
            "blob {:?} is corrupt",
            e.path()
        );
    }
}

fn snapshot_count(d: &Daemon) -> usize {
    std::fs::read_dir(d.data_root().join("snapshots/snapshots"))
        .unwrap()
        .count()
}

fn ingest_busy(d: &Daemon) -> bool {
    std::fs::read_dir(d.data_root().join("content/ingest"))
        .map(|r| r.count() > 0)
        .unwrap_or(false)
}

#[test]
fn gc_collects_what_a_crash_left() {
    let mut d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "--name",
        "fat",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/fat bs=1M count=64 2>/dev/null",
    ])
    .ok();
    let base_snaps = snapshot_count(&d);
    let base_images = d.docker(&["images", "-aq", "--no-trunc"]).ok().stdout;

    // 1. kill -9 during `docker commit` of a container with a lot of data.
    let sock = format!("unix://{}", d.sock.display());
    let mut commit = Command::new(DOCKER)
        .args(["commit", "fat", "half:1"])
        .env("DOCKER_HOST", &sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the commit to start writing", || {
        ingest_busy(&d).then_some(())
    });
    d.kill(libc::SIGKILL);
    let _ = commit.wait();
    assert!(
        ingest_busy(&d) || snapshot_count(&d) > base_snaps,
        "nothing in flight was killed"
    );

    // 2. An orphan blob, as a crash between publishing and recording would leave it.
    let data = b"orphan blob content";
    let sum = {
        let mut c = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(data).unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    let orphan = d.data_root().join("content/blobs/sha256").join(&sum);
    std::fs::write(&orphan, data).unwrap();

    d.spawn();
    // No partial image; the orphans are gone; the work snapshot of the commit too.
    assert_eq!(
        d.docker(&["images", "-aq", "--no-trunc"]).ok().stdout,
        base_images
    );
    assert!(!orphan.exists(), "orphan blob survived the start-up gc");
    assert!(!ingest_busy(&d), "ingest files survived the start-up");
    assert_eq!(
        snapshot_count(&d),
        base_snaps,
        "snapshots left by the crash:\n{}",
        d.log()
    );
    verify_blobs(&d.data_root());

    // 3. kill -9 during `docker import` of a big tarball, streamed slowly.
    let mut import = Command::new(DOCKER)
        .args(["import", "-", "big:1"])
        .env("DOCKER_HOST", &sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = import.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // A tar header for a 512 MiB file, then data until the pipe breaks.
        if stdin.write_all(&tar_header("big", 512 << 20)).is_err() {
            return;
        }
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..512 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    wait_for("the import to start writing", || {
        (ingest_busy(&d) && snapshot_count(&d) > base_snaps).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.kill(libc::SIGKILL);
    let _ = import.kill();
    let _ = import.wait();
    let _ = writer.join();
    d.spawn();
    assert_eq!(
        d.docker(&["images", "-aq", "--no-trunc"]).ok().stdout,
        base_images
    );
    assert!(!ingest_busy(&d));
    assert_eq!(snapshot_count(&d), base_snaps, "{}", d.log());
    verify_blobs(&d.data_root());

    // Images still run, containers still work.
    let out = d.docker(&["run", "--rm", "busybox", "echo", "alive"]).ok();
    assert_eq!(out.stdout, "alive\n");
    d.docker(&["rm", "-f", "fat"]).ok();
    let out = d.docker(&["run", "--rm", "busybox", "true"]);
    assert_eq!(out.code, 0, "{out:?}");
}
