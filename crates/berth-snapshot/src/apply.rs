//! Unpacking an OCI layer (a tar stream, plain, gzip or zstd) into a snapshot directory.
//!
//! The layer is read once: the compressed digest (sha256 of the input) and the diff_id
//! (sha256 of the uncompressed tar) are computed while the entries are written.
//!
//! # Output formats
//!
//! - [`apply_layer`] writes **overlay format** for the overlay driver's fresh upper
//!   directory: `.wh.<name>` becomes a whiteout (character device 0:0), `.wh..wh..opq` an
//!   opaque directory (`trusted.overlay.opaque=y`).
//! - [`apply_layer_copy`] applies onto a full tree (the copy driver): a whiteout deletes,
//!   an opaque marker empties the directory of everything this layer did not write.
//!
//! # Containment
//!
//! Archives are hostile. Every entry path is normalised (leading `/` dropped, `.` and empty
//! components ignored) and refused if it has a `..` component or a NUL byte. Its parent
//! directory is then resolved **inside** the target, following symlinks only as if the
//! target were `/` (`openat2(RESOLVE_IN_ROOT)` through `pathrs`, which emulates it safely on
//! old kernels): a symlink to `/etc` written by the layer leads to `<target>/etc`, never the
//! host's. The last component is never followed: whatever is there is replaced (duplicate
//! entries: last wins, like Docker), files are created `O_EXCL | O_NOFOLLOW`, and metadata is
//! set through descriptors or `*at(…, AT_SYMLINK_NOFOLLOW)` calls. Hard links may only point
//! at earlier entries of the same layer. Device nodes need [`ApplyOptions::devices`]. Regular
//! file sizes count against [`ApplyOptions::max_bytes`] before any byte is written, so a
//! sparse "1 TiB" entry is refused at once; zero blocks are written as holes. Extended
//! attributes in the `trusted.overlay.` namespace are dropped: a layer must not be able to
//! forge overlayfs' own metadata (redirects, metacopy, opaque).
//!
//! Nothing is ever created outside the target, so a caller that removes the target after an
//! error leaves no trace.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, Gid, Mode, OFlags, Uid};
use tracing::{debug, warn};

use crate::digest::{Digest, HashReader, SharedTally};
use crate::error::{Context, Error, Result};
use crate::fsutil::{self, Meta};

/// The compression a layer stream was found to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    Gzip,
    Zstd,
}

/// A constant shift of owner ids, for layers unpacked for a user namespace: container id
/// `n` is stored as host id `uid + n` (resp. `gid + n`); ids at or beyond `size` are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdShift {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

/// Limits and choices for one layer application.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The most regular-file content (logical bytes, holes included) the layer may hold;
    /// `None` for no limit. Checked against each entry's declared size before writing.
    pub max_bytes: Option<u64>,
    /// The most entries the layer may have; `None` for no limit.
    pub max_entries: Option<u64>,
    /// Whether character and block device entries are created. Default: when running as
    /// root. FIFOs are always allowed.
    pub devices: bool,
    /// Owner id shift for user namespaces.
    pub id_shift: Option<IdShift>,
    /// The snapshot's lower layers' directories, top first. A directory the layer needs but
    /// does not contain (a parent of one of its entries) is created with the owner, mode and
    /// times it has in the topmost lower that has it, so the merged view keeps them.
    pub lower_dirs: Vec<PathBuf>,
    /// Whether a compressed input is hashed too (for [`AppliedLayer::compressed_digest`]).
    /// Off for a caller that has just hashed the same bytes itself (`docker load` spools a
    /// blob into the content store while unpacking it); the digest is then not computed and
    /// `compressed_digest` is the `diff_id`. Default: on.
    pub hash_input: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_bytes: None,
            max_entries: None,
            devices: rustix::process::geteuid().is_root(),
            id_shift: None,
            lower_dirs: Vec::new(),
            hash_input: true,
        }
    }
}

