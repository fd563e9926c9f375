//! The snapshotter on the real kernel: overlayfs and copy drivers, image unpacking,
//! many-layer mounts, diffs and change lists. Needs root.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{
    ApplyOptions, ChangeKind, Compression, Digest, Driver, Error, Kind, OverlayMethod, Snapshotter,
    apply_layer, is_mount_point, mount_with, unmount,
};
use common::{CAP_NET_RAW, Layer, MountGuard, manifest, manifest_diff};

fn long_dir() -> String {
    format!("deep/{}", "d".repeat(120))
}

fn long_file() -> String {
    format!("{}/{}", long_dir(), "f".repeat(120))
}

fn sparse_data() -> Vec<u8> {
    let mut v = vec![0u8; 1 << 20];
    v.extend_from_slice(b"end");
    v
}

/// Data, then zeros to the end: the file's size comes from the header, not from writes.
fn tail_hole_data() -> Vec<u8> {
    let mut v = b"start".to_vec();
    v.resize(70_000, 0);
    v
}

/// A three-layer image: a base, then whiteouts and an opaque directory, then a whiteout of a
/// symlink, a file re-created as a directory over a whiteout, and a metadata-only change.
fn image() -> Vec<Vec<u8>> {
    let l1 = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file_full("etc/shadow", b"secret", 0o640, 0, 42, &[])
        .file_full("etc/x", b"x", 0o644, 0, 0, &[("user.foo", b"bar")])
        .dir("bin", 0o755)
        .file_full("bin/sh", b"#!shell", 0o755, 0, 0, &[])
        .file_full(
            "bin/ping",
            b"ping",
            0o4755,
            0,
            0,
            &[("security.capability", &CAP_NET_RAW)],
        )
        .symlink("bin/bash", "sh")
        .hardlink("bin/sh2", "bin/sh")
        .dir("data", 0o755)
        .file("data/a", b"a")
        .file("data/b", b"b")
        .dir("data/sub", 0o700)
        .file("data/sub/c", b"c")
        .dir("tmp", 0o1777)
        .file("gone", b"gone")
        .dir("gonedir", 0o755)
        .file("gonedir/x", b"x")
        .dir("run", 0o755)
        .fifo("run/fifo")
        .dir("dev", 0o755)
        .chardev("dev/null", 1, 3)
        .dir("home", 0o755)
        .dir_owned("home/u", 0o700, 1000, 1000)
        .file_full("home/u/file", b"mine", 0o600, 1000, 1000, &[])
        .dir("deep", 0o755)
        .dir(&long_dir(), 0o755)
        .file(&long_file(), b"long")
        .file("sparse", &sparse_data())
        .file("sparse-tail", &tail_hole_data())
        .build();
    let l2 = Layer::new()
        .whiteout("gone")
        .whiteout("gonedir")
        .dir("data", 0o755)
        .opaque("data")
        .file("data/new", b"new")
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
        )
        .build();
    let l3 = Layer::new()
        .dir("bin", 0o755)
        .whiteout("bin/bash")
        .dir("gone", 0o750)
        .file("gone/again", b"again")
        .dir("etc", 0o755)
        .file_full("etc/shadow", b"secret", 0o600, 0, 42, &[])
        .build();
    vec![l1, l2, l3]
}

/// Unpacks `layers` as containerd does: prepare on the previous layer, apply, commit.
fn unpack(s: &Snapshotter, layers: &[Vec<u8>], prefix: &str) -> String {
    let mut parent: Option<String> = None;
    for (i, l) in layers.iter().enumerate() {
        let key = format!("{prefix}-extract-{i}");
        s.prepare(&key, parent.as_deref()).unwrap();
        s.apply_layer(&key, l.as_slice(), &ApplyOptions::default())
            .unwrap();
        let name = format!("{prefix}-layer-{i}");
        s.commit(&name, &key).unwrap();
        parent = Some(name);
    }
    parent.unwrap()
}

fn xattr(p: &Path, key: &str) -> Option<Vec<u8>> {
    let mut v = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, key, &mut v[..]) {
        Ok(n) => Some(v[..n].to_vec()),
        Err(_) => None,
    }
}

