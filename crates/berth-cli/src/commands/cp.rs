//! `berth cp`: copies between a container and the local file system over the archive
//! endpoints (`HEAD`/`GET`/`PUT /containers/{id}/archive`), with docker's rules for where
//! things land:
//!
//! - the destination exists and is a directory: the source goes inside it (a source ending
//!   in `/.` gives its contents instead);
//! - it exists and is a file: a file source replaces it; a directory source is refused;
//! - it does not exist: the source is created under that name in the parent directory
//!   (which must exist); a name ending in `/` must then be a directory source.
//!
//! `-` is a tar on stdout or stdin. Modes and modification times are kept; owners only with
//! `-a` (without it, files copied out belong to the caller and files copied in to the
//! container's root). Archives from the daemon are extracted defensively: `..` and absolute
//! names are refused, every parent is opened with `RESOLVE_BENEATH` (no symlink may lead
//! out of the destination), and nothing is ever written through a final symlink.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api_types::archive::{ContainerPathStat, PATH_STAT_HEADER};
use clap::Args;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

use super::cpath;
use crate::Failure;
use crate::client::{Client, with_query};

/// `cp`.
#[derive(Debug, Args)]
#[command(
    after_help = "Use '-' as the source to read a tar archive from stdin and extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a container source to stdout.\n\nExamples:\n  berth cp web:/etc/nginx/nginx.conf .\n  berth cp ./site/. web:/usr/share/nginx/html\n  berth cp -a data:/srv - > srv.tar"
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, SRC_PATH or -
    #[arg(value_name = "SRC")]
    pub src: String,
    /// DEST_PATH, CONTAINER:DEST_PATH or -
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `CONTAINER:PATH` or a local path (absolute or starting with `.`: always local).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// Container paths are relative to the container's `/`.
fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

fn fail(msg: impl Into<String>) -> Failure {
    Failure::new(1, msg)
}

fn io_fail(what: &str, e: io::Error) -> Failure {
    fail(format!("{what}: {e}"))
}

/// The last element of a path, ignoring trailing `/`; `.` for `…/.`.
fn base_name(p: &str) -> String {
    if p.ends_with("/.") || p == "." {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) => b.to_string(),
        None if t.is_empty() => "/".into(),
        None => t.to_string(),
    }
}

/// The directory part of a path (`.` when there is none).
fn parent_of(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_string(),
        None => ".".into(),
    }
}

/// Runs `cp`.
pub fn cp(c: &mut Client, a: CpArgs) -> Result<i32, Failure> {
    if a.src.is_empty() {
        return Err(fail("source can not be empty"));
    }
    if a.dest.is_empty() {
        return Err(fail("destination can not be empty"));
    }
    let (sc, sp) = split(&a.src);
    let (dc, dp) = split(&a.dest);
    match (sc, dc) {
        (Some(_), Some(_)) => Err(fail("copying between containers is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
        (Some(name), None) => from_container(c, &a, name, &abs(sp), dp),
        (None, Some(name)) => to_container(c, &a, sp, name, &abs(dp)),
    }
}

/// `HEAD …/archive`: the stat, `None` when the daemon says 404.
fn stat(c: &mut Client, name: &str, path: &str) -> Result<Option<ContainerPathStat>, Failure> {
    let p = with_query(&cpath(name, "/archive"), &[("path", path.to_string())]);
    let (status, headers) = c.head(&p)?;
    if status == 404 {
        return Ok(None);
    }
    if status >= 400 {
        return Err(fail(format!(
            "Error response from daemon: cannot stat {name}:{path}: HTTP {status}"
        )));
    }
    let v = headers
        .iter()
        .find(|(k, _)| k == PATH_STAT_HEADER)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| fail("the daemon sent no path stat header"))?;
    ContainerPathStat::decode(v)
        .map(Some)
        .ok_or_else(|| fail("the daemon sent an unreadable path stat header"))
}

fn report(a: &CpArgs, bytes: u64, to: &str) {
    if !a.quiet && io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {to}",
            crate::format::human_size(bytes as f64)
        );
    }
}

