//! The snapshotter: containerd's model of root filesystems as a tree of snapshots.
//!
//! A snapshot is **active** (writable, made by [`Snapshotter::prepare`]), a **view**
//! (read-only, [`Snapshotter::view`]) or **committed** (immutable, [`Snapshotter::commit`]
//! of an active one). Only committed snapshots can be parents. An image is unpacked by
//! preparing a snapshot on the previous layer, applying the next layer into it and
//! committing it under the layer's chain id.
//!
//! Layout under the root:
//!
//! ```text
//! <root>/lock              flock held while a Snapshotter is open
//! <root>/metadata.json     key -> {id, kind, parent, labels, times}, replaced atomically
//! <root>/snapshots/<id>/fs    the snapshot's own files (overlay: its upper / layer dir;
//!                             copy: a full tree)
//! <root>/snapshots/<id>/work  overlay work dir (active snapshots only)
//! ```
//!
//! Ids are short decimal numbers, never reused, so overlay option strings stay short.
//!
//! **Drivers.** *Overlay* stacks each snapshot's `fs` with overlayfs; *copy* (for hosts
//! without overlayfs) gives each active snapshot a full copy of its parent and bind-mounts
//! it. *Auto* picks overlay when `/proc/filesystems` lists it and a probe mount under the
//! root works (including a whiteout, which needs `mknod` and `trusted.*` xattrs on the
//! backing file system). The driver is recorded in the metadata: a root is always reopened
//! with the driver that wrote it.
//!
//! All methods take `&self` and are safe to call from several threads; the metadata is
//! guarded by a mutex, and slow work (copying a parent tree) happens outside it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use tracing::{debug, info, warn};

use crate::apply::{self, AppliedLayer, ApplyOptions};
use crate::diff::{self, Change, DiffResult};
use crate::error::{Context, Error, Result};
use crate::fsutil::{self, Descend};
pub use crate::meta::Kind;
use crate::meta::{JsonFile, MetaStore, Metadata, Record};
use crate::mount::{self, Mount, OverlayMethod, escape_overlay_path};

/// Which storage driver a snapshotter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// overlayfs: each snapshot stores only its own changes.
    Overlay,
    /// Full copies and bind mounts, for hosts without overlayfs.
    Copy,
    /// Overlay if this host can mount it on the root's file system, else copy.
    Auto,
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
            Driver::Auto => "auto",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "overlay" => Some(Driver::Overlay),
            "copy" => Some(Driver::Copy),
            _ => None,
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`Snapshotter::stat`] tells about a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The key (active, view) or name (committed).
    pub name: String,
    pub kind: Kind,
    pub parent: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub created: SystemTime,
    pub updated: SystemTime,
}

/// Disk usage of a snapshot's own data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated on disk (`st_blocks`), each hard-linked inode counted once.
    pub size: u64,
    /// Inodes, the snapshot's root directory included.
    pub inodes: u64,
}

/// The directories of one snapshot (see [`Snapshotter::paths`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The snapshot's own data.
    pub fs: PathBuf,
    /// Its overlay work directory (present for active snapshots on the overlay driver).
    pub work: PathBuf,
    /// Its ancestors' data directories, nearest first.
    pub lowers: Vec<PathBuf>,
}

