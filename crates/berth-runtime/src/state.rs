//! Container state on disk, under the runtime root (`--root`, default `/run/berth-runtime`).
//!
//! Layout, one directory per container:
//!
//! ```text
//! <root>/<id>/state.json   the record below (written atomically; absent while `create` runs)
//! <root>/<id>/exec.fifo    exists from `create` until `start`: the init process blocks on it
//! ```
//!
//! The record keeps the config the container was created with, so later commands (`exec`,
//! `update`, `delete`'s poststop hooks) never re-read a bundle that may have changed.
//! The container's status is never stored: it is derived from the init process, the exec fifo
//! and the freezer each time it is asked for, so it cannot go stale when processes die.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::config::OCI_VERSION;
use crate::error::{Context, Error, Result};
use crate::utils;

/// The default runtime root.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

/// A container's lifecycle status, as the OCI runtime spec names them (plus `paused`, as runc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    /// The status as the OCI state spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The persisted record of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init process; 0 while creating.
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot), to tell it from a later process reusing the pid.
    pub pid_start: u64,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem on the host.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// User name of the runtime's caller.
    pub owner: String,
    /// Where the container's cgroups are.
    pub cgroup: Cgroup,
    /// The config the container was created with.
    pub config: Spec,
}

/// The runtime root directory.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// Opens (creating with mode 0700 when missing) the runtime root.
    pub fn open(dir: &Path) -> Result<Root> {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("creating runtime root {}", dir.display())),
        }
        let dir = fs::canonicalize(dir).ctx(|| format!("runtime root {}", dir.display()))?;
        Ok(Root { dir })
    }

    /// The root directory's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Reserves `id`: creates its directory, failing with [`Error::Exists`] if it is taken.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::Exists(id.to_string())),
            Err(e) => Err(e).ctx(|| format!("creating state directory {}", dir.display())),
        }
    }

    /// The ids of every container with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.dir).ctx(|| format!("listing {}", self.dir.display()))? {
            let e = e.ctx(|| format!("listing {}", self.dir.display()))?;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && let Some(name) = e.file_name().to_str()
                && validate_id(name).is_ok()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Loads container `id`'s record.
    pub fn load(&self, id: &str) -> Result<State> {
        validate_id(id)?;
        let path = self.container_dir(id).join("state.json");
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_string()));
            }
            Err(e) => return Err(e).ctx(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&data)
            .map_err(|e| Error::msg(format!("state of container {id} is corrupt: {e}")))
    }

    /// Takes an exclusive lock on container `id`'s directory, so that two commands never change
    /// the same container at once. Released when the returned fd is dropped.
    pub fn lock(&self, id: &str) -> Result<OwnedFd> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        let fd = match rustix::fs::open(
            &dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Err(Error::NotExist(id.to_string())),
            Err(e) => return Err(e).ctx(|| format!("opening {}", dir.display())),
        };
        rustix::fs::flock(fd.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .ctx(|| format!("locking {}", dir.display()))?;
        Ok(fd)
    }
}

/// Container ids are used as directory and cgroup names: refuse anything that could escape.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "invalid container id {id:?}: use letters, digits and _ - . + only"
        )))
    }
}

impl State {
    /// Path of the record inside `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Writes the record atomically into container directory `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let data = serde_json::to_vec(self)?;
        let path = Self::path(dir);
        utils::write_atomic(&path, &data)?;
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
        Ok(())
    }

    /// Whether the init process is still the process this record describes.
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match utils::proc_stat(self.pid) {
            Some(st) => st.start_time == self.pid_start && st.state != 'Z' && st.state != 'X',
            None => false,
        }
    }

    /// The current status, derived from the init process, the exec fifo and the freezer.
    pub fn status(&self, dir: &Path) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.join("exec.fifo").exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (runtime-spec "state"), with runc's extra fields.
    pub fn oci_state(&self, status: Status) -> OciState {
        let pid = match status {
            Status::Creating | Status::Created | Status::Running | Status::Paused => self.pid,
            Status::Stopped => 0,
        };
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            status,
            pid,
            bundle: self.bundle.clone(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// The state document printed by `state` and given to hooks on stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0y"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a-b_c.d+e", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn reserve_refuses_a_taken_id() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::open(tmp.path()).unwrap();
        root.reserve("c1").unwrap();
        match root.reserve("c1") {
            Err(Error::Exists(id)) => assert_eq!(id, "c1"),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        assert!(matches!(root.load("c1"), Err(Error::NotExist(_))));
    }
}
