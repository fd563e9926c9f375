//! Helpers shared by the integration tests: layer tars built in code, a mount guard, and a
//! manifest of a directory tree for comparing views.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{Mount, mount_all, unmount};

/// The integration tests need root (mounts, mknod, chown, trusted.* xattrs).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skips the calling test when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A file capability blob (VFS_CAP_REVISION_2, effective, CAP_NET_RAW permitted).
pub const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A layer tar built entry by entry, like a real image layer.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Layer {
            b: tar::Builder::new(Vec::new()),
            mtime: 1_600_000_000,
        }
    }

    fn header(&self, typ: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(typ);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(self.mtime);
        h.set_size(0);
        h
    }

    fn add(&mut self, mut h: tar::Header, path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) {
        if !xattrs.is_empty() {
            let recs: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                .collect();
            self.b
                .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let h = self.header(tar::EntryType::Directory, mode, 0, 0);
        self.add(h, &format!("{}/", path.trim_end_matches('/')), b"", &[]);
        self
    }

    pub fn dir_owned(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        let h = self.header(tar::EntryType::Directory, mode, uid, gid);
        self.add(h, &format!("{}/", path.trim_end_matches('/')), b"", &[]);
        self
    }

    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_full(path, data, 0o644, 0, 0, &[])
    }

    pub fn file_full(
        mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: &[(&str, &[u8])],
    ) -> Self {
        let h = self.header(tar::EntryType::Regular, mode, uid, gid);
        self.add(h, path, data, xattrs);
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(tar::EntryType::Link, 0o644, 0, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn fifo(mut self, path: &str) -> Self {
        let h = self.header(tar::EntryType::Fifo, 0o600, 0, 0);
        self.add(h, path, b"", &[]);
        self
    }

    pub fn chardev(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut h = self.header(tar::EntryType::Char, 0o666, 0, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.add(h, path, b"", &[]);
        self
    }

    /// `.wh.<name>` deleting `path`.
    pub fn whiteout(self, path: &str) -> Self {
        let p = Path::new(path);
        let wh = format!(".wh.{}", p.file_name().unwrap().to_str().unwrap());
        let full = p.with_file_name(wh);
        self.file(full.to_str().unwrap(), b"")
    }

    /// `<dir>/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }

    pub fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// Unmounts its target when dropped, so a failing test leaves no mount behind.
pub struct MountGuard(pub PathBuf);

impl MountGuard {
    pub fn mount(mounts: &[Mount], target: &Path) -> Self {
        std::fs::create_dir_all(target).unwrap();
        mount_all(mounts, target).unwrap();
        MountGuard(target.to_path_buf())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            eprintln!("cleanup: unmounting {}: {e}", self.0.display());
        }
    }
}

/// One line per object below `root` (not following symlinks): type, mode, owner, size,
/// content, link target, device, mtime (seconds) and the xattrs a container would see.
pub fn manifest(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            if data.len() <= 64 {
                format!("file {:?}", String::from_utf8_lossy(&data))
            } else {
                format!(
                    "file {} bytes sum {}",
                    data.len(),
                    data.iter().map(|b| u64::from(*b)).sum::<u64>()
                )
            }
        } else if ft.is_char_device() {
            format!("chr {}", m.rdev())
        } else if ft.is_block_device() {
            format!("blk {}", m.rdev())
        } else if ft.is_fifo() {
            "fifo".into()
        } else {
            "other".into()
        };
        let mut xattrs = Vec::new();
        let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = rustix::fs::llistxattr(path.as_c_str(), &mut buf[..]) {
            for k in buf[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
                let key = std::ffi::CString::new(k).unwrap();
                let mut v = vec![0u8; 4096];
                let n = rustix::fs::lgetxattr(path.as_c_str(), key.as_c_str(), &mut v[..]).unwrap();
                xattrs.push(format!("{}={:?}", String::from_utf8_lossy(k), &v[..n]));
            }
        }
        xattrs.sort();
        let mtime = m.mtime();
        out.insert(
            rel,
            format!(
                "{what} mode={:o} owner={}:{} mtime={mtime} xattrs=[{}]",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                xattrs.join(",")
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Differences between two manifests, for readable assertion failures.
pub fn manifest_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("only left:  {k}: {v}")),
            Some(w) if w != v => out.push(format!("differs:    {k}: {v}  vs  {w}")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            out.push(format!("only right: {k}: {v}"));
        }
    }
    out
}
