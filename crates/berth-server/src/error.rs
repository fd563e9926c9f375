//! Errors as Docker sends them: a status code and `{"message": "…"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_types::Error;

/// An error response: the status and the message of the `{"message": …}` body.
///
/// Most come from a backend's [`Error`], whose kind decides the status; the HTTP layer adds
/// a few of its own (413 for an oversized body, 404 for an unknown path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message the client shows (`Error response from daemon: <message>`).
    pub message: String,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: e.message().to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An error with `status` and `msg`.
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            message: msg.into(),
        }
    }

    /// A 400 with `msg`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, msg)
    }

    /// A 500 with `msg`.
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }

    /// The 404 Docker sends for a path it does not serve.
    pub fn page_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        if status.is_server_error() {
            tracing::warn!("request failed ({status}): {}", self.message);
        } else {
            tracing::debug!("request refused ({status}): {}", self.message);
        }
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        let body = serde_json::json!({ "message": self.message }).to_string();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
