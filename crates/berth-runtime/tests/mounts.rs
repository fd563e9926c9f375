//! Mounts: binds (rw, ro, recursive read-only), tmpfs options, propagation, a read-only
//! rootfs, masked and read-only paths, idmapped binds, and the cgroup mount type.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use support::*;

/// A mount made on the host by the test; detached on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        fs::create_dir_all(at).unwrap();
        rustix::mount::mount(
            "tmpfs",
            at,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"size=1m",
        )
        .unwrap();
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn bind(src: &Path, dst: &str, opts: &[&str]) -> serde_json::Value {
    json!({"destination": dst, "type": "bind", "source": src, "options": opts})
}

#[test]
fn bind_mount_read_write() {
    let host = temp_dir();
    fs::write(host.path().join("from-host"), "hello").unwrap();
    let mut c = Ctr::new(
        "bindrw",
        &[
            "sh",
            "-c",
            "cat /data/from-host && echo written > /data/from-ctr",
        ],
    );
    c.add_mount(bind(host.path(), "/data", &["rbind", "rw"]));
    let o = c.run().ok();
    assert_eq!(o.stdout, "hello");
    assert_eq!(
        fs::read_to_string(host.path().join("from-ctr")).unwrap(),
        "written\n"
    );
}

#[test]
fn bind_mount_read_only() {
    let host = temp_dir();
    fs::write(host.path().join("f"), "data").unwrap();
    let mut c = Ctr::new(
        "bindro",
        &[
            "sh",
            "-c",
            "cat /data/f; echo x > /data/g || echo refused; echo x >> /data/f || echo refused2",
        ],
    );
    c.add_mount(bind(host.path(), "/data", &["bind", "ro"]));
    let o = c.run().ok();
    assert!(o.stdout.starts_with("data"), "{o:?}");
    assert!(
        o.stdout.contains("refused\n") && o.stdout.contains("refused2"),
        "{o:?}"
    );
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!host.path().join("g").exists());
    assert_eq!(fs::read_to_string(host.path().join("f")).unwrap(), "data");
}

