//! Hijacking a connection for attach and exec start, as Docker does: the handler takes the
//! transport away from the HTTP server, writes the response head itself — `101 UPGRADED`
//! when the client sent `Upgrade: tcp`, a bare `200 OK` for old clients that did not — and
//! from then on the session owns raw bytes both ways.
//!
//! To make that possible every connection's transport sits in a shared slot ([`Takeover`]):
//! hyper reads and writes through it, and a handler may empty it. Once emptied, hyper sees
//! end-of-file and its writes are discarded, so it closes its side quietly. Like Docker, bytes
//! the server had already read past the request head are not passed on (clients wait for the
//! response head before sending).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api_types::ApiVersion;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::backend::{BoxConn, Session};
use crate::error::{ApiError, ApiResult};
use crate::version::RequestVersion;

/// A connection's transport, in a slot a handler can take it from.
#[derive(Clone)]
pub(crate) struct Takeover(Arc<Mutex<Option<BoxConn>>>);

impl Takeover {
    /// Wraps `conn`; returns the handle for handlers and the I/O object to give hyper.
    pub(crate) fn new(conn: BoxConn) -> (Takeover, SharedIo) {
        let slot = Arc::new(Mutex::new(Some(conn)));
        (Takeover(slot.clone()), SharedIo(slot))
    }

    fn take(&self) -> Option<BoxConn> {
        lock(&self.0).take()
    }
}

fn lock(m: &Mutex<Option<BoxConn>>) -> MutexGuard<'_, Option<BoxConn>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The I/O object hyper serves: the transport while it is in the slot, then EOF and a sink.
pub(crate) struct SharedIo(Arc<Mutex<Option<BoxConn>>>);

impl AsyncRead for SharedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match lock(&self.0).as_mut() {
            Some(c) => Pin::new(c).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match lock(&self.0).as_mut() {
            Some(c) => Pin::new(c).poll_write(cx, buf),
            None => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match lock(&self.0).as_mut() {
            Some(c) => Pin::new(c).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match lock(&self.0).as_mut() {
            Some(c) => Pin::new(c).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// The content type of a hijacked stream: raw for a tty, else multiplexed (API ≥ 1.42; older
/// clients were told "raw-stream" for both).
fn content_type(tty: bool, version: ApiVersion) -> &'static str {
    if tty || version < ApiVersion::new(1, 42) {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The response head Docker writes on a hijacked connection.
pub(crate) fn response_head(upgrade: bool, content_type: &str) -> String {
    if upgrade {
        format!(
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n")
    }
}

/// Takes the request's connection over and runs `session` on it. The returned response only
/// tells hyper the request is done; the client sees the head written here.
pub(crate) fn hijack(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    session: Box<dyn Session>,
) -> ApiResult<Response> {
    let version = extensions
        .get::<RequestVersion>()
        .map_or(ApiVersion::CURRENT, |v| v.0);
    let conn = extensions
        .get::<Takeover>()
        .and_then(Takeover::take)
        .ok_or_else(|| ApiError::internal("this connection cannot be hijacked"))?;
    let upgrade = headers.contains_key(axum::http::header::UPGRADE);
    let head = response_head(upgrade, content_type(session.tty(), version));
    tokio::spawn(async move {
        let mut conn = conn;
        if let Err(e) = async {
            conn.write_all(head.as_bytes()).await?;
            conn.flush().await
        }
        .await
        {
            tracing::debug!("hijacked client left before the response head: {e}");
            return;
        }
        session.run(conn).await;
    });
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        assert_eq!(
            response_head(true, "application/vnd.docker.raw-stream"),
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        );
        assert!(response_head(false, "x").starts_with("HTTP/1.1 200 OK\r\n"));
        assert_eq!(
            content_type(false, ApiVersion::new(1, 41)),
            "application/vnd.docker.raw-stream"
        );
        assert_eq!(
            content_type(false, ApiVersion::CURRENT),
            "application/vnd.docker.multiplexed-stream"
        );
        assert_eq!(
            content_type(true, ApiVersion::CURRENT),
            "application/vnd.docker.raw-stream"
        );
    }
}
