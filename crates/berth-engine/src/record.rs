//! A container as berthd remembers it: configuration and state in one JSON document, stored
//! in the metadata database (`containers` table, `ContainerRecord.data`), and the views the
//! API derives from it (`inspect`, the `ps` summary, the status text).
//!
//! The document is versionless JSON: new fields get `#[serde(default)]` so records written
//! by an older berthd still load.

use std::collections::{BTreeMap, HashMap};

use berth_api_types::models::{
    ContainerConfig, ContainerInspectResponse, ContainerState, ContainerStateStatusEnum,
    ContainerSummary, ContainerSummaryStateEnum, HostConfig, MountPoint,
};
use serde::{Deserialize, Serialize};

use crate::clock;

/// A container's lifecycle state, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or started and failed before running).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Exited, waiting for the restart policy's back-off.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process has exited.
    Exited,
    /// Could not be cleaned up.
    Dead,
}

impl Status {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a process exists (running or frozen).
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// The state part of the record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Lifecycle state.
    pub status: Status,
    /// The init's host pid while alive, else 0.
    #[serde(default)]
    pub pid: i64,
    /// The last exit code.
    #[serde(default)]
    pub exit_code: i64,
    /// Whether the last exit was an OOM kill.
    #[serde(default)]
    pub oom_killed: bool,
    /// Why the last start failed.
    #[serde(default)]
    pub error: String,
    /// When it last started (RFC 3339), or Docker's zero time.
    #[serde(default = "zero")]
    pub started_at: String,
    /// When it last exited (RFC 3339), or Docker's zero time.
    #[serde(default = "zero")]
    pub finished_at: String,
    /// Health-check state, for containers with a healthcheck that have run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<berth_api_types::models::Health>,
}

fn zero() -> String {
    clock::ZERO.to_string()
}

/// Everything stored about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// With Docker's leading slash: `/web`.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The process's path (entrypoint or cmd's first word).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The merged configuration (request over image).
    pub config: ContainerConfig,
    /// The host configuration as requested.
    pub host_config: HostConfig,
    /// The image id (`sha256:…`).
    pub image: String,
    /// The image as the user named it (`busybox`).
    pub image_name: String,
    /// State.
    pub state: State,
    /// How many times the restart policy restarted it.
    #[serde(default)]
    pub restart_count: i64,
    /// Set by `stop`; the restart policy leaves such a container alone.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The snapshot holding its root filesystem.
    pub snapshot_key: String,
    /// Files of the container's data directory.
    pub log_path: String,
    /// `/etc/hostname` source.
    pub hostname_path: String,
    /// `/etc/hosts` source.
    pub hosts_path: String,
    /// `/etc/resolv.conf` source.
    pub resolv_conf_path: String,
    /// The mounts, as inspect reports them.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Warnings given at create.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Its place on the bridge network while it runs.
    #[serde(default)]
    pub net: Option<berth_net::Attachment>,
    /// Its user-defined networks by name (see [`crate::usernet`]).
    #[serde(default)]
    pub endpoints: BTreeMap<String, crate::usernet::Endpoint>,
}

