//! Finding the host's cgroup hierarchies: which cgroup v1 hierarchies and which cgroup2 mount
//! exist (from `/proc/self/mountinfo`), and where the runtime itself sits in each (from
//! `/proc/self/cgroup`), so that container paths can be resolved.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Layout;
use super::util;
use crate::{Error, Result};

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hierarchy {
    /// The hierarchy's name as `/proc/self/cgroup` spells it: its controllers joined by commas
    /// (`cpu,cpuacct`, `memory`) or `name=<name>` for a named hierarchy (`name=systemd`).
    /// This is also the mount option list to pass when mounting it (`-o cpu,cpuacct`).
    pub name: String,
    /// The controllers bound to the hierarchy (empty for a named hierarchy).
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mountpoint: PathBuf,
    /// The directory of the hierarchy that is mounted there (`/` unless the mount is a bind
    /// mount of a sub-cgroup, as inside a container).
    pub root: String,
    /// The runtime's own cgroup in this hierarchy, as `/proc/self/cgroup` shows it.
    pub own: String,
}

impl Hierarchy {
    /// The runtime's own cgroup directory in this hierarchy.
    pub(crate) fn own_dir(&self) -> PathBuf {
        join_rel(&self.mountpoint, &strip_root(&self.own, &self.root))
    }
}

/// The cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unified {
    pub mountpoint: PathBuf,
    pub root: String,
    /// The runtime's own cgroup2 path (the `0::` line of `/proc/self/cgroup`).
    pub own: String,
}

impl Unified {
    pub(crate) fn own_dir(&self) -> PathBuf {
        join_rel(&self.mountpoint, &strip_root(&self.own, &self.root))
    }
}

/// Everything mounted.
#[derive(Debug, Clone)]
pub(crate) struct Mounts {
    pub v1: Vec<Hierarchy>,
    pub v2: Option<Unified>,
}

impl Mounts {
    /// Reads `/proc/self/mountinfo`, `/proc/self/cgroup` and `/proc/cgroups`.
    pub(crate) fn discover() -> Result<Mounts> {
        let mountinfo = util::read_path(Path::new("/proc/self/mountinfo"))?;
        let own = util::read_path(Path::new("/proc/self/cgroup"))?;
        let known = util::read_path(Path::new("/proc/cgroups"))
            .map(|s| known_controllers(&s))
            .unwrap_or_else(|_| FALLBACK_CONTROLLERS.iter().map(|s| s.to_string()).collect());
        Mounts::parse(&mountinfo, &own, &known)
    }

    pub(crate) fn parse(mountinfo: &str, own: &str, known: &BTreeSet<String>) -> Result<Mounts> {
        let mounts = parse_mountinfo(mountinfo);
        let own = parse_proc_cgroup(own)?;
        let mut v1 = Vec::new();
        let mut v2 = None;
        for (name, path) in &own {
            if name.is_empty() {
                // The cgroup2 line "0::/path".
                let cands: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
                if let Some(m) = pick(&cands, path) {
                    v2 = Some(Unified {
                        mountpoint: m.mountpoint.clone(),
                        root: m.root.clone(),
                        own: path.clone(),
                    });
                }
                continue;
            }
            let want: BTreeSet<&str> = name.split(',').collect();
            let cands: Vec<&Mount> = mounts
                .iter()
                .filter(|m| m.fstype == "cgroup")
                .filter(|m| {
                    let have: BTreeSet<&str> = m
                        .super_options
                        .split(',')
                        .filter(|o| o.starts_with("name=") || known.contains(*o))
                        .collect();
                    have == want
                })
                .collect();
            if let Some(m) = pick(&cands, path) {
                v1.push(Hierarchy {
                    name: name.clone(),
                    controllers: name
                        .split(',')
                        .filter(|c| !c.starts_with("name="))
                        .map(str::to_string)
                        .collect(),
                    mountpoint: m.mountpoint.clone(),
                    root: m.root.clone(),
                    own: path.clone(),
                });
            }
        }
        // A cgroup2 mount without a "0::" line (very old kernels never print it while the
        // hierarchy is unused): fall back to the mount with the runtime at its root.
        if v2.is_none() {
            let cands: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
            if let Some(m) = pick(&cands, "/") {
                v2 = Some(Unified {
                    mountpoint: m.mountpoint.clone(),
                    root: m.root.clone(),
                    own: "/".into(),
                });
            }
        }
        v1.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Mounts { v1, v2 })
    }

    /// The layout these mounts make.
    pub(crate) fn layout(&self) -> Result<Layout> {
        let v1_controllers = self.v1.iter().any(|h| !h.controllers.is_empty());
        match (v1_controllers, self.v2.is_some()) {
            (true, true) => Ok(Layout::Hybrid),
            (true, false) => Ok(Layout::Legacy),
            (false, true) => Ok(Layout::Unified),
            (false, false) => Err(Error::msg(
                "cgroups: no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)",
            )),
        }
    }
}

