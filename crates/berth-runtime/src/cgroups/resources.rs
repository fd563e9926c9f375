//! Applying `linux.resources`: deciding, controller by controller, whether a limit goes to a
//! cgroup v1 hierarchy or to cgroup v2, and failing with the field's name when neither has
//! the controller.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids, LinuxRdma, LinuxResources,
};

use super::util::{self, write};
use super::{Cgroup, devices, field_err, v1, v2};
use crate::Result;

/// Where a controller lives for this cgroup.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// The cgroup plus what its cgroup v2 directory offers, read once per operation.
pub(crate) struct Ctx<'a> {
    pub cg: &'a Cgroup,
    /// Controllers enabled in the container's cgroup v2 directory.
    pub v2_controllers: BTreeSet<String>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(cg: &'a Cgroup) -> Result<Ctx<'a>> {
        let v2_controllers = match &cg.v2 {
            Some(d) => v2::controllers(d)?,
            None => BTreeSet::new(),
        };
        Ok(Ctx { cg, v2_controllers })
    }

    /// The controller's place: its cgroup v1 hierarchy when it has one, else cgroup v2 when
    /// the controller is enabled in the container's directory there.
    pub(crate) fn place(&self, controller: &str) -> Option<Place<'a>> {
        if let Some(d) = self.cg.v1_dir(controller) {
            return Some(Place::V1(d));
        }
        match &self.cg.v2 {
            Some(d) if self.v2_controllers.contains(controller) => Some(Place::V2(d)),
            _ => None,
        }
    }

    /// Like [`Ctx::place`], but a missing controller is an error naming `field`.
    pub(crate) fn need(&self, controller: &str, field: &str) -> Result<Place<'a>> {
        self.place(controller).ok_or_else(|| {
            let v2 = match &self.cg.v2 {
                Some(d) => format!(
                    ", nor is it enabled in cgroup v2 at {} (enabled there: {})",
                    d.display(),
                    if self.v2_controllers.is_empty() {
                        "none".to_string()
                    } else {
                        self.v2_controllers
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                ),
                None => String::new(),
            };
            field_err(
                field,
                format!(
                    "the {controller} controller is not available: no cgroup v1 hierarchy has it{v2}"
                ),
            )
        })
    }
}

/// Applies every section of `r` that is present, in runc's controller order. A section
/// that asks for nothing (absent, empty, or only zero values meaning "unset") needs no
/// controller.
pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    let ctx = Ctx::new(cg)?;
    if let Some(c) = r.cpu() {
        cpuset(&ctx, c)?;
    }
    if let Some(d) = r.devices() {
        devices(cg, d)?;
    }
    if let Some(m) = r.memory() {
        memory(&ctx, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(&ctx, c)?;
    }
    if let Some(p) = r.pids() {
        pids(&ctx, p)?;
    }
    if let Some(b) = r.block_io() {
        blkio(&ctx, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(&ctx, h)?;
    }
    if let Some(n) = r.network() {
        network(cg, n)?;
    }
    if let Some(rd) = r.rdma() {
        rdma(&ctx, rd)?;
    }
    if let Some(u) = r.unified() {
        unified(&ctx, u)?;
    }
    Ok(())
}

/// The device rules: the v1 device controller when mounted, else eBPF on cgroup v2. An
/// empty list changes nothing.
fn devices(cg: &Cgroup, d: &[LinuxDeviceCgroup]) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    match (cg.v1_dir("devices"), &cg.v2) {
        (Some(dir), _) => devices::apply_v1(dir, d),
        (None, Some(dir)) => devices::apply_v2(dir, d),
        (None, None) => Err(field_err(
            "linux.resources.devices",
            "no device controller: neither a cgroup v1 devices hierarchy nor cgroup v2 is mounted",
        )),
    }
}

/// pids.max: a limit of 0 or less means unlimited.
fn pids(ctx: &Ctx<'_>, p: &LinuxPids) -> Result<()> {
    const FIELD: &str = "linux.resources.pids.limit";
    let (Place::V1(dir) | Place::V2(dir)) = ctx.need("pids", FIELD)?;
    let value = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_string()
    };
    write(FIELD, dir, "pids.max", &value)
}

