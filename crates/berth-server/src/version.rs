//! API version prefixes: `/v1.41/containers/json` is served as `/containers/json`, after
//! checking the version is one berthd speaks; every response carries Docker's headers
//! (`Api-Version`, `Docker-Experimental`, `Ostype`, `Server`).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_api_types::ApiVersion;

use crate::error::ApiError;

/// The API version a request asked for (from its path prefix), or the current one when it
/// had none. Inserted into every request's extensions for handlers whose answer depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestVersion(pub ApiVersion);

/// The `Server` header value, built once.
#[derive(Debug, Clone)]
pub struct ServerHeader(HeaderValue);

impl ServerHeader {
    /// `Docker/<engine version> (linux)`, as Docker sends it (clients only show it).
    pub fn new(engine_version: &str) -> Self {
        let v = HeaderValue::from_str(&format!("Docker/{engine_version} (linux)"))
            .unwrap_or_else(|_| HeaderValue::from_static("Docker (linux)"));
        ServerHeader(v)
    }
}

/// What a path's version prefix says.
#[derive(Debug, PartialEq, Eq)]
enum Prefix<'a> {
    /// No `/vX.Y` prefix.
    None,
    /// A supported version and the rest of the path (starting with `/`).
    Version(ApiVersion, &'a str),
    /// A version outside what berthd speaks.
    Refused(ApiError),
}

fn split_prefix(path: &str) -> Prefix<'_> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Prefix::None;
    };
    let (v, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // Docker's router only treats `/v[0-9.]+/` as a version; anything else is a plain path.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Prefix::None;
    }
    let Ok(version) = v.parse::<ApiVersion>() else {
        return Prefix::Refused(ApiError::bad_request(format!("invalid API version {v:?}")));
    };
    if version < ApiVersion::MIN {
        return Prefix::Refused(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            ApiVersion::MIN
        )));
    }
    if version > ApiVersion::CURRENT {
        return Prefix::Refused(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            ApiVersion::CURRENT
        )));
    }
    Prefix::Version(version, tail)
}

/// Strips and checks the version prefix, then adds Docker's standard response headers.
pub async fn headers(State(server): State<ServerHeader>, mut req: Request, next: Next) -> Response {
    let mut version = ApiVersion::CURRENT;
    let path = req.uri().path().to_string();
    let mut resp = match split_prefix(&path) {
        Prefix::Refused(e) => e.into_response(),
        p => {
            if let Prefix::Version(v, tail) = p {
                version = v;
                let pq = match req.uri().query() {
                    Some(q) => format!("{tail}?{q}"),
                    None => tail.to_string(),
                };
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = pq.parse().ok();
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
            req.extensions_mut().insert(RequestVersion(version));
            next.run(req).await
        }
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ApiVersion::CURRENT.to_string()) {
        h.insert("Api-Version", v);
    }
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", server.0.clone());
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(split_prefix("/containers/json"), Prefix::None);
        assert_eq!(split_prefix("/version"), Prefix::None);
        assert_eq!(split_prefix("/vx/version"), Prefix::None);
        assert_eq!(
            split_prefix("/v1.41/containers/json"),
            Prefix::Version(ApiVersion::new(1, 41), "/containers/json")
        );
        assert_eq!(
            split_prefix("/v1.24/_ping"),
            Prefix::Version(ApiVersion::MIN, "/_ping")
        );
        assert_eq!(
            split_prefix("/v1.50"),
            Prefix::Version(ApiVersion::CURRENT, "/")
        );
        let Prefix::Refused(e) = split_prefix("/v1.12/version") else {
            panic!()
        };
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("client version 1.12 is too old"),
            "{}",
            e.message
        );
        let Prefix::Refused(e) = split_prefix("/v1.99/version") else {
            panic!()
        };
        assert!(
            e.message
                .contains("is too new. Maximum supported API version is 1.50")
        );
        assert!(matches!(split_prefix("/v1..2/x"), Prefix::Refused(_)));
    }
}
