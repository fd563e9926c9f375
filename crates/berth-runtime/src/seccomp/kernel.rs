//! The raw seccomp(2) calls: probing what the running kernel supports, and loading a filter.
//!
//! Nothing here calls libseccomp, and [`set_mode_filter`] allocates nothing, so it can run
//! in a freshly forked child of a multi-threaded process.

use std::io;
use std::sync::OnceLock;

use super::{
    FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH,
    FLAG_WAIT_KILLABLE_RECV,
};

/// Calls seccomp(2); returns its non-negative result or the errno.
///
/// # Safety
/// `args` must be what `op` expects (or null, for the probes that rely on EFAULT).
unsafe fn seccomp(op: libc::c_uint, flags: u32, args: *const libc::c_void) -> Result<i64, i32> {
    // SAFETY: forwarded from the caller.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            op as libc::c_ulong,
            flags as libc::c_ulong,
            args,
        )
    };
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// The calling thread's errno, read without allocating.
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Loads `filter` with seccomp(SECCOMP_SET_MODE_FILTER, flags).
///
/// Returns the syscall's result: the listener fd with `SECCOMP_FILTER_FLAG_NEW_LISTENER`,
/// a thread id when `SECCOMP_FILTER_FLAG_TSYNC` (without `_ESRCH`) failed to synchronise
/// it, else 0. Allocation-free.
pub(super) fn set_mode_filter(filter: &[libc::sock_filter], flags: u32) -> Result<i64, i32> {
    let Ok(len) = u16::try_from(filter.len()) else {
        return Err(libc::EINVAL);
    };
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer.
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` valid instructions and outlives the call.
    unsafe {
        seccomp(
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            (&raw const prog).cast(),
        )
    }
}

/// Every filter flag this module knows, with its spec name and its bit.
pub(super) const KNOWN_FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// Whether the running kernel accepts filter flag `bit`: Ok, or the errno of the refusal.
///
/// Asks seccomp(SECCOMP_SET_MODE_FILTER) to load a filter from a null pointer, as runc and
/// crun do: the kernel validates the flags before it copies the program, so a flag it knows
/// yields EFAULT and one it does not yields EINVAL. Nothing is ever installed.
fn probe_flag(bit: u32) -> Result<(), i32> {
    // WAIT_KILLABLE_RECV is refused on its own: it only means something with a listener.
    let flags = if bit == FLAG_WAIT_KILLABLE_RECV {
        bit | FLAG_NEW_LISTENER
    } else {
        bit
    };
    // SAFETY: a null program is never dereferenced; the kernel fails the copy with EFAULT.
    match unsafe { seccomp(libc::SECCOMP_SET_MODE_FILTER, flags, std::ptr::null()) } {
        Err(libc::EFAULT) => Ok(()),
        Err(e) => Err(e),
        // Cannot happen (there is no program to load); count it as unsupported.
        Ok(_) => Err(libc::EINVAL),
    }
}

/// The set of filter flags (known ones plus NEW_LISTENER and TSYNC_ESRCH) that the kernel
/// accepts, probed once per process.
pub(super) fn supported_flags() -> u32 {
    static SUPPORTED: OnceLock<u32> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let all = KNOWN_FLAGS.iter().map(|&(_, bit)| bit);
        all.chain([FLAG_NEW_LISTENER, FLAG_TSYNC_ESRCH])
            .filter(|&bit| probe_flag(bit).is_ok())
            .fold(0, |acc, bit| acc | bit)
    })
}

/// Why the kernel refuses flag `bit`, as an errno (None when it accepts it).
pub(super) fn flag_refusal(bit: u32) -> Option<i32> {
    probe_flag(bit).err()
}

/// Whether the kernel can run filters at all (seccomp(2) exists and knows SECCOMP_RET_ALLOW).
pub(super) fn seccomp_available() -> bool {
    action_available(libc::SECCOMP_RET_ALLOW)
}

/// Whether the kernel knows the filter return action `ret` (SECCOMP_GET_ACTION_AVAIL).
pub(super) fn action_available(ret: u32) -> bool {
    // SAFETY: the kernel reads one u32 through the pointer, which outlives the call.
    unsafe { seccomp(libc::SECCOMP_GET_ACTION_AVAIL, 0, (&raw const ret).cast()) }.is_ok()
}
