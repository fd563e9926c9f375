//! `/images/…`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::{Filters, query};
use futures_util::TryStreamExt;

use super::ok;
use crate::backend::{Backend, BootstrapOptions, ImportOptions, PullOptions};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, RawQuery};
use crate::stream::{ErrorLine, json_lines};

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/images/json", get(list::<B>))
        .route("/images/create", post(create::<B>))
        .route("/images/prune", post(prune::<B>))
        .route("/berth/images/bootstrap", post(bootstrap::<B>))
        .route("/images/get", get(save_many::<B>))
        .route("/images/load", post(load::<B>))
        .route(
            "/images/{*rest}",
            get(get_image::<B>)
                .post(post_image::<B>)
                .delete(delete_image::<B>),
        )
}

async fn list<B: Backend>(
    State(b): State<Arc<B>>,
    Q(q): Q<query::ImageList>,
) -> ApiResult<Response> {
    let filters =
        Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    filters
        .check(&["before", "dangling", "label", "reference", "since", "until"])
        .map_err(ApiError::bad_request)?;
    Ok(ok(&b.image_list(q, filters).await?))
}

async fn prune<B: Backend>(State(b): State<Arc<B>>, Q(q): Q<query::Prune>) -> ApiResult<Response> {
    let filters =
        Filters::parse(q.filters.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    filters
        .check(&["dangling", "until", "label", "label!"])
        .map_err(ApiError::bad_request)?;
    Ok(ok(&b.image_prune(filters).await?))
}

/// `POST /images/create`: `fromSrc=-` imports the body; `fromImage` pulls.
async fn create<B: Backend>(
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
            .filter(|v| !v.is_empty())
    };
    let platform = get("platform");
    let stream = match (get("fromSrc"), get("fromImage")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "fromSrc and fromImage are mutually exclusive",
            ));
        }
        (Some(src), None) => {
            if src != "-" {
                return Err(ApiError::bad_request(format!(
                    "importing from {src:?} is not supported: send the tarball in the body with fromSrc=-"
                )));
            }
            let opts = ImportOptions {
                repo: get("repo"),
                tag: get("tag"),
                message: get("message"),
                changes: params
                    .iter()
                    .filter(|(n, v)| n == "changes" && !v.is_empty())
                    .map(|(_, v)| v.clone())
                    .collect(),
                platform,
            };
            let body = req
                .into_body()
                .into_data_stream()
                .map_err(|e| std::io::Error::other(e.to_string()));
            b.image_import(opts, Box::pin(body)).await?
        }
        (None, Some(image)) => {
            let registry_auth = req
                .headers()
                .get("X-Registry-Auth")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .filter(|v| !v.is_empty());
            let opts = PullOptions {
                image,
                tag: get("tag"),
                platform,
                registry_auth,
            };
            b.image_pull(opts).await?
        }
        (None, None) => return Err(ApiError::bad_request("fromSrc or fromImage is required")),
    };
    let mut r = Response::new(json_lines(stream, ErrorLine::Progress));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `POST /berth/images/bootstrap?template=busybox|debian[&tag=REF][&suite=S][&mirror=URL]`:
/// berth's own endpoint for base images made from the host's packages.
async fn bootstrap<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(params): RawQuery,
) -> ApiResult<Response> {
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let template = get("template")
        .ok_or_else(|| ApiError::bad_request("template is required (busybox or debian)"))?;
    let opts = BootstrapOptions {
        template,
        reference: get("tag"),
        suite: get("suite"),
        mirror: get("mirror"),
    };
    let stream = b.image_bootstrap(opts).await?;
    let mut r = Response::new(json_lines(stream, ErrorLine::Progress));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Image names contain slashes, so `/images/{name}/json` and friends are matched by suffix.
fn split(rest: &str) -> (&str, &str) {
    for suffix in ["/json", "/history", "/tag", "/push", "/get"] {
        if let Some(name) = rest.strip_suffix(suffix) {
            return (name, &suffix[1..]);
        }
    }
    (rest, "")
}

async fn get_image<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    RawQuery(params): RawQuery,
) -> ApiResult<Response> {
    match split(&rest) {
        (name, "get") => save(b, vec![name.to_string()], &params).await,
        (name, "json") => Ok(ok(&b.image_inspect_json(name).await?)),
        (name, "history") => Ok(ok(&b.image_history(name).await?)),
        _ => Ok(super::not_found().await),
    }
}

/// `GET /images/get?names=a&names=b`: several images in one archive. berth also takes
/// `format=oci` (a pure OCI image layout, without Docker's `manifest.json`).
async fn save_many<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(params): RawQuery,
) -> ApiResult<Response> {
    let names: Vec<String> = params
        .iter()
        .filter(|(k, v)| k == "names" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("names is required"));
    }
    save(b, names, &params).await
}

async fn save<B: Backend>(
    b: Arc<B>,
    names: Vec<String>,
    params: &[(String, String)],
) -> ApiResult<Response> {
    let oci = match params
        .iter()
        .rev()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
    {
        None | Some("") | Some("docker") => false,
        Some("oci") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown archive format {f:?}: use docker or oci"
            )));
        }
    };
    let stream = b.image_save(names, oci).await?;
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `POST /images/load[?quiet=1]`: the body is a `docker save` or OCI layout archive.
async fn load<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(params): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let quiet = params
        .iter()
        .rev()
        .find(|(k, _)| k == "quiet")
        .is_some_and(|(_, v)| !matches!(v.as_str(), "" | "0" | "false" | "no"));
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let stream = b.image_load(quiet, Box::pin(body)).await?;
    let mut r = Response::new(json_lines(stream, ErrorLine::Progress));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn post_image<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    Q(q): Q<query::ImageTag>,
) -> ApiResult<Response> {
    match split(&rest) {
        (name, "tag") => {
            let repo = q
                .repo
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ApiError::bad_request("repository name (repo) is required"))?;
            b.image_tag(name, &repo, q.tag.as_deref().filter(|t| !t.is_empty()))
                .await?;
            Ok(StatusCode::CREATED.into_response())
        }
        _ => Ok(super::not_found().await),
    }
}

async fn delete_image<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    Q(q): Q<query::ImageRemove>,
) -> ApiResult<Response> {
    Ok(ok(&b.image_remove(&rest, q.force, q.noprune).await?))
}
