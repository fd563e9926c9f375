//! Container lifecycle: create, start, stop, kill, pause, wait, remove, rename, update.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerUpdateBody, ContainerWaitResponse,
    HostConfig,
};
use berth_shim::args::{LogConfig, ShimArgs};
use berth_shim::client::Shim;
use berth_types::{ContainerId, Error};
use tokio::sync::watch;

use crate::clock;
use crate::engine::{Ctr, Engine, WaitState};
use crate::record::{Record, State, Status};

impl Engine {
    /// `POST /containers/create`.
    pub async fn create(
        &self,
        name: Option<String>,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, Error> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                berth_types::validate_container_name(&n)
                    .map_err(|e| Error::invalid_parameter(e.to_string()))?;
                format!("/{}", n.trim_start_matches('/'))
            }
            None => self.unused_name(),
        };
        let image_name = body
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid_parameter("config.Image: an image is required"))?;
        let image = self.inner.images.resolve(&image_name)?;
        let mut host_config = body.host_config.clone().unwrap_or_default();
        if host_config
            .cgroup_parent
            .as_deref()
            .is_none_or(str::is_empty)
        {
            host_config.cgroup_parent = self.inner.cfg.cgroup_parent.clone();
        }
        let warnings = Vec::new();
        let (config, path, args) = crate::bundle::merge_config(&body, &image)?;
        // Ids are random; their shim directories are named by a prefix, kept unique.
        let id = loop {
            let id = ContainerId::generate().as_str().to_string();
            let prefix = &id[..crate::engine::SHIM_DIR_ID];
            if !self.all().iter().any(|c| c.id.starts_with(prefix)) {
                break id;
            }
        };
        let mut config = config;
        config.healthcheck =
            crate::health::merge(config.healthcheck.take(), image.config.healthcheck.as_ref());
        if let Some(h) = &config.healthcheck {
            crate::health::validate(h)?;
        }
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            // Docker's default: the short id, or the host's name on the host's network.
            config.hostname = Some(if host_config.network_mode.as_deref() == Some("host") {
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned()
            } else {
                id[..12].to_string()
            });
        }
        let data_dir = self.data_dir(&id);
        let volume_plan = self.plan_volumes(&config, &host_config)?;
        let mut rec = Record {
            id: id.clone(),
            name: name.clone(),
            created: clock::now_rfc3339(),
            path,
            args,
            config,
            host_config,
            image: image.id.clone(),
            image_name: image_name.clone(),
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            snapshot_key: format!("container-{id}"),
            log_path: data_dir
                .join(format!("{id}-json.log"))
                .display()
                .to_string(),
            hostname_path: data_dir.join("hostname").display().to_string(),
            hosts_path: data_dir.join("hosts").display().to_string(),
            resolv_conf_path: data_dir.join("resolv.conf").display().to_string(),
            mounts: volume_plan.mounts.clone(),
            warnings: warnings.clone(),
            net: None,
            endpoints: Default::default(),
        };
        self.prepare_endpoints(&mut rec, &body)?;
        crate::usernet::check_extra_hosts(&rec)?;
        if crate::net::uses_bridge(&rec.host_config) && self.inner.net.is_some() {
            crate::net::port_bindings(&rec.host_config)?;
        } else if let Some(m) = rec.host_config.network_mode.as_deref()
            && !matches!(m, "" | "default" | "bridge" | "none" | "host")
            && !m.starts_with("container:")
            && !rec.endpoints.contains_key(m)
        {
            return Err(Error::not_found(format!("network {m} not found")));
        }
        // Everything the spec builder refuses is refused now, before anything exists.
        self.check_create(&rec)?;
        let new_volumes = self.create_volumes(&volume_plan)?;
        let data = serde_json::to_value(&rec).map_err(|e| Error::internal(e.to_string()))?;
        let cr = berth_store::db::ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            data,
        };
        let image_digest = crate::images::Images::image_digest(&image.id)?;
        // The record and its snapshot's reference commit together: one fsync.
        self.inner.db.write(|tx| {
            tx.create_container(&cr)?;
            berth_image::ImageStore::reserve_rootfs(tx, &image_digest, &rec.snapshot_key)
        }).map_err(|e: berth_store::Error| {
            self.remove_new_volumes(&new_volumes);
            if matches!(e, berth_store::Error::NameInUse { .. }) {
                let other = self.inner.db.read(|tx| tx.container_by_name(&name)).ok().flatten().unwrap_or_default();
                Error::conflict(format!(
                    "Conflict. The container name \"{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                ))
            } else {
                Error::system(format!("saving container {name}: {e}"))
            }
        })?;
        let undo = |e: Error| {
            let _ = self.inner.images.release_rootfs(&rec.snapshot_key);
            let _ = std::fs::remove_dir_all(&data_dir);
            let _ = self.inner.db.write(|tx| tx.delete_container(&id));
            self.remove_new_volumes(&new_volumes);
            e
        };
        self.inner
            .images
            .create_rootfs(&image_digest, &rec.snapshot_key)
            .map_err(undo)?;
        crate::bundle::write_etc_files(&rec).map_err(undo)?;
        let ctr = Arc::new(Ctr {
            id: id.clone(),
            wait: watch::channel(WaitState::default()).0,
            rec: Mutex::new(rec.clone()),
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
            .insert(id.clone(), ctr);
        self.container_event(&rec, "create", &[]);
        Ok(ContainerCreateResponse { id, warnings })
    }

    fn unused_name(&self) -> String {
        for retry in 0..10 {
            let n = format!("/{}", berth_types::random_name(retry));
            if self.lookup(&n).is_err() {
                return n;
            }
        }
        format!("/{}", berth_types::random_name(10))
    }

    /// `POST /containers/{id}/start`; `Ok(false)` if it was already running.
    pub async fn start(&self, key: &str) -> Result<bool, Error> {
        let ctr = self.lookup(key)?;
        self.start_ctr(&ctr).await
    }

    pub(crate) async fn start_ctr(&self, ctr: &Arc<Ctr>) -> Result<bool, Error> {
        let res = {
            let _g = ctr.op.lock().await;
            let st = ctr.record().state.status;
            match st {
                Status::Running | Status::Paused => return Ok(false),
                Status::Removing | Status::Dead => {
                    return Err(Error::conflict(format!(
                        "container {} is marked for removal and cannot be started",
                        ctr.id
                    )));
                }
                _ => {}
            }
            *ctr.restart_gen.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            ctr.with_rec(|r| r.manually_stopped = false);
            self.start_locked(ctr).await
        };
        // A `--rm` container that cannot start is removed, as Docker does (clients wait
        // for its removal).
        if res.is_err()
            && ctr.record().host_config.auto_remove == Some(true)
            && let Err(e) = self.remove_ctr(ctr, true, true).await
        {
            tracing::warn!(
                "container {}: auto-remove after a failed start: {e}",
                ctr.id
            );
        }
        res.map(|()| true)
    }

    /// Starts the container; the caller holds its lifecycle lock.
    pub(crate) async fn start_locked(&self, ctr: &Arc<Ctr>) -> Result<(), Error> {
        let rec = ctr.record();
        let bundle = self.bundle_dir(&ctr.id);
        let shim_dir = self.shim_dir(&ctr.id);
        let fail = |e: Error, code: i64| {
            self.teardown_files(&ctr.id);
            let rec = ctr.with_rec(|r| {
                r.state.status = if r.state.started_at == clock::ZERO {
                    Status::Created
                } else {
                    Status::Exited
                };
                r.state.error = e.message().to_string();
                r.state.exit_code = code;
                r.clone()
            });
            let _ = self.persist(&rec);
            for p in ctr
                .pending_attach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
            {
                drop(p);
            }
            ctr.notify(|w| {
                w.exits += 1;
                w.exit_code = code;
            });
            e
        };
        let prep = {
            let engine = self.clone();
            let rec = rec.clone();
            let bundle = bundle.clone();
            tokio::task::spawn_blocking(move || engine.write_bundle(&rec, &bundle)).await
        };
        match prep {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e, 128)),
            Err(e) => return Err(fail(Error::internal(e.to_string()), 128)),
        }
        let tty = rec.config.tty == Some(true);
        let mut args = ShimArgs::new(
            ctr.id.clone(),
            bundle.clone(),
            shim_dir.clone(),
            self.inner.cfg.runtime.clone(),
        );
        args.runtime_root = Some(self.inner.cfg.exec_root.join("runtime"));
        args.tty = tty;
        args.stdin = rec.config.open_stdin == Some(true);
        args.stdin_once = rec.config.stdin_once == Some(true);
        args.log = crate::bundle::log_config(&rec)?.map(|(max_size, max_file)| LogConfig {
            path: rec.log_path.clone().into(),
            max_size,
            max_file,
        });
        let shim_bin = self.inner.cfg.shim.clone();
        let spawned =
            tokio::task::spawn_blocking(move || -> Result<(Shim, i32), berth_shim::Error> {
                let _ = std::fs::remove_dir_all(&args.state_dir);
                let pid = berth_shim::client::spawn(&shim_bin, &args)?;
                Ok((Shim::connect(&args.state_dir)?, pid))
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        let (shim, init_pid) = match spawned {
            Ok((s, pid)) => (Arc::new(s), pid),
            Err(e) => {
                let msg =
                    format!("failed to create task for container: OCI runtime create failed: {e}");
                let code = exit_code_for(&msg);
                let err = if code == 128 {
                    Error::system(msg)
                } else {
                    Error::invalid_parameter(msg)
                };
                return Err(fail(err, code));
            }
        };
        // The runtime made the network namespace: put it on the bridge before the process runs.
        if crate::net::uses_bridge(&rec.host_config) && self.inner.net.is_some() {
            let ports = crate::net::all_port_bindings(&rec);
            let engine = self.clone();
            let id = ctr.id.clone();
            let attached =
                tokio::task::spawn_blocking(move || -> Result<berth_net::Attachment, Error> {
                    let net = engine
                        .inner
                        .net
                        .as_ref()
                        .ok_or_else(|| Error::internal("no network"))?;
                    net.attach(
                        &id,
                        std::path::Path::new(&format!("/proc/{init_pid}/ns/net")),
                        &ports?,
                        None,
                    )
                    .map_err(crate::net::net_err)
                })
                .await
                .map_err(|e| Error::internal(e.to_string()))
                .and_then(|r| r);
            match attached {
                Ok(a) => {
                    ctr.with_rec(|r| r.net = Some(a));
                    self.write_hosts(&ctr.record());
                }
                Err(e) => {
                    let s = shim.clone();
                    let _ = tokio::task::spawn_blocking(move || s.delete()).await;
                    let e = Error::system(format!(
                        "failed to set up the network of container {}: {}",
                        rec.short_name(),
                        e.message()
                    ));
                    return Err(fail(e, 128));
                }
            }
        }
        // User-defined networks: an interface each.
        if let Err(e) = self.attach_endpoints(ctr, init_pid).await {
            let s = shim.clone();
            let _ = tokio::task::spawn_blocking(move || s.delete()).await;
            self.detach_network(ctr).await;
            return Err(fail(e, 128));
        }
        // Attach streams opened before start see everything from the first byte.
        let pending: Vec<_> = ctr
            .pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for p in pending {
            let s = shim.clone();
            let (i, o, e) = (p.stdin, p.stdout, p.stderr);
            let stream = tokio::task::spawn_blocking(move || s.attach(i, o, e)).await;
            if let Ok(Ok(stream)) = stream {
                let _ = p.tx.send(stream);
            }
        }
        let s = shim.clone();
        let started = tokio::task::spawn_blocking(move || s.start().and_then(|()| s.state())).await;
        let st = match started {
            Ok(Ok(st)) => st,
            Ok(Err(e)) => {
                let s = shim.clone();
                let _ = tokio::task::spawn_blocking(move || s.delete()).await;
                self.detach_network(ctr).await;
                let msg = format!("failed to start container {}: {e}", rec.short_name());
                let code = exit_code_for(&msg);
                return Err(fail(Error::system(msg), code));
            }
            Err(e) => return Err(fail(Error::internal(e.to_string()), 128)),
        };
        ctr.set_shim(Some(shim));
        let rec = ctr.with_rec(|r| {
            r.state.status = Status::Running;
            r.state.pid = st.pid as i64;
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.error.clear();
            r.state.started_at = st.started_at.clone().unwrap_or_else(clock::now_rfc3339);
            r.state.finished_at = clock::ZERO.into();
            r.clone()
        });
        self.persist(&rec)?;
        ctr.notify(|w| w.alive = true);
        self.container_event(&rec, "start", &[]);
        self.spawn_monitor(ctr.clone());
        self.start_health(ctr);
        Ok(())
    }

    /// `POST /containers/{id}/stop`; `Ok(false)` if it was not running.
    pub async fn stop(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool, Error> {
        let ctr = self.lookup(key)?;
        self.stop_ctr(&ctr, signal, timeout).await
    }

    pub(crate) async fn stop_ctr(
        &self,
        ctr: &Arc<Ctr>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool, Error> {
        *ctr.restart_gen.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let rec = ctr.with_rec(|r| {
            r.manually_stopped = true;
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
            r.clone()
        });
        let _ = self.persist(&rec);
        if !rec.state.status.is_alive() {
            return Ok(false);
        }
        let sig = match signal.or(rec.config.stop_signal.clone()) {
            Some(s) if !s.is_empty() => parse_signal(&s)?,
            _ => libc::SIGTERM,
        };
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let mut rx = ctr.wait.subscribe();
        let exits = rx.borrow().exits;
        if let Some(shim) = ctr.shim() {
            let paused = rec.state.status == Status::Paused;
            let _ = tokio::task::spawn_blocking(move || {
                let r = shim.kill(sig, false);
                if paused {
                    let _ = shim.resume();
                }
                r
            })
            .await;
        }
        let exited = |rx: &mut watch::Receiver<WaitState>| {
            let mut rx = rx.clone();
            async move { rx.wait_for(|w| w.exits != exits || !w.alive).await.is_ok() }
        };
        if timeout >= 0 {
            if tokio::time::timeout(Duration::from_secs(timeout as u64), exited(&mut rx))
                .await
                .is_ok()
            {
                return Ok(true);
            }
        } else {
            exited(&mut rx).await;
            return Ok(true);
        }
        if let Some(shim) = ctr.shim() {
            let _ = tokio::task::spawn_blocking(move || shim.kill(libc::SIGKILL, true)).await;
        }
        if tokio::time::timeout(Duration::from_secs(30), exited(&mut rx))
            .await
            .is_err()
        {
            return Err(Error::system(format!(
                "container {} did not exit within 30 s of SIGKILL",
                ctr.id
            )));
        }
        Ok(true)
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        self.stop_ctr(&ctr, signal, timeout).await?;
        self.start_ctr(&ctr).await?;
        let rec = ctr.record();
        self.container_event(&rec, "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, key: &str, signal: Option<String>) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        let rec = ctr.record();
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(&s)?,
            None => libc::SIGKILL,
        };
        let shim = match (rec.state.status.is_alive(), ctr.shim()) {
            (true, Some(s)) => s,
            _ => {
                return Err(Error::conflict(format!(
                    "cannot kill container: {key}: container {} is not running",
                    rec.id
                )));
            }
        };
        let paused = rec.state.status == Status::Paused;
        tokio::task::spawn_blocking(move || {
            let r = shim.kill(sig, sig == libc::SIGKILL);
            if paused && sig == libc::SIGKILL {
                let _ = shim.resume();
            }
            r
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(|e| Error::system(format!("cannot kill container {key}: {e}")))?;
        self.container_event(&rec, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// `POST /containers/{id}/pause` and `/unpause`.
    pub async fn set_paused(&self, key: &str, pause: bool) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        let _g = ctr.op.lock().await;
        let rec = ctr.record();
        match (rec.state.status, pause) {
            (Status::Running, true) | (Status::Paused, false) => {}
            (Status::Paused, true) => {
                return Err(Error::conflict(format!(
                    "container {} is already paused",
                    rec.id
                )));
            }
            (Status::Running, false) => {
                return Err(Error::conflict(format!(
                    "container {} is not paused",
                    rec.id
                )));
            }
            _ => {
                return Err(Error::conflict(format!(
                    "container {} is not running",
                    rec.id
                )));
            }
        }
        let shim = ctr
            .shim()
            .ok_or_else(|| Error::conflict(format!("container {} is not running", rec.id)))?;
        tokio::task::spawn_blocking(move || if pause { shim.pause() } else { shim.resume() })
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| {
                Error::system(format!(
                    "cannot {} container {key}: {e}",
                    if pause { "pause" } else { "unpause" }
                ))
            })?;
        let rec = ctr.with_rec(|r| {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
            r.clone()
        });
        self.persist(&rec)?;
        self.container_event(&rec, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: registered at once; the returned future resolves when
    /// the condition is met.
    pub fn wait(
        &self,
        key: &str,
        condition: Option<String>,
    ) -> Result<
        impl std::future::Future<Output = Result<ContainerWaitResponse, Error>> + Send + 'static,
        Error,
    > {
        let ctr = self.lookup(key)?;
        let cond = condition
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "not-running".into());
        if !matches!(cond.as_str(), "not-running" | "next-exit" | "removed") {
            return Err(Error::invalid_parameter(format!(
                "invalid condition: \"{cond}\""
            )));
        }
        let mut rx = ctr.wait.subscribe();
        let start = rx.borrow().clone();
        let status = ctr.record().state.status;
        Ok(async move {
            let done = |w: &WaitState| match cond.as_str() {
                "removed" => w.removed,
                "next-exit" => w.exits != start.exits || w.removed,
                _ => {
                    !w.alive && !matches!(status, Status::Restarting)
                        || w.exits != start.exits
                        || w.removed
                }
            };
            let code = match rx.wait_for(done).await {
                Ok(w) => w.exit_code,
                Err(_) => start.exit_code,
            };
            Ok(ContainerWaitResponse {
                status_code: code,
                error: None,
            })
        })
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        self.remove_ctr(&ctr, force, volumes).await
    }

    pub(crate) async fn remove_ctr(
        &self,
        ctr: &Arc<Ctr>,
        force: bool,
        volumes: bool,
    ) -> Result<(), Error> {
        let rec = ctr.record();
        if rec.state.status.is_alive() {
            if !force {
                return Err(Error::conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            self.stop_ctr(ctr, Some("KILL".into()), Some(0)).await?;
        }
        *ctr.restart_gen.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let _g = ctr.op.lock().await;
        if ctr.record().state.status.is_alive() {
            return Err(Error::conflict(format!(
                "container {} started again while being removed",
                rec.id
            )));
        }
        ctr.with_rec(|r| r.state.status = Status::Removing);
        self.detach_network(ctr).await;
        if let Some(shim) = ctr.shim() {
            let _ = tokio::task::spawn_blocking(move || shim.delete()).await;
            ctr.set_shim(None);
        }
        self.teardown_mounts(&ctr.id);
        let key = rec.snapshot_key.clone();
        let dirs = self.container_dirs(&ctr.id);
        let engine = self.clone();
        let id = ctr.id.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<(), Error> {
            // The record and its snapshot's reference go in one commit (one fsync); the files
            // follow, and whatever a crash or failure leaves of them is unreferenced, so
            // garbage collection (snapshots) and the start-up sweep (directories) remove it.
            engine
                .inner
                .db
                .write(|tx| {
                    tx.delete_container(&id)?;
                    tx.delete(&berth_store::db::SNAPSHOTS, &key)
                })
                .map_err(|e: berth_store::Error| {
                    Error::system(format!("removing container {id}: {e}"))
                })?;
            if let Err(e) = engine.inner.images.remove_rootfs(&key) {
                tracing::warn!("container {id}: removing its snapshot {key}: {e}");
            }
            // The directories (config, state, hosts files, log) belong to no other object,
            // and an id is never reused: they go after the answer. Deleting files here costs
            // milliseconds each on disks mounted with `discard` (a synchronous discard per
            // freed extent), which `run --rm` would otherwise wait for.
            tokio::task::spawn_blocking(move || {
                for dir in dirs {
                    if let Err(e) = std::fs::remove_dir_all(&dir)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!("container {id}: removing {}: {e}", dir.display());
                    }
                }
            });
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        if let Err(e) = res {
            let rec = ctr.with_rec(|r| {
                r.state.status = Status::Dead;
                r.state.error = e.message().to_string();
                r.clone()
            });
            let _ = self.persist(&rec);
            return Err(e);
        }
        self.inner
            .ctrs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ctr.id);
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container != ctr.id);
        if volumes {
            let engine = self.clone();
            let rec = rec.clone();
            let _ =
                tokio::task::spawn_blocking(move || engine.remove_anonymous_volumes(&rec)).await;
        }
        self.container_event(&rec, "destroy", &[]);
        ctr.notify(|w| w.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub async fn rename(&self, key: &str, new: &str) -> Result<(), Error> {
        let ctr = self.lookup(key)?;
        berth_types::validate_container_name(new)
            .map_err(|e| Error::invalid_parameter(e.to_string()))?;
        let new_name = format!("/{}", new.trim_start_matches('/'));
        let old = ctr.record().name;
        if old == new_name {
            return Err(Error::invalid_parameter(
                "Renaming a container with the same name as its current name",
            ));
        }
        self.inner.db.write(|tx| tx.rename_container(&ctr.id, &new_name)).map_err(|e: berth_store::Error| {
            if matches!(e, berth_store::Error::NameInUse { .. }) {
                Error::conflict(format!("Conflict. The container name \"{new_name}\" is already in use. You have to remove (or rename) that container to be able to reuse that name."))
            } else {
                Error::system(format!("renaming container {old}: {e}"))
            }
        })?;
        let rec = ctr.with_rec(|r| {
            r.name = new_name.clone();
            r.clone()
        });
        self.persist(&rec)?;
        self.container_event(&rec, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// `POST /containers/{id}/update`: resources and the restart policy.
    pub async fn update(&self, key: &str, body: ContainerUpdateBody) -> Result<Vec<String>, Error> {
        let ctr = self.lookup(key)?;
        let _g = ctr.op.lock().await;
        let mut hc: HostConfig = ctr.record().host_config;
        crate::bundle::apply_update(&mut hc, &body)?;
        let resources = crate::bundle::oci_resources(&hc)?;
        if let Some(shim) = ctr.shim() {
            tokio::task::spawn_blocking(move || shim.update(resources))
                .await
                .map_err(|e| Error::internal(e.to_string()))?
                .map_err(|e| Error::system(format!("Cannot update container {key}: {e}")))?;
        }
        let rec = ctr.with_rec(|r| {
            r.host_config = hc;
            r.clone()
        });
        self.persist(&rec)?;
        self.container_event(&rec, "update", &[]);
        Ok(Vec::new())
    }

    /// `POST /containers/prune`: removes stopped containers.
    pub async fn prune(
        &self,
        filters: &berth_api_types::Filters,
    ) -> Result<(Vec<String>, i64), Error> {
        filters
            .check(&["label", "label!", "until"])
            .map_err(Error::invalid_parameter)?;
        let until = match filters.get("until").first() {
            Some(u) => Some(clock::parse_timestamp(u, clock::now_ns()).ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "invalid filter 'until={u}': failed to parse value as time or duration"
                ))
            })?),
            None => None,
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for ctr in self.all() {
            let rec = ctr.record();
            if rec.state.status.is_alive() || rec.state.status == Status::Restarting {
                continue;
            }
            if !filters.match_labels("label", &rec.labels()) {
                continue;
            }
            let neg = filters.get("label!");
            if neg.iter().any(|l| {
                let labels = rec.labels();
                match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l),
                }
            }) {
                continue;
            }
            if let Some(u) = until
                && clock::parse_rfc3339(&rec.created).unwrap_or(0) > u
            {
                continue;
            }
            let size = self.container_size_rw(&rec.snapshot_key) as i64;
            if self.remove_ctr(&ctr, false, false).await.is_ok() {
                deleted.push(rec.id.clone());
                reclaimed += size;
            }
        }
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("reclaimed".to_string(), reclaimed.to_string());
        self.inner
            .events
            .publish("container", "prune", String::new(), attrs);
        Ok((deleted, reclaimed))
    }
}

/// Docker CLI's exit code for a start failure: 127 not found, 126 not executable.
fn exit_code_for(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub(crate) fn parse_signal(s: &str) -> Result<i32, Error> {
    berth_runtime::utils::parse_signal(s)
        .ok_or_else(|| Error::invalid_parameter(format!("Invalid signal: {s}")))
}
