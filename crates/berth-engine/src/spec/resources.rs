//! Cgroup resources, rlimits and sysctls, with Docker's checks and defaults.

use std::collections::HashMap;

use berth_api_types::models::{HostConfig, ResourcesUlimits};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType,
};
use serde::Deserialize;
use serde::de::IntoDeserializer;

use super::{Host, IpcMode, Modes, NetMode, Result, SpecError};

/// The smallest memory limit (and reservation) Docker accepts.
const MIN_MEMORY: i64 = 6 << 20;
/// cgroup v1's bounds of cpu.shares, to which Docker clamps.
const MIN_CPU_SHARES: i64 = 2;
const MAX_CPU_SHARES: i64 = 262_144;
/// The CFS period NanoCpus is expressed in (100ms).
const NANO_CPU_PERIOD: i64 = 100_000;

/// The cgroup resources of a request (devices are added by the caller).
pub(super) fn resources(hc: &HostConfig, host: &Host) -> Result<LinuxResources> {
    let mut res = LinuxResources::default();
    res.set_memory(memory(hc)?);
    res.set_cpu(cpu(hc, host)?);
    res.set_pids(hc.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        // The API's 0 and negatives mean unlimited, which the runtime spells -1.
        p.set_limit(if limit <= 0 { -1 } else { limit });
        p
    }));
    res.set_block_io(match hc.blkio_weight.unwrap_or(0) {
        0 => None,
        w if (10..=1000).contains(&w) => {
            let mut b = LinuxBlockIo::default();
            b.set_weight(Some(w));
            Some(b)
        }
        w => {
            return Err(SpecError::invalid(format!(
                "HostConfig.BlkioWeight: {w} is out of range, the range is 10 to 1000"
            )));
        }
    });
    Ok(res)
}

fn memory(hc: &HostConfig) -> Result<Option<LinuxMemory>> {
    let limit = hc.memory.unwrap_or(0);
    let swap = hc.memory_swap.unwrap_or(0);
    let reservation = hc.memory_reservation.unwrap_or(0);
    let swappiness = hc.memory_swappiness.unwrap_or(-1);
    let oom_kill_disable = hc.oom_kill_disable.unwrap_or(false);

    if limit < 0 {
        return Err(SpecError::invalid(format!(
            "HostConfig.Memory: invalid memory limit {limit}"
        )));
    }
    if limit > 0 && limit < MIN_MEMORY {
        return Err(SpecError::invalid(
            "HostConfig.Memory: minimum memory limit allowed is 6MB",
        ));
    }
    if swap > 0 && limit == 0 {
        return Err(SpecError::invalid(
            "HostConfig.MemorySwap: you should always set the Memory limit when using the \
             Memoryswap limit",
        ));
    }
    if swap < -1 {
        return Err(SpecError::invalid(format!(
            "HostConfig.MemorySwap: invalid value {swap} (-1 is unlimited)"
        )));
    }
    if limit > 0 && swap > 0 && swap < limit {
        return Err(SpecError::invalid(
            "HostConfig.MemorySwap: minimum memoryswap limit should be larger than memory limit",
        ));
    }
    if reservation < 0 || (reservation > 0 && reservation < MIN_MEMORY) {
        return Err(SpecError::invalid(
            "HostConfig.MemoryReservation: minimum memory reservation allowed is 6MB",
        ));
    }
    if limit > 0 && reservation > 0 && limit < reservation {
        return Err(SpecError::invalid(
            "HostConfig.MemoryReservation: minimum memory limit can not be less than memory \
             reservation limit",
        ));
    }
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(SpecError::invalid(format!(
            "HostConfig.MemorySwappiness: invalid value {swappiness}, the range is 0-100"
        )));
    }
    if limit == 0 && reservation == 0 && swap == 0 && swappiness == -1 && !oom_kill_disable {
        return Ok(None);
    }
    let mut m = LinuxMemory::default();
    if limit > 0 {
        m.set_limit(Some(limit));
        // Docker's default: as much swap as memory (a total of twice the limit).
        m.set_swap(Some(if swap == 0 { limit * 2 } else { swap }));
    } else if swap == -1 {
        m.set_swap(Some(-1));
    }
    if reservation > 0 {
        m.set_reservation(Some(reservation));
    }
    if swappiness != -1 {
        m.set_swappiness(Some(swappiness as u64));
    }
    if oom_kill_disable {
        m.set_disable_oom_killer(Some(true));
    }
    Ok(Some(m))
}