fn from_container(
    c: &mut Client,
    a: &CpArgs,
    name: &str,
    src: &str,
    dst: &str,
) -> Result<i32, Failure> {
    let mut src = src.to_string();
    // With -L a final symlink is replaced by what it leads to, archived under the link's name.
    let mut rename_top: Option<String> = None;
    if a.follow_link {
        let st = stat(c, name, &src)?.ok_or_else(|| {
            fail(format!(
                "Error response from daemon: Could not find the file {src} in container {name}"
            ))
        })?;
        if st.is_symlink() && !st.link_target.is_empty() {
            rename_top = Some(base_name(&src));
            src = st.link_target.clone();
        }
    }
    let p = with_query(&cpath(name, "/archive"), &[("path", src.clone())]);
    let mut r = c.request("GET", &p, None)?;
    let st = r
        .header(PATH_STAT_HEADER)
        .and_then(ContainerPathStat::decode)
        .ok_or_else(|| fail("the daemon sent no path stat header"))?;
    if dst == "-" {
        let mut out = io::stdout().lock();
        io::copy(&mut r.body, &mut out).map_err(|e| io_fail("reading the archive", e))?;
        out.flush().map_err(|e| io_fail("writing the archive", e))?;
        return Ok(0);
    }
    let top = if st.name == "/" {
        ".".to_string()
    } else {
        st.name.clone()
    };
    let want = rename_top.unwrap_or_else(|| top.clone());
    let (dir, rename) = match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => (dst.to_string(), (top != want).then_some((top, want))),
        Ok(_) if st.is_dir() => return Err(fail("cannot copy directory")),
        Ok(_) => (parent_of(dst), Some((top, base_name(dst)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dst.ends_with('/') && !st.is_dir() {
                return Err(fail(format!("no such directory: {dst}")));
            }
            (parent_of(dst), Some((top, base_name(dst))))
        }
        Err(e) => return Err(io_fail(&format!("stat {dst}"), e)),
    };
    let base = rustix::fs::open(
        Path::new(&dir),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_fail(&format!("opening {dir}"), e.into()))?;
    let mut x = Extractor {
        base,
        rename,
        keep_owner: a.archive,
        devices: rustix::process::geteuid().is_root(),
        dirs: Vec::new(),
        bytes: 0,
    };
    x.run(&mut r.body).map_err(|e| fail(e.to_string()))?;
    report(a, x.bytes, dst);
    Ok(0)
}

fn to_container(
    c: &mut Client,
    a: &CpArgs,
    src: &str,
    name: &str,
    dst: &str,
) -> Result<i32, Failure> {
    let mut dst_path = dst.to_string();
    let mut dst_stat = stat(c, name, dst)?;
    if let Some(s) = &dst_stat
        && s.is_symlink()
    {
        let t = if s.link_target.starts_with('/') {
            s.link_target.clone()
        } else {
            format!("{}/{}", parent_of(dst), s.link_target)
        };
        dst_stat = stat(c, name, &t)?;
        dst_path = t;
    }
    if let Some(s) = &dst_stat
        && s.is_special()
    {
        return Err(fail(format!(
            "destination \"{name}:{dst}\" must be a directory or a regular file"
        )));
    }
    let put = |c: &mut Client, dir: &str, body: &mut dyn Read| -> Result<(), Failure> {
        let p = with_query(
            &cpath(name, "/archive"),
            &[
                ("path", dir.to_string()),
                ("noOverwriteDirNonDir", "true".into()),
                ("copyUIDGID", a.archive.to_string()),
            ],
        );
        c.request_stream("PUT", &p, "application/x-tar", body)?;
        Ok(())
    };
    if src == "-" {
        if !dst_stat.as_ref().is_some_and(ContainerPathStat::is_dir) {
            return Err(fail(format!(
                "destination \"{name}:{dst}\" must be a directory"
            )));
        }
        put(c, &dst_path, &mut io::stdin().lock())?;
        return Ok(0);
    }
    let meta = if a.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| io_fail(&format!("lstat {src}"), e))?;
    let contents = src.ends_with("/.") || src == ".";
    let src_base = base_name(src);
    let (dir, top) = match &dst_stat {
        Some(d) if d.is_dir() => (
            dst_path.clone(),
            (!(contents && meta.is_dir())).then(|| src_base.clone()),
        ),
        Some(_) if meta.is_dir() => return Err(fail("cannot copy directory")),
        Some(_) => (parent_of(&dst_path), Some(base_name(&dst_path))),
        None => {
            if dst.ends_with('/') && !meta.is_dir() {
                return Err(fail(format!(
                    "destination \"{name}:{dst}\" does not exist: no such directory"
                )));
            }
            (parent_of(&dst_path), Some(base_name(&dst_path)))
        }
    };
    let (mut rd, wr) = io::pipe().map_err(|e| io_fail("pipe", e))?;
    let src_owned = PathBuf::from(src);
    let follow = a.follow_link;
    let writer = std::thread::spawn(move || -> io::Result<u64> {
        let mut b = tar::Builder::new(wr);
        b.follow_symlinks(false);
        let mut n = 0;
        add_tree(&mut b, &src_owned, top.as_deref(), follow, &mut n)?;
        b.into_inner()?.flush()?;
        Ok(n)
    });
    let res = put(c, &dir, &mut rd);
    drop(rd);
    let built = writer
        .join()
        .map_err(|_| fail("the archive writer panicked"))?;
    res?;
    let n = built.map_err(|e| io_fail(&format!("archiving {src}"), e))?;
    report(a, n, &format!("{name}:{dst}"));
    Ok(0)
}

