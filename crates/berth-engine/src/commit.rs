//! A container's file system as images see it: `docker diff` (its changes), `docker commit`
//! (its changes as a new image layer) and `docker export` (its whole tree as a tar stream).

use std::io::{self, Write};

use berth_api_types::models::{ChangeType, ContainerConfig, FilesystemChange, IdResponse};
use berth_server::backend::{ByteStream, CommitOptions};
use berth_snapshot::ChangeKind;
use berth_types::{Digest, Error, Reference};
use bytes::Bytes;

use crate::engine::Engine;
use crate::record::Status;

/// Chunks of an export stream handed to the HTTP body.
const CHUNK: usize = 64 * 1024;

/// A blocking writer feeding an async body: bytes are batched into [`CHUNK`]s and sent on a
/// bounded channel (back-pressure); a gone receiver (the client left) is a broken pipe.
pub(crate) struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChanWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The API's container config as an image config (what a committed image keeps).
pub(crate) fn image_config(c: &ContainerConfig) -> berth_image::ContainerConfig {
    berth_image::ContainerConfig {
        user: c.user.clone().filter(|u| !u.is_empty()),
        exposed_ports: c
            .exposed_ports
            .iter()
            .flatten()
            .map(|p| (p.clone(), serde_json::json!({})))
            .collect(),
        env: c.env.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        volumes: c
            .volumes
            .iter()
            .flatten()
            .map(|v| (v.clone(), serde_json::json!({})))
            .collect(),
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        labels: c.labels.clone().unwrap_or_default().into_iter().collect(),
        stop_signal: c.stop_signal.clone().filter(|s| !s.is_empty()),
        extra: Default::default(),
    }
}

/// Docker's merge of a commit request's config over the container's: fields the request sets
/// win; environment variables are merged by name (the request's first); labels by key.
fn merge(base: &mut berth_image::ContainerConfig, user: &ContainerConfig) {
    let over = image_config(user);
    if over.user.is_some() {
        base.user = over.user;
    }
    if !over.exposed_ports.is_empty() {
        base.exposed_ports.extend(over.exposed_ports);
    }
    if !over.env.is_empty() {
        let name = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
        let set: std::collections::HashSet<String> = over.env.iter().map(|e| name(e)).collect();
        let mut env = over.env;
        env.extend(base.env.drain(..).filter(|e| !set.contains(&name(e))));
        base.env = env;
    }
    if over.entrypoint.is_some() {
        base.entrypoint = over.entrypoint;
    }
    if over.cmd.is_some() {
        base.cmd = over.cmd;
    }
    if !over.volumes.is_empty() {
        base.volumes.extend(over.volumes);
    }
    if over.working_dir.is_some() {
        base.working_dir = over.working_dir;
    }
    base.labels.extend(over.labels);
    if over.stop_signal.is_some() {
        base.stop_signal = over.stop_signal;
    }
}

/// Where the runtime mounts things into a container: empty files and directories it had to
/// create for them are its doing, not the container's (Docker keeps them in an "init" layer
/// below the container's own).
fn mount_points(rec: &crate::record::Record) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/dev",
        "/proc",
        "/sys",
        "/.dockerenv",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .collect();
    v.extend(
        rec.mounts
            .iter()
            .filter_map(|m| m.destination.as_deref())
            .map(std::path::PathBuf::from),
    );
    v
}

/// Drops the additions of mount points (and below them), then the directories reported
/// changed only because such a mount point was created in them.
fn hide_mount_points(
    list: Vec<berth_snapshot::Change>,
    points: &[std::path::PathBuf],
) -> Vec<berth_snapshot::Change> {
    let (hidden, kept): (Vec<_>, Vec<_>) = list
        .into_iter()
        .partition(|c| c.kind == ChangeKind::Add && points.iter().any(|p| c.path.starts_with(p)));
    if hidden.is_empty() {
        return kept;
    }
    let below = |dir: &std::path::Path, c: &berth_snapshot::Change| {
        c.path != dir && c.path.starts_with(dir)
    };
    kept.iter()
        .filter(|c| {
            !(c.kind == ChangeKind::Modify
                && hidden.iter().any(|h| below(&c.path, h))
                && !kept.iter().any(|k| below(&c.path, k)))
        })
        .cloned()
        .collect()
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::internal(e.to_string())
}

