//! `docker cp` / `berth cp` over the container archive endpoints: files and directories both
//! ways, created, running and stopped containers, names with spaces, modes, owners and
//! times, `-` tar streams, docker's errors, hostile symlinks inside containers and hostile
//! tars uploaded with `PUT`, and an export → import → run round trip.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// A unique token, so files planted by hostile inputs can be looked for on the host.
fn token() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn berth_in(d: &Daemon, args: &[&str], stdin: &[u8]) -> Out {
    run(
        Command::new(bin_dir().join("berth"))
            .args(args)
            .env("BERTH_HOST", format!("unix://{}", d.sock.display())),
        Some(stdin),
    )
}

/// `stat -c '%a %u %g %Y'` of a path inside a running container.
fn cstat(d: &Daemon, c: &str, p: &str) -> String {
    d.docker(&["exec", c, "stat", "-c", "%a %u %g %Y", p])
        .ok()
        .stdout
        .trim()
        .to_string()
}

fn cat(d: &Daemon, c: &str, p: &str) -> String {
    d.docker(&["exec", c, "cat", p]).ok().stdout
}

fn lstat(p: &Path) -> (u32, u32, u32, i64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
}

/// A file with a given mode, owner and mtime.
fn make_file(p: &Path, data: &[u8], mode: u32, owner: (u32, u32), mtime: i64) {
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1)).unwrap();
    set_mtime(p, mtime);
}