/// What applying a layer produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedLayer {
    /// sha256 of the uncompressed tar stream: the layer's `diff_id`.
    pub diff_id: Digest,
    /// sha256 of the input as given (equal to `diff_id` for a plain tar, and when
    /// [`ApplyOptions::hash_input`] is off).
    pub compressed_digest: Digest,
    pub compression: Compression,
    /// Length of the uncompressed tar stream.
    pub size: u64,
    /// Length of the input.
    pub compressed_size: u64,
    /// Regular-file content written (logical bytes; what counted against the budget).
    pub content_bytes: u64,
    /// Number of entries (PAX global headers not counted).
    pub entries: u64,
    /// Parent directories the layer needed but did not contain, created by the applier
    /// (with metadata from [`ApplyOptions::lower_dirs`] when they have them). When this is
    /// zero, the result does not depend on the lower layers at all: an overlay-format
    /// application without lowers is then the same as one on any parent.
    pub implicit_dirs: u64,
}

/// Applies the layer read from `reader` onto `dest` in overlay format (see the module docs).
/// `dest` is normally a fresh, empty snapshot directory.
pub fn apply_layer<R: Read>(reader: R, dest: &Path, opts: &ApplyOptions) -> Result<AppliedLayer> {
    apply(reader, dest, opts, Format::Overlay)
}

/// Applies the layer read from `reader` onto the full tree `dest` (the copy driver):
/// whiteouts delete, opaque markers empty their directory of older content.
pub fn apply_layer_copy<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<AppliedLayer> {
    apply(reader, dest, opts, Format::Copy)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Format {
    Overlay,
    Copy,
    /// A plain archive (`docker cp`): `.wh.` names are ordinary files.
    Plain,
}

/// What only plain extraction (`docker cp`) asks for, beyond [`ApplyOptions`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Extra {
    /// Refuse to replace a directory by a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Every object gets this owner instead of the archive's.
    pub owner: Option<(u32, u32)>,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are AUFS bookkeeping and are skipped, as Docker does.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

fn apply<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
    format: Format,
) -> Result<AppliedLayer> {
    let root =
        fsutil::open_dir_path(dest).ctx(|| format!("opening layer target {}", dest.display()))?;
    let out = apply_fd(reader, root, opts, format, Extra::default())?;
    debug!(dest = %dest.display(), diff_id = %out.diff_id, entries = out.entries, "layer applied");
    Ok(out)
}

/// Applies an archive onto the directory `root` (any descriptor of it), every entry
/// resolved inside it.
pub(crate) fn apply_fd<R: Read>(
    reader: R,
    root: OwnedFd,
    opts: &ApplyOptions,
    format: Format,
    extra: Extra,
) -> Result<AppliedLayer> {
    let ctally: SharedTally = Rc::default();
    let mut raw = HashReader::new(reader, ctally.clone());
    let mut head = Vec::with_capacity(16);
    (&mut raw)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| Error::Archive(format!("reading: {e}")))?;
    let compression = detect(&head)?;
    let hash_input = opts.hash_input || compression == Compression::None;
    if !hash_input {
        raw.count_only();
    }
    let input = io::Cursor::new(head).chain(raw);
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input)
                .map_err(|e| Error::Archive(format!("zstd: {e}")))?,
        ),
    };
    // A plain tar's diff_id is its input digest: hashed once, not twice.
    let ttally: SharedTally = Rc::default();
    let hashed: Box<dyn Read> = match compression {
        Compression::None => decoded,
        _ => Box::new(HashReader::new(decoded, ttally.clone())),
    };
    let mut archive = tar::Archive::new(hashed);
    let lowers = opts
        .lower_dirs
        .iter()
        .filter_map(|p| match fsutil::open_dir_path(p) {
            Ok(fd) => Some(fd),
            Err(e) => {
                warn!(lower = %p.display(), error = %e, "lower layer unreadable, ignored for parent metadata");
                None
            }
        })
        .collect();
    let mut ap = Applier {
        root,
        opts,
        format,
        extra,
        lowers,
        written: BTreeSet::new(),
        dir_times: Vec::new(),
        bytes: 0,
        entries: 0,
        implicit_dirs: 0,
        buf: vec![0u8; 128 * 1024],
        file_parent: None,
    };
    let entries = archive.entries().map_err(|e| archive_err(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_err(&e))?;
        ap.entry(&mut entry)?;
    }
    ap.finish()?;
    // Hash everything after the end-of-archive marker too (padding, further gzip members).
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| archive_err(&e))?;
    drop(rest);
    let c = std::mem::take(&mut *ctally.borrow_mut());
    let (diff_id, size) = match compression {
        Compression::None => (Digest::from_hasher(c.sha.clone()), c.len),
        _ => {
            let t = std::mem::take(&mut *ttally.borrow_mut());
            (Digest::from_hasher(t.sha), t.len)
        }
    };
    let compressed_digest = if hash_input && compression != Compression::None {
        Digest::from_hasher(c.sha)
    } else {
        diff_id.clone()
    };
    let out = AppliedLayer {
        diff_id,
        compressed_digest,
        compression,
        size,
        compressed_size: c.len,
        content_bytes: ap.bytes,
        entries: ap.entries,
        implicit_dirs: ap.implicit_dirs,
    };
    Ok(out)
}

