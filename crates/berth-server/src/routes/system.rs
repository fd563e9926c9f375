//! `/_ping`, `/version`, `/info`, `/events`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_api_types::{Filters, query};

use super::{ok, parse_time_ns};
use crate::backend::Backend;
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::stream::{ErrorLine, json_lines};

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version::<B>))
        .route("/info", get(info::<B>))
        .route("/events", get(events::<B>))
}

async fn ping() -> Response {
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    r
}

async fn version<B: Backend>(State(b): State<Arc<B>>) -> Response {
    ok(&b.version())
}

async fn info<B: Backend>(State(b): State<Arc<B>>) -> ApiResult<Response> {
    Ok(ok(&b.info().await?))
}

async fn events<B: Backend>(
    State(b): State<Arc<B>>,
    Q(q): Q<query::Events>,
) -> ApiResult<Response> {
    let filters =
        Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    filters
        .check(&[
            "config",
            "container",
            "daemon",
            "event",
            "image",
            "label",
            "network",
            "node",
            "plugin",
            "scope",
            "secret",
            "service",
            "type",
            "volume",
        ])
        .map_err(ApiError::bad_request)?;
    let since = q.since.as_deref().map(parse_time_ns).transpose()?.flatten();
    let until = q.until.as_deref().map(parse_time_ns).transpose()?.flatten();
    let stream = b.events(since, until, filters)?;
    let mut r = Response::new(json_lines(stream, ErrorLine::Message));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
