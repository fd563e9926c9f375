//! `docker cp`: the container archive endpoints on berth-snapshot's [`Tree`].
//!
//! Which tree: a running (or paused) container is reached through its init process's
//! `/proc/<pid>/root`, so its volumes, binds and tmpfs are seen as the container sees them
//! (the process is pinned with a pidfd while the root is opened, so a recycled pid cannot
//! lead elsewhere). Any other container's snapshot is mounted by berth-snapshot, detached
//! at once: read-only to read; read-write to extract, under the container's lifecycle lock
//! so it cannot start on the same upper directory meanwhile. Every path is then resolved
//! inside the tree (see berth-snapshot's `archive` module).

use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_api_types::archive::{ContainerPathStat, go_file_mode};
use berth_server::backend::{ArchivePutOptions, ByteStream};
use berth_snapshot::{CopyError, PathStat, Tree, UntarOptions};
use berth_types::Error;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::commit::ChanWriter;
use crate::engine::{Ctr, Engine};
use crate::record::{Record, Status};

/// An upload body as a blocking reader.
struct BodyReader {
    rx: std::sync::mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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

fn wire_stat(s: &PathStat) -> ContainerPathStat {
    let ns = i128::from(s.mtime.0) * 1_000_000_000 + i128::from(s.mtime.1);
    ContainerPathStat {
        name: s.name.clone(),
        size: i64::try_from(s.size).unwrap_or(i64::MAX),
        mode: go_file_mode(s.mode),
        mtime: berth_types::time::rfc3339(ns),
        link_target: s.link_target.clone().unwrap_or_default(),
    }
}

fn copy_err(e: CopyError, path: &str, key: &str) -> Error {
    match e {
        CopyError::NotFound(_) => {
            Error::not_found(format!("Could not find the file {path} in container {key}"))
        }
        CopyError::Invalid(m) => Error::invalid_parameter(m),
        CopyError::Failed(e) => Error::system(format!("container {key}: {path}: {e}")),
    }
}

fn join_err(e: tokio::task::JoinError) -> Error {
    Error::internal(e.to_string())
}

/// Whether the container has a process whose root is the tree to use.
fn live_pid(rec: &Record) -> Option<i32> {
    let live = matches!(rec.state.status, Status::Running | Status::Paused);
    (live && rec.state.pid > 0)
        .then(|| i32::try_from(rec.state.pid).ok())
        .flatten()
}

impl Engine {
    /// The tree of a running container: `/proc/<pid>/root`, opened while a pidfd pins the
    /// process, and only if the process is still alive (not recycled) afterwards and lives
    /// in a mount namespace of its own.
    fn proc_tree(ctr: &Ctr, pid: i32) -> Result<Option<Tree>, Error> {
        let sys = |e: io::Error| Error::system(format!("container {}: {e}", ctr.id));
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            return Ok(None);
        };
        let pidfd = match rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(e) => return Err(sys(e.into())),
        };
        let tree = match Tree::open(std::path::Path::new(&format!("/proc/{pid}/root"))) {
            Ok(t) => t,
            Err(e) if e.errno() == Some(libc::ENOENT) || e.errno() == Some(libc::ESRCH) => {
                return Ok(None);
            }
            Err(e) => return Err(Error::system(format!("container {}: {e}", ctr.id))),
        };
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let exited = rustix::event::poll(&mut fds, Some(&zero)).map_err(|e| sys(e.into()))? > 0;
        let ns = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let own_ns = ns(&format!("/proc/{pid}/ns/mnt")).ok() != ns("/proc/self/ns/mnt").ok();
        if exited || !own_ns || ctr.record().state.pid != i64::from(pid) {
            return Ok(None);
        }
        Ok(Some(tree))
    }

    /// The tree to read: the live process's, else a read-only mount of the snapshot.
    fn read_tree(&self, ctr: &Ctr) -> Result<Tree, Error> {
        let rec = ctr.record();
        if let Some(pid) = live_pid(&rec)
            && let Some(t) = Self::proc_tree(ctr, pid)?
        {
            return Ok(t);
        }
        self.inner
            .images
            .store()
            .snapshotter()
            .open_tree(&rec.snapshot_key, false)
            .map_err(|e| {
                Error::system(format!(
                    "mounting the file system of container {}: {e}",
                    rec.short_name()
                ))
            })
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn archive_stat(&self, key: &str, path: &str) -> Result<ContainerPathStat, Error> {
        let ctr = self.lookup(key)?;
        let engine = self.clone();
        let (k, p) = (key.to_string(), path.to_string());
        tokio::task::spawn_blocking(move || {
            let tree = engine.read_tree(&ctr)?;
            tree.stat(&p)
                .map(|s| wire_stat(&s))
                .map_err(|e| copy_err(e, &p, &k))
        })
        .await
        .map_err(join_err)?
    }

    /// `GET /containers/{id}/archive`: the stat, then the tar streamed from a blocking
    /// writer over a bounded channel.
    pub async fn archive_get(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(ContainerPathStat, ByteStream), Error> {
        let ctr = self.lookup(key)?;
        let engine = self.clone();
        let (k, p) = (key.to_string(), path.to_string());
        let c2 = ctr.clone();
        let (tree, stat) = tokio::task::spawn_blocking(move || {
            let tree = engine.read_tree(&c2)?;
            let stat = tree.stat(&p).map_err(|e| copy_err(e, &p, &k))?;
            Ok::<_, Error>((tree, stat))
        })
        .await
        .map_err(join_err)??;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let (id, p) = (ctr.id.clone(), path.to_string());
        tokio::task::spawn_blocking(move || {
            let mut w = ChanWriter::new(tx.clone());
            let res = tree
                .tar(&p, &mut w)
                .map_err(|e| e.to_string())
                .and_then(|_| w.flush().map_err(|e| e.to_string()));
            if let Err(e) = res {
                tracing::warn!("container {id}: archiving {p} failed: {e}");
                let _ = tx.blocking_send(Err(io::Error::other(e)));
            }
        });
        self.container_event(&ctr.record(), "archive-path", &[("path", path.to_string())]);
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        Ok((wire_stat(&stat), Box::pin(stream)))
    }

    /// `PUT /containers/{id}/archive`.
    pub async fn archive_put(
        &self,
        key: &str,
        o: ArchivePutOptions,
        body: ByteStream,
    ) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        if !o.path.starts_with('/') {
            return Err(Error::invalid_parameter(format!(
                "path {:?} is not absolute: paths in a container start with /",
                o.path
            )));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Bytes>>(16);
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
        let k = key.to_string();
        let c2: Arc<Ctr> = ctr.clone();
        let path = o.path.clone();
        tokio::task::spawn_blocking(move || {
            let opts = UntarOptions {
                no_overwrite_dir_non_dir: o.no_overwrite_dir_non_dir,
                owner: (!o.copy_uid_gid).then_some((0, 0)),
            };
            let reader = BodyReader {
                rx,
                cur: Bytes::new(),
            };
            let rec = c2.record();
            if let Some(pid) = live_pid(&rec)
                && let Some(tree) = Self::proc_tree(&c2, pid)?
            {
                return tree
                    .untar(&o.path, reader, &opts)
                    .map_err(|e| copy_err(e, &o.path, &k));
            }
            // Not running: the lifecycle lock keeps it so while its upper directory is
            // mounted here (held from this blocking thread, so a client that goes away
            // cannot release it early).
            let _g = c2.op.blocking_lock();
            let rec = c2.record();
            if live_pid(&rec).is_some() {
                return Err(Error::conflict(format!(
                    "container {k} started during the copy; try again"
                )));
            }
            if rec.host_config.readonly_rootfs == Some(true) {
                return Err(Error::invalid_parameter(
                    "container rootfs is marked read-only",
                ));
            }
            let tree = engine
                .inner
                .images
                .store()
                .snapshotter()
                .open_tree(&rec.snapshot_key, true)
                .map_err(|e| {
                    Error::system(format!(
                        "mounting the file system of container {}: {e}",
                        rec.short_name()
                    ))
                })?;
            tree.untar(&o.path, reader, &opts)
                .map_err(|e| copy_err(e, &o.path, &k))
        })
        .await
        .map_err(join_err)??;
        self.container_event(&ctr.record(), "extract-to-dir", &[("path", path)]);
        Ok(())
    }
}
