//! Low-level, fd-relative file-system helpers shared by the drivers, layer apply and diff.
//!
//! Everything here works relative to directory file descriptors and never follows a symlink:
//! trees under a snapshot root hold image content, and image content is hostile until proven
//! otherwise. Directories inside our own trees are opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` (a component-by-component `O_NOFOLLOW` walk where openat2 is missing),
//! so a symlink planted in a layer can never redirect a walk, a copy or a removal.
//!
//! Walks hold at most a couple of descriptors at a time (a directory is re-opened after each
//! sub-directory), so a deeply nested hostile tree cannot exhaust the descriptor table.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

/// Type bits of `st_mode`.
pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFLNK: u32 = 0o120000;
pub(crate) const S_IFCHR: u32 = 0o020000;
pub(crate) const S_IFBLK: u32 = 0o060000;
pub(crate) const S_IFIFO: u32 = 0o010000;

/// The overlayfs xattr marking a directory opaque.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Prefix of every overlayfs-private xattr; never taken from, nor written to, a layer tar.
pub(crate) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// The stat fields the crate uses, in fixed-width types on every architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub blocks: u64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
}

impl Meta {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Self {
        Meta {
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size as u64,
            rdev: st.st_rdev as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            blocks: st.st_blocks as u64,
            atime: (st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        }
    }

