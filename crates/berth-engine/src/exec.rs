//! `docker exec`: processes started in a running container through its shim. Exec records
//! live only as long as the daemon (as in Docker).

use std::sync::{Arc, Mutex};

use berth_api_types::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, ProcessConfig};
use berth_server::backend::Session;
use berth_types::{Error, ExecId};

use crate::attach::{DEFAULT_DETACH, Source, Splice, parse_detach_keys};
use crate::engine::Engine;

/// One exec instance.
pub struct Exec {
    pub id: String,
    pub container: String,
    pub cfg: ExecConfig,
    pub run: Mutex<ExecRun>,
}

/// An exec's progress.
#[derive(Debug, Clone, Default)]
pub struct ExecRun {
    pub started: bool,
    pub running: bool,
    pub pid: i64,
    pub exit_code: Option<i64>,
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub async fn exec_create(&self, key: &str, cfg: ExecConfig) -> Result<String, Error> {
        let ctr = self.lookup(key)?;
        let rec = ctr.record();
        if !rec.state.status.is_alive() {
            return Err(Error::conflict(format!(
                "container {} is not running",
                rec.id
            )));
        }
        if rec.state.status == crate::record::Status::Paused {
            return Err(Error::conflict(format!(
                "container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::invalid_parameter("No exec command specified"));
        }
        if let Some(k) = cfg.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            parse_detach_keys(k)?;
        }
        let id = ExecId::generate().as_str().to_string();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container: rec.id.clone(),
            cfg: cfg.clone(),
            run: Mutex::new(ExecRun::default()),
        });
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), exec);
        let cmd = cfg.cmd.unwrap_or_default().join(" ");
        self.container_event(
            &rec,
            &format!("exec_create: {cmd}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn exec_lookup(&self, id: &str) -> Result<Arc<Exec>, Error> {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// `POST /exec/{id}/start`.
    pub async fn exec_start(
        &self,
        id: &str,
        body: ExecStartConfig,
    ) -> Result<Option<Box<dyn Session>>, Error> {
        let exec = self.exec_lookup(id)?;
        {
            let mut run = exec.run.lock().unwrap_or_else(|p| p.into_inner());
            if run.started {
                return Err(Error::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            run.started = true;
            run.running = true;
        }
        let ctr = self.lookup(&exec.container)?;
        let rec = ctr.record();
        let shim = ctr
            .shim()
            .filter(|_| rec.state.status.is_alive())
            .ok_or_else(|| Error::conflict(format!("container {} is not running", rec.id)))?;
        let tty = body.tty.or(exec.cfg.tty).unwrap_or(false);
        let stdin = exec.cfg.attach_stdin == Some(true) && body.detach != Some(true);
        let process = crate::bundle::exec_process(&self.bundle_dir(&rec.id), &rec, &exec.cfg, tty)?;
        let exec_id = exec.id.clone();
        let started = tokio::task::spawn_blocking(move || shim.exec(&exec_id, process, tty, stdin))
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        let (pid, stream) = match started {
            Ok(x) => x,
            Err(e) => {
                let mut run = exec.run.lock().unwrap_or_else(|p| p.into_inner());
                run.running = false;
                let msg = format!("OCI runtime exec failed: {e}");
                run.exit_code = Some(
                    if msg.contains("not found") || msg.contains("no such file") {
                        127
                    } else {
                        126
                    },
                );
                return Err(Error::system(msg));
            }
        };
        exec.run.lock().unwrap_or_else(|p| p.into_inner()).pid = pid as i64;
        let cmd = exec.cfg.cmd.clone().unwrap_or_default().join(" ");
        self.container_event(
            &rec,
            &format!("exec_start: {cmd}"),
            &[("execID", exec.id.clone())],
        );
        let engine = self.clone();
        let ex = exec.clone();
        let on_end: crate::attach::OnEnd = Box::new(move || {
            let e2 = engine.clone();
            tokio::spawn(async move { e2.exec_finished(&ex).await });
        });
        if body.detach == Some(true) {
            // Nobody reads the output: drain it so the process never blocks on a full pipe.
            tokio::task::spawn_blocking(move || {
                let mut s = stream;
                let _ = std::io::copy(&mut s, &mut std::io::sink());
                on_end();
            });
            return Ok(None);
        }
        let keys = match exec.cfg.detach_keys.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => parse_detach_keys(k)?,
            None => DEFAULT_DETACH.to_vec(),
        };
        Ok(Some(Box::new(Splice {
            tty,
            stdin,
            detach_keys: keys,
            source: Source::Ready(stream),
            on_end: Some(on_end),
            _hold: Some(ctr),
        })))
    }

    async fn exec_finished(&self, exec: &Arc<Exec>) {
        let Ok(ctr) = self.lookup(&exec.container) else {
            return;
        };
        let st = match ctr.shim() {
            Some(shim) => {
                let id = exec.id.clone();
                tokio::task::spawn_blocking(move || shim.exec_state(&id))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
            }
            None => None,
        };
        let code = {
            let mut run = exec.run.lock().unwrap_or_else(|p| p.into_inner());
            match st {
                Some(s) if !s.running => {
                    run.running = false;
                    run.exit_code = s.exit_code.map(i64::from);
                }
                Some(_) => {}
                None => {
                    run.running = false;
                    run.exit_code.get_or_insert(137);
                }
            }
            run.exit_code
        };
        let rec = ctr.record();
        self.container_event(
            &rec,
            "exec_die",
            &[
                ("execID", exec.id.clone()),
                ("exitCode", code.unwrap_or(-1).to_string()),
            ],
        );
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, h: u16, w: u16) -> Result<(), Error> {
        let exec = self.exec_lookup(id)?;
        let ctr = self.lookup(&exec.container)?;
        let shim = ctr
            .shim()
            .ok_or_else(|| Error::conflict(format!("container {} is not running", ctr.id)))?;
        let eid = exec.id.clone();
        tokio::task::spawn_blocking(move || shim.exec_resize(&eid, h, w))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::system(format!("resizing exec {id}: {e}")))
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, Error> {
        let exec = self.exec_lookup(id)?;
        // A stream may have ended without the record being refreshed yet: ask the shim.
        let needs = {
            let r = exec.run.lock().unwrap_or_else(|p| p.into_inner());
            r.running && r.pid != 0
        };
        if needs
            && let Ok(ctr) = self.lookup(&exec.container)
            && let Some(shim) = ctr.shim()
        {
            let eid = exec.id.clone();
            if let Ok(Ok(s)) = tokio::task::spawn_blocking(move || shim.exec_state(&eid)).await
                && !s.running
            {
                let mut r = exec.run.lock().unwrap_or_else(|p| p.into_inner());
                r.running = false;
                r.exit_code = s.exit_code.map(i64::from);
            }
        }
        let run = exec.run.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cmd = exec.cfg.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: exec.cfg.detach_keys.clone().or(Some(String::new())),
            id: Some(exec.id.clone()),
            running: Some(run.running),
            exit_code: run.exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(exec.cfg.privileged == Some(true)),
                user: exec.cfg.user.clone().or(Some(String::new())),
                tty: Some(exec.cfg.tty == Some(true)),
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: Some(exec.cfg.attach_stdin == Some(true)),
            open_stderr: Some(exec.cfg.attach_stderr == Some(true)),
            open_stdout: Some(exec.cfg.attach_stdout == Some(true)),
            container_id: Some(exec.container.clone()),
            pid: Some(run.pid),
        })
    }
}
