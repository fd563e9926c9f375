//! Mount descriptions (containerd's `Mount`) and the only code in the daemon that performs
//! mounts: [`mount_all`] and [`unmount`].
//!
//! # Overlay with many lower layers
//!
//! A classic `mount(2)` passes every option in one string that must fit in a page (4 KiB),
//! and 150 absolute lower paths do not. berth does, in order:
//!
//! 1. **The new mount API** (`fsopen("overlay")` + one `fsconfig(FSCONFIG_SET_STRING,
//!    "lowerdir+", path)` per layer, kernel ≥ 6.8). Each layer is its own system call, so the
//!    only limit is overlayfs' own stack depth (500). A single fsconfig string is capped at
//!    255 bytes; a longer path is passed as `/proc/self/fd/N` of an `O_PATH` descriptor, which
//!    the kernel resolves during the call. The mount is attached with `fsmount` +
//!    `move_mount`, so it appears at the target fully configured.
//! 2. **`mount(2)` with the full option string**, when it fits in a page (kernels < 6.8).
//! 3. **`mount(2)` with short relative paths** (`lowerdir=12/fs:11/fs:…`). overlayfs resolves
//!    relative paths against the caller's working directory, which is process-wide — a
//!    `chdir` in a multi-threaded tokio daemon would move every thread. Instead a short-lived
//!    dedicated OS thread calls `unshare(CLONE_FS)`, which gives *that thread alone* its own
//!    cwd/root/umask, `fchdir`s into the snapshots directory, mounts, and exits, dropping its
//!    private fs context. No fork, no re-exec, and the rest of the process never sees a cwd
//!    change. (`/proc/self/fd/N/…` paths would not help here: they are longer than `N/fs`.)
//!
//! Paths in the `lowerdir=` option of a [`Mount`] are separated by `:`; a `\`, `:` or `,`
//! inside a path is escaped with `\`, as overlayfs expects.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, OpenTreeFlags,
    UnmountFlags,
};
use tracing::{debug, warn};

use crate::error::{Context, Error, Result};

/// One mount, as containerd describes it: enough to perform it later, or to hand to an OCI
/// runtime as a `mounts` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// The file-system type: `overlay`, `bind`, or anything `mount(2)` knows.
    #[serde(rename = "type")]
    pub typ: String,
    /// The source: a path for binds, a label (`overlay`) otherwise.
    pub source: String,
    /// Options in `mount(8)` form: flags (`ro`, `rbind`, `nosuid`, …) and file-system
    /// options (`lowerdir=…`, `upperdir=…`, `workdir=…`, `index=off`, …).
    pub options: Vec<String>,
}

/// How to perform an overlay mount; [`OverlayMethod::Auto`] is what [`mount_all`] uses. The
/// others exist so tests can exercise each path on a kernel that has them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayMethod {
    /// The new mount API when the kernel takes `lowerdir+`, else mount(2) (full paths if they
    /// fit in a page, short relative paths otherwise).
    Auto,
    /// Only the new mount API (`fsopen` + `lowerdir+`).
    NewApi,
    /// Only mount(2) with the full option string.
    Legacy,
    /// Only mount(2) with relative paths from a thread with its own cwd.
    LegacyRelative,
}

/// Performs `mounts` in order, all on `target` (later ones stack on earlier ones, as
/// containerd does). On failure, whatever was already mounted on `target` is unmounted.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target, OverlayMethod::Auto) {
            if i > 0 {
                let _ = unmount(target);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Performs one mount on `target`, with overlay done by `method`.
pub fn mount_with(m: &Mount, target: &Path, method: OverlayMethod) -> Result<()> {
    mount_one(m, target, method)
}

/// Unmounts everything stacked on `target`. A busy mount is detached lazily (`MNT_DETACH`):
/// it disappears from the tree now and is released when its last user goes. `target` not
/// being a mount point (or not existing) is not an error, so this is safe in cleanup paths.
/// Symlinks at `target` are not followed.
pub fn unmount(target: &Path) -> Result<()> {
    for _ in 0..128 {
        match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::BUSY) => {
                warn!(target = %target.display(), "mount busy, detaching lazily");
                rustix::mount::unmount(target, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                    .ctx(|| format!("detaching mount {}", target.display()))?;
            }
            Err(e) => return Err(e).ctx(|| format!("unmounting {}", target.display())),
        }
    }
    Err(Error::msg(format!(
        "unmounting {}: still mounted after 128 unmounts",
        target.display()
    )))
}

