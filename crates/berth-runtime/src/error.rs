//! The runtime's error type.
//!
//! Every error names the object it is about (a config field, a path, a container id) so that
//! the message alone tells an operator what to fix. Messages are lower-case and carry no
//! trailing punctuation, so callers can prefix them with their own context.

use std::io;

/// What can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is unreadable, malformed, or asks for something invalid.
    /// The message starts with the JSON path of the offending field.
    #[error("config.json: {0}")]
    Config(String),

    /// No container with this id exists under the runtime root.
    #[error("container {0} does not exist")]
    NotExist(String),

    /// A container with this id already exists under the runtime root.
    #[error("container {0} already exists")]
    Exists(String),

    /// The container is in a state that does not allow the operation.
    #[error("container {id} is {status}: {reason}")]
    State {
        id: String,
        status: String,
        reason: String,
    },

    /// A system call or file operation failed; `what` says what was being done and to which object.
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },

    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Msg(String),
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Msg`] from anything printable.
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Msg(m.into())
    }

    /// Builds an [`Error::Config`] naming the field at `path`.
    pub fn config(path: impl AsRef<str>, m: impl AsRef<str>) -> Self {
        Error::Config(format!("{}: {}", path.as_ref(), m.as_ref()))
    }

    /// The errno behind this error, if it came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }
}

/// Attaches a description of the operation to low-level errors.
pub trait Context<T> {
    /// Wraps the error with `what`, computed only on failure.
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|err| Error::Io {
            what: what().into(),
            err,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Io {
            what: what().into(),
            err: e.into(),
        })
    }
}

impl<T> Context<T> for std::result::Result<T, pathrs::error::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Io {
            what: what().into(),
            err: match e.kind() {
                pathrs::error::ErrorKind::OsError(Some(n)) => io::Error::from_raw_os_error(n),
                _ => io::Error::other(e.to_string()),
            },
        })
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Msg(format!("json: {e}"))
    }
}