impl Engine {
    /// `GET /containers/{id}/changes`.
    pub async fn changes(&self, key: &str) -> Result<Vec<FilesystemChange>, Error> {
        let ctr = self.lookup(key)?;
        let rec = ctr.record();
        let snap = rec.snapshot_key.clone();
        let engine = self.clone();
        let list = tokio::task::spawn_blocking(move || {
            engine.inner.images.store().snapshotter().changes(&snap)
        })
        .await
        .map_err(join_err)?
        .map_err(|e| Error::system(format!("reading the changes of container {key}: {e}")))?;
        let list = hide_mount_points(list, &mount_points(&rec));
        Ok(list
            .into_iter()
            .map(|c| FilesystemChange {
                path: c.path.to_string_lossy().into_owned(),
                kind: match c.kind {
                    ChangeKind::Modify => ChangeType::_0,
                    ChangeKind::Add => ChangeType::_1,
                    ChangeKind::Delete => ChangeType::_2,
                },
            })
            .collect())
    }

    /// `GET /containers/{id}/export`: streamed from a read-only mount of the container's
    /// snapshot, made and detached by berth-snapshot, so a running container is exported as
    /// it is and nothing is left mounted.
    pub async fn export(&self, key: &str) -> Result<ByteStream, Error> {
        let ctr = self.lookup(key)?;
        let rec = ctr.record();
        let snap = rec.snapshot_key.clone();
        // Errors found before the first byte become a normal HTTP error.
        self.inner
            .images
            .store()
            .snapshotter()
            .readonly_mounts(&snap)
            .map_err(|e| Error::system(format!("cannot export container {key}: {e}")))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let engine = self.clone();
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = ChanWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let snaps = engine.inner.images.store().snapshotter();
            let res = snaps
                .export(&snap, &mut w)
                .map_err(|e| e.to_string())
                .and_then(|_| w.flush().map_err(|e| e.to_string()));
            if let Err(e) = res {
                tracing::warn!("container {id}: export failed: {e}");
                let _ = tx.blocking_send(Err(io::Error::other(e)));
            }
        });
        self.container_event(&rec, "export", &[]);
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
        )))
    }

    /// `POST /commit`.
    pub async fn commit(&self, o: CommitOptions) -> Result<IdResponse, Error> {
        let ctr = self.lookup(&o.container)?;
        let reference = match o.repo.clone() {
            Some(repo) => {
                let full = match o.tag.clone() {
                    Some(t) => format!("{repo}:{t}"),
                    None => repo,
                };
                let r = Reference::parse_normalized(&full).map_err(|e| {
                    Error::invalid_parameter(format!("invalid reference format: {full}: {e}"))
                })?;
                if r.digest().is_some() {
                    return Err(Error::invalid_parameter(format!(
                        "invalid reference format: {full}: a commit cannot be tagged with a digest"
                    )));
                }
                Some(r)
            }
            None if o.tag.is_some() => {
                return Err(Error::invalid_parameter("a tag needs a repository (repo)"));
            }
            None => None,
        };
        let rec = ctr.record();
        let mut config = image_config(&rec.config);
        if let Some(user) = &o.config {
            merge(&mut config, user);
        }
        // Check the changes before pausing anything.
        berth_image::change::apply_changes(&mut config.clone(), &o.changes).map_err(Error::from)?;
        let image = Digest::parse(&rec.image)
            .map_err(|e| Error::system(format!("container {} image id: {e}", rec.id)))?;
        let created_by = rec.config.cmd.as_ref().map(|c| c.join(" "));
        let opts = berth_image::CommitOptions {
            reference,
            config,
            changes: o.changes.clone(),
            comment: o.comment.clone(),
            author: o.author.clone(),
            created_by,
            created: None,
            skip: mount_points(&rec)
                .iter()
                .filter_map(|p| p.strip_prefix("/").ok().map(std::path::Path::to_path_buf))
                .collect(),
        };

        let paused = o.pause && rec.state.status == Status::Running;
        if paused {
            self.set_paused(&rec.id, true).await?;
        }
        let res = {
            // No start, stop or removal while the snapshot is read.
            let _g = ctr.op.lock().await;
            let engine = self.clone();
            let snap = rec.snapshot_key.clone();
            tokio::task::spawn_blocking(move || {
                engine
                    .inner
                    .images
                    .store()
                    .commit(Some(&image), &snap, &opts)
            })
            .await
            .map_err(join_err)
        };
        if paused && let Err(e) = self.set_paused(&rec.id, false).await {
            tracing::warn!("container {}: unpausing after commit: {e}", rec.id);
        }
        let img = res?.map_err(|e| match e {
            berth_image::Error::NotFound(what) => {
                Error::not_found(format!("No such image: {what}"))
            }
            other => other.into(),
        })?;
        let id = img.record.id.to_string();
        let mut extra = vec![("imageID", id.clone())];
        if let Some(c) = &o.comment {
            extra.push(("comment", c.clone()));
        }
        if let Some(r) = img.repo_tags.first() {
            extra.push(("imageRef", r.familiar()));
        }
        self.container_event(&rec, "commit", &extra);
        Ok(IdResponse { id })
    }
}
