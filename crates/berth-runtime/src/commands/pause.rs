//! `pause` and `resume`: freeze and thaw every process of a container.

use clap::Args;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Container id
    pub id: String,
}

pub fn pause(g: &Global, a: PauseArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let _lock = root.lock(&a.id)?;
    let state = root.load(&a.id)?;
    match state.status(&root.container_dir(&a.id)) {
        Status::Running | Status::Created => state.cgroup.freeze()?,
        s => {
            return Err(Error::State {
                id: a.id,
                status: s.to_string(),
                reason: "cannot pause a container that is not running".into(),
            });
        }
    }
    Ok(0)
}

pub fn resume(g: &Global, a: PauseArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let _lock = root.lock(&a.id)?;
    let state = root.load(&a.id)?;
    match state.status(&root.container_dir(&a.id)) {
        Status::Paused => state.cgroup.thaw()?,
        s => {
            return Err(Error::State {
                id: a.id,
                status: s.to_string(),
                reason: "cannot resume a container that is not paused".into(),
            });
        }
    }
    Ok(0)
}
