//! `GET /version` and `GET /info`: honest figures about this berthd and its host.

use std::collections::HashMap;

use berth_api_types::models::{
    Runtime, SystemInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};

use crate::engine::Engine;
use crate::record::Status;

/// The highest API version berthd speaks.
pub const API_VERSION: &str = "1.50";
/// The lowest.
pub const MIN_API_VERSION: &str = "1.24";

fn kernel() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The version document.
pub fn version() -> SystemVersion {
    let v = env!("CARGO_PKG_VERSION").to_string();
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: format!("berth {v}"),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: v.clone(),
            details: Some(HashMap::from([
                ("ApiVersion".to_string(), API_VERSION.to_string()),
                ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
                ("Os".to_string(), "linux".to_string()),
                ("Arch".to_string(), arch().to_string()),
                ("KernelVersion".to_string(), kernel()),
            ])),
        }]),
        version: Some(v),
        api_version: Some(API_VERSION.into()),
        min_api_version: Some(MIN_API_VERSION.into()),
        git_commit: Some(option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into()),
        go_version: Some(String::new()),
        os: Some("linux".into()),
        arch: Some(arch().into()),
        kernel_version: Some(kernel()),
        experimental: Some(false),
        build_time: Some(String::new()),
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The info document.
pub fn info(e: &Engine) -> SystemInfo {
    let recs: Vec<_> = e.all().iter().map(|c| c.record()).collect();
    let count = |s: Status| recs.iter().filter(|r| r.state.status == s).count() as i64;
    let cgroup2_only = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let cfg = e.config();
    let mut runtimes = HashMap::new();
    runtimes.insert(
        "berth".to_string(),
        Runtime {
            path: Some(cfg.runtime.display().to_string()),
            ..Default::default()
        },
    );
    SystemInfo {
        id: Some(e.daemon_id()),
        containers: Some(recs.len() as i64),
        containers_running: Some(count(Status::Running) + count(Status::Restarting)),
        containers_paused: Some(count(Status::Paused)),
        containers_stopped: Some(
            count(Status::Exited) + count(Status::Created) + count(Status::Dead),
        ),
        images: Some(e.inner.images.count() as i64),
        driver: Some("overlay".into()),
        driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
        docker_root_dir: Some(cfg.data_root.display().to_string()),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(!cgroup2_only),
        debug: Some(false),
        nfd: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as i64),
        n_goroutines: Some(0),
        system_time: Some(crate::clock::now_rfc3339()),
        logging_driver: Some("json-file".into()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if cgroup2_only {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(kernel()),
        operating_system: Some(os_name()),
        os_version: Some(String::new()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map_or(1, |n| n.get() as i64)),
        mem_total: Some(mem_total()),
        name: Some(
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
        ),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(env!("CARGO_PKG_VERSION").into()),
        runtimes: Some(runtimes),
        default_runtime: Some("berth".into()),
        live_restore_enabled: Some(true),
        init_binary: Some(
            cfg.init
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
        warnings: Some(Vec::new()),
        ..Default::default()
    }
}

impl Engine {
    /// A stable id for this daemon's data root.
    pub fn daemon_id(&self) -> String {
        let p = self.config().data_root.join("engine-id");
        if let Ok(s) = std::fs::read_to_string(&p) {
            return s.trim().to_string();
        }
        let id = berth_types::ContainerId::generate().as_str().to_string();
        let _ = std::fs::write(&p, &id);
        id
    }
}
