//! The engine's side of images: berth-image's store opened under the data root, what
//! containers need from it (resolve, rootfs snapshots) and the image API endpoints.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use berth_api_types::Filters;
use berth_api_types::models::{
    ContainerConfig, CreateImageInfo, ImageDeleteResponseItem, ImageHistoryResponseItem,
    ImageInspect, ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};
use berth_api_types::query;
use berth_image::{ImageStore, ImportOptions, InUse};
use berth_server::backend::{BootstrapOptions, ByteStream, ImageBackend, ItemStream, PullOptions};
use berth_snapshot::{Driver, Mount, Snapshotter};
use berth_store::{ContentStore, Db};
use berth_types::{Digest, Error, Reference};
use futures_util::StreamExt;

use crate::clock;
use crate::engine::Engine;

/// An image as a container sees it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:…`.
    pub id: String,
    /// The image's default container configuration, in the API's types.
    pub config: ContainerConfig,
}

/// The image store.
pub struct Images {
    store: ImageStore,
}

fn err(e: berth_image::Error) -> Error {
    e.into()
}

impl Images {
    /// Opens `content/` and `snapshots/` under the data root.
    pub fn open(data_root: &Path, db: Arc<Db>) -> Result<Images, Error> {
        let content = ContentStore::open(data_root.join("content"))
            .map_err(|e| Error::system(format!("opening the content store: {e}")))?;
        let snaps = Snapshotter::open(data_root.join("snapshots"), Driver::Auto)
            .map_err(|e| Error::system(format!("opening the snapshotter: {e}")))?;
        let _ = content.cleanup_ingest();
        let store = ImageStore::new(db, content, Arc::new(snaps));
        // Nothing is in flight yet: whatever a crash left (an interrupted import or commit,
        // its lease) is collected before the API serves anything.
        if let Err(e) = store.gc_startup() {
            tracing::warn!(error = %e, "garbage collection at start-up failed");
        }
        Ok(Images { store })
    }

    /// The berth-image store.
    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// Finds an image by reference or id, with Docker's "No such image" message.
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage, Error> {
        let img = self.store.inspect(name).map_err(|e| match e {
            berth_image::Error::NotFound(_) => {
                Error::not_found(format!("No such image: {}", familiar(name)))
            }
            other => err(other),
        })?;
        let cfg = img.config.config.clone().unwrap_or_default();
        let config = ContainerConfig {
            user: cfg.user.clone(),
            env: Some(cfg.env.clone()),
            entrypoint: cfg.entrypoint.clone(),
            cmd: cfg.cmd.clone(),
            working_dir: cfg.working_dir.clone(),
            labels: Some(cfg.labels.clone().into_iter().collect()),
            stop_signal: cfg.stop_signal.clone(),
            exposed_ports: (!cfg.exposed_ports.is_empty())
                .then(|| cfg.exposed_ports.keys().cloned().collect()),
            volumes: (!cfg.volumes.is_empty()).then(|| cfg.volumes.keys().cloned().collect()),
            // A malformed healthcheck in an image is ignored rather than making it unusable.
            healthcheck: cfg
                .extra
                .get("Healthcheck")
                .and_then(|h| serde_json::from_value(h.clone()).ok()),
            shell: cfg
                .extra
                .get("Shell")
                .and_then(|h| serde_json::from_value(h.clone()).ok()),
            ..Default::default()
        };
        Ok(ResolvedImage {
            id: img.record.id.to_string(),
            config,
        })
    }

    /// The image's id as a digest, for [`berth_image::ImageStore::reserve_rootfs`] in the
    /// transaction that creates the container's record.
    pub fn image_digest(image_id: &str) -> Result<Digest, Error> {
        Digest::parse(image_id)
            .map_err(|e| Error::invalid_parameter(format!("image id {image_id}: {e}")))
    }

    /// Creates the container's writable snapshot, reserved in the transaction that created
    /// its record.
    pub fn create_rootfs(&self, image: &Digest, key: &str) -> Result<(), Error> {
        self.store
            .create_rootfs(image, key)
            .map(|_| ())
            .map_err(err)
    }

    /// Removes a container's snapshot whose reference was deleted with its record.
    pub fn remove_rootfs(&self, key: &str) -> Result<(), Error> {
        self.store.remove_rootfs(key).map_err(err)
    }

    /// The mounts of a container's root filesystem.
    pub fn rootfs_mounts(&self, key: &str) -> Result<Vec<Mount>, Error> {
        self.store.rootfs_mounts(key).map_err(err)
    }

    /// Drops a container's snapshot (repeatable).
    pub fn release_rootfs(&self, key: &str) -> Result<(), Error> {
        self.store.release_rootfs(key).map_err(err)
    }

    /// How many images there are.
    pub fn count(&self) -> usize {
        self.store.list().map(|l| l.len()).unwrap_or(0)
    }
}

/// `busybox` → `busybox:latest`, as Docker's messages show references.
fn familiar(name: &str) -> String {
    match Reference::parse_normalized(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_string(),
    }
}

fn secs(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(clock::parse_rfc3339)
        .map_or(0, |ns| (ns / 1_000_000_000) as i64)
}

