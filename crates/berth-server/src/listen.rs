//! Serving the API: unix sockets (mode 0660, group `berth` when it exists) and TCP, which is
//! only offered with TLS and verified client certificates (an unauthenticated TCP socket
//! would hand root to anyone on the network).
//!
//! Every connection is served by hyper's HTTP/1.1 server through a [`Takeover`] slot, so the
//! attach and exec handlers can hijack it as Docker does.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::backend::BoxConn;
use crate::hijack::Takeover;

/// How long [`serve`] waits for open requests after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors binding a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The `-H` address is not one berthd understands.
    #[error("invalid listen address {0:?}: use unix:///path or tcp://host:port")]
    BadAddress(String),
    /// TCP without TLS client verification is refused.
    #[error(
        "refusing to listen on {0}: tcp listeners need TLS with client certificate verification (--tlsverify with --tlscacert, --tlscert and --tlskey)"
    )]
    TcpWithoutTls(String),
    /// A live daemon already serves the socket.
    #[error("another daemon is already listening on {0}")]
    InUse(PathBuf),
    /// The path exists and is not a socket.
    #[error("refusing to replace {0}: it exists and is not a socket")]
    NotASocket(PathBuf),
    /// TLS material could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// Binding failed.
    #[error("listening on {what}: {source}")]
    Io {
        /// The address.
        what: String,
        /// The cause.
        source: io::Error,
    },
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> ListenError {
    let what = what.to_string();
    move |source| ListenError::Io { what, source }
}

/// PEM files for a TLS listener; clients must present a certificate signed by `ca`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// CA certificates that sign client certificates.
    pub ca: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TlsConfig {
    /// Builds the rustls acceptor: TLS 1.2+, ring crypto, client certificates required.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ListenError> {
        let tls = |what: &Path, e: &dyn std::fmt::Display| {
            ListenError::Tls(format!("{}: {e}", what.display()))
        };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| tls(&self.cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls(&self.cert, &e))?;
        if certs.is_empty() {
            return Err(tls(&self.cert, &"no certificate in file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| tls(&self.key, &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&self.ca).map_err(|e| tls(&self.ca, &e))? {
            let ca = ca.map_err(|e| tls(&self.ca, &e))?;
            roots.add(ca).map_err(|e| tls(&self.ca, &e))?;
        }
        if roots.is_empty() {
            return Err(tls(&self.ca, &"no CA certificate in file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| ListenError::Tls(format!("client verifier: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ListenError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| ListenError::Tls(format!("server certificate: {e}")))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// A bound listener.
pub enum Listener {
    /// A unix socket berthd created (and removes when done).
    Unix {
        /// The socket.
        listener: UnixListener,
        /// Where it is.
        path: PathBuf,
    },
    /// A TCP socket served with TLS and client verification.
    Tls {
        /// The socket.
        listener: TcpListener,
        /// The handshake configuration.
        acceptor: tokio_rustls::TlsAcceptor,
    },
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Unix { path, .. } => write!(f, "unix://{}", path.display()),
            Listener::Tls { listener, .. } => match listener.local_addr() {
                Ok(a) => write!(f, "tcp://{a} (tls)"),
                Err(_) => write!(f, "tcp://? (tls)"),
            },
        }
    }
}

impl Listener {
    /// The TCP address a TLS listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tls { listener, .. } => listener.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }

    /// Binds one `-H` address: `unix:///path` (or a bare absolute path) or `tcp://host:port`
    /// (which needs `tls`).
    pub async fn bind(addr: &str, tls: Option<&TlsConfig>) -> Result<Listener, ListenError> {
        if let Some(p) = addr.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(ListenError::BadAddress(addr.to_string()));
            }
            return Listener::unix(Path::new(p));
        }
        if addr.starts_with('/') {
            return Listener::unix(Path::new(addr));
        }
        if let Some(hp) = addr.strip_prefix("tcp://") {
            let hp = hp.trim_end_matches('/');
            if hp.is_empty() || !hp.contains(':') {
                return Err(ListenError::BadAddress(addr.to_string()));
            }
            let Some(tls) = tls else {
                return Err(ListenError::TcpWithoutTls(addr.to_string()));
            };
            let acceptor = tls.acceptor()?;
            let listener = TcpListener::bind(hp).await.map_err(io_err(addr))?;
            return Ok(Listener::Tls { listener, acceptor });
        }
        Err(ListenError::BadAddress(addr.to_string()))
    }

    /// Binds a unix socket at `path` with mode 0660 and, when a `berth` group exists, that
    /// group. A stale socket (nobody accepting) is replaced; a live one or a non-socket file is
    /// refused. The socket is bound under a temporary name and renamed into place, so it is
    /// never reachable with looser permissions.
    pub fn unix(path: &Path) -> Result<Listener, ListenError> {
        let shown = path.display().to_string();
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ListenError::InUse(path.to_path_buf()));
                }
                tracing::info!("removing stale socket {shown}");
            }
            Ok(_) => return Err(ListenError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&shown)(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(io_err(tmp.display()))?;
        let setup = || -> io::Result<()> {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))?;
            if let Some(gid) = group_id("berth") {
                std::os::unix::fs::chown(&tmp, None, Some(gid))?;
            }
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = setup() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&shown)(e));
        }
        Ok(Listener::Unix {
            listener,
            path: path.to_path_buf(),
        })
    }
}

