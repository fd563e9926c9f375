//! Resource usage of a container, in the JSON shape of runc's `events --stats` (`data` of a
//! `stats` event, runc's `types.Stats`): the same keys, and the same fields left out when
//! zero or empty, so tools that parse runc's output parse ours.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::resources::{Ctx, Place};
use super::util;
use crate::Result;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Resource usage of one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: Cpu,
    /// cgroup v1 cpuset settings (empty on cgroup v2, as in runc).
    pub cpuset: CpuSet,
    /// Memory, swap and kernel memory usage and limits.
    pub memory: Memory,
    /// Task count and limit.
    pub pids: Pids,
    /// Block I/O counters.
    pub blkio: Blkio,
    /// Per huge page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT is not a cgroup; left empty here.
    pub intel_rdt: IntelRdt,
    /// Filled in by the caller from the container's network namespace, if at all.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

/// Pressure stall information for one resource (cgroup v2 `*.pressure` files).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

/// One line of a `*.pressure` file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU usage and throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// cgroup v1 cpuset settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// Usage and limit of one kind of memory, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Memory usage (`memory` in runc's output).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache (`cache` of memory.stat on v1, `file` on v2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (as cgroup v1 counts it, also on cgroup v2).
    pub swap: MemoryEntry,
    /// Kernel memory (cgroup v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffer memory (cgroup v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// The `memory.stat` file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    /// Memory pressure (cgroup v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Number of tasks and their limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One row of a block I/O statistic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O counters, one row per device and operation (only the groups the kernel
/// keeps are filled; runc's order of preference: BFQ, CFQ, throttling).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioQueueRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Huge page usage for one page size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT statistics (not collected by the cgroup code; present for the JSON shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntelRdt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3_cache_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bw_schema: Option<String>,
}

/// Counters of one network interface (runc spells these fields in Go's field case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Collects the statistics of a cgroup, each controller from wherever it lives.
pub(crate) fn collect(ctx: &Ctx<'_>) -> Result<Stats> {
    let mut s = Stats::default();
    let v2 = ctx.cg.v2.as_deref();

    // CPU usage comes from cpuacct on v1 and from cpu.stat on v2 (which exists even where
    // the cpu controller is not enabled); throttling from the cpu controller's cpu.stat.
    let cpuacct = ctx.cg.v1_dir("cpuacct");
    if let Some(d) = cpuacct {
        cpuacct_v1(d, &mut s.cpu.usage)?;
    }
    match ctx.place("cpu") {
        Some(Place::V1(d)) => {
            if let Some(t) = util::read_opt(d, "cpu.stat")? {
                s.cpu.throttling.periods = util::keyed_value(&t, "nr_periods").unwrap_or(0);
                s.cpu.throttling.throttled_periods =
                    util::keyed_value(&t, "nr_throttled").unwrap_or(0);
                s.cpu.throttling.throttled_time =
                    util::keyed_value(&t, "throttled_time").unwrap_or(0);
            }
        }
        Some(Place::V2(d)) => {
            let mut c = Cpu::default();
            cpu_stat_v2(d, &mut c)?;
            s.cpu.throttling = c.throttling;
            if cpuacct.is_none() {
                s.cpu.usage = c.usage;
            }
            s.cpu.psi = psi(d, "cpu.pressure")?;
        }
        None => {
            if let (None, Some(d)) = (cpuacct, v2) {
                cpu_stat_v2(d, &mut s.cpu)?;
            }
        }
    }

    if let Some(d) = ctx.cg.v1_dir("cpuset") {
        cpuset_v1(d, &mut s.cpuset)?;
    }

    match ctx.place("memory") {
        Some(Place::V1(d)) => memory_v1(d, &mut s.memory)?,
        Some(Place::V2(d)) => {
            memory_v2(d, &mut s.memory)?;
            s.memory.psi = psi(d, "memory.pressure")?;
        }
        None => {}
    }

    if let Some(Place::V1(d) | Place::V2(d)) = ctx.place("pids") {
        s.pids.current = util::read_u64_opt(d, "pids.current")?.unwrap_or(0);
        s.pids.limit = match util::read_opt(d, "pids.max")? {
            Some(t) if t.trim() == "max" => 0,
            Some(t) => util::parse_u64(d, "pids.max", &t)?,
            None => 0,
        };
    }

    match ctx.place("blkio") {
        Some(Place::V1(d)) => blkio_v1(d, &mut s.blkio)?,
        _ => {
            if let Some(Place::V2(d)) = ctx.place("io") {
                io_v2(d, &mut s.blkio)?;
                s.blkio.psi = psi(d, "io.pressure")?;
            }
        }
    }

    match ctx.place("hugetlb") {
        Some(Place::V1(d)) => {
            for size in super::resources::hugepage_sizes() {
                let f = |n: &str| format!("hugetlb.{size}.{n}");
                let Some(usage) = util::read_u64_opt(d, &f("usage_in_bytes"))? else {
                    continue;
                };
                s.hugetlb.insert(
                    size.clone(),
                    Hugetlb {
                        usage,
                        max: util::read_u64_opt(d, &f("max_usage_in_bytes"))?.unwrap_or(0),
                        failcnt: util::read_u64_opt(d, &f("failcnt"))?.unwrap_or(0),
                    },
                );
            }
        }
        Some(Place::V2(d)) => {
            for size in super::resources::hugepage_sizes() {
                let f = |n: &str| format!("hugetlb.{size}.{n}");
                let Some(usage) = util::read_u64_opt(d, &f("current"))? else {
                    continue;
                };
                let failcnt = util::read_opt(d, &f("events"))?
                    .and_then(|t| util::keyed_value(&t, "max"))
                    .unwrap_or(0);
                s.hugetlb.insert(
                    size.clone(),
                    Hugetlb {
                        usage,
                        max: 0,
                        failcnt,
                    },
                );
            }
        }
        None => {}
    }
    Ok(s)
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn cpuacct_v1(d: &Path, u: &mut CpuUsage) -> Result<()> {
    u.total = util::read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0);
    if let Some(t) = util::read_opt(d, "cpuacct.usage_percpu")? {
        u.percpu = numbers(&t);
    }
    // "cpu user system" header, then one row per CPU (nanoseconds).
    if let Some(t) = util::read_opt(d, "cpuacct.usage_all")? {
        for row in t.lines().skip(1) {
            let v = numbers(row);
            if v.len() == 3 {
                u.percpu_user.push(v[1]);
                u.percpu_kernel.push(v[2]);
            }
        }
    }
    // cpuacct.stat is in clock ticks.
    if let Some(t) = util::read_opt(d, "cpuacct.stat")? {
        let ns = 1_000_000_000 / clk_tck();
        u.user = util::keyed_value(&t, "user").unwrap_or(0) * ns;
        u.kernel = util::keyed_value(&t, "system").unwrap_or(0) * ns;
    }
    Ok(())
}