    pub(crate) fn kind(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub(crate) fn is_dir(&self) -> bool {
        self.kind() == S_IFDIR
    }
    pub(crate) fn is_symlink(&self) -> bool {
        self.kind() == S_IFLNK
    }
    /// An overlayfs whiteout: a character device 0:0.
    pub(crate) fn is_whiteout(&self) -> bool {
        self.kind() == S_IFCHR && self.rdev == 0
    }
    /// Permission bits including setuid, setgid and sticky.
    pub(crate) fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

pub(crate) fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Opens `path` (trusted, from the caller) as an `O_PATH` directory descriptor.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` inside `dir`.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Meta> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Meta::from_stat(&st))
}

/// `lstat` of `name` inside `dir`, `None` if it does not exist.
pub(crate) fn stat_at_opt(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Meta>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Meta::from_stat(&st))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `fstat` of an fd.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::fstat(fd)?))
}

/// Opens directory `rel` below `base` for reading, refusing symlinks in every component, any
/// escape from `base` and any mount-point crossing. An empty `rel` opens `base` itself.
pub(crate) fn open_dir_beneath(base: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    open_dir_beneath_x(base, rel, false)
}

/// [`open_dir_beneath`], crossing mount points when `cross_mounts` (a running container's
/// tree, where volumes and tmpfs are mounted; never for removals).
pub(crate) fn open_dir_beneath_x(
    base: BorrowedFd<'_>,
    rel: &Path,
    cross_mounts: bool,
) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if rel.as_os_str().is_empty() {
        return Ok(rustix::fs::openat(base, ".", flags, Mode::empty())?);
    }
    // NO_XDEV: our trees never contain mount points; a walk or a removal must not wander
    // into something mounted inside one (deleting through a mount would be a disaster).
    let mut resolve =
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    if !cross_mounts {
        resolve |= ResolveFlags::NO_XDEV;
    }
    match rustix::fs::openat2(base, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOSYS) => open_dir_walk(base, rel, flags),
        Err(rustix::io::Errno::AGAIN) => {
            // openat2 may ask for a retry when a rename raced with the lookup.
            Ok(rustix::fs::openat2(
                base,
                rel,
                flags,
                Mode::empty(),
                resolve,
            )?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The pre-openat2 fallback: one `O_NOFOLLOW` open per component.
fn open_dir_walk(base: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let mut cur = rustix::fs::openat(base, ".", flags, Mode::empty())?;
    for c in rel.components() {
        match c {
            Component::Normal(n) => cur = rustix::fs::openat(&cur, n, flags, Mode::empty())?,
            Component::CurDir => {}
            _ => return Err(io::Error::from_raw_os_error(libc::EXDEV)),
        }
    }
    Ok(cur)
}

/// Resolves `path` inside the tree at `root`, symlinks followed as if `root` were `/`
/// (`RESOLVE_IN_ROOT` through pathrs). The kernel refuses some lookups with `EAGAIN` when a
/// `..` met a mount or rename anywhere on the system (and always, it seems, for `..` in a
/// detached mount); then the path is resolved lexically instead, reading each symlink
/// inside the tree (at most 40), and the result, which has no `..` and no symlink left, is
/// opened with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a swap racing with it fails the
/// open rather than leading out.
pub(crate) fn resolve_in_root(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    let r = crate::error::retry_again(|| {
        pathrs::RootRef::from_fd(root)
            .resolve(OsStr::from_bytes(path))
            .map(OwnedFd::from)
            .map_err(crate::error::pathrs_io)
    });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            let comps = lexical_in_root(root, path, true)?;
            let rel = PathBuf::from(OsString::from_vec(comps.join(&b'/')));
            if rel.as_os_str().is_empty() {
                return Ok(rustix::io::fcntl_dupfd_cloexec(root, 0)?);
            }
            Ok(crate::error::retry_again(|| {
                Ok(rustix::fs::openat2(
                    root,
                    &rel,
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                )?)
            })?)
        }
        r => r,
    }
}

/// Where `path` leads inside the tree at `root`, as normal components: symlinks read and
/// followed lexically (absolute ones from `root`, `..` stopping at it), at most 40. A
/// missing component is `ENOENT` when `strict`; otherwise the rest is taken as written.
pub(crate) fn lexical_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    strict: bool,
) -> io::Result<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut todo: std::collections::VecDeque<Vec<u8>> =
        path.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = todo.pop_front() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                out.pop();
                continue;
            }
            _ if missing => {
                out.push(c);
                continue;
            }
            _ => {}
        }
        let rel = PathBuf::from(OsString::from_vec(out.join(&b'/')));
        let dir = open_dir_beneath_x(root, &rel, true)?;
        let Some(m) = stat_at_opt(dir.as_fd(), OsStr::from_bytes(&c))? else {
            if strict {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            missing = true;
            out.push(c);
            continue;
        };
        if !m.is_symlink() {
            out.push(c);
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = rustix::fs::readlinkat(&dir, OsStr::from_bytes(&c), Vec::new())?.into_bytes();
        if target.starts_with(b"/") {
            out.clear();
        }
        for t in target.split(|b| *b == b'/').rev() {
            todo.push_front(t.to_vec());
        }
    }
    Ok(out)
}

/// The names in a directory (not `.` and `..`), sorted bytewise for stable walks.
pub(crate) fn read_dir_sorted(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = rustix::fs::Dir::new(fd)?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push(OsString::from_vec(n.to_vec()));
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// `/proc/self/fd/<dir>/<name>`: a path for the `l*xattr` calls, which have no `*at` form.
/// The magic link pins the directory; `name` is a single component looked up without
/// following a final symlink by the `l*` calls.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// `name` is the directory itself (`""` or `"."`).
fn is_self(name: &OsStr) -> bool {
    name.is_empty() || name == "."
}

/// A readable descriptor of `dir` itself, for the `f*xattr` calls (an `O_PATH` descriptor
/// does not take them, and `l*` calls on a bare magic link would act on the link).
fn reopen_self(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Reads a variable-size xattr value or list: `query` asks the size, `fill` reads into a
/// buffer of that size (retried if it grew meanwhile). `None` when absent or unsupported.
fn sized_read(
    mut query: impl FnMut() -> rustix::io::Result<usize>,
    mut fill: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Option<Vec<u8>>> {
    loop {
        let n = match query() {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = vec![0u8; n];
        match fill(&mut buf[..]) {
            Ok(m) => {
                buf.truncate(m);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// All xattrs of `name` in `dir` (not following symlinks), sorted by key.
pub(crate) fn list_xattrs(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use rustix::fs as f;
    let selfd = if is_self(name) {
        Some(reopen_self(dir)?)
    } else {
        None
    };
    let path = proc_path(dir, name);
    let keys = match &selfd {
        Some(fd) => sized_read(|| f::flistxattr_query(fd), |b| f::flistxattr(fd, b))?,
        None => sized_read(|| f::llistxattr_query(&path), |b| f::llistxattr(&path, b))?,
    };
    let Some(keys) = keys else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for key in keys.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let k = cstr(key)?;
        let v = match &selfd {
            Some(fd) => sized_read(|| f::fgetxattr_query(fd, &k), |b| f::fgetxattr(fd, &k, b))?,
            None => sized_read(
                || f::lgetxattr_query(&path, &k),
                |b| f::lgetxattr(&path, &k, b),
            )?,
        };
        if let Some(v) = v {
            out.push((key.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr of `name` in `dir`, `None` if it is not set.
pub(crate) fn get_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &str,
) -> io::Result<Option<Vec<u8>>> {
    use rustix::fs as f;
    let k = cstr(key.as_bytes())?;
    if is_self(name) {
        let fd = reopen_self(dir)?;
        return sized_read(|| f::fgetxattr_query(&fd, &k), |b| f::fgetxattr(&fd, &k, b));
    }
    let path = proc_path(dir, name);
    sized_read(
        || f::lgetxattr_query(&path, &k),
        |b| f::lgetxattr(&path, &k, b),
    )
}

/// Sets one xattr on `name` in `dir` without following a symlink.
pub(crate) fn set_xattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let k = cstr(key)?;
    if is_self(name) {
        let fd = reopen_self(dir)?;
        rustix::fs::fsetxattr(&fd, &k, value, rustix::fs::XattrFlags::empty())?;
    } else {
        rustix::fs::lsetxattr(
            proc_path(dir, name),
            &k,
            value,
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}

/// `utimensat(dir, name, …, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn set_times(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    atime: (i64, i64),
    mtime: (i64, i64),
) -> io::Result<()> {
    let ts = |(s, n): (i64, i64)| Timespec {
        tv_sec: s,
        tv_nsec: n.clamp(0, 999_999_999) as _,
    };
    let t = Timestamps {
        last_access: ts(atime),
        last_modification: ts(mtime),
    };
    let name: &OsStr = if name.is_empty() {
        OsStr::new(".")
    } else {
        name
    };
    rustix::fs::utimensat(dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Removes `name` inside `dir` and, for a directory, everything below it. Never follows a
/// symlink; a missing `name` is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let Some(meta) = stat_at_opt(dir, name)? else {
        return Ok(());
    };
    if !meta.is_dir() {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    remove_contents(dir, Path::new(name))?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Empties directory `rel` below `base` (recursively, without following symlinks). Each level
/// re-opens its directory by a `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` path, so only one
/// descriptor is open at a time whatever the depth.
pub(crate) fn remove_contents(base: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
    let names = {
        let d = open_dir_beneath(base, rel)?;
        let names = read_dir_sorted(d.as_fd())?;
        let mut subdirs = Vec::new();
        for n in names {
            match stat_at_opt(d.as_fd(), &n)? {
                Some(m) if m.is_dir() => subdirs.push(n),
                Some(_) => match rustix::fs::unlinkat(&d, &n, AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                    Err(e) => return Err(e.into()),
                },
                None => {}
            }
        }
        subdirs
    };
    for n in names {
        let child = rel.join(&n);
        remove_contents(base, &child)?;
        let d = open_dir_beneath(base, rel)?;
        match rustix::fs::unlinkat(&d, &n, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes a trusted path (a snapshot directory) and everything below it.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let dir = match open_dir_path(parent) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_all_at(dir.as_fd(), name)
}

/// What a walk callback wants done with a directory it was shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Descend {
    Yes,
    No,
}

/// One object met by [`walk`].
pub(crate) struct Visit<'a> {
    /// Path relative to the walk's base (no leading slash).
    pub rel: &'a Path,
    /// The object's name in its directory.
    pub name: &'a OsStr,
    /// The directory holding it.
    pub dir: BorrowedFd<'a>,
    pub meta: Meta,
}

/// Walks the tree below `base`/`rel` depth-first, pre-order, each directory's entries in
/// bytewise order, never following symlinks. The callback decides whether to enter
/// directories.
pub(crate) fn walk<F>(base: BorrowedFd<'_>, rel: &Path, f: &mut F) -> io::Result<()>
where
    F: FnMut(&Visit<'_>) -> io::Result<Descend>,
{
    walk_x(base, rel, false, f)
}

/// [`walk`], crossing mount points when `cross_mounts` (see [`open_dir_beneath_x`]).
pub(crate) fn walk_x<F>(
    base: BorrowedFd<'_>,
    rel: &Path,
    cross_mounts: bool,
    f: &mut F,
) -> io::Result<()>
where
    F: FnMut(&Visit<'_>) -> io::Result<Descend>,
{
    let open = |r: &Path| open_dir_beneath_x(base, r, cross_mounts);
    let mut dir = Some(open(rel)?);
    let names = match &dir {
        Some(d) => read_dir_sorted(d.as_fd())?,
        None => Vec::new(),
    };
    for name in names {
        let d = match dir.take() {
            Some(d) => d,
            None => open(rel)?,
        };
        let Some(meta) = stat_at_opt(d.as_fd(), &name)? else {
            dir = Some(d);
            continue;
        };
        let child = rel.join(&name);
        let descend = f(&Visit {
            rel: &child,
            name: &name,
            dir: d.as_fd(),
            meta,
        })?;
        if meta.is_dir() && descend == Descend::Yes {
            drop(d);
            walk_x(base, &child, cross_mounts, f)?;
        } else {
            dir = Some(d);
        }
    }
    Ok(())
}

/// Bytes of a path, for sets and sorting.
pub(crate) fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, rename; with
/// `durable`, the file is fsynced before the rename and the directory after it.
pub(crate) fn write_atomic(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `mknodat` with an explicit file type.
pub(crate) fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: u32,
    perm: u32,
    rdev: u64,
) -> io::Result<()> {
    let ft = rustix::fs::FileType::from_raw_mode(kind);
    rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(perm & 0o7777), rdev as _)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_sorted_and_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("b");
        std::fs::create_dir_all(base.join("z/y")).unwrap();
        std::fs::write(base.join("a"), b"").unwrap();
        std::os::unix::fs::symlink("/", base.join("m")).unwrap();
        let fd = open_dir_path(&base).unwrap();
        let mut seen = Vec::new();
        walk(fd.as_fd(), Path::new(""), &mut |v| {
            seen.push(v.rel.to_path_buf());
            Ok(Descend::Yes)
        })
        .unwrap();
        assert_eq!(seen, ["a", "m", "z", "z/y"].map(PathBuf::from));
        assert!(open_dir_beneath(fd.as_fd(), Path::new("m")).is_err());
        remove_all_at(fd.as_fd(), OsStr::new("z")).unwrap();
        assert!(!base.join("z").exists());
        assert!(Path::new("/etc").exists());
    }

    #[test]
    fn removal_never_crosses_a_mount_point() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("tree/mnt");
        std::fs::create_dir_all(&victim).unwrap();
        rustix::mount::mount(
            "tmpfs",
            &victim,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .unwrap();
        std::fs::write(victim.join("precious"), b"p").unwrap();
        let r = remove_tree(&t.path().join("tree"));
        let still = std::fs::read(victim.join("precious"));
        rustix::mount::unmount(&victim, rustix::mount::UnmountFlags::DETACH).unwrap();
        assert!(r.is_err(), "removal went through a mount point");
        assert_eq!(still.unwrap(), b"p");
    }
}