#[test]
fn bind_mount_of_a_file() {
    let host = temp_dir();
    let f = host.path().join("file.conf");
    fs::write(&f, "conf").unwrap();
    let mut c = Ctr::new("bindfile", &["cat", "/etc/app/file.conf"]);
    c.add_mount(json!({"destination": "/etc/app/file.conf", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    assert_eq!(c.run().ok().stdout, "conf");
}

#[test]
fn rbind_with_rro_makes_submounts_read_only_too() {
    let host = temp_dir();
    let _sub = HostMount::tmpfs(&host.path().join("sub"));
    let script = "echo a > /plain/top || echo top-refused; echo b > /plain/sub/f && echo sub-written; \
                  echo c > /rec/top2 || echo top2-refused; echo d > /rec/sub/g || echo sub-refused";
    let mut c = Ctr::new("rro", &["sh", "-c", script]);
    // "ro" alone only applies to the top mount; "rro" to every mount below it too.
    c.add_mount(bind(host.path(), "/plain", &["rbind", "ro"]));
    c.add_mount(bind(host.path(), "/rec", &["rbind", "rro"]));
    let o = c.run().ok();
    for want in ["top-refused", "sub-written", "top2-refused", "sub-refused"] {
        assert!(o.stdout.contains(want), "{want}: {o:?}");
    }
    assert!(host.path().join("sub/f").exists());
    assert!(!host.path().join("sub/g").exists());
}

#[test]
fn tmpfs_options_size_and_mode() {
    let script = "stat -c %a /scratch; grep ' /scratch ' /proc/mounts; \
                  dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null && echo fit || echo full";
    let mut c = Ctr::new("tmpfs", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=1770"]}));
    let o = c.run().ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "1770");
    assert!(
        lines[1].contains("size=1024k")
            && lines[1].contains("nosuid")
            && lines[1].contains("nodev"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "full", "a 2 MiB file must not fit a 1 MiB tmpfs");
}

#[test]
fn tmpfs_noexec() {
    let mut c = Ctr::new(
        "noexec",
        &[
            "sh",
            "-c",
            "cp /bin/busybox /x/bb && /x/bb true && echo ran || echo refused",
        ],
    );
    c.add_mount(
        json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}),
    );
    let o = c.run().ok();
    assert_eq!(o.stdout, "refused\n", "{o:?}");
}

/// Propagation: a slave bind receives what the host mounts later below its source; a private
/// one does not.
#[test]
fn mount_propagation_options() {
    let host = temp_dir();
    let src = host.path().join("src");
    let shared = HostMount::tmpfs(&src);
    rustix::mount::mount_change(&src, rustix::mount::MountPropagationFlags::SHARED).unwrap();
    let script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; \
                  ls /slave/late; echo --; ls /private/late; echo end";
    let mut c = Ctr::new("prop", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    c.add_mount(bind(&src, "/slave", &["rbind", "rslave"]));
    c.add_mount(bind(&src, "/private", &["rbind", "rprivate"]));
    c.create_start();
    let mountinfo = c.sh("cat /proc/self/mountinfo").ok().stdout;
    let line = |mp: &str| {
        mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("{mp} missing: {mountinfo}"))
            .to_string()
    };
    assert!(line("/slave").contains("master:"), "{}", line("/slave"));
    assert!(
        !line("/private").contains("master:") && !line("/private").contains("shared:"),
        "{}",
        line("/private")
    );

    let late = HostMount::tmpfs(&src.join("late"));
    fs::write(src.join("late/file"), "x").unwrap();
    c.sh("touch /tmp/go").ok();
    let out = c.wait_console("end");
    let (slave, private) = out.split_once("--").unwrap();
    assert!(
        slave.contains("file"),
        "the slave mount must see the host's new mount: {out}"
    );
    assert!(
        !private.contains("file"),
        "the private mount must not: {out}"
    );
    c.cleanup();
    drop(late);
    drop(shared);
}

#[test]
fn readonly_rootfs() {
    let mut c = Ctr::new(
        "rootro",
        &["sh", "-c", "touch /newfile && echo created || echo refused"],
    );
    let o = c.run().ok();
    assert_eq!(o.stdout, "refused\n");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!c.rootfs().join("newfile").exists());

    let mut c = Ctr::new(
        "rootrw",
        &["sh", "-c", "touch /newfile && echo created || echo refused"],
    );
    c.spec["root"]["readonly"] = json!(false);
    assert_eq!(c.run().ok().stdout, "created\n");
    assert!(c.rootfs().join("newfile").exists());
}

#[test]
fn masked_paths() {
    // /proc/timer_list is in the default masked paths (/proc/kcore too, but not every kernel has it).
    assert!(!fs::read_to_string("/proc/timer_list").unwrap().is_empty());
    let script = "wc -c < /proc/timer_list; cat /etc/secret; echo; ls -A /private-dir; echo end; \
                  echo x > /private-dir/new || echo dir-refused";
    let mut c = Ctr::new("masked", &["sh", "-c", script]);
    fs::write(c.rootfs().join("etc/secret"), "top secret").unwrap();
    fs::create_dir(c.rootfs().join("private-dir")).unwrap();
    fs::write(c.rootfs().join("private-dir/inside"), "x").unwrap();
    c.spec["root"]["readonly"] = json!(false);
    let masked = c.spec["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/etc/secret"));
    masked.push(json!("/private-dir"));
    masked.push(json!("/does/not/exist"));
    let o = c.run().ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/timer_list reads empty: {o:?}");
    assert_eq!(lines[1], "", "a masked file reads empty: {o:?}");
    assert_eq!(lines[2], "end", "a masked directory is empty: {o:?}");
    assert_eq!(lines[3], "dir-refused", "and read-only: {o:?}");
    // The files themselves are untouched.
    assert_eq!(
        fs::read_to_string(c.rootfs().join("etc/secret")).unwrap(),
        "top secret"
    );
}

#[test]
fn readonly_paths() {
    let script = "cat /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv4/ip_forward || echo sys-refused; \
                  echo y > /work/f || echo work-refused";
    let mut c = Ctr::new("ropaths", &["sh", "-c", script]);
    c.add_mount(json!({"destination": "/work", "type": "tmpfs", "source": "tmpfs"}));
    c.spec["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/work"));
    let o = c.run().ok();
    assert!(o.stdout.contains("sys-refused"), "{o:?}");
    assert!(o.stdout.contains("work-refused"), "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
}