fn cpu_stat_v2(d: &Path, c: &mut Cpu) -> Result<()> {
    let Some(t) = util::read_opt(d, "cpu.stat")? else {
        return Ok(());
    };
    let us = |k: &str| util::keyed_value(&t, k).unwrap_or(0) * 1000;
    c.usage.total = us("usage_usec");
    c.usage.user = us("user_usec");
    c.usage.kernel = us("system_usec");
    c.throttling.periods = util::keyed_value(&t, "nr_periods").unwrap_or(0);
    c.throttling.throttled_periods = util::keyed_value(&t, "nr_throttled").unwrap_or(0);
    c.throttling.throttled_time = us("throttled_usec");
    Ok(())
}

/// Parses a cpuset list such as `0-3,8`.
fn cpu_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn cpuset_v1(d: &Path, c: &mut CpuSet) -> Result<()> {
    c.cpus = cpu_list(&util::read_opt(d, "cpuset.cpus")?.unwrap_or_default());
    c.mems = cpu_list(&util::read_opt(d, "cpuset.mems")?.unwrap_or_default());
    let u = |f: &str| -> Result<u64> { Ok(util::read_u64_opt(d, f)?.unwrap_or(0)) };
    c.cpu_exclusive = u("cpuset.cpu_exclusive")?;
    c.mem_hardwall = u("cpuset.mem_hardwall")?;
    c.mem_exclusive = u("cpuset.mem_exclusive")?;
    c.memory_migrate = u("cpuset.memory_migrate")?;
    c.memory_spread_page = u("cpuset.memory_spread_page")?;
    c.memory_spread_slab = u("cpuset.memory_spread_slab")?;
    c.memory_pressure = u("cpuset.memory_pressure")?;
    c.sched_load_balance = u("cpuset.sched_load_balance")?;
    c.sched_relax_domain_level = util::read_opt(d, "cpuset.sched_relax_domain_level")?
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    Ok(())
}

fn memory_entry_v1(d: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |n: &str| -> Result<u64> {
        Ok(util::read_u64_opt(d, &format!("{prefix}{n}"))?.unwrap_or(0))
    };
    Ok(MemoryEntry {
        limit: f("limit_in_bytes")?,
        usage: f("usage_in_bytes")?,
        max: f("max_usage_in_bytes")?,
        failcnt: f("failcnt")?,
    })
}

fn memory_v1(d: &Path, m: &mut Memory) -> Result<()> {
    m.usage = memory_entry_v1(d, "memory.")?;
    m.swap = memory_entry_v1(d, "memory.memsw.")?;
    m.kernel = memory_entry_v1(d, "memory.kmem.")?;
    m.kernel_tcp = memory_entry_v1(d, "memory.kmem.tcp.")?;
    if let Some(t) = util::read_opt(d, "memory.stat")? {
        m.raw = key_values(&t);
    }
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    Ok(())
}

fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn memory_v2(d: &Path, m: &mut Memory) -> Result<()> {
    if let Some(t) = util::read_opt(d, "memory.stat")? {
        m.raw = key_values(&t);
    }
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let entry = |prefix: &str| -> Result<Option<MemoryEntry>> {
        let Some(usage) = util::read_u64_opt(d, &format!("{prefix}.current"))? else {
            return Ok(None);
        };
        Ok(Some(MemoryEntry {
            usage,
            limit: util::read_u64_opt(d, &format!("{prefix}.max"))?.unwrap_or(u64::MAX),
            max: util::read_u64_opt(d, &format!("{prefix}.peak"))?.unwrap_or(0),
            failcnt: 0,
        }))
    };
    if let Some(e) = entry("memory")? {
        m.usage = e;
    }
    // cgroup v1 reports memory+swap; do the same.
    if let Some(sw) = entry("memory.swap")? {
        m.swap = MemoryEntry {
            usage: sw.usage + m.usage.usage,
            limit: if sw.limit == u64::MAX {
                u64::MAX
            } else {
                sw.limit.saturating_add(m.usage.limit)
            },
            max: 0,
            failcnt: 0,
        };
    }
    Ok(())
}

/// Reads the first of several groups of blkio files (BFQ debug, BFQ, CFQ, throttle recursive,
/// throttle) that has any data, as runc does.
fn blkio_v1(d: &Path, b: &mut Blkio) -> Result<()> {
    type Field = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;
    let bytes: Field = |b| &mut b.io_service_bytes_recursive;
    let serviced: Field = |b| &mut b.io_serviced_recursive;
    let full = |p: &'static str| -> Vec<(String, Field)> {
        vec![
            (format!("{p}sectors_recursive"), |b| {
                &mut b.sectors_recursive
            }),
            (format!("{p}io_service_time_recursive"), |b| {
                &mut b.io_service_time_recursive
            }),
            (format!("{p}io_wait_time_recursive"), |b| {
                &mut b.io_wait_time_recursive
            }),
            (format!("{p}io_merged_recursive"), |b| {
                &mut b.io_merged_recursive
            }),
            (format!("{p}io_queued_recursive"), |b| {
                &mut b.io_queued_recursive
            }),
            (format!("{p}time_recursive"), |b| &mut b.io_time_recursive),
            (format!("{p}io_serviced_recursive"), serviced),
            (format!("{p}io_service_bytes_recursive"), bytes),
        ]
    };
    let groups: Vec<Vec<(String, Field)>> = vec![
        full("blkio.bfq."),
        vec![
            ("blkio.bfq.io_serviced_recursive".into(), serviced),
            ("blkio.bfq.io_service_bytes_recursive".into(), bytes),
        ],
        full("blkio."),
        vec![
            ("blkio.throttle.io_serviced_recursive".into(), serviced),
            ("blkio.throttle.io_service_bytes_recursive".into(), bytes),
        ],
        vec![
            ("blkio.throttle.io_serviced".into(), serviced),
            ("blkio.throttle.io_service_bytes".into(), bytes),
        ],
    ];
    for group in groups {
        let mut parsed = Vec::new();
        let mut complete = true;
        for (file, field) in &group {
            match util::read_opt(d, file)? {
                Some(t) => parsed.push((blkio_entries(&t), *field)),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete && parsed.iter().any(|(e, _)| !e.is_empty()) {
            let mut out = Blkio::default();
            for (entries, field) in parsed {
                *field(&mut out) = entries;
            }
            *b = out;
            return Ok(());
        }
    }
    Ok(())
}

/// Parses `maj:min [op] value` rows, skipping the `Total` line.
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            [dev, op, v] => (*dev, *op, *v),
            [dev, v] => (*dev, "", *v),
            _ => continue,
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (ma.parse(), mi.parse(), value.parse()) else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    out
}

fn io_v2(d: &Path, b: &mut Blkio) -> Result<()> {
    let Some(t) = util::read_opt(d, "io.stat")? else {
        return Ok(());
    };
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok(())
}

/// Parses a `*.pressure` file; `None` if the kernel has no PSI.
fn psi(d: &Path, file: &str) -> Result<Option<Psi>> {
    let Some(t) = util::read_opt(d, file)? else {
        return Ok(None);
    };
    let mut p = Psi::default();
    for line in t.lines() {
        let mut f = line.split_whitespace();
        let data = match f.next() {
            Some("some") => &mut p.some,
            Some("full") => &mut p.full,
            _ => continue,
        };
        for kv in f {
            match kv.split_once('=') {
                Some(("avg10", v)) => data.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => data.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => data.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => data.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
                "cpuset": {
                    "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                    "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                    "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0
                },
                "memory": {
                    "usage": {"limit": 0, "failcnt": 0},
                    "swap": {"limit": 0, "failcnt": 0},
                    "kernel": {"limit": 0, "failcnt": 0},
                    "kernelTCP": {"limit": 0, "failcnt": 0}
                },
                "pids": {},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null
            })
        );
    }

    #[test]
    fn parsers() {
        assert_eq!(cpu_list("0-2,5\n"), [0, 1, 2, 5]);
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\n8:16 12\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].op, "Read");
        assert_eq!(e[2].op, "");
        assert_eq!(e[2].value, 12);
    }
}
