//! Parsing of OCI mount options (`"ro"`, `"rbind"`, `"rnosuid"`, `"mode=755"`, …) into the
//! flags and data the mount system calls take.

/// `MOUNT_ATTR_*` bits of mount_setattr(2).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x00;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const IDMAP: u64 = 0x100000;
    pub const NOSYMFOLLOW: u64 = 0x200000;
}

/// A mount's options, sorted by the system call that consumes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set.
    pub flags: u64,
    /// `MS_*` flags the options explicitly clear (`rw`, `suid`, …).
    pub clear: u64,
    /// Propagation changes (`MS_SHARED`, `MS_PRIVATE|MS_REC`, …), applied in order after mounting.
    pub propagation: Vec<u64>,
    /// Recursive attributes to set and clear with mount_setattr(AT_RECURSIVE) (`rro`, `rnosuid`, …).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Filesystem-specific options, passed as the data string.
    pub data: Vec<String>,
    /// `Some(recursive)` when `idmap`/`ridmap` asks for an idmapped mount.
    pub idmap: Option<bool>,
    /// crun's `tmpcopyup`: copy the image's content at the destination into a new tmpfs.
    pub tmpcopyup: bool,
}

impl MountOptions {
    /// Sorts `opts` into flags, propagation, recursive attributes and data.
    pub fn parse(opts: &[String]) -> MountOptions {
        let mut m = MountOptions::default();
        for o in opts {
            if let Some((set, f)) = flag(o) {
                if set {
                    m.flags |= f;
                    m.clear &= !f;
                } else {
                    m.flags &= !f;
                    m.clear |= f;
                }
            } else if let Some(p) = propagation_flag(o) {
                m.propagation.push(p);
            } else if let Some((set, a)) = rec_attr(o) {
                if set {
                    m.rec_set |= a;
                    m.rec_clear &= !a;
                } else {
                    m.rec_clear |= a;
                    m.rec_set &= !a;
                }
            } else {
                match o.as_str() {
                    "idmap" => m.idmap = Some(false),
                    "ridmap" => m.idmap = Some(true),
                    "tmpcopyup" => m.tmpcopyup = true,
                    // Options some engines pass that need no action here.
                    "copy-symlink" | "src-nofollow" | "notmpcopyup" => {}
                    _ => m.data.push(o.clone()),
                }
            }
        }
        m
    }

    /// Whether this is a bind mount (`bind`/`rbind`).
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// Whether the bind is recursive (`rbind`).
    pub fn is_recursive(&self) -> bool {
        self.flags & libc::MS_REC != 0
    }

    /// The `MOUNT_ATTR_*` bits to set and clear on the mount itself (not recursively),
    /// derived from the `MS_*` flags.
    pub fn attrs(&self) -> (u64, u64) {
        let map = [
            (libc::MS_RDONLY, attr::RDONLY),
            (libc::MS_NOSUID, attr::NOSUID),
            (libc::MS_NODEV, attr::NODEV),
            (libc::MS_NOEXEC, attr::NOEXEC),
            (libc::MS_NODIRATIME, attr::NODIRATIME),
            (libc::MS_NOSYMFOLLOW, attr::NOSYMFOLLOW),
        ];
        let (mut set, mut clr) = (0, 0);
        for (ms, a) in map {
            if self.flags & ms != 0 {
                set |= a;
            }
            if self.clear & ms != 0 {
                clr |= a;
            }
        }
        for (ms, a) in [
            (libc::MS_NOATIME, attr::NOATIME),
            (libc::MS_STRICTATIME, attr::STRICTATIME),
            (libc::MS_RELATIME, attr::RELATIME),
        ] {
            if self.flags & ms != 0 {
                set = (set & !attr::ATIME_MASK) | a;
                clr |= attr::ATIME_MASK;
            }
        }
        (set, clr)
    }

    /// The data string for mount(2).
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }
}

