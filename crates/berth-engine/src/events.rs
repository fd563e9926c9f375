//! The daemon's event log (`GET /events`): every change is published once, kept in a
//! bounded ring for `since` queries and fanned out live to subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api_types::Filters;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::clock;

/// How many past events `since` can reach back to.
const RING: usize = 1024;

/// One event, in the shape of Docker's `EventMessage` (plus the legacy `status`/`id`/`from`
/// fields that older clients read for container and image events).
#[derive(Debug, Clone)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`, `daemon`.
    pub typ: &'static str,
    /// `create`, `start`, `die`, `destroy`, `tag`, ...
    pub action: String,
    /// The object's id.
    pub id: String,
    /// Attributes: `name`, `image`, labels, `exitCode`, ...
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_ns: i128,
}

impl Event {
    /// The JSON document `/events` streams.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.typ,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": (self.time_ns / 1_000_000_000) as i64,
            "timeNano": self.time_ns as i64,
        });
        if matches!(self.typ, "container" | "image") {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            if let Some(img) = self.attributes.get("image") {
                v["from"] = json!(img);
            }
        }
        v
    }

    /// Whether the event passes `/events` filters (`type`, `event`, `container`, `image`,
    /// `label`, `network`, `volume`, `daemon`).
    pub fn matches(&self, f: &Filters) -> bool {
        let any = |name: &str, vals: &[&str]| {
            let want = f.get(name);
            want.is_empty() || want.iter().any(|w| vals.contains(&w.as_str()))
        };
        let action_base = self.action.split(':').next().unwrap_or(&self.action);
        if !any("type", &[self.typ]) || !any("event", &[self.action.as_str(), action_base]) {
            return false;
        }
        let name = self
            .attributes
            .get("name")
            .map(String::as_str)
            .unwrap_or("");
        let short = self.id.get(..12).unwrap_or(&self.id);
        let ident = [self.id.as_str(), short, name];
        if f.contains("container") && (self.typ != "container" || !any("container", &ident)) {
            return false;
        }
        if f.contains("image") {
            let img = self
                .attributes
                .get("image")
                .map(String::as_str)
                .unwrap_or("");
            let ok = match self.typ {
                "image" => any("image", &[self.id.as_str(), name, img]),
                "container" => any("image", &[img]),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        for t in ["network", "volume"] {
            if f.contains(t) && (self.typ != t || !any(t, &ident)) {
                return false;
            }
        }
        let labels: std::collections::HashMap<String, String> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        f.match_labels("label", &labels)
    }
}

/// The event bus.
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            live: broadcast::channel(RING).0,
        }
    }
}

impl Events {
    /// Records and broadcasts an event.
    pub fn publish(
        &self,
        typ: &'static str,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            typ,
            action: action.into(),
            id: id.into(),
            attributes,
            time_ns: clock::now_ns(),
        };
        tracing::debug!(typ, action = %ev.action, id = %ev.id, "event");
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
        // Sent under the ring's lock, so a subscriber's snapshot and its live feed neither
        // overlap nor leave a gap.
        let _ = self.live.send(ev);
    }

    /// Past events at or after `since_ns` and a receiver for everything after them.
    pub fn subscribe(&self, since_ns: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let past = match since_ns {
            Some(s) => ring.iter().filter(|e| e.time_ns >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(typ: &'static str, action: &str, name: &str) -> Event {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.to_string());
        a.insert("image".to_string(), "busybox".to_string());
        a.insert("com.example".to_string(), "x".to_string());
        Event {
            typ,
            action: action.into(),
            id: "a".repeat(64),
            attributes: a,
            time_ns: 5,
        }
    }

    #[test]
    fn filters() {
        let f = |s: &str| Filters::parse(s).unwrap();
        let e = ev("container", "exec_start: sh", "web");
        assert!(e.matches(&f(r#"{"event":["exec_start"]}"#)));
        assert!(e.matches(&f(r#"{"container":["web"],"type":["container"]}"#)));
        assert!(!e.matches(&f(r#"{"container":["db"]}"#)));
        assert!(e.matches(&f(r#"{"image":["busybox"]}"#)));
        assert!(e.matches(&f(r#"{"label":["com.example=x"]}"#)));
        assert!(!e.matches(&f(r#"{"label":["com.example=y"]}"#)));
        assert!(!e.matches(&f(r#"{"type":["image"]}"#)));
        let j = e.to_json();
        assert_eq!(j["Actor"]["Attributes"]["name"], "web");
        assert_eq!(j["status"], "exec_start: sh");
    }

    #[test]
    fn since_replays_and_live_follows() {
        let bus = Events::default();
        bus.publish("container", "create", "1", BTreeMap::new());
        let (past, mut rx) = bus.subscribe(Some(0));
        assert_eq!(past.len(), 1);
        bus.publish("container", "start", "1", BTreeMap::new());
        assert_eq!(rx.try_recv().unwrap().action, "start");
        let (past, _) = bus.subscribe(None);
        assert!(past.is_empty());
    }
}