impl Record {
    /// The name without the slash.
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    /// Labels of the container.
    pub fn labels(&self) -> HashMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }

    /// `docker ps`'s STATUS column: `Up 3 seconds`, `Exited (0) 2 minutes ago`, ...
    pub fn status_text(&self, now_ns: i128) -> String {
        let since = |t: &str| {
            clock::parse_rfc3339(t)
                .map(|ns| human_duration(now_ns - ns))
                .unwrap_or_default()
        };
        match self.state.status {
            Status::Created => "Created".into(),
            Status::Running => format!(
                "Up {}{}",
                since(&self.state.started_at),
                crate::health::status_suffix(self.state.health.as_ref())
            ),
            Status::Paused => format!("Up {} (Paused)", since(&self.state.started_at)),
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited if self.state.finished_at == clock::ZERO => "Created".into(),
            Status::Exited => format!(
                "Exited ({}) {} ago",
                self.state.exit_code,
                since(&self.state.finished_at)
            ),
            Status::Dead => "Dead".into(),
        }
    }

    /// The command as `ps` shows it.
    pub fn command(&self) -> String {
        std::iter::once(self.path.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `GET /containers/json` entry.
    pub fn summary(&self, now_ns: i128) -> ContainerSummary {
        let state = match self.state.status {
            Status::Created => ContainerSummaryStateEnum::CREATED,
            Status::Running => ContainerSummaryStateEnum::RUNNING,
            Status::Paused => ContainerSummaryStateEnum::PAUSED,
            Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
            Status::Removing => ContainerSummaryStateEnum::REMOVING,
            Status::Exited => ContainerSummaryStateEnum::EXITED,
            Status::Dead => ContainerSummaryStateEnum::DEAD,
        };
        ContainerSummary {
            id: Some(self.id.clone()),
            names: Some(vec![self.name.clone()]),
            image: Some(self.image_name.clone()),
            image_id: Some(self.image.clone()),
            command: Some(self.command()),
            created: clock::parse_rfc3339(&self.created).map(|ns| (ns / 1_000_000_000) as i64),
            ports: Some(Vec::new()),
            labels: Some(self.labels()),
            state: Some(state),
            status: Some(self.status_text(now_ns)),
            mounts: Some(self.mounts.clone()),
            host_config: Some(berth_api_types::models::ContainerSummaryHostConfig {
                network_mode: self
                    .host_config
                    .network_mode
                    .clone()
                    .or(Some("none".into())),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The `GET /containers/{id}/json` document.
    pub fn inspect(&self) -> ContainerInspectResponse {
        let st = &self.state;
        let status = match st.status {
            Status::Created => ContainerStateStatusEnum::CREATED,
            Status::Running => ContainerStateStatusEnum::RUNNING,
            Status::Paused => ContainerStateStatusEnum::PAUSED,
            Status::Restarting => ContainerStateStatusEnum::RESTARTING,
            Status::Removing => ContainerStateStatusEnum::REMOVING,
            Status::Exited => ContainerStateStatusEnum::EXITED,
            Status::Dead => ContainerStateStatusEnum::DEAD,
        };
        ContainerInspectResponse {
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            path: Some(self.path.clone()),
            args: Some(self.args.clone()),
            state: Some(ContainerState {
                status: Some(status),
                running: Some(matches!(st.status, Status::Running | Status::Paused)),
                paused: Some(st.status == Status::Paused),
                restarting: Some(st.status == Status::Restarting),
                oom_killed: Some(st.oom_killed),
                dead: Some(st.status == Status::Dead),
                pid: Some(if st.status.is_alive() { st.pid } else { 0 }),
                exit_code: Some(st.exit_code),
                error: Some(st.error.clone()),
                started_at: Some(st.started_at.clone()),
                finished_at: Some(st.finished_at.clone()),
                health: self.state.health.clone(),
            }),
            image: Some(self.image.clone()),
            resolv_conf_path: Some(self.resolv_conf_path.clone()),
            hostname_path: Some(self.hostname_path.clone()),
            hosts_path: Some(self.hosts_path.clone()),
            log_path: Some(self.log_path.clone()),
            name: Some(self.name.clone()),
            restart_count: Some(self.restart_count),
            driver: Some("overlay".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            host_config: Some(self.host_config.clone()),
            config: Some(self.config.clone()),
            mounts: Some(self.mounts.clone()),
            network_settings: Some(crate::net::settings(self)),
            ..Default::default()
        }
    }
}

/// Go's `units.HumanDuration`, which Docker's status texts use.
pub fn human_duration(ns: i128) -> String {
    let secs = ns / 1_000_000_000;
    let minutes = secs / 60;
    let hours = (ns as f64 / 3.6e12 + 0.5) as i128;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 86_400 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_docker() {
        let s = |n: i128| human_duration(n * 1_000_000_000);
        assert_eq!(s(0), "Less than a second");
        assert_eq!(s(1), "1 second");
        assert_eq!(s(3), "3 seconds");
        assert_eq!(s(61), "About a minute");
        assert_eq!(s(150), "2 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(3 * 3600), "3 hours");
        assert_eq!(s(3 * 86_400), "3 days");
    }
}
