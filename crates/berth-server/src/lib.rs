//! berthd's HTTP layer: the Docker Engine API over HTTP/1.1.
//!
//! Routes live in [`routes`], one module per area; they parse requests (Docker's query and
//! body quirks included), call a [`Backend`], and turn its results and errors into Docker's
//! responses (`{"message": …}` bodies with Docker's status codes). Paths are served both
//! unversioned and under `/v1.24/` … `/v1.50/`. Attach and exec start take the connection
//! over (Docker's hijack, with or without `Upgrade: tcp`) and hand it to a [`Session`].
//! [`listen`] binds the unix sockets (and TLS-only TCP) berthd serves on.
//!
//! This crate defines the backend traits and never imports the engine.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

pub mod backend;
pub mod error;
mod extract;
mod hijack;
pub mod listen;
pub mod routes;
mod stream;
mod version;

pub use backend::{Backend, BoxConn, ByteStream, LogsOptions, Session};
pub use error::ApiError;
pub use listen::{Listener, TlsConfig, serve};
pub use version::RequestVersion;

/// Largest JSON body accepted (create bodies are a few KiB; this leaves room and refuses
/// abuse with a 413). Streamed bodies (image import) are not limited.
pub const MAX_JSON_BODY: usize = 10 * 1024 * 1024;

/// The full API for `backend`: every route, the version prefixes, Docker's response headers,
/// the JSON 404, and a guard that turns a panicking handler into a 500.
pub fn app<B: Backend>(backend: Arc<B>) -> Router {
    let engine_version = backend
        .version()
        .version
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
    let server = version::ServerHeader::new(&engine_version);
    let routes = Router::new()
        .merge(routes::system::routes::<B>())
        .merge(routes::containers::routes::<B>())
        .merge(routes::archive::routes::<B>())
        .merge(routes::exec::routes::<B>())
        .merge(routes::images::routes::<B>())
        .merge(routes::volumes::routes::<B>())
        .merge(routes::networks::routes::<B>())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .with_state(backend);
    // Layers on a router run after its routing, so the version prefix is stripped by an
    // outer router whose every request goes to the inner one.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(
            server,
            version::headers,
        ))
        .layer(axum::middleware::from_fn(catch_panic))
}

/// Runs the handler, answering 500 instead of dropping the connection when it panics.
/// (Only effective where panics unwind; a `panic = "abort"` build still aborts.)
async fn catch_panic(req: Request, next: Next) -> Response {
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!("handler panicked: {what}");
            ApiError::internal(format!("internal error: handler panicked: {what}")).into_response()
        }
    }
}
