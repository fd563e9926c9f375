//! Health checks (`HEALTHCHECK` in the image, `--health-*` on `run`): while a container runs,
//! its probe command is run inside it through the shim every interval; the results decide
//! `State.Health` (`starting` → `healthy` / `unhealthy`), which `inspect` shows, `ps` appends
//! to the status and `health_status: …` events announce. Docker's rules: a probe that exits 0
//! is a success; anything else, or running past its timeout, is a failure; `retries`
//! consecutive failures make the container unhealthy, except that failures during the start
//! period do not count while it has never been healthy; the last five results are kept, each
//! with at most 4 KiB of output. The loop pauses with the container and ends when it stops.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use berth_api_types::models::{
    ContainerConfig, ExecConfig, Health, HealthConfig, HealthStatusEnum, HealthcheckResult,
};
use berth_api_types::stdcopy::Decoder;
use berth_types::{Error, ExecId};

use crate::clock;
use crate::engine::{Ctr, Engine};
use crate::record::Status;

/// Docker's defaults (nanoseconds / counts) for fields left at zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG: usize = 5;
/// Bytes of probe output kept per result.
const MAX_OUTPUT: usize = 4096;

/// A container's probe, with the defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn ns(v: Option<i64>, default: Duration) -> Duration {
    match v {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe a container config asks for; `None` without a healthcheck or with `NONE`.
pub(crate) fn probe_of(cfg: &ContainerConfig) -> Option<Probe> {
    let h = cfg.healthcheck.as_ref()?;
    let test = h.test.as_ref()?;
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let shell = cfg
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.into_iter().chain(test[1..].iter().cloned()).collect()
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        argv,
        interval: ns(h.interval, DEFAULT_INTERVAL),
        timeout: ns(h.timeout, DEFAULT_TIMEOUT),
        start_period: ns(h.start_period, Duration::ZERO),
        start_interval: ns(h.start_interval, DEFAULT_START_INTERVAL),
        retries: match h.retries {
            Some(r) if r > 0 => r,
            _ => DEFAULT_RETRIES,
        },
    })
}

