//! `/volumes/…`: list, create, inspect, remove, prune.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use berth_api_types::ApiVersion;
use berth_api_types::models::VolumeCreateRequest;
use berth_api_types::{Filters, query};
use serde::Deserialize;

use super::{json, no_content, ok};
use crate::backend::Backend;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Q};
use crate::version::RequestVersion;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/volumes", get(list::<B>))
        .route("/volumes/create", post(create::<B>))
        .route("/volumes/prune", post(prune::<B>))
        .route("/volumes/{name}", get(inspect::<B>).delete(remove::<B>))
}

/// `DELETE /volumes/{name}` query.
#[derive(Debug, Default, Deserialize)]
struct Remove {
    #[serde(default, deserialize_with = "query::de_bool")]
    force: bool,
}

fn filters(q: Option<&str>, allowed: &[&str]) -> Result<Filters, ApiError> {
    let f = Filters::parse(q.unwrap_or("")).map_err(ApiError::bad_request)?;
    f.check(allowed).map_err(ApiError::bad_request)?;
    Ok(f)
}

async fn list<B: Backend>(State(b): State<Arc<B>>, Q(q): Q<query::Prune>) -> ApiResult<Response> {
    let f = filters(
        q.filters.as_deref(),
        &["dangling", "driver", "label", "name"],
    )?;
    Ok(ok(&b.volume_list(f).await?))
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    body: JsonBody<VolumeCreateRequest>,
) -> ApiResult<Response> {
    if body.value.cluster_volume_spec.is_some() {
        return Err(ApiError::bad_request(
            "ClusterVolumeSpec: cluster volumes need swarm mode, which berth does not have",
        ));
    }
    let v = b.volume_create(body.value).await?;
    Ok(json(StatusCode::CREATED, &v))
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(&b.volume_inspect(&name).await?))
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(name): Path<String>,
    Q(q): Q<Remove>,
) -> ApiResult<Response> {
    b.volume_remove(&name, q.force).await?;
    Ok(no_content())
}

async fn prune<B: Backend>(
    State(b): State<Arc<B>>,
    version: Option<axum::Extension<RequestVersion>>,
    Q(q): Q<query::Prune>,
) -> ApiResult<Response> {
    let mut f = filters(q.filters.as_deref(), &["label", "label!", "all"])?;
    // Before API 1.42 prune removed every unused volume, named ones included.
    let v = version.map_or(ApiVersion::CURRENT, |e| e.0.0);
    if v < ApiVersion::new(1, 42) && !f.contains("all") {
        f.0.insert("all".to_string(), vec!["true".to_string()]);
    }
    Ok(ok(&b.volume_prune(f).await?))
}