/// The gid of group `name` from /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let data = std::fs::read_to_string("/etc/group").ok()?;
    data.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
}

/// Serves `app` on every listener until `shutdown` resolves, then stops accepting, lets open
/// requests finish (up to [`SHUTDOWN_GRACE`]; endless streams are cut) and removes the unix
/// sockets it created. Hijacked sessions (attach, exec) are not waited for.
pub async fn serve(
    listeners: Vec<Listener>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept = JoinSet::new();
    let mut sockets = Vec::new();
    for l in listeners {
        tracing::info!("serving the API on {l:?}");
        if let Listener::Unix { path, .. } = &l {
            sockets.push(path.clone());
        }
        accept.spawn(accept_loop(app.clone(), stop_rx.clone(), l));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    while let Some(r) = accept.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(io::Error::other(e)),
        }
    }
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    result
}

/// Accepts connections until told to stop, then drains them. TLS handshakes run in the
/// connection's task, so a slow client does not hold up others.
async fn accept_loop(
    app: Router,
    mut stop: watch::Receiver<bool>,
    listener: Listener,
) -> io::Result<()> {
    let mut conns = JoinSet::new();
    loop {
        let accepted = async {
            match &listener {
                Listener::Unix { listener, .. } => listener
                    .accept()
                    .await
                    .map(|(s, _)| Accepted::Ready(Box::new(s))),
                Listener::Tls { listener, acceptor } => listener
                    .accept()
                    .await
                    .map(|(s, peer)| Accepted::Tls(acceptor.clone(), s, peer)),
            }
        };
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = accepted => match r {
                Ok(Accepted::Ready(c)) => {
                    conns.spawn(serve_conn(app.clone(), c, stop.clone()));
                }
                Ok(Accepted::Tls(acceptor, s, peer)) => {
                    let app = app.clone();
                    let stop = stop.clone();
                    conns.spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(s)).await {
                            Ok(Ok(tls)) => serve_conn(app, Box::new(tls), stop).await,
                            Ok(Err(e)) => tracing::info!("tls handshake with {peer} failed: {e}"),
                            Err(_) => tracing::info!("tls handshake with {peer} timed out"),
                        }
                    });
                }
                Err(e) if is_transient(&e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            },
        }
    }
    drain(conns).await;
    Ok(())
}

enum Accepted {
    Ready(BoxConn),
    Tls(
        tokio_rustls::TlsAcceptor,
        tokio::net::TcpStream,
        std::net::SocketAddr,
    ),
}

fn is_transient(e: &io::Error) -> bool {
    // Running out of file descriptors or a client gone before accept must not stop the server.
    !matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::NotConnected | io::ErrorKind::PermissionDenied
    )
}

async fn drain(mut conns: JoinSet<()>) {
    let all = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::info!("cutting connections still open after shutdown");
    }
}

/// Serves one connection with HTTP/1.1; on shutdown, finishes the current request and closes.
async fn serve_conn(app: Router, conn: BoxConn, mut stop: watch::Receiver<bool>) {
    let (takeover, io) = Takeover::new(conn);
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(takeover.clone());
        app.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60))
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
