//! From a snapshot's changes back to an OCI layer, and `docker diff`-style change lists.
//!
//! Two sources of changes:
//!
//! - **Overlay** ([`write_diff`], [`changes`]): the upper directory *is* the diff. Whiteouts
//!   (character devices 0:0) become `.wh.<name>` entries, opaque directories
//!   (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry. The lower directories are only
//!   consulted to tell added from changed, to list what an opaque directory hides, and to
//!   drop whiteouts that hide nothing.
//! - **Naive** ([`write_diff_naive`], [`changes_naive`]): two full trees (the copy driver)
//!   compared entry by entry: type, mode, owner, device number, xattrs, symlink target and,
//!   for non-directories, size and mtime (content is not read, as in Docker).
//!
//! Tars are written in a stable order (depth-first, names in byte order, a directory before
//! its contents) with only numeric owners and whole-second mtimes, so the same changes always
//! give the same diff_id. Long names and link targets use PAX records; xattrs go in PAX
//! `SCHILY.xattr.*` records, except overlayfs' own (`trusted.overlay.*`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use tracing::debug;

use crate::digest::{Digest, HashWriter};
use crate::error::{Context, Result};
use crate::fsutil::{self, Descend, Meta};

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// Added (`A`).
    Add,
    /// Changed: content or metadata, or, for a directory, something inside it (`C`).
    Modify,
    /// Deleted (`D`).
    Delete,
}

impl ChangeKind {
    /// Docker's letter for the change.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Add => 'A',
            ChangeKind::Modify => 'C',
            ChangeKind::Delete => 'D',
        }
    }
}

/// One change, with the path as seen from inside the container (`/etc/hosts`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: PathBuf,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}

/// The layer [`write_diff`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffResult {
    /// sha256 of the tar written.
    pub diff_id: Digest,
    /// Bytes written.
    pub size: u64,
}

/// The merged view of a stack of overlay lower directories (top first), for lookups only.
pub(crate) struct LowerStack {
    layers: Vec<OwnedFd>,
}

impl LowerStack {
    pub(crate) fn open(dirs: &[PathBuf]) -> Result<Self> {
        let layers = dirs
            .iter()
            .map(|d| {
                fsutil::open_dir_path(d).ctx(|| format!("opening lower layer {}", d.display()))
            })
            .collect::<Result<_>>()?;
        Ok(LowerStack { layers })
    }

    /// The layers contributing to directory `rel` in the merged view, top first, or `None`
    /// if `rel` is not a directory there.
    fn dir_layers(&self, rel: &Path) -> io::Result<Option<Vec<usize>>> {
        let mut active: Vec<usize> = (0..self.layers.len()).collect();
        let mut prefix = PathBuf::new();
        for comp in rel.components() {
            let name = comp.as_os_str();
            let mut next = Vec::new();
            for &l in &active {
                let Ok(d) = fsutil::open_dir_beneath(self.layers[l].as_fd(), &prefix) else {
                    continue;
                };
                match fsutil::stat_at_opt(d.as_fd(), name)? {
                    None => continue,
                    Some(m) if m.is_dir() => {
                        next.push(l);
                        if is_opaque(d.as_fd(), name)? {
                            break;
                        }
                    }
                    // A whiteout or any non-directory hides this name in all layers below.
                    Some(_) => break,
                }
            }
            if next.is_empty() {
                return Ok(None);
            }
            prefix.push(name);
            active = next;
        }
        Ok(Some(active))
    }

