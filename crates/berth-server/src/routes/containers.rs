//! `/containers/…`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_api_types::models::{ContainerConfig, ContainerCreateBody, ContainerUpdateBody};
use berth_api_types::{Filters, query};

use super::{dim, no_content, ok, parse_time_ns};
use crate::backend::{Backend, CommitOptions, CreateOptions, LogsOptions};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Q, RawQuery, parse_json, read_limited};
use crate::hijack::hijack;
use crate::stream::{ErrorLine, json_lines, logs_body};

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/containers/create", post(create::<B>))
        .route("/containers/json", get(list::<B>))
        .route("/containers/prune", post(prune::<B>))
        .route("/containers/{id}/json", get(inspect::<B>))
        .route("/containers/{id}/start", post(start::<B>))
        .route("/containers/{id}/stop", post(stop::<B>))
        .route("/containers/{id}/restart", post(restart::<B>))
        .route("/containers/{id}/kill", post(kill::<B>))
        .route("/containers/{id}/pause", post(pause::<B>))
        .route("/containers/{id}/unpause", post(unpause::<B>))
        .route("/containers/{id}/wait", post(wait::<B>))
        .route("/containers/{id}", delete(remove::<B>))
        .route("/containers/{id}/logs", get(logs::<B>))
        .route("/containers/{id}/attach", post(attach::<B>))
        .route("/containers/{id}/resize", post(resize::<B>))
        .route("/containers/{id}/top", get(top::<B>))
        .route("/containers/{id}/stats", get(stats::<B>))
        .route("/containers/{id}/rename", post(rename::<B>))
        .route("/containers/{id}/update", post(update::<B>))
        .route("/containers/{id}/changes", get(changes::<B>))
        .route("/containers/{id}/export", get(export::<B>))
        .route("/commit", post(commit::<B>))
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    Q(q): Q<query::ContainerCreate>,
    body: JsonBody<ContainerCreateBody>,
) -> ApiResult<Response> {
    if let Some(p) = q.platform.as_deref().filter(|p| !p.is_empty())
        && !p.starts_with("linux")
    {
        return Err(ApiError::bad_request(format!(
            "platform {p:?} is not supported: berth runs linux containers"
        )));
    }
    let opts = CreateOptions {
        name: q.name.filter(|n| !n.is_empty()),
        platform: q.platform.filter(|p| !p.is_empty()),
    };
    let r = b.create(opts, body.value, body.raw).await?;
    Ok(super::json(StatusCode::CREATED, &r))
}

async fn list<B: Backend>(
    State(b): State<Arc<B>>,
    Q(q): Q<query::ContainerList>,
) -> ApiResult<Response> {
    let filters =
        Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    filters
        .check(&[
            "ancestor",
            "before",
            "expose",
            "exited",
            "health",
            "id",
            "isolation",
            "is-task",
            "label",
            "name",
            "network",
            "publish",
            "since",
            "status",
            "volume",
        ])
        .map_err(ApiError::bad_request)?;
    Ok(ok(&b.list(q, filters).await?))
}

async fn prune<B: Backend>(State(b): State<Arc<B>>, Q(q): Q<query::Prune>) -> ApiResult<Response> {
    let filters =
        Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    filters
        .check(&["until", "label", "label!"])
        .map_err(ApiError::bad_request)?;
    Ok(ok(&b.prune(filters).await?))
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerInspect>,
) -> ApiResult<Response> {
    Ok(ok(&b.inspect(&id, q.size).await?))
}

fn modified(changed: bool) -> Response {
    if changed {
        no_content()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    }
}

async fn start<B: Backend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(modified(b.start(&id).await?))
}

async fn stop<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerStop>,
) -> ApiResult<Response> {
    Ok(modified(
        b.stop(&id, q.signal.filter(|s| !s.is_empty()), q.t).await?,
    ))
}

async fn restart<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerStop>,
) -> ApiResult<Response> {
    b.restart(&id, q.signal.filter(|s| !s.is_empty()), q.t)
        .await?;
    Ok(no_content())
}

async fn kill<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerKill>,
) -> ApiResult<Response> {
    b.kill(&id, q.signal.filter(|s| !s.is_empty())).await?;
    Ok(no_content())
}

async fn pause<B: Backend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> ApiResult<Response> {
    b.pause(&id).await?;
    Ok(no_content())
}

async fn unpause<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    b.unpause(&id).await?;
    Ok(no_content())
}

