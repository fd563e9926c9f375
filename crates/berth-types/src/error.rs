//! The daemon-wide error kinds, and the HTTP status each maps to.
//!
//! The Docker Engine API tells clients what went wrong through the status code alone (the
//! CLI prints `Error response from daemon: <message>` and decides, for example, whether to
//! pull after a 404). moby classifies every error into one of a few kinds
//! (`errdefs.IsNotFound`, …) and the API layer maps the kind to a status; berth does the same
//! with this enum. Lower layers keep their own precise error types and convert into this one
//! where they know the kind.
//!
//! Messages are lower-case and name the object (`no such image: busybox:latest`), because the
//! message is all the user sees.

use serde::{Deserialize, Serialize};

/// An error as the API reports it: a kind (the HTTP status) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The object does not exist (404): `no such container: web`.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409): a name in use, a running container.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// Credentials are missing or wrong (401), e.g. for a registry.
    #[error("{0}")]
    Unauthorized(String),
    /// The operation is not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing changed (304): starting a running container, stopping a stopped one.
    #[error("{0}")]
    NotModified(String),
    /// The daemon does not implement this (501).
    #[error("{0}")]
    NotImplemented(String),
    /// A dependency is unavailable or the daemon is shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: an I/O error, a bug (500).
    #[error("{0}")]
    System(String),
}

/// The daemon's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status code Docker answers with for this kind.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::InvalidParameter(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotModified(_) => 304,
            Error::NotImplemented(_) => 501,
            Error::Unavailable(_) => 503,
            Error::System(_) => 500,
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound(m)
            | Error::Conflict(m)
            | Error::InvalidParameter(m)
            | Error::Unauthorized(m)
            | Error::Forbidden(m)
            | Error::NotModified(m)
            | Error::NotImplemented(m)
            | Error::Unavailable(m)
            | Error::System(m) => m,
        }
    }

    /// The JSON body the API sends with this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            message: self.message().to_string(),
        }
    }

    /// A [`Error::NotFound`].
    pub fn not_found(m: impl Into<String>) -> Self {
        Error::NotFound(m.into())
    }
    /// A [`Error::Conflict`].
    pub fn conflict(m: impl Into<String>) -> Self {
        Error::Conflict(m.into())
    }
    /// A [`Error::InvalidParameter`].
    pub fn invalid_parameter(m: impl Into<String>) -> Self {
        Error::InvalidParameter(m.into())
    }
    /// A [`Error::Unauthorized`].
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Error::Unauthorized(m.into())
    }
    /// A [`Error::Forbidden`].
    pub fn forbidden(m: impl Into<String>) -> Self {
        Error::Forbidden(m.into())
    }
    /// A [`Error::NotModified`].
    pub fn not_modified(m: impl Into<String>) -> Self {
        Error::NotModified(m.into())
    }
    /// A [`Error::NotImplemented`].
    pub fn not_implemented(m: impl Into<String>) -> Self {
        Error::NotImplemented(m.into())
    }
    /// A [`Error::Unavailable`].
    pub fn unavailable(m: impl Into<String>) -> Self {
        Error::Unavailable(m.into())
    }
    /// A [`Error::System`] (an internal error, 500).
    pub fn system(m: impl Into<String>) -> Self {
        Error::System(m.into())
    }
    /// Same as [`Error::system`]: moby calls this kind both "system" and "internal".
    pub fn internal(m: impl Into<String>) -> Self {
        Error::System(m.into())
    }

    /// Whether this is a [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
    /// Whether this is a [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}

impl From<crate::DigestError> for Error {
    fn from(e: crate::DigestError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

impl From<crate::ReferenceError> for Error {
    fn from(e: crate::ReferenceError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

impl From<crate::IdError> for Error {
    fn from(e: crate::IdError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

impl From<crate::NameError> for Error {
    fn from(e: crate::NameError) -> Self {
        Error::InvalidParameter(e.to_string())
    }
}

/// The JSON body of every error response: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error's message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_docker() {
        let cases = [
            (Error::not_found("no such image: busybox:latest"), 404),
            (Error::conflict("x"), 409),
            (Error::invalid_parameter("x"), 400),
            (Error::unauthorized("x"), 401),
            (Error::forbidden("x"), 403),
            (Error::not_modified("x"), 304),
            (Error::not_implemented("x"), 501),
            (Error::unavailable("x"), 503),
            (Error::system("x"), 500),
            (Error::internal("x"), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status, "{e:?}");
        }
    }

    #[test]
    fn message_and_body() {
        let e = Error::not_found("no such image: busybox:latest");
        assert_eq!(e.to_string(), "no such image: busybox:latest");
        assert!(e.is_not_found() && !e.is_conflict());
        let json = serde_json::to_string(&e.body()).unwrap();
        assert_eq!(json, r#"{"message":"no such image: busybox:latest"}"#);
        let back: ErrorBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back.message, e.message());
    }

    #[test]
    fn parse_errors_are_invalid_parameters() {
        let e: Error = crate::Digest::parse("nope").unwrap_err().into();
        assert_eq!(e.status(), 400);
        let e: Error = crate::Reference::parse("UPPER").unwrap_err().into();
        assert_eq!(e.status(), 400);
    }
}
