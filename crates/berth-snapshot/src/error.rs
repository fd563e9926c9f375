//! The snapshotter's error type.
//!
//! Every error names the object it is about (a snapshot key, a path, a layer entry) so the
//! message alone tells an operator what went wrong. Messages are lower-case and carry no
//! trailing punctuation, so callers can prefix them with their own context.

use std::io;

/// What can go wrong in the snapshotter, in mounts and in layer handling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No snapshot with this key exists.
    #[error("snapshot {0} does not exist")]
    NotFound(String),

    /// A snapshot with this key already exists.
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),

    /// The snapshot exists but is in a state that does not allow the operation
    /// (committing a view, removing a parent, using an active snapshot as a parent, …).
    #[error("snapshot {key}: {reason}")]
    State { key: String, reason: String },

    /// A layer entry was refused: it tries to leave the target directory, is of a kind that
    /// is not allowed, exceeds a limit, or is malformed. `entry` is the path as the archive
    /// spells it.
    #[error("layer entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },

    /// The layer stream itself is unreadable: bad compression, a corrupt or truncated tar.
    #[error("layer: {0}")]
    Archive(String),

    /// A system call or file operation failed; `what` says what was being done and to which object.
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },

    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Msg(String),
}

/// The snapshotter's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Msg`] from anything printable.
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Msg(m.into())
    }

    /// Builds an [`Error::Entry`] for the layer entry `entry`.
    pub fn entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Entry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::State`] for the snapshot `key`.
    pub fn state(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::State {
            key: key.into(),
            reason: reason.into(),
        }
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

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Msg(format!("json: {e}"))
    }
}

/// The `io::Error` behind a pathrs error, keeping the errno where there is one.
pub(crate) fn pathrs_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(n)) => io::Error::from_raw_os_error(n),
        _ => io::Error::other(e.to_string()),
    }
}

/// Runs a lookup again while it fails with `EAGAIN`: `openat2(RESOLVE_IN_ROOT)` asks for a
/// retry when a rename or mount anywhere on the system raced with resolving `..`, which on
/// a busy host is common. Gives up after many attempts.
pub(crate) fn retry_again<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut n = 0;
    loop {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && n < 1000 => {
                n += 1;
                if n > 10 {
                    std::thread::yield_now();
                }
            }
            r => return r,
        }
    }
}
