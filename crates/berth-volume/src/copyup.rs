//! Copy-up: a new, empty volume takes the content the image has at the volume's path, as
//! Docker does the first time a container uses it.
//!
//! The source path is resolved inside the container's root file system component by
//! component, symlinks interpreted as the container sees them (an absolute target starts
//! again at the rootfs); a symlink whose `..` would climb above the rootfs is refused rather
//! than clamped. The final lookup goes through `pathrs` (`openat2(RESOLVE_IN_ROOT)`), so a
//! tree changed under our feet still cannot lead outside. The copy walks descriptors opened
//! with `O_NOFOLLOW` and creates everything with `*at` calls in directories it created;
//! symlinks are copied as links, never followed.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use pathrs::Root;
use pathrs::flags::OpenFlags;
use rustix::fs::{AtFlags, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use tracing::{debug, warn};

use crate::error::{Error, Result, pathrs_io};

/// The deepest directory nesting walked (two descriptors are open per level).
pub(crate) const MAX_DEPTH: usize = 256;
/// Symlinks followed while resolving the source path, as the kernel's limit.
const MAX_LINKS: usize = 40;

pub(crate) fn copy_up(name: &str, data: &Path, rootfs: &Path, path: &str) -> Result<bool> {
    let dst = rustix::fs::open(
        data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(name, format!("open {}", data.display()), e))?;
    if !is_empty(dst.as_fd()).map_err(|e| Error::io(name, "read volume", e))? {
        debug!(volume = name, "volume not empty: no copy-up");
        return Ok(false);
    }
    let root = Root::open(rootfs).map_err(|e| {
        Error::io(
            name,
            format!("open rootfs {}", rootfs.display()),
            pathrs_io(e),
        )
    })?;
    let Some(rel) = resolve(&root, path).map_err(|e| match e {
        Resolve::Escape => Error::Escape {
            name: name.to_string(),
            path: path.to_string(),
        },
        Resolve::Io(e) => Error::io(name, format!("resolve {path} in the rootfs"), e),
    })?
    else {
        return Ok(false);
    };
    let src = match root.resolve_nofollow(&rel) {
        Ok(h) => h,
        Err(e) => {
            return Err(Error::io(
                name,
                format!("open {path} in the rootfs"),
                pathrs_io(e),
            ));
        }
    };
    let st = rustix::fs::fstat(&src).map_err(|e| Error::io(name, format!("stat {path}"), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Ok(false);
    }
    let src: OwnedFd = src
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
        .map_err(|e| Error::io(name, format!("open {path} in the rootfs"), pathrs_io(e)))?
        .into();
    let mut c = Copier {
        dst_root: dst.as_fd(),
        links: HashMap::new(),
    };
    let what = || format!("copy {path} from the image into the volume");
    c.dir(src.as_fd(), dst.as_fd(), Path::new(""), 0)
        .map_err(|e| Error::io(name, what(), e))?;
    // The volume's root takes the owner and mode of the image's directory, as in Docker.
    set_meta(
        dst.as_fd(),
        OsStr::new(""),
        &rustix::fs::fstat(&src).map_err(|e| Error::io(name, what(), e))?,
        &list_xattrs(src.as_fd(), OsStr::new("")).map_err(|e| Error::io(name, what(), e))?,
    )
    .map_err(|e| Error::io(name, what(), e))?;
    debug!(volume = name, path, "copied image content into the volume");
    Ok(true)
}

fn is_empty(dir: BorrowedFd<'_>) -> io::Result<bool> {
    for e in rustix::fs::Dir::read_from(dir)? {
        let b = e?.file_name().to_bytes().to_vec();
        if b != b"." && b != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

enum Resolve {
    Escape,
    Io(io::Error),
}

/// Resolves `path` inside `root` to a path without symlinks (relative to the root), `None`
/// if something on the way does not exist or is not a directory.
fn resolve(root: &Root, path: &str) -> Result<Option<PathBuf>, Resolve> {
    // The given path is cleaned lexically first: `..` at the top stays at the top.
    let mut pending: Vec<(OsString, bool)> = Vec::new(); // reversed: (component, from a link)
    push_components(&mut pending, Path::new(path), false);
    let mut stack: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some((c, from_link)) = pending.pop() {
        if c == ".." {
            if stack.pop().is_none() && from_link {
                return Err(Resolve::Escape);
            }
            continue;
        }
        stack.push(c);
        let here: PathBuf = stack.iter().collect();
        let h = match root.resolve_nofollow(&here) {
            Ok(h) => h,
            Err(e) => {
                let e = pathrs_io(e);
                return match e.raw_os_error() {
                    Some(libc::ENOENT | libc::ENOTDIR) => Ok(None),
                    _ => Err(Resolve::Io(e)),
                };
            }
        };
        let st = rustix::fs::fstat(&h).map_err(|e| Resolve::Io(e.into()))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(Resolve::Io(io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = root
                .readlink(&here)
                .map_err(|e| Resolve::Io(pathrs_io(e)))?;
            stack.pop();
            if target.is_absolute() {
                stack.clear();
            }
            push_components(&mut pending, &target, true);
        }
    }
    Ok(Some(stack.iter().collect()))
}

/// Pushes the components of `p` onto `pending` so that they pop in order.
fn push_components(pending: &mut Vec<(OsString, bool)>, p: &Path, from_link: bool) {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_os_string()),
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending.extend(parts.into_iter().rev().map(|c| (c, from_link)));
}

type Xattrs = Vec<(CString, Vec<u8>)>;

struct Copier<'a> {
    dst_root: BorrowedFd<'a>,
    /// First copy of each multiply-linked inode: (dev, ino) → path in the volume.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier<'_> {
    fn dir(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        rel: &Path,
        depth: usize,
    ) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::other("directory tree too deep"));
        }
        let mut names = Vec::new();
        for e in rustix::fs::Dir::read_from(src)? {
            let b = e?.file_name().to_bytes().to_vec();
            if b != b"." && b != b".." {
                names.push(OsString::from(OsStr::from_bytes(&b)));
            }
        }
        for name in names {
            let name = name.as_os_str();
            let st = match rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let here = rel.join(name);
            let kind = st.st_mode & libc::S_IFMT;
            #[allow(clippy::unnecessary_cast)]
            let key = (st.st_dev as u64, st.st_ino as u64);
            #[allow(clippy::unnecessary_cast)]
            if kind != libc::S_IFDIR && st.st_nlink as u64 > 1 {
                if let Some(first) = self.links.get(&key) {
                    rustix::fs::linkat(
                        self.dst_root,
                        first.as_path(),
                        dst,
                        name,
                        AtFlags::empty(),
                    )?;
                    continue;
                }
                self.links.insert(key, here.clone());
            }
            let xattrs = list_xattrs(src, name)?;
            match kind {
                libc::S_IFDIR => {
                    rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let s = rustix::fs::openat(src, name, flags, Mode::empty())?;
                    let d = rustix::fs::openat(dst, name, flags, Mode::empty())?;
                    self.dir(s.as_fd(), d.as_fd(), &here, depth + 1)?;
                }
                libc::S_IFREG => {
                    let mut s = File::from(rustix::fs::openat(
                        src,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?);
                    let mut d = File::from(rustix::fs::openat(
                        dst,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )?);
                    // std uses copy_file_range (or sendfile) here: in-kernel, no user buffer.
                    io::copy(&mut s, &mut d)?;
                }
                libc::S_IFLNK => {
                    let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                    rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
                }
                _ => {
                    #[allow(clippy::unnecessary_cast)]
                    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode as _);
                    rustix::fs::mknodat(
                        dst,
                        name,
                        ft,
                        Mode::from_raw_mode(0o600),
                        st.st_rdev as _,
                    )?;
                }
            }
            set_meta(dst, name, &st, &xattrs)?;
        }
        Ok(())
    }
}

