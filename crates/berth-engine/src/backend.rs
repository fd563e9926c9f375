//! berth-server's backend traits, implemented by the engine.

use berth_api_types::models::*;
use berth_api_types::{Filters, query};
use berth_server::backend::{
    ContainerBackend, CreateOptions, ExecBackend, ItemStream, Logs, LogsOptions, Session,
    SystemBackend, WaitFuture,
};
use berth_types::Error;

use crate::attach::{DEFAULT_DETACH, Pending, Source, Splice, parse_detach_keys};
use crate::clock;
use crate::engine::Engine;
use crate::record::Status;

impl SystemBackend for Engine {
    fn version(&self) -> SystemVersion {
        crate::system::version()
    }

    async fn info(&self) -> Result<SystemInfo, Error> {
        Ok(crate::system::info(self))
    }

    async fn disk_usage(&self, types: Vec<String>) -> Result<serde_json::Value, Error> {
        let containers = if types.is_empty() || types.iter().any(|t| t == "container") {
            let q = query::ContainerList {
                all: true,
                ..Default::default()
            };
            ContainerBackend::list(self, q, Filters::default()).await?
        } else {
            Vec::new()
        };
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.system_df(&types, containers))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
    }

    fn events(
        &self,
        since_ns: Option<i128>,
        until_ns: Option<i128>,
        filters: Filters,
    ) -> Result<ItemStream<EventMessage>, Error> {
        filters
            .check(&[
                "container",
                "daemon",
                "event",
                "image",
                "label",
                "network",
                "type",
                "volume",
                "scope",
                "config",
                "node",
                "plugin",
                "secret",
                "service",
            ])
            .map_err(Error::invalid_parameter)?;
        let (past, mut rx) = self.inner.events.subscribe(since_ns);
        let now = clock::now_ns();
        let (tx, out) = tokio::sync::mpsc::channel::<Result<EventMessage, Error>>(64);
        tokio::spawn(async move {
            let line = |e: &crate::events::Event| {
                serde_json::from_value::<EventMessage>(e.to_json())
                    .map_err(|err| Error::internal(format!("event: {err}")))
            };
            for e in past
                .iter()
                .filter(|e| until_ns.is_none_or(|u| e.time_ns <= u))
            {
                if e.matches(&filters) && tx.send(line(e)).await.is_err() {
                    return;
                }
            }
            // An `until` in the past ends the stream after the replay.
            if until_ns.is_some_and(|u| u <= now) {
                return;
            }
            loop {
                let deadline = until_ns
                    .map(|u| std::time::Duration::from_nanos((u - clock::now_ns()).max(0) as u64));
                let next = async {
                    loop {
                        match rx.recv().await {
                            Ok(e) => return Some(e),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return None,
                        }
                    }
                };
                let got = match deadline {
                    Some(d) => match tokio::time::timeout(d, next).await {
                        Ok(e) => e,
                        Err(_) => return,
                    },
                    None => tokio::select! {
                        e = next => e,
                        () = tx.closed() => return,
                    },
                };
                let Some(e) = got else { return };
                if e.matches(&filters) && tx.send(line(&e)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            out,
            |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
        )))
    }
}

