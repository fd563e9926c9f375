//! berth-image's error type: every message names the image, reference or change it is about,
//! and [`Error`] converts into the daemon-wide [`berth_types::Error`] with the right kind.

use std::io;

/// What can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image matches a reference or id (`no such image: busybox:latest`).
    #[error("no such image: {0}")]
    NotFound(String),

    /// The request is malformed: a bad `--change`, reference, manifest or layer.
    #[error("{0}")]
    InvalidParameter(String),

    /// The operation conflicts with the current state (an image in use, an ambiguous prefix).
    #[error("{0}")]
    Conflict(String),

    /// The content store or metadata database failed.
    #[error(transparent)]
    Store(#[from] berth_store::Error),

    /// The snapshotter failed; a layer it refused is reported as [`Error::InvalidParameter`].
    #[error(transparent)]
    Snapshot(berth_snapshot::Error),

    /// A file or process operation failed; `what` says what was being done and to which object.
    #[error("{what}: {err}")]
    Io {
        /// The operation and its object.
        what: String,
        /// The underlying error.
        err: io::Error,
    },

    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Msg(String),
}

/// berth-image's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<berth_snapshot::Error> for Error {
    fn from(e: berth_snapshot::Error) -> Self {
        match e {
            // A layer that cannot be read or applied is bad input, not a daemon failure.
            berth_snapshot::Error::Entry { .. } | berth_snapshot::Error::Archive(_) => {
                Error::InvalidParameter(format!("invalid layer: {e}"))
            }
            e => Error::Snapshot(e),
        }
    }
}

impl From<berth_types::ReferenceError> for Error {
    fn from(e: berth_types::ReferenceError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

/// Attaches a description of the operation to I/O errors.
pub(crate) trait Context<T> {
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

impl Error {
    /// Whether the error says an image (or something it needs) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::Store(e) => e.is_not_found(),
            Error::Snapshot(berth_snapshot::Error::NotFound(_)) => true,
            _ => false,
        }
    }
}

impl From<Error> for berth_types::Error {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NotFound(_) => berth_types::Error::NotFound(msg),
            Error::InvalidParameter(_) => berth_types::Error::InvalidParameter(msg),
            Error::Conflict(_) => berth_types::Error::Conflict(msg),
            Error::Store(e) => e.into(),
            Error::Snapshot(berth_snapshot::Error::NotFound(_)) => {
                berth_types::Error::NotFound(msg)
            }
            Error::Snapshot(berth_snapshot::Error::AlreadyExists(_)) => {
                berth_types::Error::Conflict(msg)
            }
            Error::Snapshot(_) | Error::Io { .. } | Error::Msg(_) => {
                berth_types::Error::System(msg)
            }
        }
    }
}
