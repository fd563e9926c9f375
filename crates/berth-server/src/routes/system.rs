//! `/_ping`, `/version`, `/info`, `/events`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::{Filters, query};

use super::{ok, parse_time_ns};
use crate::backend::Backend;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, RawQuery};
use crate::stream::{ErrorLine, json_lines};

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version::<B>))
        .route("/info", get(info::<B>))
        .route("/events", get(events::<B>))
        .route("/system/df", get(df::<B>))
        // `docker system prune` also prunes the build cache: berth has none (yet), so there
        // is nothing to remove. (`/networks/prune` is the networks routes'.)
        .route("/build/prune", post(nothing_to_prune::<CachePruned>))
}

/// An empty prune report.
trait Pruned: serde::Serialize + Default + Send + 'static {
    const FILTERS: &'static [&'static str];
}

#[derive(serde::Serialize, Default)]
struct CachePruned {
    #[serde(rename = "CachesDeleted")]
    caches_deleted: Vec<String>,
    #[serde(rename = "SpaceReclaimed")]
    space_reclaimed: u64,
}

impl Pruned for CachePruned {
    const FILTERS: &'static [&'static str] = &[
        "until",
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
        "label",
        "label!",
    ];
}

async fn nothing_to_prune<P: Pruned>(RawQuery(params): RawQuery) -> ApiResult<Response> {
    let raw = params
        .iter()
        .rev()
        .find(|(k, _)| k == "filters")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let filters = Filters::parse(raw).map_err(ApiError::bad_request)?;
    filters.check(P::FILTERS).map_err(ApiError::bad_request)?;
    Ok(ok(&P::default()))
}

/// `GET /system/df[?type=image&type=container…]`.
async fn df<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(params): RawQuery,
) -> ApiResult<Response> {
    let types: Vec<String> = params
        .iter()
        .filter(|(k, v)| k == "type" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    Ok(ok(&b.disk_usage(types).await?))
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
