//! Volumes against the real kernel: run as root (mounts, chown, trusted xattrs).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::Db;
use berth_volume::{CreateOptions, Error, Filters, VolumeStore};

/// A data root in a temp dir; on drop, unmounts whatever the test left mounted under it.
struct Env {
    dir: tempfile::TempDir,
    store: Option<VolumeStore>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Env { dir, store: None };
        e.reopen();
        e
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn reopen(&mut self) {
        self.store = None; // closes the database first
        let db = Arc::new(Db::open(self.root().join("meta.db")).unwrap());
        self.store = Some(VolumeStore::open(self.root(), db).unwrap());
    }
    fn s(&self) -> &VolumeStore {
        self.store.as_ref().unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let root = std::fs::canonicalize(self.dir.path()).unwrap_or_default();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mps: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| Path::new(m).starts_with(&root))
            .collect();
        mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mps {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn named(name: &str) -> CreateOptions {
    CreateOptions {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn filters(kv: &[(&str, &str)]) -> Filters {
    let mut f = Filters::new();
    for (k, v) in kv {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

fn names(v: &[berth_volume::Volume]) -> Vec<&str> {
    v.iter().map(|v| v.name.as_str()).collect()
}

fn is_mount_point(p: &Path) -> bool {
    let p = std::fs::canonicalize(p).unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == p.to_str())
}

fn status(e: Error) -> (u16, String) {
    let e = berth_types::Error::from(e);
    (e.status(), e.message().to_string())
}

#[test]
fn create_inspect_list_remove() {
    let env = Env::new();
    let s = env.s();
    let mut req = named("web-data");
    req.labels = map(&[("tier", "db"), ("keep", "")]);
    let v = s.create(&req).unwrap();
    let data = env.root().join("volumes/web-data/_data");
    assert_eq!(v.mountpoint, data);
    assert!(data.is_dir());
    assert_eq!((v.driver.as_str(), v.scope.as_str()), ("local", "local"));
    assert_eq!(v.created_at.len(), 20, "{}", v.created_at);
    assert!(v.created_at.ends_with('Z') && v.created_at.as_bytes()[10] == b'T');
    assert!(!v.is_anonymous());
    assert_eq!(s.inspect("web-data").unwrap(), v);
    // Creating again returns the same volume.
    assert_eq!(s.create(&named("web-data")).unwrap(), v);

    let anon = s.create(&CreateOptions::default()).unwrap();
    assert_eq!(anon.name.len(), 64);
    assert!(anon.name.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(anon.is_anonymous());
    s.create(&named("cache")).unwrap();

    let used = |n: &str| n == "cache";
    let all = s.list(&Filters::new(), &used).unwrap();
    // Listed in name order; the anonymous volume's random hex name can sort anywhere.
    let mut want = vec![anon.name.as_str(), "cache", "web-data"];
    want.sort();
    assert_eq!(names(&all), want);
    let l = s.list(&filters(&[("name", "web")]), &used).unwrap();
    assert_eq!(names(&l), ["web-data"]);
    let l = s.list(&filters(&[("label", "tier=db")]), &used).unwrap();
    assert_eq!(names(&l), ["web-data"]);
    let l = s.list(&filters(&[("label", "tier=web")]), &used).unwrap();
    assert!(l.is_empty());
    let l = s
        .list(&filters(&[("label", "tier"), ("label", "keep")]), &used)
        .unwrap();
    assert_eq!(names(&l), ["web-data"]);
    let l = s.list(&filters(&[("dangling", "false")]), &used).unwrap();
    assert_eq!(names(&l), ["cache"]);
    let l = s.list(&filters(&[("dangling", "1")]), &used).unwrap();
    let mut want = vec![anon.name.as_str(), "web-data"];
    want.sort();
    assert_eq!(names(&l), want);
    assert_eq!(
        s.list(&filters(&[("driver", "local")]), &used)
            .unwrap()
            .len(),
        3
    );
    assert!(
        s.list(&filters(&[("driver", "nfs")]), &used)
            .unwrap()
            .is_empty()
    );
    let e = s
        .list(&filters(&[("dangling", "maybe")]), &used)
        .unwrap_err();
    assert_eq!(status(e), (400, "invalid filter 'dangling=maybe'".into()));
    let e = s.list(&filters(&[("colour", "red")]), &used).unwrap_err();
    assert_eq!(status(e), (400, "invalid filter 'colour'".into()));

    std::fs::write(data.join("f"), b"x").unwrap();
    s.remove("web-data", &[], false).unwrap();
    assert!(!env.root().join("volumes/web-data").exists());
    let e = s.inspect("web-data").unwrap_err();
    assert_eq!(status(e), (404, "get web-data: no such volume".into()));
    let e = s.remove("web-data", &[], false).unwrap_err();
    assert_eq!(status(e), (404, "get web-data: no such volume".into()));
    s.remove("web-data", &[], true).unwrap();
}

#[test]
fn remove_refused_while_in_use() {
    let env = Env::new();
    let s = env.s();
    s.create(&named("busy")).unwrap();
    let ids = vec!["c1".to_string(), "c2".to_string()];
    let e = s.remove("busy", &ids, false).unwrap_err();
    assert_eq!(
        status(e),
        (409, "remove busy: volume is in use - [c1, c2]".into())
    );
    assert!(env.root().join("volumes/busy/_data").is_dir());
    // A container holding the mount counts as a user too.
    s.mount("busy", "c3").unwrap();
    let e = s.remove("busy", &[], true).unwrap_err();
    assert_eq!(
        status(e),
        (409, "remove busy: volume is in use - [c3]".into())
    );
    s.release("busy", "c3").unwrap();
    s.remove("busy", &[], false).unwrap();
    assert!(s.inspect("busy").unwrap_err().is_not_found());
}

#[test]
fn prune_removes_unused_anonymous_by_default() {
    let env = Env::new();
    let s = env.s();
    let a1 = s.create(&CreateOptions::default()).unwrap();
    let a2 = s
        .create(&CreateOptions {
            labels: map(&[("env", "test")]),
            ..Default::default()
        })
        .unwrap();
    let a3 = s.create(&CreateOptions::default()).unwrap();
    s.create(&named("kept")).unwrap();
    std::fs::write(a1.mountpoint.join("blob"), vec![7u8; 3000]).unwrap();
    let used = |n: &str| n == a3.name;

    // label! keeps a2 out; a3 is in use; "kept" has a name.
    let r = s.prune(&filters(&[("label!", "env=test")]), &used).unwrap();
    assert_eq!(r.volumes_deleted, [a1.name.as_str()]);
    assert_eq!(r.space_reclaimed, 3000);
    assert!(!a1.mountpoint.exists());
    let r = s.prune(&filters(&[("label", "env")]), &used).unwrap();
    assert_eq!(r.volumes_deleted, [a2.name.as_str()]);
    let r = s.prune(&Filters::new(), &used).unwrap();
    assert!(r.volumes_deleted.is_empty());
    let r = s.prune(&filters(&[("all", "true")]), &used).unwrap();
    assert_eq!(r.volumes_deleted, ["kept".to_string()]);
    let left = s.list(&Filters::new(), &used).unwrap();
    assert_eq!(names(&left), [a3.name.as_str()]);
    let e = s
        .prune(&filters(&[("dangling", "true")]), &used)
        .unwrap_err();
    assert_eq!(status(e).0, 400);
}

#[test]
fn bad_names_and_options_leave_nothing_behind() {
    let env = Env::new();
    let s = env.s();
    let cases: Vec<(CreateOptions, &str)> = vec![
        (named("a"), "includes invalid characters"),
        (named("-ab"), "includes invalid characters"),
        (named("../escape"), "includes invalid characters"),
        (named("has space"), "includes invalid characters"),
        (
            CreateOptions {
                name: Some("opt".into()),
                driver_opts: map(&[("type", "tmpfs"), ("colour", "blue")]),
                ..Default::default()
            },
            "invalid option key: \"colour\"",
        ),
        (
            CreateOptions {
                name: Some("opt".into()),
                driver_opts: map(&[("type", "tmpfs"), ("o", "size=big")]),
                ..Default::default()
            },
            "size=big",
        ),
        (
            CreateOptions {
                name: Some("opt".into()),
                driver_opts: map(&[("type", "none"), ("o", "bind"), ("device", "rel/dir")]),
                ..Default::default()
            },
            "absolute",
        ),
        (
            CreateOptions {
                name: Some("opt".into()),
                driver: Some("nfs-plugin".into()),
                ..Default::default()
            },
            "plugin \"nfs-plugin\" not found",
        ),
    ];
    for (req, want) in cases {
        let e = s.create(&req).unwrap_err();
        let (code, msg) = status(e);
        assert!(code == 400 || code == 404, "{code} {msg}");
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
        if let Some(n) = req
            .name
            .as_deref()
            .filter(|n| n.len() > 1 && !n.contains('/'))
        {
            assert!(msg.contains(n), "{msg:?} does not name {n}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(env.root().join("volumes"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(s.list(&Filters::new(), &|_| false).unwrap().is_empty());
}

#[test]
fn tmpfs_volume_mounted_with_its_size() {
    let env = Env::new();
    let s = env.s();
    let v = s
        .create(&CreateOptions {
            name: Some("scratch".into()),
            driver_opts: map(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=4m,mode=1770"),
            ]),
            ..Default::default()
        })
        .unwrap();
    assert!(!is_mount_point(&v.mountpoint), "mounted before any user");
    let p = s.mount("scratch", "c1").unwrap();
    assert_eq!(p, v.mountpoint);
    assert!(is_mount_point(&p));
    let st = rustix::fs::statfs(&p).unwrap();
    assert_eq!(st.f_blocks as u64 * st.f_bsize as u64, 4 << 20);
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o1770);
    // A second user shares the mount; the data survives the first user's release.
    s.mount("scratch", "c2").unwrap();
    std::fs::write(p.join("f"), b"hi").unwrap();
    s.release("scratch", "c1").unwrap();
    assert_eq!(std::fs::read(p.join("f")).unwrap(), b"hi");
    s.release("scratch", "c2").unwrap();
    assert!(!is_mount_point(&p));
    assert!(!p.join("f").exists());
    assert!(s.inspect("scratch").unwrap().mounted_by.is_empty());
}

#[test]
fn bind_volume_shows_the_host_directory() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello.txt"), b"from the host").unwrap();
    let s = env.s();
    s.create(&CreateOptions {
        name: Some("hostdir".into()),
        driver_opts: map(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", host.path().to_str().unwrap()),
        ]),
        ..Default::default()
    })
    .unwrap();
    let p = s.mount("hostdir", "c1").unwrap();
    assert_eq!(
        std::fs::read(p.join("hello.txt")).unwrap(),
        b"from the host"
    );
    std::fs::write(p.join("back.txt"), b"to the host").unwrap();
    assert_eq!(
        std::fs::read(host.path().join("back.txt")).unwrap(),
        b"to the host"
    );
    s.release("hostdir", "c1").unwrap();
    assert!(!p.join("hello.txt").exists());
    s.remove("hostdir", &[], false).unwrap();
    // Removing the volume never touches the host directory.
    assert!(host.path().join("hello.txt").exists());
}

#[test]
fn mount_holders_survive_a_reopen() {
    let mut env = Env::new();
    let opts = map(&[("type", "tmpfs"), ("o", "size=1m")]);
    let p = {
        let s = env.s();
        s.create(&CreateOptions {
            name: Some("shared".into()),
            driver_opts: opts.clone(),
            ..Default::default()
        })
        .unwrap();
        s.create(&CreateOptions {
            name: Some("orphan".into()),
            driver_opts: opts,
            ..Default::default()
        })
        .unwrap();
        s.mount("shared", "c1").unwrap();
        s.mount("orphan", "dead").unwrap();
        s.mount("shared", "c2").unwrap()
    };
    std::fs::write(p.join("f"), b"kept").unwrap();
    env.reopen();
    let s = env.s();
    let v = s.inspect("shared").unwrap();
    assert_eq!(v.mounted_by.iter().collect::<Vec<_>>(), ["c1", "c2"]);
    s.release("shared", "c1").unwrap();
    assert!(is_mount_point(&p));
    assert_eq!(std::fs::read(p.join("f")).unwrap(), b"kept");
    s.release("shared", "c2").unwrap();
    assert!(!is_mount_point(&p));
    // At start, holders that are gone are dropped and their mounts undone.
    let orphan = s.inspect("orphan").unwrap().mountpoint;
    assert!(is_mount_point(&orphan));
    s.reconcile(&|c| c != "dead").unwrap();
    assert!(!is_mount_point(&orphan));
    assert!(s.inspect("orphan").unwrap().mounted_by.is_empty());
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn rootfs_tree(root: &Path) -> PathBuf {
    let d = root.join("var/lib/app");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/conf"), b"setting=1\n").unwrap();
    // chown clears setuid: owner first, then mode.
    chown(&d.join("sub/conf"), 1234, 5678);
    std::fs::set_permissions(d.join("sub/conf"), PermissionsExt::from_mode(0o4750)).unwrap();
    std::fs::hard_link(d.join("sub/conf"), d.join("conf.link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("abs")).unwrap();
    std::os::unix::fs::symlink("sub/conf", d.join("rel")).unwrap();
    chown(&d.join("rel"), 42, 43);
    std::fs::set_permissions(d.join("sub"), PermissionsExt::from_mode(0o710)).unwrap();
    chown(&d.join("sub"), 1000, 1000);
    std::fs::set_permissions(&d, PermissionsExt::from_mode(0o750)).unwrap();
    chown(&d, 999, 998);
    rustix::fs::lsetxattr(
        d.join("sub/conf"),
        "trusted.berth-test",
        b"v1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    d
}

#[test]
fn copy_up_fills_an_empty_volume_from_the_image() {
    let env = Env::new();
    let rootfs = tempfile::tempdir().unwrap();
    rootfs_tree(rootfs.path());
    // The volume path goes through an absolute symlink, as the container sees it.
    std::os::unix::fs::symlink("/var/lib", rootfs.path().join("data")).unwrap();
    let s = env.s();
    let v = s.create(&named("appdata")).unwrap();
    assert!(s.copy_up("appdata", rootfs.path(), "/data/app").unwrap());
    let m = &v.mountpoint;
    let md = std::fs::metadata(m).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (999, 998, 0o750));
    let c = std::fs::symlink_metadata(m.join("sub/conf")).unwrap();
    assert_eq!((c.uid(), c.gid(), c.mode() & 0o7777), (1234, 5678, 0o4750));
    assert_eq!(std::fs::read(m.join("sub/conf")).unwrap(), b"setting=1\n");
    assert_eq!(
        c.ino(),
        std::fs::metadata(m.join("conf.link")).unwrap().ino()
    );
    let sub = std::fs::metadata(m.join("sub")).unwrap();
    assert_eq!((sub.uid(), sub.mode() & 0o7777), (1000, 0o710));
    assert_eq!(
        std::fs::read_link(m.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    let rel = std::fs::symlink_metadata(m.join("rel")).unwrap();
    assert!(rel.file_type().is_symlink());
    assert_eq!((rel.uid(), rel.gid()), (42, 43));
    let mut x = [0u8; 16];
    let n = rustix::fs::lgetxattr(m.join("sub/conf"), "trusted.berth-test", &mut x).unwrap();
    assert_eq!(&x[..n], b"v1");
    let src_mtime = std::fs::metadata(rootfs.path().join("var/lib/app/sub/conf"))
        .unwrap()
        .mtime();
    assert_eq!(c.mtime(), src_mtime);
    // Only the first use copies: the volume is no longer empty.
    std::fs::write(rootfs.path().join("var/lib/app/new"), b"n").unwrap();
    assert!(!s.copy_up("appdata", rootfs.path(), "/data/app").unwrap());
    assert!(!m.join("new").exists());
    // A path the image lacks copies nothing.
    s.create(&named("empty")).unwrap();
    assert!(!s.copy_up("empty", rootfs.path(), "/no/such/dir").unwrap());
    // The file once (hard link), the two symlinks by their target length.
    assert_eq!(s.disk_usage("appdata").unwrap(), 10 + 11 + 8);
}

#[test]
fn copy_up_refuses_a_path_escaping_the_rootfs() {
    let env = Env::new();
    let outer = tempfile::tempdir().unwrap();
    let rootfs = outer.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("srv")).unwrap();
    // Outside the rootfs, where a host-side resolution of the link would land.
    std::fs::create_dir_all(outer.path().join("secret")).unwrap();
    std::fs::write(outer.path().join("secret/key"), b"host secret").unwrap();
    std::os::unix::fs::symlink("../../secret", rootfs.join("srv/data")).unwrap();
    let s = env.s();
    let v = s.create(&named("victim")).unwrap();
    let e = s.copy_up("victim", &rootfs, "/srv/data").unwrap_err();
    let (code, msg) = status(e);
    assert_eq!(code, 400);
    assert!(
        msg.contains("victim") && msg.contains("/srv/data") && msg.contains("escapes"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(&v.mountpoint).unwrap().count(), 0);
}

#[test]
fn disk_usage_counts_hard_links_once() {
    let env = Env::new();
    let s = env.s();
    let v = s.create(&named("du")).unwrap();
    std::fs::create_dir(v.mountpoint.join("d")).unwrap();
    std::fs::write(v.mountpoint.join("d/a"), vec![1u8; 5000]).unwrap();
    std::fs::hard_link(v.mountpoint.join("d/a"), v.mountpoint.join("b")).unwrap();
    std::fs::write(v.mountpoint.join("c"), vec![1u8; 24]).unwrap();
    std::os::unix::fs::symlink("/usr", v.mountpoint.join("l")).unwrap();
    assert_eq!(s.disk_usage("du").unwrap(), 5000 + 24 + 4);
    s.create(&named("zero")).unwrap();
    let all = s.disk_usage_all().unwrap();
    let got: Vec<(&str, i64)> = all.iter().map(|(v, n)| (v.name.as_str(), *n)).collect();
    assert_eq!(got, [("du", 5028), ("zero", 0)]);
    assert!(s.disk_usage("nope").unwrap_err().is_not_found());
}
