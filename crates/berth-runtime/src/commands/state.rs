//! `state`: print a container's OCI state.

use clap::Args;

use crate::cli::Global;
use crate::error::Result;
use crate::state::Root;

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Container id
    pub id: String,
}

pub fn run(g: &Global, a: StateArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let state = root.load(&a.id)?;
    let status = state.status(&root.container_dir(&a.id));
    println!(
        "{}",
        serde_json::to_string_pretty(&state.oci_state(status))?
    );
    Ok(0)
}
