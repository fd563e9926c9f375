//! Control groups: create a container's cgroup, apply its resource limits, freeze, signal,
//! report statistics and remove it, on cgroup v1, cgroup v2 and hybrid hosts.
//!
//! STUB: the interface below is fixed; the implementation is being written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::Result;

pub mod stats;
pub use stats::Stats;

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`),
    /// which may hold some controllers (hugetlb on this project's CI hosts).
    Hybrid,
    /// Only cgroup2, mounted at `/sys/fs/cgroup`.
    Unified,
}

/// A container's cgroup in every hierarchy the host has. Persisted in the container state so
/// that later commands find the same directories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    pub layout: Layout,
    /// The cgroup path inside each hierarchy, e.g. `/berth/3f2a…`.
    pub path: String,
    /// cgroup v1: hierarchy name as mounted (`memory`, `cpu,cpuacct`, `name=systemd`) to the
    /// container's directory in it.
    pub v1: BTreeMap<String, PathBuf>,
    /// The container's directory in the cgroup2 hierarchy, if the host has one.
    pub v2: Option<PathBuf>,
}

impl Cgroup {
    /// Works out where the cgroup lives. `cgroups_path` is `linux.cgroupsPath`: absolute paths
    /// start at each hierarchy's root, relative ones at the runtime's own cgroup, and `None`
    /// means the container id relative to the runtime's own cgroup (runc's behaviour).
    pub fn new(_cgroups_path: Option<&str>, _id: &str) -> Result<Cgroup> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Creates the directories and applies `resources`. On error, removes what it created.
    pub fn create(&self, _resources: Option<&LinuxResources>) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Applies (or updates) resource limits.
    pub fn apply(&self, _resources: &LinuxResources) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Moves a process into the cgroup in every hierarchy.
    pub fn add_task(&self, _pid: i32) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Every process in the cgroup, including its sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Freezes every process in the cgroup and waits until they are frozen.
    pub fn freeze(&self) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Sends `signal` to every process in the cgroup (freezing it meanwhile so that no
    /// process escapes by forking).
    pub fn signal_all(&self, _signal: i32) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Removes the cgroup directories. Missing directories are not an error.
    pub fn destroy(&self) -> Result<()> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }

    /// Current resource usage.
    pub fn stats(&self) -> Result<Stats> {
        Err(crate::Error::msg("cgroups: not implemented"))
    }
}
