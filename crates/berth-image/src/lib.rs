//! berth-image: the image store.
//!
//! Images are records in berth-store's metadata DB (id = config digest, tags in their own
//! table), their config, manifest and layer blobs live in the content store, and their layers
//! are unpacked into committed snapshots named by chain id (berth-snapshot). On top of that:
//!
//! - [`model`]: OCI image config / manifest / index, with Docker schema2 media types accepted;
//!   chain ids; RFC 3339 times.
//! - [`ImageStore::import`]: `docker import` of a plain, gzip or zstd layer tarball, with
//!   [`change`] (`--change` instructions) applied to the config.
//! - [`ImageStore::bootstrap_busybox`] / [`ImageStore::bootstrap_debian`]: base images made on
//!   this host, through the same import path.
//! - lookup ([`ImageStore::resolve`]: reference, id, short id prefix, in Docker's order), list,
//!   inspect, tag, untag, and `docker rmi` semantics ([`ImageStore::remove`]).
//! - [`ImageStore::prepare_rootfs`] / [`ImageStore::release_rootfs`]: a container's writable
//!   root filesystem as an active snapshot on the image's top layer.
//! - [`gc`]: collection of blobs and snapshots nothing needs (after removals; at start-up,
//!   what a crash left).
//!
//! - [`archive`]: `docker save` / `docker load` archives (Docker's format with an OCI layout,
//!   or a pure OCI layout), streamed from and into the content store.
//!
//! Everything is blocking: the daemon calls it from `spawn_blocking`.

pub mod archive;
pub mod bootstrap;
pub mod change;
pub mod error;
pub mod gc;
mod gzip;
pub mod model;
pub mod store;

pub use archive::{LoadOptions, LoadedImage, SaveFormat, SavePlan};
pub use error::{Error, Result};
pub use gc::GcReport;
pub use model::{ContainerConfig, ImageConfig, Manifest, ManifestDoc, parse_manifest};
pub use store::{CommitOptions, DeleteItem, Image, ImageStore, ImageSummary, ImportOptions, InUse};
