//! berth-store: where berthd keeps what it knows.
//!
//! Two building blocks, both used from the multi-threaded daemon through blocking calls:
//!
//! - [`content`]: a content-addressed blob store in containerd's layout
//!   (`<root>/blobs/sha256/<hex>`), written through verified, atomic [`content::Writer`]s, with
//!   a grace-period garbage collector.
//! - [`db`]: the metadata database (image records, tags, and tables for containers,
//!   snapshots, leases, volumes and networks), with typed tables of JSON values and atomic
//!   multi-table transactions. Its schema is documented in the module; the engine choice (redb)
//!   and the measurements behind it are in `DB.md` beside this crate.
//!
//! Leases ([`db::Lease`]) tie the two together: an operation in flight (a pull, an import, a
//! commit) records the blobs and snapshots it has written in a lease, and garbage collection
//! keeps everything a lease protects.

pub mod content;
pub mod db;
pub mod error;

pub use content::{ContentStore, Writer};
pub use db::{
    ContainerRecord, Db, GcRoots, ImageRecord, Lease, Platform, ReadTx, SnapshotRef, Table, WriteTx,
};
pub use error::{Error, Result};
