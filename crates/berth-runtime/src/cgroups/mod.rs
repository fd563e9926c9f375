//! Control groups: create a container's cgroup, apply its resource limits, freeze, signal,
//! report statistics and remove it, on cgroup v1, cgroup v2 and hybrid hosts.
//!
//! A [`Cgroup`] is the container's directory in every hierarchy the host mounts: one per
//! cgroup v1 hierarchy, plus one in the cgroup2 hierarchy when it is mounted (also on hybrid
//! hosts, where the container's processes join it too). Each resource limit goes to the
//! cgroup v1 hierarchy holding its controller when there is one, else to cgroup v2 when the
//! controller is enabled there, else it is an error naming the config field (except
//! `linux.resources.network`, which only exists in cgroup v1 and is skipped with a warning,
//! as runc does). Devices are filtered by the v1 device controller when it is mounted, else
//! by an eBPF program attached to the cgroup v2 directory.
//!
//! Module map: `hierarchy` (finding mounts), `resources` (routing limits), `v1` and `v2`
//! (writing them), `devices` and `bpf` (device rules), `freezer`, `oom` (OOM events),
//! [`stats`] (usage, in runc's JSON shape), `util` (file helpers).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

mod bpf;
mod devices;
mod freezer;
mod hierarchy;
mod oom;
mod resources;
pub mod stats;
mod util;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

