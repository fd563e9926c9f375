//! `delete`: remove a container; with `--force`, kill it first.

use clap::Args;

use crate::cli::Global;
use crate::container;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn run(g: &Global, a: DeleteArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let dir = root.container_dir(&a.id);
    let lock = match root.lock(&a.id) {
        Ok(l) => l,
        Err(Error::NotExist(_)) if a.force => return Ok(0),
        Err(e) => return Err(e),
    };
    let state = match root.load(&a.id) {
        Ok(s) => s,
        Err(Error::NotExist(id)) => {
            // An aborted create can leave a directory without a state record.
            let _ = std::fs::remove_dir_all(&dir);
            return if a.force {
                Ok(0)
            } else {
                Err(Error::NotExist(id))
            };
        }
        Err(e) => return Err(e),
    };
    let status = state.status(&dir);
    match status {
        Status::Stopped | Status::Created | Status::Creating => {}
        Status::Running | Status::Paused if a.force => {
            if status == Status::Paused {
                let _ = state.cgroup.signal_all(libc::SIGKILL);
                let _ = state.cgroup.thaw();
            }
        }
        s => {
            return Err(Error::State {
                id: a.id,
                status: s.to_string(),
                reason: "cannot delete a container that is not stopped (use --force)".into(),
            });
        }
    }
    container::destroy(&dir, &state)?;
    drop(lock);
    Ok(0)
}
