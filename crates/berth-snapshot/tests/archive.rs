//! `docker cp`'s file-system side ([`Tree`]): stat, archive and extract inside a tree, with
//! hostile symlinks in the tree, hostile archives, and a racing thread swapping a directory
//! for a symlink out of the tree while copies run.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_snapshot::{CopyError, Tree, UntarOptions};

/// A tree standing for a container's `/` and, beside it, an "outside" standing for the
/// host, with a secret nothing may read and a directory nothing may write.
struct Fixture {
    _t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

const SECRET: &[u8] = b"host secret 5f2c";

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::create_dir_all(outside.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), b"container\n").unwrap();
    std::fs::write(root.join("data/a file"), b"hello").unwrap();
    std::fs::write(root.join("data/sub/b"), b"bee").unwrap();
    std::fs::set_permissions(
        root.join("data/a file"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::write(outside.join("etc/hostname"), SECRET).unwrap();
    std::fs::write(outside.join("secret"), SECRET).unwrap();
    // Hostile links a container could plant: to its "/", to the host's absolute path of
    // the outside, and a relative climb.
    symlink("/", root.join("link-to-root")).unwrap();
    symlink(&outside, root.join("link-abs")).unwrap();
    symlink("../../../../../../../..", root.join("link-up")).unwrap();
    Fixture {
        _t: t,
        root,
        outside,
    }
}

fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            (p, d)
        })
        .collect()
}

/// A header with every numeric field set (owner root, a fixed time).
fn hdr() -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

fn tar_of(tree: &Tree, p: &str) -> Result<Vec<u8>, CopyError> {
    let mut v = Vec::new();
    tree.tar(p, &mut v)?;
    Ok(v)
}

/// Every file below `dir`, for "nothing changed" checks.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            v.push(e.path());
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    v.sort();
    v
}

#[test]
fn stat_reports_like_docker() {
    let f = fixture();
    let tree = Tree::open(&f.root).unwrap();
    let s = tree.stat("/data/a file").unwrap();
    assert_eq!(s.name, "a file");
    assert_eq!(s.size, 5);
    assert_eq!(s.mode & 0o7777, 0o750);
    assert_eq!(s.link_target, None);
    let s = tree.stat("/link-to-root").unwrap();
    assert_eq!(s.mode & 0o170000, 0o120000);
    assert_eq!(s.link_target.as_deref(), Some("/"));
    // An absolute link to the host's path stays a path inside the tree.
    let s = tree.stat("/link-abs").unwrap();
    assert_eq!(s.link_target.as_deref(), Some(f.outside.to_str().unwrap()));
    let s = tree.stat("/link-up/etc").unwrap();
    assert_eq!(s.mode & 0o170000, 0o040000);
    assert_eq!(tree.stat("/data/.").unwrap().name, ".");
    assert_eq!(tree.stat("/data/").unwrap().name, "data");
    assert!(matches!(tree.stat("/nope"), Err(CopyError::NotFound(p)) if p == "/nope"));
    assert!(matches!(
        tree.stat("/data/sub/b/"),
        Err(CopyError::Invalid(_))
    ));
    assert!(matches!(tree.stat("relative"), Err(CopyError::Invalid(_))));
}

#[test]
fn tar_names_the_top_entry_like_docker() {
    let f = fixture();
    let tree = Tree::open(&f.root).unwrap();
    let e = entries(&tar_of(&tree, "/data").unwrap());
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["data/", "data/a file", "data/sub/", "data/sub/b"]);
    assert_eq!(e[1].1, b"hello");
    let e = entries(&tar_of(&tree, "/data/.").unwrap());
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["./", "./a file", "./sub/", "./sub/b"]);
    // A final symlink is archived as itself; a trailing slash follows it.
    let e = entries(&tar_of(&tree, "/link-to-root").unwrap());
    assert_eq!(e.len(), 1);
    let e = entries(&tar_of(&tree, "/link-to-root/etc/").unwrap());
    assert_eq!(e[0].0, "etc/");
    assert_eq!(e[1], ("etc/hostname".to_string(), b"container\n".to_vec()));
    assert!(matches!(
        tar_of(&tree, "/data/missing"),
        Err(CopyError::NotFound(_))
    ));
}