/// The merged view of the three-layer image, checked item by item.
fn check_image_view(m: &Path) {
    let read = |p: &str| std::fs::read_to_string(m.join(p)).unwrap();
    let meta = |p: &str| std::fs::symlink_metadata(m.join(p)).unwrap();
    assert!(
        read("etc/passwd").contains("u:x:1000"),
        "layer 2 replaced etc/passwd"
    );
    assert_eq!(
        meta("etc/shadow").mode() & 0o7777,
        0o600,
        "layer 3 changed the mode"
    );
    assert_eq!(meta("etc/shadow").gid(), 42);
    assert_eq!(
        xattr(&m.join("etc/x"), "user.foo").as_deref(),
        Some(&b"bar"[..])
    );
    assert_eq!(meta("bin/ping").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        xattr(&m.join("bin/ping"), "security.capability").as_deref(),
        Some(&CAP_NET_RAW[..])
    );
    assert!(!m.join("bin/bash").exists() && std::fs::symlink_metadata(m.join("bin/bash")).is_err());
    assert_eq!(meta("bin/sh2").ino(), meta("bin/sh").ino(), "hardlink kept");
    assert_eq!(read("bin/sh2"), "#!shell");
    let mut data: Vec<_> = std::fs::read_dir(m.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    data.sort();
    assert_eq!(data, ["new"], "opaque directory hides the lower contents");
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert!(meta("gone").is_dir(), "a whiteout then a directory");
    assert_eq!(meta("gone").mode() & 0o7777, 0o750);
    assert_eq!(read("gone/again"), "again");
    assert!(std::fs::symlink_metadata(m.join("gonedir")).is_err());
    assert!(meta("run/fifo").file_type().is_fifo());
    assert!(meta("dev/null").file_type().is_char_device());
    assert_eq!(meta("dev/null").rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        (meta("home/u/file").uid(), meta("home/u/file").gid()),
        (1000, 1000)
    );
    assert_eq!(meta("home/u").mode() & 0o7777, 0o700);
    assert_eq!(read(&long_file()), "long");
    assert_eq!(std::fs::read(m.join("sparse")).unwrap(), sparse_data());
    assert_eq!(
        std::fs::read(m.join("sparse-tail")).unwrap(),
        tail_hole_data(),
        "a trailing hole keeps the file's size"
    );
    assert_eq!(
        meta("etc").mtime(),
        1_600_000_000,
        "directory mtimes fixed after their contents"
    );
}

#[test]
fn overlay_three_layer_image() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap();
    let top = unpack(&s, &image(), "img");
    let mounts = s.prepare("ctr", Some(&top)).unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].typ, "overlay");
    let m = t.path().join("m");
    let _g = MountGuard::mount(&mounts, &m);
    check_image_view(&m);
    // The sparse file stayed sparse in its layer.
    let blocks = std::fs::metadata(m.join("sparse")).unwrap().blocks();
    assert!(blocks < 64, "zero blocks were written: {blocks} blocks");
    // Writable.
    std::fs::write(m.join("new"), b"x").unwrap();
}

#[test]
fn copy_driver_gives_the_same_view() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let views: Vec<BTreeMap<String, String>> = [Driver::Overlay, Driver::Copy]
        .into_iter()
        .map(|d| {
            let s = Snapshotter::open(t.path().join(format!("root-{d}")), d).unwrap();
            assert_eq!(s.driver(), d);
            let top = unpack(&s, &image(), "img");
            let mounts = s.view("v", Some(&top)).unwrap();
            if d == Driver::Copy {
                assert_eq!(mounts[0].typ, "bind");
            }
            let m = t.path().join(format!("m-{d}"));
            let _g = MountGuard::mount(&mounts, &m);
            check_image_view(&m);
            manifest(&m)
        })
        .collect();
    let d = manifest_diff(&views[0], &views[1]);
    assert!(
        d.is_empty(),
        "overlay and copy views differ:\n{}",
        d.join("\n")
    );
}

#[test]
fn compressions_give_the_same_diff_id() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let plain = image().remove(0);
    let inputs = [
        (Compression::None, plain.clone()),
        (Compression::Gzip, common::gzip(&plain)),
        (Compression::Zstd, common::zstd(&plain)),
    ];
    let mut results = Vec::new();
    for (i, (c, data)) in inputs.iter().enumerate() {
        let d = t.path().join(format!("d{i}"));
        std::fs::create_dir(&d).unwrap();
        let r = apply_layer(data.as_slice(), &d, &ApplyOptions::default()).unwrap();
        assert_eq!(r.compression, *c);
        assert_eq!(
            r.compressed_digest,
            Digest::of(data),
            "compressed digest is the input's sha256"
        );
        assert_eq!(r.compressed_size, data.len() as u64);
        assert_eq!(r.size, plain.len() as u64);
        results.push((r, manifest(&d)));
    }
    for (r, m) in &results[1..] {
        assert_eq!(r.diff_id, results[0].0.diff_id);
        assert_eq!(r.diff_id, Digest::of(&plain));
        assert!(manifest_diff(m, &results[0].1).is_empty());
    }
}

