//! Namespaces: which to create, which to join, and the order that works.
//!
//! Joining by path happens in the runtime before it forks, for every namespace whose joining
//! does not change what the runtime itself sees (net, ipc, uts, pid, cgroup, time: the last
//! three only affect children). Mount and user namespaces are joined by the forked child,
//! because the runtime must keep its own view of the filesystem and its privileges.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::config;
use crate::error::{Context, Error, Result};

/// Namespaces to join, opened before the fork so a vanished path fails early.
pub struct Joins {
    /// (type, path, fd) in the order they must be joined.
    pub early: Vec<(LinuxNamespaceType, PathBuf, OwnedFd)>,
    /// The user namespace to join (in the child, first).
    pub user: Option<(PathBuf, OwnedFd)>,
    /// The mount namespace to join (in the child, last).
    pub mount: Option<(PathBuf, OwnedFd)>,
}

/// The `CLONE_NEW*` bit of a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> i32 {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The `CLONE_NEW*` flags of every namespace the config asks to create.
pub fn new_flags(spec: &Spec) -> i32 {
    config::namespaces(spec)
        .iter()
        .filter(|n| n.path().is_none())
        .fold(0, |f, n| f | clone_flag(n.typ()))
}

/// Opens every namespace path in the config.
pub fn open_joins(spec: &Spec) -> Result<Joins> {
    let mut j = Joins {
        early: Vec::new(),
        user: None,
        mount: None,
    };
    for (i, ns) in config::namespaces(spec).iter().enumerate() {
        let Some(path) = ns.path() else { continue };
        let f = File::open(path).map_err(|e| {
            Error::config(
                format!("linux.namespaces[{i}].path"),
                format!("{}: {e}", path.display()),
            )
        })?;
        let fd: OwnedFd = f.into();
        match ns.typ() {
            LinuxNamespaceType::User => j.user = Some((path.clone(), fd)),
            LinuxNamespaceType::Mount => j.mount = Some((path.clone(), fd)),
            t => j.early.push((t, path.clone(), fd)),
        }
    }
    Ok(j)
}

/// Joins one namespace through an fd.
pub fn setns(fd: impl AsFd, t: LinuxNamespaceType, what: &std::path::Path) -> Result<()> {
    // SAFETY: setns on a valid fd with a namespace-type flag.
    let r = unsafe { libc::setns(fd.as_fd().as_raw_fd(), clone_flag(t)) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| {
            format!(
                "joining {} namespace {}",
                config::ns_name(t),
                what.display()
            )
        });
    }
    Ok(())
}

/// Whether process `pid` is in the same namespace of type `name` (`"net"`, `"mnt"`, …) as we are.
pub fn same_as_self(pid: i32, name: &str) -> bool {
    let a = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    let b = std::fs::metadata(format!("/proc/self/ns/{name}"));
    match (a, b) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => true,
    }
}

/// All namespace types, in the order `exec` joins them (user first, mount last).
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// Writes `/proc/<pid>/timens_offsets` for a new time namespace (before any process enters it).
pub fn write_time_offsets(pid: i32, spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut lines = String::new();
    for (clock, off) in offsets {
        let id = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::config(
                    format!("linux.timeOffsets.{other}"),
                    "only monotonic and boottime clocks can be offset",
                ));
            }
        };
        lines.push_str(&format!(
            "{id} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    let path = format!("/proc/{pid}/timens_offsets");
    std::fs::write(&path, lines).ctx(|| format!("linux.timeOffsets: writing {path}"))
}

/// Writes the uid/gid maps of a new user namespace for process `pid`.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    let up = format!("/proc/{pid}/uid_map");
    std::fs::write(&up, uid).ctx(|| format!("linux.uidMappings: writing {up}"))?;
    let gp = format!("/proc/{pid}/gid_map");
    std::fs::write(&gp, gid).ctx(|| format!("linux.gidMappings: writing {gp}"))?;
    Ok(())
}