/// The path naming `name` in `dir` for the l*xattr calls (which take no descriptor).
fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if !name.is_empty() {
        p.push(name);
    }
    p
}

fn list_xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Xattrs> {
    let path = proc_path(dir, name);
    let keys = match sized(|b| rustix::fs::llistxattr(&path, b))? {
        Some(k) => k,
        None => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for k in keys.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let key = CString::new(k).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if let Some(v) = sized(|b| rustix::fs::lgetxattr(&path, &key, b))? {
            out.push((key, v));
        }
    }
    Ok(out)
}

/// Calls a size-then-fill xattr call with a growing buffer; `None` when the file system
/// has no xattrs or the attribute vanished.
fn sized(mut f: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Owner, then mode (chown clears setuid), then xattrs (chown clears file capabilities),
/// then times; never through a symlink. `name` empty means `dir` itself.
fn set_meta(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &rustix::fs::Stat,
    xattrs: &Xattrs,
) -> io::Result<()> {
    let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let at = if name.is_empty() {
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    rustix::fs::chownat(dir, name, uid, gid, at)?;
    if !is_link {
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        if name.is_empty() {
            rustix::fs::fchmod(dir, mode)?;
        } else {
            rustix::fs::chmodat(dir, name, mode, AtFlags::empty())?;
        }
    }
    let path = proc_path(dir, name);
    for (k, v) in xattrs {
        if let Err(e) = rustix::fs::lsetxattr(&path, k, v, rustix::fs::XattrFlags::empty()) {
            warn!(path = %path.display(), xattr = ?k, error = %e, "copy-up: xattr not copied");
        }
    }
    #[allow(clippy::unnecessary_cast)]
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    };
    if name.is_empty() {
        rustix::fs::futimens(dir, &times)?;
    } else {
        rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}