/// `(set, MS_flag)` for a flag option.
fn flag(o: &str) -> Option<(bool, u64)> {
    Some(match o {
        "async" => (false, libc::MS_SYNCHRONOUS),
        "atime" => (false, libc::MS_NOATIME),
        "bind" => (true, libc::MS_BIND),
        "defaults" => (true, 0),
        "dev" => (false, libc::MS_NODEV),
        "diratime" => (false, libc::MS_NODIRATIME),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "exec" => (false, libc::MS_NOEXEC),
        "iversion" => (true, libc::MS_I_VERSION),
        "lazytime" => (true, libc::MS_LAZYTIME),
        "loud" => (false, libc::MS_SILENT),
        "mand" => (true, libc::MS_MANDLOCK),
        "noatime" => (true, libc::MS_NOATIME),
        "nodev" => (true, libc::MS_NODEV),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "noexec" => (true, libc::MS_NOEXEC),
        "noiversion" => (false, libc::MS_I_VERSION),
        "nolazytime" => (false, libc::MS_LAZYTIME),
        "nomand" => (false, libc::MS_MANDLOCK),
        "norelatime" => (false, libc::MS_RELATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "nosuid" => (true, libc::MS_NOSUID),
        "nosymfollow" => (true, libc::MS_NOSYMFOLLOW),
        "rbind" => (true, libc::MS_BIND | libc::MS_REC),
        "relatime" => (true, libc::MS_RELATIME),
        "remount" => (true, libc::MS_REMOUNT),
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "silent" => (true, libc::MS_SILENT),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "suid" => (false, libc::MS_NOSUID),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        "symfollow" => (false, libc::MS_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The `MS_*` propagation flags for a propagation option or `linux.rootfsPropagation` value.
pub fn propagation_flag(o: &str) -> Option<u64> {
    Some(match o {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// `(set, MOUNT_ATTR_*)` for a recursive attribute option.
fn rec_attr(o: &str) -> Option<(bool, u64)> {
    Some(match o {
        "rro" => (true, attr::RDONLY),
        "rrw" => (false, attr::RDONLY),
        "rnosuid" => (true, attr::NOSUID),
        "rsuid" => (false, attr::NOSUID),
        "rnodev" => (true, attr::NODEV),
        "rdev" => (false, attr::NODEV),
        "rnoexec" => (true, attr::NOEXEC),
        "rexec" => (false, attr::NOEXEC),
        "rnodiratime" => (true, attr::NODIRATIME),
        "rdiratime" => (false, attr::NODIRATIME),
        "rrelatime" => (true, attr::RELATIME),
        "rnorelatime" => (false, attr::RELATIME),
        "rnoatime" => (true, attr::NOATIME),
        "ratime" => (false, attr::NOATIME),
        "rstrictatime" => (true, attr::STRICTATIME),
        "rnostrictatime" => (false, attr::STRICTATIME),
        "rnosymfollow" => (true, attr::NOSYMFOLLOW),
        "rsymfollow" => (false, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// Every option name this runtime understands, for `berth-runtime features`.
pub fn known_options() -> Vec<&'static str> {
    let mut v = vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rw",
        "silent",
        "strictatime",
        "suid",
        "sync",
        "symfollow",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
        "idmap",
        "ridmap",
        "tmpcopyup",
    ];
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> MountOptions {
        MountOptions::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sorts_options() {
        let m = p(&[
            "rbind", "ro", "nosuid", "rprivate", "mode=755", "rnodev", "size=64k",
        ]);
        assert!(m.is_bind() && m.is_recursive());
        assert_eq!(m.flags & libc::MS_RDONLY, libc::MS_RDONLY);
        assert_eq!(m.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(m.rec_set, attr::NODEV);
        assert_eq!(m.data_string(), "mode=755,size=64k");
        let (set, _) = m.attrs();
        assert_eq!(set, attr::RDONLY | attr::NOSUID);
    }

    #[test]
    fn later_options_win() {
        let m = p(&["ro", "rw"]);
        assert_eq!(m.flags & libc::MS_RDONLY, 0);
        assert_eq!(m.clear & libc::MS_RDONLY, libc::MS_RDONLY);
        let m = p(&["idmap"]);
        assert_eq!(m.idmap, Some(false));
    }
}