fn blkio(ctx: &Ctx<'_>, b: &LinuxBlockIo) -> Result<()> {
    let nonempty = |l: &Option<Vec<_>>| l.as_ref().is_some_and(|l: &Vec<_>| !l.is_empty());
    let requested = b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|l| !l.is_empty())
        || nonempty(b.throttle_read_bps_device())
        || nonempty(b.throttle_write_bps_device())
        || nonempty(b.throttle_read_iops_device())
        || nonempty(b.throttle_write_iops_device());
    if !requested {
        return Ok(());
    }
    // cgroup v1 calls the controller blkio, cgroup v2 io.
    match ctx.place("blkio") {
        Some(Place::V1(d)) => v1::blkio(d, b),
        _ => match ctx.need("io", "linux.resources.blockIO")? {
            Place::V1(d) | Place::V2(d) => v2::io(d, b),
        },
    }
}

fn hugetlb(ctx: &Ctx<'_>, h: &[LinuxHugepageLimit]) -> Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let sizes = hugepage_sizes();
    for (i, l) in h.iter().enumerate() {
        if !sizes.iter().any(|s| s == l.page_size()) {
            let have = if sizes.is_empty() {
                "none".to_string()
            } else {
                sizes.join(", ")
            };
            return Err(field_err(
                format!("linux.resources.hugepageLimits[{i}].pageSize"),
                format!(
                    "{:?} is not a huge page size of this host (it has: {have})",
                    l.page_size()
                ),
            ));
        }
    }
    match ctx.need("hugetlb", "linux.resources.hugepageLimits")? {
        Place::V1(d) => v1::hugetlb(d, h),
        Place::V2(d) => v2::hugetlb(d, h),
    }
}

/// net_cls / net_prio exist only in cgroup v1; when they are not mounted the settings are
/// skipped with a warning, as runc does.
fn network(cg: &Cgroup, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        match cg.v1_dir("net_cls") {
            Some(d) => write(
                "linux.resources.network.classID",
                d,
                "net_cls.classid",
                &id.to_string(),
            )?,
            None => tracing::warn!(
                "linux.resources.network.classID: the net_cls cgroup is not mounted; ignoring it"
            ),
        }
    }
    if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
        match cg.v1_dir("net_prio") {
            Some(d) => {
                for (i, p) in prios.iter().enumerate() {
                    write(
                        &format!("linux.resources.network.priorities[{i}]"),
                        d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                    )?;
                }
            }
            None => tracing::warn!(
                "linux.resources.network.priorities: the net_prio cgroup is not mounted; ignoring them"
            ),
        }
    }
    Ok(())
}

/// rdma.max, one line per device: `<device> hca_handle=<n> hca_object=<n>`.
fn rdma(ctx: &Ctx<'_>, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devs: Vec<_> = rdma
        .iter()
        .filter(|(_, l)| l.hca_handles().is_some() || l.hca_objects().is_some())
        .collect();
    if devs.is_empty() {
        return Ok(());
    }
    devs.sort_by(|a, b| a.0.cmp(b.0));
    let (Place::V1(dir) | Place::V2(dir)) = ctx.need("rdma", "linux.resources.rdma")?;
    for (dev, l) in devs {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        write(&format!("linux.resources.rdma.{dev}"), dir, "rdma.max", &v)?;
    }
    Ok(())
}

/// `linux.resources.unified` goes to the cgroup v2 directory (also on hybrid hosts, where
/// only the controllers cgroup v2 holds there can be set).
fn unified(ctx: &Ctx<'_>, u: &HashMap<String, String>) -> Result<()> {
    if u.is_empty() {
        return Ok(());
    }
    for k in u.keys() {
        v2::check_unified_key(k)?;
    }
    let Some(dir) = &ctx.cg.v2 else {
        return Err(field_err(
            "linux.resources.unified",
            "needs cgroup v2, but this host only has cgroup v1 hierarchies",
        ));
    };
    v2::unified(dir, u, &ctx.v2_controllers)
}

fn cpuset(ctx: &Ctx<'_>, c: &LinuxCpu) -> Result<()> {
    let field = if c.cpus().as_deref().is_some_and(|s| !s.is_empty()) {
        "linux.resources.cpu.cpus"
    } else if c.mems().as_deref().is_some_and(|s| !s.is_empty()) {
        "linux.resources.cpu.mems"
    } else {
        return Ok(());
    };
    match ctx.need("cpuset", field)? {
        Place::V1(d) | Place::V2(d) => v1::cpuset(d, c),
    }
}

