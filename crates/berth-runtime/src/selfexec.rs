//! Protection against a container overwriting the runtime binary (the CVE-2019-5736 class).
//!
//! Every process the runtime puts into a container starts as a fork of the runtime, so for a
//! moment `/proc/<pid>/exe` of a process inside the container points at the runtime binary.
//! A hostile container can open that link (or exec it through `#!/proc/self/exe`) and write to
//! the host's binary once the runtime exits. Before doing anything else, `create`, `run` and
//! `exec` therefore re-execute the runtime from a read-only view of itself: a detached,
//! read-only bind mount of the binary (no copy, two system calls), or, where the kernel lacks
//! the new mount API, a sealed in-memory copy. Either way, what the container can reach is
//! something nobody can write to, never the writable file on the host.

use std::ffi::CString;
use std::io::{Error as IoError, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Context, Result};

const MEMFD_NAME: &str = "berth-runtime";

/// Whether this process already runs from something read-only: the sealed copy, or a binary
/// on a read-only mount (our detached bind, or a read-only /usr).
pub fn is_sealed() -> bool {
    if std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.as_os_str()
                .as_bytes()
                .starts_with(b"/memfd:berth-runtime")
        })
        .unwrap_or(false)
    {
        return true;
    }
    rustix::fs::statvfs("/proc/self/exe")
        .map(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
        .unwrap_or(false)
}

/// Re-executes the current process image from a sealed memfd copy, with the same arguments and
/// environment. Returns only on failure, or immediately when already sealed.
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let memfd = match readonly_view() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("read-only bind of the runtime binary failed ({e}); copying it");
            sealed_copy()?
        }
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Err(IoError::last_os_error()).ctx(|| "re-executing the runtime from its sealed copy")
}

/// A detached, read-only bind mount of our own binary, opened for exec.
fn readonly_view() -> Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        "/proc/self/exe",
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .ctx(|| "cloning a mount of the runtime binary")?;
    crate::rootfs::mount_setattr(
        std::os::fd::AsFd::as_fd(&tree),
        false,
        crate::mountopts::attr::RDONLY
            | crate::mountopts::attr::NOSUID
            | crate::mountopts::attr::NODEV,
        0,
        0,
        None,
    )
    .ctx(|| "making the runtime binary's mount read-only")?;
    Ok(tree)
}

/// Copies /proc/self/exe into a memfd and seals it against every kind of change.
fn sealed_copy() -> Result<OwnedFd> {
    let name = CString::new(MEMFD_NAME).unwrap_or_default();
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a valid name; the result is checked.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), base | MFD_EXEC) };
    if fd < 0 && IoError::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Kernels before 6.3 do not know MFD_EXEC.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), base) };
    }
    if fd < 0 {
        return Err(IoError::last_os_error()).ctx(|| "creating a memfd for the runtime copy");
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let exe = std::fs::File::open("/proc/self/exe").ctx(|| "opening /proc/self/exe")?;
    let size = exe.metadata().ctx(|| "reading /proc/self/exe")?.len();
    let mut left = size as usize;
    while left > 0 {
        // SAFETY: both fds are valid; offsets are managed by the kernel.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        if n < 0 {
            let e = IoError::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e).ctx(|| "copying the runtime into its memfd");
        }
        if n == 0 {
            break;
        }
        left -= n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a valid memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(IoError::last_os_error()).ctx(|| "sealing the runtime memfd");
    }
    Ok(memfd)
}
