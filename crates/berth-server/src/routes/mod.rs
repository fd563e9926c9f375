//! The routes, one module per area of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

pub mod archive;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;

/// Unknown paths: Docker answers 404 with `page not found`.
pub async fn not_found() -> Response {
    ApiError::page_not_found().into_response()
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => ApiError::internal(format!("encoding response: {e}")).into_response(),
    }
}

/// 200 with a JSON body.
pub fn ok<T: Serialize>(v: &T) -> Response {
    json(StatusCode::OK, v)
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Parses Docker's Unix-time parameters (`1700000000`, `1700000000.000000001`) into
/// nanoseconds; empty or `0` means unset. (The CLI turns durations and dates into this form.)
pub fn parse_time_ns(s: &str) -> Result<Option<i128>, ApiError> {
    let s = s.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "invalid time {s:?}: expected Unix seconds[.nanoseconds]"
        ))
    };
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = sec.starts_with('-');
    let digits = sec.strip_prefix('-').unwrap_or(sec);
    if digits.is_empty()
        || digits.len() > 18
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let sec: i128 = digits.parse().map_err(|_| bad())?;
    let nanos: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    let v = sec * 1_000_000_000 + nanos;
    Ok(Some(if neg { -v } else { v }))
}

/// Parses a terminal size parameter.
pub fn dim(v: Option<i64>, name: &str) -> Result<u16, ApiError> {
    match v {
        Some(n) if (0..=u16::MAX as i64).contains(&n) => Ok(n as u16),
        Some(n) => Err(ApiError::bad_request(format!("invalid {name} {n}"))),
        None => Err(ApiError::bad_request(format!("missing {name}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time_ns("").unwrap(), None);
        assert_eq!(parse_time_ns("0").unwrap(), None);
        assert_eq!(parse_time_ns("12").unwrap(), Some(12_000_000_000));
        assert_eq!(parse_time_ns("12.5").unwrap(), Some(12_500_000_000));
        assert_eq!(parse_time_ns("1.000000001").unwrap(), Some(1_000_000_001));
        for bad in [
            "x",
            "1.x",
            "1.0000000001",
            "2024-01-01T00:00:00Z",
            "-",
            "1e9",
        ] {
            let e = parse_time_ns(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn dims() {
        assert_eq!(dim(Some(40), "height").unwrap(), 40);
        assert!(
            dim(Some(-1), "height")
                .unwrap_err()
                .message
                .contains("height")
        );
        assert!(dim(None, "width").unwrap_err().message.contains("width"));
    }
}
