//! `list`: the containers under `--root`.

use clap::Args;

use crate::cli::Global;
use crate::error::Result;
use crate::state::Root;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: ListArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let mut states = Vec::new();
    for id in root.ids()? {
        if let Ok(s) = root.load(&id) {
            let status = s.status(&root.container_dir(&id));
            states.push(s.oci_state(status));
        }
    }
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(0);
    }
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for s in &states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i < 5 {
                    format!("{v:<w$}", w = widths[i])
                } else {
                    v.clone()
                }
            })
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}