/// The wait is registered before the response headers go out (and they go out at once), so a
/// client may start the container right after and never miss its exit.
async fn wait<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerWait>,
) -> ApiResult<Response> {
    if let Some(c) = q.condition.as_deref()
        && !c.is_empty()
        && !matches!(c, "not-running" | "next-exit" | "removed")
    {
        return Err(ApiError::bad_request(format!("invalid condition: {c:?}")));
    }
    let fut = b.wait(&id, q.condition.filter(|c| !c.is_empty())).await?;
    let stream = futures_util::stream::once(async move {
        let body = match fut.await {
            Ok(r) => serde_json::to_vec(&r).unwrap_or_default(),
            Err(e) => serde_json::to_vec(
                &serde_json::json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
            )
            .unwrap_or_default(),
        };
        let mut body = body;
        body.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(body))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerRemove>,
) -> ApiResult<Response> {
    if q.link {
        return Err(ApiError::bad_request(
            "removing links (link=true) is not supported",
        ));
    }
    b.remove(&id, q.force, q.v).await?;
    Ok(no_content())
}

async fn logs<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerLogs>,
) -> ApiResult<Response> {
    if !q.stdout && !q.stderr {
        return Err(ApiError::bad_request("you must choose at least one stream"));
    }
    let tail = match q.tail.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => return Err(ApiError::bad_request(format!("invalid tail {t:?}"))),
        },
    };
    let opts = LogsOptions {
        follow: q.follow,
        stdout: q.stdout,
        stderr: q.stderr,
        since_ns: q.since.as_deref().map(parse_time_ns).transpose()?.flatten(),
        until_ns: q.until.as_deref().map(parse_time_ns).transpose()?.flatten(),
        tail,
    };
    let logs = b.logs(&id, opts).await?;
    let tty = logs.tty;
    let mut r = Response::new(logs_body(logs, q.timestamps));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    Ok(r)
}

async fn attach<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerAttach>,
    req: Request,
) -> ApiResult<Response> {
    let session = b.attach(&id, q).await?;
    hijack(req.extensions(), req.headers(), session)
}

async fn resize<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::Resize>,
) -> ApiResult<Response> {
    b.resize(&id, dim(q.h, "height")?, dim(q.w, "width")?)
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn top<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerTop>,
) -> ApiResult<Response> {
    Ok(ok(&b.top(&id, q.ps_args.filter(|a| !a.is_empty())).await?))
}

async fn stats<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerStats>,
) -> ApiResult<Response> {
    if q.one_shot && q.stream {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let stream = b.stats(&id, q.stream, q.one_shot).await?;
    let mut r = Response::new(json_lines(stream, ErrorLine::Message));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn rename<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Q(q): Q<query::ContainerRename>,
) -> ApiResult<Response> {
    let name = q
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing new name"))?;
    b.rename(&id, &name).await?;
    Ok(no_content())
}

async fn update<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: JsonBody<ContainerUpdateBody>,
) -> ApiResult<Response> {
    Ok(ok(&b.update(&id, body.value, body.raw).await?))
}

async fn changes<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(&b.changes(&id).await?))
}

async fn export<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let stream = b.export(&id).await?;
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// Docker's boolean query values: empty means the default; `0`, `no`, `false`, `none` are
/// false; anything else is true.
fn bool_or(v: Option<&str>, default: bool) -> bool {
    match v {
        None | Some("") => default,
        Some(s) => !matches!(s, "0" | "no" | "false" | "none"),
    }
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, with an optional
/// container config body (`null` or empty: none).
async fn commit<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(params): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
    let container = nonempty("container")
        .ok_or_else(|| ApiError::bad_request("container is required (container=ID)"))?;
    let bytes = read_limited(req.into_body(), crate::MAX_JSON_BODY).await?;
    let trimmed = bytes.trim_ascii();
    let config = if trimmed.is_empty() || trimmed == b"null" {
        None
    } else {
        Some(parse_json::<ContainerConfig>(trimmed)?.value)
    };
    let opts = CommitOptions {
        container,
        repo: nonempty("repo"),
        tag: nonempty("tag"),
        comment: nonempty("comment"),
        author: nonempty("author"),
        pause: bool_or(get("pause").as_deref(), true),
        changes: params
            .iter()
            .filter(|(n, v)| n == "changes" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        config,
    };
    // The model serializes its field as `id`; Docker sends `Id`.
    let r = b.commit(opts).await?;
    Ok(super::json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": r.id }),
    ))
}
