//! An in-memory backend and a server harness for the HTTP tests: the real router served on a
//! real unix socket in a temp dir.
//!
//! The fake "runs" a few commands: `echo ARGS…` prints and exits 0, `fail` prints to stderr
//! and exits 3, `exit N` exits N at once, `cat` (attach/exec) echoes stdin until it ends and
//! then exits 0, anything else (e.g. `sleep`) stays running until killed.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api_types::models::*;
use berth_api_types::{Filters, query, stdcopy};
use berth_server::backend::*;
use berth_types::Error;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub running: bool,
    pub paused: bool,
    pub started: bool,
    pub exit_code: i64,
    pub logs: Vec<LogEntry>,
    pub labels: HashMap<String, String>,
}

#[derive(Default)]
pub struct State {
    pub containers: BTreeMap<String, FakeContainer>,
    /// (container id, wake-up) of registered waits.
    pub waiters: Vec<(String, oneshot::Sender<i64>)>,
    pub execs: HashMap<String, (String, ExecConfig, bool)>,
    pub next: u64,
}

#[derive(Default)]
pub struct Fake {
    /// Itself, for sessions that outlive a call.
    pub me: Mutex<std::sync::Weak<Fake>>,
    pub state: Mutex<State>,
    /// How many waits were ever registered.
    pub waits_registered: AtomicUsize,
    /// The last create call, for assertions.
    pub last_create: Mutex<Option<(CreateOptions, ContainerCreateBody, serde_json::Value)>>,
    /// The last import, with the number of body bytes received.
    pub last_import: Mutex<Option<(ImportOptions, usize)>>,
    /// The last resize.
    pub last_resize: Mutex<Option<(String, u16, u16)>>,
    /// The last list call's filters.
    pub last_filters: Mutex<Option<Filters>>,
    /// The last archive upload: container, options, body.
    pub last_archive_put: Mutex<Option<(String, ArchivePutOptions, Vec<u8>)>>,
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        let f = Arc::new(Fake::default());
        *f.me.lock().unwrap() = Arc::downgrade(&f);
        f
    }

    fn self_arc(&self) -> Arc<Fake> {
        self.me.lock().unwrap().upgrade().unwrap()
    }

    fn resolve(st: &State, id: &str) -> Result<String, Error> {
        if st.containers.contains_key(id) {
            return Ok(id.to_string());
        }
        if let Some(c) = st.containers.values().find(|c| c.name == id) {
            return Ok(c.id.clone());
        }
        let m: Vec<_> = st
            .containers
            .keys()
            .filter(|k| !id.is_empty() && k.starts_with(id))
            .collect();
        match m.len() {
            1 => Ok(m[0].clone()),
            0 => Err(Error::not_found(format!("No such container: {id}"))),
            _ => Err(Error::invalid_parameter(format!(
                "multiple IDs found with provided prefix: {id}"
            ))),
        }
    }

    /// Marks `id` exited with `code` and wakes its waiters.
    pub fn exit(&self, id: &str, code: i64) {
        let mut st = self.state.lock().unwrap();
        Self::exit_locked(&mut st, id, code);
    }

    fn exit_locked(st: &mut State, id: &str, code: i64) {
        if let Some(c) = st.containers.get_mut(id) {
            c.running = false;
            c.exit_code = code;
        }
        let waiters = std::mem::take(&mut st.waiters);
        for (w, tx) in waiters {
            if w == id {
                let _ = tx.send(code);
            } else {
                st.waiters.push((w, tx));
            }
        }
    }

    pub fn container(&self, name: &str) -> Option<FakeContainer> {
        let st = self.state.lock().unwrap();
        let id = Self::resolve(&st, name).ok()?;
        st.containers.get(&id).cloned()
    }

    /// Adds a container directly, already running when `running`.
    pub fn add(&self, name: &str, cmd: &[&str], tty: bool, running: bool) -> String {
        let mut st = self.state.lock().unwrap();
        st.next += 1;
        let id = format!("{:064x}", 0xabc0_0000_u64 + st.next);
        st.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name: name.to_string(),
                image: "busybox:latest".to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty,
                open_stdin: true,
                running,
                paused: false,
                started: running,
                exit_code: 0,
                logs: Vec::new(),
                labels: HashMap::new(),
            },
        );
        id
    }

    fn summary(c: &FakeContainer) -> ContainerSummary {
        ContainerSummary {
            id: Some(c.id.clone()),
            names: Some(vec![format!("/{}", c.name)]),
            image: Some(c.image.clone()),
            image_id: Some(format!("sha256:{:064x}", 1)),
            command: Some(c.cmd.join(" ")),
            created: Some(1_700_000_000),
            state: Some(if c.running {
                ContainerSummaryStateEnum::RUNNING
            } else if c.started {
                ContainerSummaryStateEnum::EXITED
            } else {
                ContainerSummaryStateEnum::CREATED
            }),
            status: Some(if c.running {
                "Up 2 seconds".to_string()
            } else if c.started {
                format!("Exited ({}) 1 second ago", c.exit_code)
            } else {
                "Created".to_string()
            }),
            labels: Some(c.labels.clone()),
            ports: Some(vec![]),
            ..Default::default()
        }
    }
}

