//! Linux capabilities: the five OCI sets, applied to the container's process.
//!
//! Capability names are checked when config.json is parsed (an unknown name is refused there,
//! naming the field). Here they become numbers and are applied in the order the kernel
//! requires: bounding set first (needs CAP_SETPCAP), then — after the uid switch, which keeps
//! the permitted set thanks to `PR_SET_KEEPCAPS` — effective/permitted/inheritable, then ambient.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use crate::error::{Context, Result};

/// The kernel's number for a capability.
pub fn number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Every capability this runtime knows, by name (for `features`).
pub fn known_names() -> Vec<String> {
    let mut v: Vec<(u32, String)> = ALL.iter().map(|c| (number(*c), c.to_string())).collect();
    v.sort();
    v.into_iter().map(|(_, n)| format!("CAP_{n}")).collect()
}

const ALL: [Capability; 41] = {
    use Capability::*;
    [
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        LinuxImmutable,
        NetBindService,
        NetBroadcast,
        NetAdmin,
        NetRaw,
        IpcLock,
        IpcOwner,
        SysModule,
        SysRawio,
        SysChroot,
        SysPtrace,
        SysPacct,
        SysAdmin,
        SysBoot,
        SysNice,
        SysResource,
        SysTime,
        SysTtyConfig,
        Mknod,
        Lease,
        AuditWrite,
        AuditControl,
        Setfcap,
        MacOverride,
        MacAdmin,
        Syslog,
        WakeAlarm,
        BlockSuspend,
        AuditRead,
        Perfmon,
        Bpf,
        CheckpointRestore,
    ]
};

/// The highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Capability sets as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(set: &Option<Capabilities>) -> u64 {
    set.as_ref()
        .map(|s| s.iter().fold(0u64, |m, c| m | (1u64 << number(*c))))
        .unwrap_or(0)
}

impl Sets {
    /// The sets an OCI `process.capabilities` asks for (absent means none).
    pub fn from_oci(c: Option<&LinuxCapabilities>) -> Sets {
        match c {
            None => Sets::default(),
            Some(c) => Sets {
                bounding: mask(c.bounding()),
                effective: mask(c.effective()),
                permitted: mask(c.permitted()),
                inheritable: mask(c.inheritable()),
                ambient: mask(c.ambient()),
            },
        }
    }

    /// Adds capabilities (by number) to bounding, effective, permitted and inheritable: what
    /// `exec --cap` does.
    pub fn add(&mut self, caps: u64) {
        self.bounding |= caps;
        self.effective |= caps;
        self.permitted |= caps;
        self.inheritable |= caps;
    }
}

/// Step 1, while still privileged: drop from the bounding set everything not in `sets.bounding`.
pub fn drop_bounding(sets: &Sets) -> Result<()> {
    for cap in 0..=last_cap().min(63) {
        if sets.bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                // EINVAL: the kernel does not know this capability; nothing to drop.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e)
                        .ctx(|| format!("dropping capability {cap} from the bounding set"));
                }
            }
        }
    }
    Ok(())
}

/// Step 2, after the uid switch: set effective, permitted and inheritable, then the ambient set.
pub fn apply(sets: &Sets) -> Result<()> {
    let last = last_cap().min(63);
    let keep = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let mut data = [libc_cap_data::default(); 2];
    let (e, p, i) = (
        sets.effective & keep,
        sets.permitted & keep,
        sets.inheritable & keep,
    );
    data[0] = libc_cap_data {
        effective: e as u32,
        permitted: p as u32,
        inheritable: i as u32,
    };
    data[1] = libc_cap_data {
        effective: (e >> 32) as u32,
        permitted: (p >> 32) as u32,
        inheritable: (i >> 32) as u32,
    };
    let mut hdr = libc_cap_header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    // SAFETY: capset with a correctly sized v3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| {
            format!("setting capabilities (effective {e:#x}, permitted {p:#x}, inheritable {i:#x})")
        });
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    for cap in 0..=last {
        if sets.ambient & (1 << cap) != 0 {
            // SAFETY: as above.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            if r != 0 {
                // runc ignores ambient failures (the capability must be in permitted and
                // inheritable); do the same but say so.
                tracing::debug!(
                    "cannot raise ambient capability {cap}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    Ok(())
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
#[allow(non_camel_case_types)]
struct libc_cap_data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
#[allow(non_camel_case_types)]
struct libc_cap_header {
    version: u32,
    pid: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel_header() {
        assert_eq!(number(Capability::SysAdmin), 21);
        assert_eq!(number(Capability::CheckpointRestore), 40);
        assert_eq!(known_names().len(), 41);
        assert_eq!(known_names()[0], "CAP_CHOWN");
        let names = known_names();
        let mut uniq = names.clone();
        uniq.dedup();
        assert_eq!(uniq.len(), names.len());
    }
}