/// Snapshots under one root directory.
pub struct Snapshotter {
    root: PathBuf,
    snapshots: PathBuf,
    driver: Driver,
    store: Box<dyn MetaStore>,
    state: Mutex<Metadata>,
    index_off: bool,
    _lock: File,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("root", &self.root)
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshotter rooted at `root`. Only one snapshotter may
    /// have a root open at a time (an exclusive `flock` on `<root>/lock`). Snapshot
    /// directories without metadata (left by a crash) are removed.
    pub fn open(root: impl AsRef<Path>, driver: Driver) -> Result<Self> {
        let root = std::path::absolute(root.as_ref()).ctx(|| "resolving the snapshotter root")?;
        let snapshots = root.join("snapshots");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&snapshots)
            .ctx(|| format!("creating {}", snapshots.display()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))
            .ctx(|| format!("opening {}/lock", root.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                Error::msg(format!(
                    "snapshotter root {} is in use by another process: {e}",
                    root.display()
                ))
            },
        )?;
        let store: Box<dyn MetaStore> = Box::new(JsonFile::new(&root));
        let mut meta = store.load()?;
        let stored = meta.driver.as_deref().and_then(Driver::from_name);
        let resolved = match (driver, stored) {
            (Driver::Auto, Some(s)) => s,
            (Driver::Auto, None) => probe(&snapshots),
            (d, Some(s)) if d != s => {
                return Err(Error::msg(format!(
                    "snapshotter root {} holds {s} snapshots; it cannot be opened with the {d} driver",
                    root.display()
                )));
            }
            (d, _) => d,
        };
        if resolved == Driver::Overlay && !mount::overlay_listed() {
            return Err(Error::msg(
                "the overlay driver needs overlayfs, which this kernel does not list",
            ));
        }
        if meta.driver.is_none() {
            meta.driver = Some(resolved.name().to_string());
            store.save(&meta, true)?;
        }
        let s = Snapshotter {
            root,
            snapshots,
            driver: resolved,
            store,
            state: Mutex::new(meta),
            index_off: mount::overlay_has_index_param(),
            _lock: lock,
        };
        s.remove_orphans();
        info!(root = %s.root.display(), driver = %s.driver, "snapshotter open");
        Ok(s)
    }

    /// The driver in use (never [`Driver::Auto`]).
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, Metadata> {
        // A panic while holding the lock leaves the in-memory copy as it was before the
        // failed change (changes are made on a clone), so the data is still good.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to a copy of the metadata, saves it, and only then makes it current.
    /// `durable: false` does not wait for the disk, for changes a host crash may lose at no
    /// cost: a removal, which the orphan sweep at the next open finishes (the directory is
    /// gone or goes) or garbage collection redoes (the record comes back unreferenced).
    fn update<T>(
        &self,
        st: &mut MutexGuard<'_, Metadata>,
        durable: bool,
        change: impl FnOnce(&mut Metadata) -> Result<T>,
    ) -> Result<T> {
        let mut next = (**st).clone();
        let out = change(&mut next)?;
        self.store.save(&next, durable)?;
        **st = next;
        Ok(out)
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
    }

    fn fs_dir(&self, id: u64) -> PathBuf {
        self.dir(id).join("fs")
    }

    /// Creates an active snapshot `key` on top of the committed snapshot `parent` and returns
    /// the mounts that give its writable root filesystem.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent)
    }

    /// Creates a read-only view `key` of the committed snapshot `parent` and returns its mounts.
    pub fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent)
    }

    fn create(&self, kind: Kind, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        if key.is_empty() || key.contains('\0') {
            return Err(Error::msg(format!(
                "snapshot key {key:?} is empty or has a NUL byte"
            )));
        }
        let check = |m: &Metadata| -> Result<Option<u64>> {
            if m.snapshots.contains_key(key) {
                return Err(Error::AlreadyExists(key.to_string()));
            }
            match parent {
                None => Ok(None),
                Some(p) => {
                    let r = m
                        .snapshots
                        .get(p)
                        .ok_or_else(|| Error::NotFound(p.to_string()))?;
                    if r.kind != Kind::Committed {
                        return Err(Error::state(p, "is not committed and cannot be a parent"));
                    }
                    Ok(Some(r.id))
                }
            }
        };
        // The id is reserved in memory only; the record below stores the new `next_id`. An id
        // lost in a crash may be handed out again, which is harmless: the open after the crash
        // sweeps directories no record names before anything is created.
        let (id, parent_id) = {
            let mut st = self.lock();
            let parent_id = check(&st)?;
            let id = st.next_id;
            st.next_id += 1;
            (id, parent_id)
        };
        let dir = self.dir(id);
        if let Err(e) = self.create_dirs(kind, id, parent_id) {
            let _ = fsutil::remove_tree(&dir);
            return Err(e);
        }
        let mut st = self.lock();
        let res = check(&st).and_then(|_| {
            self.update(&mut st, true, |m| {
                let now = SystemTime::now();
                m.snapshots.insert(
                    key.to_string(),
                    Record {
                        id,
                        kind,
                        parent: parent.map(str::to_string),
                        labels: BTreeMap::new(),
                        created: now,
                        updated: now,
                    },
                );
                Ok(())
            })
        });
        if let Err(e) = res {
            drop(st);
            let _ = fsutil::remove_tree(&dir);
            return Err(e);
        }
        debug!(key, id, ?kind, parent, "snapshot created");
        self.mounts_locked(&st, key)
    }

    fn create_dirs(&self, kind: Kind, id: u64, parent: Option<u64>) -> Result<()> {
        let dir = self.dir(id);
        let mk = |p: &Path, mode: u32| {
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(p)
                .ctx(|| format!("creating {}", p.display()))?;
            // The umask may have narrowed the mode.
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .ctx(|| format!("chmod {}", p.display()))
        };
        mk(&dir, 0o700)?;
        mk(&dir.join("fs"), 0o755)?;
        match self.driver {
            Driver::Overlay if kind == Kind::Active && parent.is_some() => {
                mk(&dir.join("work"), 0o700)?
            }
            Driver::Copy if kind == Kind::Active => {
                if let Some(p) = parent {
                    crate::copy::copy_tree(&self.fs_dir(p), &dir.join("fs"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The mounts of an active snapshot or a view.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let st = self.lock();
        self.mounts_locked(&st, key)
    }

    /// The `fs` directories of `key`'s ancestors, nearest first.
    fn chain(&self, m: &Metadata, rec: &Record) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut cur = rec.parent.clone();
        while let Some(p) = cur {
            let r = m
                .snapshots
                .get(&p)
                .ok_or_else(|| Error::NotFound(p.clone()))?;
            out.push(self.fs_dir(r.id));
            if out.len() > m.snapshots.len() {
                return Err(Error::msg("snapshot metadata has a parent cycle"));
            }
            cur = r.parent.clone();
        }
        Ok(out)
    }

    fn mounts_locked(&self, m: &Metadata, key: &str) -> Result<Vec<Mount>> {
        let rec = m
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        if rec.kind == Kind::Committed {
            return Err(Error::state(
                key,
                "is committed; only active snapshots and views have mounts",
            ));
        }
        let chain = self.chain(m, rec)?;
        let own = self.fs_dir(rec.id);
        let bind = |p: &Path, ro: bool| Mount {
            typ: "bind".into(),
            source: p.to_string_lossy().into_owned(),
            options: vec!["rbind".into(), if ro { "ro" } else { "rw" }.into()],
        };
        let lowerdir = |c: &[PathBuf]| {
            format!(
                "lowerdir={}",
                c.iter()
                    .map(|p| escape_overlay_path(p))
                    .collect::<Vec<_>>()
                    .join(":")
            )
        };
        let mut opts = Vec::new();
        if self.index_off {
            opts.push("index=off".to_string());
        }
        let overlay = |options: Vec<String>| Mount {
            typ: "overlay".into(),
            source: "overlay".into(),
            options,
        };
        Ok(match (self.driver, rec.kind) {
            (Driver::Copy, Kind::Active) => vec![bind(&own, false)],
            (Driver::Copy, _) => vec![bind(chain.first().unwrap_or(&own), true)],
            (_, Kind::Active) if chain.is_empty() => vec![bind(&own, false)],
            (_, Kind::Active) => {
                opts.push(format!(
                    "workdir={}",
                    escape_overlay_path(&self.dir(rec.id).join("work"))
                ));
                opts.push(format!("upperdir={}", escape_overlay_path(&own)));
                opts.push(lowerdir(&chain));
                vec![overlay(opts)]
            }
            (_, _) if chain.len() <= 1 => vec![bind(chain.first().unwrap_or(&own), true)],
            (_, _) => {
                opts.push(lowerdir(&chain));
                vec![overlay(opts)]
            }
        })
    }

    /// Commits the active snapshot `key` as the immutable snapshot `name`; `key` is gone
    /// afterwards. Its mounts must no longer be in use.
    pub fn commit(&self, name: &str, key: &str) -> Result<()> {
        self.commit_as(name, key, None)?;
        debug!(name, key, "snapshot committed");
        Ok(())
    }

    /// Commits the active snapshot `key`, made without a parent, as the immutable snapshot
    /// `name` on top of the committed snapshot `parent`. This lets a layer be unpacked before
    /// its parent is known (`docker load` unpacks layers while the archive streams in, and
    /// learns their order only from the manifest at its end). Only the overlay driver keeps
    /// a snapshot's own changes apart from its parent's, so only it allows this, and only a
    /// layer whose application did not depend on the lower layers may be attached this way
    /// (see [`AppliedLayer::implicit_dirs`]).
    pub fn commit_onto(&self, name: &str, key: &str, parent: Option<&str>) -> Result<()> {
        if parent.is_some() && self.driver == Driver::Copy {
            return Err(Error::msg(
                "the copy driver cannot attach a snapshot to a parent after the fact",
            ));
        }
        self.commit_as(name, key, Some(parent))?;
        debug!(name, key, parent, "snapshot committed onto its parent");
        Ok(())
    }

    /// [`Snapshotter::commit`], and with `onto: Some(parent)` [`Snapshotter::commit_onto`]:
    /// `key` must then have no parent yet, and gets `parent` (`None`: stays a base layer).
    fn commit_as(&self, name: &str, key: &str, onto: Option<Option<&str>>) -> Result<()> {
        if name.is_empty() || name.contains('\0') {
            return Err(Error::msg(format!(
                "snapshot name {name:?} is empty or has a NUL byte"
            )));
        }
        let mut st = self.lock();
        self.update(&mut st, true, |m| {
            let rec = m
                .snapshots
                .get(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            if rec.kind != Kind::Active {
                return Err(Error::state(key, "is not active and cannot be committed"));
            }
            if let Some(parent) = onto {
                if rec.parent.is_some() {
                    return Err(Error::state(key, "already has a parent"));
                }
                if let Some(p) = parent {
                    let pr = m
                        .snapshots
                        .get(p)
                        .ok_or_else(|| Error::NotFound(p.to_string()))?;
                    if pr.kind != Kind::Committed {
                        return Err(Error::state(p, "is not committed and cannot be a parent"));
                    }
                }
            }
            if m.snapshots.contains_key(name) {
                return Err(Error::AlreadyExists(name.to_string()));
            }
            let mut rec = m
                .snapshots
                .remove(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            rec.kind = Kind::Committed;
            if let Some(parent) = onto {
                rec.parent = parent.map(str::to_string);
            }
            rec.updated = SystemTime::now();
            m.snapshots.insert(name.to_string(), rec);
            Ok(())
        })
    }

    /// Removes snapshot `key` and its data. Refused while other snapshots have it as parent.
    /// Its mounts must already be unmounted.
    pub fn remove(&self, key: &str) -> Result<()> {
        let id = {
            let mut st = self.lock();
            self.update(&mut st, false, |m| {
                let children: Vec<&String> = m
                    .snapshots
                    .iter()
                    .filter(|(_, r)| r.parent.as_deref() == Some(key))
                    .map(|(k, _)| k)
                    .collect();
                if !children.is_empty() {
                    return Err(Error::state(
                        key,
                        format!(
                            "has {} children (first: {}) and cannot be removed",
                            children.len(),
                            children[0]
                        ),
                    ));
                }
                let rec = m
                    .snapshots
                    .remove(key)
                    .ok_or_else(|| Error::NotFound(key.to_string()))?;
                Ok(rec.id)
            })?
        };
        let dir = self.dir(id);
        if let Err(e) = fsutil::remove_tree(&dir) {
            // The metadata no longer knows it: the next open removes what is left.
            warn!(key, dir = %dir.display(), error = %e, "removing snapshot data failed");
        }
        debug!(key, id, "snapshot removed");
        Ok(())
    }

    /// What is known about snapshot `key`.
    pub fn stat(&self, key: &str) -> Result<Info> {
        let st = self.lock();
        let rec = st
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        Ok(info(key, rec))
    }

    /// Replaces the labels of snapshot `key`.
    pub fn update_labels(&self, key: &str, labels: BTreeMap<String, String>) -> Result<Info> {
        let mut st = self.lock();
        self.update(&mut st, true, |m| {
            let rec = m
                .snapshots
                .get_mut(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            rec.labels = labels;
            rec.updated = SystemTime::now();
            Ok(info(key, rec))
        })
    }

    /// All snapshots, by name.
    pub fn list(&self) -> Vec<Info> {
        let st = self.lock();
        st.snapshots.iter().map(|(k, r)| info(k, r)).collect()
    }

    /// Calls `f` for each snapshot, by name, stopping at its first error.
    pub fn walk(&self, mut f: impl FnMut(&Info) -> Result<()>) -> Result<()> {
        for i in self.list() {
            f(&i)?;
        }
        Ok(())
    }

    /// Where snapshot `key`'s data lives: its own directory (`fs`, for overlay the layer or
    /// upper directory), its overlay work directory, and its ancestors' directories, nearest
    /// first. For `docker inspect`'s `GraphDriver.Data`; callers must not write there.
    pub fn paths(&self, key: &str) -> Result<Paths> {
        let st = self.lock();
        let rec = st
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        Ok(Paths {
            fs: self.fs_dir(rec.id),
            work: self.dir(rec.id).join("work"),
            lowers: self.chain(&st, rec)?,
        })
    }

    /// Disk usage of snapshot `key`'s own data (for overlay: its layer or upper directory;
    /// for copy: its full tree).
    pub fn usage(&self, key: &str) -> Result<Usage> {
        let dir = {
            let st = self.lock();
            let rec = st
                .snapshots
                .get(key)
                .ok_or_else(|| Error::NotFound(key.to_string()))?;
            self.fs_dir(rec.id)
        };
        usage(&dir)
    }

    /// Applies a layer into the active snapshot `key` with the driver's flavour: overlay
    /// format (lower layers supply the metadata of parent directories the layer lacks), or
    /// whiteouts applied by deletion for copy.
    pub fn apply_layer<R: Read>(
        &self,
        key: &str,
        reader: R,
        opts: &ApplyOptions,
    ) -> Result<AppliedLayer> {
        let (dir, chain) = self.active_dirs(key)?;
        match self.driver {
            Driver::Copy => apply::apply_layer_copy(reader, &dir, opts),
            _ => {
                let mut o = opts.clone();
                if o.lower_dirs.is_empty() {
                    o.lower_dirs = chain;
                }
                apply::apply_layer(reader, &dir, &o)
            }
        }
    }

    /// Writes the changes of snapshot `key` (active or committed) over its parent as an OCI
    /// layer tar to `w`.
    pub fn write_diff<W: Write>(&self, key: &str, w: W) -> Result<DiffResult> {
        let (dir, chain) = self.dirs(key)?;
        match self.driver {
            Driver::Copy => diff::write_diff_naive(chain.first().map(PathBuf::as_path), &dir, w),
            _ => diff::write_diff(&chain, &dir, w),
        }
    }

    /// [`Snapshotter::write_diff`] leaving out the objects at `skip` (relative paths) that
    /// the parent does not have: mount points a runtime created (see
    /// [`crate::diff::write_diff_skipping`]).
    pub fn write_diff_skipping<W: Write>(
        &self,
        key: &str,
        skip: &[PathBuf],
        w: W,
    ) -> Result<DiffResult> {
        let (dir, chain) = self.dirs(key)?;
        match self.driver {
            Driver::Copy => {
                diff::write_diff_naive_skipping(chain.first().map(PathBuf::as_path), &dir, skip, w)
            }
            _ => diff::write_diff_skipping(&chain, &dir, skip, w),
        }
    }

    /// The changes of snapshot `key` over its parent, as `docker diff` lists them.
    pub fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let (dir, chain) = self.dirs(key)?;
        match self.driver {
            Driver::Copy => diff::changes_naive(chain.first().map(PathBuf::as_path), &dir),
            _ => diff::changes(&chain, &dir),
        }
    }

    /// Read-only mounts of the whole file system of the active snapshot or view `key`, as it
    /// stands now: for overlay, its own directory becomes the top lower layer (no upper, so
    /// no work directory is shared with a live mount of it); otherwise a read-only bind.
    pub fn readonly_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let st = self.lock();
        let rec = st
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        if rec.kind == Kind::Committed {
            return Err(Error::state(
                key,
                "is committed; only active snapshots and views have mounts",
            ));
        }
        let own = self.fs_dir(rec.id);
        let chain = self.chain(&st, rec)?;
        let bind = |p: &Path| Mount {
            typ: "bind".into(),
            source: p.to_string_lossy().into_owned(),
            options: vec!["rbind".into(), "ro".into()],
        };
        Ok(match (self.driver, rec.kind) {
            (Driver::Copy, Kind::Active) => vec![bind(&own)],
            (Driver::Copy, _) => vec![bind(chain.first().unwrap_or(&own))],
            (_, Kind::Active) if chain.is_empty() => vec![bind(&own)],
            (_, Kind::View) if chain.len() <= 1 => vec![bind(chain.first().unwrap_or(&own))],
            (_, kind) => {
                let layers: Vec<&PathBuf> = if kind == Kind::Active {
                    std::iter::once(&own).chain(chain.iter()).collect()
                } else {
                    chain.iter().collect()
                };
                let mut opts = Vec::new();
                if self.index_off {
                    opts.push("index=off".to_string());
                }
                opts.push(format!(
                    "lowerdir={}",
                    layers
                        .iter()
                        .map(|p| escape_overlay_path(p))
                        .collect::<Vec<_>>()
                        .join(":")
                ));
                vec![Mount {
                    typ: "overlay".into(),
                    source: "overlay".into(),
                    options: opts,
                }]
            }
        })
    }

    /// Writes the whole file system of the active snapshot or view `key` as a tar to `w`
    /// (`docker export`), streaming. It is read through a read-only mount made in a scratch
    /// directory under the root and detached at once (the open directory keeps it alive
    /// until the walk ends), so nothing stays mounted whatever happens to the writer.
    pub fn export<W: Write>(&self, key: &str, w: W) -> Result<DiffResult> {
        let mounts = self.readonly_mounts(key)?;
        let root = self.mount_detached(&mounts, "export-")?;
        diff::write_tree(root.as_fd(), w)
    }

    /// The file system of the active snapshot `key` as a [`crate::Tree`] for `docker cp`:
    /// mounted (read-only, or read-write when `writable`) in a scratch directory and
    /// detached at once, so the returned descriptor is the only way to it and nothing stays
    /// mounted once it is dropped. A writable tree must not be used while the snapshot is
    /// mounted elsewhere (the caller holds the container's lifecycle lock).
    pub fn open_tree(&self, key: &str, writable: bool) -> Result<crate::Tree> {
        let mounts = if writable {
            self.mounts(key)?
        } else {
            self.readonly_mounts(key)?
        };
        let root = self.mount_detached(&mounts, "cp-")?;
        Ok(crate::Tree::from_fd(root, false))
    }

    /// Mounts `mounts` in a scratch directory under the root (named `prefix…`), opens it and
    /// detaches the mount at once: the returned descriptor is the only way to the tree, and
    /// nothing stays mounted once it is dropped, whatever happens to its user.
    fn mount_detached(&self, mounts: &[Mount], prefix: &str) -> Result<OwnedFd> {
        let scratch = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.root)
            .ctx(|| format!("creating a scratch directory in {}", self.root.display()))?;
        let target = scratch.path();
        mount::mount_all(mounts, target)?;
        let opened = fsutil::open_dir_path(target).ctx(|| format!("opening {}", target.display()));
        let detached = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH)
            .ctx(|| format!("detaching {}", target.display()));
        if detached.is_err() {
            let _ = mount::unmount(target);
        }
        let root = opened?;
        detached?;
        drop(scratch);
        Ok(root)
    }

    fn dirs(&self, key: &str) -> Result<(PathBuf, Vec<PathBuf>)> {
        let st = self.lock();
        let rec = st
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        if rec.kind == Kind::View {
            return Err(Error::state(key, "is a view and has no changes"));
        }
        Ok((self.fs_dir(rec.id), self.chain(&st, rec)?))
    }

    fn active_dirs(&self, key: &str) -> Result<(PathBuf, Vec<PathBuf>)> {
        let st = self.lock();
        let rec = st
            .snapshots
            .get(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        if rec.kind != Kind::Active {
            return Err(Error::state(
                key,
                "is not active; layers are applied to active snapshots",
            ));
        }
        Ok((self.fs_dir(rec.id), self.chain(&st, rec)?))
    }

    /// Removes snapshot directories the metadata does not know (a crash between creating a
    /// directory and recording it, or between forgetting a snapshot and deleting its data).
    fn remove_orphans(&self) {
        let known: std::collections::HashSet<String> = self
            .lock()
            .snapshots
            .values()
            .map(|r| r.id.to_string())
            .collect();
        // Scratch directories of exports a crash interrupted (normally detached and removed
        // at once): nobody else has the root open, so they are all stale.
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("export-") {
                    let p = e.path();
                    warn!(dir = %p.display(), "removing a stale export directory");
                    let _ = mount::unmount(&p);
                    if let Err(err) = std::fs::remove_dir(&p) {
                        warn!(dir = %p.display(), error = %err, "could not remove it");
                    }
                }
            }
        }
        let Ok(rd) = std::fs::read_dir(&self.snapshots) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            warn!(dir = %e.path().display(), "removing orphaned snapshot directory");
            if let Err(err) = fsutil::remove_tree(&e.path()) {
                warn!(dir = %e.path().display(), error = %err, "could not remove orphan");
            }
        }
    }
}