/// An attach or exec session that echoes stdin back (framed unless tty) until stdin ends,
/// then marks the container exited 0 (for attach).
pub struct Echo {
    pub tty: bool,
    pub fake: Option<(Arc<Fake>, String)>,
    pub prefix: Vec<u8>,
}

impl Session for Echo {
    fn tty(&self) -> bool {
        self.tty
    }
    fn run(
        self: Box<Self>,
        conn: BoxConn,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let (mut r, mut w) = tokio::io::split(conn);
            let out = |tty: bool, data: &[u8]| {
                if tty {
                    data.to_vec()
                } else {
                    stdcopy::frame(stdcopy::Stream::Stdout, data)
                }
            };
            if !self.prefix.is_empty() && w.write_all(&out(self.tty, &self.prefix)).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 4096];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write_all(&out(self.tty, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = w.flush().await;
            if let Some((fake, id)) = self.fake {
                fake.exit(&id, 0);
            }
            let _ = w.shutdown().await;
        })
    }
}

/// An output-only attach: writes the container's logs when it exits, then closes.
pub struct Replay {
    pub tty: bool,
    pub exited: oneshot::Receiver<i64>,
    pub fake: Arc<Fake>,
    pub id: String,
}

impl Session for Replay {
    fn tty(&self) -> bool {
        self.tty
    }
    fn run(
        self: Box<Self>,
        mut conn: BoxConn,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = self.exited.await;
            let logs = self
                .fake
                .container(&self.id)
                .map(|c| c.logs)
                .unwrap_or_default();
            for e in logs {
                let s = match e.stream {
                    LogStream::Stdout => stdcopy::Stream::Stdout,
                    LogStream::Stderr => stdcopy::Stream::Stderr,
                };
                let bytes = if self.tty {
                    e.data.to_vec()
                } else {
                    stdcopy::frame(s, &e.data)
                };
                if conn.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = conn.shutdown().await;
        })
    }
}