pub use hierarchy::{Hierarchy, detect_layout, mounted_hierarchies, unified_mountpoint};
pub use oom::{OomEvent, OomWatch};
pub use resources::hugepage_sizes;
pub use stats::Stats;

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`),
    /// which may hold some controllers (hugetlb on this project's CI hosts).
    Hybrid,
    /// Only cgroup2, mounted at `/sys/fs/cgroup`.
    Unified,
}

/// A container's cgroup in every hierarchy the host has. Persisted in the container state so
/// that later commands find the same directories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    /// The host's layout when the cgroup was resolved.
    pub layout: Layout,
    /// The cgroup path as resolved from `linux.cgroupsPath` (or the container id), with `.`
    /// and `..` removed: absolute (`/berth/3f2a…`, the same below every hierarchy's root) or
    /// relative (`3f2a…`, below the runtime's own cgroup, which may differ per hierarchy).
    pub path: String,
    /// cgroup v1: hierarchy name as mounted (`memory`, `cpu,cpuacct`, `name=systemd`) to the
    /// container's directory in it.
    pub v1: BTreeMap<String, PathBuf>,
    /// The container's directory in the cgroup2 hierarchy, if the host has one.
    pub v2: Option<PathBuf>,
}

/// How a freshly forked process moves itself into the container's cgroup, without the
/// kernel's global threadgroup lock.
///
/// Moving another process (writing its pid to `cgroup.procs`) write-locks a lock that every
/// fork and exit on the host read-locks, and taking it waits for an RCU grace period: 7–12 ms
/// per container on the project's VMs, the largest single wait of a container start. The
/// kernel skips that lock when a thread moves itself alone: writing `0` to a cgroup v1
/// `tasks` file (which moves the whole process as long as it has one thread, as a freshly
/// forked child does). cgroup2 has no such file outside threaded subtrees, so there the
/// process is instead born in its cgroup (`clone3` with `CLONE_INTO_CGROUP`, the directory
/// fd [`SelfJoin::cgroup2_dir`]); a kernel without it gets the child writing `0` to
/// `cgroup.procs`, which takes the lock but is still correct.
///
/// The files are opened before the fork, by the runtime: the child needs no path lookup, and
/// the kernel checks permissions against the opener.
pub struct SelfJoin {
    v1: Vec<(PathBuf, OwnedFd)>,
    v2: Option<(OwnedFd, (PathBuf, OwnedFd))>,
}

impl SelfJoin {
    /// The cgroup2 directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn cgroup2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|(d, _)| d.as_fd())
    }

    /// In the forked child, while it has a single thread: moves it into every hierarchy.
    /// `born_in_cgroup2` says whether it was forked into its cgroup2 directory already.
    pub fn join(&self, born_in_cgroup2: bool) -> Result<()> {
        let procs = self
            .v2
            .as_ref()
            .filter(|_| !born_in_cgroup2)
            .map(|(_, p)| p);
        for (path, fd) in self.v1.iter().chain(procs) {
            match rustix::io::write(fd, b"0") {
                Ok(1) => {}
                Ok(_) => {
                    return Err(io_err(
                        format!("joining {}", path.display()),
                        io::Error::from(io::ErrorKind::WriteZero),
                    ));
                }
                Err(e) => return Err(io_err(format!("joining {}", path.display()), e.into())),
            }
        }
        Ok(())
    }
}

/// An error about a config field: `field: message`.
pub(crate) fn field_err(field: impl AsRef<str>, msg: impl AsRef<str>) -> Error {
    Error::msg(format!("{}: {}", field.as_ref(), msg.as_ref()))
}

/// An I/O error with its description.
pub(crate) fn io_err(what: String, err: io::Error) -> Error {
    Error::Io { what, err }
}

/// `checkBeforeUpdate`: refuses limits at or below what the cgroup already uses (best effort:
/// if the usage cannot be read, nothing is refused).
pub(crate) fn check_usage(dir: &Path, file: &str, limit: i64, swap: i64) -> Result<()> {
    if limit <= 0 && swap <= 0 {
        return Ok(());
    }
    let Ok(usage) = util::read_u64(dir, file) else {
        return Ok(());
    };
    for (name, v) in [("swap", swap), ("limit", limit)] {
        if v > 0 && (v as u64) <= usage {
            return Err(field_err(
                format!("linux.resources.memory.{name}"),
                format!(
                    "rejecting {v}: the cgroup already uses {usage} bytes (checkBeforeUpdate is set)"
                ),
            ));
        }
    }
    Ok(())
}

/// Removes `.` and `..` from a cgroup path, refusing paths that climb above their base or
/// name the base itself. Returns whether it is absolute, and its components.
fn clean_path(field: &str, raw: &str) -> Result<(bool, Vec<String>)> {
    let absolute = raw.starts_with('/');
    let base = if absolute {
        "the root of the cgroup hierarchy"
    } else {
        "the runtime's own cgroup"
    };
    if raw.contains('\0') {
        return Err(field_err(field, format!("{raw:?} contains a NUL byte")));
    }
    let mut comps: Vec<String> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.pop().is_none() {
                    return Err(field_err(
                        field,
                        format!("{raw:?} escapes {base} with \"..\""),
                    ));
                }
            }
            c => comps.push(c.to_string()),
        }
    }
    if comps.is_empty() {
        return Err(field_err(
            field,
            format!("{raw:?} names {base} itself; a container needs a cgroup of its own"),
        ));
    }
    Ok((absolute, comps))
}

impl Cgroup {
    /// Works out where the cgroup lives. `cgroups_path` is `linux.cgroupsPath`: absolute paths
    /// start at each hierarchy's root, relative ones at the runtime's own cgroup, and `None`
    /// means the container id relative to the runtime's own cgroup (runc's behaviour).
    /// `..` may not climb above that starting point. Creates nothing.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let mounts = hierarchy::Mounts::discover()?;
        Cgroup::resolve(&mounts, cgroups_path, id)
    }

    fn resolve(mounts: &hierarchy::Mounts, cgroups_path: Option<&str>, id: &str) -> Result<Cgroup> {
        let layout = mounts.layout()?;
        let (field, raw) = match cgroups_path {
            Some(p) => ("linux.cgroupsPath", p),
            None => ("container id", id),
        };
        let (absolute, comps) = clean_path(field, raw)?;
        let path = if absolute {
            format!("/{}", comps.join("/"))
        } else {
            comps.join("/")
        };
        let place = |mountpoint: &Path, own: PathBuf| {
            let mut d = if absolute {
                mountpoint.to_path_buf()
            } else {
                own
            };
            d.extend(&comps);
            d
        };
        let v1 = mounts
            .v1
            .iter()
            .map(|h| (h.name.clone(), place(&h.mountpoint, h.own_dir())))
            .collect();
        let v2 = mounts
            .v2
            .as_ref()
            .map(|u| place(&u.mountpoint, u.own_dir()));
        Ok(Cgroup {
            layout,
            path,
            v1,
            v2,
        })
    }

    /// The container's directory in the cgroup v1 hierarchy that holds `controller`
    /// (`memory`, `cpu`, or a named hierarchy such as `name=systemd`), if one is mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(name, _)| name.split(',').any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// Every directory of the container's cgroup: the cgroup v1 ones, then the cgroup v2 one.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .values()
            .map(PathBuf::as_path)
            .chain(self.v2.as_deref())
    }

    /// Creates the directories and applies `resources`. On error, removes what it created.
    ///
    /// On cgroup v1 a new cpuset cgroup gets its parent's CPUs and memory nodes (needed before
    /// any task can join); on cgroup v2 every controller the root offers is enabled in
    /// `cgroup.subtree_control` from the root down to the container's parent.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let mut created = Vec::new();
        let r = resources::create_dirs(self, &mut created).and_then(|()| match resources {
            Some(r) => self.apply(r),
            None => Ok(()),
        });
        if let Err(e) = r {
            for d in created.iter().rev() {
                if let Err(e2) = util::rmdir(d, true) {
                    tracing::warn!(
                        "cleaning up after a failed cgroup creation: removing {}: {e2}",
                        d.display()
                    );
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Applies (or updates) resource limits. Sections and fields that are absent are left as
    /// they are.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        resources::apply(self, resources)
    }

    /// Moves a process into the cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        for d in self.dirs() {
            util::write_pid(d, pid)?;
        }
        Ok(())
    }

    /// Opens what a process about to be forked needs to enter this cgroup by itself; see
    /// [`SelfJoin`].
    pub fn prepare_self_join(&self) -> Result<SelfJoin> {
        use std::os::unix::fs::OpenOptionsExt;
        let open = |path: PathBuf, dir: bool| -> Result<(PathBuf, OwnedFd)> {
            let mut o = std::fs::OpenOptions::new();
            if dir {
                o.read(true).custom_flags(libc::O_DIRECTORY);
            } else {
                o.write(true);
            }
            match o.open(&path) {
                Ok(f) => Ok((path, f.into())),
                Err(e) => Err(io_err(format!("opening {}", path.display()), e)),
            }
        };
        let v1 = self
            .v1
            .values()
            .map(|d| open(d.join("tasks"), false))
            .collect::<Result<Vec<_>>>()?;
        let v2 = match &self.v2 {
            Some(d) => Some((
                open(d.clone(), true)?.1,
                open(d.join("cgroup.procs"), false)?,
            )),
            None => None,
        };
        Ok(SelfJoin { v1, v2 })
    }

    /// Every process in the cgroup, including its sub-cgroups, in every hierarchy; sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for d in self.dirs() {
            util::collect_pids(d, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer(&self) -> Result<(bool, &Path)> {
        if let Some(d) = self.v1_dir("freezer") {
            return Ok((true, d));
        }
        match &self.v2 {
            Some(d) => Ok((false, d)),
            None => Err(Error::msg(
                "cgroups: no freezer: neither a cgroup v1 freezer hierarchy nor cgroup v2 is mounted",
            )),
        }
    }

    /// Freezes every process in the cgroup and waits until they are frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            (true, d) => freezer::freeze_v1(d),
            (false, d) => freezer::freeze_v2(d),
        }
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            (true, d) => freezer::thaw_v1(d),
            (false, d) => freezer::thaw_v2(d),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            (true, d) => freezer::frozen_v1(d),
            (false, d) => freezer::frozen_v2(d),
        }
    }

    /// Sends `signal` to every process in the cgroup (freezing it meanwhile so that no
    /// process escapes by forking).
    ///
    /// SIGKILL on cgroup v2 uses `cgroup.kill`, which the kernel applies to the whole subtree
    /// atomically. A cgroup that was frozen before stays frozen (the signal is delivered when
    /// it is thawed), except for SIGKILL, after which it is thawed so the processes can die.
    pub fn signal_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL
            && let Some(d) = &self.v2
            && d.join("cgroup.kill").exists()
        {
            util::write("", d, "cgroup.kill", "1")?;
            if self.layout == Layout::Unified {
                return Ok(());
            }
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = !was_frozen
            && match self.freeze() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("{e}; signalling without freezing");
                    false
                }
            };
        let result = self.pids().and_then(|pids| {
            let mut first_err = None;
            for pid in pids {
                // SAFETY: kill(2) has no memory-safety preconditions.
                if unsafe { libc::kill(pid, signal) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) && first_err.is_none() {
                        first_err =
                            Some(io_err(format!("sending signal {signal} to pid {pid}"), e));
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        });
        if froze || (was_frozen && signal == libc::SIGKILL) {
            self.thaw()?;
        }
        result
    }

    /// Removes the cgroup directories (sub-cgroups first), retrying briefly while the last
    /// processes exit. Missing directories are not an error. Tries every hierarchy and
    /// returns the first error.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for d in self.dirs() {
            if let Err(e) = util::remove_cgroup(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Current resource usage.
    pub fn stats(&self) -> Result<Stats> {
        let ctx = resources::Ctx::new(self)?;
        stats::collect(&ctx)
    }

    /// Starts watching for OOM events, for `berth-runtime events`. `None` when no memory
    /// controller is available to the cgroup.
    pub fn oom_watch(&self) -> Result<Option<OomWatch>> {
        let ctx = resources::Ctx::new(self)?;
        match ctx.place("memory") {
            Some(resources::Place::V1(d)) => OomWatch::v1(d).map(Some),
            Some(resources::Place::V2(d)) => OomWatch::v2(d).map(Some),
            None => Ok(None),
        }
    }
}