/// 150 layers, each adding one file.
fn many_layers(s: &Snapshotter, n: usize) -> String {
    let layers: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            Layer::new()
                .dir("layers", 0o755)
                .file(&format!("layers/f{i}"), i.to_string().as_bytes())
                .build()
        })
        .collect();
    unpack(s, &layers, "many")
}

fn check_many(m: &Path, n: usize) {
    for i in 0..n {
        assert_eq!(
            std::fs::read_to_string(m.join(format!("layers/f{i}"))).unwrap(),
            i.to_string()
        );
    }
}

#[test]
fn one_hundred_fifty_lower_layers_mount() {
    require_root!();
    const N: usize = 150;
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap();
    let top = many_layers(&s, N);
    let mounts = s.prepare("ctr", Some(&top)).unwrap();
    let lower = mounts[0]
        .options
        .iter()
        .find(|o| o.starts_with("lowerdir="))
        .unwrap();
    assert_eq!(lower.split(':').count(), N);
    assert!(lower.len() > 4096, "the test must exceed a page of options");
    let m = t.path().join("m");
    std::fs::create_dir(&m).unwrap();

    // The default path (new mount API on this kernel).
    {
        let _g = MountGuard::mount(&mounts, &m);
        check_many(&m, N);
        std::fs::write(m.join("layers/top"), b"top").unwrap();
    }
    // Each method explicitly.
    for method in [OverlayMethod::NewApi, OverlayMethod::LegacyRelative] {
        let cwd = std::env::current_dir().unwrap();
        mount_with(&mounts[0], &m, method).unwrap();
        let _g = MountGuard(m.clone());
        assert_eq!(
            std::env::current_dir().unwrap(),
            cwd,
            "{method:?} changed the process cwd"
        );
        check_many(&m, N);
        assert_eq!(
            std::fs::read_to_string(m.join("layers/top")).unwrap(),
            "top"
        );
    }
    // Full paths do not fit in mount(2)'s page.
    let e = mount_with(&mounts[0], &m, OverlayMethod::Legacy).unwrap_err();
    assert!(!is_mount_point(&m).unwrap(), "{e}");

    // A read-only view of all 150 layers (overlay without upper).
    let v = s.view("v", Some(&top)).unwrap();
    let vm = t.path().join("vm");
    let _g = MountGuard::mount(&v, &vm);
    check_many(&vm, N);
}