/// A tar header for `m`: type, permissions (with setuid/setgid/sticky), owner, mtime.
fn header_for(m: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// Appends `path` as `name` (or, with `name` `None`, only its contents at the top) and,
/// for a directory, everything below it in name order, never following symlinks below the
/// top.
fn add_tree<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: Option<&str>,
    follow_top: bool,
    n: &mut u64,
) -> io::Result<()> {
    let m = if follow_top {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    if let Some(name) = name {
        add_one(b, path, Path::new(name), &m, n)?;
    }
    if m.is_dir() {
        let mut todo = vec![(path.to_path_buf(), name.map(PathBuf::from))];
        while let Some((dir, rel)) = todo.pop() {
            let mut ents: Vec<_> = std::fs::read_dir(&dir)?
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            ents.sort();
            let mut subdirs = Vec::new();
            for e in ents {
                let p = dir.join(&e);
                let r = rel
                    .as_ref()
                    .map_or_else(|| PathBuf::from(&e), |r| r.join(&e));
                let m = std::fs::symlink_metadata(&p)?;
                add_one(b, &p, &r, &m, n)?;
                if m.is_dir() {
                    subdirs.push((p, Some(r)));
                }
            }
            todo.extend(subdirs.into_iter().rev());
        }
    }
    Ok(())
}

fn add_one<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    m: &std::fs::Metadata,
    n: &mut u64,
) -> io::Result<()> {
    let mut h = header_for(m);
    let ft = m.file_type();
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, name, io::empty())
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(m.len());
        *n += m.len();
        let f = File::open(path)?;
        b.append_data(&mut h, name, f.take(m.len()))
    } else if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        let t = std::fs::read_link(path)?;
        b.append_link(&mut h, name, t)
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        h.set_entry_type(if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        });
        let rdev = m.rdev();
        h.set_device_major(rustix::fs::major(rdev))?;
        h.set_device_minor(rustix::fs::minor(rdev))?;
        b.append_data(&mut h, name, io::empty())
    } else {
        Ok(()) // sockets are not archived
    }
}

/// Extracts a tar from the daemon below a local directory.
struct Extractor {
    base: OwnedFd,
    /// Entries named `old` or `old/…` become `new`, `new/…`.
    rename: Option<(String, String)>,
    keep_owner: bool,
    devices: bool,
    /// Directories whose mode and times are set last (writing into them changes them).
    dirs: Vec<(Vec<Vec<u8>>, u32, i64)>,
    bytes: u64,
}

fn other(m: String) -> io::Error {
    io::Error::other(m)
}

