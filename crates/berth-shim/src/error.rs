//! The library's error type.

use std::io;

/// Errors of the shim client and of command-line parsing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or I/O on a named object failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the object (e.g. "connecting to /run/x/shim.sock").
        what: String,
        #[source]
        source: io::Error,
    },
    /// The shim carried out the request and reports that it failed (e.g. the runtime's message).
    #[error("{0}")]
    Shim(String),
    /// The shim's reply could not be understood.
    #[error("shim protocol: {0}")]
    Protocol(String),
    /// The shim's command line is invalid.
    #[error("berth-shim arguments: {0}")]
    Args(String),
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
