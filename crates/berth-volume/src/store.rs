//! The volume store: records in the database's `volumes` table, directories under
//! `<root>/volumes/<name>/_data`, mounts for volumes with options, and the reference count of
//! the containers using each mount.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_store::Db;
use berth_store::db::VOLUMES;
use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::options::{self, MountSpec};

/// The only driver: volumes are directories (or mounts) on this host.
pub const LOCAL_DRIVER: &str = "local";
/// The label Docker puts on volumes created without a name; `prune` removes only these
/// unless asked for `all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Filters as the Engine API sends them: key → values (`{"label": ["a=b"]}`).
pub type Filters = BTreeMap<String, Vec<String>>;

/// A volume as stored (the `volumes` table's JSON value) and as inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The name, unique on the host.
    pub name: String,
    /// Always [`LOCAL_DRIVER`].
    pub driver: String,
    /// Where the content lives on the host: `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
    /// When the volume was created, RFC 3339 in UTC.
    pub created_at: String,
    /// User labels (and [`ANONYMOUS_LABEL`] on anonymous volumes).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The driver options as given (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// The mount the options describe, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<MountSpec>,
    /// The containers that hold the mount: it is made for the first and undone after the
    /// last. Kept for plain volumes too, as a record of who runs with the volume.
    #[serde(default)]
    pub mounted_by: BTreeSet<String>,
}

impl Volume {
    /// Whether the volume was created without a name.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// What `docker volume create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// The name; `None` or empty for an anonymous volume (a random 64-hex name).
    pub name: Option<String>,
    /// The driver; `None`, empty or `local`.
    pub driver: Option<String>,
    /// Driver options: `type`, `device`, `o`.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The names of the volumes removed.
    pub volumes_deleted: Vec<String>,
    /// The bytes their content used.
    pub space_reclaimed: u64,
}

