//! `kill`: send a signal to a container's init process, or to all its processes.

use clap::Args;

use crate::cli::Global;
use crate::container;
use crate::error::{Context, Error, Result};
use crate::state::{Root, Status};
use crate::utils::parse_signal;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container, not just its init
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal: a name (TERM, SIGKILL) or a number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(g: &Global, a: KillArgs) -> Result<i32> {
    let sig = parse_signal(&a.signal)
        .ok_or_else(|| Error::msg(format!("unknown signal {:?}", a.signal)))?;
    let root = Root::open(&g.root)?;
    let state = root.load(&a.id)?;
    let status = state.status(&root.container_dir(&a.id));
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::State {
            id: a.id,
            status: status.to_string(),
            reason: "container not running".into(),
        });
    }
    if a.all {
        state.cgroup.signal_all(sig)?;
    } else {
        let fd = container::pidfd_checked(state.pid, state.pid_start)?;
        // SAFETY: pidfd_send_signal on a pidfd we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("sending signal {sig} to {}", state.pid));
        }
    }
    if status == Status::Paused && sig == libc::SIGKILL {
        // A frozen process cannot die: thaw so the kill takes effect.
        state.cgroup.thaw()?;
    }
    Ok(0)
}
