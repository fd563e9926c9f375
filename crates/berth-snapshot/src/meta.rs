//! Snapshot metadata and where it is kept.
//!
//! The snapshotter only needs "load everything" and "replace everything atomically", so the
//! store is that small trait. Today it is one JSON file under the snapshotter root, replaced
//! with write-to-temporary + fsync + rename; the daemon's database can take over by
//! implementing [`MetaStore`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Context, Result};
use crate::fsutil;

/// The kind of a snapshot, as in containerd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable, not yet committed.
    Active,
    /// Read-only view of a parent, never committed.
    View,
    /// Immutable; may be the parent of others.
    Committed,
}

/// One snapshot's record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Record {
    /// Numeric id: the directory `snapshots/<id>`.
    pub id: u64,
    pub kind: Kind,
    pub parent: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created: SystemTime,
    pub updated: SystemTime,
}

/// Everything the store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Metadata {
    /// Format version of this file.
    pub version: u32,
    /// The driver the data under the root was written by (`overlay` or `copy`).
    pub driver: Option<String>,
    /// The next id to hand out; ids are never reused.
    pub next_id: u64,
    pub snapshots: BTreeMap<String, Record>,
}

/// Where snapshot metadata lives.
pub(crate) trait MetaStore: Send + Sync {
    /// Everything stored (the default, empty metadata if nothing was ever saved).
    fn load(&self) -> Result<Metadata>;
    /// Replaces everything stored, atomically; with `durable`, on disk before it returns.
    /// Without, for changes whose loss in a host crash costs nothing (a removal that the next
    /// open's orphan sweep or garbage collection redoes).
    fn save(&self, meta: &Metadata, durable: bool) -> Result<()>;
}

/// A JSON file, replaced atomically on every save.
pub(crate) struct JsonFile {
    path: PathBuf,
}

impl JsonFile {
    pub(crate) fn new(root: &Path) -> Self {
        JsonFile {
            path: root.join("metadata.json"),
        }
    }
}

impl MetaStore for JsonFile {
    fn load(&self) -> Result<Metadata> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                crate::Error::msg(format!("snapshot metadata {}: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Metadata {
                version: 1,
                next_id: 1,
                ..Default::default()
            }),
            Err(e) => Err(e).ctx(|| format!("reading {}", self.path.display())),
        }
    }

    fn save(&self, meta: &Metadata, durable: bool) -> Result<()> {
        let data = serde_json::to_vec_pretty(meta)?;
        fsutil::write_atomic(&self.path, &data, durable)
            .ctx(|| format!("writing {}", self.path.display()))
    }
}
