//! The image store: images as records in the metadata DB, blobs in the content store and
//! unpacked layers as committed snapshots named by chain id.
//!
//! An image is written in this order, each step protected by a lease until the image record
//! exists: layer blob (hashed while it is applied into a fresh active snapshot), committed
//! snapshot `<chain id>`, config blob, manifest blob, and finally, in one transaction, the
//! image record and its tag. A failure at any step removes what the import wrote (the lease is
//! deleted, the active snapshot removed, the ingest file dropped), so a bad tarball leaves no
//! blob, no snapshot and no row behind.
//!
//! Removal follows `docker rmi`: by reference it untags, and deletes the image only with its
//! last reference; by id it deletes the image and all its references (refusing, unless forced,
//! when they span several repositories). An image used by a container is refused unless forced
//! (never when the container is running), and one with child images always. After the
//! records go, blobs and snapshots no other image, snapshot reference or lease needs are
//! deleted. That deletion and the step of an import that may adopt an existing blob or
//! snapshot (same layer, same config) are serialized by a lock inside the store, so an import
//! never ends up referencing something a concurrent removal just deleted.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use berth_snapshot::{ApplyOptions, Compression, Mount, Snapshotter};
use berth_store::db::{IMAGES, SNAPSHOTS, TAGS};
use berth_store::{ContentStore, Db, ImageRecord, Platform, ReadTx, SnapshotRef, Writer};
use berth_types::{AnyReference, Digest, Reference, parse_any};
use tracing::{debug, info, warn};

use crate::change::apply_changes;
use crate::error::{Error, Result};
use crate::model::{
    ContainerConfig, Descriptor, History, ImageConfig, MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST, Manifest, RootFs, chain_ids,
    host_platform, rfc3339,
};

/// How long an import's lease protects its blobs and snapshots if the import dies.
pub(crate) const IMPORT_LEASE_TTL: Duration = Duration::from_secs(6 * 3600);

/// The image store. Blocking; share it in an `Arc` and call it from `spawn_blocking`.
#[derive(Debug)]
pub struct ImageStore {
    db: Arc<Db>,
    content: ContentStore,
    snapshots: Arc<Snapshotter>,
    /// Serializes the deletion of an image's blobs and snapshots with the step of an import
    /// that finds them already there and starts relying on them (see `import_locked`).
    gc_lock: Mutex<()>,
}

/// What `import` makes of a layer tarball besides the layer itself.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The tag to set (`repo:tag`; a name alone gets `latest`). A digest reference is refused.
    pub reference: Option<Reference>,
    /// `--change` instructions (see [`crate::change`]).
    pub changes: Vec<String>,
    /// `--message`: the history comment (default `Imported from -`).
    pub message: Option<String>,
    /// The history entry's `created_by`.
    pub created_by: Option<String>,
    /// The image's creation time (default: now). A fixed time makes the image id reproducible.
    pub created: Option<SystemTime>,
    /// The container config the changes apply to (default: empty).
    pub base_config: Option<ContainerConfig>,
    /// The platform to record (default: this host's).
    pub platform: Option<Platform>,
    /// Limits for unpacking the layer (hostile input: set `max_bytes`/`max_entries`).
    pub apply: Option<ApplyOptions>,
}

/// What [`ImageStore::commit`] makes of a container's changes.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The tag to set (`repo:tag`; a name alone gets `latest`). A digest reference is refused.
    pub reference: Option<Reference>,
    /// The container's config: the new image's config before `changes`.
    pub config: ContainerConfig,
    /// `--change` instructions (see [`crate::change`]), applied to `config`.
    pub changes: Vec<String>,
    /// `--message`: the history comment.
    pub comment: Option<String>,
    /// `--author`: the config's and history entry's author.
    pub author: Option<String>,
    /// The history entry's `created_by` (Docker: the container's command).
    pub created_by: Option<String>,
    /// The image's creation time (default: now).
    pub created: Option<SystemTime>,
    /// Paths (relative to the root) left out of the layer when the base image lacks them:
    /// mount points the runtime created (`etc/hosts`, …).
    pub skip: Vec<std::path::PathBuf>,
}

/// An image with everything `docker image inspect` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The stored record.
    pub record: ImageRecord,
    /// The image config, from the content store.
    pub config: ImageConfig,
    /// Tags naming the image, sorted (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<Reference>,
    /// Digest references naming the image, sorted (`docker.io/library/busybox@sha256:…`).
    pub repo_digests: Vec<Reference>,
}

