//! `docker cp`'s file-system side: stat a path inside a container's tree, archive it as a
//! tar, extract an uploaded tar into a directory of it.
//!
//! A [`Tree`] is a directory descriptor standing for a container's `/`: a detached mount of
//! its snapshot ([`crate::Snapshotter::open_tree`]) or, for a running container, its init
//! process's `/proc/<pid>/root` (so volumes and tmpfs mounted in the container are seen).
//!
//! # Containment (CVE-2018-15664, CVE-2019-14271)
//!
//! Paths from the client are resolved **inside** the tree: `openat2(RESOLVE_IN_ROOT)`
//! through `pathrs`, so `..` and symlinks, absolute or relative, stop at the tree's `/`
//! however they are planted or swapped while we work. Archiving walks below the resolved
//! object with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` re-opens and `O_NOFOLLOW` opens, so a
//! directory swapped for a symlink mid-walk fails the walk instead of leading out. Regular
//! files are opened non-blocking and checked to still be regular files (a FIFO swapped in
//! cannot hang the copy, a device cannot be read). Extraction is layer apply's
//! ([`crate::apply`]) in plain format, rooted at the destination directory's descriptor:
//! entry names are normalised (leading `/` dropped, `..` refused), parents are resolved
//! inside the destination, the last component is never followed, hard links may only point
//! at earlier entries of the same archive.
//!
//! Pseudo file systems met while archiving a running container (`/proc`, `/sys`, cgroups,
//! …) are archived as empty directories, as Docker, which reads the container's rootfs,
//! sees them.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::apply::{self, ApplyOptions, Extra, Format};
use crate::diff::TarOut;
use crate::error::{Context, Error};
use crate::fsutil::{self, Descend, Meta};

/// Why a copy operation failed, in the classes the API distinguishes.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The path does not exist in the tree (HTTP 404).
    #[error("no such file or directory: {0}")]
    NotFound(String),
    /// The request is wrong: a relative path, a file where a directory is needed, an
    /// archive entry that is refused (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The host failed us (HTTP 500).
    #[error(transparent)]
    Failed(#[from] Error),
}

/// What `HEAD /containers/{id}/archive` reports about a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStat {
    /// The path's last element, as Docker names it (`.` for `dir/.`, `/` for the root).
    pub name: String,
    pub size: u64,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// For a symlink: the absolute path, inside the tree, it finally resolves to.
    pub link_target: Option<String>,
}

/// Choices for [`Tree::untar`].
#[derive(Clone, Copy, Debug, Default)]
pub struct UntarOptions {
    /// Refuse to replace an existing directory by a non-directory or the reverse
    /// (`noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Give every created object this owner instead of the archive's (`docker cp` without
    /// `-a`: root of the container).
    pub owner: Option<(u32, u32)>,
}

/// A container's file tree, rooted at a directory descriptor.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
    cross_mounts: bool,
}

/// A client path split the way Docker's `ResolvePath` splits it.
struct Target {
    /// The whole path is resolved, symlinks followed (`…/`, `…/.`, `…/..`, `/`).
    follow: bool,
    /// Without `follow`: the directory part, resolved, and the last element, not followed.
    dir: Vec<u8>,
    base: Vec<u8>,
    /// The name Docker reports and archives the object under.
    name: Vec<u8>,
}

/// Magic numbers of file systems whose contents are never archived.
const PSEUDO_FS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x1cd1,      // devpts
    0x1980_0202, // mqueue
    0x7363_6673, // securityfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0xcafe_4a11, // bpf
];

