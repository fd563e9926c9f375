//! `/containers/{id}/exec` and `/exec/…`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::models::{ExecConfig, ExecStartConfig};
use berth_api_types::query;

use super::{dim, json, ok};
use crate::MAX_JSON_BODY;
use crate::backend::Backend;
use crate::error::ApiResult;
use crate::extract::{Q, parse_json, parse_json_allowing, read_limited};
use crate::hijack::hijack;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/containers/{id}/exec", post(create::<B>))
        .route("/exec/{id}/start", post(start::<B>))
        .route("/exec/{id}/resize", post(resize::<B>))
        .route("/exec/{id}/json", get(inspect::<B>))
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let bytes = read_limited(req.into_body(), MAX_JSON_BODY).await?;
    // The docker CLI sends its `ExecOptions`, which has a `Detach` the schema lacks.
    let body = parse_json_allowing::<ExecConfig>(&bytes, &["Detach"])?;
    let r = b.exec_create(&id, body.value).await?;
    // The stubs' `IdResponse` serializes as `id`; Docker sends `Id`.
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": r.id }),
    ))
}

async fn start<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(body, MAX_JSON_BODY).await?;
    let cfg: ExecStartConfig = parse_json(&bytes)?.value;
    match b.exec_start(&id, cfg).await? {
        None => Ok(StatusCode::OK.into_response()),
        Some(session) => hijack(&parts.extensions, &parts.headers, session),
    }
}

async fn resize<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::Resize>,
) -> ApiResult<Response> {
    b.exec_resize(&id, dim(q.h, "height")?, dim(q.w, "width")?)
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(&b.exec_inspect(&id).await?))
}