/// One image as `docker images` lists it (no config read).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    /// The stored record.
    pub record: ImageRecord,
    /// Tags naming the image, sorted.
    pub repo_tags: Vec<Reference>,
    /// Digest references naming the image, sorted.
    pub repo_digests: Vec<Reference>,
}

/// A container using an image, as the caller of [`ImageStore::remove`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The container's id.
    pub container: String,
    /// Whether it is running (then even a forced removal is refused).
    pub running: bool,
}

/// What [`ImageStore::remove`] did, in order, as Docker's `DELETE /images/{name}` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    /// A reference was removed (its familiar form: `busybox:latest`).
    Untagged(String),
    /// The image was deleted.
    Deleted(Digest),
}

/// Reads from a layer stream and copies what it reads into a content-store writer.
struct Tee<'a, R> {
    inner: R,
    writer: &'a mut Writer,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.writer.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub(crate) fn random_token() -> Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Msg(format!("random bytes: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn to_digest(d: &berth_snapshot::Digest) -> Result<Digest> {
    Digest::parse(d.as_str()).map_err(|e| Error::Msg(format!("layer digest {d}: {e}")))
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => MEDIA_OCI_LAYER,
        Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
        Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
    }
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Msg(format!("encoding json: {e}")))
}

/// The tag key of a reference for the `tags` table.
pub(crate) fn tag_key(r: &Reference) -> String {
    r.docker_ref().to_string()
}

fn short(id: &Digest) -> &str {
    id.short()
}

impl ImageStore {
    /// An image store over the daemon's metadata DB, content store and snapshotter.
    pub fn new(db: Arc<Db>, content: ContentStore, snapshots: Arc<Snapshotter>) -> Self {
        ImageStore {
            db,
            content,
            snapshots,
            gc_lock: Mutex::new(()),
        }
    }

    /// Records images and points their tags at them, all in one transaction: how import,
    /// commit and load make what they built visible.
    pub(crate) fn publish(&self, images: &[(ImageRecord, Vec<Reference>)]) -> Result<()> {
        self.db.write(|tx| {
            for (rec, tags) in images {
                tx.put(&IMAGES, rec.id.as_str(), rec)?;
                for t in tags {
                    tx.put(&TAGS, &tag_key(t), &rec.id)?;
                }
            }
            Ok::<_, berth_store::Error>(())
        })?;
        Ok(())
    }

    pub(crate) fn gc_guard(&self) -> MutexGuard<'_, ()> {
        self.gc_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The metadata database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The snapshotter.
    pub fn snapshotter(&self) -> &Arc<Snapshotter> {
        &self.snapshots
    }

    /// `docker import`: makes a one-layer image of the layer tarball read from `layer` (plain,
    /// gzip or zstd tar), applies `opts.changes` to its config and sets `opts.reference`. The
    /// layer blob is stored as given, so its digest is that of the input.
    pub fn import<R: Read>(&self, layer: R, opts: &ImportOptions) -> Result<Image> {
        if let Some(r) = &opts.reference
            && r.digest().is_some()
        {
            return Err(Error::InvalidParameter(format!(
                "cannot import with a digest reference: {}",
                r.familiar()
            )));
        }
        let mut cc = opts.base_config.clone().unwrap_or_default();
        apply_changes(&mut cc, &opts.changes)?;

        let token = random_token()?;
        let lease = format!("import-{token}");
        let work = format!("import-{token}");
        self.db.create_lease(&lease, Some(IMPORT_LEASE_TTL))?;
        let res = self.import_locked(layer, opts, cc, &lease, &work);
        match self.snapshots.remove(&work) {
            Ok(()) => {}
            Err(berth_snapshot::Error::NotFound(_)) => {}
            Err(e) => warn!(key = work, error = %e, "cannot remove import snapshot"),
        }
        if let Err(e) = self.db.delete_lease(&lease) {
            warn!(lease, error = %e, "cannot delete import lease");
        }
        if let Err(e) = &res {
            // What this import alone wrote (its layer blob, its snapshot) is garbage now.
            debug!(error = %e, "import failed");
        }
        res
    }