#[test]
fn hostile_links_in_the_tree_never_lead_out() {
    let f = fixture();
    let tree = Tree::open(&f.root).unwrap();
    for p in [
        "/link-to-root/etc/hostname",
        "/link-up/etc/hostname",
        "/link-up/../../etc/hostname",
    ] {
        let e = entries(&tar_of(&tree, p).unwrap());
        assert_eq!(
            e,
            [("hostname".to_string(), b"container\n".to_vec())],
            "{p}"
        );
    }
    // The host's absolute path does not exist inside the tree.
    assert!(matches!(
        tar_of(&tree, "/link-abs/secret"),
        Err(CopyError::NotFound(_))
    ));
    // Writing through the links lands inside.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "evil.txt", &b"evil"[..]).unwrap();
    let data = b.into_inner().unwrap();
    for dst in ["/link-to-root/", "/link-up", "/link-up/etc"] {
        tree.untar(dst, &data[..], &UntarOptions::default())
            .unwrap();
    }
    assert_eq!(std::fs::read(f.root.join("evil.txt")).unwrap(), b"evil");
    assert_eq!(std::fs::read(f.root.join("etc/evil.txt")).unwrap(), b"evil");
    assert!(matches!(
        tree.untar("/link-abs", &data[..], &UntarOptions::default()),
        Err(CopyError::NotFound(_))
    ));
    assert!(!f.outside.join("evil.txt").exists());
}

#[test]
fn untar_keeps_modes_times_and_owner_choice() {
    let f = fixture();
    let tree = Tree::open(&f.root).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o711);
    h.set_uid(1234);
    h.set_gid(4321);
    h.set_mtime(1_500_000_000);
    h.set_size(0);
    h.set_cksum();
    b.append_data(&mut h, "new dir/", std::io::empty()).unwrap();
    let mut h = hdr();
    h.set_mode(0o640);
    h.set_uid(1234);
    h.set_gid(4321);
    h.set_mtime(1_400_000_000);
    h.set_size(3);
    h.set_cksum();
    b.append_data(&mut h, "new dir/f", &b"abc"[..]).unwrap();
    let data = b.into_inner().unwrap();
    tree.untar("/data", &data[..], &UntarOptions::default())
        .unwrap();
    let d = std::fs::metadata(f.root.join("data/new dir")).unwrap();
    assert_eq!(
        (d.mode() & 0o7777, d.uid(), d.gid(), d.mtime()),
        (0o711, 1234, 4321, 1_500_000_000)
    );
    let m = std::fs::metadata(f.root.join("data/new dir/f")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o640, 1234, 4321, 1_400_000_000)
    );
    let opts = UntarOptions {
        owner: Some((0, 0)),
        no_overwrite_dir_non_dir: true,
    };
    tree.untar("/etc", &data[..], &opts).unwrap();
    let m = std::fs::metadata(f.root.join("etc/new dir/f")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o640));
    // noOverwriteDirNonDir: a file named like an existing directory is refused.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "sub", &b"x"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let e = tree.untar("/data", &data[..], &opts).unwrap_err();
    assert!(
        matches!(e, CopyError::Invalid(ref m) if m.contains("overwrite")),
        "{e}"
    );
    assert!(f.root.join("data/sub/b").exists());
    // Not a directory, missing, relative.
    assert!(matches!(
        tree.untar("/etc/hostname", &data[..], &opts),
        Err(CopyError::Invalid(m)) if m.contains("not a directory")
    ));
    assert!(matches!(
        tree.untar("/nope", &data[..], &opts),
        Err(CopyError::NotFound(_))
    ));
    assert!(matches!(
        tree.untar("data", &data[..], &opts),
        Err(CopyError::Invalid(_))
    ));
}