fn cpu(hc: &HostConfig, host: &Host) -> Result<Option<LinuxCpu>> {
    let shares = hc.cpu_shares.unwrap_or(0);
    let period = hc.cpu_period.unwrap_or(0);
    let quota = hc.cpu_quota.unwrap_or(0);
    let nano = hc.nano_cpus.unwrap_or(0);
    let cpus = hc.cpuset_cpus.as_deref().unwrap_or("");
    let mems = hc.cpuset_mems.as_deref().unwrap_or("");

    if shares < 0 {
        return Err(SpecError::invalid(format!(
            "HostConfig.CpuShares: invalid value {shares}"
        )));
    }
    if nano != 0 && period != 0 {
        return Err(SpecError::invalid(
            "HostConfig.NanoCpus: conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano != 0 && quota != 0 {
        return Err(SpecError::invalid(
            "HostConfig.NanoCpus: conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let max_nano = i64::from(host.cpus) * 1_000_000_000;
    if nano < 0 || nano > max_nano {
        return Err(SpecError::invalid(format!(
            "HostConfig.NanoCpus: range of CPUs is from 0.01 to {}.00, as there are only {} CPUs \
             available",
            host.cpus, host.cpus
        )));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(SpecError::invalid(
            "HostConfig.CpuPeriod: CPU cfs period can not be less than 1ms (i.e. 1000) or larger \
             than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(SpecError::invalid(
            "HostConfig.CpuQuota: CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    validate_cpuset(cpus, "HostConfig.CpusetCpus")?;
    validate_cpuset(mems, "HostConfig.CpusetMems")?;
    if shares == 0 && period == 0 && quota == 0 && nano == 0 && cpus.is_empty() && mems.is_empty() {
        return Ok(None);
    }
    let mut c = LinuxCpu::default();
    if shares > 0 {
        c.set_shares(Some(shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES) as u64));
    }
    if nano > 0 {
        c.set_period(Some(NANO_CPU_PERIOD as u64));
        c.set_quota(Some(nano * NANO_CPU_PERIOD / 1_000_000_000));
    } else {
        if period > 0 {
            c.set_period(Some(period as u64));
        }
        if quota != 0 {
            c.set_quota(Some(quota));
        }
    }
    if !cpus.is_empty() {
        c.set_cpus(Some(cpus.to_string()));
    }
    if !mems.is_empty() {
        c.set_mems(Some(mems.to_string()));
    }
    Ok(Some(c))
}

/// A cpuset list: `0-3,5,7-8`.
fn validate_cpuset(s: &str, field: &str) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    let bad = || {
        SpecError::invalid(format!(
            "{field}: invalid value {s:?} (expected a list like 0-3,5)"
        ))
    };
    let num = |n: &str| -> Result<u32> {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse().map_err(|_| bad())
    };
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if num(a)? > num(b)? {
                    return Err(bad());
                }
            }
            None => {
                num(part)?;
            }
        }
    }
    Ok(())
}

/// The resource limits Docker knows (`--ulimit name=soft:hard`).
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `HostConfig.Ulimits` as OCI rlimits; -1 is unlimited.
pub(super) fn rlimits(ulimits: &[ResourcesUlimits]) -> Result<Vec<PosixRlimit>> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    for (i, u) in ulimits.iter().enumerate() {
        let field = format!("HostConfig.Ulimits[{i}]");
        let name = u.name.as_deref().unwrap_or("");
        if !ULIMITS.contains(&name) {
            return Err(SpecError::invalid(format!(
                "{field}: invalid ulimit type: {name:?}"
            )));
        }
        let value = |v: Option<i64>, what: &str| -> Result<u64> {
            match v.unwrap_or(0) {
                -1 => Ok(u64::MAX),
                v if v >= 0 => Ok(v as u64),
                v => Err(SpecError::invalid(format!(
                    "{field}: invalid {what} limit {v} (-1 is unlimited)"
                ))),
            }
        };
        let soft = value(u.soft, "soft")?;
        let hard = value(u.hard, "hard")?;
        if soft > hard {
            return Err(SpecError::invalid(format!(
                "{field}: ulimit soft limit must be less than or equal to hard limit: {soft} > \
                 {hard}"
            )));
        }
        let oci_name = format!("RLIMIT_{}", name.to_ascii_uppercase());
        let typ = PosixRlimitType::deserialize(oci_name.as_str().into_deserializer()).map_err(
            |_: serde::de::value::Error| {
                SpecError::system(format!("{field}: {oci_name} is unknown to oci-spec"))
            },
        )?;
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .map_err(|e| SpecError::system(format!("{field}: {e}")))?;
        // The last one for a name wins, as in Docker's map.
        out.retain(|x| x.typ() != typ);
        out.push(r);
    }
    Ok(out)
}

/// `HostConfig.Sysctls`, checked as the runtime would: only namespaced ones, and only when
/// the container has that namespace (IPC ones, `net.*`, `kernel.hostname`/`domainname`).
pub(super) fn sysctls(hc: &HostConfig, modes: &Modes) -> Result<HashMap<String, String>> {
    let Some(map) = hc.sysctls.as_ref() else {
        return Ok(HashMap::new());
    };
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("HostConfig.Sysctls[{key:?}]");
        let value = &map[key];
        let well_formed = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
            && !key.split(['.', '/']).any(|c| c.is_empty() || c == "..");
        if !well_formed {
            return Err(SpecError::invalid(format!("{field}: invalid sysctl name")));
        }
        if value.contains(['\n', '\0']) {
            return Err(SpecError::invalid(format!(
                "{field}: the value contains a newline or NUL"
            )));
        }
        let ipc = IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.");
        let allowed = if ipc {
            matches!(modes.ipc, IpcMode::Private | IpcMode::None)
        } else if key.starts_with("net.") {
            matches!(modes.network, NetMode::Private(_) | NetMode::None)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            modes.uts_private
        } else {
            return Err(SpecError::invalid(format!(
                "{field}: sysctl {key} is not namespaced and cannot be set in a container"
            )));
        };
        if !allowed {
            return Err(SpecError::invalid(format!(
                "{field}: sysctl {key} is not allowed: the container shares that namespace (host or another container's)"
            )));
        }
    }
    Ok(map.clone())
}
