//! Request extractors with Docker's error shape: a malformed query or body is a 400 whose
//! message names the parameter or field.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::MAX_JSON_BODY;
use crate::error::ApiError;

/// Query parameters.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        let v = serde_path_to_error::deserialize(de).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid query parameter {}: {}",
                e.path(),
                e.inner()
            ))
        })?;
        Ok(Q(v))
    }
}

/// The raw query pairs, for parameters Docker repeats.
pub struct RawQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RawQuery(berth_api_types::query::pairs(
            parts.uri.query().unwrap_or(""),
        )))
    }
}

/// A JSON body, refused when malformed, too large, or carrying fields the API does not have;
/// the raw JSON is kept for checks on which fields were set.
pub struct JsonBody<T> {
    pub value: T,
    pub raw: serde_json::Value,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_limited(req.into_body(), MAX_JSON_BODY).await?;
        parse_json(&bytes)
    }
}

/// Reads a whole body, refusing more than `limit` bytes with a 413.
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {limit} bytes"),
            ))
        }
        Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
    }
}

/// Parses a JSON body: empty means `{}`; malformed JSON is refused with its line and column,
/// a wrong type with the field's path, and fields the API does not have by their path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<JsonBody<T>, ApiError> {
    parse_json_allowing(bytes, &[])
}

/// Like [`parse_json`], also accepting (and ignoring) the fields in `extra`: fields Docker's
/// own clients send that the API's published schema lacks (e.g. `Detach` in an exec create).
pub fn parse_json_allowing<T: DeserializeOwned>(
    bytes: &[u8],
    extra: &[&str],
) -> Result<JsonBody<T>, ApiError> {
    let text = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        &b"{}"[..]
    } else {
        bytes
    };
    let raw: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))?;
    let mut unknown = Vec::new();
    let de = &mut serde_json::Deserializer::from_slice(text);
    let mut track = |p: serde_ignored::Path<'_>| unknown.push(field_path(&p));
    let tracked = serde_ignored::Deserializer::new(de, &mut track);
    let value = serde_path_to_error::deserialize(tracked).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid request body: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid request body: {path}: {}", e.inner()))
        }
    })?;
    unknown.retain(|f| !extra.contains(&f.as_str()));
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown field{} in request body: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    Ok(JsonBody { value, raw })
}

/// A field's path as users write it: `HostConfig.Memory`, `Env[2]`.
fn field_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}