/// The volumes of one data root. Blocking; `Send + Sync`, share it in an `Arc`.
#[derive(Debug)]
pub struct VolumeStore {
    db: Arc<Db>,
    dir: PathBuf,
    /// Serializes changes (create, remove, mount, release, copy-up) so that a directory,
    /// its mount and its record change together.
    lock: Mutex<()>,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

impl VolumeStore {
    /// Opens the volumes of data root `root` (directory `<root>/volumes`, created 0701),
    /// recorded in `db`.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<Self> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o701))
            })
            .map_err(|e| Error::io("", format!("create {}", dir.display()), e))?;
        Ok(VolumeStore {
            db,
            dir,
            lock: Mutex::new(()),
        })
    }

    /// `<root>/volumes`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &str) -> Result<Option<Volume>> {
        let v = self
            .db
            .read(|tx| tx.get(&VOLUMES, name))
            .map_err(|e| Error::store(name, e))?;
        match v {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| Error::io(name, "decode record", std::io::Error::other(e))),
        }
    }

    fn put(&self, v: &Volume) -> Result<()> {
        let json = serde_json::to_value(v)
            .map_err(|e| Error::io(&v.name, "encode record", std::io::Error::other(e)))?;
        self.db
            .write(|tx| tx.put(&VOLUMES, &v.name, &json))
            .map_err(|e| Error::store(&v.name, e))
    }

    fn all(&self) -> Result<Vec<Volume>> {
        let rows = self
            .db
            .read(|tx| tx.list(&VOLUMES, ""))
            .map_err(|e| Error::store("", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (name, v) in rows {
            match serde_json::from_value(v) {
                Ok(v) => out.push(v),
                Err(e) => warn!(volume = %name, error = %e, "skipping unreadable volume record"),
            }
        }
        Ok(out)
    }

    /// Creates a volume (Docker's `volume create`). Asking again for an existing name returns
    /// the existing volume unchanged. A bad name, driver or option is refused before anything
    /// is written.
    pub fn create(&self, req: &CreateOptions) -> Result<Volume> {
        let mut labels = req.labels.clone();
        let name = match req.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                berth_types::ContainerId::generate().as_str().to_string()
            }
        };
        if !valid_name(&name) {
            return Err(Error::InvalidName { name });
        }
        let driver = req.driver.as_deref().filter(|d| !d.is_empty());
        if let Some(d) = driver.filter(|d| *d != LOCAL_DRIVER) {
            return Err(Error::UnknownDriver {
                name,
                driver: d.to_string(),
            });
        }
        let mount = options::parse(&name, &req.driver_opts)?;
        let _g = self.guard();
        if let Some(v) = self.get(&name)? {
            if v.driver != LOCAL_DRIVER {
                return Err(Error::DriverConflict { name });
            }
            return Ok(v);
        }
        let vdir = self.dir.join(&name);
        let data = vdir.join("_data");
        let existed = vdir.exists();
        let made = std::fs::create_dir_all(&data)
            .map_err(|e| Error::io(&name, format!("create {}", data.display()), e));
        let v = Volume {
            name: name.clone(),
            driver: LOCAL_DRIVER.to_string(),
            mountpoint: data,
            created_at: rfc3339(SystemTime::now()),
            labels,
            options: req.driver_opts.clone(),
            scope: "local".to_string(),
            mount,
            mounted_by: BTreeSet::new(),
        };
        let r = made.and_then(|()| self.put(&v));
        if let Err(e) = r {
            if !existed {
                let _ = std::fs::remove_dir_all(&vdir);
            }
            return Err(e);
        }
        info!(volume = %name, "volume created");
        Ok(v)
    }

    /// The volume called `name` (404 [`Error::NotFound`] if none).
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        self.get(name)?.ok_or_else(|| Error::NotFound {
            name: name.to_string(),
        })
    }

    /// The volumes matching `filters` (`name`, `driver`: substrings; `label`: `key` or
    /// `key=value`, all must match; `dangling`: `true`/`1` for volumes no container uses,
    /// `false`/`0` for the others), sorted by name. `in_use` says whether a container
    /// references a volume; a volume with mount holders is in use regardless.
    pub fn list(&self, filters: &Filters, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<Volume>> {
        let mut dangling = None;
        for (k, vals) in filters {
            match k.as_str() {
                "name" | "driver" | "label" => {}
                "dangling" => {
                    for v in vals {
                        dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(Error::InvalidFilter(format!("dangling={v}"))),
                        });
                    }
                }
                _ => return Err(Error::InvalidFilter(k.clone())),
            }
        }
        let vals = |k: &str| filters.get(k).map(Vec::as_slice).unwrap_or_default();
        let mut out: Vec<Volume> = self
            .all()?
            .into_iter()
            .filter(|v| {
                vals("name").is_empty() || vals("name").iter().any(|n| v.name.contains(n.as_str()))
            })
            .filter(|v| {
                vals("driver").is_empty()
                    || vals("driver").iter().any(|d| v.driver.contains(d.as_str()))
            })
            .filter(|v| vals("label").iter().all(|l| label_matches(&v.labels, l)))
            .filter(|v| dangling.is_none_or(|d| d != (in_use(&v.name) || !v.mounted_by.is_empty())))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume (Docker's `volume rm`): refused with 409 [`Error::InUse`] while
    /// `users` (the containers referencing it, from the caller) or mount holders are not
    /// empty. With `force`, a missing volume is not an error. Its mount, if any, is undone,
    /// then its directory and record are removed.
    pub fn remove(&self, name: &str, users: &[String], force: bool) -> Result<()> {
        let _g = self.guard();
        let Some(v) = self.get(name)? else {
            if force {
                return Ok(());
            }
            return Err(Error::NotFound {
                name: name.to_string(),
            });
        };
        let mut all: BTreeSet<String> = users.iter().cloned().collect();
        all.extend(v.mounted_by.iter().cloned());
        if !all.is_empty() {
            return Err(Error::InUse {
                name: name.to_string(),
                users: all.into_iter().collect(),
            });
        }
        self.remove_locked(&v)
    }

    fn remove_locked(&self, v: &Volume) -> Result<()> {
        let data = &v.mountpoint;
        if options::is_mount_point(data).unwrap_or(false) {
            options::unmount(data).map_err(|err| Error::Mount {
                op: "unmount",
                name: v.name.clone(),
                path: data.clone(),
                err,
            })?;
            // Never remove through a mount that is still there (a bind's host directory).
            if options::is_mount_point(data).unwrap_or(true) {
                return Err(Error::Mount {
                    op: "unmount",
                    name: v.name.clone(),
                    path: data.clone(),
                    err: std::io::Error::from_raw_os_error(libc::EBUSY),
                });
            }
        }
        let vdir = self.dir.join(&v.name);
        match std::fs::remove_dir_all(&vdir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&v.name, format!("remove {}", vdir.display()), e)),
        }
        self.db
            .write(|tx| tx.delete(&VOLUMES, &v.name))
            .map_err(|e| Error::store(&v.name, e))?;
        info!(volume = %v.name, "volume removed");
        Ok(())
    }

    /// Removes the volumes no container uses (Docker's `volume prune`): by default only
    /// anonymous ones, as Docker does from API 1.42; every unused one with filter
    /// `all=true`. Filters `label` / `label!` (`key` or `key=value`) select further.
    pub fn prune(&self, filters: &Filters, in_use: &dyn Fn(&str) -> bool) -> Result<PruneReport> {
        let mut all = false;
        for (k, vals) in filters {
            match k.as_str() {
                "label" | "label!" => {}
                "all" => {
                    for v in vals {
                        all = match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(Error::InvalidFilter(format!("all={v}"))),
                        };
                    }
                }
                _ => return Err(Error::InvalidFilter(k.clone())),
            }
        }
        let vals = |k: &str| filters.get(k).map(Vec::as_slice).unwrap_or_default();
        let _g = self.guard();
        let mut report = PruneReport::default();
        for v in self.all()? {
            if (!all && !v.is_anonymous())
                || in_use(&v.name)
                || !v.mounted_by.is_empty()
                || !vals("label").iter().all(|l| label_matches(&v.labels, l))
                || vals("label!").iter().any(|l| label_matches(&v.labels, l))
            {
                continue;
            }
            let size = dir_usage(&v.mountpoint).unwrap_or(0);
            match self.remove_locked(&v) {
                Ok(()) => {
                    report.volumes_deleted.push(v.name);
                    report.space_reclaimed += size;
                }
                Err(e) => warn!(volume = %v.name, error = %e, "prune: cannot remove volume"),
            }
        }
        Ok(report)
    }

    /// Records that `container` uses volume `name` and returns the host path to mount into
    /// it. A volume with options is mounted when its first holder arrives (or when it is
    /// found unmounted, after a reboot); the holders are persisted, so a restarted daemon
    /// knows when to unmount. Idempotent per container.
    pub fn mount(&self, name: &str, container: &str) -> Result<PathBuf> {
        let _g = self.guard();
        let mut v = self.inspect(name)?;
        let mut mounted_now = false;
        if let Some(spec) = &v.mount {
            mounted_now = self.ensure_mounted(&v, spec)?;
        }
        if v.mounted_by.insert(container.to_string())
            && let Err(e) = self.put(&v)
        {
            if mounted_now {
                let _ = options::unmount(&v.mountpoint);
            }
            return Err(e);
        }
        debug!(volume = %name, container, holders = v.mounted_by.len(), "volume mounted");
        Ok(v.mountpoint)
    }

    /// Mounts `spec` on the volume's `_data` unless something is mounted there; returns
    /// whether it mounted.
    fn ensure_mounted(&self, v: &Volume, spec: &MountSpec) -> Result<bool> {
        let merr = |op, err| Error::Mount {
            op,
            name: v.name.clone(),
            path: v.mountpoint.clone(),
            err,
        };
        if options::is_mount_point(&v.mountpoint).map_err(|e| merr("mount", e))? {
            return Ok(false);
        }
        spec.mount(&v.mountpoint).map_err(|e| merr("mount", e))?;
        info!(volume = %v.name, fstype = %spec.fstype, "volume file system mounted");
        Ok(true)
    }

    /// Records that `container` no longer uses volume `name`; the last holder's release
    /// unmounts a volume with options. Releasing a container that holds nothing is a no-op.
    pub fn release(&self, name: &str, container: &str) -> Result<()> {
        let _g = self.guard();
        let mut v = self.inspect(name)?;
        if !v.mounted_by.remove(container) {
            return Ok(());
        }
        if v.mounted_by.is_empty() && v.mount.is_some() {
            options::unmount(&v.mountpoint).map_err(|err| Error::Mount {
                op: "unmount",
                name: v.name.clone(),
                path: v.mountpoint.clone(),
                err,
            })?;
            info!(volume = %name, "volume file system unmounted");
        }
        self.put(&v)
    }

    /// Brings mounts in line with the containers still alive, at daemon start: holders for
    /// which `alive` is false are dropped, volumes left without holders are unmounted, and
    /// volumes with holders but no mount (after a reboot) are mounted again.
    pub fn reconcile(&self, alive: &dyn Fn(&str) -> bool) -> Result<()> {
        let _g = self.guard();
        for mut v in self.all()? {
            let before = v.mounted_by.len();
            v.mounted_by.retain(|c| alive(c));
            if let Some(spec) = v.mount.clone() {
                let r = if v.mounted_by.is_empty() {
                    options::unmount(&v.mountpoint).map_err(|err| Error::Mount {
                        op: "unmount",
                        name: v.name.clone(),
                        path: v.mountpoint.clone(),
                        err,
                    })
                } else {
                    self.ensure_mounted(&v, &spec).map(|_| ())
                };
                if let Err(e) = r {
                    warn!(volume = %v.name, error = %e, "reconciling volume mount");
                }
            }
            if v.mounted_by.len() != before {
                self.put(&v)?;
            }
        }
        Ok(())
    }

    /// Fills the empty volume `name` from the image: copies the directory `path` of the
    /// container root file system `rootfs` (owners, modes, xattrs, times, symlinks as
    /// links, hard links) into it. Returns whether it copied: nothing happens when the
    /// volume is not empty or `path` is not a directory in the rootfs. `path` is resolved
    /// inside `rootfs` (symlinks as the container sees them); one whose symlinks climb out
    /// of it is refused ([`Error::Escape`]). A volume with options must be mounted first.
    pub fn copy_up(&self, name: &str, rootfs: &Path, path: &str) -> Result<bool> {
        let _g = self.guard();
        let v = self.inspect(name)?;
        if v.mount.is_some() && !options::is_mount_point(&v.mountpoint).unwrap_or(false) {
            return Err(Error::NotMounted {
                name: name.to_string(),
            });
        }
        crate::copyup::copy_up(&v.name, &v.mountpoint, rootfs, path)
    }

    /// The bytes volume `name` holds (file sizes, hard links counted once), for
    /// `system df -v`.
    pub fn disk_usage(&self, name: &str) -> Result<u64> {
        let v = self.inspect(name)?;
        dir_usage(&v.mountpoint).map_err(|e| Error::io(name, "measure disk usage", e))
    }

    /// Every volume with its disk usage (-1 where it cannot be measured), sorted by name.
    pub fn disk_usage_all(&self) -> Result<Vec<(Volume, i64)>> {
        let mut out: Vec<(Volume, i64)> = self
            .all()?
            .into_iter()
            .map(|v| {
                let n =
                    dir_usage(&v.mountpoint).map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
                (v, n)
            })
            .collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }
}

