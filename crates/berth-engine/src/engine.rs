//! The engine: the set of containers, their lifecycle and the daemon's event bus.
//!
//! Each container has one record (see [`crate::record`]) behind a mutex for quick reads, a
//! lifecycle lock that serialises operations that change it (start, stop, remove, the
//! monitor's exit handling), and a watch channel that wakes `wait` callers.
//!
//! A started container is owned by its shim (`berth-shim`), which the engine spawns and
//! which runs `berth-runtime create`. A monitor task per running container waits on the shim
//! for the exit, records it, tears the container down (runtime delete, rootfs unmount) and
//! applies the restart policy. When berthd restarts, [`Engine::open`] reconnects to every
//! shim still running and resumes monitoring; a container that exited while berthd was down
//! gets its real exit code from the shim's `exit.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_shim::client::Shim;
use berth_store::Db;
use berth_types::Error;
use tokio::sync::watch;

use crate::clock;
use crate::events::Events;
use crate::record::{Record, Status};

/// Where the engine keeps things and which programs it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state: `meta.db`, content, snapshots, `containers/<id>/` (logs, hosts).
    pub data_root: PathBuf,
    /// Runtime state: bundles, shim state, the runtime's `--root`.
    pub exec_root: PathBuf,
    /// The OCI runtime binary (`berth-runtime`).
    pub runtime: PathBuf,
    /// The shim binary (`berth-shim`).
    pub shim: PathBuf,
    /// The init for `--init` (tini or catatonit), if one is installed.
    pub init: Option<PathBuf>,
    /// The cgroup under which containers without their own `--cgroup-parent` go
    /// (dockerd's `--cgroup-parent`); `None`: `/berth`.
    pub cgroup_parent: Option<String>,
    /// The default bridge network; `None`: containers in bridge mode get a network
    /// namespace with only loopback.
    pub network: Option<crate::net::NetConfig>,
}

/// What `wait` callers watch.
#[derive(Debug, Clone, Default)]
pub(crate) struct WaitState {
    /// Increments at every exit.
    pub exits: u64,
    /// Whether a process exists.
    pub alive: bool,
    /// The last exit code.
    pub exit_code: i64,
    /// Set once the container is gone.
    pub removed: bool,
}

/// Characters of a container id that name its shim directory.
pub(crate) const SHIM_DIR_ID: usize = 16;

/// The longest exec root whose shim sockets fit in a `sockaddr_un`:
/// `<root>/s/<16>/console.sock` within 107 bytes.
const MAX_EXEC_ROOT: usize = 107 - "/s/".len() - SHIM_DIR_ID - "/console.sock".len();

/// One container.
pub(crate) struct Ctr {
    pub id: String,
    /// The record; lock briefly, never across an await.
    pub rec: Mutex<Record>,
    /// Serialises lifecycle operations.
    pub op: tokio::sync::Mutex<()>,
    pub wait: watch::Sender<WaitState>,
    /// The shim while the container has one.
    pub shim: Mutex<Option<Arc<Shim>>>,
    /// Attach streams waiting for the container to start: each gets its shim connection.
    pub pending_attach: Mutex<Vec<crate::attach::Pending>>,
    /// Bumped by stop/kill/remove so a restart back-off in flight gives up.
    pub restart_gen: Mutex<u64>,
    /// Bumped whenever a health-check loop starts, so that an older loop ends.
    pub health_gen: std::sync::atomic::AtomicU64,
}