    /// The object at `rel` in the merged lower view.
    pub(crate) fn lookup(&self, rel: &Path) -> io::Result<Option<Meta>> {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Ok(None);
        };
        let Some(layers) = self.dir_layers(parent)? else {
            return Ok(None);
        };
        for l in layers {
            let d = fsutil::open_dir_beneath(self.layers[l].as_fd(), parent)?;
            match fsutil::stat_at_opt(d.as_fd(), name)? {
                None => continue,
                Some(m) if m.is_whiteout() => return Ok(None),
                Some(m) => return Ok(Some(m)),
            }
        }
        Ok(None)
    }

    /// The names in directory `rel` of the merged lower view.
    pub(crate) fn list(&self, rel: &Path) -> io::Result<BTreeSet<OsString>> {
        let mut seen = HashSet::new();
        let mut out = BTreeSet::new();
        let Some(layers) = self.dir_layers(rel)? else {
            return Ok(out);
        };
        for l in layers {
            let d = fsutil::open_dir_beneath(self.layers[l].as_fd(), rel)?;
            for n in fsutil::read_dir_sorted(d.as_fd())? {
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(m) = fsutil::stat_at_opt(d.as_fd(), &n)?
                    && !m.is_whiteout()
                {
                    out.insert(n);
                }
            }
        }
        Ok(out)
    }
}

