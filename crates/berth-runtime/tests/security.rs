//! Security properties: the runtime binary cannot be overwritten from a container
//! (CVE-2019-5736 class), no host fd or cwd leaks in (CVE-2024-21626 class), image symlinks
//! cannot redirect mounts or devices to the host, unknown capabilities are refused.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use support::*;

/// CVE-2019-5736: a process exec'd into a created container opens the init's `/proc/1/exe`
/// (still the runtime, blocked before exec), waits for `start`, then tries to write the
/// runtime binary through its fd. The binary (a private copy) must stay intact.
#[test]
fn container_cannot_overwrite_the_runtime_binary() {
    let bin_dir = temp_dir();
    let copy = bin_dir.path().join("berth-runtime");
    fs::copy(RUNTIME, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&copy).unwrap();

    let out = temp_dir();
    let mut c = Ctr::new("cve5736", &["sleep", "1000"]);
    c.runtime = copy.clone();
    c.add_mount(json!({"destination": "/out", "type": "bind", "source": out.path(), "options": ["rbind", "rw"]}));
    c.create();

    let attack = "exec 3< /proc/1/exe || { echo open-failed > /out/result; exit 0; }; \
                  echo opened > /out/opened; \
                  while [ ! -e /out/go ]; do sleep 0.05; done; \
                  r=''; \
                  (echo pwned >> /proc/self/fd/3) 2>>/out/errors && r=\"$r append-wrote\"; \
                  (echo pwned 1<> /proc/self/fd/3) 2>>/out/errors && r=\"$r rw-wrote\"; \
                  (echo pwned > /proc/self/fd/3) 2>>/out/errors && r=\"$r trunc-wrote\"; \
                  echo \"result:$r\" > /out/result";
    c.exec(&["-d", "--", "sh", "-c", attack]).ok();
    wait_for("the attacker to open /proc/1/exe", || {
        let r = fs::read_to_string(out.path().join("result")).unwrap_or_default();
        assert!(
            !r.contains("open-failed"),
            "could not even open /proc/1/exe: {r}"
        );
        out.path().join("opened").exists().then_some(())
    });
    c.start().ok();
    assert_eq!(c.status(), "running");
    fs::write(out.path().join("go"), "").unwrap();
    let result = wait_for("the attack to finish", || {
        fs::read_to_string(out.path().join("result"))
            .ok()
            .filter(|r| r.ends_with('\n'))
    });
    let errors = fs::read_to_string(out.path().join("errors")).unwrap_or_default();
    assert_eq!(
        result.trim(),
        "result:",
        "the container wrote to the runtime binary; errors: {errors}"
    );
    assert!(
        errors.contains("Read-only file system")
            || errors.contains("Operation not permitted")
            || errors.contains("Permission denied"),
        "{errors}"
    );
    c.cleanup();
    assert!(
        fs::read(&copy).unwrap() == before,
        "the runtime binary changed"
    );
}