fn set_mtime(p: &Path, mtime: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn cp_both_ways_like_docker() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"])
        .ok();
    let t = tempfile::tempdir().unwrap();
    let host = t.path();
    let file = host.join("a file.txt");
    make_file(&file, b"hello file\n", 0o640, (1234, 4321), 1_500_000_000);
    let dir = host.join("dir with space");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    make_file(&dir.join("inner"), b"inner\n", 0o600, (7, 8), 1_400_000_000);
    make_file(
        &dir.join("sub/deep"),
        b"deep\n",
        0o755,
        (0, 0),
        1_300_000_000,
    );
    std::os::unix::fs::symlink("inner", dir.join("link")).unwrap();
    set_mtime(&dir, 1_200_000_000);

    // Host → container, docker CLI: a file into a directory, modes and times kept, owned
    // by root without -a, by the source's owner with -a.
    d.docker(&["cp", file.to_str().unwrap(), "web:/tmp/"]).ok();
    assert_eq!(cat(&d, "web", "/tmp/a file.txt"), "hello file\n");
    assert_eq!(cstat(&d, "web", "/tmp/a file.txt"), "640 0 0 1500000000");
    d.docker(&["cp", "-a", file.to_str().unwrap(), "web:/tmp/kept.txt"])
        .ok();
    assert_eq!(
        cstat(&d, "web", "/tmp/kept.txt"),
        "640 1234 4321 1500000000"
    );
    // A directory with a space in its name, into an existing directory and to a new name;
    // `dir/.` copies the contents.
    d.docker(&["cp", "-a", dir.to_str().unwrap(), "web:/tmp"])
        .ok();
    assert_eq!(cat(&d, "web", "/tmp/dir with space/sub/deep"), "deep\n");
    assert_eq!(
        cstat(&d, "web", "/tmp/dir with space/inner"),
        "600 7 8 1400000000"
    );
    assert_eq!(
        cstat(&d, "web", "/tmp/dir with space"),
        "755 0 0 1200000000"
    );
    assert_eq!(
        d.docker(&["exec", "web", "readlink", "/tmp/dir with space/link"])
            .ok()
            .stdout,
        "inner\n"
    );
    d.docker(&["cp", &format!("{}/.", dir.display()), "web:/tmp/contents"])
        .ok();
    assert_eq!(cat(&d, "web", "/tmp/contents/inner"), "inner\n");
    // berth cp the same way.
    d.berth(&["cp", "-a", dir.to_str().unwrap(), "web:/root/b dir"])
        .ok();
    assert_eq!(
        cstat(&d, "web", "/root/b dir/sub/deep"),
        "755 0 0 1300000000"
    );
    d.berth(&["cp", file.to_str().unwrap(), "web:/root/"]).ok();
    assert_eq!(cstat(&d, "web", "/root/a file.txt"), "640 0 0 1500000000");

    // Container → host.
    let out = host.join("out");
    std::fs::create_dir(&out).unwrap();
    d.docker(&["cp", "web:/tmp/dir with space", out.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(out.join("dir with space/sub/deep")).unwrap(),
        b"deep\n"
    );
    assert_eq!(lstat(&out.join("dir with space/inner")).0, 0o600);
    assert_eq!(lstat(&out.join("dir with space/inner")).3, 1_400_000_000);
    for (cli, name) in [("docker", "d"), ("berth", "b")] {
        let dst = out.join(format!("{name} copy"));
        let args = ["cp", "-a", "web:/tmp/dir with space", dst.to_str().unwrap()];
        if cli == "docker" {
            d.docker(&args).ok();
        } else {
            d.berth(&args).ok();
        }
        // docker's CLI never chowns what it copies out (moby's CopyTo sets NoLchown);
        // berth's -a keeps the owners.
        let (mode, uid, gid, mtime) = lstat(&dst.join("inner"));
        assert_eq!((mode, mtime), (0o600, 1_400_000_000), "{cli}");
        if cli == "berth" {
            assert_eq!((uid, gid), (7, 8));
        }
        assert_eq!(lstat(&dst.join("sub/deep")).3, 1_300_000_000, "{cli}");
        assert_eq!(lstat(&dst).3, 1_200_000_000, "{cli}");
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("inner")
        );
        // A file to a new name, and into a directory.
        let f = out.join(format!("{name}-hostname"));
        let args = ["cp", "web:/tmp/a file.txt", f.to_str().unwrap()];
        if cli == "docker" {
            d.docker(&args).ok();
        } else {
            d.berth(&args).ok();
        }
        assert_eq!(std::fs::read(&f).unwrap(), b"hello file\n");
        assert_eq!(lstat(&f).3, 1_500_000_000);
    }
    d.berth(&[
        "cp",
        "web:/tmp/contents/.",
        out.join("merged").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(out.join("merged/inner")).unwrap(), b"inner\n");

    // `-`: a tar on stdout and from stdin.
    for cli in ["docker", "berth"] {
        let args = ["cp", "web:/tmp/dir with space", "-"];
        let o = if cli == "docker" {
            d.docker(&args).ok()
        } else {
            d.berth(&args).ok()
        };
        let names = tar_names(o.stdout.as_bytes());
        assert!(
            names.contains(&"dir with space/".to_string())
                && names.contains(&"dir with space/sub/deep".to_string()),
            "{cli}: {names:?}"
        );
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o604);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_234_567_890);
    h.set_size(6);
    b.append_data(&mut h, "from stdin", &b"stdin\n"[..])
        .unwrap();
    let upload = b.into_inner().unwrap();
    d.docker_in(&["cp", "-", "web:/tmp"], &upload).ok();
    assert_eq!(cstat(&d, "web", "/tmp/from stdin"), "604 0 0 1234567890");
    berth_in(&d, &["cp", "-", "web:/root"], &upload).ok();
    assert_eq!(cat(&d, "web", "/root/from stdin"), "stdin\n");
    let o = d.docker_in(&["cp", "-", "web:/tmp/a file.txt"], &upload);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("must be a directory"), "{o:?}");

    // Missing paths: docker's error, from both CLIs.
    for cli in ["docker", "berth"] {
        let args = ["cp", "web:/no/such", out.to_str().unwrap()];
        let o = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_ne!(o.code, 0, "{cli}");
        assert!(
            o.stderr
                .contains("Could not find the file /no/such in container web"),
            "{cli}: {o:?}"
        );
        let args = ["cp", file.to_str().unwrap(), "web:/no/such/x"];
        let o = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_ne!(o.code, 0, "{cli}");
        assert!(o.stderr.contains("Could not find the file"), "{cli}: {o:?}");
    }
    // The API itself: a relative path is a 400, a missing one a 404, no container a 404.
    assert_eq!(d.get("/containers/web/archive?path=etc").0, 400);
    assert_eq!(d.get("/containers/web/archive?path=/nope").0, 404);
    // An upload refused before its end still gets its answer, not a broken pipe: 4 MiB is
    // far more than the socket buffers hold.
    let big = "\0".repeat(4 << 20);
    let (code, text) = d.request("PUT", "/containers/web/archive?path=/no/such", Some(&big));
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("Could not find the file"), "{text}");
    assert_eq!(d.get("/containers/web/archive").0, 400);
    assert_eq!(d.get("/containers/nosuch/archive?path=/etc").0, 404);
    d.docker(&["rm", "-f", "web"]).ok();
}