/// Every cgroup v1 hierarchy mounted on this host, with its mountpoint and name, sorted by
/// name. The rootfs code uses it to mount the `cgroup` filesystem type inside a container
/// (one mount per hierarchy, with the name as mount options). Empty on a pure cgroup2 host.
pub fn mounted_hierarchies() -> Result<Vec<Hierarchy>> {
    Ok(Mounts::discover()?.v1)
}

/// The host's cgroup layout, detected from `/proc/self/mountinfo`.
pub fn detect_layout() -> Result<Layout> {
    Mounts::discover()?.layout()
}

/// Where the cgroup2 hierarchy is mounted, if it is.
pub fn unified_mountpoint() -> Result<Option<PathBuf>> {
    Ok(Mounts::discover()?.v2.map(|u| u.mountpoint))
}

/// Controllers known when /proc/cgroups cannot be read.
const FALLBACK_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

fn known_controllers(proc_cgroups: &str) -> BTreeSet<String> {
    proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// One line of mountinfo, the fields we need.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub root: String,
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub super_options: String,
}

/// Parses `/proc/self/mountinfo`, skipping malformed lines.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 4 {
            continue;
        }
        out.push(Mount {
            root: unescape(fields[3]),
            mountpoint: PathBuf::from(unescape(fields[4])),
            fstype: fields[sep + 1].to_string(),
            super_options: fields[sep + 3].to_string(),
        });
    }
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/cgroup` into (hierarchy name, path) pairs; the cgroup2 line has an
/// empty name.
pub(crate) fn parse_proc_cgroup(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(names), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::msg(format!(
                "parsing /proc/self/cgroup: bad line {line:?}"
            )));
        };
        out.push((names.to_string(), path.to_string()));
    }
    Ok(out)
}

/// Picks the best mount of a hierarchy: one whose root contains the runtime's cgroup,
/// preferring mounts under /sys/fs/cgroup, then the first.
fn pick<'a>(cands: &[&'a Mount], own: &str) -> Option<&'a Mount> {
    let score = |m: &Mount| {
        let mut s = 0;
        if m.root == "/" || own == m.root || own.starts_with(&format!("{}/", m.root)) {
            s += 2;
        }
        if m.mountpoint.starts_with("/sys/fs/cgroup") {
            s += 1;
        }
        s
    };
    let mut best: Option<&'a Mount> = None;
    for m in cands {
        if best.is_none_or(|b| score(m) > score(b)) {
            best = Some(m);
        }
    }
    best
}

/// The part of `path` below the mount's `root` (best effort when it is not below it, as
/// happens across cgroup namespaces).
fn strip_root(path: &str, root: &str) -> String {
    if root == "/" || root.is_empty() {
        return path.to_string();
    }
    if path == root {
        return "/".into();
    }
    match path.strip_prefix(root) {
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// `base` joined with an absolute cgroup path, without letting the leading `/` replace
/// `base`.
pub(crate) fn join_rel(base: &Path, path: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 /foo /mnt/with\\040space rw - cgroup cgroup rw,memory
";
    const PROC: &str = "4:name=systemd:/user.slice\n3:memory:/foo/bar\n2:cpu,cpuacct:/\n0::/x\n";

    fn known() -> BTreeSet<String> {
        FALLBACK_CONTROLLERS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_hybrid_mounts() {
        let m = Mounts::parse(MOUNTINFO, PROC, &known()).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Hybrid);
        let names: Vec<&str> = m.v1.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "name=systemd"]);
        let mem = m.v1.iter().find(|h| h.name == "memory").unwrap();
        assert_eq!(mem.mountpoint, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own_dir(), Path::new("/sys/fs/cgroup/memory/foo/bar"));
        let cpu = m.v1.iter().find(|h| h.name == "cpu,cpuacct").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        let u = m.v2.unwrap();
        assert_eq!(u.own_dir(), Path::new("/sys/fs/cgroup/unified/x"));
    }

    #[test]
    fn unescapes_and_strips_root() {
        let ms = parse_mountinfo(MOUNTINFO);
        assert_eq!(ms[5].mountpoint, Path::new("/mnt/with space"));
        assert_eq!(strip_root("/foo/bar", "/foo"), "/bar");
        assert_eq!(strip_root("/foo", "/foo"), "/");
        assert_eq!(strip_root("/foobar", "/foo"), "/foobar");
    }

    #[test]
    fn pure_v2_and_v1() {
        let mi = "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = Mounts::parse(mi, "0::/init.scope\n", &known()).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Unified);
        assert!(m.v1.is_empty());
        let mi = "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let m = Mounts::parse(mi, "1:memory:/\n", &known()).unwrap();
        assert_eq!(m.layout().unwrap(), Layout::Legacy);
        assert!(Mounts::parse("", "", &known()).unwrap().layout().is_err());
    }
}
