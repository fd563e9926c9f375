//! Image store tests on the real thing: redb, the content store, overlay snapshots and mounts.
//! Run as root.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::model::{
    MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, ManifestDoc, parse_manifest,
};
use berth_image::{DeleteItem, Error, ImageStore, ImportOptions, InUse};
use berth_snapshot::{Driver, Snapshotter, mount_all, unmount};
use berth_store::db::{IMAGES, LEASES, SNAPSHOTS, TAGS};
use berth_store::{ContentStore, Db, ImageRecord, Platform};
use berth_types::{Digest, Reference};

struct Env {
    dir: tempfile::TempDir,
    store: ImageStore,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("metadata.redb")).unwrap());
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    let snaps = Arc::new(Snapshotter::open(dir.path().join("snapshots"), Driver::Overlay).unwrap());
    Env {
        store: ImageStore::new(db, content, snaps),
        dir,
    }
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(mounts: &[berth_snapshot::Mount], target: &Path) -> Self {
        std::fs::create_dir_all(target).unwrap();
        mount_all(mounts, target).unwrap();
        Mounted(target.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn header(typ: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(typ);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h
}

/// A small layer: a directory, a file and a symlink.
fn layer_tar(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "app/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, content.len() as u64);
    b.append_data(&mut h, "app/hello.txt", content).unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "app/link", "hello.txt").unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn no_containers(_: &Digest) -> Option<InUse> {
    None
}

/// Asserts that nothing but `images` is left: no other blob, snapshot, row or ingest file.
fn assert_only(e: &Env, images: &[&ImageRecord]) {
    let s = &e.store;
    let mut want_blobs: Vec<Digest> = images
        .iter()
        .flat_map(|i| {
            [i.id.clone(), i.manifest_digest.clone()]
                .into_iter()
                .chain(i.layers.iter().cloned())
        })
        .collect();
    want_blobs.sort();
    want_blobs.dedup();
    assert_eq!(s.content().list().unwrap(), want_blobs);
    let ingest: Vec<_> = std::fs::read_dir(s.content().root().join("ingest"))
        .unwrap()
        .collect();
    assert!(ingest.is_empty(), "ingest files left: {ingest:?}");
    let mut want_snaps: Vec<String> = images
        .iter()
        .flat_map(|i| i.chain_ids.iter().map(|c| c.to_string()))
        .collect();
    want_snaps.sort();
    want_snaps.dedup();
    let snaps: Vec<String> = s.snapshotter().list().into_iter().map(|i| i.name).collect();
    assert_eq!(snaps, want_snaps);
    s.db()
        .read(|tx| {
            assert_eq!(tx.list(&IMAGES, "")?.len(), images.len());
            assert!(tx.list(&LEASES, "")?.is_empty());
            assert!(tx.list(&SNAPSHOTS, "")?.is_empty());
            for (k, id) in tx.list(&TAGS, "")? {
                assert!(images.iter().any(|i| i.id == id), "dangling tag {k}");
            }
            Ok::<_, berth_store::Error>(())
        })
        .unwrap();
}

#[test]
fn busybox_bootstrap_gives_a_runnable_rootfs() {
    let e = env();
    let img = e.store.bootstrap_busybox(&r("busybox")).unwrap();
    assert_eq!(img.record.layers.len(), 1);
    assert_eq!(img.repo_tags, [r("docker.io/library/busybox:latest")]);
    let cfg = img.config.config.clone().unwrap();
    assert_eq!(cfg.cmd.unwrap(), ["sh"]);
    assert!(cfg.env[0].starts_with("PATH=/usr/local/sbin:"));
    assert_eq!(img.config.rootfs.diff_ids, img.record.diff_ids);

    // The same binary gives the same image.
    let again = e.store.bootstrap_busybox(&r("busybox:again")).unwrap();
    assert_eq!(again.record.id, img.record.id);
    assert_eq!(e.store.list().unwrap().len(), 1);

    // A container root filesystem on it, mounted for real.
    let key = "c".repeat(64);
    let mounts = e.store.prepare_rootfs(&img.record.id, &key).unwrap();
    let root = e.dir.path().join("rootfs");
    {
        let _m = Mounted::new(&mounts, &root);
        let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
        assert!(bb.is_file());
        assert_eq!(bb.permissions().mode() & 0o777, 0o755);
        assert_eq!(bb.len(), std::fs::metadata("/bin/busybox").unwrap().len());
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(std::fs::symlink_metadata(root.join("usr/bin/awk")).is_ok());
        let tmp = std::fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        assert_eq!(
            std::fs::metadata(root.join("root")).unwrap().mode() & 0o777,
            0o700
        );
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
        assert!(root.join("etc/group").is_file());
        assert!(root.join("proc").is_dir() && root.join("var/tmp").is_dir());
        // Writable, and the writes stay in the container's layer.
        std::fs::write(root.join("tmp/written"), b"x").unwrap();
    }
    let other = "d".repeat(64);
    let mounts2 = e.store.prepare_rootfs(&img.record.id, &other).unwrap();
    let root2 = e.dir.path().join("rootfs2");
    {
        let _m = Mounted::new(&mounts2, &root2);
        assert!(root2.join("bin/busybox").is_file());
        assert!(!root2.join("tmp/written").exists());
    }
    // One key, one root filesystem.
    let err = e.store.prepare_rootfs(&img.record.id, &key).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    e.store.release_rootfs(&key).unwrap();
    e.store.release_rootfs(&other).unwrap();
    e.store.release_rootfs(&other).unwrap(); // idempotent
    assert_only(&e, &[&img.record]);
}

#[test]
fn bootstrap_refuses_a_dynamic_busybox_and_leaves_nothing() {
    let e = env();
    let err = e
        .store
        .bootstrap_busybox_from(Path::new("/bin/ls"), &r("fake"))
        .unwrap_err();
    assert!(err.to_string().contains("dynamically linked"), "{err}");
    assert_only(&e, &[]);
}

#[test]
fn import_with_changes_sets_config_and_honest_digests() {
    let e = env();
    let plain = layer_tar(b"hello\n");
    let changes: Vec<String> = [
        r#"CMD ["/app/run", "--fast"]"#,
        "ENTRYPOINT /bin/sh -c",
        "ENV A=1 B=\"two words\"",
        "WORKDIR /app",
        "USER nobody",
        "LABEL org.example.team=core",
        "EXPOSE 8080 53/udp",
        "VOLUME /data",
        "STOPSIGNAL SIGINT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (i, (bytes, media)) in [
        (plain.clone(), MEDIA_OCI_LAYER),
        (gzip(&plain), MEDIA_OCI_LAYER_GZIP),
        (zstd(&plain), MEDIA_OCI_LAYER_ZSTD),
    ]
    .into_iter()
    .enumerate()
    {
        let reference = r(&format!("example.com/team/app:v{i}"));
        let img = e
            .store
            .import(
                bytes.as_slice(),
                &ImportOptions {
                    reference: Some(reference.clone()),
                    changes: changes.clone(),
                    message: Some("from a test".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let rec = &img.record;
        // The blob is the input as given; the diff id is the plain tar's.
        assert_eq!(rec.layers, [Digest::sha256_of(&bytes)]);
        assert_eq!(rec.diff_ids, [Digest::sha256_of(&plain)]);
        assert_eq!(rec.chain_ids, rec.diff_ids);
        assert_eq!(rec.size, plain.len() as u64);
        assert_eq!(e.store.content().read(&rec.layers[0]).unwrap(), bytes);
        // The manifest and config are in the content store and say the same.
        let m = e.store.content().read(&rec.manifest_digest).unwrap();
        let ManifestDoc::Manifest(m, _) = parse_manifest(&m, None).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.config.digest, rec.id);
        assert_eq!(m.layers[0].media_type, media);
        assert_eq!(m.layers[0].size, bytes.len() as u64);
        let raw = e.store.content().read(&rec.id).unwrap();
        assert_eq!(Digest::sha256_of(&raw), rec.id);

        let c = img.config.config.as_ref().unwrap();
        assert_eq!(
            c.entrypoint.as_ref().unwrap(),
            &["/bin/sh", "-c", "/bin/sh -c"]
        );
        assert_eq!(c.cmd.as_ref().unwrap(), &["/app/run", "--fast"]);
        assert_eq!(c.env, ["A=1", "B=two words"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            c.exposed_ports.keys().collect::<Vec<_>>(),
            ["53/udp", "8080/tcp"]
        );
        assert!(c.volumes.contains_key("/data"));
        assert_eq!(
            rec.labels,
            BTreeMap::from([("org.example.team".to_string(), "core".to_string())])
        );
        assert_eq!(
            img.config.history[0].comment.as_deref(),
            Some("from a test")
        );
        assert_eq!(img.repo_tags, std::slice::from_ref(&reference));
        assert_eq!(e.store.resolve(&reference.to_string()).unwrap().id, rec.id);
    }
    // Three images, one unpacked layer: they share the chain id.
    assert_eq!(e.store.list().unwrap().len(), 3);
    assert_eq!(e.store.snapshotter().list().len(), 1);
}

#[test]
fn bad_input_leaves_no_blob_no_snapshot_no_row() {
    let e = env();
    let plain = layer_tar(b"some content that is long enough to be cut in two\n");
    let gz = gzip(&plain);
    let mut escaping = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(1);
    // Header::set_path refuses "..", so write the name bytes directly.
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../outside");
    h.set_cksum();
    escaping.append(&h, &b"x"[..]).unwrap();
    let escaping = escaping.into_inner().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage",
            b"this is not a tarball at all, not even close".repeat(20),
        ),
        ("truncated gzip", gz[..gz.len() / 2].to_vec()),
        ("truncated tar", plain[..700].to_vec()),
        ("escaping entry", escaping),
    ];
    for (what, bytes) in cases {
        let err = e
            .store
            .import(
                bytes.as_slice(),
                &ImportOptions {
                    reference: Some(r("bad:input")),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidParameter(_)), "{what}: {err:?}");
        assert_eq!(berth_types::Error::from(err).status(), 400, "{what}");
        assert_only(&e, &[]);
    }
    // Bad changes and references are refused before anything is written.
    let err = e
        .store
        .import(
            plain.as_slice(),
            &ImportOptions {
                changes: vec!["RUN rm -rf /".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("RUN is not a supported instruction"),
        "{err}"
    );
    let digest_ref = Reference::parse(&format!("a@{}", Digest::sha256_of(b"x"))).unwrap();
    let err = e
        .store
        .import(
            plain.as_slice(),
            &ImportOptions {
                reference: Some(digest_ref),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot import with a digest reference"),
        "{err}"
    );
    assert_only(&e, &[]);
    // The hostile entry did not land outside the snapshot root.
    assert!(!e.dir.path().join("outside").exists());
    assert!(!e.dir.path().join("snapshots/outside").exists());
}

fn import(e: &Env, content: &[u8], tag: Option<&str>, changes: &[&str]) -> ImageRecord {
    e.store
        .import(
            layer_tar(content).as_slice(),
            &ImportOptions {
                reference: tag.map(r),
                changes: changes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .unwrap()
        .record
}

#[test]
fn lookup_by_reference_id_and_prefix() {
    let e = env();
    let img = import(&e, b"one", Some("busybox"), &[]);
    let id = img.id.to_string();
    for s in [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
        id.as_str(),
        img.id.hex(),
        &img.id.hex()[..12],
        &img.id.hex()[..3],
        &id[..15],
    ] {
        assert_eq!(e.store.resolve(s).unwrap().id, img.id, "{s}");
    }
    let err = e.store.resolve("busybox:1.36").unwrap_err();
    assert_eq!(err.to_string(), "no such image: busybox:1.36");
    assert!(err.is_not_found());
    let err = e.store.resolve("nothere").unwrap_err();
    assert_eq!(err.to_string(), "no such image: nothere:latest");
    assert_eq!(berth_types::Error::from(err).status(), 404);
    let err = e.store.resolve("Upper/Case").unwrap_err();
    assert_eq!(berth_types::Error::from(err).status(), 400);
    let missing = Digest::sha256_of(b"missing");
    assert!(
        e.store
            .resolve(missing.as_str())
            .unwrap_err()
            .is_not_found()
    );

    // Two ids with a common prefix: the prefix is ambiguous, a longer one is not.
    let mk = |hex: String| {
        let mut rec = img.clone();
        rec.id = Digest::parse(&format!("sha256:{hex}")).unwrap();
        rec.platform = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        rec
    };
    let (a, b) = (
        mk(format!("abcd1{}", "0".repeat(59))),
        mk(format!("abcd2{}", "0".repeat(59))),
    );
    e.store
        .db()
        .write(|tx| {
            tx.put(&IMAGES, a.id.as_str(), &a)?;
            tx.put(&IMAGES, b.id.as_str(), &b)
        })
        .unwrap();
    let err = e.store.resolve("abcd").unwrap_err();
    assert_eq!(
        err.to_string(),
        "multiple ids found with provided prefix: abcd"
    );
    assert_eq!(e.store.resolve("abcd2").unwrap().id, b.id);
    // A name that is also a hex prefix: the tag wins, as in Docker.
    e.store.tag("busybox", &r("abcd")).unwrap();
    assert_eq!(e.store.resolve("abcd").unwrap().id, img.id);
}

#[test]
fn tag_untag_and_remove_follow_docker() {
    let e = env();
    let img = import(&e, b"shared layer", Some("a:1"), &[]);
    let id = img.id.clone();
    e.store.tag("a:1", &r("a:2")).unwrap();
    e.store.tag(img.id.hex(), &r("b")).unwrap();
    let inspect = e.store.inspect("b").unwrap();
    assert_eq!(
        inspect.repo_tags,
        [
            r("docker.io/library/a:1"),
            r("docker.io/library/a:2"),
            r("docker.io/library/b:latest")
        ]
    );
    // Tag errors.
    let err = e
        .store
        .tag("a:1", &Reference::parse(&format!("c@{}", id)).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("digest reference"), "{err}");
    assert!(e.store.tag("nope", &r("c")).unwrap_err().is_not_found());

    // By id, referenced in two repositories: must be forced.
    let err = e
        .store
        .remove(id.as_ref(), false, &no_containers)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("(must be forced) - image is referenced in multiple repositories"),
        "{err}"
    );
    // By reference with other references left: untag only.
    assert_eq!(
        e.store.remove("a:1", false, &no_containers).unwrap(),
        [DeleteItem::Untagged("a:1".into())]
    );
    assert_eq!(
        e.store.remove("b", false, &no_containers).unwrap(),
        [DeleteItem::Untagged("b:latest".into())]
    );
    assert!(e.store.resolve("a:1").unwrap_err().is_not_found());

    // The last reference: the container using it decides.
    let stopped = |d: &Digest| {
        (d == &id).then(|| InUse {
            container: "f".repeat(64),
            running: false,
        })
    };
    let running = |d: &Digest| {
        (d == &id).then(|| InUse {
            container: "f".repeat(64),
            running: true,
        })
    };
    let err = e.store.remove("a:2", false, &stopped).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"a:2\" (must force) - container ffffffffffff is using its referenced image {}",
            id.short()
        )
    );
    assert_eq!(berth_types::Error::from(err).status(), 409);
    let err = e.store.remove("a:2", true, &running).unwrap_err();
    assert!(
        err.to_string()
            .contains("(cannot be forced) - image is being used by running container ffffffffffff"),
        "{err}"
    );
    assert_eq!(
        e.store.resolve("a:2").unwrap().id,
        id,
        "refusals change nothing"
    );

    // A second image sharing the layer keeps it alive when the first goes.
    let twin = import(&e, b"shared layer", Some("twin"), &["ENV X=1"]);
    assert_ne!(twin.id, id);
    assert_eq!(twin.chain_ids, img.chain_ids);
    assert_eq!(
        e.store.remove("a:2", true, &stopped).unwrap(),
        [
            DeleteItem::Untagged("a:2".into()),
            DeleteItem::Deleted(id.clone())
        ]
    );
    assert!(e.store.resolve(id.as_str()).unwrap_err().is_not_found());
    assert_only(&e, &[&twin]);

    // An untagged image removed by short id.
    let twin_id = e.store.untag(&r("twin")).unwrap();
    assert_eq!(twin_id, twin.id);
    assert!(e.store.untag(&r("twin")).unwrap_err().is_not_found());
    assert_eq!(
        e.store.list().unwrap()[0].repo_tags,
        Vec::<Reference>::new()
    );
    assert_eq!(
        e.store
            .remove(&twin.id.hex()[..8], false, &no_containers)
            .unwrap(),
        [DeleteItem::Deleted(twin.id.clone())]
    );
    assert_only(&e, &[]);
}

#[test]
fn forced_removal_of_an_image_in_use_keeps_its_layers_until_the_container_goes() {
    let e = env();
    let img = import(&e, b"used", Some("used"), &[]);
    let key = "e".repeat(64);
    let mounts = e.store.prepare_rootfs(&img.id, &key).unwrap();
    let stopped = |_: &Digest| {
        Some(InUse {
            container: "e".repeat(64),
            running: false,
        })
    };
    let items = e.store.remove("used", true, &stopped).unwrap();
    assert_eq!(items.len(), 2);
    // The container's root filesystem still works: its layers were kept.
    let root = e.dir.path().join("rootfs");
    {
        let _m = Mounted::new(&mounts, &root);
        assert_eq!(std::fs::read(root.join("app/hello.txt")).unwrap(), b"used");
    }
    assert_eq!(e.store.snapshotter().list().len(), 2);
    e.store.release_rootfs(&key).unwrap();
    assert_only(&e, &[]);
}

/// Needs the network and minutes: `BERTH_TEST_DEBOOTSTRAP=1 cargo nextest run -p berth-image
/// --run-ignored all debian`.
#[test]
#[ignore = "downloads Debian with debootstrap: set BERTH_TEST_DEBOOTSTRAP=1 and run ignored tests"]
fn debian_bootstrap() {
    if std::env::var_os("BERTH_TEST_DEBOOTSTRAP").is_none() {
        return;
    }
    let e = env();
    let mut lines = 0;
    let img = e
        .store
        .bootstrap_debian("bookworm", None, &r("debian:bookworm"), &mut |_| lines += 1)
        .unwrap();
    assert!(lines > 10);
    let key = "9".repeat(64);
    let mounts = e.store.prepare_rootfs(&img.record.id, &key).unwrap();
    let root = e.dir.path().join("rootfs");
    {
        let _m = Mounted::new(&mounts, &root);
        let os = std::fs::read_to_string(root.join("etc/os-release")).unwrap();
        assert!(os.contains("bookworm"), "{os}");
        assert!(root.join("usr/bin/apt-get").is_file());
    }
    e.store.release_rootfs(&key).unwrap();
}

#[test]
fn debian_suite_is_validated() {
    let e = env();
    let err = e
        .store
        .bootstrap_debian("../etc", None, &r("d"), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid debian suite"), "{err}");
    assert_only(&e, &[]);
}

#[test]
fn concurrent_imports_of_one_layer_share_blob_and_snapshot() {
    let e = Arc::new(env());
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (e, barrier) = (e.clone(), barrier.clone());
            std::thread::spawn(move || {
                let tar = layer_tar(b"same for all");
                barrier.wait();
                e.store
                    .import(
                        tar.as_slice(),
                        &ImportOptions {
                            reference: Some(r(&format!("same:{i}"))),
                            changes: vec![format!("ENV N={i}")],
                            ..Default::default()
                        },
                    )
                    .map(|img| img.record)
            })
        })
        .collect();
    let recs: Vec<ImageRecord> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(recs.windows(2).all(|w| w[0].layers == w[1].layers));
    let refs: Vec<&ImageRecord> = recs.iter().collect();
    assert_only(&e, &refs);
    assert_eq!(e.store.snapshotter().list().len(), 1);
    // Removing them all, concurrently, leaves nothing.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let e = e.clone();
            std::thread::spawn(move || {
                e.store
                    .remove(&format!("same:{i}"), false, &no_containers)
                    .map(|items| items.len())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 2);
    }
    assert_only(&e, &[]);
}

#[test]
fn commit_adds_a_layer_over_the_parent_and_bad_commits_leave_nothing() {
    use berth_image::CommitOptions;
    let e = env();
    let base = import(&e, b"base\n", Some("base:1"), &["CMD [\"sh\"]"]);
    let key = "ctr-commit".to_string();
    let mounts = e.store.prepare_rootfs(&base.id, &key).unwrap();
    {
        let m = Mounted::new(&mounts, &e.dir.path().join("m"));
        std::fs::write(m.0.join("app/new.txt"), b"new\n").unwrap();
        std::fs::remove_file(m.0.join("app/hello.txt")).unwrap();
        // A mount point the runtime would make: left out of the layer.
        std::fs::create_dir(m.0.join("etc")).unwrap();
        std::fs::write(m.0.join("etc/hosts"), b"").unwrap();
    }
    let config = e.store.config(&base.id).unwrap().config.unwrap();
    let opts = CommitOptions {
        reference: Some(r("committed:1")),
        config: config.clone(),
        changes: vec!["ENV A=1".into()],
        comment: Some("a commit".into()),
        author: Some("Ada".into()),
        created_by: Some("sh".into()),
        created: None,
        skip: vec!["etc/hosts".into()],
    };

    // Bad commits first: refused, nothing written.
    let before = e.store.snapshotter().list().len();
    let mut bad = opts.clone();
    bad.changes = vec!["RUN rm -rf /".into()];
    assert!(matches!(
        e.store.commit(Some(&base.id), &key, &bad),
        Err(Error::InvalidParameter(_))
    ));
    assert!(
        e.store
            .commit(Some(&base.id), "no-such-snapshot", &opts)
            .is_err()
    );
    let missing = Digest::sha256_of(b"no such image");
    assert!(matches!(
        e.store.commit(Some(&missing), &key, &opts),
        Err(Error::NotFound(_))
    ));
    assert_eq!(e.store.snapshotter().list().len(), before);
    assert!(e.store.resolve("committed:1").is_err());

    let img = e.store.commit(Some(&base.id), &key, &opts).unwrap();
    let rec = img.record.clone();
    assert_eq!(rec.parent.as_ref(), Some(&base.id));
    assert_eq!(rec.diff_ids.len(), 2);
    assert_eq!(rec.diff_ids[0], base.diff_ids[0]);
    assert_eq!(rec.layers[0], base.layers[0]);
    assert_eq!(rec.chain_ids.len(), 2);
    assert!(rec.size > base.size);
    assert_eq!(e.store.resolve("committed:1").unwrap().id, rec.id);
    let cfg = &img.config;
    assert_eq!(cfg.author.as_deref(), Some("Ada"));
    assert_eq!(cfg.history.len(), 2);
    assert_eq!(cfg.history[1].comment.as_deref(), Some("a commit"));
    assert_eq!(cfg.history[1].created_by.as_deref(), Some("sh"));
    let cc = cfg.config.as_ref().unwrap();
    assert!(cc.env.contains(&"A=1".to_string()), "{:?}", cc.env);
    assert_eq!(cc.cmd, config.cmd);
    // The layer blob is a gzip tar whose digest the manifest names and whose content is
    // the diff_id.
    let blob = e.store.content().read(&rec.layers[1]).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(blob.as_slice()),
        &mut plain,
    )
    .unwrap();
    assert_eq!(Digest::sha256_of(&plain), rec.diff_ids[1]);

    // A container of the new image sees the commit.
    let key2 = "ctr-of-commit".to_string();
    let mounts2 = e.store.prepare_rootfs(&rec.id, &key2).unwrap();
    {
        let m = Mounted::new(&mounts2, &e.dir.path().join("m2"));
        assert_eq!(std::fs::read(m.0.join("app/new.txt")).unwrap(), b"new\n");
        assert!(!m.0.join("app/hello.txt").exists());
        assert!(!m.0.join("etc/hosts").exists());
    }
    e.store.release_rootfs(&key2).unwrap();
    e.store.release_rootfs(&key).unwrap();
    assert_only(&e, &[&base, &rec]);
    // The parent cannot go while its child is there.
    assert!(e.store.remove("base:1", false, &no_containers).is_err());
}