impl ContainerBackend for Engine {
    async fn create(
        &self,
        opts: CreateOptions,
        body: ContainerCreateBody,
        raw: serde_json::Value,
    ) -> Result<ContainerCreateResponse, Error> {
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty())
            && !p.starts_with("linux")
        {
            return Err(Error::invalid_parameter(format!(
                "platform {p} is not supported: berth runs linux containers"
            )));
        }
        crate::bundle::check_request(&raw)?;
        Engine::create(self, opts.name, body).await
    }

    async fn list(
        &self,
        q: query::ContainerList,
        filters: Filters,
    ) -> Result<Vec<ContainerSummary>, Error> {
        filters
            .check(&[
                "ancestor",
                "before",
                "exited",
                "id",
                "label",
                "name",
                "since",
                "status",
                "health",
                "isolation",
                "is-task",
                "network",
                "publish",
                "expose",
                "volume",
            ])
            .map_err(Error::invalid_parameter)?;
        for s in filters.get("status") {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&s.as_str())
            {
                return Err(Error::invalid_parameter(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
        for h in filters.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
                return Err(Error::invalid_parameter(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let mut recs: Vec<_> = self.all().iter().map(|c| c.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let created_of =
            |key: &str| -> Result<String, Error> { Ok(self.lookup(key)?.record().created) };
        let before = filters
            .get("before")
            .first()
            .map(|k| created_of(k))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|k| created_of(k))
            .transpose()?;
        let ancestors: Vec<String> = filters
            .get("ancestor")
            .iter()
            .filter_map(|a| self.inner.images.resolve(a).ok().map(|i| i.id))
            .collect();
        let all = q.all
            || !filters.get("status").is_empty()
            || !filters.get("exited").is_empty()
            || q.limit.is_some_and(|l| l > 0)
            || before.is_some()
            || since.is_some();
        let now = clock::now_ns();
        let mut out = Vec::new();
        for r in recs {
            if !all && !r.state.status.is_alive() && r.state.status != Status::Restarting {
                continue;
            }
            let st = r.state.status.as_str();
            if !filters.get("status").is_empty() && !filters.get("status").iter().any(|s| s == st) {
                continue;
            }
            if !filters.get("id").is_empty()
                && !filters
                    .get("id")
                    .iter()
                    .any(|p| r.id.starts_with(p.as_str()))
            {
                continue;
            }
            if !filters.get("name").is_empty()
                && !filters
                    .get("name")
                    .iter()
                    .any(|n| name_matches(r.short_name(), n))
            {
                continue;
            }
            if !filters.match_labels("label", &r.labels()) {
                continue;
            }
            if !filters.get("health").is_empty()
                && !filters
                    .get("health")
                    .iter()
                    .any(|h| h == crate::health::filter_name(r.state.health.as_ref()))
            {
                continue;
            }
            if !filters.get("exited").is_empty()
                && (r.state.status != Status::Exited
                    || !filters
                        .get("exited")
                        .iter()
                        .any(|e| e.parse::<i64>().ok() == Some(r.state.exit_code)))
            {
                continue;
            }
            if !filters.get("ancestor").is_empty()
                && !ancestors.contains(&r.image)
                && !filters.get("ancestor").contains(&r.image_name)
            {
                continue;
            }
            if before.as_ref().is_some_and(|b| r.created >= *b)
                || since.as_ref().is_some_and(|s| r.created <= *s)
            {
                continue;
            }
            out.push(r.summary(now));
        }
        if let Some(l) = q.limit.filter(|l| *l > 0) {
            out.truncate(l as usize);
        }
        if q.size {
            self.fill_sizes(&mut out);
        }
        Ok(out)
    }

    async fn inspect(&self, id: &str, _size: bool) -> Result<ContainerInspectResponse, Error> {
        let ctr = self.lookup(id)?;
        let mut i = ctr.record().inspect();
        let execs: Vec<String> = self
            .inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| e.container == ctr.id)
            .map(|e| e.id.clone())
            .collect();
        i.exec_ids = (!execs.is_empty()).then_some(execs);
        Ok(i)
    }

    async fn start(&self, id: &str) -> Result<bool, Error> {
        Engine::start(self, id).await
    }

    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool, Error> {
        Engine::stop(self, id, signal, timeout).await
    }

    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), Error> {
        Engine::restart(self, id, signal, timeout).await
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), Error> {
        Engine::kill(self, id, signal).await
    }

    async fn pause(&self, id: &str) -> Result<(), Error> {
        self.set_paused(id, true).await
    }

    async fn unpause(&self, id: &str) -> Result<(), Error> {
        self.set_paused(id, false).await
    }

    async fn wait(&self, id: &str, condition: Option<String>) -> Result<WaitFuture, Error> {
        Ok(Box::pin(Engine::wait(self, id, condition)?))
    }

    async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), Error> {
        Engine::remove(self, id, force, volumes).await
    }

    async fn logs(&self, id: &str, opts: LogsOptions) -> Result<Logs, Error> {
        let ctr = self.lookup(id)?;
        let rec = ctr.record();
        if crate::bundle::log_config(&rec)?.is_none() {
            return Err(Error::invalid_parameter(
                "configured logging driver does not support reading",
            ));
        }
        if !opts.stdout && !opts.stderr {
            return Err(Error::invalid_parameter(
                "You must choose at least one stream",
            ));
        }
        let tty = rec.config.tty == Some(true);
        Ok(Logs {
            tty,
            entries: crate::logs::stream(rec.log_path.clone().into(), opts, ctr.wait.subscribe()),
        })
    }

    async fn attach(&self, id: &str, q: query::ContainerAttach) -> Result<Box<dyn Session>, Error> {
        let ctr = self.lookup(id)?;
        let rec = ctr.record();
        let tty = rec.config.tty == Some(true);
        let keys = match q.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => parse_detach_keys(k)?,
            None => DEFAULT_DETACH.to_vec(),
        };
        let stdin = q.stdin && rec.config.open_stdin == Some(true);
        let (stdout, stderr) = (q.stdout, q.stderr);
        let source = match (rec.state.status, ctr.shim()) {
            (Status::Running | Status::Paused, Some(shim)) => {
                let s = tokio::task::spawn_blocking(move || shim.attach(stdin, stdout, stderr))
                    .await
                    .map_err(|e| Error::internal(e.to_string()))?
                    .map_err(|e| Error::system(format!("attaching to container {id}: {e}")))?;
                Source::Ready(s)
            }
            (Status::Removing | Status::Dead, _) => {
                return Err(Error::conflict(format!(
                    "container {} is marked for removal",
                    rec.id
                )));
            }
            _ => {
                // Not running yet: the stream connects when the container starts.
                let (tx, rx) = tokio::sync::oneshot::channel();
                ctr.pending_attach
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Pending {
                        stdin,
                        stdout,
                        stderr,
                        tx,
                    });
                Source::Waiting(rx)
            }
        };
        self.container_event(&rec, "attach", &[]);
        Ok(Box::new(Splice {
            tty,
            stdin,
            detach_keys: keys,
            source,
            on_end: None,
            _hold: Some(ctr),
        }))
    }

    async fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), Error> {
        let ctr = self.lookup(id)?;
        let shim = ctr
            .shim()
            .ok_or_else(|| Error::conflict(format!("container {} is not running", ctr.id)))?;
        tokio::task::spawn_blocking(move || shim.resize(height, width))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::system(format!("resizing container {id}: {e}")))
    }

    async fn top(&self, id: &str, ps_args: Option<String>) -> Result<ContainerTopResponse, Error> {
        let ctr = self.lookup(id)?;
        let rec = ctr.record();
        if !rec.state.status.is_alive() {
            return Err(Error::conflict(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let (titles, procs) =
            tokio::task::spawn_blocking(move || crate::stats::top(&rec, ps_args.as_deref()))
                .await
                .map_err(|e| Error::internal(e.to_string()))??;
        Ok(ContainerTopResponse {
            titles: Some(titles),
            processes: Some(procs),
        })
    }

    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<ItemStream<ContainerStatsResponse>, Error> {
        let ctr = self.lookup(id)?;
        let engine = self.clone();
        let cid = ctr.id.clone();
        let get = move || engine.lookup(&cid).ok().map(|c| c.record());
        Ok(crate::stats::stream(get, stream, one_shot))
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), Error> {
        Engine::rename(self, id, name).await
    }

    async fn update(
        &self,
        id: &str,
        body: ContainerUpdateBody,
        raw: serde_json::Value,
    ) -> Result<ContainerUpdateResponse, Error> {
        crate::bundle::check_update_request(&raw)?;
        let warnings = Engine::update(self, id, body).await?;
        Ok(ContainerUpdateResponse {
            warnings: Some(warnings),
        })
    }

    async fn changes(&self, id: &str) -> Result<Vec<FilesystemChange>, Error> {
        Engine::changes(self, id).await
    }

    async fn export(&self, id: &str) -> Result<berth_server::backend::ByteStream, Error> {
        Engine::export(self, id).await
    }

    async fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> Result<berth_api_types::archive::ContainerPathStat, Error> {
        Engine::archive_stat(self, id, path).await
    }

    async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<
        (
            berth_api_types::archive::ContainerPathStat,
            berth_server::backend::ByteStream,
        ),
        Error,
    > {
        Engine::archive_get(self, id, path).await
    }

    async fn archive_put(
        &self,
        id: &str,
        opts: berth_server::backend::ArchivePutOptions,
        body: berth_server::backend::ByteStream,
    ) -> Result<(), Error> {
        Engine::archive_put(self, id, opts, body).await
    }

    async fn commit(
        &self,
        opts: berth_server::backend::CommitOptions,
    ) -> Result<IdResponse, Error> {
        Engine::commit(self, opts).await
    }

    async fn prune(&self, filters: Filters) -> Result<ContainerPruneResponse, Error> {
        let (deleted, reclaimed) = Engine::prune(self, &filters).await?;
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }
}

impl ExecBackend for Engine {
    async fn exec_create(&self, container: &str, body: ExecConfig) -> Result<IdResponse, Error> {
        Ok(IdResponse {
            id: Engine::exec_create(self, container, body).await?,
        })
    }

    async fn exec_start(
        &self,
        id: &str,
        body: ExecStartConfig,
    ) -> Result<Option<Box<dyn Session>>, Error> {
        Engine::exec_start(self, id, body).await
    }

    async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), Error> {
        Engine::exec_resize(self, id, height, width).await
    }

    async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, Error> {
        Engine::exec_inspect(self, id).await
    }
}

/// Docker's `name` filter is a regular expression; the common uses are substrings and
/// `^name$` anchors, which this handles without a regex engine.
fn name_matches(name: &str, pattern: &str) -> bool {
    let p = pattern.trim_start_matches('/');
    let (anchored_start, p) = match p.strip_prefix('^') {
        Some(r) => (true, r.trim_start_matches('/')),
        None => (false, p),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(r) => (true, r),
        None => (false, p),
    };
    match (anchored_start, anchored_end) {
        (true, true) => name == p,
        (true, false) => name.starts_with(p),
        (false, true) => name.ends_with(p),
        (false, false) => name.contains(p),
    }
}

impl berth_server::backend::NetworkBackend for Engine {
    async fn network_list(&self, filters: Filters) -> Result<Vec<Network>, Error> {
        Engine::network_list(self, &filters).await
    }

    async fn network_inspect(&self, id: &str) -> Result<NetworkInspect, Error> {
        Engine::network_inspect(self, id).await
    }

    async fn network_create(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, Error> {
        Engine::network_create(self, req).await
    }

    async fn network_remove(&self, id: &str) -> Result<(), Error> {
        Engine::network_remove(self, id).await
    }

    async fn network_prune(&self, filters: Filters) -> Result<NetworkPruneResponse, Error> {
        Engine::network_prune(self, &filters).await
    }

    async fn network_connect(&self, id: &str, req: NetworkConnectRequest) -> Result<(), Error> {
        Engine::network_connect(self, id, req).await
    }

    async fn network_disconnect(
        &self,
        id: &str,
        req: NetworkDisconnectRequest,
    ) -> Result<(), Error> {
        Engine::network_disconnect(self, id, req).await
    }
}