fn archive_err(e: &io::Error) -> Error {
    Error::Archive(e.to_string())
}

/// Recognises gzip and zstd by their magic numbers; refuses bzip2 and xz (not OCI media
/// types berth supports); anything else is read as a plain tar.
fn detect(head: &[u8]) -> Result<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
    {
        // A zstd frame, or a zstd skippable frame (0x184D2A5?) in front of one.
        Ok(Compression::Zstd)
    } else if head.len() >= 10
        && head.starts_with(b"BZh")
        && head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
    {
        Err(Error::Archive(
            "bzip2-compressed layers are not supported".into(),
        ))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(Error::Archive(
            "xz-compressed layers are not supported".into(),
        ))
    } else {
        Ok(Compression::None)
    }
}

/// An entry path split into normal components; `..` and NUL are refused.
pub(crate) fn normalize(raw: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    if raw.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a '..' component".into()),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// A path from an archive, for messages: lossy UTF-8, and at most about 200 characters
/// (the start and the end) however long the archive made it.
fn display_path(p: &[u8]) -> String {
    const KEEP: usize = 96;
    if p.len() <= 2 * KEEP + 8 {
        return String::from_utf8_lossy(p).into_owned();
    }
    format!(
        "{}…({} bytes)…{}",
        String::from_utf8_lossy(&p[..KEEP]),
        p.len(),
        String::from_utf8_lossy(&p[p.len() - KEEP..])
    )
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// PAX records of interest for one entry.
#[derive(Default)]
struct Pax {
    mtime: Option<(i64, i64)>,
    atime: Option<(i64, i64)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Parses a PAX time (`seconds[.fraction]`, possibly negative).
fn parse_pax_time(v: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    if neg {
        if nanos > 0 {
            Some((-secs - 1, 1_000_000_000 - nanos))
        } else {
            Some((-secs, 0))
        }
    } else {
        Some((secs, nanos))
    }
}

/// The metadata one entry asks for, ids already shifted.
struct EntryMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: (i64, i64),
    atime: (i64, i64),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A directory (as path components) and the atime and mtime it gets once the layer is done.
type DirTimes = (Vec<Vec<u8>>, (i64, i64), (i64, i64));

struct Applier<'a> {
    root: OwnedFd,
    opts: &'a ApplyOptions,
    format: Format,
    extra: Extra,
    lowers: Vec<OwnedFd>,
    /// Normalised paths this layer has created (and not since deleted).
    written: BTreeSet<Vec<u8>>,
    /// Directories whose times are set at the end, after their contents are written.
    dir_times: Vec<DirTimes>,
    bytes: u64,
    entries: u64,
    /// Parent directories created because the layer did not contain them.
    implicit_dirs: u64,
    buf: Vec<u8>,
    /// The parent directory of the last entry, when that entry was a regular file: a run of
    /// files in one directory resolves it once. Any other kind of entry drops it, so only
    /// entries that cannot change the directory tree above them reuse it.
    file_parent: Option<(Vec<u8>, OwnedFd)>,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let et = entry.header().entry_type();
        if et.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let shown = display_path(&raw);
        let err = |reason: String| Error::entry(shown.clone(), reason);
        self.entries += 1;
        if let Some(max) = self.opts.max_entries
            && self.entries > max
        {
            return Err(err(format!("the layer has more than {max} entries")));
        }
        let comps = normalize(&raw).map_err(&err)?;
        let meta = self.entry_meta(entry).map_err(&err)?;

        let Some((base, parent)) = comps.split_last() else {
            // "./" or "/": metadata for the layer root itself.
            if !et.is_dir() {
                return Err(err("names the layer root but is not a directory".into()));
            }
            self.set_meta(self.root.as_fd(), OsStr::new("."), &meta, Kind::Dir, None)
                .map_err(&err)?;
            self.dir_times.push((Vec::new(), meta.atime, meta.mtime));
            return Ok(());
        };

        if base.starts_with(WHITEOUT_PREFIX) && self.format != Format::Plain {
            return self.whiteout(parent, base, &meta, &shown);
        }

        let parent_path = join(parent);
        let pfd = match self.file_parent.take() {
            Some((path, fd)) if path == parent_path => fd,
            _ => self
                .parent_dir(parent, true, &shown)?
                .ok_or_else(|| err("parent missing".into()))?,
        };
        let name = os(base);
        let existing =
            fsutil::stat_at_opt(pfd.as_fd(), name).map_err(|e| err(format!("stat: {e}")))?;
        let keep_dir = et.is_dir() && existing.is_some_and(|m| m.is_dir());
        if self.extra.no_overwrite_dir_non_dir
            && let Some(m) = existing
            && m.is_dir() != et.is_dir()
        {
            return Err(err(if m.is_dir() {
                "cannot overwrite a directory with a non-directory".into()
            } else {
                "cannot overwrite a non-directory with a directory".into()
            }));
        }
        if existing.is_some() && !keep_dir && !et.is_hard_link() {
            fsutil::remove_all_at(pfd.as_fd(), name).map_err(|e| err(format!("replacing: {e}")))?;
        }

        let p = pfd.as_fd();
        match et {
            tar::EntryType::Directory => {
                if !keep_dir {
                    rustix::fs::mkdirat(p, name, Mode::from_raw_mode(0o700))
                        .map_err(|e| err(format!("mkdir: {e}")))?;
                }
                let dfd = rustix::fs::openat(
                    p,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| err(format!("opening directory: {e}")))?;
                self.set_meta(p, name, &meta, Kind::Dir, Some(dfd.as_fd()))
                    .map_err(&err)?;
                self.dir_times.push((comps.clone(), meta.atime, meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                let file = self.write_file(p, name, entry, size).map_err(&err)?;
                self.set_meta(p, name, &meta, Kind::File, Some(file.as_fd()))
                    .map_err(&err)?;
                fsutil::set_times(p, name, meta.atime, meta.mtime)
                    .map_err(|e| err(format!("times: {e}")))?;
                self.written.insert(join(&comps));
                self.file_parent = Some((parent_path, pfd));
                return Ok(());
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| err("symlink without a target".into()))?
                    .into_owned();
                if target.is_empty() || target.contains(&0) {
                    return Err(err("symlink target is empty or has a NUL byte".into()));
                }
                rustix::fs::symlinkat(os(&target), p, name)
                    .map_err(|e| err(format!("symlink: {e}")))?;
                self.set_meta(p, name, &meta, Kind::Symlink, None)
                    .map_err(&err)?;
                fsutil::set_times(p, name, meta.atime, meta.mtime)
                    .map_err(|e| err(format!("times: {e}")))?;
            }
            tar::EntryType::Link => {
                self.hardlink(entry, &comps, p, name, existing.is_some(), &shown)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match et {
                    tar::EntryType::Char => fsutil::S_IFCHR,
                    tar::EntryType::Block => fsutil::S_IFBLK,
                    _ => fsutil::S_IFIFO,
                };
                let rdev = if kind == fsutil::S_IFIFO {
                    0
                } else {
                    if !self.opts.devices {
                        return Err(err(
                            "device nodes are not allowed here (not running as root)".into(),
                        ));
                    }
                    let h = entry.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    rustix::fs::makedev(major, minor)
                };
                fsutil::mknod_at(p, name, kind, 0o600, rdev)
                    .map_err(|e| err(format!("mknod: {e}")))?;
                self.set_meta(p, name, &meta, Kind::Node, None)
                    .map_err(&err)?;
                fsutil::set_times(p, name, meta.atime, meta.mtime)
                    .map_err(|e| err(format!("times: {e}")))?;
            }
            other => {
                return Err(err(format!(
                    "unsupported entry type {:?}",
                    other.as_byte() as char
                )));
            }
        }
        self.written.insert(join(&comps));
        Ok(())
    }

    /// Owner, mode, times and xattrs of an entry from its header and PAX records.
    fn entry_meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
    ) -> std::result::Result<EntryMeta, String> {
        let mut pax = Pax::default();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| format!("pax header: {e}"))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| format!("pax header: {e}"))?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    pax.mtime = parse_pax_time(ext.value_bytes());
                } else if key == b"atime" {
                    pax.atime = parse_pax_time(ext.value_bytes());
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if name.starts_with(fsutil::OVERLAY_XATTR_PREFIX) {
                        warn!(xattr = %String::from_utf8_lossy(name), "dropping overlayfs xattr from layer");
                        continue;
                    }
                    if name.is_empty() || name.contains(&0) {
                        return Err("xattr with an empty name or a NUL byte".into());
                    }
                    pax.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        let h = entry.header();
        let mode = h.mode().map_err(|e| format!("mode: {e}"))? & 0o7777;
        let uid = h.uid().map_err(|e| format!("uid: {e}"))?;
        let gid = h.gid().map_err(|e| format!("gid: {e}"))?;
        let (uid, gid) = match self.extra.owner {
            Some(o) => o,
            None => self.map_ids(uid, gid)?,
        };
        let mtime = match pax.mtime {
            Some(t) => t,
            None => (
                i64::try_from(h.mtime().map_err(|e| format!("mtime: {e}"))?).unwrap_or(i64::MAX),
                0,
            ),
        };
        Ok(EntryMeta {
            uid,
            gid,
            mode,
            mtime,
            atime: pax.atime.unwrap_or(mtime),
            xattrs: pax.xattrs,
        })
    }

    fn map_ids(&self, uid: u64, gid: u64) -> std::result::Result<(u32, u32), String> {
        let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?;
        let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?;
        match self.opts.id_shift {
            None => Ok((uid, gid)),
            Some(s) => {
                if uid >= s.size || gid >= s.size {
                    return Err(format!(
                        "owner {uid}:{gid} is outside the mapped id range (size {})",
                        s.size
                    ));
                }
                let u = s.uid.checked_add(uid).ok_or("shifted uid overflows")?;
                let g = s.gid.checked_add(gid).ok_or("shifted gid overflows")?;
                Ok((u, g))
            }
        }
    }

    /// Sets owner, mode and xattrs (in that order: chown clears setuid bits and file
    /// capabilities). `fd`, when given, is the object itself.
    fn set_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        m: &EntryMeta,
        kind: Kind,
        fd: Option<BorrowedFd<'_>>,
    ) -> std::result::Result<(), String> {
        let (uid, gid) = (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)));
        match fd {
            Some(fd) => rustix::fs::fchown(fd, uid, gid),
            None => rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
        }
        .map_err(|e| format!("chown {}:{}: {e}", m.uid, m.gid))?;
        if kind != Kind::Symlink {
            let mode = Mode::from_raw_mode(m.mode);
            match fd {
                Some(fd) => rustix::fs::fchmod(fd, mode),
                // A node this entry just created with mknodat: not a symlink.
                None => rustix::fs::chmodat(parent, name, mode, AtFlags::empty()),
            }
            .map_err(|e| format!("chmod {:o}: {e}", m.mode))?;
        }
        for (k, v) in &m.xattrs {
            if let Err(e) = fsutil::set_xattr(parent, name, k, v) {
                let key = String::from_utf8_lossy(k);
                let soft = matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::EACCES)
                );
                if soft && !k.starts_with(b"security.capability") {
                    warn!(xattr = %key, error = %e, "xattr not supported here, skipped");
                } else {
                    return Err(format!("xattr {key}: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Creates the file and writes the entry's data, leaving zero blocks as holes.
    fn write_file<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        data: &mut R,
        size: u64,
    ) -> std::result::Result<File, String> {
        if let Some(max) = self.opts.max_bytes
            && self.bytes.saturating_add(size) > max
        {
            return Err(format!(
                "{size} bytes would exceed the layer's byte budget ({max} bytes, {} used)",
                self.bytes
            ));
        }
        self.bytes = self.bytes.saturating_add(size);
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| format!("creating file: {e}"))?;
        let file = File::from(fd);
        let mut off = 0u64;
        // Where the last data written ends: the size is set only for a trailing hole.
        let mut data_end = 0u64;
        const BLOCK: usize = 4096;
        while off < size {
            let want =
                usize::try_from((size - off).min(self.buf.len() as u64)).unwrap_or(self.buf.len());
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(format!(
                        "archive ends inside the entry's data ({off} of {size} bytes)"
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading data: {e}")),
            };
            let chunk = &self.buf[..n];
            let zero = |s: &[u8]| s.iter().all(|b| *b == 0);
            let mut i = 0;
            while i < n {
                let end = (i + BLOCK).min(n);
                if zero(&chunk[i..end]) {
                    i = end;
                    continue;
                }
                let mut j = end;
                while j < n {
                    let e2 = (j + BLOCK).min(n);
                    if zero(&chunk[j..e2]) {
                        break;
                    }
                    j = e2;
                }
                file.write_all_at(&chunk[i..j], off + i as u64)
                    .map_err(|e| format!("writing data: {e}"))?;
                data_end = off + j as u64;
                i = j;
            }
            off += n as u64;
        }
        if data_end != size {
            file.set_len(size)
                .map_err(|e| format!("setting size: {e}"))?;
        }
        Ok(file)
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        comps: &[Vec<u8>],
        parent: BorrowedFd<'_>,
        name: &OsStr,
        exists: bool,
        shown: &str,
    ) -> Result<()> {
        let err = |reason: String| Error::entry(shown.to_string(), reason);
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| err("hardlink without a target".into()))?
            .into_owned();
        let tshown = display_path(&raw);
        let t = normalize(&raw).map_err(|r| err(format!("hardlink target {tshown:?}: {r}")))?;
        let Some((tbase, tparent)) = t.split_last() else {
            return Err(err("hardlink to the layer root".into()));
        };
        if t == comps {
            return Err(err("hardlink to itself".into()));
        }
        if !self.written.contains(&join(&t)) {
            return Err(err(format!(
                "hardlink target {tshown:?} is not an earlier entry of this layer"
            )));
        }
        let tp = self
            .parent_dir(tparent, false, shown)?
            .ok_or_else(|| err(format!("hardlink target {tshown:?} does not exist")))?;
        let tm = fsutil::stat_at_opt(tp.as_fd(), os(tbase))
            .map_err(|e| err(format!("hardlink target {tshown:?}: {e}")))?
            .ok_or_else(|| err(format!("hardlink target {tshown:?} does not exist")))?;
        if tm.is_dir() {
            return Err(err(format!("hardlink target {tshown:?} is a directory")));
        }
        if exists {
            fsutil::remove_all_at(parent, name).map_err(|e| err(format!("replacing: {e}")))?;
        }
        rustix::fs::linkat(tp.as_fd(), os(tbase), parent, name, AtFlags::empty())
            .map_err(|e| err(format!("link to {tshown:?}: {e}")))?;
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent: &[Vec<u8>],
        base: &[u8],
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<()> {
        let err = |reason: String| Error::entry(shown.to_string(), reason);
        if base == OPAQUE_MARKER {
            match self.format {
                Format::Overlay => {
                    let d = self
                        .parent_dir(parent, true, shown)?
                        .ok_or_else(|| err("parent missing".into()))?;
                    fsutil::set_xattr(
                        d.as_fd(),
                        OsStr::new("."),
                        fsutil::OPAQUE_XATTR.as_bytes(),
                        b"y",
                    )
                    .map_err(|e| err(format!("marking directory opaque: {e}")))?;
                }
                Format::Copy | Format::Plain => {
                    if let Some(d) = self.parent_dir(parent, false, shown)? {
                        let mut prefix = join(parent);
                        if !prefix.is_empty() {
                            prefix.push(b'/');
                        }
                        self.prune(d.as_fd(), &prefix)
                            .map_err(|e| err(format!("emptying opaque directory: {e}")))?;
                    }
                }
            }
            return Ok(());
        }
        if base.starts_with(AUFS_META_PREFIX) {
            debug!(entry = shown, "skipping AUFS metadata");
            return Ok(());
        }
        let target = &base[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(err("whiteout names no file".into()));
        }
        let name = os(target);
        match self.format {
            Format::Overlay => {
                let d = self
                    .parent_dir(parent, true, shown)?
                    .ok_or_else(|| err("parent missing".into()))?;
                fsutil::remove_all_at(d.as_fd(), name)
                    .map_err(|e| err(format!("replacing: {e}")))?;
                fsutil::mknod_at(d.as_fd(), name, fsutil::S_IFCHR, 0, 0)
                    .map_err(|e| err(format!("creating whiteout: {e}")))?;
                rustix::fs::chownat(
                    d.as_fd(),
                    name,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| err(format!("chown whiteout: {e}")))?;
            }
            Format::Copy | Format::Plain => {
                if let Some(d) = self.parent_dir(parent, false, shown)? {
                    fsutil::remove_all_at(d.as_fd(), name)
                        .map_err(|e| err(format!("deleting: {e}")))?;
                }
            }
        }
        let mut path = join(parent);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(target);
        self.forget(&path);
        Ok(())
    }

    /// Drops `path` and everything below it from the written set.
    fn forget(&mut self, path: &[u8]) {
        self.written.remove(path);
        let mut pre = path.to_vec();
        pre.push(b'/');
        let below: Vec<Vec<u8>> = self
            .written
            .range(pre.clone()..)
            .take_while(|p| p.starts_with(&pre))
            .cloned()
            .collect();
        for p in below {
            self.written.remove(&p);
        }
    }

    /// Whether this layer wrote `path` or something below it.
    fn wrote_under(&self, path: &[u8]) -> bool {
        if self.written.contains(path) {
            return true;
        }
        let mut pre = path.to_vec();
        pre.push(b'/');
        self.written
            .range(pre.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(&pre))
    }

    /// Copy format, opaque directory: removes everything below `dir` this layer did not write.
    /// `prefix` is the directory's path with a trailing `/` (empty for the root).
    fn prune(&self, dir: BorrowedFd<'_>, prefix: &[u8]) -> io::Result<()> {
        for n in fsutil::read_dir_sorted(dir)? {
            let mut child = prefix.to_vec();
            child.extend_from_slice(n.as_bytes());
            if !self.wrote_under(&child) {
                fsutil::remove_all_at(dir, &n)?;
                continue;
            }
            if fsutil::stat_at_opt(dir, &n)?.is_some_and(|m| m.is_dir()) {
                let sub = rustix::fs::openat(
                    dir,
                    &n,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                child.push(b'/');
                self.prune(sub.as_fd(), &child)?;
            }
        }
        Ok(())
    }

    /// Resolves `path` inside the target, symlinks followed as if the target were `/`.
    fn resolve(&self, path: &[u8]) -> io::Result<OwnedFd> {
        fsutil::resolve_in_root(self.root.as_fd(), path)
    }

    /// The directory holding an entry, resolved inside the target. Missing directories are
    /// created when `create` (with metadata from the lower layers); otherwise `None`.
    fn parent_dir(
        &mut self,
        comps: &[Vec<u8>],
        create: bool,
        shown: &str,
    ) -> Result<Option<OwnedFd>> {
        let err = |reason: String| Error::entry(shown.to_string(), reason);
        if comps.is_empty() {
            let fd = rustix::io::fcntl_dupfd_cloexec(&self.root, 0)
                .map_err(|e| err(format!("dup: {e}")))?;
            return Ok(Some(fd));
        }
        let path = join(comps);
        match self.resolve(&path) {
            Ok(fd) => {
                let m =
                    fsutil::stat_fd(fd.as_fd()).map_err(|e| err(format!("stat parent: {e}")))?;
                if !m.is_dir() {
                    return Err(err(format!(
                        "parent {:?} is not a directory",
                        display_path(&path)
                    )));
                }
                Ok(Some(fd))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if create {
                    self.create_parents(comps, shown).map(Some)
                } else {
                    Ok(None)
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(err(format!(
                "a parent in {:?} is not a directory",
                display_path(&path)
            ))),
            Err(e) => Err(err(format!(
                "resolving parent {:?}: {e}",
                display_path(&path)
            ))),
        }
    }

    fn create_parents(&mut self, comps: &[Vec<u8>], shown: &str) -> Result<OwnedFd> {
        let err = |reason: String| Error::entry(shown.to_string(), reason);
        let mut cur =
            rustix::io::fcntl_dupfd_cloexec(&self.root, 0).map_err(|e| err(format!("dup: {e}")))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            let pshown = display_path(&prefix);
            match self.resolve(&prefix) {
                Ok(fd) => {
                    let m = fsutil::stat_fd(fd.as_fd())
                        .map_err(|e| err(format!("stat {pshown:?}: {e}")))?;
                    if !m.is_dir() {
                        return Err(err(format!("parent {pshown:?} is not a directory")));
                    }
                    cur = fd;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let name = os(&comps[i]);
                    match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        Err(rustix::io::Errno::EXIST) => {
                            return Err(err(format!("parent {pshown:?} is a dangling symlink")));
                        }
                        Err(e) => return Err(err(format!("creating parent {pshown:?}: {e}"))),
                    }
                    self.implicit_dirs += 1;
                    let lower = self.lower_dir_meta(&prefix);
                    let (uid, gid, mode) = match lower {
                        Some(m) => (m.uid, m.gid, m.perm()),
                        None => {
                            let (u, g) = match self.extra.owner {
                                Some(o) => o,
                                None => self.map_ids(0, 0).map_err(&err)?,
                            };
                            (u, g, 0o755)
                        }
                    };
                    rustix::fs::chownat(
                        &cur,
                        name,
                        Some(Uid::from_raw(uid)),
                        Some(Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| err(format!("chown parent {pshown:?}: {e}")))?;
                    rustix::fs::chmodat(&cur, name, Mode::from_raw_mode(mode), AtFlags::empty())
                        .map_err(|e| err(format!("chmod parent {pshown:?}: {e}")))?;
                    if let Some(m) = lower {
                        self.dir_times
                            .push((comps[..=i].to_vec(), m.atime, m.mtime));
                    }
                    cur = self
                        .resolve(&prefix)
                        .map_err(|e| err(format!("opening parent {pshown:?}: {e}")))?;
                }
                Err(e) => return Err(err(format!("resolving parent {pshown:?}: {e}"))),
            }
        }
        Ok(cur)
    }

    /// The metadata of directory `path` in the topmost lower layer that has it as a real
    /// directory (no symlinks followed).
    fn lower_dir_meta(&self, path: &[u8]) -> Option<Meta> {
        self.lowers.iter().find_map(|l| {
            let fd = fsutil::open_dir_beneath(l.as_fd(), Path::new(os(path))).ok()?;
            fsutil::stat_fd(fd.as_fd()).ok()
        })
    }

    /// Directory times, last: writing into a directory changes its mtime.
    fn finish(&mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        for (comps, atime, mtime) in times {
            let shown = display_path(&join(&comps));
            let Some((base, parent)) = comps.split_last() else {
                fsutil::set_times(self.root.as_fd(), OsStr::new("."), atime, mtime)
                    .map_err(|e| Error::entry(shown.clone(), format!("times: {e}")))?;
                continue;
            };
            let Some(p) = self.parent_dir(parent, false, &shown)? else {
                continue;
            };
            match fsutil::stat_at_opt(p.as_fd(), os(base)) {
                Ok(Some(m)) if m.is_dir() => {
                    fsutil::set_times(p.as_fd(), os(base), atime, mtime)
                        .map_err(|e| Error::entry(shown.clone(), format!("times: {e}")))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Dir,
    File,
    Symlink,
    Node,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(
            normalize(b"./a//b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            normalize(b"/etc/passwd").unwrap(),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert!(normalize(b"a/../b").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize(b"./").unwrap().is_empty());
    }

    #[test]
    fn pax_times() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1700000000, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn detects_compression() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(detect(b"etc/").unwrap(), Compression::None);
        assert!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]).is_err());
    }
}
