//! berth-snapshot: root filesystems for containers, built from image layers.
//!
//! - [`Snapshotter`] — containerd's snapshotter model (prepare / view / commit / remove …)
//!   with an **overlay** driver and a **copy** fallback for hosts without overlayfs.
//! - [`mount_all`] / [`unmount`] — the only code in the daemon that performs mounts.
//! - [`apply_layer`] / [`apply_layer_copy`] — unpack an OCI layer (gzip, zstd or plain tar)
//!   into a snapshot directory, computing its digests in the same pass, with every entry
//!   contained inside the target directory however hostile the archive.
//! - [`write_diff`] / [`changes`] — the reverse: an OCI layer tar, or a `docker diff`-style
//!   change list, from a snapshot's changes.
//! - [`Tree`] — `docker cp`: stat, archive and extract paths inside a container's tree,
//!   every path resolved inside it.

mod apply;
mod archive;
mod copy;
mod diff;
mod digest;
mod error;
mod fsutil;
mod fuzz;
mod meta;
mod mount;
mod snapshotter;

pub use apply::{AppliedLayer, ApplyOptions, Compression, IdShift, apply_layer, apply_layer_copy};
pub use archive::{CopyError, PathStat, Tree, UntarOptions};
pub use diff::{
    Change, ChangeKind, DiffResult, changes, changes_naive, write_diff, write_diff_naive,
    write_tree,
};
pub use digest::Digest;
pub use error::{Error, Result};
pub use fuzz::fuzz_apply;
pub use mount::{Mount, OverlayMethod, is_mount_point, mount_all, mount_with, unmount};
pub use snapshotter::{Driver, Info, Kind, Paths, Snapshotter, Usage};
