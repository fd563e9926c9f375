//! berth-store's error type.
//!
//! Every error names the object it is about (a digest, a table and key, a path) and is
//! lower-case without trailing punctuation, like the rest of berth. [`Error`] converts into
//! the daemon-wide [`berth_types::Error`] with the right HTTP kind.

use std::io;

use berth_types::Digest;

/// What can go wrong in the content store or the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No blob with this digest is in the content store.
    #[error("no such blob: {0}")]
    BlobNotFound(Digest),

    /// Written content does not hash to the digest the writer was told to expect.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of what was written.
        actual: Digest,
    },

    /// Written content is not as long as the writer was told to expect.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob, by its expected digest, or "blob" if none was given.
        what: String,
        /// The size the caller expected.
        expected: u64,
        /// The number of bytes written (so far, if the writer stopped early).
        actual: u64,
    },

    /// A blob on disk no longer hashes to its name.
    #[error("blob {digest} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The blob's name.
        digest: Digest,
        /// What its content hashes to now.
        actual: Digest,
    },

    /// A record asked for by key does not exist.
    #[error("no such {table} record: {key}")]
    NotFound {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
    },

    /// A record that must be new already exists.
    #[error("{table} record already exists: {key}")]
    Exists {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
    },

    /// A container name is already taken by another container.
    #[error(
        "the container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name"
    )]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container holding it.
        id: String,
    },

    /// The database was written by a newer berth whose schema this one does not understand.
    #[error(
        "metadata database {path} has schema version {found}, newer than the {supported} this berthd supports: upgrade berthd or restore a backup"
    )]
    SchemaTooNew {
        /// The database file.
        path: String,
        /// The version recorded in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },

    /// The database engine failed (I/O, corruption, lock held by another process).
    #[error("metadata database: {0}")]
    Db(String),

    /// A stored value is not the JSON its table holds.
    #[error("{table} record {key}: {err}")]
    Decode {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
        /// The JSON error.
        err: serde_json::Error,
    },

    /// A file operation failed; `what` says what was being done and to which path.
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

/// berth-store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// Whether the error says something does not exist (a blob or a record).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::BlobNotFound(_) | Error::NotFound { .. })
    }
}

impl From<Error> for berth_types::Error {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::BlobNotFound(_) | Error::NotFound { .. } => berth_types::Error::NotFound(msg),
            Error::Exists { .. } | Error::NameInUse { .. } => berth_types::Error::Conflict(msg),
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => {
                berth_types::Error::InvalidParameter(msg)
            }
            Error::Corrupt { .. }
            | Error::SchemaTooNew { .. }
            | Error::Db(_)
            | Error::Decode { .. }
            | Error::Io { .. }
            | Error::Msg(_) => berth_types::Error::System(msg),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
