//! `events`: a container's resource usage (and OOM kills) as JSON lines, in runc's format.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Time between stats lines (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print one stats line and exit
    #[arg(long)]
    pub stats: bool,
    /// Container id
    pub id: String,
}

/// Parses a duration like `5s`, `500ms`, `1m`, `2h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

pub fn run(g: &Global, a: EventsArgs) -> Result<i32> {
    let interval = parse_duration(&a.interval).ok_or_else(|| {
        Error::msg(format!(
            "--interval {}: not a duration (try 5s or 500ms)",
            a.interval
        ))
    })?;
    let root = Root::open(&g.root)?;
    let state = root.load(&a.id)?;
    let dir = root.container_dir(&a.id);
    // runc's event: `data` is left out when there is none (oom).
    let print = |typ: &str, data: serde_json::Value| {
        let line = if data.is_null() {
            json!({"type": typ, "id": a.id})
        } else {
            json!({"type": typ, "id": a.id, "data": data})
        };
        println!("{line}");
    };
    if a.stats {
        let st = state.cgroup.stats()?;
        print("stats", serde_json::to_value(st)?);
        return Ok(0);
    }
    // OOM kills are reported as they happen (runc's `{"type":"oom"}`), between the stats
    // lines; a cgroup without a memory controller just gets stats.
    let mut oom = match state.cgroup.oom_watch() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("oom events of {}: {e}", a.id);
            None
        }
    };
    let mut next_stats = std::time::Instant::now();
    loop {
        if state.status(&dir) == Status::Stopped || !dir.exists() {
            return Ok(0);
        }
        let now = std::time::Instant::now();
        if now >= next_stats {
            match state.cgroup.stats() {
                Ok(st) => print("stats", serde_json::to_value(st)?),
                Err(e) => tracing::warn!("stats of {}: {e}", a.id),
            }
            next_stats = now + interval;
        }
        // Wake at least once a second to notice the container's end.
        let wait = next_stats
            .saturating_duration_since(std::time::Instant::now())
            .min(Duration::from_secs(1));
        match oom.as_mut().map(|w| w.wait(Some(wait))) {
            Some(Ok(Some(ev))) => {
                for _ in 0..ev.ooms {
                    print("oom", serde_json::Value::Null);
                }
                if ev.done {
                    oom = None;
                }
            }
            Some(Ok(None)) => {}
            Some(Err(e)) => {
                tracing::warn!("oom events of {}: {e}", a.id);
                oom = None;
            }
            None => std::thread::sleep(wait),
        }
    }
}