impl SystemBackend for Fake {
    fn version(&self) -> SystemVersion {
        let mut details = HashMap::new();
        details.insert("ApiVersion".to_string(), "1.50".to_string());
        details.insert("MinAPIVersion".to_string(), "1.24".to_string());
        details.insert("GitCommit".to_string(), "fake".to_string());
        details.insert("GoVersion".to_string(), "rust".to_string());
        details.insert("Os".to_string(), "linux".to_string());
        details.insert("Arch".to_string(), "amd64".to_string());
        details.insert("KernelVersion".to_string(), "6.0".to_string());
        details.insert("BuildTime".to_string(), "today".to_string());
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "berth fake".to_string(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".to_string(),
                version: "0.1.0-fake".to_string(),
                details: Some(details),
            }]),
            version: Some("0.1.0-fake".to_string()),
            api_version: Some("1.50".to_string()),
            min_api_version: Some("1.24".to_string()),
            git_commit: Some("fake".to_string()),
            go_version: Some("rust".to_string()),
            os: Some("linux".to_string()),
            arch: Some("amd64".to_string()),
            kernel_version: Some("6.0".to_string()),
            ..Default::default()
        }
    }

    async fn info(&self) -> Result<SystemInfo, Error> {
        let st = self.state.lock().unwrap();
        Ok(SystemInfo {
            id: Some("fake".to_string()),
            containers: Some(st.containers.len() as i64),
            name: Some("fakehost".to_string()),
            server_version: Some("0.1.0-fake".to_string()),
            os_type: Some("linux".to_string()),
            ..Default::default()
        })
    }

    fn events(
        &self,
        since_ns: Option<i128>,
        until_ns: Option<i128>,
        filters: Filters,
    ) -> Result<ItemStream<EventMessage>, Error> {
        let ev = |action: &str, t: i64| EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some("c1".to_string()),
                attributes: None,
            }),
            time: Some(t),
            time_nano: Some(t * 1_000_000_000),
            ..Default::default()
        };
        let since = since_ns.unwrap_or(0);
        let past: Vec<_> = [ev("create", 100), ev("start", 200), ev("die", 300)]
            .into_iter()
            .filter(|e| (e.time_nano.unwrap() as i128) >= since)
            .filter(|e| until_ns.is_none_or(|u| (e.time_nano.unwrap() as i128) <= u))
            .filter(|e| {
                !filters.contains("event")
                    || filters.get("event").contains(e.action.as_ref().unwrap())
            })
            .map(Ok)
            .collect();
        let s = futures_util::stream::iter(past);
        if until_ns.is_some() {
            Ok(Box::pin(s))
        } else {
            Ok(Box::pin(s.chain(futures_util::stream::pending())))
        }
    }
}

impl ContainerBackend for Fake {
    async fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> Result<berth_api_types::archive::ContainerPathStat, Error> {
        if path == "/missing" {
            return Err(Error::not_found(format!(
                "Could not find the file {path} in container {id}"
            )));
        }
        Ok(berth_api_types::archive::ContainerPathStat {
            name: path.rsplit('/').next().unwrap_or("").to_string(),
            size: 4,
            mode: berth_api_types::archive::go_file_mode(0o100644),
            mtime: "2024-01-01T00:00:00Z".into(),
            link_target: String::new(),
        })
    }

