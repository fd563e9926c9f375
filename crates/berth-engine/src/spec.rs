//! The OCI runtime configuration (`config.json`) of a container, built from the Docker API's
//! create request, the image's config and the rootfs, with Docker's defaults.
//!
//! [`build_spec`] is pure but for a few reads: the rootfs's `/etc/passwd` and `/etc/group`
//! (through pathrs, never following links out of the rootfs), the host's devices (`stat` of
//! `--device` paths, and `/dev` for `--privileged`) and whether bind sources exist. It
//! creates missing `-v /host:/ctr` source directories as Docker does, and only once
//! everything else was validated. `--security-opt seccomp=…` carries the profile's JSON
//! (the CLI reads the file), `unconfined` or `builtin`.
//!
//! # Fields
//!
//! Every field of `ContainerCreateBody` and `HostConfig` is accounted for in [`build_spec`]
//! (destructured, so a new field of the stubs does not compile until someone decides):
//!
//! * used here: `Hostname`, `Domainname`, `User`, `Tty`, `Env`, `Cmd`, `Entrypoint`,
//!   `WorkingDir`, `NetworkDisabled`, `StopSignal`; `CpuShares`, `Memory`, `CgroupParent`,
//!   `BlkioWeight`, `CpuPeriod`, `CpuQuota`, `CpusetCpus`, `CpusetMems`, `Devices`,
//!   `DeviceCgroupRules`, `MemoryReservation`, `MemorySwap`, `MemorySwappiness`,
//!   `NanoCpus`, `OomKillDisable`, `Init`, `PidsLimit`, `Ulimits`, `Binds`, `NetworkMode`,
//!   `Mounts` (bind, tmpfs), `ConsoleSize`, `Annotations`, `CapAdd`, `CapDrop`,
//!   `CgroupnsMode`, `GroupAdd`, `IpcMode`, `OomScoreAdj`, `PidMode`, `Privileged`,
//!   `ReadonlyRootfs`, `SecurityOpt`, `Tmpfs`, `UTSMode`, `UsernsMode` (host only),
//!   `ShmSize`, `Sysctls`, `Runtime` (berth's only), `Isolation` (default only),
//!   `MaskedPaths`, `ReadonlyPaths`;
//! * the engine's, outside the runtime config (accepted, not read here): `Image`, `Labels`,
//!   `AttachStdin`/`AttachStdout`/`AttachStderr`, `OpenStdin`, `StdinOnce`, `StopTimeout`,
//!   `RestartPolicy`, `AutoRemove`, `LogConfig`, `ContainerIDFile` (a client-side option),
//!   and the caller's when it writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`:
//!   `Dns`, `DnsOptions`, `DnsSearch`, `ExtraHosts`; and the network layer's:
//!   `NetworkingConfig`;
//! * metadata with no effect on the process: `ExposedPorts`, `OnBuild`, `Shell`,
//!   `ArgsEscaped` (Windows only);
//! * not supported yet, refused with an error naming the field when set to anything but
//!   the default: `Volumes`, `PortBindings`, `PublishAllPorts`, `Links`,
//!   `VolumeDriver`, `VolumesFrom`, `StorageOpt`, `Cgroup`, `DeviceRequests`,
//!   `BlkioWeightDevice`, `BlkioDeviceReadBps`, `BlkioDeviceWriteBps`,
//!   `BlkioDeviceReadIOps`, `BlkioDeviceWriteIOps`, `CpuRealtimePeriod`,
//!   `CpuRealtimeRuntime`, `CpuCount`, `CpuPercent`, `IOMaximumIOps`,
//!   `IOMaximumBandwidth`, volume/image/npipe/cluster `Mounts`, named volumes in `Binds`.

mod mounts;
mod resources;
mod security;
#[cfg(test)]
mod tests;
mod user;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use berth_api_types::models::{ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum};
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, ProcessBuilder, Root,
    Spec, UserBuilder,
};

use crate::seccomp_profile::{HostArch, KernelVersion};

pub use security::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES};

/// Where `--init`'s binary appears in the container (Docker's path, which tools look for).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The PATH a container gets when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The OCI version of the configurations berth writes.
const OCI_VERSION: &str = "1.2.0";

