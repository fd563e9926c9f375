//! `/networks/…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use berth_api_types::{Filters, query};

use super::{no_content, ok};
use crate::backend::Backend;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Q, parse_json_allowing, read_limited};

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/networks", get(list::<B>))
        .route("/networks/create", post(create::<B>))
        .route("/networks/prune", post(prune::<B>))
        .route("/networks/{id}", get(inspect::<B>).delete(remove::<B>))
        .route("/networks/{id}/connect", post(connect::<B>))
        .route("/networks/{id}/disconnect", post(disconnect::<B>))
}

fn filters(q: &query::Prune) -> Result<Filters, ApiError> {
    Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)
}

async fn list<B: Backend>(State(b): State<Arc<B>>, Q(q): Q<query::Prune>) -> ApiResult<Response> {
    Ok(ok(&b.network_list(filters(&q)?).await?))
}

/// `verbose` and `scope` are accepted and ignored (local networks only).
#[derive(Debug, Default, serde::Deserialize)]
struct InspectQuery {
    #[allow(dead_code)]
    verbose: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(_q): Q<InspectQuery>,
) -> ApiResult<Response> {
    Ok(ok(&b.network_inspect(&id).await?))
}

async fn create<B: Backend>(State(b): State<Arc<B>>, body: Body) -> ApiResult<Response> {
    let bytes = read_limited(body, crate::MAX_JSON_BODY).await?;
    // Older clients send CheckDuplicate (names are always unique here).
    let req: JsonBody<NetworkCreateRequest> = parse_json_allowing(&bytes, &["CheckDuplicate"])?;
    if req.value.name.is_empty() {
        return Err(ApiError::bad_request("network name is required"));
    }
    Ok(super::json(
        StatusCode::CREATED,
        &b.network_create(req.value).await?,
    ))
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    b.network_remove(&id).await?;
    Ok(no_content())
}

async fn prune<B: Backend>(State(b): State<Arc<B>>, Q(q): Q<query::Prune>) -> ApiResult<Response> {
    Ok(ok(&b.network_prune(filters(&q)?).await?))
}

async fn connect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: JsonBody<NetworkConnectRequest>,
) -> ApiResult<Response> {
    if body.value.container.is_empty() {
        return Err(ApiError::bad_request("Container: a container is required"));
    }
    b.network_connect(&id, body.value).await?;
    // Docker answers 200 with an empty body.
    Ok(StatusCode::OK.into_response())
}

async fn disconnect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: JsonBody<NetworkDisconnectRequest>,
) -> ApiResult<Response> {
    if body.value.container.is_empty() {
        return Err(ApiError::bad_request("Container: a container is required"));
    }
    b.network_disconnect(&id, body.value).await?;
    // Docker answers 200 with an empty body.
    Ok(StatusCode::OK.into_response())
}