#[test]
fn cp_with_created_and_stopped_containers() {
    let d = Daemon::start();
    d.busybox();
    let t = tempfile::tempdir().unwrap();
    let note = t.path().join("note");
    std::fs::write(&note, b"written before start\n").unwrap();
    // Created, never started: the copy is there when it starts.
    d.docker(&["create", "--name", "fresh", "busybox", "cat", "/etc/note"])
        .ok();
    d.docker(&["cp", note.to_str().unwrap(), "fresh:/etc/note"])
        .ok();
    let o = d.docker(&["start", "-a", "fresh"]).ok();
    assert_eq!(o.stdout, "written before start\n");
    // Stopped: read and write.
    d.docker(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo made inside > /root/made",
    ])
    .ok();
    let out = t.path().join("made");
    d.docker(&["cp", "done:/root/made", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"made inside\n");
    d.berth(&["cp", note.to_str().unwrap(), "done:/root/"]).ok();
    let back = t.path().join("back");
    d.berth(&["cp", "done:/root/note", back.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&back).unwrap(), b"written before start\n");
    d.docker(&["start", "done"]).ok();
    // A running container's tmpfs is read as the container sees it.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tmpfsy",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo in tmpfs > /scratch/f; sleep 1000",
    ])
    .ok();
    let f = t.path().join("tmpfs-f");
    wait_for("the tmpfs file", || {
        let o = d.docker(&["cp", "tmpfsy:/scratch/f", f.to_str().unwrap()]);
        (o.code == 0).then_some(())
    });
    assert_eq!(std::fs::read(&f).unwrap(), b"in tmpfs\n");
    // A copy into the stopped container survives a restart; nothing stays mounted.
    d.docker(&["rm", "-f", "tmpfsy", "fresh", "done"]).ok();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&d.data_root().display().to_string()),
        "a mount under the data root was left behind"
    );
}

#[test]
fn hostile_symlinks_in_the_container_stay_inside() {
    let d = Daemon::start();
    d.busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "evil",
        "--hostname",
        "inside-host",
        "busybox",
        "sh",
        "-c",
        "ln -s / /link-to-root; ln -s /etc /link-etc; ln -s ../../../../../.. /up; sleep 1000",
    ])
    .ok();
    wait_for("the links", || {
        (d.docker(&["exec", "evil", "test", "-L", "/up"]).code == 0).then_some(())
    });
    let t = tempfile::tempdir().unwrap();
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for (i, src) in [
        "evil:/link-to-root/etc/hostname",
        "evil:/up/etc/hostname",
        "evil:/link-etc/hostname",
    ]
    .iter()
    .enumerate()
    {
        let dst = t.path().join(format!("h{i}"));
        d.docker(&["cp", src, dst.to_str().unwrap()]).ok();
        let got = std::fs::read_to_string(&dst).unwrap();
        assert_eq!(got, "inside-host\n", "{src}");
        assert_ne!(got, host_hostname);
        // -L follows the link itself, inside the container.
        let dst = t.path().join(format!("l{i}"));
        d.berth(&["cp", "-L", "evil:/link-etc", dst.to_str().unwrap()])
            .ok();
        assert_eq!(
            std::fs::read_to_string(dst.join("hostname")).unwrap(),
            "inside-host\n"
        );
    }
    let tok = token();
    let name = format!("evil-{tok}.txt");
    let evil = t.path().join(&name);
    std::fs::write(&evil, b"evil\n").unwrap();
    for dst in ["evil:/link-to-root/", "evil:/up/", "evil:/link-etc/"] {
        d.docker(&["cp", evil.to_str().unwrap(), dst]).ok();
        d.berth(&["cp", evil.to_str().unwrap(), dst]).ok();
    }
    assert!(
        !Path::new("/").join(&name).exists(),
        "written on the host's /"
    );
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "written on the host's /etc"
    );
    assert_eq!(cat(&d, "evil", &format!("/{name}")), "evil\n");
    assert_eq!(cat(&d, "evil", &format!("/etc/{name}")), "evil\n");
    // The same once stopped (the snapshot, not the process, is read).
    d.docker(&["stop", "-t", "1", "evil"]).ok();
    let dst = t.path().join("stopped");
    d.docker(&[
        "cp",
        "evil:/link-to-root/etc/hostname",
        dst.to_str().unwrap(),
    ])
    .ok();
    assert_ne!(std::fs::read_to_string(&dst).unwrap(), host_hostname);
    d.docker(&["cp", evil.to_str().unwrap(), "evil:/up/tmp/"])
        .ok();
    assert!(!Path::new("/tmp").join(&name).exists());
    d.docker(&["rm", "-f", "evil"]).ok();
}