fn is_opaque(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    Ok(fsutil::get_xattr(dir, name, fsutil::OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

fn slash(rel: &Path) -> PathBuf {
    Path::new("/").join(rel)
}

/// The changes an overlay upper directory makes over its lower directories (top first).
pub fn changes(lowers: &[PathBuf], upper: &Path) -> Result<Vec<Change>> {
    let stack = LowerStack::open(lowers)?;
    let up = fsutil::open_dir_path(upper).ctx(|| format!("opening upper {}", upper.display()))?;
    let mut out = Vec::new();
    fsutil::walk(up.as_fd(), Path::new(""), &mut |v| {
        if v.meta.is_whiteout() {
            out.push(Change {
                kind: ChangeKind::Delete,
                path: slash(v.rel),
            });
            return Ok(Descend::No);
        }
        let lower = stack.lookup(v.rel)?;
        let kind = if lower.is_some() {
            ChangeKind::Modify
        } else {
            ChangeKind::Add
        };
        out.push(Change {
            kind,
            path: slash(v.rel),
        });
        if v.meta.is_dir() && lower.is_some_and(|m| m.is_dir()) && is_opaque(v.dir, v.name)? {
            // Everything the lowers had here is gone, except what the upper re-created.
            let present: HashSet<OsString> = {
                let d = fsutil::open_dir_beneath(up.as_fd(), v.rel)?;
                fsutil::read_dir_sorted(d.as_fd())?.into_iter().collect()
            };
            for n in stack.list(v.rel)? {
                if !present.contains(&n) {
                    out.push(Change {
                        kind: ChangeKind::Delete,
                        path: slash(&v.rel.join(&n)),
                    });
                }
            }
        }
        Ok(Descend::Yes)
    })
    .ctx(|| format!("walking upper {}", upper.display()))?;
    sort_changes(&mut out);
    Ok(out)
}

fn sort_changes(v: &mut [Change]) {
    v.sort_by(|a, b| fsutil::path_bytes(&a.path).cmp(fsutil::path_bytes(&b.path)));
}

/// The changes from the full tree `lower` (none: an empty tree) to the full tree `upper`.
pub fn changes_naive(lower: Option<&Path>, upper: &Path) -> Result<Vec<Change>> {
    let raw = naive(lower, upper)?;
    let mut out: Vec<Change> = raw
        .into_iter()
        .map(|(kind, rel)| Change {
            kind,
            path: slash(&rel),
        })
        .collect();
    sort_changes(&mut out);
    Ok(out)
}

/// Naive comparison; results in walk order (a directory before its contents).
fn naive(lower: Option<&Path>, upper: &Path) -> Result<Vec<(ChangeKind, PathBuf)>> {
    let up = fsutil::open_dir_path(upper).ctx(|| format!("opening {}", upper.display()))?;
    let low = lower
        .map(|l| fsutil::open_dir_path(l).ctx(|| format!("opening {}", l.display())))
        .transpose()?;
    let mut out = Vec::new();
    naive_dir(
        low.as_ref().map(|f| f.as_fd()),
        up.as_fd(),
        Path::new(""),
        &mut out,
    )
    .ctx(|| format!("comparing {} with its parent", upper.display()))?;
    Ok(out)
}

fn naive_dir(
    low: Option<BorrowedFd<'_>>,
    up: BorrowedFd<'_>,
    rel: &Path,
    out: &mut Vec<(ChangeKind, PathBuf)>,
) -> io::Result<bool> {
    let ud = fsutil::open_dir_beneath(up, rel)?;
    let ld = match low {
        Some(l) => fsutil::open_dir_beneath(l, rel).ok(),
        None => None,
    };
    let unames = fsutil::read_dir_sorted(ud.as_fd())?;
    let lnames = match &ld {
        Some(d) => fsutil::read_dir_sorted(d.as_fd())?,
        None => Vec::new(),
    };
    let all: BTreeSet<Vec<u8>> = unames
        .iter()
        .chain(lnames.iter())
        .map(|n| n.as_bytes().to_vec())
        .collect();
    let mut changed = false;
    for nb in all {
        let name = OsStr::from_bytes(&nb);
        let child = rel.join(name);
        let um = fsutil::stat_at_opt(ud.as_fd(), name)?;
        let lm = match &ld {
            Some(d) => fsutil::stat_at_opt(d.as_fd(), name)?,
            None => None,
        };
        match (lm, um) {
            (None, None) => {}
            (Some(_), None) => {
                out.push((ChangeKind::Delete, child));
                changed = true;
            }
            (None, Some(um)) => {
                out.push((ChangeKind::Add, child.clone()));
                if um.is_dir() {
                    add_all(up, &child, out)?;
                }
                changed = true;
            }
            (Some(lm), Some(um)) => {
                let Some(ldir) = ld.as_ref() else { continue };
                let differs = meta_differs(ldir.as_fd(), &lm, ud.as_fd(), &um, name)?;
                if um.is_dir() && lm.is_dir() {
                    let at = out.len();
                    let sub = naive_dir(low, up, &child, out)?;
                    if differs || sub {
                        out.insert(at, (ChangeKind::Modify, child));
                        changed = true;
                    }
                } else if differs {
                    out.push((ChangeKind::Modify, child.clone()));
                    if um.is_dir() {
                        add_all(up, &child, out)?;
                    }
                    changed = true;
                }
            }
        }
    }
    Ok(changed)
}

/// Every object below `rel` in `up`, as added.
fn add_all(up: BorrowedFd<'_>, rel: &Path, out: &mut Vec<(ChangeKind, PathBuf)>) -> io::Result<()> {
    fsutil::walk(up, rel, &mut |v| {
        out.push((ChangeKind::Add, v.rel.to_path_buf()));
        Ok(Descend::Yes)
    })
}

fn meta_differs(
    ld: BorrowedFd<'_>,
    lm: &Meta,
    ud: BorrowedFd<'_>,
    um: &Meta,
    name: &OsStr,
) -> io::Result<bool> {
    if lm.mode != um.mode || lm.uid != um.uid || lm.gid != um.gid || lm.rdev != um.rdev {
        return Ok(true);
    }
    if !um.is_dir() && (lm.size != um.size || lm.mtime != um.mtime) {
        return Ok(true);
    }
    if um.is_symlink() {
        let a = rustix::fs::readlinkat(ld, name, Vec::new())?;
        let b = rustix::fs::readlinkat(ud, name, Vec::new())?;
        if a != b {
            return Ok(true);
        }
    }
    Ok(fsutil::list_xattrs(ld, name)? != fsutil::list_xattrs(ud, name)?)
}

/// Writes the OCI layer tar of an overlay upper directory to `w` and returns its diff_id.
/// `lowers` (top first) are used to drop whiteouts that hide nothing.
pub fn write_diff<W: Write>(lowers: &[PathBuf], upper: &Path, w: W) -> Result<DiffResult> {
    write_diff_skipping(lowers, upper, &[], w)
}

/// [`write_diff`], leaving out the objects at `skip` (relative paths, and all below them)
/// that the lowers do not have: mount points a runtime created, which are not the
/// container's own changes (`docker commit` keeps them out of the layer).
pub fn write_diff_skipping<W: Write>(
    lowers: &[PathBuf],
    upper: &Path,
    skip: &[PathBuf],
    w: W,
) -> Result<DiffResult> {
    let stack = LowerStack::open(lowers)?;
    let up = fsutil::open_dir_path(upper).ctx(|| format!("opening upper {}", upper.display()))?;
    let mut t = TarOut::new(w);
    fsutil::walk(up.as_fd(), Path::new(""), &mut |v| {
        if v.meta.is_whiteout() {
            if stack.lookup(v.rel)?.is_some() {
                t.whiteout(v.rel, &v.meta)?;
            } else {
                debug!(path = %v.rel.display(), "whiteout hides nothing, dropped");
            }
            return Ok(Descend::No);
        }
        if skip.iter().any(|p| p == v.rel) && stack.lookup(v.rel)?.is_none() {
            debug!(path = %v.rel.display(), "mount point left out of the diff");
            return Ok(Descend::No);
        }
        let xattrs = fsutil::list_xattrs(v.dir, v.name)?;
        if xattrs
            .iter()
            .any(|(k, _)| k == b"trusted.overlay.metacopy" || k == b"trusted.overlay.redirect")
        {
            return Err(io::Error::other(format!(
                "{}: overlay metacopy/redirect entries are not supported",
                v.rel.display()
            )));
        }
        let opaque = v.meta.is_dir()
            && xattrs
                .iter()
                .any(|(k, val)| k == fsutil::OPAQUE_XATTR.as_bytes() && val == b"y");
        t.object(v.dir, v.name, v.rel, &v.meta, &xattrs)?;
        if opaque {
            t.opaque(v.rel, &v.meta)?;
        }
        Ok(Descend::Yes)
    })
    .ctx(|| format!("writing the diff of {}", upper.display()))?;
    t.finish()
}

/// Writes the OCI layer tar turning the full tree `lower` (none: empty) into the full tree
/// `upper` (the copy driver's diff) to `w` and returns its diff_id. Every changed object's
/// parent directories are included, as Docker does, so applying it as an overlay layer keeps
/// their metadata.
pub fn write_diff_naive<W: Write>(lower: Option<&Path>, upper: &Path, w: W) -> Result<DiffResult> {
    write_diff_naive_skipping(lower, upper, &[], w)
}

/// [`write_diff_naive`] with [`write_diff_skipping`]'s `skip`.
pub fn write_diff_naive_skipping<W: Write>(
    lower: Option<&Path>,
    upper: &Path,
    skip: &[PathBuf],
    w: W,
) -> Result<DiffResult> {
    let mut changes = naive(lower, upper)?;
    changes.retain(|(kind, rel)| {
        !(*kind == ChangeKind::Add && skip.iter().any(|p| rel.starts_with(p)))
    });
    let up = fsutil::open_dir_path(upper).ctx(|| format!("opening {}", upper.display()))?;
    let mut t = TarOut::new(w);
    let mut emitted: HashSet<PathBuf> = HashSet::new();
    let what = || format!("writing the diff of {}", upper.display());
    for (kind, rel) in changes {
        // Parents first.
        let mut ancestors: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for a in ancestors {
            if emitted.insert(a.to_path_buf()) {
                emit_path(&mut t, up.as_fd(), a).ctx(what)?;
            }
        }
        match kind {
            ChangeKind::Delete => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let d = fsutil::open_dir_beneath(up.as_fd(), parent).ctx(what)?;
                let pm = fsutil::stat_fd(d.as_fd()).ctx(what)?;
                let mut m = pm;
                m.uid = 0;
                m.gid = 0;
                t.whiteout(&rel, &m).ctx(what)?;
            }
            ChangeKind::Add | ChangeKind::Modify => {
                if emitted.insert(rel.clone()) {
                    emit_path(&mut t, up.as_fd(), &rel).ctx(what)?;
                }
            }
        }
    }
    t.finish()
}

/// Writes the whole tree below `root` as a tar to `w` (`docker export`), in the same stable
/// order and format as the diffs, without an entry for `root` itself. Overlay whiteouts are
/// not special here: `root` is meant to be a merged (mounted) view, where none are visible.
/// Sockets are left out. Returns the tar's digest and length.
pub fn write_tree<W: Write>(root: BorrowedFd<'_>, w: W) -> Result<DiffResult> {
    let mut t = TarOut::new(w);
    fsutil::walk(root, Path::new(""), &mut |v| {
        let xattrs = fsutil::list_xattrs(v.dir, v.name)?;
        t.object(v.dir, v.name, v.rel, &v.meta, &xattrs)?;
        Ok(Descend::Yes)
    })
    .ctx(|| "writing the file system tar")?;
    t.finish()
}

fn emit_path<W: Write>(t: &mut TarOut<W>, base: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let d = fsutil::open_dir_beneath(base, parent)?;
    let m = fsutil::stat_at(d.as_fd(), name)?;
    let x = fsutil::list_xattrs(d.as_fd(), name)?;
    t.object(d.as_fd(), name, rel, &m, &x)
}

/// A reader that must yield exactly `left` bytes (a file changing size under the writer
/// would otherwise corrupt the tar).
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The tar writer shared by both diff flavours.
pub(crate) struct TarOut<W: Write> {
    b: tar::Builder<HashWriter<W>>,
    /// First path written for each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(w: W) -> Self {
        TarOut {
            b: tar::Builder::new(HashWriter::new(w)),
            links: HashMap::new(),
        }
    }

    fn header(kind: tar::EntryType, m: &Meta) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(m.perm());
        h.set_uid(u64::from(m.uid));
        h.set_gid(u64::from(m.gid));
        h.set_mtime(u64::try_from(m.mtime.0).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Appends one entry, with PAX records for what ustar cannot hold.
    fn append(
        &mut self,
        mut h: tar::Header,
        path: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: impl Read,
    ) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if path.starts_with(b"./") && path.len() <= 100 {
            // `docker cp dir/.` names entries `./…`, which set_path would normalise away.
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path);
        } else if path.starts_with(b"./")
            || path.len() > 255
            || h.set_path(Path::new(OsStr::from_bytes(path))).is_err()
        {
            pax.push(("path".into(), path.to_vec()));
            let short = &path[..path.len().min(99)];
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            name[..short.len()].copy_from_slice(short);
        }
        if let Some(l) = link
            && h.set_link_name_literal(l).is_err()
        {
            pax.push(("linkpath".into(), l.to_vec()));
        }
        for (k, v) in xattrs {
            if k.starts_with(fsutil::OVERLAY_XATTR_PREFIX) {
                continue;
            }
            let k =
                std::str::from_utf8(k).map_err(|_| io::Error::other("xattr name is not UTF-8"))?;
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !pax.is_empty() {
            self.b
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        h.set_cksum();
        self.b.append(&h, data)
    }

    /// One file-system object `name` in `dir`, archived as `rel`.
    pub(crate) fn object(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        m: &Meta,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> io::Result<()> {
        let path = fsutil::path_bytes(rel).to_vec();
        if !m.is_dir() && m.nlink > 1 {
            if let Some(first) = self.links.get(&(m.dev, m.ino)) {
                let first = first.clone();
                let h = Self::header(tar::EntryType::Link, m);
                return self.append(h, &path, Some(&first), &[], io::empty());
            }
            self.links.insert((m.dev, m.ino), path.clone());
        }
        match m.kind() {
            fsutil::S_IFDIR => {
                let mut p = path;
                p.push(b'/');
                let h = Self::header(tar::EntryType::Directory, m);
                self.append(h, &p, None, xattrs, io::empty())
            }
            fsutil::S_IFREG => {
                // Non-blocking and checked: a FIFO or device swapped in after the stat
                // must neither hang the walk nor be read.
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                    Mode::empty(),
                )?;
                if fsutil::stat_fd(fd.as_fd())?.kind() != fsutil::S_IFREG {
                    return Err(io::Error::other(format!(
                        "{} changed type while being archived",
                        rel.display()
                    )));
                }
                let f = File::from(fd);
                let mut h = Self::header(tar::EntryType::Regular, m);
                h.set_size(m.size);
                self.append(
                    h,
                    &path,
                    None,
                    xattrs,
                    Exact {
                        inner: f,
                        left: m.size,
                    },
                )
            }
            fsutil::S_IFLNK => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let h = Self::header(tar::EntryType::Symlink, m);
                self.append(h, &path, Some(target.as_bytes()), xattrs, io::empty())
            }
            fsutil::S_IFCHR | fsutil::S_IFBLK => {
                let kind = if m.kind() == fsutil::S_IFCHR {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = Self::header(kind, m);
                h.set_device_major(rustix::fs::major(m.rdev as _))?;
                h.set_device_minor(rustix::fs::minor(m.rdev as _))?;
                self.append(h, &path, None, xattrs, io::empty())
            }
            fsutil::S_IFIFO => {
                let h = Self::header(tar::EntryType::Fifo, m);
                self.append(h, &path, None, xattrs, io::empty())
            }
            _ => {
                debug!(path = %rel.display(), "socket not archived");
                Ok(())
            }
        }
    }

    /// `.wh.<name>` for a deleted `rel` (mode 0600, owner and mtime from `m`, as Docker).
    fn whiteout(&mut self, rel: &Path, m: &Meta) -> io::Result<()> {
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut wh = OsString::from(".wh.");
        wh.push(name);
        let p = rel.with_file_name(wh);
        let mut h = Self::header(tar::EntryType::Regular, m);
        h.set_mode(0o600);
        self.append(h, fsutil::path_bytes(&p), None, &[], io::empty())
    }

    /// `<dir>/.wh..wh..opq` for an opaque directory.
    fn opaque(&mut self, rel: &Path, m: &Meta) -> io::Result<()> {
        let p = rel.join(".wh..wh..opq");
        let mut h = Self::header(tar::EntryType::Regular, m);
        h.set_mode(m.perm() & 0o777);
        self.append(h, fsutil::path_bytes(&p), None, &[], io::empty())
    }

    pub(crate) fn finish(self) -> Result<DiffResult> {
        let w = self.b.into_inner().ctx(|| "finishing the layer tar")?;
        let mut w = w;
        w.flush().ctx(|| "flushing the layer tar")?;
        let size = w.len;
        let sha = std::mem::take(&mut w.sha);
        Ok(DiffResult {
            diff_id: Digest::from_hasher(sha),
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_upper_gives_the_empty_tar() {
        let t = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let r = write_diff(&[], t.path(), &mut out).unwrap();
        assert_eq!(out.len(), 1024);
        assert_eq!(r.diff_id, Digest::of(&out));
        assert!(changes(&[], t.path()).unwrap().is_empty());
    }

    #[test]
    fn naive_changes() {
        let t = tempfile::tempdir().unwrap();
        let (l, u) = (t.path().join("l"), t.path().join("u"));
        for d in [&l, &u] {
            std::fs::create_dir_all(d.join("d")).unwrap();
            std::fs::write(d.join("d/same"), b"x").unwrap();
        }
        std::fs::write(l.join("gone"), b"x").unwrap();
        std::fs::write(u.join("new"), b"x").unwrap();
        std::fs::write(u.join("d/added"), b"x").unwrap();
        let mtime = std::fs::metadata(l.join("d/same"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(u.join("d/same"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let c: Vec<String> = changes_naive(Some(&l), &u)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(c, ["C /d", "A /d/added", "D /gone", "A /new"]);
    }
}