/// Reads the body stream of a request from blocking code.
struct BodyReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

impl Engine {
    pub(crate) fn in_use(&self) -> impl Fn(&Digest) -> Option<InUse> + '_ {
        move |d: &Digest| {
            let id = d.to_string();
            self.all()
                .iter()
                .map(|c| c.record())
                .find(|r| r.image == id)
                .map(|r| InUse {
                    container: r.id.clone(),
                    running: r.state.status.is_alive(),
                })
        }
    }
}

impl ImageBackend for Engine {
    async fn image_list(
        &self,
        q: query::ImageList,
        filters: Filters,
    ) -> Result<Vec<ImageSummary>, Error> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.list_images(q.all, &filters, false))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
    }

    async fn image_inspect(&self, name: &str) -> Result<ImageInspect, Error> {
        let img = self
            .inner
            .images
            .store()
            .inspect(name)
            .map_err(|e| match e {
                berth_image::Error::NotFound(_) => {
                    Error::not_found(format!("No such image: {}", familiar(name)))
                }
                other => err(other),
            })?;
        let cfg = self.inner.images.resolve(img.record.id.as_ref())?.config;
        Ok(ImageInspect {
            id: Some(img.record.id.to_string()),
            repo_tags: Some(img.repo_tags.iter().map(|r| r.familiar()).collect()),
            repo_digests: Some(img.repo_digests.iter().map(|r| r.familiar()).collect()),
            comment: Some(
                img.config
                    .history
                    .last()
                    .and_then(|h| h.comment.clone())
                    .unwrap_or_default(),
            ),
            created: img.record.created.clone(),
            author: img.config.author.clone(),
            config: Some(berth_api_types::models::ImageConfig {
                user: cfg.user,
                env: cfg.env,
                cmd: cfg.cmd,
                entrypoint: cfg.entrypoint,
                working_dir: cfg.working_dir,
                labels: cfg.labels,
                stop_signal: cfg.stop_signal,
                exposed_ports: cfg.exposed_ports,
                volumes: cfg.volumes,
                healthcheck: cfg.healthcheck,
                shell: cfg.shell,
                on_build: img
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.extra.get("OnBuild"))
                    .and_then(|v| serde_json::from_value(v.clone()).ok()),
                ..Default::default()
            }),
            architecture: Some(img.config.architecture.clone()),
            os: Some(img.config.os.clone()),
            size: Some(self.image_disk_size(&img.record) as i64),
            graph_driver: Some(self.graph_driver(&img.record)),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(img.record.diff_ids.iter().map(|d| d.to_string()).collect()),
            }),
            ..Default::default()
        })
    }

    async fn image_inspect_json(&self, name: &str) -> Result<serde_json::Value, Error> {
        let img = ImageBackend::image_inspect(self, name).await?;
        let parent = img
            .id
            .as_deref()
            .and_then(|id| self.inner.images.store().resolve(id).ok())
            .and_then(|r| r.parent)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let mut v = serde_json::to_value(img)
            .map_err(|e| Error::internal(format!("encoding image: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("Parent".into(), parent.into());
            o.insert("DockerVersion".into(), "".into());
        }
        Ok(v)
    }

    /// Docker's order: newest first; the entries are given the ids (and tags) of the image
    /// and its ancestors one by one, the rest are `<missing>`; an entry that made a layer
    /// shows that layer's size on disk.
    async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, Error> {
        let store = self.inner.images.store();
        let img = store.inspect(name).map_err(|e| match e {
            berth_image::Error::NotFound(_) => {
                Error::not_found(format!("No such image: {}", familiar(name)))
            }
            other => err(other),
        })?;
        let snaps = store.snapshotter();
        let mut layer = 0usize;
        let mut out: Vec<ImageHistoryResponseItem> = Vec::new();
        for h in &img.config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = img
                    .record
                    .chain_ids
                    .get(layer)
                    .and_then(|c| snaps.usage(c.as_str()).ok())
                    .map_or(0, |u| u.size as i64);
                layer += 1;
                s
            };
            out.push(ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: secs(&h.created),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        let mut cur = Some((
            img.record.id.clone(),
            img.repo_tags.clone(),
            img.record.parent,
        ));
        for item in out.iter_mut() {
            let Some((id, tags, parent)) = cur.take() else {
                break;
            };
            item.id = id.to_string();
            item.tags = tags.iter().map(|r| r.familiar()).collect();
            cur = parent
                .and_then(|p| store.inspect(p.as_str()).ok())
                .map(|i| (i.record.id, i.repo_tags, i.record.parent));
        }
        Ok(out)
    }

    async fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), Error> {
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let r = Reference::parse_normalized(&target).map_err(|e| {
            Error::invalid_parameter(format!("invalid reference format: {target}: {e}"))
        })?;
        self.inner.images.store().tag(name, &r).map_err(err)?;
        let id = self.inner.images.resolve(name)?.id;
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_string(), r.familiar());
        self.inner.events.publish("image", "tag", id, attrs);
        Ok(())
    }

    async fn image_remove(
        &self,
        name: &str,
        force: bool,
        _noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, Error> {
        let items = self
            .inner
            .images
            .store()
            .remove(name, force, &self.in_use())
            .map_err(|e| match e {
                berth_image::Error::NotFound(_) => {
                    Error::not_found(format!("No such image: {}", familiar(name)))
                }
                other => err(other),
            })?;
        let out: Vec<ImageDeleteResponseItem> =
            items.into_iter().map(|it| self.report_delete(it)).collect();
        if out.iter().any(|i| i.deleted.is_some()) {
            let engine = self.clone();
            let _ = tokio::task::spawn_blocking(move || engine.collect_garbage()).await;
        }
        Ok(out)
    }

    async fn image_pull(&self, opts: PullOptions) -> Result<ItemStream<CreateImageInfo>, Error> {
        let name = match opts.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(t) if !opts.image.contains('@') => format!("{}:{t}", opts.image),
            _ => opts.image.clone(),
        };
        Err(Error::not_found(format!(
            "No such image: {} (berth cannot pull from registries yet: import the image or make it with `berth image bootstrap`)",
            familiar(&name)
        )))
    }

    async fn image_bootstrap(
        &self,
        o: BootstrapOptions,
    ) -> Result<ItemStream<CreateImageInfo>, Error> {
        let (default_ref, debian) = match o.template.as_str() {
            "busybox" => ("busybox:latest".to_string(), false),
            "debian" => (
                format!(
                    "debian:{}",
                    o.suite.clone().unwrap_or_else(|| "bookworm".into())
                ),
                true,
            ),
            other => {
                return Err(Error::invalid_parameter(format!(
                    "unknown template {other:?}: berth bootstraps busybox and debian"
                )));
            }
        };
        let full = o.reference.clone().unwrap_or(default_ref);
        let reference = Reference::parse_normalized(&full).map_err(|e| {
            Error::invalid_parameter(format!("invalid reference format: {full}: {e}"))
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<CreateImageInfo, Error>>(64);
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let status = |s: String| CreateImageInfo {
                status: Some(s),
                ..Default::default()
            };
            let _ = tx.blocking_send(Ok(status(format!(
                "bootstrapping {} from the host's packages",
                reference.familiar()
            ))));
            let res = if debian {
                let suite = o.suite.clone().unwrap_or_else(|| "bookworm".into());
                let mut progress = |line: &str| {
                    let _ = tx.blocking_send(Ok(status(line.to_string())));
                };
                engine.inner.images.store().bootstrap_debian(
                    &suite,
                    o.mirror.as_deref(),
                    &reference,
                    &mut progress,
                )
            } else {
                engine.inner.images.store().bootstrap_busybox(&reference)
            };
            match res {
                Ok(img) => {
                    let id = img.record.id.to_string();
                    engine
                        .inner
                        .events
                        .publish("image", "import", id.clone(), Default::default());
                    let _ = tx.blocking_send(Ok(status(format!(
                        "Tagged {} as {id}",
                        reference.familiar()
                    ))));
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(err(e)));
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
        )))
    }

    async fn image_import(
        &self,
        o: berth_server::backend::ImportOptions,
        body: ByteStream,
    ) -> Result<ItemStream<CreateImageInfo>, Error> {
        let reference = match o.repo.filter(|r| !r.is_empty()) {
            Some(repo) => {
                let full = match o.tag.filter(|t| !t.is_empty()) {
                    Some(t) => format!("{repo}:{t}"),
                    None => repo,
                };
                Some(Reference::parse_normalized(&full).map_err(|e| {
                    Error::invalid_parameter(format!("invalid reference format: {full}: {e}"))
                })?)
            }
            None => None,
        };
        let opts = ImportOptions {
            reference,
            changes: o.changes,
            message: o.message.filter(|m| !m.is_empty()),
            ..Default::default()
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(16);
        let mut body = body;
        tokio::spawn(async move {
            while let Some(chunk) = body.next().await {
                let tx = tx.clone();
                if tokio::task::spawn_blocking(move || tx.send(chunk))
                    .await
                    .map(|r| r.is_err())
                    .unwrap_or(true)
                {
                    return;
                }
            }
        });
        let engine = self.clone();
        let img = tokio::task::spawn_blocking(move || {
            engine.inner.images.store().import(
                BodyReader {
                    rx,
                    cur: bytes::Bytes::new(),
                },
                &opts,
            )
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(err)?;
        let id = img.record.id.to_string();
        self.inner
            .events
            .publish("image", "import", id.clone(), Default::default());
        let info = CreateImageInfo {
            status: Some(id),
            ..Default::default()
        };
        Ok(Box::pin(futures_util::stream::once(
            async move { Ok(info) },
        )))
    }

    async fn image_save(&self, names: Vec<String>, oci: bool) -> Result<ByteStream, Error> {
        self.save_images(names, oci).await
    }

    async fn image_load(
        &self,
        quiet: bool,
        body: ByteStream,
    ) -> Result<ItemStream<berth_server::backend::LoadLine>, Error> {
        self.load_images(quiet, body).await
    }

    async fn image_prune(&self, filters: Filters) -> Result<ImagePruneResponse, Error> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.prune_images(&filters))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
    }
}
