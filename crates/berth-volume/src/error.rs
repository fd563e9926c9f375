//! The crate's errors. Every message names the volume (or the filter) it is about, in
//! Docker's words where the CLI shows them, and [`From<Error>`] for [`berth_types::Error`]
//! gives each its HTTP status: 404 for a missing volume, 409 for one in use, 400 for a bad
//! name, option or filter, 500 for the rest.

use std::io;
use std::path::PathBuf;

/// What can go wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No volume has this name (Docker's wording).
    #[error("get {name}: no such volume")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The name does not match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    #[error(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName {
        /// The name refused.
        name: String,
    },
    /// An option the local driver does not know.
    #[error("create {name}: invalid option key: {key:?}")]
    UnknownOption {
        /// The volume.
        name: String,
        /// The option refused.
        key: String,
    },
    /// An option with a value that cannot work (a bind without a device, a relative path…).
    #[error("create {name}: invalid option {key:?}: {reason}")]
    BadOption {
        /// The volume.
        name: String,
        /// The option.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A driver other than `local`.
    #[error("create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found")]
    UnknownDriver {
        /// The volume.
        name: String,
        /// The driver asked for.
        driver: String,
    },
    /// The volume exists with another driver.
    #[error("create {name}: volume already exists and is attached to driver \"local\"")]
    DriverConflict {
        /// The volume.
        name: String,
    },
    /// Containers use the volume (Docker's wording).
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The ids of the containers using it.
        users: Vec<String>,
    },
    /// A filter key or value the operation does not support.
    #[error("invalid filter '{0}'")]
    InvalidFilter(String),
    /// Mounting or unmounting the volume's file system failed.
    #[error("{op} volume {name} at {}: {err}", path.display())]
    Mount {
        /// `mount` or `unmount`.
        op: &'static str,
        /// The volume.
        name: String,
        /// The mount point.
        path: PathBuf,
        /// The kernel's answer.
        err: io::Error,
    },
    /// The copy-up source path leaves the container's root file system through a symlink.
    #[error(
        "copy image content into volume {name}: {path} escapes the container's root file system"
    )]
    Escape {
        /// The volume.
        name: String,
        /// The path in the container asked for.
        path: String,
    },
    /// The volume needs a mount (it has options) and is not mounted.
    #[error("volume {name} is not mounted")]
    NotMounted {
        /// The volume.
        name: String,
    },
    /// A file-system operation failed.
    #[error("volume {name}: {what}: {err}")]
    Io {
        /// The volume (empty for the store itself).
        name: String,
        /// What was being done.
        what: String,
        /// The error.
        err: io::Error,
    },
    /// The metadata database failed, or holds a record this build cannot read.
    #[error("volume {name}: {err}")]
    Store {
        /// The volume (empty for a scan).
        name: String,
        /// The error.
        err: berth_store::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(name: &str, what: impl Into<String>, err: impl Into<io::Error>) -> Self {
        Error::Io {
            name: name.to_string(),
            what: what.into(),
            err: err.into(),
        }
    }

    pub(crate) fn store(name: &str, err: berth_store::Error) -> Self {
        Error::Store {
            name: name.to_string(),
            err,
        }
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

impl From<Error> for berth_types::Error {
    fn from(e: Error) -> Self {
        let m = e.to_string();
        match e {
            Error::NotFound { .. } => berth_types::Error::not_found(m),
            Error::InUse { .. } | Error::DriverConflict { .. } => berth_types::Error::conflict(m),
            Error::InvalidName { .. }
            | Error::UnknownOption { .. }
            | Error::BadOption { .. }
            | Error::InvalidFilter(_)
            | Error::Escape { .. } => berth_types::Error::invalid_parameter(m),
            Error::UnknownDriver { .. } => berth_types::Error::not_found(m),
            Error::Mount { .. }
            | Error::NotMounted { .. }
            | Error::Io { .. }
            | Error::Store { .. } => berth_types::Error::system(m),
        }
    }
}

/// The `io::Error` behind a pathrs error, keeping the errno where there is one.
pub(crate) fn pathrs_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(n)) => io::Error::from_raw_os_error(n),
        _ => io::Error::other(e.to_string()),
    }
}