/// Why a configuration could not be built. The message names the request field at fault
/// (`HostConfig.PortBindings: not supported yet`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The request asks for something invalid or unsupported (HTTP 400).
    #[error("{0}")]
    InvalidParameter(String),
    /// The request names an object that does not exist, such as the container of
    /// `--network container:web` (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The host failed us: an unreadable rootfs or device, a directory that could not be
    /// created (HTTP 500).
    #[error("{0}")]
    System(String),
}

impl SpecError {
    fn invalid(m: impl Into<String>) -> SpecError {
        SpecError::InvalidParameter(m.into())
    }
    fn system(m: impl Into<String>) -> SpecError {
        SpecError::System(m.into())
    }
    /// `<field>: not supported yet`.
    fn unsupported(field: &str) -> SpecError {
        SpecError::InvalidParameter(format!("{field}: not supported yet"))
    }
}

impl From<SpecError> for berth_types::Error {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::InvalidParameter(m) => berth_types::Error::invalid_parameter(m),
            SpecError::NotFound(m) => berth_types::Error::not_found(m),
            SpecError::System(m) => berth_types::Error::system(m),
        }
    }
}

/// An oci-spec builder failure: a bug of ours, not the request's.
fn built<T>(r: Result<T, oci_spec::OciSpecError>) -> Result<T, SpecError> {
    r.map_err(|e| SpecError::system(format!("building the runtime config: {e}")))
}

/// This module's result type.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// What the spec takes from the image's config (`config` of the OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Env`: `KEY=value` entries.
    pub env: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `WorkingDir`; empty for `/`.
    pub working_dir: String,
    /// `User`; empty for root.
    pub user: String,
    /// `Labels` (not used in the spec; carried for the engine).
    pub labels: HashMap<String, String>,
    /// `StopSignal`; `None` for SIGTERM.
    pub stop_signal: Option<String>,
}

/// Host files bind-mounted into the container, prepared by the caller (from `Hostname`,
/// `Dns*` and `ExtraHosts`, or another container's for `--network container:…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFiles {
    /// Mounted at `/etc/hostname`.
    pub hostname: Option<PathBuf>,
    /// Mounted at `/etc/hosts`.
    pub hosts: Option<PathBuf>,
    /// Mounted at `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
}

/// What about the host the spec depends on. [`Host::detect`] reads it; tests build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The architecture, for the seccomp profile.
    pub arch: HostArch,
    /// The kernel version, for the seccomp profile.
    pub kernel: KernelVersion,
    /// The highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`):
    /// "all capabilities" means those up to it.
    pub last_cap: u32,
    /// Whether the kernel has seccomp filters (the default profile is skipped without them;
    /// an explicit profile is an error).
    pub seccomp: bool,
    /// The number of CPUs, the bound of `NanoCpus`.
    pub cpus: u32,
    /// The host's hostname, a `--network host` container's default.
    pub hostname: String,
    /// Whether containers get a private cgroup namespace when `CgroupnsMode` is unset
    /// (Docker's default on cgroup v2 hosts; v1 hosts default to the host's).
    pub private_cgroupns_default: bool,
}

impl Host {
    /// This host.
    pub fn detect() -> Result<Host> {
        let arch = HostArch::native().ok_or_else(|| {
            SpecError::system(format!(
                "architecture {} is not supported",
                std::env::consts::ARCH
            ))
        })?;
        let kernel = KernelVersion::running().map_err(|e| SpecError::system(e.to_string()))?;
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let last_cap = read("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40);
        let seccomp = std::fs::read_to_string("/proc/self/status")
            .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
            .unwrap_or(false);
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let hostname = read("/proc/sys/kernel/hostname").unwrap_or_default();
        let private_cgroupns_default = rustix::fs::statfs("/sys/fs/cgroup")
            .map(|s| s.f_type == libc::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        Ok(Host {
            arch,
            kernel,
            last_cap,
            seccomp,
            cpus,
            hostname,
            private_cgroupns_default,
        })
    }
}

/// Which namespace of another container a request joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinKind {
    /// `--network container:<id>`: its network namespace.
    Network,
    /// `--ipc container:<id>`: its IPC namespace.
    Ipc,
    /// `--ipc container:<id>`: the host directory its `/dev/shm` is (bound in ours).
    IpcShm,
    /// `--pid container:<id>`: its PID namespace.
    Pid,
}

/// Finds what another container offers to join: `(kind, name or id)` → a path (the
/// namespace, `/proc/<pid>/ns/net`, or the shm directory), `None` when there is no such
/// running container.
pub type Joiner<'a> = &'a dyn Fn(JoinKind, &str) -> Option<PathBuf>;

/// Everything [`build_spec`] needs.
pub struct SpecRequest<'a> {
    /// The container's id (64 hex digits): the cgroup is `/berth/<id>` and the default
    /// hostname its first 12 characters.
    pub id: &'a str,
    /// The create request; its `HostConfig` (absent: all defaults) is read too.
    pub create: &'a ContainerCreateBody,
    /// The image's config.
    pub image: &'a ImageConfig,
    /// The container's root filesystem on the host (prepared, mounted).
    pub rootfs: &'a Path,
    /// The hostname/hosts/resolv.conf files to bind.
    pub files: &'a ContainerFiles,
    /// The host path of the init binary for `--init`.
    pub init_binary: Option<&'a Path>,
    /// The network namespace prepared for a `bridge` or user-defined network, if the
    /// network layer made one; otherwise the runtime creates a fresh one.
    pub network_namespace: Option<&'a Path>,
    /// Resolves `container:<id>` modes.
    pub join: Joiner<'a>,
    /// The host.
    pub host: &'a Host,
}

