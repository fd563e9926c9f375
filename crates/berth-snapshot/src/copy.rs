//! Tree copy for the copy driver: a new active snapshot starts as a full copy of its parent.
//!
//! Owners, modes (setuid included), xattrs (file capabilities included), timestamps, hard
//! links, symlinks, device nodes, FIFOs and sockets are preserved. Regular files are
//! reflinked where the file system can (`FICLONE`), else copied in the kernel with
//! `copy_file_range`, skipping holes (`SEEK_DATA`/`SEEK_HOLE`) so sparse files stay sparse.
//! Nothing is followed: the source is walked with `O_NOFOLLOW` descriptors, the destination
//! is created with `*at` calls relative to directories this copy created.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Gid, Mode, OFlags, SeekFrom, Uid};

use crate::error::{Context, Result};
use crate::fsutil::{self, Descend, Meta};

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Copies the contents (and the root's own metadata) of `src` into the existing, empty
/// directory `dst`.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let what = || format!("copying {} to {}", src.display(), dst.display());
    let s = fsutil::open_dir_path(src).ctx(what)?;
    let d = fsutil::open_dir_path(dst).ctx(what)?;
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let root_meta = fsutil::stat_fd(s.as_fd()).ctx(what)?;
    let mut dirs: Vec<(PathBuf, Meta, Xattrs)> = Vec::new();
    let root_x = fsutil::list_xattrs(s.as_fd(), OsStr::new(".")).ctx(what)?;
    dirs.push((PathBuf::new(), root_meta, root_x));
    // The destination directory of the entries being visited, kept across siblings.
    let mut cur: Option<(PathBuf, OwnedFd)> = None;
    fsutil::walk(s.as_fd(), Path::new(""), &mut |v| {
        let parent = v.rel.parent().unwrap_or(Path::new(""));
        let dd = match cur.take() {
            Some((p, fd)) if p == parent => (p, fd),
            _ => (
                parent.to_path_buf(),
                fsutil::open_dir_beneath(d.as_fd(), parent)?,
            ),
        };
        let out = dd.1.as_fd();
        let m = v.meta;
        let xattrs = fsutil::list_xattrs(v.dir, v.name)?;
        if !m.is_dir() && m.nlink > 1 {
            if let Some(first) = links.get(&(m.dev, m.ino)) {
                rustix::fs::linkat(d.as_fd(), first.as_path(), out, v.name, AtFlags::empty())?;
                cur = Some(dd);
                return Ok(Descend::No);
            }
            links.insert((m.dev, m.ino), v.rel.to_path_buf());
        }
        match m.kind() {
            fsutil::S_IFDIR => {
                rustix::fs::mkdirat(out, v.name, Mode::from_raw_mode(0o700))?;
                dirs.push((v.rel.to_path_buf(), m, xattrs));
                cur = Some(dd);
                return Ok(Descend::Yes);
            }
            fsutil::S_IFREG => {
                let sf = File::from(rustix::fs::openat(
                    v.dir,
                    v.name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?);
                let df = File::from(rustix::fs::openat(
                    out,
                    v.name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?);
                copy_data(&sf, &df, m.size)?;
            }
            fsutil::S_IFLNK => {
                let target = rustix::fs::readlinkat(v.dir, v.name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), out, v.name)?;
            }
            kind => fsutil::mknod_at(out, v.name, kind, 0o600, m.rdev)?,
        }
        set_meta(out, v.name, &m, &xattrs)?;
        cur = Some(dd);
        Ok(Descend::No)
    })
    .ctx(what)?;
    drop(cur);
    // Directory metadata last, deepest first: their contents are written by now.
    for (rel, m, x) in dirs.iter().rev() {
        let (parent, name) = match (rel.parent(), rel.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => (Path::new(""), OsStr::new(".")),
        };
        let pd = fsutil::open_dir_beneath(d.as_fd(), parent).ctx(what)?;
        set_meta(pd.as_fd(), name, m, x).ctx(what)?;
    }
    Ok(())
}

/// Owner, then mode (chown clears setuid), then xattrs (chown clears file capabilities),
/// then times. Never follows a symlink.
fn set_meta(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    m: &Meta,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw(m.uid)),
        Some(Gid::from_raw(m.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !m.is_symlink() {
        // Only objects this copy just created, in directories it created: not symlinks.
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(m.perm()), AtFlags::empty())?;
    }
    for (k, v) in xattrs {
        fsutil::set_xattr(dir, name, k, v)?;
    }
    fsutil::set_times(dir, name, m.atime, m.mtime)
}

/// Copies `size` bytes of regular-file data, cheaply where possible, keeping holes.
fn copy_data(src: &File, dst: &File, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    if rustix::fs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut off = 0u64;
    while off < size {
        let data = match rustix::fs::seek(src, SeekFrom::Data(off)) {
            Ok(p) => p,
            Err(rustix::io::Errno::NXIO) => break, // only a hole is left
            Err(_) => off,                         // no SEEK_DATA: copy everything
        };
        if data >= size {
            break;
        }
        let hole = rustix::fs::seek(src, SeekFrom::Hole(data))
            .unwrap_or(size)
            .min(size);
        copy_range(src, dst, data, hole - data.min(hole))?;
        off = hole.max(data + 1);
    }
    dst.set_len(size)
}

/// Copies `len` bytes at `off` from `src` to the same offset in `dst`.
fn copy_range(src: &File, dst: &File, off: u64, len: u64) -> io::Result<()> {
    let (mut i, mut o, mut left) = (off, off, len);
    while left > 0 {
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::copy_file_range(src, Some(&mut i), dst, Some(&mut o), chunk) {
            Ok(0) => break,
            Ok(n) => left -= n as u64,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return copy_range_rw(src, dst, i, left),
        }
    }
    Ok(())
}

fn copy_range_rw(src: &File, dst: &File, mut off: u64, mut left: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 128 * 1024];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = src.read_at(&mut buf[..want], off)?;
        if n == 0 {
            break;
        }
        dst.write_all_at(&buf[..n], off)?;
        off += n as u64;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn copies_links_modes_and_sparse_files() {
        let t = tempfile::tempdir().unwrap();
        let (s, d) = (t.path().join("s"), t.path().join("d"));
        std::fs::create_dir_all(s.join("sub")).unwrap();
        std::fs::create_dir(&d).unwrap();
        std::fs::write(s.join("sub/f"), b"hello").unwrap();
        std::fs::hard_link(s.join("sub/f"), s.join("h")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", s.join("l")).unwrap();
        let sp = File::create(s.join("sparse")).unwrap();
        sp.write_all_at(b"end", 1 << 30).unwrap();
        std::fs::set_permissions(
            s.join("sub/f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4755),
        )
        .unwrap();
        copy_tree(&s, &d).unwrap();
        assert_eq!(std::fs::read(d.join("h")).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(d.join("h")).unwrap().ino(),
            std::fs::metadata(d.join("sub/f")).unwrap().ino()
        );
        assert_eq!(
            std::fs::metadata(d.join("sub/f")).unwrap().mode() & 0o7777,
            0o4755
        );
        assert_eq!(
            std::fs::read_link(d.join("l")).unwrap(),
            Path::new("/nonexistent")
        );
        let m = std::fs::metadata(d.join("sparse")).unwrap();
        assert_eq!(m.len(), (1 << 30) + 3);
        assert!(
            m.blocks() < 1024,
            "sparse file was filled: {} blocks",
            m.blocks()
        );
    }
}