    fn import_locked<R: Read>(
        &self,
        layer: R,
        opts: &ImportOptions,
        cc: ContainerConfig,
        lease: &str,
        work: &str,
    ) -> Result<Image> {
        self.db.lease_add_snapshot(lease, work)?;
        self.snapshots.prepare(work, None)?;
        let mut writer = self.content.writer(None, None)?;
        let apply_opts = opts.apply.clone().unwrap_or_default();
        let applied = self.snapshots.apply_layer(
            work,
            Tee {
                inner: layer,
                writer: &mut writer,
            },
            &apply_opts,
        )?;
        // From the moment this import may find its blobs and snapshot already present until
        // its image record references them, no deletion may run in between.
        let _gc = self.gc_guard();
        let blob = writer.commit()?;
        if blob.as_str() != applied.compressed_digest.as_str() {
            return Err(Error::Msg(format!(
                "layer stored as {blob} but hashed as {} while applied",
                applied.compressed_digest
            )));
        }
        let diff_id = to_digest(&applied.diff_id)?;
        let chain = chain_ids(std::slice::from_ref(&diff_id));
        let top = chain[0].as_str().to_string();
        self.db.write(|tx| {
            tx.lease_add_content(lease, &blob)?;
            tx.lease_add_snapshot(lease, &top)
        })?;
        match self.snapshots.commit(&top, work) {
            Ok(()) => {}
            Err(berth_snapshot::Error::AlreadyExists(_)) => {
                // The same layer was unpacked before: keep that snapshot, drop this one.
                debug!(snapshot = top, "layer already unpacked");
                self.snapshots.remove(work)?;
            }
            Err(e) => return Err(e.into()),
        }

        let created = rfc3339(opts.created.unwrap_or_else(SystemTime::now));
        let platform = opts.platform.clone().unwrap_or_else(host_platform);
        let config = ImageConfig {
            created: Some(created.clone()),
            author: None,
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
            os: platform.os.clone(),
            config: Some(cc),
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![History {
                created: Some(created.clone()),
                created_by: opts.created_by.clone(),
                author: None,
                comment: Some(
                    opts.message
                        .clone()
                        .unwrap_or_else(|| "Imported from -".into()),
                ),
                empty_layer: false,
            }],
            extra: Default::default(),
        };
        let config_bytes = json(&config)?;
        let id = self.content.put(&config_bytes, None)?;
        self.db.lease_add_content(lease, &id)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: id.clone(),
                size: config_bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
                extra: Default::default(),
            },
            layers: vec![Descriptor {
                media_type: layer_media_type(applied.compression).into(),
                digest: blob.clone(),
                size: applied.compressed_size,
                platform: None,
                annotations: Default::default(),
                extra: Default::default(),
            }],
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_digest = self.content.put(&json(&manifest)?, None)?;
        self.db.lease_add_content(lease, &manifest_digest)?;