impl Ctr {
    pub(crate) fn record(&self) -> Record {
        self.rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn with_rec<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        f(&mut self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn shim(&self) -> Option<Arc<Shim>> {
        self.shim.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_shim(&self, s: Option<Arc<Shim>>) {
        *self.shim.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    pub(crate) fn notify(&self, f: impl FnOnce(&mut WaitState)) {
        self.wait.send_modify(f);
    }
}

/// The container engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: Config,
    pub db: Arc<Db>,
    pub images: crate::images::Images,
    pub net: Option<berth_net::Network>,
    pub networks: crate::usernet::Networks,
    pub ctrs: RwLock<HashMap<String, Arc<Ctr>>>,
    pub events: Events,
    pub execs: Mutex<HashMap<String, Arc<crate::exec::Exec>>>,
    /// Named and anonymous volumes (`<data-root>/volumes`).
    pub volumes: berth_volume::VolumeStore,
}

impl Engine {
    /// Opens (or creates) the engine's state under the configured roots, re-adopts running
    /// containers and restarts those whose policy says so.
    pub async fn open(cfg: Config) -> Result<Engine, Error> {
        let len = cfg.exec_root.as_os_str().len();
        if len > MAX_EXEC_ROOT {
            return Err(Error::invalid_parameter(format!(
                "exec root {} is too long ({len} bytes, at most {MAX_EXEC_ROOT}): the shims' \
                 unix sockets below it must fit in 108 bytes",
                cfg.exec_root.display()
            )));
        }
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.exec_root.clone(),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("runtime"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::system(format!("creating {}: {e}", d.display())))?;
        }
        let db = Arc::new(
            Db::open(cfg.data_root.join("meta.db"))
                .map_err(|e| Error::system(format!("opening the metadata database: {e}")))?,
        );
        let images = crate::images::Images::open(&cfg.data_root, db.clone())?;
        let volumes = berth_volume::VolumeStore::open(&cfg.data_root, db.clone())?;
        let net = match &cfg.network {
            Some(n) => Some(crate::net::open(
                &cfg.data_root.join("network").join(&n.bridge),
                n,
            )?),
            None => None,
        };
        let networks = crate::usernet::Networks::load(&cfg, &db)?;
        let engine = Engine {
            inner: Arc::new(Inner {
                cfg,
                db,
                images,
                net,
                networks,
                ctrs: RwLock::new(HashMap::new()),
                events: Events::default(),
                execs: Mutex::new(HashMap::new()),
                volumes,
            }),
        };
        engine.restore().await?;
        engine.reconcile_volumes();
        engine.start_networks().await;
        Ok(engine)
    }

    /// The event bus.
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.inner.cfg.exec_root.join("containers").join(id)
    }

    /// The shim's state directory, kept short: its sockets' paths must fit in a
    /// `sockaddr_un` (108 bytes). Named by the id's first [`SHIM_DIR_ID`] characters, which
    /// `create` keeps unique.
    pub(crate) fn shim_dir(&self, id: &str) -> PathBuf {
        self.inner
            .cfg
            .exec_root
            .join("s")
            .join(&id[..id.len().min(SHIM_DIR_ID)])
    }

    pub(crate) fn data_dir(&self, id: &str) -> PathBuf {
        self.inner.cfg.data_root.join("containers").join(id)
    }

    pub(crate) fn all(&self) -> Vec<Arc<Ctr>> {
        self.inner
            .ctrs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full id, name (with or without `/`) or unique id prefix, with
    /// Docker's messages.
    pub(crate) fn lookup(&self, key: &str) -> Result<Arc<Ctr>, Error> {
        let map = self.inner.ctrs.read().unwrap_or_else(|p| p.into_inner());
        if key.is_empty() {
            return Err(Error::not_found("No such container: ".to_string()));
        }
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = format!("/{}", key.trim_start_matches('/'));
        if let Some(c) = map
            .values()
            .find(|c| c.rec.lock().map(|r| r.name == name).unwrap_or(false))
        {
            return Ok(c.clone());
        }
        if key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = map.values().filter(|c| c.id.starts_with(key));
            if let Some(first) = hits.next() {
                if hits.next().is_some() {
                    return Err(Error::invalid_parameter(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(first.clone());
            }
        }
        Err(Error::not_found(format!("No such container: {key}")))
    }

    /// Writes the record to the database.
    pub(crate) fn persist(&self, rec: &Record) -> Result<(), Error> {
        let data = serde_json::to_value(rec)
            .map_err(|e| Error::internal(format!("encoding container {}: {e}", rec.id)))?;
        self.inner
            .db
            .write(|tx| tx.update_container(&rec.id, &data))
            .map_err(|e: berth_store::Error| {
                Error::system(format!("saving container {}: {e}", rec.short_name()))
            })
    }

    /// Publishes a container event with Docker's attributes (name, image, labels).
    pub(crate) fn container_event(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec.labels().into_iter().collect();
        attrs.insert("name".into(), rec.short_name().to_string());
        attrs.insert("image".into(), rec.image_name.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.inner
            .events
            .publish("container", action, rec.id.clone(), attrs);
    }

    /// Loads every container record and reconciles it with what is running.
    async fn restore(&self) -> Result<(), Error> {
        let recs = self
            .inner
            .db
            .read(|tx| tx.list(&berth_store::db::CONTAINERS, ""))
            .map_err(|e: berth_store::Error| Error::system(format!("loading containers: {e}")))?;
        let ids: std::collections::HashSet<String> =
            recs.iter().map(|(_, cr)| cr.id.clone()).collect();
        let engine = self.clone();
        let _ = tokio::task::spawn_blocking(move || engine.sweep_orphan_dirs(&ids)).await;
        for (_, cr) in recs {
            let rec: Record = match serde_json::from_value(cr.data.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("container {}: unreadable record, skipped: {e}", cr.id);
                    continue;
                }
            };
            let ctr = Arc::new(Ctr {
                id: rec.id.clone(),
                wait: watch::channel(WaitState {
                    alive: rec.state.status.is_alive(),
                    exit_code: rec.state.exit_code,
                    ..Default::default()
                })
                .0,
                rec: Mutex::new(rec),
                op: tokio::sync::Mutex::new(()),
                shim: Mutex::new(None),
                pending_attach: Mutex::new(Vec::new()),
                restart_gen: Mutex::new(0),
                health_gen: Default::default(),
            });
            self.inner
                .ctrs
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ctr.id.clone(), ctr.clone());
        }
        for ctr in self.all() {
            let rec = ctr.record();
            match rec.state.status {
                Status::Running | Status::Paused | Status::Restarting => {
                    let dir = self.shim_dir(&ctr.id);
                    let adopted = tokio::task::spawn_blocking(move || {
                        let shim = Shim::connect(&dir).ok()?;
                        let st = shim.state().ok()?;
                        Some((shim, st))
                    })
                    .await
                    .ok()
                    .flatten();
                    match adopted {
                        Some((shim, st)) if st.status == berth_shim::protocol::Status::Stopped => {
                            // It exited while berthd was away: record that now.
                            ctr.set_shim(Some(Arc::new(shim)));
                            let exit = st.exit_code.map(|c| {
                                (
                                    i64::from(c),
                                    st.exited_at.clone().unwrap_or_else(clock::now_rfc3339),
                                )
                            });
                            let _g = ctr.op.lock().await;
                            self.finish_exit(&ctr, exit).await;
                            drop(_g);
                            self.after_exit(ctr.clone(), true).await;
                        }
                        Some((shim, st)) => {
                            tracing::info!("container {}: re-adopted (pid {})", ctr.id, st.pid);
                            ctr.set_shim(Some(Arc::new(shim)));
                            let paused = st.status == berth_shim::protocol::Status::Paused;
                            ctr.with_rec(|r| {
                                r.state.status = if paused {
                                    Status::Paused
                                } else {
                                    Status::Running
                                };
                                r.state.pid = st.pid as i64;
                            });
                            self.spawn_monitor(ctr.clone());
                            self.start_health(&ctr);
                        }
                        None => {
                            // The shim is gone: the exit it recorded, if any, is the truth.
                            let exit = read_exit(&self.shim_dir(&ctr.id));
                            let _g = ctr.op.lock().await;
                            self.finish_exit(&ctr, exit.map(|e| (e.exit_code as i64, e.exited_at)))
                                .await;
                            self.after_exit(ctr.clone(), true).await;
                        }
                    }
                }
                Status::Created | Status::Exited => {
                    let policy = restart_policy(&rec);
                    if policy == "always"
                        && !rec.manually_stopped
                        && rec.state.started_at != clock::ZERO
                    {
                        let e = self.clone();
                        let c = ctr.clone();
                        tokio::spawn(async move {
                            if let Err(err) = e.start_ctr(&c).await {
                                tracing::warn!(
                                    "container {}: restart at daemon start: {err}",
                                    c.id
                                );
                            }
                        });
                    }
                }
                Status::Removing | Status::Dead => {}
            }
        }
        Ok(())
    }

    /// Starts a task that waits for the container's exit through its shim.
    pub(crate) fn spawn_monitor(&self, ctr: Arc<Ctr>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let Some(shim) = ctr.shim() else { return };
            let res = tokio::task::spawn_blocking(move || shim.wait()).await;
            let exit = match res {
                Ok(Ok(e)) => Some((e.exit_code as i64, e.exited_at)),
                Ok(Err(e)) => {
                    tracing::warn!("container {}: lost its shim: {e}", ctr.id);
                    read_exit(&engine.shim_dir(&ctr.id)).map(|e| (e.exit_code as i64, e.exited_at))
                }
                Err(_) => None,
            };
            {
                let _g = ctr.op.lock().await;
                if ctr.shim().is_none() {
                    return; // already handled (remove -f)
                }
                engine.finish_exit(&ctr, exit).await;
            }
            engine.after_exit(ctr, false).await;
        });
    }

    /// Records an exit and tears the container's process side down: OOM check, shim
    /// delete, rootfs unmount. Call with the lifecycle lock held.
    pub(crate) async fn finish_exit(&self, ctr: &Arc<Ctr>, exit: Option<(i64, String)>) {
        let oom = crate::stats::oom_killed(&ctr.record());
        self.detach_exited(ctr).await;
        // The runtime's delete (cgroups, state) and the rootfs unmount are independent once
        // the container's processes are gone: run them side by side.
        let rootfs = self.bundle_dir(&ctr.id).join("rootfs");
        let unmount = tokio::task::spawn_blocking(move || berth_snapshot::unmount(&rootfs));
        if let Some(shim) = ctr.shim() {
            let _ = tokio::task::spawn_blocking(move || shim.delete()).await;
        }
        let _ = unmount.await;
        ctr.set_shim(None);
        self.teardown_files(&ctr.id);
        let (code, at) = exit.unwrap_or((255, clock::now_rfc3339()));
        let rec = ctr.with_rec(|r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = at;
            r.clone()
        });
        // A `--rm` container's record is deleted right after this (`after_exit`); storing
        // its exit first would cost a commit (an fsync) on the path of every `run --rm`. If
        // the daemon dies in between, its restart finds the container dead and removes it.
        if rec.host_config.auto_remove != Some(true)
            && let Err(e) = self.persist(&rec)
        {
            tracing::error!("{e}");
        }
        if oom {
            self.container_event(&rec, "oom", &[]);
        }
        self.container_event(&rec, "die", &[("exitCode", code.to_string())]);
        ctr.notify(|w| {
            w.exits += 1;
            w.alive = false;
            w.exit_code = code;
        });
    }

