//! Writing resource limits to cgroup v2 (the unified hierarchy), converting the OCI's
//! cgroup-v1-shaped values where needed, and enabling controllers down the tree.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::util::{self, write};
use super::{field_err, io_err};
use crate::Result;

const MEM: &str = "linux.resources.memory";
const CPU: &str = "linux.resources.cpu";
const BLKIO: &str = "linux.resources.blockIO";

/// The controllers listed in `dir/cgroup.controllers` (those its parent enabled for it).
pub(crate) fn controllers(dir: &Path) -> Result<BTreeSet<String>> {
    Ok(util::read_opt(dir, "cgroup.controllers")?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables every available controller in `cgroup.subtree_control` of each directory from
/// `mountpoint` down to `dir`'s parent, so that `dir` gets them all. A controller the
/// kernel refuses to enable somewhere (for instance because that cgroup holds processes) is
/// skipped; a limit that needs it later fails with an error naming the field.
pub(crate) fn enable_controllers(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut cur = mountpoint.to_path_buf();
    for comp in rel.components() {
        // `cur` is the parent of the next level.
        enable_in(&cur)?;
        cur.push(comp);
    }
    Ok(())
}

fn enable_in(dir: &Path) -> Result<()> {
    let available = controllers(dir)?;
    let enabled: BTreeSet<String> = util::read_opt(dir, "cgroup.subtree_control")?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = available.difference(&enabled).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let path = dir.join("cgroup.subtree_control");
    if util::write_raw(&path, &all).is_ok() {
        return Ok(());
    }
    for c in missing {
        if let Err(e) = util::write_raw(&path, &format!("+{c}")) {
            tracing::debug!(
                "cannot enable the {c} controller in {}: {e}",
                path.display()
            );
        }
    }
    Ok(())
}

/// "max" for -1 (cgroup v1's "unlimited"), the number otherwise.
fn num_or_max(v: i64) -> String {
    if v == -1 { "max".into() } else { v.to_string() }
}

/// Converts the OCI swap value (memory+swap, cgroup v1 style) into `memory.swap.max`
/// (swap alone). `None` means leave it alone.
pub(crate) fn swap_max(swap: i64, memory: i64) -> Result<Option<String>> {
    let field = format!("{MEM}.swap");
    Ok(match (swap, memory) {
        // Unlimited memory and swap not given: unlimited swap too, as on cgroup v1.
        (0, -1) => Some("max".into()),
        (0, _) => None,
        (-1, _) => Some("max".into()),
        (s, -1) => Some(s.to_string()),
        (_, 0) => {
            return Err(field_err(
                field,
                "cannot set a swap limit without a memory limit",
            ));
        }
        (_, m) if m < 0 => {
            return Err(field_err(
                format!("{MEM}.limit"),
                format!("{m} is not a valid limit"),
            ));
        }
        (s, m) if s < m => {
            return Err(field_err(
                field,
                format!("memory+swap limit {s} is below the memory limit {m}"),
            ));
        }
        (s, m) => Some((s - m).to_string()),
    })
}

/// memory: limit (memory.max), swap (memory.swap.max), reservation (memory.low),
/// checkBeforeUpdate. The cgroup-v1-only fields are ignored with a warning.
pub(crate) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let ignored = [
        ("kernel", m.kernel().is_some_and(|v| v != 0)),
        ("kernelTCP", m.kernel_tcp().is_some_and(|v| v != 0)),
        ("swappiness", m.swappiness().is_some()),
        ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ("useHierarchy", m.use_hierarchy() == Some(false)),
    ];
    for (name, set) in ignored {
        if set {
            tracing::warn!("{MEM}.{name} is not supported by cgroup v2; ignoring it");
        }
    }
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    if m.check_before_update() == Some(true) {
        super::check_usage(dir, "memory.current", limit, swap)?;
    }
    if swap != 0 || limit == -1 {
        // With no limit in this request (an update of swap alone), convert against the limit
        // already in force.
        let memory = if limit != 0 {
            limit
        } else {
            match util::read_opt(dir, "memory.max")?.as_deref().map(str::trim) {
                Some("max") => -1,
                Some(v) => v.parse().unwrap_or(0),
                None => 0,
            }
        };
        if let Some(v) = swap_max(swap, memory)? {
            let path = dir.join("memory.swap.max");
            match util::write_raw(&path, &v) {
                Ok(()) => {}
                // No swap accounting: "unlimited" and "none" are moot.
                Err(e) if util::is_missing(&e) && (v == "max" || v == "0") => {}
                Err(e) => {
                    return Err(io_err(
                        util::write_what(&format!("{MEM}.swap"), &path, &v),
                        e,
                    ));
                }
            }
        }
    }
    if limit != 0 {
        write(
            &format!("{MEM}.limit"),
            dir,
            "memory.max",
            &num_or_max(limit),
        )?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(
            &format!("{MEM}.reservation"),
            dir,
            "memory.low",
            &num_or_max(r),
        )?;
    }
    Ok(())
}

/// Converts cgroup v1 cpu.shares (2..262144, default 1024) to cgroup v2 cpu.weight
/// (1..10000, default 100) with the curve runc (since 1.3.2) and crun use, which maps the
/// minimum, default and maximum onto each other.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// Converts a cgroup v1 blkio weight (10..1000) to a cgroup v2 io.weight (1..10000).
pub(crate) fn blkio_weight_to_io(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    (1 + (u64::from(w).saturating_sub(10)) * 9999 / 990).clamp(1, 10_000)
}

/// cpu: shares (cpu.weight), quota/period (cpu.max), burst (cpu.max.burst), idle.
/// Real-time limits do not exist in cgroup v2.
pub(crate) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(field_err(
            format!("{CPU}.realtimeRuntime"),
            "real-time CPU limits are not supported by cgroup v2",
        ));
    }
    if c.realtime_period().is_some_and(|v| v != 0) {
        return Err(field_err(
            format!("{CPU}.realtimePeriod"),
            "real-time CPU limits are not supported by cgroup v2",
        ));
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(
            &format!("{CPU}.shares"),
            dir,
            "cpu.weight",
            &shares_to_weight(s).to_string(),
        )?;
    }
    if let Some(i) = c.idle() {
        write(&format!("{CPU}.idle"), dir, "cpu.idle", &i.to_string())?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    let setting_max = quota.is_some() || period.is_some();
    // The burst may not exceed the quota: when lowering both, retry it after cpu.max.
    let mut later_burst = None;
    if let Some(b) = c.burst() {
        let path = dir.join("cpu.max.burst");
        match util::write_raw(&path, &b.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && setting_max => {
                later_burst = Some(b);
            }
            Err(e) => {
                return Err(io_err(
                    util::write_what(&format!("{CPU}.burst"), &path, &b.to_string()),
                    e,
                ));
            }
        }
    }
    if setting_max {
        let q = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_string(),
            // Period alone: keep the quota in force.
            None => util::read_opt(dir, "cpu.max")?
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".into()),
        };
        let value = match period {
            Some(p) => format!("{q} {p}"),
            None => q,
        };
        let field = if quota.is_some() {
            format!("{CPU}.quota")
        } else {
            format!("{CPU}.period")
        };
        write(&field, dir, "cpu.max", &value)?;
        if let Some(b) = later_burst {
            write(
                &format!("{CPU}.burst"),
                dir,
                "cpu.max.burst",
                &b.to_string(),
            )?;
        }
    }
    Ok(())
}

