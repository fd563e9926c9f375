//! `start`: release a created container's process.

use clap::Args;

use crate::cli::Global;
use crate::container::{self, StartResult};
use crate::error::{Error, Result};
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container id
    pub id: String,
}

pub fn run(g: &Global, a: StartArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let _lock = root.lock(&a.id)?;
    let state = root.load(&a.id)?;
    let dir = root.container_dir(&a.id);
    match state.status(&dir) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::State {
                id: a.id,
                status: "stopped".into(),
                reason: "cannot start a container that has stopped".into(),
            });
        }
        s => {
            return Err(Error::State {
                id: a.id,
                status: s.to_string(),
                reason: "cannot start a container that is not created".into(),
            });
        }
    }
    match container::start(&dir, &state)? {
        StartResult::Started => {
            container::poststart(&state);
            Ok(0)
        }
        StartResult::Failed(msg) => Err(Error::Msg(msg)),
    }
}
