//! `run`: create and start a container, then (unless `--detach`) wait for it, forward signals
//! to it, and delete it when it exits. The exit code is the container's.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Global;
use crate::container::{self, CreateOpts, StartResult};
use crate::error::{Error, Result};
use crate::foreground;
use crate::state::Root;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the container started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Write the init process's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper for the container's processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Use chroot instead of pivot_root (for roots on a ramdisk)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from fd 3 on) to the container's process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Keep the container's state after it exits (delete it yourself)
    #[arg(long)]
    pub keep: bool,
    /// Container id (letters, digits, _ - . +)
    pub id: String,
}

pub fn run(g: &Global, a: RunArgs) -> Result<i32> {
    super::check_preserved_fds(a.preserve_fds)?;
    let root = Root::open(&g.root)?;
    if !a.detach {
        foreground::block_signals()?;
        if !a.no_subreaper {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
    }
    let opts = CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        internal_console: !a.detach && a.console_socket.is_none(),
    };
    let created = container::create(&root, &opts)?;
    let dir = created.dir.clone();
    let state = created.state.clone();
    let started = {
        let _lock = root.lock(&a.id)?;
        container::start(&dir, &state)
    };
    let failure = match started {
        Ok(StartResult::Started) => None,
        Ok(StartResult::Failed(m)) => Some(Error::Msg(m)),
        Err(e) => Some(e),
    };
    if let Some(e) = failure {
        let _ = container::destroy(&dir, &state);
        return Err(e);
    }
    container::poststart(&state);
    if a.detach {
        return Ok(0);
    }
    let code = foreground::wait(state.pid, created.console)?;
    if !a.keep {
        container::destroy(&dir, &state)?;
    }
    Ok(code)
}
