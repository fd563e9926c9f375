//! The runtime's log: where `--log` points, in runc's text or JSON line format.
//!
//! containerd and podman read this file after a failed command and show its last error to
//! the user, so errors are written as `{"level":"error","msg":"…","time":"…"}` lines when
//! `--log-format json` is given, exactly the shape runc produces.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

use crate::utils::rfc3339_nano;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
    max: Level,
}

/// Installs the global logger. With no `path`, lines go to stderr (warnings and errors only
/// unless `debug`).
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let out: Box<dyn Write + Send> = match path {
        Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
        None => Box::new(std::io::stderr()),
    };
    let logger = Logger {
        out: Mutex::new(out),
        format,
        max: if debug { Level::DEBUG } else { Level::WARN },
    };
    let _ = tracing::subscriber::set_global_default(logger);
    Ok(())
}

/// Writes one error line to the log (used for the final error of a failed command).
pub fn error(msg: &str) {
    tracing::error!("{msg}");
}

struct MsgVisitor(String);

impl Visit for MsgVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.record_debug(field, &value);
        }
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl Subscriber for Logger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut v = MsgVisitor(String::new());
        event.record(&mut v);
        let level = level_name(event.metadata().level());
        let time = rfc3339_nano(SystemTime::now());
        let line = match self.format {
            Format::Json => {
                let obj = serde_json::json!({"level": level, "msg": v.0, "time": time});
                format!("{obj}\n")
            }
            Format::Text => format!(
                "time=\"{time}\" level={level} msg=\"{}\"\n",
                v.0.escape_default()
            ),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}