/// The result of [`build_spec`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The OCI runtime configuration, ready to be written as the bundle's `config.json`.
    pub spec: Spec,
    /// The signal `docker stop` sends (the request's, the image's, or SIGTERM).
    pub stop_signal: i32,
}

/// Builds the runtime configuration of container `req.id`, with Docker's semantics (see
/// the module docs for which fields are used, and which refused).
pub fn build_spec(req: &SpecRequest<'_>) -> Result<ContainerSpec> {
    let c = req.create;
    let hc_default = HostConfig::default();
    let hc = c.host_config.as_ref().unwrap_or(&hc_default);
    reject_unsupported(c, hc)?;

    let privileged = hc.privileged.unwrap_or(false);
    let sec = security::SecurityOpts::parse(hc.security_opt.as_deref().unwrap_or_default())?;

    // Namespaces.
    let modes = Modes::parse(c, hc, req)?;

    // Identity and process.
    let user_spec = match c.user.as_deref() {
        Some(u) if !u.is_empty() => u,
        _ => req.image.user.as_str(),
    };
    let exec_user = user::resolve(
        req.rootfs,
        user_spec,
        hc.group_add.as_deref().unwrap_or_default(),
        "Config.User",
    )?;

    let hostname = match c.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => {
            validate_hostname(h, "Config.Hostname")?;
            h.to_string()
        }
        None if modes.network == NetMode::Host => req.host.hostname.clone(),
        None => req.id.chars().take(12).collect(),
    };
    let domainname = c.domainname.clone().filter(|d| !d.is_empty());
    if let Some(d) = &domainname {
        validate_hostname(d, "Config.Domainname")?;
    }
    let tty = c.tty.unwrap_or(false);

    let env = build_env(req.image, c, &hostname, tty, &exec_user.home)?;
    let mut args = build_args(req.image, c)?;
    let init = hc.init.unwrap_or(false);
    let init_binary = if init {
        let path = req.init_binary.ok_or_else(|| {
            SpecError::system("HostConfig.Init: no init binary is configured on this daemon")
        })?;
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        Some(path)
    } else {
        None
    };
    let cwd = working_dir(req.image, c)?;
    let stop_signal = parse_signal(
        c.stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(req.image.stop_signal.as_deref())
            .unwrap_or("SIGTERM"),
    )?;

    let caps = security::capabilities(hc, privileged, req.host.last_cap)?;
    let rlimits = resources::rlimits(hc.ulimits.as_deref().unwrap_or_default())?;
    let oom_score_adj = match hc.oom_score_adj {
        None | Some(0) => None,
        Some(v) if (-1000..=1000).contains(&v) => Some(v as i32),
        Some(v) => {
            return Err(SpecError::invalid(format!(
                "HostConfig.OomScoreAdj: invalid value {v}, the range is [-1000, 1000]"
            )));
        }
    };

    let mut user_b = UserBuilder::default().uid(exec_user.uid).gid(exec_user.gid);
    if !exec_user.additional_gids.is_empty() {
        user_b = user_b.additional_gids(exec_user.additional_gids.clone());
    }
    let mut process = built(
        ProcessBuilder::default()
            .terminal(tty)
            .user(built(user_b.build())?)
            .args(args)
            .env(env)
            .cwd(cwd)
            .capabilities(caps.clone())
            .no_new_privileges(sec.no_new_privileges)
            .build(),
    )?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_oom_score_adj(oom_score_adj);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    process.set_scheduler(None);
    process.set_io_priority(None);
    if tty && let Some(size) = hc.console_size.as_deref() {
        if let [height, width] = size {
            let b = built(
                oci_spec::runtime::BoxBuilder::default()
                    .height(*height as u64)
                    .width(*width as u64)
                    .build(),
            )?;
            process.set_console_size(Some(b));
        } else if !size.is_empty() {
            return Err(SpecError::invalid(
                "HostConfig.ConsoleSize: expected [height, width]",
            ));
        }
    }

    // Mounts, devices, paths.
    let readonly_rootfs = hc.readonly_rootfs.unwrap_or(false);
    let mount_plan = mounts::plan(
        hc,
        &mounts::MountContext {
            privileged,
            writable_cgroups: sec.writable_cgroups,
            ipc: &modes.ipc,
            readonly_rootfs,
            files: req.files,
            init_binary,
            recursive_readonly: req.host.kernel >= KernelVersion::new(5, 12),
        },
    )?;
    let (devices, device_rules) = mounts::devices(hc, privileged)?;
    let (masked, readonly) = if privileged || sec.unconfined_systempaths {
        (Vec::new(), Vec::new())
    } else {
        (
            hc.masked_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            hc.readonly_paths.clone().unwrap_or_else(|| {
                DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
        )
    };

    // Resources and kernel parameters.
    let mut res = resources::resources(hc, req.host)?;
    res.set_devices(Some(device_rules));
    let sysctls = resources::sysctls(hc, &modes)?;

    // Seccomp: none when privileged or unconfined; the profile resolved for our caps.
    let bounding: Vec<String> = caps
        .bounding()
        .iter()
        .flatten()
        .map(|c| security::cap_name(*c))
        .collect();
    let seccomp = security::seccomp(&sec, privileged, &bounding, req.host)?;

    let cgroups_path = cgroups_path(hc, req.id)?;
    let mut linux = built(
        LinuxBuilder::default()
            .namespaces(modes.namespaces(req.host)?)
            .resources(res)
            .cgroups_path(cgroups_path)
            .devices(devices)
            .masked_paths(masked)
            .readonly_paths(readonly)
            .build(),
    )?;
    linux.set_sysctl((!sysctls.is_empty()).then_some(sysctls));
    linux.set_seccomp(seccomp);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    let mut root = Root::default();
    root.set_path(req.rootfs.to_path_buf());
    root.set_readonly(Some(readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname((modes.uts_private).then_some(hostname));
    spec.set_domainname(if modes.uts_private { domainname } else { None });
    spec.set_mounts(Some(mount_plan.mounts));
    spec.set_annotations(hc.annotations.clone().filter(|a| !a.is_empty()));
    spec.set_linux(Some(linux));
    spec.set_hooks(None);

    // Side effects last, once nothing can fail on the request any more.
    for dir in mount_plan.create_dirs {
        std::fs::create_dir_all(&dir).map_err(|e| {
            SpecError::system(format!("creating the bind source {}: {e}", dir.display()))
        })?;
    }
    Ok(ContainerSpec { spec, stop_signal })
}

/// Docker's masked paths: host information and interfaces a container should not read.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths: kernel knobs under /proc a container may read, not change.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Refuses the fields berth does not implement yet when they hold anything but their
/// default, and lists (by destructuring) every field so none is forgotten.
fn reject_unsupported(c: &ContainerCreateBody, hc: &HostConfig) -> Result<()> {
    let ContainerCreateBody {
        hostname: _,
        domainname: _,
        user: _,
        attach_stdin: _,
        attach_stdout: _,
        attach_stderr: _,
        exposed_ports: _,
        tty: _,
        open_stdin: _,
        stdin_once: _,
        env: _,
        cmd: _,
        healthcheck: _,
        args_escaped: _,
        image: _,
        volumes,
        working_dir: _,
        entrypoint: _,
        network_disabled: _,
        on_build: _,
        labels: _,
        stop_signal: _,
        stop_timeout: _,
        shell: _,
        host_config: _,
        networking_config: _,
    } = c;
    if volumes.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(SpecError::invalid(
            "Config.Volumes: anonymous volumes are not supported yet",
        ));
    }

    let HostConfig {
        cpu_shares: _,
        memory: _,
        cgroup_parent: _,
        blkio_weight: _,
        blkio_weight_device,
        blkio_device_read_bps,
        blkio_device_write_bps,
        blkio_device_read_iops,
        blkio_device_write_iops,
        cpu_period: _,
        cpu_quota: _,
        cpu_realtime_period,
        cpu_realtime_runtime,
        cpuset_cpus: _,
        cpuset_mems: _,
        devices: _,
        device_cgroup_rules: _,
        device_requests,
        memory_reservation: _,
        memory_swap: _,
        memory_swappiness: _,
        nano_cpus: _,
        oom_kill_disable: _,
        init: _,
        pids_limit: _,
        ulimits: _,
        cpu_count,
        cpu_percent,
        io_maximum_iops,
        io_maximum_bandwidth,
        binds: _,
        container_id_file: _,
        log_config: _,
        network_mode: _,
        port_bindings,
        restart_policy: _,
        auto_remove: _,
        volume_driver,
        volumes_from,
        mounts: _,
        console_size: _,
        annotations: _,
        cap_add: _,
        cap_drop: _,
        cgroupns_mode: _,
        dns: _,
        dns_options: _,
        dns_search: _,
        extra_hosts: _,
        group_add: _,
        ipc_mode: _,
        cgroup,
        links,
        oom_score_adj: _,
        pid_mode: _,
        privileged: _,
        publish_all_ports,
        readonly_rootfs: _,
        security_opt: _,
        storage_opt,
        tmpfs: _,
        uts_mode: _,
        userns_mode,
        shm_size: _,
        sysctls: _,
        runtime,
        isolation,
        masked_paths: _,
        readonly_paths: _,
    } = hc;

    fn nonempty_vec<T>(v: &Option<Vec<T>>) -> bool {
        v.as_ref().is_some_and(|v| !v.is_empty())
    }
    let checks: [(&str, bool); 17] = [
        (
            "HostConfig.BlkioWeightDevice",
            nonempty_vec(blkio_weight_device),
        ),
        (
            "HostConfig.BlkioDeviceReadBps",
            nonempty_vec(blkio_device_read_bps),
        ),
        (
            "HostConfig.BlkioDeviceWriteBps",
            nonempty_vec(blkio_device_write_bps),
        ),
        (
            "HostConfig.BlkioDeviceReadIOps",
            nonempty_vec(blkio_device_read_iops),
        ),
        (
            "HostConfig.BlkioDeviceWriteIOps",
            nonempty_vec(blkio_device_write_iops),
        ),
        (
            "HostConfig.CpuRealtimePeriod",
            cpu_realtime_period.unwrap_or(0) != 0,
        ),
        (
            "HostConfig.CpuRealtimeRuntime",
            cpu_realtime_runtime.unwrap_or(0) != 0,
        ),
        ("HostConfig.DeviceRequests", nonempty_vec(device_requests)),
        ("HostConfig.CpuCount", cpu_count.unwrap_or(0) != 0),
        ("HostConfig.CpuPercent", cpu_percent.unwrap_or(0) != 0),
        (
            "HostConfig.IOMaximumIOps",
            io_maximum_iops.unwrap_or(0) != 0,
        ),
        (
            "HostConfig.IOMaximumBandwidth",
            io_maximum_bandwidth.unwrap_or(0) != 0,
        ),
        (
            "HostConfig.PortBindings",
            port_bindings.as_ref().is_some_and(|p| !p.is_empty()),
        ),
        (
            "HostConfig.PublishAllPorts",
            publish_all_ports.unwrap_or(false),
        ),
        ("HostConfig.Links", nonempty_vec(links)),
        ("HostConfig.VolumesFrom", nonempty_vec(volumes_from)),
        (
            "HostConfig.StorageOpt",
            storage_opt.as_ref().is_some_and(|s| !s.is_empty()),
        ),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
        return Err(SpecError::unsupported(field));
    }
    if cgroup.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(SpecError::unsupported("HostConfig.Cgroup"));
    }
    if let Some(d) = volume_driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(SpecError::invalid(format!(
            "HostConfig.VolumeDriver: volume driver {d:?} is not supported yet"
        )));
    }
    match userns_mode.as_deref() {
        None | Some("") | Some("host") => {}
        Some(m) => {
            return Err(SpecError::invalid(format!(
                "HostConfig.UsernsMode: {m:?} is not supported yet (only \"host\")"
            )));
        }
    }
    match runtime.as_deref() {
        None | Some("") | Some("runc") | Some("berth-runtime") | Some("io.containerd.runc.v2") => {}
        Some(r) => {
            return Err(SpecError::invalid(format!(
                "HostConfig.Runtime: unknown runtime {r:?} (berth has its own only)"
            )));
        }
    }
    if let Some(i) = isolation {
        use berth_api_types::models::HostConfigIsolationEnum as I;
        if !matches!(i, I::EMPTY | I::DEFAULT) {
            return Err(SpecError::invalid(format!(
                "HostConfig.Isolation: {i} is not supported on Linux"
            )));
        }
    }
    Ok(())
}

