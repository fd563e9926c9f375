//! berth-volume: Docker's named volumes with the `local` driver.
//!
//! A volume is a record in the metadata database's `volumes` table (a [`Volume`] as JSON)
//! and a directory `<root>/volumes/<name>/_data` that containers bind-mount. The
//! [`VolumeStore`] creates, inspects, lists (filters `name`, `label`, `driver`, `dangling`),
//! removes (refused while in use, with Docker's message) and prunes them (anonymous ones
//! only unless `all=true`, as Docker's API 1.42 and later), measures their disk usage, and
//! fills a new volume from the image ([`VolumeStore::copy_up`]).
//!
//! # Mounts
//!
//! A volume created with options (`--opt type=tmpfs --opt o=size=64m`, or `type=none`,
//! `o=bind`, `device=/srv/data` for a bind of a host directory, or a device with its file
//! system) is a mount on its `_data`. berth-snapshot is the only crate that mounts image
//! content; this crate is the other legitimate mounter, for volumes only. The mount is made
//! when the first container takes the volume ([`VolumeStore::mount`]) and undone when the
//! last one lets go ([`VolumeStore::release`]); the holders are persisted in the record, so
//! a restarted daemon still knows when to unmount, and [`VolumeStore::reconcile`] at start
//! drops holders that died and remounts after a reboot.
//!
//! Calls are blocking (mounts, tree walks, database commits): async callers use
//! `spawn_blocking`.

mod copyup;
pub mod error;
pub mod options;
mod store;

pub use error::{Error, Result};
pub use options::{MountSpec, VALID_OPTIONS};
pub use store::{
    ANONYMOUS_LABEL, CreateOptions, Filters, LOCAL_DRIVER, PruneReport, Volume, VolumeStore,
    valid_name,
};