#[test]
fn view_is_read_only() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    for d in [Driver::Overlay, Driver::Copy] {
        let s = Snapshotter::open(t.path().join(format!("root-{d}")), d).unwrap();
        let top = unpack(&s, &image()[..2], "img");
        let v = s.view("v", Some(&top)).unwrap();
        let m = t.path().join(format!("m-{d}"));
        let _g = MountGuard::mount(&v, &m);
        let e = std::fs::write(m.join("x"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{d}");
    }
}

/// Changes made in a mounted container, for the diff tests.
fn make_changes(m: &Path) {
    std::fs::write(m.join("new.txt"), b"new").unwrap();
    rustix::fs::lsetxattr(
        m.join("new.txt"),
        "user.added",
        b"1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(m.join("etc/passwd"), b"changed").unwrap();
    std::fs::remove_file(m.join("etc/x")).unwrap();
    std::fs::remove_dir_all(m.join("data")).unwrap();
    std::fs::set_permissions(m.join("bin/ping"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(m.join("newdir")).unwrap();
    std::fs::write(m.join("newdir/f"), b"f").unwrap();
    std::os::unix::fs::symlink("../new.txt", m.join("newdir/link")).unwrap();
    std::fs::hard_link(m.join("new.txt"), m.join("newdir/hard")).unwrap();
    std::fs::remove_dir_all(m.join("home")).unwrap();
    std::fs::create_dir_all(m.join("home/other")).unwrap();
    std::fs::write(m.join("home/other/x"), b"x").unwrap();
    std::fs::set_permissions(m.join("tmp"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

const EXPECTED_CHANGES: &[&str] = &[
    "C /bin",
    "C /bin/ping",
    "D /data",
    "C /etc",
    "C /etc/passwd",
    "D /etc/x",
    "C /home",
    "A /home/other",
    "A /home/other/x",
    "D /home/u",
    "A /new.txt",
    "A /newdir",
    "A /newdir/f",
    "A /newdir/hard",
    "A /newdir/link",
    "C /tmp",
];

fn diff_round_trip(driver: Driver) {
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), driver).unwrap();
    let top = unpack(&s, &image(), "img");
    let mounts = s.prepare("work", Some(&top)).unwrap();
    let m = t.path().join("work");
    let before = {
        let _g = MountGuard::mount(&mounts, &m);
        make_changes(&m);
        manifest(&m)
    };

    let changes: Vec<String> = s
        .changes("work")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(changes, EXPECTED_CHANGES, "{driver}");

    let mut tar1 = Vec::new();
    let d1 = s.write_diff("work", &mut tar1).unwrap();
    let mut tar2 = Vec::new();
    let d2 = s.write_diff("work", &mut tar2).unwrap();
    assert_eq!(d1, d2, "diffs are reproducible");
    assert_eq!(tar1, tar2);
    assert_eq!(d1.diff_id, Digest::of(&tar1));
    assert_eq!(d1.size, tar1.len() as u64);

    s.prepare("replay", Some(&top)).unwrap();
    let applied = s
        .apply_layer("replay", tar1.as_slice(), &ApplyOptions::default())
        .unwrap();
    assert_eq!(applied.diff_id, d1.diff_id);
    s.commit("replayed", "replay").unwrap();
    let v = s.view("v", Some("replayed")).unwrap();
    let vm = t.path().join("v");
    let _g = MountGuard::mount(&v, &vm);
    let after = manifest(&vm);
    let d = manifest_diff(&before, &after);
    assert!(
        d.is_empty(),
        "{driver}: replayed diff differs from the container:\n{}",
        d.join("\n")
    );

    // The replayed layer's own changes are the same list.
    let replayed: Vec<String> = s
        .changes("replayed")
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(replayed, EXPECTED_CHANGES, "{driver}");
}

#[test]
fn overlay_diff_round_trips_through_apply() {
    require_root!();
    diff_round_trip(Driver::Overlay);
}

#[test]
fn copy_diff_round_trips_through_apply() {
    require_root!();
    diff_round_trip(Driver::Copy);
}

#[test]
fn overlay_diff_has_whiteouts_and_opaque_markers() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap();
    let top = unpack(&s, &image(), "img");
    let mounts = s.prepare("work", Some(&top)).unwrap();
    let m = t.path().join("work");
    {
        let _g = MountGuard::mount(&mounts, &m);
        make_changes(&m);
    }
    let mut tar = Vec::new();
    s.write_diff("work", &mut tar).unwrap();
    let mut a = tar::Archive::new(tar.as_slice());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect();
    for want in [
        ".wh.data",
        "etc/.wh.x",
        "home/",
        "home/.wh..wh..opq",
        "newdir/hard",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    // Walk order of the upper directory: by name, a whiteout where the deleted name sorts,
    // a directory's opaque marker right after the directory.
    let key = |n: &String| {
        n.trim_end_matches('/')
            .replace(".wh..wh..opq", "\u{1}")
            .replace(".wh.", "")
    };
    let mut sorted = names.clone();
    sorted.sort_by_key(key);
    assert_eq!(names, sorted, "entries in a stable, sorted order");
    let changes = s.changes("work").unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.kind == ChangeKind::Delete && c.path == Path::new("/data"))
    );
}

#[test]
fn snapshot_lifecycle() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let s = Snapshotter::open(&root, Driver::Overlay).unwrap();

    let m = s.prepare("a", None).unwrap();
    assert_eq!(m[0].typ, "bind");
    assert!(m[0].options.contains(&"rw".to_string()));
    s.apply_layer("a", image()[0].as_slice(), &ApplyOptions::default())
        .unwrap();
    s.commit("base", "a").unwrap();
    assert_eq!(s.stat("base").unwrap().kind, Kind::Committed);
    assert!(matches!(s.stat("a"), Err(Error::NotFound(_))));
    assert!(matches!(s.mounts("base"), Err(Error::State { .. })));

    let b = s.prepare("b", Some("base")).unwrap();
    assert_eq!(b[0].typ, "overlay");
    assert!(matches!(s.prepare("b", None), Err(Error::AlreadyExists(_))));
    assert!(
        matches!(s.prepare("c", Some("b")), Err(Error::State { .. })),
        "an active parent"
    );
    assert!(matches!(
        s.prepare("c", Some("nope")),
        Err(Error::NotFound(_))
    ));
    let v = s.view("v", Some("base")).unwrap();
    assert_eq!(v[0].typ, "bind");
    assert!(v[0].options.contains(&"ro".to_string()));
    assert!(
        matches!(s.commit("x", "v"), Err(Error::State { .. })),
        "a view cannot be committed"
    );
    assert!(matches!(
        s.commit("base", "b"),
        Err(Error::AlreadyExists(_))
    ));
    let e = s.remove("base").unwrap_err();
    assert!(e.to_string().contains("children"), "{e}");

    let u = s.usage("base").unwrap();
    assert!(u.inodes >= 25, "{u:?}");
    assert!(
        u.size >= 4096 && u.size < (1 << 20),
        "sparse file counted by blocks: {u:?}"
    );
    let empty = s.usage("b").unwrap();
    assert_eq!(empty.inodes, 1);

    let mut labels = BTreeMap::new();
    labels.insert("containerd.io/gc.root".to_string(), "x".to_string());
    assert_eq!(
        s.update_labels("base", labels.clone()).unwrap().labels,
        labels
    );
    let names: Vec<String> = s.list().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["b", "base", "v"]);
    let mut walked = 0;
    s.walk(|_| {
        walked += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(walked, 3);

    // One process at a time.
    assert!(Snapshotter::open(&root, Driver::Overlay).is_err());
    drop(s);

    // Reopen: metadata persists, the driver is remembered, orphans are removed.
    std::fs::create_dir_all(root.join("snapshots/999/fs")).unwrap();
    assert!(
        Snapshotter::open(&root, Driver::Copy).is_err(),
        "the root holds overlay data"
    );
    let s = Snapshotter::open(&root, Driver::Auto).unwrap();
    assert_eq!(s.driver(), Driver::Overlay);
    assert!(!root.join("snapshots/999").exists());
    assert_eq!(s.stat("base").unwrap().labels, labels);
    assert_eq!(s.stat("b").unwrap().parent.as_deref(), Some("base"));

    s.remove("b").unwrap();
    s.remove("v").unwrap();
    s.remove("base").unwrap();
    assert!(s.list().is_empty());
    let left: Vec<PathBuf> = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn auto_driver_picks_overlay_here() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let s = Snapshotter::open(&root, Driver::Auto).unwrap();
    assert_eq!(s.driver(), Driver::Overlay);
    assert_eq!(
        std::fs::read_dir(root.join("snapshots")).unwrap().count(),
        0,
        "probe cleaned up"
    );
}

#[test]
fn busy_mount_is_detached() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap();
    let top = unpack(&s, &image()[..1], "img");
    let mounts = s.prepare("c", Some(&top)).unwrap();
    let m = t.path().join("m");
    let g = MountGuard::mount(&mounts, &m);
    assert!(is_mount_point(&m).unwrap());
    let busy = std::fs::File::open(m.join("etc/passwd")).unwrap();
    unmount(&m).unwrap();
    assert!(!is_mount_point(&m).unwrap());
    drop(busy);
    // Unmounting what is not mounted is fine (cleanup paths).
    unmount(&m).unwrap();
    drop(g);
}

#[test]
fn implicit_parents_take_lower_metadata() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap();
    let base = unpack(&s, &image()[..1], "img");
    // A layer that writes into tmp/ and home/u/ without their directory entries.
    let l = Layer::new()
        .file("tmp/x", b"x")
        .file("home/u/more", b"m")
        .build();
    s.prepare("k", Some(&base)).unwrap();
    s.apply_layer("k", l.as_slice(), &ApplyOptions::default())
        .unwrap();
    s.commit("top", "k").unwrap();
    let v = s.view("v", Some("top")).unwrap();
    let m = t.path().join("m");
    let _g = MountGuard::mount(&v, &m);
    let tmp = std::fs::metadata(m.join("tmp")).unwrap();
    assert_eq!(
        tmp.mode() & 0o7777,
        0o1777,
        "the upper tmp/ kept the lower's mode"
    );
    assert_eq!(tmp.mtime(), 1_600_000_000);
    let u = std::fs::metadata(m.join("home/u")).unwrap();
    assert_eq!((u.uid(), u.gid(), u.mode() & 0o7777), (1000, 1000, 0o700));
    assert_eq!(
        std::fs::read(m.join("home/u/file")).unwrap(),
        b"mine",
        "lower content still merged"
    );
}

#[test]
fn id_shift_moves_owners_into_the_range() {
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let shift = berth_snapshot::IdShift {
        uid: 100_000,
        gid: 200_000,
        size: 65_536,
    };
    let opts = ApplyOptions {
        id_shift: Some(shift),
        ..Default::default()
    };
    let d = t.path().join("d");
    std::fs::create_dir(&d).unwrap();
    apply_layer(image()[0].as_slice(), &d, &opts).unwrap();
    let f = std::fs::metadata(d.join("home/u/file")).unwrap();
    assert_eq!((f.uid(), f.gid()), (101_000, 201_000));
    let e = std::fs::metadata(d.join("etc/passwd")).unwrap();
    assert_eq!((e.uid(), e.gid()), (100_000, 200_000));

    let out_of_range = Layer::new()
        .file_full("f", b"x", 0o644, 70_000, 0, &[])
        .build();
    let d2 = t.path().join("d2");
    std::fs::create_dir(&d2).unwrap();
    let err = apply_layer(out_of_range.as_slice(), &d2, &opts).unwrap_err();
    assert!(
        err.to_string().contains("outside the mapped id range"),
        "{err}"
    );
}

#[test]
fn snapshotter_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Snapshotter>();
    require_root!();
    let t = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Snapshotter::open(t.path().join("root"), Driver::Overlay).unwrap());
    let base = unpack(&s, &image()[..1], "img");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            let base = base.clone();
            std::thread::spawn(move || {
                s.prepare(&format!("c{i}"), Some(&base)).unwrap();
                s.remove(&format!("c{i}")).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.list().len(), 1);
    assert!(matches!(
        s.apply_layer(&base, image()[1].as_slice(), &ApplyOptions::default()),
        Err(Error::State { .. })
    ));
}

