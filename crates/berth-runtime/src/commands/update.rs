//! `update`: change a running container's resource limits.

use std::path::PathBuf;

use clap::Args;
use oci_spec::runtime::LinuxResources;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::state::{Root, Status};

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Read the new resources from this OCI LinuxResources JSON file ("-" for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Block I/O weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1: unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (e.g. 0-1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (e.g. 0)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// SCHED_IDLE for the cgroup (0 or 1)
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    /// Memory limit (bytes, or with k/m/g suffix; -1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (obsolete, ignored by recent kernels)
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of processes (-1 or 0: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Container id
    pub id: String,
}

/// Parses a byte count: `1024`, `512k`, `100m`, `2g`, `1t` (binary units), `-1`.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "-1" {
        return Some(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1i64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if n < 0.0 {
        return None;
    }
    Some((n * mul as f64) as i64)
}

fn bytes(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            parse_bytes(s).ok_or_else(|| Error::msg(format!("--{flag} {s}: not a byte count")))
        })
        .transpose()
}

fn merge_json(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge_json(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

pub fn run(g: &Global, a: UpdateArgs) -> Result<i32> {
    let root = Root::open(&g.root)?;
    let _lock = root.lock(&a.id)?;
    let mut state = root.load(&a.id)?;
    let dir = root.container_dir(&a.id);
    if matches!(state.status(&dir), Status::Stopped) {
        return Err(Error::State {
            id: a.id,
            status: "stopped".into(),
            reason: "cannot update a stopped container".into(),
        });
    }
    let mut delta = serde_json::json!({});
    if let Some(path) = &a.resources {
        let data = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .map_err(|e| Error::msg(format!("--resources -: {e}")))?;
            v
        } else {
            std::fs::read(path)
                .map_err(|e| Error::msg(format!("--resources {}: {e}", path.display())))?
        };
        let de = &mut serde_json::Deserializer::from_slice(&data);
        let r: LinuxResources = serde_path_to_error::deserialize(de)
            .map_err(|e| Error::msg(format!("--resources: {}: {}", e.path(), e.inner())))?;
        delta = serde_json::to_value(r)?;
    }
    let mut set = |path: &[&str], v: serde_json::Value| {
        let mut cur = &mut delta;
        for p in path {
            if !cur.is_object() {
                *cur = serde_json::json!({});
            }
            cur = &mut cur[*p];
        }
        *cur = v;
    };
    use serde_json::json;
    if let Some(v) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(v));
    }
    if let Some(v) = a.cpu_period {
        set(&["cpu", "period"], json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set(&["cpu", "quota"], json!(v));
    }
    if let Some(v) = a.cpu_share {
        set(&["cpu", "shares"], json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(v));
    }
    if let Some(v) = a.cpu_idle {
        set(&["cpu", "idle"], json!(v));
    }
    if let Some(v) = bytes("memory", &a.memory)? {
        set(&["memory", "limit"], json!(v));
    }
    if let Some(v) = bytes("memory-reservation", &a.memory_reservation)? {
        set(&["memory", "reservation"], json!(v));
    }
    if let Some(v) = bytes("memory-swap", &a.memory_swap)? {
        set(&["memory", "swap"], json!(v));
    }
    if let Some(v) = bytes("kernel-memory-tcp", &a.kernel_memory_tcp)? {
        set(&["memory", "kernelTCP"], json!(v));
    }
    if a.kernel_memory.is_some() {
        tracing::warn!("--kernel-memory is obsolete and ignored");
    }
    if let Some(v) = a.pids_limit {
        set(&["pids", "limit"], json!(v));
    }

    // The delta alone is applied (devices are never touched by update: rewriting the device
    // list would briefly deny access to running processes); the merged result is persisted.
    if let Some(o) = delta.as_object_mut() {
        o.remove("devices");
    }
    let change: LinuxResources =
        serde_json::from_value(delta.clone()).map_err(|e| Error::msg(format!("update: {e}")))?;
    state.cgroup.apply(&change)?;

    let mut linux = state.config.linux().clone().unwrap_or_default();
    let mut merged = serde_json::to_value(linux.resources().clone().unwrap_or_default())?;
    merge_json(&mut merged, delta);
    linux.set_resources(Some(
        serde_json::from_value(merged).map_err(|e| Error::msg(format!("update: {e}")))?,
    ));
    state.config.set_linux(Some(linux));
    state.save(&dir)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("100M"), Some(100 << 20));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("1.5g"), Some(3 << 29));
        assert_eq!(parse_bytes("10MiB"), Some(10 << 20));
        assert_eq!(parse_bytes("-1"), Some(-1));
        assert_eq!(parse_bytes("abc"), None);
        assert_eq!(parse_bytes("-5"), None);
    }
}
