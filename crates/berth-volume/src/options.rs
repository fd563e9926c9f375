//! The local driver's options (`docker volume create --opt type=… --opt device=… --opt o=…`)
//! and the mount they describe.
//!
//! As in Docker, `type` is the file-system type handed to mount(2), `device` its source and
//! `o` a comma-separated list of mount options: the generic ones (`ro`, `nosuid`, `bind`, …)
//! become mount flags, the rest (`size=64m`, `mode=1777`, `uid=…`) the file system's data.
//! `type=none` with `o=bind` (or `rbind`) and an absolute `device` is a bind volume: the host
//! directory is bind-mounted on the volume's `_data`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The options the local driver accepts.
pub const VALID_OPTIONS: [&str; 3] = ["type", "device", "o"];

/// A volume's mount, parsed and validated from its options at create time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// The file-system type (`tmpfs`, `ext4`, `none` for a bind).
    pub fstype: String,
    /// The source: a device, a host directory for a bind, `tmpfs` for tmpfs.
    pub device: String,
    /// The `o` option as given.
    pub options: String,
}

/// Generic mount options and the flags they set (`true`) or clear (`false`).
const FLAGS: &[(&str, bool, MountFlags)] = &[
    ("ro", true, MountFlags::RDONLY),
    ("rw", false, MountFlags::RDONLY),
    ("nosuid", true, MountFlags::NOSUID),
    ("suid", false, MountFlags::NOSUID),
    ("nodev", true, MountFlags::NODEV),
    ("dev", false, MountFlags::NODEV),
    ("noexec", true, MountFlags::NOEXEC),
    ("exec", false, MountFlags::NOEXEC),
    ("sync", true, MountFlags::SYNCHRONOUS),
    ("async", false, MountFlags::SYNCHRONOUS),
    ("dirsync", true, MountFlags::DIRSYNC),
    ("noatime", true, MountFlags::NOATIME),
    ("atime", false, MountFlags::NOATIME),
    ("nodiratime", true, MountFlags::NODIRATIME),
    ("diratime", false, MountFlags::NODIRATIME),
    ("relatime", true, MountFlags::RELATIME),
    ("norelatime", false, MountFlags::RELATIME),
    ("strictatime", true, MountFlags::STRICTATIME),
    ("lazytime", true, MountFlags::LAZYTIME),
    ("nosymfollow", true, MountFlags::NOSYMFOLLOW),
];

/// `o` split into mount flags, whether it asks for a (recursive) bind, and the data string.
#[derive(Debug)]
struct Parsed {
    flags: MountFlags,
    bind: Option<bool>,
    data: Vec<String>,
}

fn parse_o(o: &str) -> Parsed {
    let mut p = Parsed {
        flags: MountFlags::empty(),
        bind: None,
        data: Vec::new(),
    };
    for opt in o.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if opt == "bind" {
            p.bind = Some(false);
        } else if opt == "rbind" {
            p.bind = Some(true);
        } else if let Some((_, set, f)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
            if *set {
                p.flags |= *f;
            } else {
                p.flags &= !*f;
            }
        } else {
            p.data.push(opt.to_string());
        }
    }
    p
}

/// A size as tmpfs takes it: digits with an optional `k`, `m`, `g`, `t`, `p`, `e` or `%`.
fn valid_tmpfs_size(v: &str) -> bool {
    let digits = v.trim_end_matches(|c: char| "kKmMgGtTpPeE%".contains(c));
    !digits.is_empty() && v.len() - digits.len() <= 1 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Validates a volume's options and turns them into a [`MountSpec`]; `None` when there are
/// none (a plain directory volume). Nothing is touched on disk.
pub fn parse(name: &str, opts: &BTreeMap<String, String>) -> Result<Option<MountSpec>> {
    let bad = |key: &str, reason: String| Error::BadOption {
        name: name.to_string(),
        key: key.to_string(),
        reason,
    };
    if let Some(key) = opts.keys().find(|k| !VALID_OPTIONS.contains(&k.as_str())) {
        return Err(Error::UnknownOption {
            name: name.to_string(),
            key: key.clone(),
        });
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let fstype = opts.get("type").map(|s| s.trim()).unwrap_or_default();
    let device = opts.get("device").map(|s| s.trim()).unwrap_or_default();
    let o = opts.get("o").map(String::as_str).unwrap_or_default();
    if fstype.is_empty() {
        return Err(bad(
            "type",
            "missing: \"device\" and \"o\" need a file-system type".into(),
        ));
    }
    if fstype.contains(['\0', ',']) || device.contains('\0') || o.contains('\0') {
        return Err(bad("type", "contains a NUL byte or a comma".into()));
    }
    let p = parse_o(o);
    let device = match fstype {
        "none" => {
            if p.bind.is_none() {
                return Err(bad(
                    "o",
                    "type \"none\" needs \"bind\" or \"rbind\" in \"o\"".into(),
                ));
            }
            if !Path::new(device).is_absolute() {
                return Err(bad(
                    "device",
                    format!("a bind needs an absolute host path, not {device:?}"),
                ));
            }
            if let Some(d) = p.data.first() {
                return Err(bad("o", format!("{d:?} is not a bind mount option")));
            }
            device.to_string()
        }
        "tmpfs" => {
            for d in &p.data {
                let (k, v) = d.split_once('=').unwrap_or((d, ""));
                let ok = match k {
                    "size" | "nr_blocks" | "nr_inodes" => valid_tmpfs_size(v),
                    "mode" => !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)),
                    "uid" | "gid" => !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                    _ => true, // huge=, mpol=, inode64…: the kernel judges them at mount
                };
                if !ok {
                    return Err(bad("o", format!("invalid tmpfs option {d:?}")));
                }
            }
            if p.bind.is_some() {
                return Err(bad("o", "a tmpfs cannot be a bind".into()));
            }
            if device.is_empty() {
                "tmpfs".to_string()
            } else {
                device.to_string()
            }
        }
        _ => {
            if device.is_empty() {
                return Err(bad("device", format!("type {fstype:?} needs a device")));
            }
            device.to_string()
        }
    };
    Ok(Some(MountSpec {
        fstype: fstype.to_string(),
        device,
        options: o.to_string(),
    }))
}

