//! `ps`: the processes of a container, as a pid list (JSON) or through ps(1).

use clap::Args;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::state::Root;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: table (runs ps) or json (an array of pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id
    pub id: String,
    /// Options for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &Global, a: PsArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let state = root.load(&a.id)?;
    let mut pids = state.cgroup.pids()?;
    pids.sort_unstable();
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::msg(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::msg(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::msg("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(pid) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            && pids.binary_search(&pid).is_ok()
        {
            println!("{l}");
        }
    }
    Ok(0)
}