/// A tar written header by header, without the tar crate's own checks.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn push(mut self, name: &[u8], typ: u8, link: &[u8], data: &[u8]) -> Self {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(tar::EntryType::new(typ));
        h.set_size(data.len() as u64);
        h.set_mode(if typ == b'5' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        if typ == b'3' {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0
            .extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Self {
        self.push(name.as_bytes(), b'0', b"", data)
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.push(name.as_bytes(), b'2', target.as_bytes(), b"")
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.push(name.as_bytes(), b'1', target.as_bytes(), b"")
    }
    fn pax_path(self, path: &str) -> Self {
        let rec = format!(" path={path}\n");
        let len = rec.len() + 2 + usize::from(rec.len() + 2 >= 100);
        let data = format!("{len}{rec}");
        self.push(b"PaxHeaders/x", b'x', b"", data.as_bytes())
    }
    fn done(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

/// `PUT /containers/{c}/archive?path=…` with a raw body; the status.
fn put(d: &Daemon, c: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "PUT /containers/{c}/archive?path={path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn hostile_tars_are_contained_or_refused() {
    let d = Daemon::start();
    d.busybox();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().to_str().unwrap().to_string();
    let tok = token();
    let host_passwd = std::fs::read("/etc/passwd").unwrap();
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();
    // (what, archive, refused?, where the payload must land inside the container).
    let cases: Vec<(&str, Vec<u8>, bool, Option<String>)> = vec![
        (
            "absolute name",
            Raw::default().file(&format!("/abs-{tok}"), b"x").done(),
            false,
            Some(format!("/tmp/abs-{tok}")),
        ),
        (
            "dot-dot name",
            Raw::default()
                .file(&format!("../../../../../dotdot-{tok}"), b"x")
                .done(),
            true,
            None,
        ),
        (
            "dot-dot inside a name",
            Raw::default()
                .file(&format!("a/../../../../mid-{tok}"), b"x")
                .done(),
            true,
            None,
        ),
        (
            "symlink to / then write through it",
            Raw::default()
                .symlink("lnk", "/")
                .file(&format!("lnk/etc/through-{tok}"), b"x")
                .done(),
            false,
            Some(format!("/tmp/etc/through-{tok}")),
        ),
        (
            "relative climbing symlink then write through it",
            Raw::default()
                .symlink("up", "../../../../../../..")
                .file(&format!("up/climb-{tok}"), b"x")
                .done(),
            false,
            Some(format!("/tmp/climb-{tok}")),
        ),
        (
            "symlink to a host directory then write through it",
            Raw::default()
                .symlink("host", &out)
                .file(&format!("host/planted-{tok}"), b"x")
                .done(),
            // The link dangles inside the container: its parents are not created.
            true,
            None,
        ),
        (
            "hard link to an absolute host file",
            Raw::default().hardlink("hl", "/etc/passwd").done(),
            true,
            None,
        ),
        (
            "hard link climbing out",
            Raw::default()
                .hardlink("hl2", "../../../../../etc/passwd")
                .done(),
            true,
            None,
        ),
        (
            "symlink to /etc/passwd then a file of the same name",
            Raw::default()
                .symlink("pw", "/etc/passwd")
                .file("pw", b"overwritten\n")
                .done(),
            false,
            None,
        ),
        (
            "pax path climbing out",
            Raw::default()
                .pax_path(&format!("../../../../pax-{tok}"))
                .file("harmless", b"x")
                .done(),
            true,
            None,
        ),
        (
            "device node",
            Raw::default()
                .push(format!("null-{tok}").as_bytes(), b'3', b"", b"")
                .done(),
            false,
            Some(format!("/tmp/null-{tok}")),
        ),
    ];
    // Fixtures are kept on disk for inspection.
    let fixtures = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cp-hostile");
    std::fs::create_dir_all(&fixtures).unwrap();
    for target in ["created", "running"] {
        if target == "created" {
            d.docker(&["create", "--name", target, "busybox", "sleep", "1000"])
                .ok();
        } else {
            d.docker(&["run", "-d", "--name", target, "busybox", "sleep", "1000"])
                .ok();
        }
        for (i, (what, tar, refused, landed)) in cases.iter().enumerate() {
            std::fs::write(fixtures.join(format!("{i:02}.tar")), tar).unwrap();
            let (status, resp) = put(&d, target, "/tmp", tar);
            if *refused {
                assert_eq!(status, 400, "{target}: {what}: {resp}");
            } else {
                assert_eq!(status, 200, "{target}: {what}: {resp}");
            }
            if let Some(p) = landed {
                let o = d.docker(&["cp", &format!("{target}:{p}"), "-"]);
                assert_eq!(o.code, 0, "{target}: {what}: not inside: {o:?}");
            }
        }
        // A destination that is itself a link out.
        let tar = Raw::default().file(&format!("dest-{tok}"), b"x").done();
        if target == "running" {
            d.docker(&["exec", target, "ln", "-s", "/", "/tmp/root-link"])
                .ok();
            assert_eq!(put(&d, target, "/tmp/root-link", &tar).0, 200);
            d.docker(&["exec", target, "test", "-f", &format!("/dest-{tok}")])
                .ok();
        }
        // Nothing on the host.
        for p in [
            format!("/abs-{tok}"),
            format!("/dotdot-{tok}"),
            format!("/mid-{tok}"),
            format!("/etc/through-{tok}"),
            format!("/climb-{tok}"),
            format!("/pax-{tok}"),
            format!("/null-{tok}"),
            format!("/dest-{tok}"),
        ] {
            assert!(!Path::new(&p).exists(), "{target}: {p} written on the host");
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{target}: the host directory was written"
        );
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
        assert_eq!(
            std::fs::metadata("/etc/passwd").unwrap().nlink(),
            passwd_links
        );
    }
    d.docker(&["rm", "-f", "created", "running"]).ok();
}

#[test]
fn export_import_round_trip_after_cp() {
    let d = Daemon::start();
    d.busybox();
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("motd");
    std::fs::write(&f, b"changed by cp\n").unwrap();
    d.docker(&["create", "--name", "rt", "busybox", "true"])
        .ok();
    d.docker(&["cp", f.to_str().unwrap(), "rt:/etc/motd"]).ok();
    let tar = t.path().join("rt.tar");
    d.docker(&["export", "-o", tar.to_str().unwrap(), "rt"])
        .ok();
    d.docker(&["import", tar.to_str().unwrap(), "rt:docker"])
        .ok();
    d.berth(&["import", tar.to_str().unwrap(), "rt:berth"]).ok();
    for img in ["rt:docker", "rt:berth"] {
        let o = d.docker(&["run", "--rm", img, "cat", "/etc/motd"]).ok();
        assert_eq!(o.stdout, "changed by cp\n", "{img}");
    }
    let o = d
        .berth(&["run", "--rm", "rt:berth", "cat", "/etc/motd"])
        .ok();
    assert_eq!(o.stdout, "changed by cp\n");
    d.docker(&["rm", "-f", "rt"]).ok();
}

/// CVE-2018-15664's shape: inside the container a loop swaps a directory for a symlink to
/// `/` while copies run both ways. Whatever the timing, reads see only the container's
/// files and writes land only in the container.
#[test]
fn copies_racing_a_symlink_swap_stay_inside() {
    let d = Daemon::start();
    d.busybox();
    let tok = token();
    // Host-only markers an escaped read would show, and names an escaped write would create.
    let marker_dir = tempfile::Builder::new()
        .prefix(&format!("host-only-{tok}"))
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(marker_dir.path().join("secret"), b"host secret\n").unwrap();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "racer",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/tmp; echo inside > /d/f; \
         while true; do mv /d /d.real; ln -s / /d; rm /d; mv /d.real /d; done",
    ])
    .ok();
    let t = tempfile::tempdir().unwrap();
    let up = t.path().join(format!("race-{tok}"));
    std::fs::write(&up, b"race\n").unwrap();
    let start = std::time::Instant::now();
    let (mut reads, mut writes) = (0, 0);
    while start.elapsed() < Duration::from_secs(6) {
        let o = d.docker(&["cp", "racer:/d/tmp/", "-"]);
        if o.code == 0 {
            reads += 1;
            assert!(
                !o.stdout.contains(&format!("host-only-{tok}")),
                "read the host's /tmp"
            );
        }
        let o = d.docker(&["cp", "racer:/d/f", "-"]);
        if o.code == 0 {
            reads += 1;
        }
        for dst in ["racer:/d/", "racer:/d/tmp/"] {
            if d.docker(&["cp", up.to_str().unwrap(), dst]).code == 0 {
                writes += 1;
            }
        }
    }
    assert!(reads > 0 && writes > 0, "reads {reads}, writes {writes}");
    let name = format!("race-{tok}");
    for p in [Path::new("/").join(&name), Path::new("/tmp").join(&name)] {
        assert!(!p.exists(), "{} written on the host", p.display());
    }
    d.docker(&["rm", "-f", "racer"]).ok();
}