/// `key` (present) or `key=value` (equal).
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, val)) => labels.get(k).is_some_and(|v| v == val),
        None => labels.contains_key(filter),
    }
}

/// Sum of the sizes of everything but directories under `dir`, hard links once, walking
/// with descriptors that never follow symlinks.
pub(crate) fn dir_usage(dir: &Path) -> std::io::Result<u64> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    usage_walk(fd.as_fd(), &mut seen, &mut total, 0)?;
    Ok(total)
}

fn usage_walk(
    dir: BorrowedFd<'_>,
    seen: &mut HashSet<(u64, u64)>,
    total: &mut u64,
    depth: usize,
) -> std::io::Result<()> {
    if depth > crate::copyup::MAX_DEPTH {
        return Err(std::io::Error::other("directory tree too deep"));
    }
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name =
            <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        #[allow(clippy::unnecessary_cast)]
        let (mode, dev, ino, nlink, size) = (
            st.st_mode as u32,
            st.st_dev as u64,
            st.st_ino as u64,
            st.st_nlink as u64,
            st.st_size as u64,
        );
        if mode & libc::S_IFMT == libc::S_IFDIR {
            let sub: OwnedFd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            usage_walk(sub.as_fd(), seen, total, depth + 1)?;
        } else if nlink <= 1 || seen.insert((dev, ino)) {
            *total += size;
        }
    }
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC (`2024-05-06T07:08:09Z`).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = berth_types::time::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_and_times() {
        assert!(valid_name("ab"));
        assert!(valid_name("my_vol.1-x"));
        assert!(!valid_name("a"));
        assert!(!valid_name("_ab"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        assert!(label_matches(&l, "a"));
        assert!(label_matches(&l, "a=1"));
        assert!(!label_matches(&l, "a=2"));
        assert!(!label_matches(&l, "b"));
    }
}