    async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(berth_api_types::archive::ContainerPathStat, ByteStream), Error> {
        let st = self.archive_stat(id, path).await?;
        let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(
            b"tar!",
        ))]));
        Ok((st, body))
    }

    async fn archive_put(
        &self,
        id: &str,
        opts: ArchivePutOptions,
        mut body: ByteStream,
    ) -> Result<(), Error> {
        let mut data = Vec::new();
        while let Some(c) = body.next().await {
            data.extend_from_slice(&c.map_err(|e| Error::system(e.to_string()))?);
        }
        *self.last_archive_put.lock().unwrap() = Some((id.to_string(), opts, data));
        Ok(())
    }

    async fn create(
        &self,
        opts: CreateOptions,
        body: ContainerCreateBody,
        raw: serde_json::Value,
    ) -> Result<ContainerCreateResponse, Error> {
        *self.last_create.lock().unwrap() = Some((opts.clone(), body.clone(), raw));
        let image = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::invalid_parameter("config must specify an image"))?;
        if image == "missing" {
            return Err(Error::not_found("No such image: missing:latest"));
        }
        let mut st = self.state.lock().unwrap();
        st.next += 1;
        let name = opts.name.unwrap_or_else(|| format!("fake_{}", st.next));
        if st.containers.values().any(|c| c.name == name) {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use"
            )));
        }
        let id = format!("{:064x}", 0x00c0_ffee_0000_u64 + st.next);
        st.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name,
                image,
                cmd: body.cmd.clone().unwrap_or_default(),
                tty: body.tty.unwrap_or(false),
                open_stdin: body.open_stdin.unwrap_or(false),
                running: false,
                paused: false,
                started: false,
                exit_code: 0,
                logs: Vec::new(),
                labels: body.labels.clone().unwrap_or_default(),
            },
        );
        Ok(ContainerCreateResponse {
            id,
            warnings: vec![],
        })
    }

    async fn list(
        &self,
        q: query::ContainerList,
        filters: Filters,
    ) -> Result<Vec<ContainerSummary>, Error> {
        *self.last_filters.lock().unwrap() = Some(filters.clone());
        let st = self.state.lock().unwrap();
        let mut out: Vec<_> = st
            .containers
            .values()
            .filter(|c| q.all || c.running)
            .filter(|c| {
                let s = Fake::summary(c);
                let status = s.state.unwrap().to_string();
                (!filters.contains("status") || filters.get("status").contains(&status))
                    && (!filters.contains("name")
                        || filters
                            .get("name")
                            .iter()
                            .any(|n| c.name.contains(n.as_str())))
                    && filters.match_labels("label", &c.labels)
            })
            .map(Fake::summary)
            .collect();
        if let Some(l) = q.limit.filter(|l| *l > 0) {
            out.truncate(l as usize);
        }
        Ok(out)
    }

    async fn inspect(&self, id: &str, _size: bool) -> Result<ContainerInspectResponse, Error> {
        let st = self.state.lock().unwrap();
        let c = &st.containers[&Self::resolve(&st, id)?];
        Ok(ContainerInspectResponse {
            id: Some(c.id.clone()),
            name: Some(format!("/{}", c.name)),
            created: Some("2024-01-01T00:00:00.000000000Z".to_string()),
            path: c.cmd.first().cloned(),
            args: Some(c.cmd.iter().skip(1).cloned().collect()),
            image: Some(format!("sha256:{:064x}", 1)),
            state: Some(ContainerState {
                status: Some(if c.running {
                    ContainerStateStatusEnum::RUNNING
                } else if c.started {
                    ContainerStateStatusEnum::EXITED
                } else {
                    ContainerStateStatusEnum::CREATED
                }),
                running: Some(c.running),
                paused: Some(c.paused),
                restarting: Some(false),
                exit_code: Some(c.exit_code),
                pid: Some(if c.running { 4242 } else { 0 }),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some(c.image.clone()),
                cmd: Some(c.cmd.clone()),
                tty: Some(c.tty),
                open_stdin: Some(c.open_stdin),
                attach_stdin: Some(c.open_stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                labels: Some(c.labels.clone()),
                ..Default::default()
            }),
            host_config: Some(HostConfig::default()),
            ..Default::default()
        })
    }

    async fn start(&self, id: &str) -> Result<bool, Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        let c = st.containers.get_mut(&id).unwrap();
        if c.running {
            return Ok(false);
        }
        c.running = true;
        c.started = true;
        let cmd = c.cmd.clone();
        let t = now_ns();
        match cmd.first().map(String::as_str) {
            Some("echo") => {
                let line = format!("{}\n", cmd[1..].join(" "));
                c.logs.push(LogEntry {
                    stream: LogStream::Stdout,
                    time_ns: t,
                    data: Bytes::from(line),
                });
                Self::exit_locked(&mut st, &id, 0);
            }
            Some("fail") => {
                c.logs.push(LogEntry {
                    stream: LogStream::Stdout,
                    time_ns: t,
                    data: Bytes::from_static(b"trying\n"),
                });
                c.logs.push(LogEntry {
                    stream: LogStream::Stderr,
                    time_ns: t + 1,
                    data: Bytes::from_static(b"oops\n"),
                });
                Self::exit_locked(&mut st, &id, 3);
            }
            Some("exit") => {
                let code = cmd.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                Self::exit_locked(&mut st, &id, code);
            }
            _ => {}
        }
        Ok(true)
    }

    async fn stop(
        &self,
        id: &str,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> Result<bool, Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        if !st.containers[&id].running {
            return Ok(false);
        }
        Self::exit_locked(&mut st, &id, 143);
        Ok(true)
    }

    async fn restart(
        &self,
        id: &str,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        st.containers.get_mut(&id).unwrap().running = true;
        Ok(())
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        if !st.containers[&id].running {
            return Err(Error::conflict(format!("container {id} is not running")));
        }
        let code = match signal.as_deref() {
            None | Some("KILL") | Some("SIGKILL") | Some("9") => 137,
            Some("TERM") | Some("SIGTERM") | Some("15") => 143,
            Some(s) => return Err(Error::invalid_parameter(format!("invalid signal: {s}"))),
        };
        Self::exit_locked(&mut st, &id, code);
        Ok(())
    }

    async fn pause(&self, id: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        st.containers.get_mut(&id).unwrap().paused = true;
        Ok(())
    }

    async fn unpause(&self, id: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        st.containers.get_mut(&id).unwrap().paused = false;
        Ok(())
    }

    async fn wait(&self, id: &str, condition: Option<String>) -> Result<WaitFuture, Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        let c = &st.containers[&id];
        if condition.as_deref() != Some("next-exit") && !c.running {
            let code = c.exit_code;
            self.waits_registered.fetch_add(1, Ordering::SeqCst);
            return Ok(Box::pin(async move {
                Ok(ContainerWaitResponse {
                    status_code: code,
                    error: None,
                })
            }));
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push((id, tx));
        self.waits_registered.fetch_add(1, Ordering::SeqCst);
        Ok(Box::pin(async move {
            let code = rx.await.map_err(|_| Error::system("container went away"))?;
            Ok(ContainerWaitResponse {
                status_code: code,
                error: None,
            })
        }))
    }

    async fn remove(&self, id: &str, force: bool, _volumes: bool) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        if st.containers[&id].running && !force {
            return Err(Error::conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                st.containers[&id].name
            )));
        }
        st.containers.remove(&id);
        Ok(())
    }

    async fn logs(&self, id: &str, opts: LogsOptions) -> Result<Logs, Error> {
        let st = self.state.lock().unwrap();
        let c = &st.containers[&Self::resolve(&st, id)?];
        let mut entries: Vec<_> = c
            .logs
            .iter()
            .filter(|e| match e.stream {
                LogStream::Stdout => opts.stdout,
                LogStream::Stderr => opts.stderr,
            })
            .filter(|e| opts.since_ns.is_none_or(|s| e.time_ns >= s))
            .cloned()
            .collect();
        if let Some(t) = opts.tail {
            let skip = entries.len().saturating_sub(t);
            entries.drain(..skip);
        }
        Ok(Logs {
            tty: c.tty,
            entries: Box::pin(futures_util::stream::iter(entries.into_iter().map(Ok))),
        })
    }

    async fn attach(&self, id: &str, q: query::ContainerAttach) -> Result<Box<dyn Session>, Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        let c = st.containers[&id].clone();
        if c.started && !c.running && q.stream {
            return Err(Error::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        if q.stdin {
            let fake = Some((self.self_arc(), id));
            return Ok(Box::new(Echo {
                tty: c.tty,
                fake,
                prefix: Vec::new(),
            }));
        }
        // Output only (`docker run` without -i): replay the logs once the container exits.
        let (tx, rx) = oneshot::channel();
        st.waiters.push((id.clone(), tx));
        let me = self.self_arc();
        Ok(Box::new(Replay {
            tty: c.tty,
            exited: rx,
            fake: me,
            id,
        }))
    }

    async fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), Error> {
        let st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        *self.last_resize.lock().unwrap() = Some((id, height, width));
        Ok(())
    }

    async fn top(&self, id: &str, ps_args: Option<String>) -> Result<ContainerTopResponse, Error> {
        if ps_args.as_deref() == Some("panic") {
            panic!("top was asked to panic");
        }
        let st = self.state.lock().unwrap();
        Self::resolve(&st, id)?;
        Ok(ContainerTopResponse {
            titles: Some(vec!["PID".to_string(), "CMD".to_string()]),
            processes: Some(vec![vec![
                "1".to_string(),
                ps_args.unwrap_or_else(|| "sleep".to_string()),
            ]]),
        })
    }

    async fn stats(
        &self,
        id: &str,
        stream: bool,
        _one_shot: bool,
    ) -> Result<ItemStream<ContainerStatsResponse>, Error> {
        let st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        let one = ContainerStatsResponse {
            id: Some(id),
            name: Some("/x".to_string()),
            ..Default::default()
        };
        if stream {
            let s = futures_util::stream::unfold(one, |one| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Ok(one.clone()), one))
            });
            Ok(Box::pin(s))
        } else {
            Ok(Box::pin(futures_util::stream::iter([Ok(one)])))
        }
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), Error> {
        let mut st = self.state.lock().unwrap();
        let id = Self::resolve(&st, id)?;
        st.containers.get_mut(&id).unwrap().name = name.to_string();
        Ok(())
    }

    async fn update(
        &self,
        id: &str,
        _body: ContainerUpdateBody,
        _raw: serde_json::Value,
    ) -> Result<ContainerUpdateResponse, Error> {
        let st = self.state.lock().unwrap();
        Self::resolve(&st, id)?;
        Ok(ContainerUpdateResponse {
            warnings: Some(vec![]),
        })
    }

    async fn prune(&self, _filters: Filters) -> Result<ContainerPruneResponse, Error> {
        let mut st = self.state.lock().unwrap();
        let gone: Vec<String> = st
            .containers
            .values()
            .filter(|c| !c.running)
            .map(|c| c.id.clone())
            .collect();
        for g in &gone {
            st.containers.remove(g);
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(gone),
            space_reclaimed: Some(0),
        })
    }
}