/// CVE-2024-21626: a cwd of `/proc/self/fd/N` must never put the process outside its root.
#[test]
fn cwd_through_a_leaked_fd_never_escapes() {
    // The host's / has /usr; the busybox rootfs does not.
    assert!(Path::new("/usr").exists());
    for n in 3..12 {
        let mut c = Ctr::new(
            "cve21626",
            &["sh", "-c", "pwd; cd ../../../../../../..; ls; echo end"],
        );
        c.spec["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let o = c.run();
        if o.code == 0 {
            assert!(o.stdout.ends_with("end\n"), "fd {n}: {o:?}");
            let listing: Vec<&str> = o.stdout.lines().skip(1).collect();
            assert!(
                !listing.contains(&"usr") && !listing.contains(&"work"),
                "fd {n}: escaped to the host: {o:?}"
            );
            assert!(o.stdout.starts_with('/'), "fd {n}: {o:?}");
        } else {
            assert!(
                o.stderr.contains("process.cwd"),
                "fd {n}: unclear error: {o:?}"
            );
        }
        assert_nothing_left(&c);
    }
}

/// The fds a process has, read from the host.
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            (
                n,
                fs::read_link(e.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn only_stdio_reaches_the_container() {
    let mut c = Ctr::new("fds", &["sleep", "1000"]);
    c.create_start();
    let init = fds_of(c.pid());
    assert_eq!(
        init.iter().map(|f| f.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "init: {init:?}"
    );

    let pid_file = c.bundle().join("exec.pid");
    c.exec(&[
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--",
        "sleep",
        "999",
    ])
    .ok();
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    c.track_pid(pid);
    let exec = fds_of(pid);
    assert_eq!(
        exec.iter().map(|f| f.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "exec: {exec:?}"
    );
}

/// An image symlink to an absolute host path, used as (part of) a mount destination, a
/// device path or a bind-mounted file: everything lands inside the rootfs.
#[test]
fn symlinks_in_the_image_cannot_redirect_to_the_host() {
    let host = temp_dir();
    let target = host.path().join("target");
    fs::create_dir(&target).unwrap();
    let t = target.to_str().unwrap().to_string();
    let src = temp_dir();
    fs::write(src.path().join("payload"), "p").unwrap();

    let mut c = Ctr::new(
        "symlink",
        &["sh", "-c", "cat /proc/self/mountinfo; ls -A /mnt/evil/"],
    );
    let rootfs = c.rootfs();
    fs::create_dir_all(rootfs.join("mnt")).unwrap();
    // The symlink's target exists both on the host and in the image: the image's must be used.
    fs::create_dir_all(rootfs.join(t.trim_start_matches('/'))).unwrap();
    std::os::unix::fs::symlink(&target, rootfs.join("mnt/evil")).unwrap();
    c.add_mount(json!({"destination": "/mnt/evil", "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(json!({"destination": "/mnt/evil/sub/dir", "type": "bind", "source": src.path(), "options": ["rbind"]}));
    c.spec["linux"]["devices"] =
        json!([{"path": "/mnt/evil/null", "type": "c", "major": 1, "minor": 3}]);
    let o = c.run().ok();

    // Nothing reached the host directory.
    let on_host: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(on_host.is_empty(), "the host directory got {on_host:?}");
    // Inside, the mounts sit at the symlink's target taken inside the rootfs.
    let mounts: Vec<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    assert!(mounts.contains(&t.as_str()), "{mounts:?}");
    let sub = format!("{t}/sub/dir");
    assert!(mounts.contains(&sub.as_str()), "{mounts:?}");
    assert!(
        o.stdout.lines().last().unwrap().contains("null") || o.stdout.contains("null\n"),
        "{o:?}"
    );
    // sub/dir and the device were made in the tmpfs mounted at the in-rootfs target.
    assert!(
        fs::read_dir(rootfs.join(t.trim_start_matches('/')))
            .unwrap()
            .next()
            .is_none()
    );

    // A dangling symlink (its target exists only on the host) as a mount destination: the
    // runtime may refuse it, but must not follow it out of the rootfs.
    let mut c = Ctr::new("symlinkdangling", &["true"]);
    fs::create_dir_all(c.rootfs().join("mnt")).unwrap();
    std::os::unix::fs::symlink(&target, c.rootfs().join("mnt/evil")).unwrap();
    c.add_mount(json!({"destination": "/mnt/evil/sub", "type": "tmpfs", "source": "tmpfs"}));
    let o = c.run();
    if o.code != 0 {
        assert!(o.stderr.contains("mounts[7]"), "{o:?}");
    }
    assert!(
        fs::read_dir(&target).unwrap().next().is_none(),
        "the host directory got a mount point"
    );
    drop(c);

    // A bind-mounted file whose destination is a symlink to a host file that does not exist.
    let mut c = Ctr::new("symlinkfile", &["cat", "/mnt/evilfile"]);
    fs::create_dir_all(c.rootfs().join("mnt")).unwrap();
    std::os::unix::fs::symlink(target.join("file"), c.rootfs().join("mnt/evilfile")).unwrap();
    c.add_mount(json!({"destination": "/mnt/evilfile", "type": "bind", "source": src.path().join("payload"), "options": ["bind"]}));
    let o = c.run();
    if o.code == 0 {
        assert_eq!(o.stdout, "p");
    } else {
        assert!(o.stderr.contains("mounts[7]"), "{o:?}");
    }
    assert!(
        !target.join("file").exists(),
        "a file was created on the host through the symlink"
    );
    assert!(fs::read_dir(&target).unwrap().next().is_none());
}

#[test]
fn symlinked_dev_cannot_place_devices_on_the_host() {
    // Without a /dev mount the image's own /dev is used: make it a symlink to a host directory.
    let host = temp_dir();
    let target = host.path().join("dev");
    fs::create_dir(&target).unwrap();
    let mut c = Ctr::new(
        "symlinkdev",
        &["sh", "-c", "ls /dev; stat -c %t:%T /dev/null"],
    );
    let rootfs = c.rootfs();
    fs::remove_dir(rootfs.join("dev")).unwrap();
    std::os::unix::fs::symlink(&target, rootfs.join("dev")).unwrap();
    c.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    c.spec["root"]["readonly"] = json!(false);
    let o = c.run();
    let on_host: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        on_host.is_empty(),
        "devices were created on the host: {on_host:?} ({o:?})"
    );
    if o.code == 0 {
        assert!(o.stdout.contains("1:3"), "{o:?}");
    }
}

#[test]
fn unknown_capability_is_refused_naming_the_field() {
    let mut c = Ctr::new("badcap", &["true"]);
    c.spec["process"]["capabilities"]["effective"] = json!(["CAP_CHOWN", "CAP_NOT_A_CAP"]);
    c.create_with(&[])
        .fails_with(&["process.capabilities.effective", "CAP_NOT_A_CAP"]);
    assert_nothing_left(&c);
}

#[test]
fn runtime_binary_is_not_reachable_from_a_running_container() {
    let mut c = Ctr::new(
        "exe",
        &[
            "sh",
            "-c",
            "readlink /proc/1/exe; echo x >> /proc/1/exe || echo refused",
        ],
    );
    let o = c.run().ok();
    assert_eq!(o.stdout.lines().next().unwrap(), "/bin/busybox", "{o:?}");
}
