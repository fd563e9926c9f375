//! Garbage collection: blobs and snapshots that no image, container snapshot reference or live
//! lease needs are deleted.
//!
//! Correctness against work in flight rests on the order in which everything is recorded:
//! an import or commit adds a snapshot key to its lease *before* it creates the snapshot, a
//! container's snapshot reference is written *before* the snapshot is prepared, and a blob is
//! published and added to its lease while the store's gc lock is held. So collection takes that
//! lock, lists the snapshots *first* and reads the roots *after*: every snapshot in the list
//! was already protected when it was listed, or is garbage. Blobs get the content store's grace
//! period on top (for writers outside this store).
//!
//! At daemon start-up ([`ImageStore::gc_startup`]) nothing can be in flight, so leases left by
//! a daemon that died (a `kill -9` during an import or a commit) protect nothing any more: they
//! are deleted first, and unreferenced blobs go without a grace period. A crash therefore
//! leaves no partial image (records are written last, in one transaction) and, after the next
//! start, no orphan data either.

use std::collections::HashSet;
use std::time::Duration;

use berth_snapshot::Kind;
use berth_store::db::LEASES;
use tracing::{debug, info, warn};

use crate::error::Result;
use crate::store::ImageStore;

/// What one collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Snapshots removed.
    pub snapshots: usize,
    /// Disk bytes those snapshots used (`st_blocks`, as `du` counts).
    pub snapshot_bytes: u64,
    /// Blob bytes freed in the content store.
    pub blob_bytes: u64,
    /// Leases deleted (expired ones; at start-up, all).
    pub leases: usize,
}

impl GcReport {
    /// Everything freed, in bytes.
    pub fn bytes(&self) -> u64 {
        self.snapshot_bytes + self.blob_bytes
    }
}

impl ImageStore {
    /// Collects garbage while the daemon runs: expired leases, then unreferenced snapshots
    /// (children before parents; one still stacked under a needed snapshot stays), then
    /// unreferenced blobs older than the content store's grace period.
    pub fn gc(&self) -> Result<GcReport> {
        self.collect(false)
    }

    /// Collects garbage at daemon start-up: every lease is stale (its operation died with the
    /// previous daemon), so all are deleted, and unreferenced blobs go at once.
    pub fn gc_startup(&self) -> Result<GcReport> {
        self.collect(true)
    }

    fn collect(&self, startup: bool) -> Result<GcReport> {
        let _gc = self.gc_guard();
        let leases = if startup {
            self.db().write(|tx| {
                let ids: Vec<String> = tx.list(&LEASES, "")?.into_iter().map(|(k, _)| k).collect();
                for id in &ids {
                    tx.delete(&LEASES, id)?;
                }
                Ok::<_, berth_store::Error>(ids.len())
            })?
        } else {
            self.db().delete_expired_leases()?.len()
        };
        let mut report = GcReport {
            leases,
            ..GcReport::default()
        };
        // Snapshots first, roots second (see the module documentation).
        let listed = self.snapshotter().list();
        let roots = self.db().gc_roots()?;
        let mut pending: Vec<String> = listed
            .into_iter()
            .filter(|i| !roots.snapshots.contains(&i.name))
            // A view is a read-only mount someone holds; views are never garbage here.
            .filter(|i| i.kind != Kind::View)
            .map(|i| i.name)
            .collect();
        loop {
            let before = pending.len();
            let mut kept = Vec::new();
            for key in pending {
                let size = self.snapshotter().usage(&key).map_or(0, |u| u.size);
                match self.snapshotter().remove(&key) {
                    Ok(()) => {
                        debug!(snapshot = key, size, "unreferenced snapshot collected");
                        report.snapshots += 1;
                        report.snapshot_bytes += size;
                    }
                    Err(berth_snapshot::Error::NotFound(_)) => {}
                    // Still the parent of something: try again once its children are gone.
                    Err(_) => kept.push(key),
                }
            }
            pending = kept;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        if !pending.is_empty() {
            debug!(kept = ?pending, "unreferenced snapshots kept: parents of needed ones");
        }
        let keep: HashSet<_> = roots.content;
        let res = if startup {
            self.content().gc_with_grace(&keep, Duration::ZERO)
        } else {
            self.content().gc(&keep)
        };
        report.blob_bytes = match res {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "content garbage collection failed");
                0
            }
        };
        if report.snapshots > 0 || report.blob_bytes > 0 || report.leases > 0 {
            info!(
                snapshots = report.snapshots,
                snapshot_bytes = report.snapshot_bytes,
                blob_bytes = report.blob_bytes,
                leases = report.leases,
                startup,
                "garbage collected"
            );
        }
        Ok(report)
    }
}