impl ExecBackend for Fake {
    async fn exec_create(&self, container: &str, body: ExecConfig) -> Result<IdResponse, Error> {
        let mut st = self.state.lock().unwrap();
        let cid = Self::resolve(&st, container)?;
        if !st.containers[&cid].running {
            return Err(Error::conflict(format!("container {cid} is not running")));
        }
        st.next += 1;
        let id = format!("{:064x}", 0xe0e0_0000_u64 + st.next);
        st.execs.insert(id.clone(), (cid, body, false));
        Ok(IdResponse { id })
    }

    async fn exec_start(
        &self,
        id: &str,
        body: ExecStartConfig,
    ) -> Result<Option<Box<dyn Session>>, Error> {
        let mut st = self.state.lock().unwrap();
        let e = st
            .execs
            .get_mut(id)
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))?;
        e.2 = true;
        if body.detach.unwrap_or(false) {
            return Ok(None);
        }
        let tty = body.tty.unwrap_or(false) || e.1.tty.unwrap_or(false);
        Ok(Some(Box::new(Echo {
            tty,
            fake: None,
            prefix: b"exec> ".to_vec(),
        })))
    }

    async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), Error> {
        let st = self.state.lock().unwrap();
        if !st.execs.contains_key(id) {
            return Err(Error::not_found(format!("No such exec instance: {id}")));
        }
        *self.last_resize.lock().unwrap() = Some((id.to_string(), height, width));
        Ok(())
    }

    async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, Error> {
        let st = self.state.lock().unwrap();
        let e = st
            .execs
            .get(id)
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))?;
        Ok(ExecInspectResponse {
            id: Some(id.to_string()),
            container_id: Some(e.0.clone()),
            running: Some(false),
            exit_code: Some(0),
            ..Default::default()
        })
    }
}