fn cpu(ctx: &Ctx<'_>, c: &LinuxCpu) -> Result<()> {
    let fields = [
        ("shares", c.shares().is_some_and(|v| v != 0)),
        ("quota", c.quota().is_some_and(|v| v != 0)),
        ("period", c.period().is_some_and(|v| v != 0)),
        ("burst", c.burst().is_some()),
        (
            "realtimeRuntime",
            c.realtime_runtime().is_some_and(|v| v != 0),
        ),
        (
            "realtimePeriod",
            c.realtime_period().is_some_and(|v| v != 0),
        ),
        ("idle", c.idle().is_some()),
    ];
    let Some((first, _)) = fields.iter().find(|(_, set)| *set) else {
        return Ok(());
    };
    match ctx.need("cpu", &format!("linux.resources.cpu.{first}"))? {
        Place::V1(d) => v1::cpu(d, c),
        Place::V2(d) => v2::cpu(d, c),
    }
}

fn memory(ctx: &Ctx<'_>, m: &LinuxMemory) -> Result<()> {
    let fields = [
        ("limit", m.limit().is_some_and(|v| v != 0)),
        ("swap", m.swap().is_some_and(|v| v != 0)),
        ("reservation", m.reservation().is_some_and(|v| v != 0)),
        ("kernelTCP", m.kernel_tcp().is_some_and(|v| v != 0)),
        ("swappiness", m.swappiness().is_some()),
        ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
    ];
    let Some((first, _)) = fields.iter().find(|(_, set)| *set) else {
        // Only settings that are fine to skip (kernel, useHierarchy) or nothing at all.
        let kernel = m.kernel().is_some_and(|v| v != 0);
        match ctx.place("memory") {
            Some(Place::V1(d)) if kernel || m.use_hierarchy().is_some() => {
                return v1::memory(d, m);
            }
            _ if kernel => tracing::warn!(
                "linux.resources.memory.kernel: kernel memory limits are not supported here; ignoring it"
            ),
            _ => {}
        }
        return Ok(());
    };
    match ctx.need("memory", &format!("linux.resources.memory.{first}"))? {
        Place::V1(d) => v1::memory(d, m),
        Place::V2(d) => v2::memory(d, m),
    }
}

/// The huge page sizes this host supports, named as the hugetlb controller names them
/// (`2MB`, `1GB`), from /sys/kernel/mm/hugepages.
pub fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return out;
    };
    let mut kbs: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kbs.sort_unstable();
    for kb in kbs {
        out.push(if kb >= 1 << 20 {
            format!("{}GB", kb >> 20)
        } else if kb >= 1 << 10 {
            format!("{}MB", kb >> 10)
        } else {
            format!("{kb}KB")
        });
    }
    out
}

/// Creates the container's directory in every hierarchy, recording each directory it made in
/// `created` (top-most first) so a failure can remove exactly those.
pub(crate) fn create_dirs(cg: &Cgroup, created: &mut Vec<PathBuf>) -> Result<()> {
    let mounts = super::hierarchy::Mounts::discover()?;
    for (name, dir) in &cg.v1 {
        let base = mounts
            .v1
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.mountpoint.clone())
            .unwrap_or_else(|| mountpoint_guess(dir));
        util::mkdir_all(&base, dir, created)?;
        if name.split(',').any(|c| c == "cpuset") {
            v1::cpuset_inherit(&base, dir)?;
        }
    }
    if let Some(dir) = &cg.v2 {
        let base = mounts
            .v2
            .as_ref()
            .map(|u| u.mountpoint.clone())
            .unwrap_or_else(|| mountpoint_guess(dir));
        util::mkdir_all(&base, dir, created)?;
        v2::enable_controllers(&base, dir)?;
    }
    Ok(())
}

/// The mountpoint of a hierarchy that is no longer in mountinfo: the nearest existing
/// ancestor of `dir`.
fn mountpoint_guess(dir: &Path) -> PathBuf {
    dir.ancestors()
        .skip(1)
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}