/// The network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NetMode {
    /// A namespace of its own: fresh, or the one the network layer prepared.
    Private(Option<PathBuf>),
    /// `none`: a fresh namespace with loopback only.
    None,
    /// `host`: the host's.
    Host,
    /// `container:<id>`: another container's (the path to join).
    Container(PathBuf),
}

/// The IPC mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpcMode {
    /// `private` or `shareable` (its own namespace and /dev/shm tmpfs).
    Private,
    /// `none`: its own namespace, no /dev/shm.
    None,
    /// `host`: the host's namespace and /dev/shm.
    Host,
    /// `container:<id>`: another container's namespace and /dev/shm (ns path, shm path).
    Container(PathBuf, PathBuf),
}

/// The namespace modes of a request.
struct Modes {
    network: NetMode,
    ipc: IpcMode,
    /// `None`: private; `Some(None)`: host; `Some(Some(path))`: another container's.
    pid: Option<Option<PathBuf>>,
    uts_private: bool,
    cgroupns_private: Option<bool>,
}

impl Modes {
    fn parse(c: &ContainerCreateBody, hc: &HostConfig, req: &SpecRequest<'_>) -> Result<Modes> {
        let join = |kind: JoinKind, field: &str, target: &str| -> Result<PathBuf> {
            if target.is_empty() {
                return Err(SpecError::invalid(format!(
                    "{field}: container:<name|id> needs a container"
                )));
            }
            (req.join)(kind, target).ok_or_else(|| {
                SpecError::NotFound(format!(
                    "{field}: no such container (or it is not running): {target}"
                ))
            })
        };

        let mode = hc.network_mode.as_deref().unwrap_or("");
        let network = if c.network_disabled.unwrap_or(false) {
            NetMode::None
        } else {
            match mode {
                "none" => NetMode::None,
                "host" => NetMode::Host,
                m if m.starts_with("container:") => NetMode::Container(join(
                    JoinKind::Network,
                    "HostConfig.NetworkMode",
                    &m["container:".len()..],
                )?),
                _ => NetMode::Private(req.network_namespace.map(Path::to_path_buf)),
            }
        };

        let ipc = match hc.ipc_mode.as_deref().unwrap_or("") {
            "" | "private" | "shareable" => IpcMode::Private,
            "none" => IpcMode::None,
            "host" => IpcMode::Host,
            m if m.starts_with("container:") => {
                let target = &m["container:".len()..];
                IpcMode::Container(
                    join(JoinKind::Ipc, "HostConfig.IpcMode", target)?,
                    join(JoinKind::IpcShm, "HostConfig.IpcMode", target)?,
                )
            }
            m => {
                return Err(SpecError::invalid(format!(
                    "HostConfig.IpcMode: invalid IPC mode {m:?}"
                )));
            }
        };

        let pid = match hc.pid_mode.as_deref().unwrap_or("") {
            "" | "private" => None,
            "host" => Some(None),
            m if m.starts_with("container:") => Some(Some(join(
                JoinKind::Pid,
                "HostConfig.PidMode",
                &m["container:".len()..],
            )?)),
            m => {
                return Err(SpecError::invalid(format!(
                    "HostConfig.PidMode: invalid PID mode {m:?}"
                )));
            }
        };

        let uts_private = match hc.uts_mode.as_deref().unwrap_or("") {
            "" | "private" => true,
            "host" => false,
            m => {
                return Err(SpecError::invalid(format!(
                    "HostConfig.UTSMode: invalid UTS mode {m:?}"
                )));
            }
        };
        if !uts_private && c.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
            return Err(SpecError::invalid(
                "Config.Hostname: conflicting options: hostname and the UTS mode host",
            ));
        }
        let cgroupns_private = match hc.cgroupns_mode {
            None | Some(HostConfigCgroupnsModeEnum::EMPTY) => None,
            Some(HostConfigCgroupnsModeEnum::PRIVATE) => Some(true),
            Some(HostConfigCgroupnsModeEnum::HOST) => Some(false),
        };
        Ok(Modes {
            network,
            ipc,
            pid,
            uts_private,
            cgroupns_private,
        })
    }

    /// The OCI namespaces: mount always; the others by mode.
    fn namespaces(&self, host: &Host) -> Result<Vec<LinuxNamespace>> {
        let ns = |typ: LinuxNamespaceType, path: Option<&Path>| -> LinuxNamespace {
            let mut n = LinuxNamespace::default();
            n.set_typ(typ);
            n.set_path(path.map(Path::to_path_buf));
            n
        };
        let mut v = vec![ns(LinuxNamespaceType::Mount, None)];
        match &self.network {
            NetMode::Private(path) => v.push(ns(LinuxNamespaceType::Network, path.as_deref())),
            NetMode::None => v.push(ns(LinuxNamespaceType::Network, None)),
            NetMode::Host => {}
            NetMode::Container(path) => v.push(ns(LinuxNamespaceType::Network, Some(path))),
        }
        match &self.ipc {
            IpcMode::Private | IpcMode::None => v.push(ns(LinuxNamespaceType::Ipc, None)),
            IpcMode::Host => {}
            IpcMode::Container(path, _) => v.push(ns(LinuxNamespaceType::Ipc, Some(path))),
        }
        match &self.pid {
            None => v.push(ns(LinuxNamespaceType::Pid, None)),
            Some(None) => {}
            Some(Some(path)) => v.push(ns(LinuxNamespaceType::Pid, Some(path))),
        }
        if self.uts_private {
            v.push(ns(LinuxNamespaceType::Uts, None));
        }
        if self
            .cgroupns_private
            .unwrap_or(host.private_cgroupns_default)
        {
            v.push(ns(LinuxNamespaceType::Cgroup, None));
        }
        Ok(v)
    }
}