/// Checks a healthcheck as dockerd does at create, naming the bad field.
pub(crate) fn validate(h: &HealthConfig) -> Result<(), Error> {
    let min = 1_000_000; // 1 ms
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(v) = v
            && v != 0
            && v < min
        {
            return Err(Error::invalid_parameter(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries.is_some_and(|r| r < 0) {
        return Err(Error::invalid_parameter(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    if let Some(test) = &h.test
        && let Some(kind) = test.first()
    {
        match kind.as_str() {
            "NONE" => {}
            "CMD" | "CMD-SHELL" if test.len() > 1 => {}
            "CMD" | "CMD-SHELL" => {
                return Err(Error::invalid_parameter(format!(
                    "Healthcheck.Test: {kind} needs a command"
                )));
            }
            other => {
                return Err(Error::invalid_parameter(format!(
                    "Healthcheck.Test: unknown type {other:?} (expected CMD, CMD-SHELL or NONE)"
                )));
            }
        }
    }
    Ok(())
}

/// Docker's merge of the request's healthcheck with the image's: fields the request leaves
/// unset come from the image.
pub(crate) fn merge(
    req: Option<HealthConfig>,
    image: Option<&HealthConfig>,
) -> Option<HealthConfig> {
    let Some(img) = image else { return req };
    let Some(mut h) = req else {
        return Some(img.clone());
    };
    if h.test.as_ref().is_none_or(Vec::is_empty) {
        h.test = img.test.clone();
    }
    let unset = |v: Option<i64>| v.is_none_or(|n| n == 0);
    if unset(h.interval) {
        h.interval = img.interval;
    }
    if unset(h.timeout) {
        h.timeout = img.timeout;
    }
    if unset(h.start_period) {
        h.start_period = img.start_period;
    }
    if unset(h.start_interval) {
        h.start_interval = img.start_interval;
    }
    if unset(h.retries) {
        h.retries = img.retries;
    }
    Some(h)
}

/// `ps`'s suffix for a running container's health: ` (healthy)`, ` (health: starting)`.
pub(crate) fn status_suffix(h: Option<&Health>) -> &'static str {
    match h.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => " (health: starting)",
        Some(HealthStatusEnum::HEALTHY) => " (healthy)",
        Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)",
        _ => "",
    }
}

/// The `health` filter's name for a container's state (`none` without a healthcheck).
pub(crate) fn filter_name(h: Option<&Health>) -> &'static str {
    match h.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => "starting",
        Some(HealthStatusEnum::HEALTHY) => "healthy",
        Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
        _ => "none",
    }
}

/// Folds one probe result into the health state; returns the new status when it changed.
fn fold(
    h: &mut Health,
    result: HealthcheckResult,
    probe: &Probe,
    in_start_period: bool,
) -> Option<HealthStatusEnum> {
    let old = h.status;
    let log = h.log.get_or_insert_with(Vec::new);
    log.push(result.clone());
    if log.len() > MAX_LOG {
        let extra = log.len() - MAX_LOG;
        log.drain(..extra);
    }
    if result.exit_code == Some(0) {
        h.failing_streak = Some(0);
        h.status = Some(HealthStatusEnum::HEALTHY);
    } else if !(old == Some(HealthStatusEnum::STARTING) && in_start_period) {
        let streak = h.failing_streak.unwrap_or(0) + 1;
        h.failing_streak = Some(streak);
        if streak >= probe.retries {
            h.status = Some(HealthStatusEnum::UNHEALTHY);
        }
    }
    (h.status != old).then_some(h.status).flatten()
}

/// Output kept from a probe: the first 4 KiB, `...` when there was more.
fn clip(mut out: Vec<u8>, more: bool) -> String {
    out.truncate(MAX_OUTPUT);
    let mut s = String::from_utf8_lossy(&out).into_owned();
    if more {
        s.push_str("...");
    }
    s
}

impl Engine {
    /// Resets the container's health to `starting` and starts its probe loop; a loop started
    /// earlier for the container ends at its next turn. Called when the container starts and
    /// when a running container is re-adopted.
    pub(crate) fn start_health(&self, ctr: &Arc<Ctr>) {
        let generation = ctr.health_gen.fetch_add(1, Ordering::SeqCst) + 1;
        let rec = ctr.record();
        let Some(probe) = probe_of(&rec.config) else {
            return;
        };
        let rec = ctr.with_rec(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            h.status = Some(HealthStatusEnum::STARTING);
            h.failing_streak = Some(0);
            r.clone()
        });
        if let Err(e) = self.persist(&rec) {
            tracing::warn!("container {}: {e}", rec.id);
        }
        let engine = self.clone();
        let ctr = ctr.clone();
        // The start period counts from the container's start, also for a re-adopted one.
        let started_ns = clock::parse_rfc3339(&rec.state.started_at).unwrap_or_else(clock::now_ns);
        let since_start = move || {
            Duration::from_nanos((clock::now_ns() - started_ns).clamp(0, i64::MAX as i128) as u64)
        };
        tokio::spawn(async move {
            loop {
                let elapsed = since_start();
                let starting = ctr.record().state.health.and_then(|h| h.status)
                    == Some(HealthStatusEnum::STARTING);
                let wait = if elapsed < probe.start_period {
                    let left = probe.start_period - elapsed;
                    let base = if starting {
                        probe.start_interval
                    } else {
                        probe.interval
                    };
                    base.min(left).max(Duration::from_millis(1))
                } else {
                    probe.interval
                };
                tokio::time::sleep(wait).await;
                if ctr.health_gen.load(Ordering::SeqCst) != generation {
                    return;
                }
                match ctr.record().state.status {
                    Status::Running => {}
                    Status::Paused => continue,
                    _ => return,
                }
                let begun = clock::now_rfc3339();
                let in_start_period = since_start() < probe.start_period;
                let (code, output) = match engine.run_probe(&ctr, &probe).await {
                    Ok(r) => r,
                    Err(e) => (-1, e.to_string()),
                };
                if ctr.health_gen.load(Ordering::SeqCst) != generation {
                    return;
                }
                let result = HealthcheckResult {
                    start: Some(begun),
                    end: Some(clock::now_rfc3339()),
                    exit_code: Some(code),
                    output: Some(output),
                };
                let (rec, changed) = ctr.with_rec(|r| {
                    let h = r.state.health.get_or_insert_with(Health::default);
                    let changed = fold(h, result, &probe, in_start_period);
                    (r.clone(), changed)
                });
                if let Some(status) = changed {
                    if let Err(e) = engine.persist(&rec) {
                        tracing::warn!("container {}: {e}", rec.id);
                    }
                    engine.container_event(&rec, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }

    /// Runs the probe once inside the container: (exit code, output). A probe past its
    /// timeout is killed and reported as exit code -1, as Docker does.
    async fn run_probe(&self, ctr: &Arc<Ctr>, probe: &Probe) -> Result<(i64, String), Error> {
        let rec = ctr.record();
        let shim = ctr
            .shim()
            .ok_or_else(|| Error::conflict(format!("container {} is not running", rec.id)))?;
        let cfg = ExecConfig {
            cmd: Some(probe.argv.clone()),
            user: rec.config.user.clone(),
            working_dir: rec.config.working_dir.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let process = crate::bundle::exec_process(&self.bundle_dir(&rec.id), &rec, &cfg, false)?;
        let exec_id = ExecId::generate().as_str().to_string();
        let cmd = probe.argv.join(" ");
        self.container_event(
            &rec,
            &format!("exec_create: {cmd}"),
            &[("execID", exec_id.clone())],
        );
        let timeout = probe.timeout;
        let eid = exec_id.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<(i64, String), String> {
            let (_pid, mut stream) = shim
                .exec(&eid, process, false, false)
                .map_err(|e| format!("OCI runtime exec failed: {e}"))?;
            let deadline = Instant::now() + timeout;
            let mut dec = Decoder::default();
            let mut out = Vec::new();
            let mut more = false;
            let mut buf = [0u8; 8192];
            let mut timed_out = false;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    break;
                }
                let _ = stream.set_read_timeout(Some(left));
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        dec.push(&buf[..n]);
                        while let Ok(Some((_, data))) = dec.next_frame() {
                            let room = MAX_OUTPUT.saturating_sub(out.len());
                            out.extend_from_slice(&data[..data.len().min(room)]);
                            more |= data.len() > room;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        timed_out = true;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if timed_out {
                let _ = shim.exec_kill(&eid, libc::SIGKILL);
                let secs = timeout.as_secs_f64();
                let text = clip(out, more);
                let msg = if text.is_empty() {
                    format!("Health check exceeded timeout ({secs}s)")
                } else {
                    format!("Health check exceeded timeout ({secs}s): {text}")
                };
                return Ok((-1, msg));
            }
            // The stream ends once the process has exited; its exit code follows shortly.
            for _ in 0..100 {
                match shim.exec_state(&eid) {
                    Ok(s) if !s.running => {
                        return Ok((s.exit_code.map(i64::from).unwrap_or(-1), clip(out, more)));
                    }
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => return Err(format!("health check state: {e}")),
                }
            }
            Err("health check has no exit code".into())
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        let (code, output) = res.map_err(Error::system)?;
        self.container_event(
            &rec,
            "exec_die",
            &[("execID", exec_id), ("exitCode", code.to_string())],
        );
        Ok((code, output))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(test: &[&str]) -> ContainerConfig {
        ContainerConfig {
            healthcheck: Some(HealthConfig {
                test: Some(test.iter().map(|s| s.to_string()).collect()),
                interval: Some(2_000_000_000),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn probes_from_configs() {
        let p = probe_of(&cfg(&["CMD", "true", "x"])).unwrap();
        assert_eq!(p.argv, ["true", "x"]);
        assert_eq!(p.interval, Duration::from_secs(2));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 3);
        let p = probe_of(&cfg(&["CMD-SHELL", "test -e /ok"])).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "test -e /ok"]);
        assert!(probe_of(&cfg(&["NONE"])).is_none());
        assert!(probe_of(&cfg(&["CMD"])).is_none());
        assert!(probe_of(&ContainerConfig::default()).is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let h = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert!(validate(&h(&["CMD", "true"])).is_ok());
        assert!(validate(&h(&["NONE"])).is_ok());
        let e = validate(&h(&["BOGUS", "x"])).unwrap_err();
        assert!(e.to_string().contains("BOGUS"), "{e}");
        let e = validate(&h(&["CMD-SHELL"])).unwrap_err();
        assert!(e.to_string().contains("needs a command"), "{e}");
        let mut x = h(&["CMD", "true"]);
        x.interval = Some(10);
        assert!(validate(&x).unwrap_err().to_string().contains("Interval"));
        x.interval = None;
        x.retries = Some(-1);
        assert!(validate(&x).unwrap_err().to_string().contains("Retries"));
    }

    #[test]
    fn merge_takes_unset_fields_from_the_image() {
        let img = HealthConfig {
            test: Some(vec!["CMD".into(), "img".into()]),
            interval: Some(5),
            retries: Some(7),
            ..Default::default()
        };
        let req = HealthConfig {
            interval: Some(9),
            ..Default::default()
        };
        let m = merge(Some(req), Some(&img)).unwrap();
        assert_eq!(m.test.unwrap()[1], "img");
        assert_eq!((m.interval, m.retries), (Some(9), Some(7)));
        assert_eq!(merge(None, Some(&img)), Some(img.clone()));
        assert_eq!(merge(None, None), None);
    }

    fn result(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: Some(code),
            output: Some(format!("code {code}")),
            ..Default::default()
        }
    }

    #[test]
    fn streaks_and_the_start_period() {
        let p = probe_of(&cfg(&["CMD", "x"])).unwrap();
        let mut h = Health {
            status: Some(HealthStatusEnum::STARTING),
            failing_streak: Some(0),
            log: None,
        };
        // Failures in the start period do not count while starting.
        for _ in 0..5 {
            assert_eq!(fold(&mut h, result(1), &p, true), None);
        }
        assert_eq!(h.failing_streak, Some(0));
        assert_eq!(h.log.as_ref().unwrap().len(), MAX_LOG);
        assert_eq!(
            fold(&mut h, result(0), &p, true),
            Some(HealthStatusEnum::HEALTHY)
        );
        // Once healthy, failures count even in the start period; three make it unhealthy.
        assert_eq!(fold(&mut h, result(1), &p, true), None);
        assert_eq!(fold(&mut h, result(2), &p, false), None);
        assert_eq!(
            fold(&mut h, result(-1), &p, false),
            Some(HealthStatusEnum::UNHEALTHY)
        );
        assert_eq!(h.failing_streak, Some(3));
        assert_eq!(h.log.as_ref().unwrap().len(), MAX_LOG);
        assert_eq!(
            h.log.as_ref().unwrap().last().unwrap().output.as_deref(),
            Some("code -1")
        );
        assert_eq!(
            fold(&mut h, result(0), &p, false),
            Some(HealthStatusEnum::HEALTHY)
        );
        assert_eq!(h.failing_streak, Some(0));
    }

    #[test]
    fn output_is_clipped() {
        assert_eq!(clip(b"ok\n".to_vec(), false), "ok\n");
        let long = vec![b'a'; MAX_OUTPUT + 10];
        let s = clip(long, true);
        assert_eq!(s.len(), MAX_OUTPUT + 3);
        assert!(s.ends_with("..."));
    }
}