/// No volumes: the defaults answer 501.
impl VolumeBackend for Fake {}
impl berth_server::backend::NetworkBackend for Fake {}

impl ImageBackend for Fake {
    async fn image_list(
        &self,
        _q: query::ImageList,
        _filters: Filters,
    ) -> Result<Vec<ImageSummary>, Error> {
        Ok(vec![ImageSummary {
            id: format!("sha256:{:064x}", 1),
            repo_tags: vec!["busybox:latest".to_string()],
            created: 1_700_000_000,
            size: 4_000_000,
            containers: -1,
            shared_size: -1,
            ..Default::default()
        }])
    }

    async fn image_inspect(&self, name: &str) -> Result<ImageInspect, Error> {
        if name == "busybox" || name == "busybox:latest" || name == "library/busybox:latest" {
            Ok(ImageInspect {
                id: Some(format!("sha256:{:064x}", 1)),
                repo_tags: Some(vec!["busybox:latest".to_string()]),
                ..Default::default()
            })
        } else {
            Err(Error::not_found(format!("No such image: {name}")))
        }
    }

    async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, Error> {
        self.image_inspect(name).await?;
        Ok(vec![ImageHistoryResponseItem {
            id: "<missing>".to_string(),
            created_by: "ADD rootfs".to_string(),
            ..Default::default()
        }])
    }

