//! The shim's own diagnostics: warning and error lines appended to `<state-dir>/shim.log`.
//!
//! A tiny logger rather than `tracing`: the shim logs rarely, and every page of code it keeps
//! resident is paid once per container.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

static LOG: OnceLock<File> = OnceLock::new();

/// Opens the log file (appending). Lines logged before, or if this fails, are dropped.
pub fn init(path: &Path) {
    if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = LOG.set(f);
    }
}

/// Appends one line: time, level, message.
pub fn log(level: &str, args: fmt::Arguments<'_>) {
    if let Some(mut f) = LOG.get() {
        let line = format!(
            "{} {level} {args}\n",
            crate::logs::rfc3339_nano(SystemTime::now())
        );
        let _ = f.write_all(line.as_bytes());
    }
}

/// Logs a warning.
macro_rules! warning {
    ($($t:tt)*) => { $crate::diag::log("warning", format_args!($($t)*)) };
}
pub(crate) use warning;