/// Checks a hostname or domain name as Docker does (RFC 1123 labels, at most 255 bytes).
fn validate_hostname(h: &str, field: &str) -> Result<()> {
    let ok = h.len() <= 255
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(SpecError::invalid(format!(
            "{field}: invalid hostname format: {h}"
        )))
    }
}

/// The process environment as Docker builds it: a default PATH when the image and the
/// request set none, `HOSTNAME`, `TERM=xterm` with a tty, then the image's variables, then
/// the request's (replacing by name; a bare `NAME` removes it), and `HOME` from passwd when
/// nobody set it.
fn build_env(
    image: &ImageConfig,
    c: &ContainerCreateBody,
    hostname: &str,
    tty: bool,
    home: &str,
) -> Result<Vec<String>> {
    let mut env: Vec<String> = Vec::new();
    let request = c.env.as_deref().unwrap_or_default();
    for (i, e) in request.iter().enumerate() {
        if e.is_empty() || e.starts_with('=') || e.contains('\0') {
            return Err(SpecError::invalid(format!(
                "Config.Env[{i}]: invalid environment variable: {e:?}"
            )));
        }
    }
    let has_path = image
        .env
        .iter()
        .chain(request)
        .any(|e| e.starts_with("PATH="));
    if !has_path {
        env.push(DEFAULT_PATH.to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if tty {
        env.push("TERM=xterm".to_string());
    }
    replace_or_append(&mut env, &image.env);
    replace_or_append(&mut env, request);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// Docker's `ReplaceOrAppendEnvValues`: each override replaces the variable of its name in
/// place, or is appended; an override without `=` removes the variable.
fn replace_or_append(env: &mut Vec<String>, overrides: &[String]) {
    for o in overrides {
        let name = o.split_once('=').map_or(o.as_str(), |(n, _)| n);
        let pos = env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name);
        match (o.contains('='), pos) {
            (true, Some(p)) => env[p] = o.clone(),
            (true, None) => env.push(o.clone()),
            (false, Some(p)) => {
                env.remove(p);
            }
            (false, None) => {}
        }
    }
}

/// The process arguments, as Docker merges entrypoint and command: a request entrypoint
/// (even `[]` or `[""]`) replaces the image's and drops the image's command; otherwise the
/// request's command replaces the image's. `[""]` means no entrypoint at all.
fn build_args(image: &ImageConfig, c: &ContainerCreateBody) -> Result<Vec<String>> {
    let (entrypoint, cmd): (Vec<String>, Vec<String>) = match c.entrypoint.as_deref() {
        Some(ep) if !ep.is_empty() => {
            let ep = if ep == [""] { Vec::new() } else { ep.to_vec() };
            (ep, c.cmd.clone().unwrap_or_default())
        }
        // `[]`: the image's entrypoint is dropped but its command may remain.
        Some(_) => (
            Vec::new(),
            c.cmd
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| image.cmd.clone()),
        ),
        None => (
            image.entrypoint.clone(),
            c.cmd
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| image.cmd.clone()),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::invalid(
            "Config.Cmd: no command specified (the image has neither an entrypoint nor a command)",
        ));
    }
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(SpecError::invalid(format!(
            "Config.Cmd: argument {i} contains a NUL byte"
        )));
    }
    Ok(args)
}

