//! Terminals: the container's pty, handed to whoever holds the console socket, and the
//! proxy that `run`/`exec` use in the foreground when nobody else does.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

use crate::error::{Context, Result};
use crate::sync;

/// The pty a container process gets as its controlling terminal.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's path inside the container (`/dev/pts/N`).
    pub slave_path: String,
}

/// Opens a new pty from the devpts instance visible at `/dev/ptmx` (the container's, once
/// the caller is inside its mount namespace) and sizes it.
pub fn open(size: Option<(u16, u16)>) -> Result<Pty> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .ctx(|| "process.terminal: opening /dev/ptmx")?;
    rustix::pty::grantpt(&master).ctx(|| "process.terminal: grantpt")?;
    rustix::pty::unlockpt(&master).ctx(|| "process.terminal: unlockpt")?;
    let name = rustix::pty::ptsname(&master, Vec::new()).ctx(|| "process.terminal: ptsname")?;
    // TIOCGPTPEER opens the peer through the master, never through a path the container controls.
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .ctx(|| "process.terminal: opening the pty slave")?;
    if let Some((h, w)) = size {
        let ws = Winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, ws)
            .ctx(|| "process.consoleSize: setting the size")?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path: name.to_string_lossy().into_owned(),
    })
}

/// Sends the master to the console socket and makes the slave the calling process's
/// controlling terminal and stdio.
pub fn hand_over(pty: Pty, console_socket: BorrowedFd<'_>) -> Result<()> {
    sync::send_fd_over(console_socket, &pty.slave_path, pty.master.as_fd())?;
    drop(pty.master);
    make_controlling(&pty.slave)
}

/// Starts a new session with `slave` as its controlling terminal and as fds 0, 1 and 2.
pub fn make_controlling(slave: &OwnedFd) -> Result<()> {
    rustix::process::setsid().ctx(|| "process.terminal: setsid")?;
    // SAFETY: ioctl TIOCSCTTY on a valid tty fd.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "process.terminal: TIOCSCTTY");
    }
    for target in 0..3 {
        // SAFETY: dup2 of a valid fd onto a standard stream.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("process.terminal: dup2 onto fd {target}"));
        }
    }
    Ok(())
}

/// The size of the terminal on `fd`, if it is one.
pub fn size_of(fd: BorrowedFd<'_>) -> Option<Winsize> {
    rustix::termios::tcgetwinsize(fd).ok()
}

/// Puts the terminal on `fd` in raw mode; restores the previous mode on drop.
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Switches stdin to raw mode when it is a terminal.
    pub fn stdin() -> Option<RawMode> {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        if !rustix::termios::isatty(fd) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, &self.saved);
    }
}