/// A thread swaps `/data/sub` between a directory and a symlink out of the tree (to `/`,
/// to the host path of the outside, and a relative climb) while copies out of and into it
/// run. No copy may read the host's secret or write anything outside the tree.
#[test]
fn racing_symlink_swaps_stay_inside() {
    let f = fixture();
    let tree = Tree::open(&f.root).unwrap();
    // What the escape targets would hold if followed on the host.
    let sub = f.root.join("data/sub");
    let stop = Arc::new(AtomicBool::new(false));
    let swapped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let racer = {
        let stop = stop.clone();
        let swapped = swapped.clone();
        let sub = sub.clone();
        let outside = f.outside.clone();
        let parked = f.root.join("data/parked");
        std::thread::spawn(move || {
            let targets = [
                PathBuf::from("/"),
                outside.clone(),
                PathBuf::from("../../../../../../../.."),
            ];
            let mut i = 0;
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // directory → symlink
                if std::fs::rename(&sub, &parked).is_ok() {
                    let _ = symlink(&targets[i % targets.len()], &sub);
                    i += 1;
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&sub);
                    // An upload may have made a new `sub` directory in the gap: drop it (it
                    // is inside the tree; a symlink is removed, not followed), or the racer
                    // would be wedged with `parked` in the way for the rest of the test.
                    if std::fs::rename(&parked, &sub).is_err() {
                        let _ = std::fs::remove_dir_all(&sub);
                        let _ = std::fs::rename(&parked, &sub);
                    }
                    swaps += 1;
                    swapped.store(swaps, Ordering::Relaxed);
                }
            }
            swaps
        })
    };
    let before_outside = listing(&f.outside);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "sub/dropped", &b"drop"[..]).unwrap();
    let mut h = hdr();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "sub/etc/dropped", &b"drop"[..])
        .unwrap();
    let upload = b.into_inner().unwrap();
    // At least 4 s of racing, and (on a loaded machine, where the racer gets little CPU)
    // on until it has swapped a few times, within a minute.
    let start = std::time::Instant::now();
    let (mut reads, mut writes) = (0, 0);
    while start.elapsed() < std::time::Duration::from_secs(4)
        || (swapped.load(Ordering::Relaxed) <= 10
            && start.elapsed() < std::time::Duration::from_secs(60))
    {
        for p in [
            "/data/sub/b",
            "/data/sub/",
            "/data",
            "/data/sub/etc/hostname",
        ] {
            if let Ok(t) = tar_of(&tree, p) {
                reads += 1;
                let raw = String::from_utf8_lossy(&t).into_owned();
                assert!(
                    !raw.contains(std::str::from_utf8(SECRET).unwrap()),
                    "{p}: read the host's secret"
                );
            }
        }
        for p in ["/data", "/data/sub", "/data/sub/etc"] {
            if tree.untar(p, &upload[..], &UntarOptions::default()).is_ok() {
                writes += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    assert!(swaps > 10, "the racer never swapped ({swaps})");
    assert!(reads > 0 && writes > 0, "reads {reads}, writes {writes}");
    assert_eq!(listing(&f.outside), before_outside, "the outside changed");
    assert_eq!(std::fs::read(f.outside.join("secret")).unwrap(), SECRET);
    assert!(!Path::new("/dropped").exists() && !Path::new("/etc/dropped").exists());
    assert!(!Path::new("/sub").exists());
}

/// A stopped container's tree: the snapshot mounted detached (read-write to extract,
/// read-only to read), for both drivers; links climbing with `..` resolve inside it (the
/// kernel answers `EAGAIN` for `..` in a detached mount, and the lexical fallback takes
/// over); nothing stays mounted once the tree is dropped.
#[test]
fn snapshot_trees_of_stopped_containers() {
    use berth_snapshot::{Driver, Snapshotter};
    let t = tempfile::tempdir().unwrap();
    for driver in [Driver::Overlay, Driver::Copy] {
        let root = t.path().join(format!("{driver:?}"));
        let s = Snapshotter::open(&root, driver).unwrap();
        s.prepare("ctr", None).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in [
            ("etc/", tar::EntryType::Directory, &b""[..], ""),
            (
                "etc/hostname",
                tar::EntryType::Regular,
                &b"inside\n"[..],
                "",
            ),
            ("up", tar::EntryType::Symlink, &b""[..], "../../../../.."),
        ] {
            let mut h = hdr();
            h.set_entry_type(kind);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            if link.is_empty() {
                b.append_data(&mut h, name, data).unwrap();
            } else {
                b.append_link(&mut h, name, link).unwrap();
            }
        }
        let data = b.into_inner().unwrap();
        {
            let w = s.open_tree("ctr", true).unwrap();
            w.untar("/", &data[..], &UntarOptions::default()).unwrap();
            let mut b = tar::Builder::new(Vec::new());
            let mut h = hdr();
            h.set_mode(0o644);
            h.set_size(2);
            b.append_data(&mut h, "via-up", &b"ok"[..]).unwrap();
            w.untar(
                "/up/up/etc",
                &b.into_inner().unwrap()[..],
                &UntarOptions::default(),
            )
            .unwrap();
        }
        let r = s.open_tree("ctr", false).unwrap();
        let e = entries(&tar_of(&r, "/up/etc/hostname").unwrap());
        assert_eq!(e, [("hostname".into(), b"inside\n".to_vec())], "{driver:?}");
        let e = entries(&tar_of(&r, "/up/../up/etc/via-up").unwrap());
        assert_eq!(e, [("via-up".into(), b"ok".to_vec())], "{driver:?}");
        assert_eq!(r.stat("/up").unwrap().link_target.as_deref(), Some("/"));
        // Read-only: extraction fails.
        assert!(
            r.untar("/etc", &data[..], &UntarOptions::default())
                .is_err()
        );
        drop(r);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(root.to_str().unwrap()),
            "{driver:?}: a mount was left behind"
        );
        assert!(!Path::new("/via-up").exists() && !Path::new("/etc/via-up").exists());
    }
}