fn info(name: &str, r: &Record) -> Info {
    Info {
        name: name.to_string(),
        kind: r.kind,
        parent: r.parent.clone(),
        labels: r.labels.clone(),
        created: r.created,
        updated: r.updated,
    }
}

/// Bytes allocated and inodes below `dir`, hard links counted once.
pub(crate) fn usage(dir: &Path) -> Result<Usage> {
    let fd = fsutil::open_dir_path(dir).ctx(|| format!("opening {}", dir.display()))?;
    let root = fsutil::stat_fd(fd.as_fd()).ctx(|| format!("stat {}", dir.display()))?;
    let mut u = Usage {
        size: root.blocks * 512,
        inodes: 1,
    };
    let mut seen = std::collections::HashSet::new();
    fsutil::walk(fd.as_fd(), Path::new(""), &mut |v| {
        if v.meta.nlink > 1 && !v.meta.is_dir() && !seen.insert((v.meta.dev, v.meta.ino)) {
            return Ok(Descend::No);
        }
        u.inodes += 1;
        u.size += v.meta.blocks * 512;
        Ok(Descend::Yes)
    })
    .ctx(|| format!("measuring {}", dir.display()))?;
    Ok(u)
}

/// Decides overlay or copy for a new root: overlayfs listed and a probe mount (with a
/// whiteout) works in a scratch directory under `snapshots`.
fn probe(snapshots: &Path) -> Driver {
    if !mount::overlay_listed() {
        info!("overlayfs not available, using the copy driver");
        return Driver::Copy;
    }
    match probe_mount(snapshots) {
        Ok(()) => Driver::Overlay,
        Err(e) => {
            warn!(error = %e, "overlay probe failed, using the copy driver");
            Driver::Copy
        }
    }
}