impl MountSpec {
    /// Whether this is a bind of a host directory.
    pub fn is_bind(&self) -> bool {
        parse_o(&self.options).bind.is_some()
    }

    /// Mounts the file system on `target`.
    pub(crate) fn mount(&self, target: &Path) -> io::Result<()> {
        let p = parse_o(&self.options);
        if let Some(recursive) = p.bind {
            let src = Path::new(&self.device);
            if !std::fs::metadata(src)?.is_dir() {
                return Err(io::Error::other(format!(
                    "bind source {} is not a directory",
                    src.display()
                )));
            }
            if recursive {
                rustix::mount::mount_bind_recursive(src, target)?;
            } else {
                rustix::mount::mount_bind(src, target)?;
            }
            if !p.flags.is_empty() {
                // Flags of a bind mount take a remount of the bind.
                let r = rustix::mount::mount_remount(target, MountFlags::BIND | p.flags, "");
                if let Err(e) = r {
                    let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
                    return Err(e.into());
                }
            }
            return Ok(());
        }
        let data = CString::new(p.data.join(","))
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        rustix::mount::mount(
            self.device.as_str(),
            target,
            self.fstype.as_str(),
            p.flags,
            Some(data.as_c_str()),
        )?;
        Ok(())
    }
}

/// Unmounts `target`, lazily if it is busy; not mounted is success.
pub(crate) fn unmount(target: &Path) -> io::Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => Ok(()), // not a mount point
        Err(rustix::io::Errno::BUSY) => Ok(rustix::mount::unmount(
            target,
            UnmountFlags::DETACH | UnmountFlags::NOFOLLOW,
        )?),
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` is a mount point (its mount id differs from its parent's, or it is the
/// root of a bind of a directory on the same file system).
pub(crate) fn is_mount_point(path: &Path) -> io::Result<bool> {
    let target = std::fs::canonicalize(path)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| Path::new(&unescape(mp)) == target)
    }))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_refuses_options() {
        assert_eq!(parse("v", &opts(&[])).unwrap(), None);
        let t = parse("v", &opts(&[("type", "tmpfs"), ("o", "size=1m,mode=700")]))
            .unwrap()
            .unwrap();
        assert_eq!(t.device, "tmpfs");
        let e = parse("v", &opts(&[("type", "tmpfs"), ("foo", "1")])).unwrap_err();
        assert_eq!(e.to_string(), "create v: invalid option key: \"foo\"");
        let e = parse("v", &opts(&[("type", "tmpfs"), ("o", "size=lots")])).unwrap_err();
        assert!(e.to_string().contains("size=lots"), "{e}");
        let e = parse("v", &opts(&[("type", "none"), ("device", "/x")])).unwrap_err();
        assert!(e.to_string().contains("bind"), "{e}");
        let e = parse(
            "v",
            &opts(&[("type", "none"), ("o", "bind"), ("device", "rel")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let b = parse(
            "v",
            &opts(&[("type", "none"), ("o", "bind,ro"), ("device", "/srv")]),
        )
        .unwrap()
        .unwrap();
        assert!(b.is_bind());
        let e = parse("v", &opts(&[("o", "size=1m")])).unwrap_err();
        assert!(e.to_string().contains("\"type\""), "{e}");
        let e = parse("v", &opts(&[("type", "ext4")])).unwrap_err();
        assert!(e.to_string().contains("device"), "{e}");
    }

    #[test]
    fn o_splits_flags_from_data() {
        let p = parse_o("ro,nosuid,size=10m,rw,mode=1777");
        assert_eq!(p.flags, MountFlags::NOSUID);
        assert_eq!(p.data, ["size=10m", "mode=1777"]);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