/// An idmapped mount shows a file owned on disk by `containerID + n` as owned by `hostID + n`
/// (the mapping of the mount's user namespace, as with `linux.uidMappings`).
#[test]
fn idmapped_bind_mount_shows_mapped_owners() {
    let host = temp_dir();
    let f = host.path().join("owned-by-root");
    fs::write(&f, "x").unwrap();
    let g = host.path().join("owned-by-42");
    fs::write(&g, "y").unwrap();
    rustix::fs::chown(
        &g,
        Some(rustix::fs::Uid::from_raw(42)),
        Some(rustix::fs::Gid::from_raw(43)),
    )
    .unwrap();
    let mut c = Ctr::new(
        "idmap",
        &[
            "sh",
            "-c",
            "stat -c %u:%g /idm/owned-by-root /idm/owned-by-42 /plain/owned-by-root",
        ],
    );
    c.add_mount(json!({
        "destination": "/idm", "type": "bind", "source": host.path(), "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 100}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 100}],
    }));
    c.add_mount(bind(host.path(), "/plain", &["bind"]));
    let o = c.run();
    if o.code != 0
        && (o.stderr.contains("idmapping the mount") || o.stderr.contains("Invalid argument"))
    {
        eprintln!(
            "SKIP: the kernel or filesystem refuses idmapped mounts here: {}",
            o.stderr
        );
        return;
    }
    let o = o.ok();
    assert_eq!(o.stdout, "1000:2000\n1042:2043\n0:0\n");
    // On the host nothing changed.
    assert_eq!(fs::metadata(&g).unwrap().uid(), 42);
}

#[test]
fn idmapped_tmpfs_bind_mount() {
    // tmpfs supports idmapped mounts since Linux 6.3.
    let host = temp_dir();
    let _t = HostMount::tmpfs(&host.path().join("t"));
    fs::write(host.path().join("t/file"), "x").unwrap();
    let mut c = Ctr::new("idmaptmpfs", &["stat", "-c", "%u:%g", "/idm/file"]);
    c.add_mount(json!({
        "destination": "/idm", "type": "bind", "source": host.path().join("t"), "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 500, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 600, "size": 1}],
    }));
    let o = c.run();
    if o.code != 0 && o.stderr.contains("idmapping the mount") {
        eprintln!(
            "SKIP: tmpfs refuses idmapped mounts on this kernel: {}",
            o.stderr
        );
        return;
    }
    assert_eq!(o.ok().stdout, "500:600\n");
}

#[test]
fn idmap_without_mappings_is_refused() {
    let host = temp_dir();
    let mut c = Ctr::new("idmapnomap", &["true"]);
    c.add_mount(bind(host.path(), "/idm", &["bind", "idmap"]));
    c.create_with(&[])
        .fails_with(&["mounts[7].options", "idmap"]);
    assert_nothing_left(&c);
}

#[test]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    for cgns in [true, false] {
        let mut c = Ctr::new(
            "cgmount",
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup; echo x > /sys/fs/cgroup/pids/pids.max || echo ro",
            ],
        );
        c.spec["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c.spec["linux"]["resources"]["pids"] = json!({"limit": 77});
        if !cgns {
            c.spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "cgroup");
        }
        let o = c.run().ok();
        let lines: Vec<&str> = o.stdout.lines().collect();
        assert_eq!(lines[0], (64u64 << 20).to_string(), "cgns={cgns}: {o:?}");
        assert_eq!(lines[1], "77", "cgns={cgns}: {o:?}");
        for ctl in ["cpu", "memory", "pids", "devices", "freezer"] {
            assert!(lines.contains(&ctl), "cgns={cgns}: {ctl} missing: {o:?}");
        }
        assert_eq!(
            *lines.last().unwrap(),
            "ro",
            "the cgroup mount is read-only: {o:?}"
        );
    }
}

#[test]
fn bind_source_that_does_not_exist_fails_and_leaves_nothing() {
    let mut c = Ctr::new("nosrc", &["true"]);
    c.add_mount(bind(
        Path::new("/nonexistent/berth-test-source"),
        "/data",
        &["bind"],
    ));
    c.create_with(&[])
        .fails_with(&["mounts[7]", "/nonexistent/berth-test-source"]);
    assert_nothing_left(&c);
}
