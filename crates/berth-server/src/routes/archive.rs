//! `/containers/{id}/archive` (`docker cp`): `HEAD` stats a path (the answer is in the
//! `X-Docker-Container-Path-Stat` header), `GET` streams it as a tar, `PUT` extracts an
//! uploaded tar into a directory.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_api_types::archive::{ContainerPathStat, PATH_STAT_HEADER};
use futures_util::StreamExt;

use crate::backend::{ArchivePutOptions, Backend};
use crate::error::{ApiError, ApiResult};
use crate::extract::RawQuery;

/// The archive routes.
pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new().route(
        "/containers/{id}/archive",
        get(get_archive::<B>)
            .head(head_archive::<B>)
            .put(put_archive::<B>),
    )
}

/// The last value of `k`, if non-empty.
fn param(q: &[(String, String)], k: &str) -> Option<String> {
    q.iter()
        .rev()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Docker's boolean query values: `0`, `no`, `false`, `none` and empty are false.
fn flag(q: &[(String, String)], k: &str) -> bool {
    param(q, k).is_some_and(|v| !matches!(v.as_str(), "0" | "no" | "false" | "none"))
}

fn path_param(q: &[(String, String)]) -> Result<String, ApiError> {
    param(q, "path").ok_or_else(|| ApiError::bad_request("path is required"))
}

fn with_stat(mut r: Response, stat: &ContainerPathStat) -> ApiResult<Response> {
    let v = HeaderValue::from_str(&stat.encode())
        .map_err(|e| ApiError::internal(format!("encoding the path stat: {e}")))?;
    r.headers_mut().insert(PATH_STAT_HEADER, v);
    Ok(r)
}

async fn head_archive<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let stat = b.archive_stat(&id, &path).await?;
    with_stat(StatusCode::OK.into_response(), &stat)
}

async fn get_archive<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let path = path_param(&q)?;
    let (stat, stream) = b.archive_get(&id, &path).await?;
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    with_stat(r, &stat)
}

async fn put_archive<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let opts = ArchivePutOptions {
        path: path_param(&q)?,
        no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: flag(&q, "copyUIDGID"),
    };
    // The body reaches the backend through a channel, so that what the backend does not
    // read (it refused the request before the end: a missing path, a bad tar) is still read
    // and dropped here, within bounds, before the answer goes out. A client still writing
    // its upload would otherwise get a broken pipe instead of the error message (docker cp
    // does: "write: broken pipe").
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let mut body = req.into_body().into_data_stream();
    let feeder = tokio::spawn(async move {
        let mut feeding = true;
        let mut dropped = 0usize;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) if feeding => {
                    if let Err(tokio::sync::mpsc::error::SendError(Ok(c))) = tx.send(Ok(c)).await {
                        feeding = false;
                        dropped += c.len();
                    }
                }
                Ok(c) => dropped += c.len(),
                Err(e) => {
                    if feeding {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    }
                    break;
                }
            }
            if dropped > DRAIN_LIMIT {
                break;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let res = b.archive_put(&id, opts, Box::pin(stream)).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), feeder).await;
    res?;
    Ok(StatusCode::OK.into_response())
}

/// How much of a refused upload is read and dropped before answering.
const DRAIN_LIMIT: usize = 16 << 20;
