//! Writing resource limits to cgroup v1 controllers. Each function takes the container's
//! directory in the hierarchy that holds the controller.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::util::{self, write};
use super::{field_err, io_err};
use crate::Result;

const MEM: &str = "linux.resources.memory";
const CPU: &str = "linux.resources.cpu";
const BLKIO: &str = "linux.resources.blockIO";

/// memory: limit, swap (memory+swap), reservation, kernel, kernelTCP, swappiness,
/// disableOOMKiller, useHierarchy, checkBeforeUpdate.
pub(crate) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    if m.check_before_update() == Some(true) {
        super::check_usage(dir, "memory.usage_in_bytes", limit, swap)?;
    }
    set_memory_and_swap(dir, limit, swap)?;
    if let Some(k) = m.kernel().filter(|k| *k != 0) {
        // Kernel memory limits are deprecated and gone from recent kernels; runc ignores them
        // too. Try, and carry on without if the kernel refuses.
        if let Err(e) = write(
            &format!("{MEM}.kernel"),
            dir,
            "memory.kmem.limit_in_bytes",
            &k.to_string(),
        ) {
            tracing::warn!("{e}; ignoring the kernel memory limit");
        }
    }
    if let Some(k) = m.kernel_tcp().filter(|k| *k != 0) {
        write(
            &format!("{MEM}.kernelTCP"),
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &k.to_string(),
        )?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(
            &format!("{MEM}.reservation"),
            dir,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(field_err(
                format!("{MEM}.swappiness"),
                format!("{s} is out of range (0 to 100)"),
            ));
        }
        write(
            &format!("{MEM}.swappiness"),
            dir,
            "memory.swappiness",
            &s.to_string(),
        )?;
    }
    match m.disable_oom_killer() {
        Some(true) => write(
            &format!("{MEM}.disableOOMKiller"),
            dir,
            "memory.oom_control",
            "1",
        )?,
        Some(false) => {
            // Only re-enable when an earlier update disabled it.
            let cur = util::read(dir, "memory.oom_control")?;
            if util::keyed_value(&cur, "oom_kill_disable") == Some(1) {
                write(
                    &format!("{MEM}.disableOOMKiller"),
                    dir,
                    "memory.oom_control",
                    "0",
                )?;
            }
        }
        None => {}
    }
    if let Some(h) = m.use_hierarchy() {
        let want = if h { 1 } else { 0 };
        if util::read_u64_opt(dir, "memory.use_hierarchy")? != Some(want) {
            write(
                &format!("{MEM}.useHierarchy"),
                dir,
                "memory.use_hierarchy",
                &want.to_string(),
            )?;
        }
    }
    Ok(())
}

/// Sets memory.limit_in_bytes and memory.memsw.limit_in_bytes. The kernel insists that
/// memory+swap is never below memory, so when both change the order depends on the
/// direction: raising writes memsw first, lowering writes memory first.
fn set_memory_and_swap(dir: &Path, limit: i64, mut swap: i64) -> Result<()> {
    let have_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    // Unlimited memory with swap unset means unlimited swap too.
    if limit == -1 && swap == 0 && have_memsw {
        swap = -1;
    }
    if swap != 0 && !have_memsw {
        if swap == -1 {
            swap = 0;
        } else {
            return Err(field_err(
                format!("{MEM}.swap"),
                format!(
                    "swap accounting is not enabled on this host ({} does not exist; boot with swapaccount=1)",
                    dir.join("memory.memsw.limit_in_bytes").display()
                ),
            ));
        }
    }
    if limit > 0 && swap > 0 && swap < limit {
        return Err(field_err(
            format!("{MEM}.swap"),
            format!("memory+swap limit {swap} is below the memory limit {limit}"),
        ));
    }
    if limit != 0 && swap != 0 {
        let cur = util::read_u64(dir, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            write_swap(dir, swap)?;
            return write_limit(dir, limit);
        }
    }
    if limit != 0 {
        write_limit(dir, limit)?;
    }
    if swap != 0 {
        write_swap(dir, swap)?;
    }
    Ok(())
}

fn write_limit(dir: &Path, limit: i64) -> Result<()> {
    let path = dir.join("memory.limit_in_bytes");
    let value = limit.to_string();
    match util::write_raw(&path, &value) {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut what = util::write_what(&format!("{MEM}.limit"), &path, &value);
            if e.raw_os_error() == Some(libc::EBUSY) {
                let usage = util::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
                let peak = util::read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0);
                what.push_str(&format!(" (current usage {usage}, peak {peak})"));
            }
            Err(io_err(what, e))
        }
    }
}

