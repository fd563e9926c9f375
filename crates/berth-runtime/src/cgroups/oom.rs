//! OOM notifications for `berth-runtime events`.
//!
//! cgroup v1: an eventfd registered through `cgroup.event_control` against
//! `memory.oom_control`; the kernel signals it on every OOM in the cgroup and once more when
//! the cgroup is removed. cgroup v2: inotify on `memory.events` (whose `oom_kill` counter
//! goes up on every OOM kill) and `cgroup.events` (whose `populated` goes to 0 when the last
//! process exits).

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{EventfdFlags, eventfd};
use rustix::fs::inotify;

use super::util;
use crate::error::Context;
use crate::{Error, Result};

/// What a watched cgroup did since the previous [`OomWatch::consume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OomEvent {
    /// How many OOM events happened (cgroup v1: OOM notifications; cgroup v2: OOM kills).
    pub ooms: u64,
    /// The cgroup was removed or has no processes left: no further events will come.
    pub done: bool,
}

#[derive(Debug)]
enum Kind {
    V1 {
        dir: PathBuf,
        /// Must stay open for the registration to stay valid.
        _control: File,
    },
    V2 {
        dir: PathBuf,
    },
}

/// A pollable source of OOM events for one cgroup. Poll [`AsFd::as_fd`] for readability, then
/// call [`OomWatch::consume`].
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    kind: Kind,
    last_kills: u64,
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl OomWatch {
    /// Watches the cgroup v1 memory directory `dir`.
    pub(crate) fn v1(dir: &Path) -> Result<OomWatch> {
        let control_path = dir.join("memory.oom_control");
        let control =
            File::open(&control_path).ctx(|| format!("opening {}", control_path.display()))?;
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .ctx(|| "creating an eventfd for OOM notifications")?;
        util::write(
            "",
            dir,
            "cgroup.event_control",
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        let mut w = OomWatch {
            fd,
            kind: Kind::V1 {
                dir: dir.to_path_buf(),
                _control: control,
            },
            last_kills: 0,
        };
        w.last_kills = w.oom_kills()?;
        Ok(w)
    }

    /// Watches the cgroup v2 directory `dir` (which must have the memory controller).
    pub(crate) fn v2(dir: &Path) -> Result<OomWatch> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .ctx(|| "creating an inotify instance for OOM notifications")?;
        for file in ["memory.events", "cgroup.events"] {
            let path = dir.join(file);
            inotify::add_watch(&fd, &path, inotify::WatchFlags::MODIFY)
                .ctx(|| format!("watching {}", path.display()))?;
        }
        let mut w = OomWatch {
            fd,
            kind: Kind::V2 {
                dir: dir.to_path_buf(),
            },
            last_kills: 0,
        };
        w.last_kills = w.oom_kills()?;
        Ok(w)
    }

    /// How many processes the OOM killer has killed in the cgroup so far (the `oom_kill`
    /// counter of `memory.oom_control` on cgroup v1, `memory.events` on cgroup v2; 0 on v1
    /// kernels older than 4.13, which have no counter).
    pub fn oom_kills(&self) -> Result<u64> {
        let (dir, file) = match &self.kind {
            Kind::V1 { dir, .. } => (dir, "memory.oom_control"),
            Kind::V2 { dir } => (dir, "memory.events"),
        };
        Ok(util::keyed_value(&util::read(dir, file)?, "oom_kill").unwrap_or(0))
    }

    /// Reads what is pending on the file descriptor (without blocking) and reports what
    /// happened since the last call.
    pub fn consume(&mut self) -> Result<OomEvent> {
        match &self.kind {
            Kind::V1 { dir, .. } => {
                let mut buf = [0u8; 8];
                let count = match rustix::io::read(&self.fd, &mut buf) {
                    Ok(8) => u64::from_ne_bytes(buf),
                    Ok(_) => 0,
                    Err(rustix::io::Errno::AGAIN) => 0,
                    Err(e) => {
                        return Err(Error::Io {
                            what: "reading the OOM eventfd".into(),
                            err: e.into(),
                        });
                    }
                };
                let done = !dir.join("cgroup.event_control").exists();
                // Removal signals the eventfd once more; that one is not an OOM.
                let ooms = if done { count.saturating_sub(1) } else { count };
                if !done {
                    self.last_kills = self.oom_kills()?;
                }
                Ok(OomEvent { ooms, done })
            }
            Kind::V2 { dir } => {
                let dir = dir.clone();
                self.drain_inotify()?;
                let kills = match util::read_opt(&dir, "memory.events")? {
                    Some(t) => util::keyed_value(&t, "oom_kill").unwrap_or(0),
                    None => {
                        return Ok(OomEvent {
                            ooms: 0,
                            done: true,
                        });
                    }
                };
                let ooms = kills.saturating_sub(self.last_kills);
                self.last_kills = kills;
                let populated = util::read_opt(&dir, "cgroup.events")?
                    .and_then(|t| util::keyed_value(&t, "populated"));
                Ok(OomEvent {
                    ooms,
                    done: populated != Some(1),
                })
            }
        }
    }

    fn drain_inotify(&self) -> Result<()> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        loop {
            match reader.next() {
                Ok(_) => {}
                Err(rustix::io::Errno::AGAIN) => return Ok(()),
                Err(e) => {
                    return Err(Error::Io {
                        what: "reading OOM inotify events".into(),
                        err: e.into(),
                    });
                }
            }
        }
    }

    /// Waits up to `timeout` (forever if `None`) for the file descriptor to become readable,
    /// then consumes it. Returns `None` on timeout.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Option<OomEvent>> {
        let ms = timeout.map_or(-1, |d| i32::try_from(d.as_millis()).unwrap_or(i32::MAX));
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd for a file descriptor we own.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Io {
                    what: "waiting for OOM events".into(),
                    err: e,
                });
            }
            if r == 0 {
                return Ok(None);
            }
            return self.consume().map(Some);
        }
    }
}