    /// Unmounts the rootfs and removes the runtime-side directories of a container.
    pub(crate) fn teardown_files(&self, id: &str) {
        self.teardown_mounts(id);
        let _ = std::fs::remove_dir_all(self.bundle_dir(id));
        let _ = std::fs::remove_dir_all(self.shim_dir(id));
    }

    /// Releases a container's volumes and unmounts its rootfs; its directories stay.
    pub(crate) fn teardown_mounts(&self, id: &str) {
        self.release_volumes(id);
        if let Err(e) = berth_snapshot::unmount(&self.bundle_dir(id).join("rootfs")) {
            tracing::debug!("container {id}: unmounting its rootfs: {e}");
        }
    }

    /// Every directory a container has (bundle, shim state, data), for removal.
    pub(crate) fn container_dirs(&self, id: &str) -> [PathBuf; 3] {
        [self.bundle_dir(id), self.shim_dir(id), self.data_dir(id)]
    }

    /// Removes the directories of containers that have no record (any more): those whose
    /// removal was cut short by a crash after the record's deletion committed (the files
    /// go last, in the background). `ids` are every id the database holds. A directory
    /// with something still mounted on its `rootfs` is left alone, with a warning.
    fn sweep_orphan_dirs(&self, ids: &std::collections::HashSet<String>) {
        let cfg = &self.inner.cfg;
        let bases = [
            (cfg.exec_root.join("containers"), false),
            (cfg.exec_root.join("s"), true),
            (cfg.data_root.join("containers"), false),
        ];
        for (base, prefix) in bases {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let known = if prefix {
                    ids.iter().any(|id| id.starts_with(&name))
                } else {
                    ids.contains(&name)
                };
                if known || name.starts_with('.') {
                    continue;
                }
                let dir = e.path();
                let rootfs = dir.join("rootfs");
                let _ = berth_snapshot::unmount(&rootfs);
                let same_dev =
                    |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
                        (Ok(a), Ok(b)) => {
                            std::os::unix::fs::MetadataExt::dev(&a)
                                == std::os::unix::fs::MetadataExt::dev(&b)
                        }
                        _ => true,
                    };
                if !same_dev(&dir, &rootfs) {
                    tracing::warn!("{}: still mounted, left alone", rootfs.display());
                    continue;
                }
                tracing::info!("removing {} (no such container)", dir.display());
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!("removing {}: {e}", dir.display());
                }
            }
        }
    }

    /// Applies the restart policy and `--rm` after an exit.
    pub(crate) async fn after_exit(&self, ctr: Arc<Ctr>, at_boot: bool) {
        let rec = ctr.record();
        let policy = restart_policy(&rec);
        let max = rec
            .host_config
            .restart_policy
            .as_ref()
            .and_then(|p| p.maximum_retry_count)
            .unwrap_or(0);
        let restart = !rec.manually_stopped
            && match policy.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => rec.state.exit_code != 0 && (max == 0 || rec.restart_count < max),
                _ => false,
            };
        if restart {
            let generation = *ctr.restart_gen.lock().unwrap_or_else(|p| p.into_inner());
            let ran = clock::parse_rfc3339(&rec.state.finished_at).unwrap_or(0)
                - clock::parse_rfc3339(&rec.state.started_at).unwrap_or(0);
            // Docker's back-off: 100 ms doubling per restart, at most a minute, reset once
            // the container has run for 10 s.
            let delay = if ran >= 10_000_000_000 || at_boot {
                Duration::from_millis(100)
            } else {
                let n = rec.restart_count.clamp(0, 20) as u32;
                Duration::from_millis(100u64.saturating_mul(1 << n)).min(Duration::from_secs(60))
            };
            let rec2 = ctr.with_rec(|r| {
                r.state.status = Status::Restarting;
                r.clone()
            });
            let _ = self.persist(&rec2);
            let engine = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _g = ctr.op.lock().await;
                if *ctr.restart_gen.lock().unwrap_or_else(|p| p.into_inner()) != generation
                    || ctr.record().state.status != Status::Restarting
                {
                    return;
                }
                ctr.with_rec(|r| r.restart_count += 1);
                if let Err(e) = engine.start_locked(&ctr).await {
                    tracing::warn!("container {}: restart failed: {e}", ctr.id);
                    let rec = ctr.with_rec(|r| {
                        r.state.status = Status::Exited;
                        r.state.error = e.message().to_string();
                        r.clone()
                    });
                    let _ = engine.persist(&rec);
                }
            });
            return;
        }
        if rec.host_config.auto_remove == Some(true)
            && let Err(e) = self.remove_ctr(&ctr, true, true).await
        {
            tracing::warn!("container {}: auto-remove: {e}", ctr.id);
        }
    }
}