fn parse(path: &str) -> Result<Target, CopyError> {
    let raw = path.as_bytes();
    if !raw.starts_with(b"/") {
        return Err(CopyError::Invalid(format!(
            "path {path:?} is not absolute: paths in a container start with /"
        )));
    }
    if raw.contains(&0) {
        return Err(CopyError::Invalid(format!("path {path:?} has a NUL byte")));
    }
    let split = raw.iter().rposition(|b| *b == b'/').unwrap_or(0);
    let (dir, base) = (&raw[..=split], &raw[split + 1..]);
    let last_normal = || {
        let mut stack: Vec<&[u8]> = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    stack.pop();
                }
                c => stack.push(c),
            }
        }
        stack.last().map_or(b"/".to_vec(), |c| c.to_vec())
    };
    Ok(match base {
        b"" | b".." => Target {
            follow: true,
            dir: Vec::new(),
            base: Vec::new(),
            name: last_normal(),
        },
        b"." => Target {
            follow: true,
            dir: Vec::new(),
            base: Vec::new(),
            name: b".".to_vec(),
        },
        _ => Target {
            follow: false,
            dir: dir.to_vec(),
            base: base.to_vec(),
            name: base.to_vec(),
        },
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Tree {
    /// A tree rooted at `root` (a directory descriptor, `O_PATH` is enough).
    /// `cross_mounts`: whether archiving descends into other file systems mounted below
    /// (a running container's volumes); pseudo file systems are never archived.
    pub fn from_fd(root: OwnedFd, cross_mounts: bool) -> Self {
        Tree { root, cross_mounts }
    }

    /// Opens the directory `path` (trusted, from the daemon) as a tree; mounts below it are
    /// crossed (meant for `/proc/<pid>/root`).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let fd = fsutil::open_dir_path(path).ctx(|| format!("opening {}", path.display()))?;
        Ok(Tree::from_fd(fd, true))
    }

    /// Resolves `p` inside the tree, following symlinks as if the tree were `/`.
    fn resolve(&self, p: &[u8], shown: &str) -> Result<OwnedFd, CopyError> {
        let rel: &[u8] = {
            let t = p.iter().position(|b| *b != b'/').unwrap_or(p.len());
            &p[t..]
        };
        if rel.is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(&self.root, 0)
                .ctx(|| "duplicating the tree's root")
                .map_err(CopyError::Failed);
        }
        match fsutil::resolve_in_root(self.root.as_fd(), rel) {
            Ok(fd) => Ok(fd),
            Err(e) => match e.raw_os_error() {
                Some(libc::ENOENT) => Err(CopyError::NotFound(shown.to_string())),
                Some(libc::ENOTDIR) => Err(CopyError::Invalid(format!(
                    "a parent of {shown} is not a directory"
                ))),
                Some(libc::ELOOP) => Err(CopyError::Invalid(format!(
                    "too many levels of symbolic links in {shown}"
                ))),
                _ => Err(CopyError::Failed(Error::Io {
                    what: format!("resolving {shown}"),
                    err: e,
                })),
            },
        }
    }

    /// The object a client path names: `(directory, name)` where `name` is `"."` when the
    /// path named a directory to follow, and its metadata.
    fn locate(&self, path: &str) -> Result<(Target, OwnedFd, OsString, Meta), CopyError> {
        let t = parse(path)?;
        if t.follow {
            let fd = self.resolve(path.as_bytes(), path)?;
            let m = fsutil::stat_fd(fd.as_fd()).ctx(|| format!("stat {path}"))?;
            if !m.is_dir() {
                return Err(CopyError::Invalid(format!("{path} is not a directory")));
            }
            return Ok((t, fd, OsString::from("."), m));
        }
        let dir = self.resolve(&t.dir, path)?;
        let dm = fsutil::stat_fd(dir.as_fd()).ctx(|| format!("stat {path}"))?;
        if !dm.is_dir() {
            return Err(CopyError::Invalid(format!(
                "a parent of {path} is not a directory"
            )));
        }
        let name = OsString::from_vec(t.base.clone());
        let m = fsutil::stat_at_opt(dir.as_fd(), &name)
            .ctx(|| format!("stat {path}"))?
            .ok_or_else(|| CopyError::NotFound(path.to_string()))?;
        Ok((t, dir, name, m))
    }

    /// `HEAD /containers/{id}/archive`: what `path` is (a final symlink is not followed;
    /// its `link_target` says where it leads).
    pub fn stat(&self, path: &str) -> Result<PathStat, CopyError> {
        let (t, _dir, _name, m) = self.locate(path)?;
        let link_target = if m.is_symlink() {
            let comps = self.canonical(path.as_bytes())?;
            let mut s = Vec::new();
            for c in comps {
                s.push(b'/');
                s.extend_from_slice(&c);
            }
            if s.is_empty() {
                s.push(b'/');
            }
            Some(lossy(&s))
        } else {
            None
        };
        Ok(PathStat {
            name: lossy(&t.name),
            size: m.size,
            mode: m.mode,
            mtime: m.mtime,
            link_target,
        })
    }

    /// Where `path` leads, as normal components from the tree's `/`: symlinks are followed
    /// lexically inside the tree (at most 40), like `RESOLVE_IN_ROOT`. For information only
    /// (a stat's link target); every real access resolves again.
    fn canonical(&self, path: &[u8]) -> Result<Vec<Vec<u8>>, CopyError> {
        let shown = lossy(path);
        fsutil::lexical_in_root(self.root.as_fd(), path, false).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                CopyError::Invalid(format!("too many levels of symbolic links in {shown}"))
            } else {
                CopyError::Failed(Error::Io {
                    what: format!("resolving {shown}"),
                    err: e,
                })
            }
        })
    }

    /// `GET /containers/{id}/archive`: `path` as a tar written to `w`, its top entry named
    /// by the path's last element (`.` for `dir/.`: the directory's contents). A final
    /// symlink is archived as a link unless the path ends in `/`. Returns the stat of what
    /// was archived (for the response header) once the tar is complete.
    pub fn tar<W: Write>(&self, path: &str, w: W) -> Result<PathStat, CopyError> {
        let stat = self.stat(path)?;
        let (t, dir, name, m) = self.locate(path)?;
        let mut out = TarOut::new(w);
        let top = PathBuf::from(OsString::from_vec(if t.name == b"/" {
            b".".to_vec()
        } else {
            t.name.clone()
        }));
        let io = |e: std::io::Error| {
            CopyError::Failed(Error::Io {
                what: format!("archiving {path}"),
                err: e,
            })
        };
        let xattrs = fsutil::list_xattrs(dir.as_fd(), &name).map_err(io)?;
        out.object(dir.as_fd(), &name, &top, &m, &xattrs)
            .map_err(io)?;
        if m.is_dir() {
            let sub = if name == "." {
                rustix::io::fcntl_dupfd_cloexec(&dir, 0).ctx(|| "duplicating a descriptor")?
            } else {
                rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("opening {path}"))?
            };
            if !self.is_pseudo(sub.as_fd()) {
                let top_dev = m.dev;
                let cross = self.cross_mounts;
                fsutil::walk_x(sub.as_fd(), Path::new(""), cross, &mut |v| {
                    let rel = top.join(v.rel);
                    let x = fsutil::list_xattrs(v.dir, v.name)?;
                    out.object(v.dir, v.name, &rel, &v.meta, &x)?;
                    if !v.meta.is_dir() || v.meta.dev == top_dev {
                        return Ok(Descend::Yes);
                    }
                    if !cross {
                        return Ok(Descend::No);
                    }
                    let d = rustix::fs::openat(
                        v.dir,
                        v.name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    Ok(if self.is_pseudo(d.as_fd()) {
                        Descend::No
                    } else {
                        Descend::Yes
                    })
                })
                .map_err(io)?;
            }
        }
        out.finish()?;
        Ok(stat)
    }

    fn is_pseudo(&self, dir: BorrowedFd<'_>) -> bool {
        match rustix::fs::fstatfs(dir) {
            #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
            Ok(s) => PSEUDO_FS.contains(&(s.f_type as i64)),
            Err(_) => true,
        }
    }

    /// `PUT /containers/{id}/archive`: extracts the tar (plain, gzip or zstd) read from `r`
    /// into the directory `path` (symlinks followed inside the tree). Returns the number of
    /// entries written.
    pub fn untar<R: Read>(&self, path: &str, r: R, opts: &UntarOptions) -> Result<u64, CopyError> {
        parse(path)?;
        let dir = self.resolve(path.as_bytes(), path)?;
        let m = fsutil::stat_fd(dir.as_fd()).ctx(|| format!("stat {path}"))?;
        if !m.is_dir() {
            return Err(CopyError::Invalid(format!(
                "extraction point is not a directory: {path}"
            )));
        }
        let aopts = ApplyOptions::default();
        let extra = Extra {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            owner: opts.owner,
        };
        match apply::apply_fd(r, dir, &aopts, Format::Plain, extra) {
            Ok(a) => Ok(a.entries),
            Err(Error::Entry { entry, reason }) => Err(CopyError::Invalid(format!(
                "archive entry {entry:?}: {reason}"
            ))),
            Err(Error::Archive(m)) => Err(CopyError::Invalid(format!("archive: {m}"))),
            Err(e) => Err(CopyError::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_docker() {
        let t = parse("/a/b").unwrap();
        assert!(!t.follow);
        assert_eq!(
            (t.dir.as_slice(), t.base.as_slice()),
            (&b"/a/"[..], &b"b"[..])
        );
        let t = parse("/a/b/").unwrap();
        assert!(t.follow);
        assert_eq!(t.name, b"b");
        let t = parse("/a/b/.").unwrap();
        assert!(t.follow);
        assert_eq!(t.name, b".");
        assert_eq!(parse("/").unwrap().name, b"/");
        assert_eq!(parse("/a/b/..").unwrap().name, b"a");
        assert!(matches!(parse("a/b"), Err(CopyError::Invalid(_))));
        assert!(matches!(parse(""), Err(CopyError::Invalid(_))));
    }
}
