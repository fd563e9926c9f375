//! `create`: set a container up from its bundle; its process waits for `start`.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Global;
use crate::container::{self, CreateOpts};
use crate::error::Result;
use crate::state::Root;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the init process's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for roots on a ramdisk)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from fd 3 on) to the container's process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Container id (letters, digits, _ - . +)
    pub id: String,
}

impl CreateArgs {
    pub fn opts(&self) -> CreateOpts {
        CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            internal_console: false,
        }
    }
}

pub fn run(g: &Global, a: CreateArgs) -> Result<i32> {
    super::check_preserved_fds(a.preserve_fds)?;
    let root = Root::open(&g.root)?;
    container::create(&root, &a.opts())?;
    Ok(0)
}