    async fn image_tag(&self, name: &str, _repo: &str, _tag: Option<&str>) -> Result<(), Error> {
        self.image_inspect(name).await.map(|_| ())
    }

    async fn image_remove(
        &self,
        name: &str,
        _force: bool,
        _noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, Error> {
        self.image_inspect(name).await?;
        Ok(vec![ImageDeleteResponseItem {
            untagged: Some(name.to_string()),
            deleted: None,
        }])
    }

    async fn image_import(
        &self,
        opts: ImportOptions,
        mut body: ByteStream,
    ) -> Result<ItemStream<CreateImageInfo>, Error> {
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            n += chunk
                .map_err(|e| Error::invalid_parameter(format!("reading tarball: {e}")))?
                .len();
        }
        *self.last_import.lock().unwrap() = Some((opts, n));
        let done = CreateImageInfo {
            status: Some(format!("sha256:{:064x}", n)),
            ..Default::default()
        };
        Ok(Box::pin(futures_util::stream::iter([Ok(done)])))
    }

    async fn image_pull(&self, opts: PullOptions) -> Result<ItemStream<CreateImageInfo>, Error> {
        if opts.image == "midway" {
            let first = CreateImageInfo {
                status: Some("Pulling fs layer".to_string()),
                id: Some("abc".to_string()),
                ..Default::default()
            };
            return Ok(Box::pin(futures_util::stream::iter([
                Ok(first),
                Err(Error::system("connection reset while pulling")),
            ])));
        }
        Err(Error::not_implemented("pulling is not supported yet"))
    }

    async fn image_prune(&self, _filters: Filters) -> Result<ImagePruneResponse, Error> {
        Ok(ImagePruneResponse::default())
    }
}

/// The real router served on a unix socket in a temp dir, stopped (and checked to have
/// removed its socket) on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub fake: Arc<Fake>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Daemon {
    pub async fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("run/berth.sock");
        let fake = Fake::new();
        let listener = berth_server::Listener::bind(&format!("unix://{}", sock.display()), None)
            .await
            .unwrap();
        let (tx, mut rx) = watch::channel(false);
        let app = berth_server::app(fake.clone());
        let task = tokio::spawn(berth_server::serve(vec![listener], app, async move {
            let _ = rx.changed().await;
        }));
        Daemon {
            dir,
            sock,
            fake,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving and waits for the server to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("server did not stop")
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// An HTTP/1.1 connection to the daemon (hyper's client).
pub async fn connect(
    sock: &std::path::Path,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>> {
    let s = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

pub fn build(
    method: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> hyper::Request<http_body_util::Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "docker")
        .header("Content-Type", "application/json")
        .body(http_body_util::Full::new(body.into()))
        .unwrap()
}

/// Sends one request on a fresh connection and reads the whole response (60 s limit).
pub async fn request(
    sock: &std::path::Path,
    method: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> Resp {
    use http_body_util::BodyExt;
    let fut = async {
        let mut send = connect(sock).await;
        let r = send.send_request(build(method, path, body)).await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("request timed out")
}