impl Extractor {
    fn run(&mut self, r: &mut dyn Read) -> io::Result<()> {
        let mut ar = tar::Archive::new(r);
        for e in ar.entries()? {
            let mut e = e?;
            self.entry(&mut e)?;
        }
        let dirs = std::mem::take(&mut self.dirs);
        for (comps, mode, mtime) in dirs.into_iter().rev() {
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let p = self.parent(parent, false)?;
            let n = OsStr::from_bytes(name);
            rustix::fs::chmodat(&p, n, Mode::from_raw_mode(mode), AtFlags::empty())?;
            set_times(p.as_fd(), n, mtime)?;
        }
        Ok(())
    }

    /// The entry's name after the rename, split into normal components.
    fn components(&self, raw: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        let mut name: Vec<u8> = raw.to_vec();
        while name.starts_with(b"/") {
            name.remove(0);
        }
        if let Some((old, new)) = &self.rename {
            let (o, nw) = (old.as_bytes(), new.as_bytes());
            if o == b"." {
                if name == b"." || name == b"./" {
                    name = nw.to_vec();
                } else if name.starts_with(b"./") {
                    name = [nw, &name[1..]].concat();
                }
            } else if name == o || (name.starts_with(o) && name.get(o.len()) == Some(&b'/')) {
                name = [nw, &name[o.len()..]].concat();
            }
        }
        let mut out = Vec::new();
        for c in name.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    return Err(other(format!(
                        "archive entry {shown:?} leaves the destination"
                    )));
                }
                c if c.contains(&0) => {
                    return Err(other(format!("archive entry {shown:?} has a NUL byte")));
                }
                c => out.push(c.to_vec()),
            }
        }
        Ok(out)
    }

    /// Opens the directory `comps` below the base: symlinks may be followed only while
    /// they stay beneath it. Missing directories are created when `create`.
    fn parent(&self, comps: &[Vec<u8>], create: bool) -> io::Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut cur = rustix::fs::openat(&self.base, ".", flags, Mode::empty())?;
        for c in comps {
            let n = OsStr::from_bytes(c);
            let next = loop {
                match rustix::fs::openat2(
                    &cur,
                    n,
                    flags,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                ) {
                    // A rename or mount elsewhere raced with resolving `..`: again.
                    Err(rustix::io::Errno::AGAIN) => continue,
                    r => break r,
                }
            };
            cur = match next {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) if create => {
                    rustix::fs::mkdirat(&cur, n, Mode::from_raw_mode(0o755))?;
                    rustix::fs::openat2(
                        &cur,
                        n,
                        flags | OFlags::NOFOLLOW,
                        Mode::empty(),
                        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
                    )?
                }
                Err(rustix::io::Errno::XDEV) => {
                    return Err(other(format!(
                        "{} leads out of the destination",
                        String::from_utf8_lossy(c)
                    )));
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(cur)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let et = e.header().entry_type();
        if !(et.is_dir()
            || et.is_file()
            || et.is_symlink()
            || et.is_hard_link()
            || et.is_character_special()
            || et.is_block_special()
            || et.is_fifo())
        {
            return Ok(());
        }
        let comps = self.components(&e.path_bytes())?;
        let h = e.header();
        let mode = h.mode()? & 0o7777;
        let mtime = i64::try_from(h.mtime()?).unwrap_or(0);
        let owner = (
            u32::try_from(h.uid()?).unwrap_or(0),
            u32::try_from(h.gid()?).unwrap_or(0),
        );
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the destination directory itself is left as it is
        };
        let p = self.parent(parent, true)?;
        let n = OsStr::from_bytes(name);
        let existing = match rustix::fs::statat(&p, n, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st.st_mode & 0o170000 == 0o040000),
            Err(rustix::io::Errno::NOENT) => None,
            Err(err) => return Err(err.into()),
        };
        let shown = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
        if et.is_dir() {
            if existing == Some(false) {
                rustix::fs::unlinkat(&p, n, AtFlags::empty())?;
            }
            if existing != Some(true) {
                rustix::fs::mkdirat(&p, n, Mode::from_raw_mode(0o700))?;
            }
            self.chown(p.as_fd(), n, owner)?;
            self.dirs.push((comps.clone(), mode, mtime));
            return Ok(());
        }
        match existing {
            Some(true) => {
                return Err(other(format!(
                    "cannot overwrite directory {shown:?} with non-directory"
                )));
            }
            Some(false) => rustix::fs::unlinkat(&p, n, AtFlags::empty())?,
            None => {}
        }
        if et.is_file() {
            let fd = rustix::fs::openat(
                &p,
                n,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut f = File::from(fd);
            self.bytes += io::copy(e, &mut f)?;
            self.chown(p.as_fd(), n, owner)?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))?;
        } else if et.is_symlink() {
            let t = e
                .link_name_bytes()
                .ok_or_else(|| other(format!("symlink {shown:?} has no target")))?;
            rustix::fs::symlinkat(OsStr::from_bytes(&t), &p, n)?;
            self.chown(p.as_fd(), n, owner)?;
        } else if et.is_hard_link() {
            let t = e
                .link_name_bytes()
                .ok_or_else(|| other(format!("hard link {shown:?} has no target")))?;
            let tc = self.components(&t)?;
            let Some((tn, tp)) = tc.split_last() else {
                return Err(other(format!("hard link {shown:?} to the destination")));
            };
            let tpd = self.parent(tp, false)?;
            rustix::fs::linkat(&tpd, OsStr::from_bytes(tn), &p, n, AtFlags::empty())?;
            return Ok(());
        } else {
            if !et.is_fifo() && !self.devices {
                return Ok(()); // device nodes need root, as with docker
            }
            let kind = if et.is_fifo() {
                rustix::fs::FileType::Fifo
            } else if et.is_character_special() {
                rustix::fs::FileType::CharacterDevice
            } else {
                rustix::fs::FileType::BlockDevice
            };
            let dev = rustix::fs::makedev(
                h.device_major()?.unwrap_or(0),
                h.device_minor()?.unwrap_or(0),
            );
            rustix::fs::mknodat(&p, n, kind, Mode::from_raw_mode(mode), dev)?;
            self.chown(p.as_fd(), n, owner)?;
            rustix::fs::chmodat(&p, n, Mode::from_raw_mode(mode), AtFlags::empty())?;
        }
        set_times(p.as_fd(), n, mtime)
    }

    fn chown(&self, dir: BorrowedFd<'_>, n: &OsStr, (uid, gid): (u32, u32)) -> io::Result<()> {
        if !self.keep_owner {
            return Ok(());
        }
        rustix::fs::chownat(
            dir,
            n,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }
}