/// `docker export`: the merged tree of an active snapshot, read while its own mount is live,
/// unpacks to the same tree, and nothing stays mounted or left in the root.
fn export_round_trip(driver: Driver) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let s = Snapshotter::open(&root, driver).unwrap();
    let top = unpack(&s, &image(), "img");
    let mounts = s.prepare("work", Some(&top)).unwrap();
    let m = t.path().join("work");
    let _g = MountGuard::mount(&mounts, &m);
    make_changes(&m);
    let before = manifest(&m);

    let mut tar = Vec::new();
    let r = s.export("work", &mut tar).unwrap();
    assert_eq!(r.diff_id, Digest::of(&tar));
    let names: Vec<String> = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "new.txt"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("data")), "{names:?}");

    s.prepare("imported", None).unwrap();
    s.apply_layer("imported", tar.as_slice(), &ApplyOptions::default())
        .unwrap();
    s.commit("imported-layer", "imported").unwrap();
    let v = s.view("iv", Some("imported-layer")).unwrap();
    let vm = t.path().join("iv");
    let _g2 = MountGuard::mount(&v, &vm);
    let d = manifest_diff(&before, &manifest(&vm));
    assert!(d.is_empty(), "{driver}: export differs:\n{}", d.join("\n"));

    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("export-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&root.join("export-").to_string_lossy().into_owned()));
    // A committed snapshot has no mounts to export.
    assert!(s.export(&top, &mut Vec::new()).is_err());
    drop((_g, _g2));
    // A scratch directory a crash left behind goes at the next open.
    drop(s);
    std::fs::create_dir(root.join("export-stale")).unwrap();
    let _s = Snapshotter::open(&root, driver).unwrap();
    assert!(!root.join("export-stale").exists());
}

#[test]
fn overlay_export_round_trips() {
    export_round_trip(Driver::Overlay);
}

#[test]
fn copy_export_round_trips() {
    export_round_trip(Driver::Copy);
}

/// Paths to skip leave out what was added there, never what the lowers have.
#[test]
fn diff_skipping_mount_points() {
    for driver in [Driver::Overlay, Driver::Copy] {
        let t = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(t.path().join("root"), driver).unwrap();
        let top = unpack(&s, &image(), "img");
        let mounts = s.prepare("work", Some(&top)).unwrap();
        {
            let m = t.path().join("work");
            let _g = MountGuard::mount(&mounts, &m);
            make_changes(&m);
        }
        let skip: Vec<PathBuf> = ["new.txt", "newdir", "etc/passwd"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let mut tar = Vec::new();
        s.write_diff_skipping("work", &skip, &mut tar).unwrap();
        let names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n == "new.txt"), "{driver}: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("newdir")),
            "{driver}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n == "etc/passwd"),
            "{driver}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n == "home/other/x"),
            "{driver}: {names:?}"
        );
    }
}
