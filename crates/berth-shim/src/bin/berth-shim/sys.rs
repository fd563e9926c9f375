//! Thin wrappers over the system calls rustix does not cover (fork, waitpid on any child,
//! signalfd, signal masks), each with its safety argument.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Forks. `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// Only for daemonizing, before the shim starts its log writer thread: the process is
/// single-threaded then, so the child is a faithful copy. Children started later use
/// `std::process::Command`, whose child runs only async-signal-safe code until exec.
pub fn fork() -> io::Result<Option<i32>> {
    // SAFETY: called only while the process is single-threaded (main's double fork, before
    // the log writer thread exists), so the child inherits consistent allocator and libc
    // state.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

/// Ends the process at once, without running destructors or atexit handlers (for forked
/// children, whose parent owns the buffers and files).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid` (-1: any child). `Ok(None)` with `nohang` when no child has exited, or when
/// there is no such child.
pub fn waitpid(pid: i32, nohang: bool) -> io::Result<Option<(i32, i32)>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid with a valid pointer to an int.
        let r = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
        match r {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => return Ok(None),
                    _ => return Err(e),
                }
            }
            p => return Ok(Some((p, status))),
        }
    }
}

/// The exit code Docker reports for a wait status: the exit status, or 128+N for signal N.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Blocks SIGCHLD and returns a non-blocking signalfd that reports it. Children started with
/// std's `Command` get an empty signal mask back.
pub fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local, then sigprocmask and signalfd with valid
    // pointers; the process is single-threaded.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads and discards everything pending on a signalfd.
pub fn drain_signalfd(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 128 * 4];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Ignores SIGPIPE (writes to closed sockets and pipes return EPIPE instead), and SIGHUP.
pub fn ignore_signals() {
    // SAFETY: setting dispositions to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Receives one fd sent with SCM_RIGHTS on a connected socket (the runtime's console socket
/// protocol: the pty's name as data, the master as the right).
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 512];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no file descriptor received",
    ))
}

/// Grows a pipe's buffer (best effort): a bigger kernel buffer between the shim and its log
/// writer absorbs slow disks without growing the shim's own memory.
/// Waits up to `limit` for the other end of the pipe `fd` reads from to be closed (POLLHUP).
/// Returns whether it was.
pub fn wait_hangup(fd: BorrowedFd<'_>, limit: std::time::Duration) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return true;
        }
        if r > 0 {
            // Nobody writes to it; drain whatever it is and wait again.
            let mut b = [0u8; 64];
            let _ = read_fd(fd, &mut b);
        }
        if r == 0 || left.is_zero() {
            return false;
        }
    }
}

pub fn grow_pipe(fd: BorrowedFd<'_>, size: usize) {
    let _ = rustix::pipe::fcntl_setpipe_size(fd, size);
}

/// Whether an I/O error means "try again later".
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted
}

/// Reads into `buf`, mapping EIO (a pty master whose slave side is gone) to end of file.
pub fn read_fd(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    match rustix::io::read(fd, buf) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::IO) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Blocks every signal in the calling thread (the log writer: signals are the main loop's).
pub fn block_all_signals() {
    // SAFETY: sigset manipulation on a local, then pthread_sigmask with valid pointers.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