fn set_times(dir: BorrowedFd<'_>, n: &OsStr, mtime: i64) -> io::Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        dir,
        n,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split("c:/etc"), (Some("c"), "/etc"));
        assert_eq!(split("c:etc"), (Some("c"), "etc"));
        assert_eq!(split("./c:x"), (None, "./c:x"));
        assert_eq!(split("/a:b"), (None, "/a:b"));
        assert_eq!(split("-"), (None, "-"));
        assert_eq!(split(":x"), (None, ":x"));
        assert_eq!(abs("etc/x"), "/etc/x");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("a"), ".");
    }

    fn extract(tar: &[u8], dir: &Path, rename: Option<(&str, &str)>) -> io::Result<()> {
        let base = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let mut x = Extractor {
            base,
            rename: rename.map(|(a, b)| (a.into(), b.into())),
            keep_owner: true,
            devices: false,
            dirs: Vec::new(),
            bytes: 0,
        };
        x.run(&mut &tar[..])
    }

    #[test]
    fn extraction_renames_and_refuses_escapes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/f"), b"x").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut n = 0;
        add_tree(&mut b, &src, Some("src"), false, &mut n).unwrap();
        let data = b.into_inner().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract(&data, &out, Some(("src", "renamed"))).unwrap();
        assert_eq!(std::fs::read(out.join("renamed/d/f")).unwrap(), b"x");

        // A symlink out of the destination, then an entry through it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        b.append_link(&mut h, "esc", t.path()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        b.append_data(&mut h, "esc/planted", &b"p"[..]).unwrap();
        let data = b.into_inner().unwrap();
        assert!(extract(&data, &out, None).is_err());
        assert!(!t.path().join("planted").exists());
    }
}