/// The working directory: the request's, the image's, or `/`; absolute, cleaned.
fn working_dir(image: &ImageConfig, c: &ContainerCreateBody) -> Result<PathBuf> {
    let (dir, field) = match c.working_dir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => (w, "Config.WorkingDir"),
        None => (image.working_dir.as_str(), "image WorkingDir"),
    };
    if dir.is_empty() {
        return Ok(PathBuf::from("/"));
    }
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "{field}: the working directory {dir:?} is invalid, it needs to be an absolute path"
        )));
    }
    clean_abs(dir, field)
}

/// `path` made canonical without touching the filesystem: absolute, no `.`/`..`
/// components (`..` above `/` stays at `/`), no trailing slash.
pub(crate) fn clean_abs(path: &str, field: &str) -> Result<PathBuf> {
    if path.contains('\0') {
        return Err(SpecError::invalid(format!(
            "{field}: path contains a NUL byte"
        )));
    }
    if !path.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "{field}: {path:?} is not an absolute path"
        )));
    }
    let mut out = PathBuf::from("/");
    for comp in Path::new(path).components() {
        match comp {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// `linux.cgroupsPath`: `/berth/<id>`, or `<CgroupParent>/<id>`.
pub fn cgroups_path(hc: &HostConfig, id: &str) -> Result<PathBuf> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(SpecError::invalid(format!("invalid container id {id:?}")));
    }
    let parent = match hc.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            if p.split('/').any(|c| c == "..") || p.contains('\0') {
                return Err(SpecError::invalid(format!(
                    "HostConfig.CgroupParent: invalid cgroup parent {p:?}"
                )));
            }
            clean_abs(
                &format!("/{}", p.trim_start_matches('/')),
                "HostConfig.CgroupParent",
            )?
        }
        None => PathBuf::from("/berth"),
    };
    Ok(parent.join(id))
}

/// A signal by name (`SIGKILL`, `KILL`, `kill`, `SIGRTMIN+3`) or number, as Docker reads
/// `StopSignal`.
pub fn parse_signal(s: &str) -> Result<i32> {
    berth_runtime::utils::parse_signal(s)
        .ok_or_else(|| SpecError::invalid(format!("Config.StopSignal: invalid signal: {s}")))
}

/// Capabilities of the container process (for tests and the engine's inspect).
pub fn capability_names(caps: &LinuxCapabilities) -> Vec<String> {
    caps.bounding()
        .iter()
        .flatten()
        .map(|c| security::cap_name(*c))
        .collect()
}

/// The cgroup resources of a host configuration alone, for `docker update` (devices are not
/// part of an update).
pub fn update_resources(hc: &HostConfig, host: &Host) -> Result<oci_spec::runtime::LinuxResources> {
    resources::resources(hc, host)
}

/// The uid, gid, supplementary gids and home directory `user` (`name`, `uid[:gid]`, …)
/// stands for in `rootfs`, for processes started later (`docker exec -u`).
pub fn exec_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>, String)> {
    let u = user::resolve(rootfs, user, &[], "User")?;
    Ok((u.uid, u.gid, u.additional_gids, u.home))
}