fn write_swap(dir: &Path, swap: i64) -> Result<()> {
    write(
        &format!("{MEM}.swap"),
        dir,
        "memory.memsw.limit_in_bytes",
        &swap.to_string(),
    )
}

/// cpu: shares, quota/period, burst, realtime runtime/period, idle.
pub(crate) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        let field = format!("{CPU}.shares");
        write(&field, dir, "cpu.shares", &s.to_string())?;
        // The kernel clamps out-of-range values silently; say so instead.
        let got = util::read_u64(dir, "cpu.shares")?;
        if got != s {
            let bound = if s > got { "maximum" } else { "minimum" };
            return Err(field_err(
                field,
                format!("{s} is out of range; the kernel's {bound} is {got}"),
            ));
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    // Writing the period first can fail when old quota / new period exceeds the parent's
    // limit; if a quota is coming too, retry the period after it. Same for burst, which may
    // not exceed the quota.
    let mut later_period = None;
    if let Some(p) = period {
        let path = dir.join("cpu.cfs_period_us");
        match util::write_raw(&path, &p.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                later_period = Some(p);
            }
            Err(e) => {
                return Err(io_err(
                    util::write_what(&format!("{CPU}.period"), &path, &p.to_string()),
                    e,
                ));
            }
        }
    }
    let mut later_burst = None;
    if let Some(b) = c.burst() {
        let path = dir.join("cpu.cfs_burst_us");
        match util::write_raw(&path, &b.to_string()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
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
    if let Some(q) = quota {
        write(
            &format!("{CPU}.quota"),
            dir,
            "cpu.cfs_quota_us",
            &q.to_string(),
        )?;
        if let Some(p) = later_period {
            write(
                &format!("{CPU}.period"),
                dir,
                "cpu.cfs_period_us",
                &p.to_string(),
            )?;
        }
        if let Some(b) = later_burst {
            write(
                &format!("{CPU}.burst"),
                dir,
                "cpu.cfs_burst_us",
                &b.to_string(),
            )?;
        }
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        write(
            &format!("{CPU}.realtimePeriod"),
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
        )?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        write(
            &format!("{CPU}.realtimeRuntime"),
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
        )?;
    }
    if let Some(i) = c.idle() {
        write(&format!("{CPU}.idle"), dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// cpuset: cpus and mems (the same files in v1 and v2).
pub(crate) fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(&format!("{CPU}.cpus"), dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(&format!("{CPU}.mems"), dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent into every directory from
/// `top` down to `dir` whose own are empty: a new v1 cpuset cgroup starts empty and no task
/// can join it until both are set.
pub(crate) fn cpuset_inherit(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut parent = mountpoint.to_path_buf();
    for comp in rel.components() {
        let cur = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = util::read(&cur, file)?;
            if mine.trim().is_empty() {
                let theirs = util::read(&parent, file)?;
                let theirs = theirs.trim();
                if !theirs.is_empty() {
                    write("", &cur, file, theirs)?;
                }
            }
        }
        parent = cur;
    }
    Ok(())
}

/// blkio: weight, leafWeight, weightDevice, and the four throttle lists. Uses the BFQ files
/// (`blkio.bfq.*`) where the kernel has no CFQ ones.
pub(crate) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("blkio.bfq.weight").exists() && !dir.join("blkio.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let file = if bfq {
            "blkio.bfq.weight"
        } else {
            "blkio.weight"
        };
        write(&format!("{BLKIO}.weight"), dir, file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write(
            &format!("{BLKIO}.leafWeight"),
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
        )?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let file = if bfq {
                "blkio.bfq.weight_device"
            } else {
                "blkio.weight_device"
            };
            write(
                &format!("{BLKIO}.weightDevice[{i}].weight"),
                dir,
                file,
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            write(
                &format!("{BLKIO}.weightDevice[{i}].leafWeight"),
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (name, list, file) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            write(
                &format!("{BLKIO}.{name}[{i}]"),
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb: `hugetlb.<size>.limit_in_bytes` (and the reservation limit where it exists).
pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}].limit");
        let size = h.page_size();
        let value = h.limit().to_string();
        write(
            &field,
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &value,
        )?;
        let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        if dir.join(&rsvd).exists() {
            write(&field, dir, &rsvd, &value)?;
        }
    }
    Ok(())
}