fn probe_mount(snapshots: &Path) -> Result<()> {
    let t = tempfile::Builder::new()
        .prefix("probe-")
        .tempdir_in(snapshots)
        .ctx(|| "creating the overlay probe directory")?;
    let p = t.path();
    for d in ["l1", "l2", "u", "w", "m"] {
        std::fs::create_dir(p.join(d)).ctx(|| format!("creating probe dir {d}"))?;
    }
    std::fs::write(p.join("l2/f"), b"").ctx(|| "writing the probe file")?;
    let m = Mount {
        typ: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("workdir={}", escape_overlay_path(&p.join("w"))),
            format!("upperdir={}", escape_overlay_path(&p.join("u"))),
            format!(
                "lowerdir={}:{}",
                escape_overlay_path(&p.join("l1")),
                escape_overlay_path(&p.join("l2"))
            ),
        ],
    };
    let target = p.join("m");
    mount::mount_with(&m, &target, OverlayMethod::Auto)?;
    let r = std::fs::remove_file(target.join("f")).ctx(|| "creating a whiteout in the probe mount");
    mount::unmount(&target)?;
    r?;
    let wh = fsutil::stat_at(
        fsutil::open_dir_path(&p.join("u"))
            .ctx(|| "opening probe upper")?
            .as_fd(),
        "f".as_ref(),
    )
    .ctx(|| "probe whiteout missing")?;
    if !wh.is_whiteout() {
        return Err(Error::msg("probe whiteout is not a character device 0:0"));
    }
    Ok(())
}