impl Engine {
    /// [`Engine::detach_network`] for a container whose processes are gone: its bridge veth
    /// is deleted in the background (see [`berth_net::Network::detach_deferred`]), off the
    /// path of `run --rm` and of `docker stop`.
    pub(crate) async fn detach_exited(&self, ctr: &Arc<Ctr>) {
        self.leave_bridge(ctr, true).await;
    }

    /// Takes a container off the bridge (its veth, address and published ports).
    pub(crate) async fn detach_network(&self, ctr: &Arc<Ctr>) {
        self.leave_bridge(ctr, false).await;
    }

    async fn leave_bridge(&self, ctr: &Arc<Ctr>, defer_veth: bool) {
        self.detach_endpoints(ctr).await;
        if ctr.record().net.is_none() {
            return;
        }
        let engine = self.clone();
        let id = ctr.id.clone();
        let res = tokio::task::spawn_blocking(move || match engine.inner.net.as_ref() {
            Some(n) if defer_veth => n.detach_deferred(&id),
            Some(n) => n.detach(&id).map(|()| None),
            None => Ok(None),
        })
        .await;
        match res {
            Ok(Ok(Some(link))) => {
                let id = ctr.id.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = link.delete() {
                        tracing::warn!("container {id}: deleting its veth: {e}");
                    }
                });
            }
            Ok(Err(e)) => tracing::warn!("container {}: leaving the bridge: {e}", ctr.id),
            _ => {}
        }
        ctr.with_rec(|r| r.net = None);
    }
}

/// The restart policy's name (`no` when unset).
pub(crate) fn restart_policy(rec: &Record) -> String {
    rec.host_config
        .restart_policy
        .as_ref()
        .and_then(|p| p.name.as_ref())
        .map(|n| n.to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "no".into())
}

pub(crate) fn read_exit(dir: &Path) -> Option<berth_shim::protocol::Exit> {
    let data = std::fs::read(dir.join(berth_shim::protocol::EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}
