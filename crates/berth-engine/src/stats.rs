//! Resource figures of running containers, read from their cgroups: `stats` (Docker's
//! JSON), `top` (host `ps` filtered to the container's processes) and the OOM flag.

use std::time::Duration;

use berth_api_types::models::ContainerStatsResponse;
use berth_runtime::cgroups::Cgroup;
use berth_server::backend::ItemStream;
use berth_types::Error;
use serde_json::{Value, json};

use crate::clock;
use crate::record::Record;

/// The container's cgroup, where its spec put it (`/berth/<id>` or `<CgroupParent>/<id>`).
fn cgroup(rec: &Record) -> Result<Cgroup, Error> {
    let id = &rec.id;
    let path = crate::spec::cgroups_path(&rec.host_config, id)?;
    Cgroup::new(Some(&path.to_string_lossy()), id)
        .map_err(|e| Error::system(format!("cgroup of container {id}: {e}")))
}

/// Whether the kernel's OOM killer killed a process of the container (read before the
/// runtime removes the cgroup).
pub fn oom_killed(rec: &Record) -> bool {
    let Ok(cg) = cgroup(rec) else { return false };
    if let Some(d) = cg.v1_dir("memory")
        && let Ok(t) = std::fs::read_to_string(d.join("memory.oom_control"))
    {
        return t.lines().any(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
                > 0
        });
    }
    cg.dirs().any(|d| {
        std::fs::read_to_string(d.join("memory.events"))
            .map(|t| {
                t.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        > 0
                })
            })
            .unwrap_or(false)
    })
}

fn host_mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn system_cpu_ns() -> u64 {
    let tck = rustix::param::clock_ticks_per_second().max(1);
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let l = t.lines().next()?.strip_prefix("cpu ")?.to_string();
            Some(
                l.split_whitespace()
                    .take(8)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .map_or(0, |ticks| ticks * (1_000_000_000 / tck))
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// One sample in Docker's `cpu_stats` + `memory_stats` + `pids_stats` shape.
fn sample(rec: &Record) -> Result<Value, Error> {
    let id = &rec.id;
    let st = cgroup(rec)?
        .stats()
        .map_err(|e| Error::system(format!("stats of container {id}: {e}")))?;
    let mut limit = st.memory.usage.limit;
    let total = host_mem_total();
    if limit == 0 || limit > total {
        limit = total;
    }
    let blk = |v: &Vec<berth_runtime::cgroups::stats::BlkioEntry>| {
        v.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect::<Vec<_>>()
    };
    Ok(json!({
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": st.cpu.usage.total,
                "percpu_usage": st.cpu.usage.percpu,
                "usage_in_kernelmode": st.cpu.usage.kernel,
                "usage_in_usermode": st.cpu.usage.user,
            },
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": online_cpus(),
            "throttling_data": {
                "periods": st.cpu.throttling.periods,
                "throttled_periods": st.cpu.throttling.throttled_periods,
                "throttled_time": st.cpu.throttling.throttled_time,
            },
        },
        "memory_stats": {
            "usage": st.memory.usage.usage,
            "max_usage": st.memory.usage.max,
            "failcnt": st.memory.usage.failcnt,
            "limit": limit,
            "stats": st.memory.raw,
        },
        "pids_stats": {"current": st.pids.current, "limit": if st.pids.limit == 0 { Value::Null } else { json!(st.pids.limit) }},
        "blkio_stats": {
            "io_service_bytes_recursive": blk(&st.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blk(&st.blkio.io_serviced_recursive),
        },
    }))
}

fn empty_cpu() -> Value {
    json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
}

fn document(
    rec: &Record,
    cur: Option<Value>,
    pre: Option<&Value>,
    read: &str,
    preread: &str,
) -> Value {
    let cur = cur.unwrap_or_else(|| json!({"cpu_stats": empty_cpu(), "memory_stats": {}, "pids_stats": {}, "blkio_stats": {}}));
    json!({
        "id": rec.id,
        "name": rec.name,
        "read": read,
        "preread": preread,
        "num_procs": 0,
        "storage_stats": {},
        "pids_stats": cur["pids_stats"],
        "blkio_stats": cur["blkio_stats"],
        "cpu_stats": cur["cpu_stats"],
        "precpu_stats": pre.map(|p| p["cpu_stats"].clone()).unwrap_or_else(empty_cpu),
        "memory_stats": cur["memory_stats"],
    })
}

/// `GET /containers/{id}/stats`.
pub(crate) fn stream(
    get: impl Fn() -> Option<Record> + Send + 'static,
    stream: bool,
    one_shot: bool,
) -> ItemStream<ContainerStatsResponse> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<ContainerStatsResponse, Error>>(4);
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            let mut pre: Option<Value> = None;
            let mut preread = clock::ZERO.to_string();
            let mut first = true;
            loop {
                let Some(rec) = get() else { return };
                let alive = rec.state.status.is_alive();
                let cur = if alive { sample(&rec).ok() } else { None };
                let read = if alive {
                    clock::now_rfc3339()
                } else {
                    clock::ZERO.to_string()
                };
                // A one-off answer without one-shot carries a previous sample, as Docker's.
                if !stream && !one_shot && first && alive {
                    first = false;
                    pre = cur;
                    preread = read;
                    std::thread::sleep(Duration::from_millis(1000));
                    continue;
                }
                let doc = document(&rec, cur.clone(), pre.as_ref(), &read, &preread);
                let item = serde_json::from_value::<ContainerStatsResponse>(doc)
                    .map_err(|e| Error::internal(format!("stats of container {}: {e}", rec.id)));
                if tx.blocking_send(item).is_err() || !stream || !alive {
                    return;
                }
                pre = cur;
                preread = read;
                first = false;
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .ok();
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b, rx))
    }))
}

/// `GET /containers/{id}/top`: `ps` on the host, keeping the container's processes.
pub(crate) fn top(
    rec: &Record,
    ps_args: Option<&str>,
) -> Result<(Vec<String>, Vec<Vec<String>>), Error> {
    let id = &rec.id;
    let pids = cgroup(rec)?
        .pids()
        .map_err(|e| Error::system(format!("processes of container {id}: {e}")))?;
    let args: Vec<&str> = ps_args
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("-ef")
        .split_whitespace()
        .collect();
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::system(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(Error::system(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::invalid_parameter("Couldn't find PID field in ps output"))?;
    let n = titles.len();
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < n {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..n - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[n - 1..].join(" "));
        procs.push(row);
    }
    Ok((titles, procs))
}
