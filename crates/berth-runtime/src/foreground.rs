//! Waiting for a container process in the foreground (`run`, `exec` without `--detach`):
//! signals are forwarded to it, its pty (if the runtime holds one) is connected to our
//! terminal, orphans reparented to us are reaped, and its exit status becomes ours.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};

use crate::error::{Context, Result};
use crate::tty;

/// Blocks every signal we forward, so none is lost between fork and the wait loop. Call this
/// before creating the process; children must call [`reset_signals`].
pub fn block_signals() -> Result<()> {
    // SAFETY: building and applying a full signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "blocking signals");
        }
    }
    Ok(())
}

/// In a child about to become a container process: default dispositions for every signal and
/// an empty mask, so the program does not inherit the runtime's (Rust ignores SIGPIPE).
pub fn reset_signals() {
    // SAFETY: signal() and sigprocmask() with valid arguments; no handlers are installed.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Turns a wait status into a shell-style exit code (128+signal when killed).
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

fn signalfd() -> Result<OwnedFd> {
    // SAFETY: a full set and the signalfd call.
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "creating a signalfd");
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn copy_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Some(ws) = tty::size_of(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}

/// Reaps our children; returns the exit status of `pid` if it was among them.
fn reap(pid: i32) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return found;
        }
        if r == pid {
            found = Some(status);
        }
    }
}

/// Waits for `pid` (our child, or reparented to us as subreaper) to exit; returns its exit code.
pub fn wait(pid: i32, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = signalfd()?;
    // SAFETY: fds 0 and 1 are ours for the life of the process.
    let (stdin, stdout) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) };
    let _raw = console.as_ref().and_then(|_| tty::RawMode::stdin());
    if let Some(m) = &console {
        copy_size(stdin, m.as_fd());
        let fl = rustix::fs::fcntl_getfl(m).ctx(|| "fcntl")?;
        rustix::fs::fcntl_setfl(m, fl | rustix::fs::OFlags::NONBLOCK).ctx(|| "fcntl")?;
    }
    let mut status: Option<i32> = reap(pid);
    let mut stdin_open = console.is_some();
    let mut master_open = console.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    while status.is_none() || master_open {
        let mut fds = vec![PollFd::new(&sfd, PollFlags::IN)];
        if let Some(m) = &console {
            if master_open {
                fds.push(PollFd::new(m, PollFlags::IN));
            }
            if stdin_open && status.is_none() {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        // Once the process is gone, only drain what is left in the pty.
        let timeout = status.map(|_| rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).ctx(|| "waiting for the container process"),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            while let Ok(n) = rustix::io::read(&sfd, &mut si) {
                if n < si.len() {
                    break;
                }
                // SAFETY: the kernel wrote a whole signalfd_siginfo.
                let info: libc::signalfd_siginfo =
                    unsafe { std::ptr::read_unaligned(si.as_ptr().cast()) };
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {
                        if let Some(s) = reap(pid) {
                            status = Some(s);
                        }
                    }
                    libc::SIGWINCH => {
                        if let Some(m) = &console {
                            copy_size(stdin, m.as_fd());
                        }
                    }
                    sig => {
                        // SAFETY: forwarding a signal to the container process.
                        unsafe { libc::kill(pid, sig) };
                    }
                }
            }
        }
        if let Some(m) = &console {
            let mut i = 1;
            if master_open {
                if ready.get(i).copied().unwrap_or(false) {
                    match rustix::io::read(m, &mut buf) {
                        Ok(0) | Err(rustix::io::Errno::IO) => master_open = false,
                        Ok(n) => {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(&buf[..n]);
                            let _ = out.flush();
                        }
                        Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                        Err(_) => master_open = false,
                    }
                }
                i += 1;
            }
            if stdin_open && status.is_none() && ready.get(i).copied().unwrap_or(false) {
                match rustix::io::read(stdin, &mut buf) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => {
                        let mut off = 0;
                        while off < n {
                            match rustix::io::write(m, &buf[off..n]) {
                                Ok(w) => off += w,
                                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                                    std::thread::yield_now()
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                    Err(_) => stdin_open = false,
                }
            }
        }
        let _ = stdout;
    }
    Ok(status.map(exit_code).unwrap_or(255))
}