        let record = ImageRecord {
            id: id.clone(),
            manifest_digest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            index_digest: None,
            size: applied.size,
            created: Some(created),
            platform,
            layers: vec![blob],
            diff_ids: vec![diff_id],
            chain_ids: chain,
            parent: None,
            labels: config
                .config
                .as_ref()
                .map(|c| c.labels.clone())
                .unwrap_or_default(),
        };
        self.publish(&[(record, opts.reference.iter().cloned().collect())])?;
        info!(id = %id, reference = ?opts.reference.as_ref().map(|r| r.familiar()), "image imported");
        self.inspect(id.as_str())
    }

    /// `docker commit`: a new image made of image `parent` (`None`: no base image) plus the
    /// changes of the active snapshot `key` (a container's root filesystem) as one more layer,
    /// with `opts.config` (after `opts.changes`) as its container config and one more history
    /// entry. The layer is written as a gzip tar into the content store and unpacked into a
    /// committed snapshot named by its chain id; as for [`ImageStore::import`], everything is
    /// written under a lease and a failure at any step leaves nothing behind. The caller makes
    /// sure the snapshot does not change meanwhile (pauses the container).
    pub fn commit(
        &self,
        parent: Option<&Digest>,
        key: &str,
        opts: &CommitOptions,
    ) -> Result<Image> {
        if let Some(r) = &opts.reference
            && r.digest().is_some()
        {
            return Err(Error::InvalidParameter(format!(
                "cannot commit to a digest reference: {}",
                r.familiar()
            )));
        }
        let mut cc = opts.config.clone();
        apply_changes(&mut cc, &opts.changes)?;
        let parent = match parent {
            Some(id) => {
                let rec = self
                    .db
                    .read(|tx| tx.get(&IMAGES, id.as_str()))?
                    .ok_or_else(|| Error::NotFound(id.to_string()))?;
                let config = self.config(&rec.id)?;
                let manifest: Manifest =
                    serde_json::from_slice(&self.content.read(&rec.manifest_digest)?)
                        .map_err(|e| Error::Msg(format!("manifest of image {}: {e}", rec.id)))?;
                Some((rec, config, manifest))
            }
            None => None,
        };
        let token = random_token()?;
        let lease = format!("commit-{token}");
        let work = format!("commit-{token}");
        self.db.create_lease(&lease, Some(IMPORT_LEASE_TTL))?;
        let res = self.commit_leased(parent, key, opts, cc, &lease, &work);
        match self.snapshots.remove(&work) {
            Ok(()) | Err(berth_snapshot::Error::NotFound(_)) => {}
            Err(e) => warn!(key = work, error = %e, "cannot remove commit snapshot"),
        }
        if let Err(e) = self.db.delete_lease(&lease) {
            warn!(lease, error = %e, "cannot delete commit lease");
        }
        if let Err(e) = &res {
            debug!(error = %e, "commit failed");
        }
        res
    }

    fn commit_leased(
        &self,
        parent: Option<(ImageRecord, ImageConfig, Manifest)>,
        key: &str,
        opts: &CommitOptions,
        cc: ContainerConfig,
        lease: &str,
        work: &str,
    ) -> Result<Image> {
        // The layer: the snapshot's diff, gzip-compressed into the content store.
        let mut writer = self.content.writer(None, None)?;
        let diff = {
            let mut gz = crate::gzip::AdaptiveGz::new(&mut writer);
            let d = self
                .snapshots
                .write_diff_skipping(key, &opts.skip, &mut gz)?;
            gz.finish()
                .map_err(|e| Error::Msg(format!("compressing the layer: {e}")))?;
            d
        };
        let compressed_size = writer.written();
        let diff_id = to_digest(&diff.diff_id)?;
        let parent_top = parent
            .as_ref()
            .and_then(|(r, _, _)| r.top_snapshot().map(|d| d.as_str().to_string()));
        let mut diff_ids = parent
            .as_ref()
            .map(|(r, _, _)| r.diff_ids.clone())
            .unwrap_or_default();
        diff_ids.push(diff_id.clone());
        let chain = chain_ids(&diff_ids);
        let top = chain
            .last()
            .map(|d| d.as_str().to_string())
            .ok_or_else(|| Error::Msg("commit made no layer".into()))?;

        let _gc = self.gc_guard();
        let blob = writer.commit()?;
        self.db.write(|tx| {
            tx.lease_add_content(lease, &blob)?;
            tx.lease_add_snapshot(lease, &top)?;
            tx.lease_add_snapshot(lease, work)
        })?;
        // The layer's snapshot, unpacked from the blob as a pull would (unless some image
        // already has exactly this chain).
        if self.snapshots.stat(&top).is_err() {
            self.snapshots.prepare(work, parent_top.as_deref())?;
            let applied = self.snapshots.apply_layer(
                work,
                self.content.open_blob(&blob)?,
                &ApplyOptions::default(),
            )?;
            if applied.diff_id.as_str() != diff_id.as_str() {
                return Err(Error::Msg(format!(
                    "committed layer hashed as {diff_id} but unpacked as {}",
                    applied.diff_id
                )));
            }
            match self.snapshots.commit(&top, work) {
                Ok(()) => {}
                Err(berth_snapshot::Error::AlreadyExists(_)) => self.snapshots.remove(work)?,
                Err(e) => return Err(e.into()),
            }
        }

        let created = rfc3339(opts.created.unwrap_or_else(SystemTime::now));
        let platform = parent
            .as_ref()
            .map(|(r, _, _)| r.platform.clone())
            .unwrap_or_else(host_platform);
        let history_entry = History {
            created: Some(created.clone()),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone().filter(|c| !c.is_empty()),
            empty_layer: false,
        };
        let mut config = match &parent {
            Some((_, c, _)) => c.clone(),
            None => ImageConfig {
                created: None,
                author: None,
                architecture: platform.architecture.clone(),
                variant: platform.variant.clone(),
                os: platform.os.clone(),
                config: None,
                rootfs: RootFs {
                    typ: "layers".into(),
                    diff_ids: Vec::new(),
                },
                history: Vec::new(),
                extra: Default::default(),
            },
        };
        config.created = Some(created.clone());
        config.author = opts.author.clone().filter(|a| !a.is_empty());
        config.config = Some(cc);
        config.rootfs.diff_ids = diff_ids.clone();
        config.history.push(history_entry);
        let config_bytes = json(&config)?;
        let id = self.content.put(&config_bytes, None)?;
        self.db.lease_add_content(lease, &id)?;

        let mut layers: Vec<Descriptor> = parent
            .as_ref()
            .map(|(_, _, m)| m.layers.clone())
            .unwrap_or_default();
        layers.push(Descriptor {
            media_type: MEDIA_OCI_LAYER_GZIP.into(),
            digest: blob.clone(),
            size: compressed_size,
            platform: None,
            annotations: Default::default(),
            extra: Default::default(),
        });
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: id.clone(),
                size: config_bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
                extra: Default::default(),
            },
            layers,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_digest = self.content.put(&json(&manifest)?, None)?;
        self.db.lease_add_content(lease, &manifest_digest)?;

        let mut layer_blobs = parent
            .as_ref()
            .map(|(r, _, _)| r.layers.clone())
            .unwrap_or_default();
        layer_blobs.push(blob);
        let record = ImageRecord {
            id: id.clone(),
            manifest_digest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            index_digest: None,
            size: parent.as_ref().map_or(0, |(r, _, _)| r.size) + diff.size,
            created: Some(created),
            platform,
            layers: layer_blobs,
            diff_ids,
            chain_ids: chain,
            parent: parent.as_ref().map(|(r, _, _)| r.id.clone()),
            labels: config
                .config
                .as_ref()
                .map(|c| c.labels.clone())
                .unwrap_or_default(),
        };
        self.publish(&[(record, opts.reference.iter().cloned().collect())])?;
        info!(id = %id, reference = ?opts.reference.as_ref().map(|r| r.familiar()), "image committed");
        self.inspect(id.as_str())
    }

    /// Finds an image by reference (`busybox` = `docker.io/library/busybox:latest`, `repo@digest`),
    /// full id (`sha256:<hex>` or 64 hex) or unique id prefix (`3f5`, `sha256:3f5`), in
    /// Docker's order: a reference that names no image falls back to the id prefix.
    pub fn resolve(&self, ref_or_id: &str) -> Result<ImageRecord> {
        self.db.read(|tx| resolve_in(tx, ref_or_id))
    }

    /// The image config of image `id`.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig> {
        let bytes = self.content.read(id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Msg(format!("image config {id} is not valid: {e}")))
    }

    /// Everything about one image (see [`ImageStore::resolve`] for `ref_or_id`).
    pub fn inspect(&self, ref_or_id: &str) -> Result<Image> {
        let (record, refs) = self.db.read(|tx| {
            let rec = resolve_in(tx, ref_or_id)?;
            let refs = tx.refs_of(&rec.id)?;
            Ok::<_, Error>((rec, refs))
        })?;
        let config = self.config(&record.id)?;
        let (repo_tags, repo_digests) = split_refs(&refs);
        Ok(Image {
            record,
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// Every image with its references, by id.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        self.db.read(|tx| {
            let tags = tx.list(&TAGS, "")?;
            let mut out = Vec::new();
            for (_, record) in tx.list(&IMAGES, "")? {
                let refs: Vec<String> = tags
                    .iter()
                    .filter(|(_, id)| id == &record.id)
                    .map(|(k, _)| k.clone())
                    .collect();
                let (repo_tags, repo_digests) = split_refs(&refs);
                out.push(ImageSummary {
                    record,
                    repo_tags,
                    repo_digests,
                });
            }
            Ok(out)
        })
    }

    /// `docker tag`: points `target` (a name alone gets `latest`) at the image `source`
    /// names, moving it from any other image.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(Error::InvalidParameter(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let key = tag_key(target);
        self.db.write(|tx| {
            // Resolved inside the write so the image cannot vanish in between.
            let id = resolve_write(tx, source)?;
            tx.put(&TAGS, &key, &id)?;
            Ok::<_, Error>(())
        })?;
        debug!(tag = key, source, "image tagged");
        Ok(())
    }

    /// Removes one reference (tag or digest reference) and returns the image it named. The
    /// image stays, even without references (see [`ImageStore::remove`] for `docker rmi`).
    pub fn untag(&self, reference: &Reference) -> Result<Digest> {
        let key = tag_key(reference);
        self.db.write(|tx| {
            let id = tx
                .get(&TAGS, &key)?
                .ok_or_else(|| Error::NotFound(reference.docker_ref().familiar()))?;
            tx.delete(&TAGS, &key)?;
            Ok(id)
        })
    }

    /// `docker rmi`: see the module documentation. `in_use` tells whether a container uses an
    /// image (by id). Returns what was untagged and deleted, in Docker's order.
    pub fn remove(
        &self,
        ref_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> Option<InUse>,
    ) -> Result<Vec<DeleteItem>> {
        self.remove_reporting(ref_or_id, force, in_use)
            .map(|(items, _)| items)
    }

    /// [`ImageStore::remove`], also returning the disk bytes freed (the image's snapshots
    /// and blobs nothing else needed; 0 when it only untagged).
    pub fn remove_reporting(
        &self,
        ref_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> Option<InUse>,
    ) -> Result<(Vec<DeleteItem>, u64)> {
        let mut out = Vec::new();
        let deleted = self.db.write(|tx| {
            let rec = resolve_write(tx, ref_or_id)
                .and_then(|id| image_in(tx, &id, ref_or_id))?;
            let id = rec.id.clone();
            let refs: Vec<String> = tx
                .list(&TAGS, "")?
                .into_iter()
                .filter(|(_, v)| v == &id)
                .map(|(k, _)| k)
                .collect();
            let by_ref = match parse_any(ref_or_id) {
                Ok(AnyReference::Named(r)) => {
                    let k = tag_key(&r);
                    refs.contains(&k).then_some((k, r))
                }
                _ => None,
            };
            if let Some((key, r)) = &by_ref
                && refs.len() > 1
            {
                // Other references remain: only untag.
                tx.delete(&TAGS, key)?;
                out.push(DeleteItem::Untagged(r.docker_ref().familiar()));
                return Ok::<_, Error>(None);
            }
            // Deleting the image itself: check who needs it.
            let what = match &by_ref {
                Some((_, r)) => format!(
                    "unable to remove repository reference \"{}\"",
                    r.familiar()
                ),
                None => format!("unable to delete {}", short(&id)),
            };
            if by_ref.is_none() && !force {
                let repos: BTreeSet<String> = refs
                    .iter()
                    .filter_map(|k| Reference::parse_normalized(k).ok())
                    .map(|r| r.name())
                    .collect();
                if repos.len() > 1 {
                    return Err(Error::Conflict(format!(
                        "conflict: {what} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
            }
            if let Some((child, _)) = tx
                .list(&IMAGES, "")?
                .into_iter()
                .find(|(_, i)| i.parent.as_ref() == Some(&id))
            {
                return Err(Error::Conflict(format!(
                    "conflict: {what} (cannot be forced) - image has dependent child images ({})",
                    child.trim_start_matches("sha256:").get(..12).unwrap_or(&child)
                )));
            }
            if let Some(u) = in_use(&id) {
                let cid = u.container.get(..12).unwrap_or(&u.container);
                if u.running {
                    return Err(Error::Conflict(format!(
                        "conflict: {what} (cannot be forced) - image is being used by running container {cid}"
                    )));
                }
                if !force {
                    // Docker's wording differs between the two cases.
                    let must = if by_ref.is_some() { "must force" } else { "must be forced" };
                    return Err(Error::Conflict(format!(
                        "conflict: {what} ({must}) - container {cid} is using its referenced image {}",
                        short(&id)
                    )));
                }
            }
            for k in &refs {
                tx.delete(&TAGS, k)?;
                let shown = Reference::parse_normalized(k)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| k.clone());
                out.push(DeleteItem::Untagged(shown));
            }
            tx.delete(&IMAGES, id.as_str())?;
            out.push(DeleteItem::Deleted(id));
            Ok(Some(rec))
        })?;
        let mut freed = 0;
        if let Some(rec) = deleted {
            info!(id = %rec.id, "image deleted");
            freed = self.release_image_data(&rec)?;
        }
        Ok((out, freed))
    }

    /// Deletes the blobs and snapshots of a deleted image that nothing else needs; returns
    /// the disk bytes freed.
    fn release_image_data(&self, rec: &ImageRecord) -> Result<u64> {
        let _gc = self.gc_guard();
        let roots = self.db.gc_roots()?;
        let mut freed = 0;
        for chain in rec.chain_ids.iter().rev() {
            if roots.snapshots.contains(chain.as_str()) {
                break;
            }
            let size = self.snapshots.usage(chain.as_str()).map_or(0, |u| u.size);
            match self.snapshots.remove(chain.as_str()) {
                Ok(()) => freed += size,
                Err(berth_snapshot::Error::NotFound(_)) => {}
                Err(e) => {
                    // A container's snapshot still stacks on it: collected with the container.
                    debug!(snapshot = %chain, error = %e, "image snapshot kept");
                    break;
                }
            }
        }
        let blobs = [&rec.id, &rec.manifest_digest]
            .into_iter()
            .chain(rec.index_digest.as_ref())
            .chain(rec.layers.iter());
        for d in blobs {
            if roots.content.contains(d) {
                continue;
            }
            let size = self.content.info(d).unwrap_or(0);
            match self.content.delete(d) {
                Ok(()) => freed += size,
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(digest = %d, error = %e, "cannot delete image blob"),
            }
        }
        Ok(freed)
    }

    /// Creates the writable root filesystem of container `key` on top of image `image`: an
    /// active snapshot `key`, recorded in the DB so garbage collection keeps it and the image's
    /// layers. Returns the mounts that make it (see `berth_snapshot::mount_all`).
    pub fn prepare_rootfs(&self, image: &Digest, key: &str) -> Result<Vec<Mount>> {
        self.db.write(|tx| Self::reserve_rootfs(tx, image, key))?;
        match self.create_rootfs(image, key) {
            Ok(m) => Ok(m),
            Err(e) => {
                if let Err(e2) = self.db.write(|tx| tx.delete(&SNAPSHOTS, key)) {
                    warn!(key, error = %e2, "cannot drop snapshot reference");
                }
                Err(e)
            }
        }
    }

    /// The database half of [`ImageStore::prepare_rootfs`], in the caller's transaction:
    /// checks that `image` exists and records that snapshot `key` is wanted, so the engine
    /// commits a container's record and its snapshot's reference together (one fsync). Follow
    /// it with [`ImageStore::create_rootfs`].
    pub fn reserve_rootfs(
        tx: &mut berth_store::WriteTx,
        image: &Digest,
        key: &str,
    ) -> berth_store::Result<()> {
        if !tx.contains(&IMAGES, image.as_str())? {
            return Err(berth_store::Error::NotFound {
                table: IMAGES.name(),
                key: image.to_string(),
            });
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tx.insert_new(
            &SNAPSHOTS,
            key,
            &SnapshotRef {
                owner: format!("container:{key}"),
                created: now,
            },
        )
    }

    /// The snapshot half of [`ImageStore::prepare_rootfs`]: creates the writable snapshot `key`
    /// on `image`, whose reference [`ImageStore::reserve_rootfs`] committed. On error the
    /// caller drops the reference.
    pub fn create_rootfs(&self, image: &Digest, key: &str) -> Result<Vec<Mount>> {
        let rec = self
            .db
            .read(|tx| tx.get(&IMAGES, image.as_str()))?
            .ok_or_else(|| Error::NotFound(image.to_string()))?;
        Ok(self
            .snapshots
            .prepare(key, rec.top_snapshot().map(Digest::as_str))?)
    }

    /// The mounts of container `key`'s root filesystem (made by
    /// [`ImageStore::prepare_rootfs`]).
    pub fn rootfs_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Ok(self.snapshots.mounts(key)?)
    }

    /// Removes container `key`'s root filesystem (it must be unmounted) and its record. Missing
    /// pieces are not an error, so this is safe to repeat.
    ///
    /// If the image was deleted while the container used it (a forced `docker rmi`), its
    /// layer snapshots, kept until now, are removed too.
    pub fn release_rootfs(&self, key: &str) -> Result<()> {
        let parent = self.remove_container_snapshot(key)?;
        self.db.write(|tx| tx.delete(&SNAPSHOTS, key))?;
        self.remove_orphaned_parents(parent)
    }

    /// [`ImageStore::release_rootfs`] for a caller that already deleted the snapshot's
    /// reference in its own transaction (with the container's record: one fsync): removes the
    /// snapshot and the image snapshots under it that nothing needs any more. Missing pieces
    /// are not an error; what a failure leaves, garbage collection removes.
    pub fn remove_rootfs(&self, key: &str) -> Result<()> {
        let parent = self.remove_container_snapshot(key)?;
        self.remove_orphaned_parents(parent)
    }

    /// Removes container snapshot `key` (gone already is fine) and returns its parent.
    fn remove_container_snapshot(&self, key: &str) -> Result<Option<String>> {
        let parent = match self.snapshots.stat(key) {
            Ok(info) => info.parent,
            Err(berth_snapshot::Error::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match self.snapshots.remove(key) {
            Ok(()) | Err(berth_snapshot::Error::NotFound(_)) => Ok(parent),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the chain of image snapshots from `parent` down while no image, container or
    /// lease needs them (an image removed while a container still used it).
    fn remove_orphaned_parents(&self, parent: Option<String>) -> Result<()> {
        let _gc = self.gc_guard();
        let roots = self.db.gc_roots()?;
        let mut next = parent;
        while let Some(p) = next.take() {
            if roots.snapshots.contains(&p) {
                break;
            }
            let up = match self.snapshots.stat(&p) {
                Ok(info) => info.parent,
                Err(_) => break,
            };
            match self.snapshots.remove(&p) {
                Ok(()) => {
                    debug!(snapshot = p, "orphaned image snapshot removed");
                    next = up;
                }
                // Still a parent of something else (another container): keep it.
                Err(_) => break,
            }
        }
        Ok(())
    }
}

fn split_refs(refs: &[String]) -> (Vec<Reference>, Vec<Reference>) {
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for k in refs {
        match Reference::parse_normalized(k) {
            Ok(r) if r.digest().is_some() => digests.push(r),
            Ok(r) => tags.push(r),
            Err(e) => warn!(reference = k, error = %e, "unparseable tag in the database"),
        }
    }
    tags.sort();
    digests.sort();
    (tags, digests)
}

/// [`ImageStore::resolve`]'s lookup, in any transaction.
macro_rules! resolve_fn {
    ($name:ident, $tx:ty) => {
        fn $name(tx: &$tx, s: &str) -> Result<Digest> {
            let mut shown = s.to_string();
            let mut parse_err = None;
            match parse_any(s) {
                Ok(AnyReference::Id(d)) => {
                    return if tx.contains(&IMAGES, d.as_str())? {
                        Ok(d)
                    } else {
                        Err(Error::NotFound(s.to_string()))
                    };
                }
                Ok(AnyReference::Named(r)) => {
                    let r = r.docker_ref();
                    if let Some(id) = tx.get(&TAGS, &r.to_string())? {
                        return Ok(id);
                    }
                    shown = r.familiar();
                }
                Err(e) => parse_err = Some(e),
            }
            let hex = s.strip_prefix("sha256:").unwrap_or(s);
            if !hex.is_empty()
                && hex.len() < 64
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                let hits = tx.list(&IMAGES, &format!("sha256:{hex}"))?;
                match hits.len() {
                    0 => {}
                    1 => return Ok(hits[0].1.id.clone()),
                    _ => {
                        return Err(Error::InvalidParameter(
                            berth_types::Ambiguous {
                                prefix: s.to_string(),
                            }
                            .to_string(),
                        ));
                    }
                }
            }
            if let Some(e) = parse_err {
                return Err(e.into());
            }
            Err(Error::NotFound(shown))
        }
    };
}
resolve_fn!(resolve_read, ReadTx);
resolve_fn!(resolve_write, berth_store::WriteTx);

fn resolve_in(tx: &ReadTx, s: &str) -> Result<ImageRecord> {
    let id = resolve_read(tx, s)?;
    tx.get(&IMAGES, id.as_str())?
        .ok_or_else(|| Error::NotFound(s.to_string()))
}

fn image_in(tx: &berth_store::WriteTx, id: &Digest, shown: &str) -> Result<ImageRecord> {
    tx.get(&IMAGES, id.as_str())?
        .ok_or_else(|| Error::NotFound(shown.to_string()))
}