/// io: weight (io.bfq.weight when BFQ is in use, else io.weight converted), weightDevice,
/// and the throttle lists (io.max). Leaf weights have no cgroup v2 equivalent.
pub(crate) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let field = format!("{BLKIO}.weight");
        if bfq {
            write(&field, dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(&field, dir, "io.weight", &blkio_weight_to_io(w).to_string())?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        tracing::warn!("{BLKIO} leaf weights are not supported by cgroup v2; ignoring them");
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let field = format!("{BLKIO}.weightDevice[{i}].weight");
            if bfq {
                write(
                    &field,
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            } else {
                write(
                    &field,
                    dir,
                    "io.weight",
                    &format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(w)),
                )?;
            }
        }
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "wiops",
        ),
    ];
    for (name, list, key) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            // 0 removes the limit in cgroup v1; "max" does in v2.
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write(
                &format!("{BLKIO}.{name}[{i}]"),
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb: `hugetlb.<size>.max` (and `.rsvd.max` where it exists).
pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}].limit");
        let size = h.page_size();
        let value = num_or_max(h.limit());
        write(&field, dir, &format!("hugetlb.{size}.max"), &value)?;
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if dir.join(&rsvd).exists() {
            write(&field, dir, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// Checks a `linux.resources.unified` key: a plain file name in the cgroup directory.
pub(crate) fn check_unified_key(key: &str) -> Result<()> {
    let field = format!("linux.resources.unified.{key}");
    if key.is_empty() || key.contains('/') || key.contains("..") || key.contains('\0') {
        return Err(field_err(
            field,
            "the key must be a cgroup file name (no '/', no '..')",
        ));
    }
    if !key.contains('.') {
        return Err(field_err(
            field,
            "the key must have the form <controller>.<file>",
        ));
    }
    Ok(())
}

/// `linux.resources.unified`: writes each value to the file named by its key, line by line
/// (so that multi-line values such as several io.max devices work), in key order.
pub(crate) fn unified(
    dir: &Path,
    map: &HashMap<String, String>,
    enabled: &BTreeSet<String>,
) -> Result<()> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in &keys {
        check_unified_key(k)?;
    }
    for k in keys {
        let field = format!("linux.resources.unified.{k}");
        let value = &map[k];
        let lines: Vec<&str> = value.lines().filter(|l| !l.trim().is_empty()).collect();
        let lines = if lines.is_empty() { vec![""] } else { lines };
        for line in lines {
            let path = dir.join(k);
            if let Err(e) = util::write_raw(&path, line) {
                let controller = k.split('.').next().unwrap_or_default();
                if (util::is_missing(&e) || e.raw_os_error() == Some(libc::EACCES))
                    && controller != "cgroup"
                    && !enabled.contains(controller)
                {
                    return Err(field_err(
                        field,
                        format!(
                            "the {controller} controller is not enabled in {} (it has: {})",
                            dir.display(),
                            enabled.iter().cloned().collect::<Vec<_>>().join(" ")
                        ),
                    ));
                }
                return Err(io_err(util::write_what(&field, &path, line), e));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(2048) > 100);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(blkio_weight_to_io(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_max(0, 100).unwrap(), None);
        assert_eq!(swap_max(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(-1, 100).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_max(300, 100).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_max(100, 100).unwrap().as_deref(), Some("0"));
        assert_eq!(swap_max(300, -1).unwrap().as_deref(), Some("300"));
        let e = swap_max(50, 100).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
        assert!(swap_max(50, 0).is_err());
    }

    #[test]
    fn unified_keys() {
        assert!(check_unified_key("memory.max").is_ok());
        for bad in ["../memory.max", "a/b", "..", "memory..max", "", "max"] {
            let e = check_unified_key(bad).unwrap_err().to_string();
            assert!(e.starts_with("linux.resources.unified."), "{e}");
        }
    }
}