/// Whether `target` is currently a mount point (its own entry in `/proc/self/mountinfo`).
pub fn is_mount_point(target: &Path) -> Result<bool> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "reading /proc/self/mountinfo")?;
    let want = target.as_os_str().as_bytes();
    Ok(info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp).as_bytes() == want)
    }))
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes a path for an overlay option value (`\`, `:` and `,` get a backslash).
pub(crate) fn escape_overlay_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits a `lowerdir=` value on unescaped `:` and removes the escapes.
fn split_lowerdirs(v: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
            }
            ':' => out.push(PathBuf::from(std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out
}

fn unescape(v: &str) -> PathBuf {
    split_lowerdirs(v).into_iter().next().unwrap_or_default()
}

/// Options split into mount flags and file-system data.
#[derive(Debug)]
struct Parsed {
    flags: MountFlags,
    attrs: MountAttrFlags,
    bind: bool,
    recursive: bool,
    data: Vec<String>,
}

fn parse_options(opts: &[String]) -> Parsed {
    let mut p = Parsed {
        flags: MountFlags::empty(),
        attrs: MountAttrFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for o in opts {
        let (f, a) = match o.as_str() {
            "ro" => (MountFlags::RDONLY, MountAttrFlags::MOUNT_ATTR_RDONLY),
            "rw" => (MountFlags::empty(), MountAttrFlags::empty()),
            "nosuid" => (MountFlags::NOSUID, MountAttrFlags::MOUNT_ATTR_NOSUID),
            "nodev" => (MountFlags::NODEV, MountAttrFlags::MOUNT_ATTR_NODEV),
            "noexec" => (MountFlags::NOEXEC, MountAttrFlags::MOUNT_ATTR_NOEXEC),
            "noatime" => (MountFlags::NOATIME, MountAttrFlags::MOUNT_ATTR_NOATIME),
            "nodiratime" => (
                MountFlags::NODIRATIME,
                MountAttrFlags::MOUNT_ATTR_NODIRATIME,
            ),
            "relatime" => (MountFlags::RELATIME, MountAttrFlags::MOUNT_ATTR_RELATIME),
            "strictatime" => (
                MountFlags::STRICTATIME,
                MountAttrFlags::MOUNT_ATTR_STRICTATIME,
            ),
            "suid" | "dev" | "exec" | "atime" | "diratime" | "defaults" => {
                (MountFlags::empty(), MountAttrFlags::empty())
            }
            "bind" => {
                p.bind = true;
                (MountFlags::BIND, MountAttrFlags::empty())
            }
            "rbind" => {
                p.bind = true;
                p.recursive = true;
                (MountFlags::BIND | MountFlags::REC, MountAttrFlags::empty())
            }
            other => {
                p.data.push(other.to_string());
                (MountFlags::empty(), MountAttrFlags::empty())
            }
        };
        p.flags |= f;
        p.attrs |= a;
    }
    p
}

fn mount_one(m: &Mount, target: &Path, method: OverlayMethod) -> Result<()> {
    let p = parse_options(&m.options);
    debug!(typ = %m.typ, source = %m.source, target = %target.display(), "mount");
    if m.typ == "bind" || p.bind {
        return mount_bind(m, &p, target);
    }
    if m.typ == "overlay" {
        return mount_overlay(m, &p, target, method);
    }
    let data = CString::new(p.data.join(","))
        .map_err(|_| Error::msg("mount options contain a NUL byte"))?;
    rustix::mount::mount(
        m.source.as_str(),
        target,
        m.typ.as_str(),
        p.flags,
        (!p.data.is_empty()).then_some(data.as_c_str()),
    )
    .ctx(|| format!("mounting {} ({}) on {}", m.source, m.typ, target.display()))
}

/// A bind mount, attached atomically with its final flags where `open_tree` exists.
fn mount_bind(m: &Mount, p: &Parsed, target: &Path) -> Result<()> {
    let what = || format!("bind-mounting {} on {}", m.source, target.display());
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if p.recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    match rustix::mount::open_tree(rustix::fs::CWD, m.source.as_str(), flags) {
        Ok(tree) => {
            if !p.attrs.is_empty() {
                mount_setattr(tree.as_fd(), p.recursive, p.attrs.bits().into()).ctx(what)?;
            }
            rustix::mount::move_mount(
                tree.as_fd(),
                "",
                rustix::fs::CWD,
                target,
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .ctx(what)
        }
        Err(rustix::io::Errno::NOSYS) => {
            let src = m.source.as_str();
            if p.recursive {
                rustix::mount::mount_bind_recursive(src, target).ctx(what)?;
            } else {
                rustix::mount::mount_bind(src, target).ctx(what)?;
            }
            let extra = p.flags - (MountFlags::BIND | MountFlags::REC);
            if !extra.is_empty()
                && let Err(e) = rustix::mount::mount_remount(target, MountFlags::BIND | extra, "")
            {
                let _ = unmount(target);
                return Err(e).ctx(what);
            }
            Ok(())
        }
        Err(e) => Err(e).ctx(what),
    }
}

/// mount_setattr(2) on a detached tree (`AT_EMPTY_PATH`).
fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid fd, an empty NUL-terminated path, a correctly sized struct that lives
    // for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An overlay mount's layers, unescaped.
struct OverlayLayers {
    lowers: Vec<PathBuf>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    /// Other file-system options (`index=off`, `userxattr`, …).
    other: Vec<String>,
}

fn overlay_layers(p: &Parsed) -> Result<OverlayLayers> {
    let mut l = OverlayLayers {
        lowers: Vec::new(),
        upper: None,
        work: None,
        other: Vec::new(),
    };
    for d in &p.data {
        if let Some(v) = d.strip_prefix("lowerdir=") {
            l.lowers.extend(split_lowerdirs(v));
        } else if let Some(v) = d.strip_prefix("lowerdir+=") {
            l.lowers.push(unescape(v));
        } else if let Some(v) = d.strip_prefix("upperdir=") {
            l.upper = Some(unescape(v));
        } else if let Some(v) = d.strip_prefix("workdir=") {
            l.work = Some(unescape(v));
        } else {
            l.other.push(d.clone());
        }
    }
    if l.lowers.is_empty() {
        return Err(Error::msg("overlay mount without a lowerdir"));
    }
    if l.upper.is_some() != l.work.is_some() {
        return Err(Error::msg(
            "overlay mount needs both upperdir and workdir, or neither",
        ));
    }
    Ok(l)
}

fn mount_overlay(m: &Mount, p: &Parsed, target: &Path, method: OverlayMethod) -> Result<()> {
    let layers = overlay_layers(p)?;
    let what = || {
        format!(
            "mounting overlay ({} lower layers) on {}",
            layers.lowers.len(),
            target.display()
        )
    };
    match method {
        OverlayMethod::NewApi => overlay_new_api(m, p, &layers, target).ctx(what),
        OverlayMethod::Legacy => overlay_legacy(p, &layers, target, false).ctx(what),
        OverlayMethod::LegacyRelative => overlay_legacy(p, &layers, target, true).ctx(what),
        OverlayMethod::Auto => match overlay_new_api(m, p, &layers, target) {
            Ok(()) => Ok(()),
            Err(new_err) => {
                // ENOSYS/EPERM (no new API), EINVAL on `lowerdir+` (kernel < 6.8), or a
                // kernel that only fails at create time: try mount(2) before giving up.
                debug!(error = %new_err, "overlay via the new mount API failed, trying mount(2)");
                let legacy =
                    overlay_legacy(p, &layers, target, false).or_else(|e| match e.raw_os_error() {
                        Some(libc::E2BIG) => overlay_legacy(p, &layers, target, true),
                        _ => Err(e),
                    });
                legacy.map_err(|e| Error::Io {
                    what: format!("{} (new mount API: {new_err})", what()),
                    err: e,
                })
            }
        },
    }
}

/// fsconfig string values are capped at 256 bytes including the NUL.
const FSCONFIG_STRING_MAX: usize = 255;

fn overlay_new_api(m: &Mount, p: &Parsed, l: &OverlayLayers, target: &Path) -> io::Result<()> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let fail = |fs: &OwnedFd, e: rustix::io::Errno, what: &str| -> io::Error {
        let log = read_fs_log(fs.as_fd());
        if log.is_empty() {
            io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
        } else {
            io::Error::new(io::Error::from(e).kind(), format!("{what}: {e} ({log})"))
        }
    };
    let source = if m.source.is_empty() {
        "overlay"
    } else {
        m.source.as_str()
    };
    if source.len() <= FSCONFIG_STRING_MAX {
        rustix::mount::fsconfig_set_string(&fs, "source", source)
            .map_err(|e| fail(&fs, e, "overlay source"))?;
    }
    for lower in &l.lowers {
        let (value, _pin) = fsconfig_path(lower)?;
        rustix::mount::fsconfig_set_string(&fs, "lowerdir+", value.as_str())
            .map_err(|e| fail(&fs, e, &format!("lower layer {}", lower.display())))?;
    }
    if let (Some(upper), Some(work)) = (&l.upper, &l.work) {
        let (v, _pin_u) = fsconfig_path(upper)?;
        rustix::mount::fsconfig_set_string(&fs, "upperdir", v.as_str())
            .map_err(|e| fail(&fs, e, &format!("upperdir {}", upper.display())))?;
        let (v, _pin_w) = fsconfig_path(work)?;
        rustix::mount::fsconfig_set_string(&fs, "workdir", v.as_str())
            .map_err(|e| fail(&fs, e, &format!("workdir {}", work.display())))?;
    }
    for o in &l.other {
        let r = match o.split_once('=') {
            Some((k, v)) => rustix::mount::fsconfig_set_string(&fs, k, v),
            None => rustix::mount::fsconfig_set_flag(&fs, o.as_str()),
        };
        r.map_err(|e| fail(&fs, e, &format!("overlay option {o}")))?;
    }
    rustix::mount::fsconfig_create(&fs).map_err(|e| fail(&fs, e, "creating overlay"))?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, p.attrs)
        .map_err(|e| fail(&fs, e, "fsmount"))?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// The value to pass for a layer path: the escaped path itself when it fits an fsconfig
/// string, else `/proc/self/fd/N` of an `O_PATH` descriptor (returned to keep it open until
/// the call has resolved it).
fn fsconfig_path(p: &Path) -> io::Result<(String, Option<OwnedFd>)> {
    let esc = escape_overlay_path(p);
    if esc.len() <= FSCONFIG_STRING_MAX {
        return Ok((esc, None));
    }
    let fd = rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((format!("/proc/self/fd/{}", fd.as_raw_fd()), Some(fd)))
}

/// Messages the kernel left in the fs context's log (`e overlay: …` lines).
fn read_fs_log(fs: BorrowedFd<'_>) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..16 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
            _ => break,
        }
    }
    out.join("; ")
}

fn overlay_legacy(p: &Parsed, l: &OverlayLayers, target: &Path, relative: bool) -> io::Result<()> {
    let page = rustix::param::page_size();
    if !relative {
        let data = overlay_data(l, None)?;
        if data.len() >= page {
            return Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        return legacy_mount(target, p.flags, &data);
    }
    // Short paths: everything relative to the deepest directory all layers share.
    let mut all: Vec<&Path> = l.lowers.iter().map(PathBuf::as_path).collect();
    all.extend(l.upper.as_deref());
    all.extend(l.work.as_deref());
    let base = common_ancestor(&all).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let data = overlay_data(l, Some(&base))?;
    if data.len() >= page {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options for {} lower layers need {} bytes even with relative paths (limit {page})",
                l.lowers.len(),
                data.len()
            ),
        ));
    }
    let target = std::path::absolute(target)?;
    let base_fd = rustix::fs::open(
        &base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = p.flags;
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: CLONE_FS only gives this thread its own cwd, root and umask; it does not
            // touch the descriptor table, so no other thread's fds are affected.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS)? };
            rustix::process::fchdir(&base_fd)?;
            legacy_mount(&target, flags, &data)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount thread panicked")))
    })
}

fn legacy_mount(target: &Path, flags: MountFlags, data: &str) -> io::Result<()> {
    let data = CString::new(data).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        flags,
        Some(data.as_c_str()),
    )?)
}

/// The mount(2) data string; with `base`, layer paths are made relative to it.
fn overlay_data(l: &OverlayLayers, base: Option<&Path>) -> io::Result<String> {
    let rel = |p: &Path| -> io::Result<String> {
        match base {
            None => Ok(escape_overlay_path(p)),
            Some(b) => p
                .strip_prefix(b)
                .map(|r| {
                    escape_overlay_path(if r.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        r
                    })
                })
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)),
        }
    };
    let mut parts = Vec::new();
    let lowers = l
        .lowers
        .iter()
        .map(|p| rel(p))
        .collect::<io::Result<Vec<_>>>()?;
    parts.push(format!("lowerdir={}", lowers.join(":")));
    if let (Some(u), Some(w)) = (&l.upper, &l.work) {
        parts.push(format!("upperdir={}", rel(u)?));
        parts.push(format!("workdir={}", rel(w)?));
    }
    parts.extend(l.other.iter().cloned());
    Ok(parts.join(","))
}

fn common_ancestor(paths: &[&Path]) -> Option<PathBuf> {
    let first = paths.first()?;
    let mut base: PathBuf = first.parent()?.to_path_buf();
    while !paths
        .iter()
        .all(|p| p.starts_with(&base) && *p != base.as_path())
    {
        base = base.parent()?.to_path_buf();
    }
    Some(base)
}

/// Whether this kernel can mount overlayfs: listed in `/proc/filesystems`.
pub(crate) fn overlay_listed() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false)
}

/// Whether the running kernel's overlayfs has an `index` parameter (so `index=off` is known).
pub(crate) fn overlay_has_index_param() -> bool {
    Path::new("/sys/module/overlay/parameters/index").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_escaping_round_trips() {
        let paths = [
            PathBuf::from("/a:b/c"),
            PathBuf::from("/x,y\\z"),
            PathBuf::from("/plain"),
        ];
        let joined = paths
            .iter()
            .map(|p| escape_overlay_path(p))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(split_lowerdirs(&joined), paths);
    }

    #[test]
    fn common_ancestor_of_snapshot_paths() {
        let a = Path::new("/r/snapshots/1/fs");
        let b = Path::new("/r/snapshots/22/fs");
        let c = Path::new("/r/snapshots/22/work");
        assert_eq!(
            common_ancestor(&[a, b, c]).unwrap(),
            Path::new("/r/snapshots")
        );
        assert_eq!(common_ancestor(&[a]).unwrap(), Path::new("/r/snapshots/1"));
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let p = parse_options(&["ro".into(), "rbind".into(), "index=off".into()]);
        assert!(p.bind && p.recursive);
        assert!(p.flags.contains(MountFlags::RDONLY));
        assert_eq!(p.data, ["index=off"]);
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
