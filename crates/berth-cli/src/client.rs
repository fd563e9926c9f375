//! A small blocking HTTP/1.1 client for the Docker Engine API over a unix socket.
//!
//! One connection per request (a unix socket connect costs microseconds, and it keeps the
//! client free of pooling); bodies are read by `Content-Length`, chunked encoding or until
//! end of file. Streaming endpoints (attach, exec start) are *hijacked*: after the response
//! head the raw socket carries the container's streams in both directions.
//!
//! The API version is negotiated lazily with `GET /_ping` before the first real request, as
//! docker's CLI does: the lower of the server's `API-Version` and ours
//! ([`ApiVersion::CURRENT`]); `DOCKER_API_VERSION` pins it instead.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use berth_api_types::ApiVersion;
use serde::Serialize;
use serde_json::Value;

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached (daemon not running, wrong path, permissions).
    #[error(
        "cannot connect to the berth daemon at unix://{}: {source}. Is the daemon running?",
        path.display()
    )]
    Connect { path: PathBuf, source: io::Error },
    /// The daemon answered with an error status; `message` is its `message` field.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The connection broke or the daemon spoke something that is not HTTP/1.1.
    #[error("error during connect: {0}")]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A host we cannot speak to (only `unix://` is supported).
    #[error("unsupported host {0:?}: only unix:// sockets are supported")]
    Host(String),
}

impl Error {
    /// The HTTP status when the daemon refused the request.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The daemon's address and the negotiated API version.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    version: Option<ApiVersion>,
}

/// A response whose head has been read; the body is read through [`Response::body`].
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// A response body: length-delimited, chunked, or until end of file.
pub struct Body {
    rd: BufReader<UnixStream>,
    kind: BodyKind,
}

enum BodyKind {
    Length(u64),
    Chunked { left: u64, done: bool },
    Eof,
}

impl Client {
    /// A client for `host` (`unix:///path` or a bare absolute path).
    pub fn new(host: &str) -> Result<Client> {
        let path = if let Some(p) = host.strip_prefix("unix://") {
            p
        } else if host.starts_with('/') {
            host
        } else {
            return Err(Error::Host(host.to_string()));
        };
        if path.is_empty() {
            return Err(Error::Host(host.to_string()));
        }
        let version = std::env::var("DOCKER_API_VERSION")
            .ok()
            .and_then(|v| v.parse().ok());
        Ok(Client {
            path: PathBuf::from(path),
            version,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn connect(&self) -> Result<UnixStream> {
        UnixStream::connect(&self.path).map_err(|source| Error::Connect {
            path: self.path.clone(),
            source,
        })
    }

    /// The negotiated API version (pings the daemon the first time).
    pub fn version(&mut self) -> Result<ApiVersion> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        let resp = self.raw("GET", "/_ping", &[], None)?;
        let server = resp
            .header("api-version")
            .and_then(|v| v.parse::<ApiVersion>().ok());
        let mut body = resp.body;
        let _ = body.read_all();
        // A daemon that does not say is assumed to be old (docker's fallback is 1.24).
        let v = server.map_or(ApiVersion::MIN, |s| s.min(ApiVersion::CURRENT));
        self.version = Some(v);
        Ok(v)
    }

    /// Sends one request and reads the response head, without versioning the path.
    fn raw(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Response> {
        let mut s = self.connect()?;
        write_head(&mut s, method, path, extra, body.map(|b| (b.0, b.1.len())))?;
        if let Some((_, b)) = body {
            s.write_all(b)?;
        }
        read_response(s)
    }

    fn versioned(&mut self, path: &str) -> Result<String> {
        let v = self.version()?;
        Ok(format!("/v{v}{path}"))
    }

    /// A request with an optional body; error statuses become [`Error::Daemon`].
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response> {
        let p = self.versioned(path)?;
        let resp = self.raw(method, &p, &[], body)?;
        check(resp)
    }

    /// A request whose body is streamed from `src` with chunked encoding (image import).
    pub fn request_stream(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        src: &mut dyn Read,
    ) -> Result<Response> {
        let p = self.versioned(path)?;
        let mut s = self.connect()?;
        let head = format!(
            "{method} {p} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-cli\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes())?;
        let mut buf = vec![0u8; 64 * 1024];
        let sent = (|| -> io::Result<()> {
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io::Error::other(e)),
                };
                s.write_all(format!("{n:x}\r\n").as_bytes())?;
                s.write_all(&buf[..n])?;
                s.write_all(b"\r\n")?;
            }
            s.write_all(b"0\r\n\r\n")
        })();
        match sent {
            Ok(()) => check(read_response(s)?),
            // The daemon may answer (a 404, a refused upload) and close before taking the
            // whole body: its answer is the news, not the broken pipe.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                match read_response(s) {
                    Ok(resp) => check(resp),
                    Err(_) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A `HEAD` request: the status and headers only (a body is never read, whatever the
    /// headers announce).
    pub fn head(&mut self, path: &str) -> Result<(u16, Vec<(String, String)>)> {
        let p = self.versioned(path)?;
        let resp = self.raw("HEAD", &p, &[], None)?;
        Ok((resp.status, resp.headers))
    }

    /// GET returning parsed JSON.
    pub fn get_json(&mut self, path: &str) -> Result<Value> {
        let mut r = self.request("GET", path, None)?;
        r.body.json()
    }

    /// POST with a JSON body (or none), returning the parsed JSON answer (`Null` if empty).
    pub fn post_json<T: Serialize + ?Sized>(
        &mut self,
        path: &str,
        body: Option<&T>,
    ) -> Result<Value> {
        let bytes = match body {
            Some(b) => Some(
                serde_json::to_vec(b)
                    .map_err(|e| Error::Protocol(format!("encoding body: {e}")))?,
            ),
            None => None,
        };
        let mut r = self.request(
            "POST",
            path,
            bytes.as_deref().map(|b| ("application/json", b)),
        )?;
        r.body.json()
    }

    /// DELETE, discarding the answer.
    pub fn delete(&mut self, path: &str) -> Result<Value> {
        let mut r = self.request("DELETE", path, None)?;
        r.body.json()
    }

    /// A hijacked request (attach, exec start): after the head, the socket is the stream.
    /// Returns the socket and whatever bytes of the stream were read along with the head.
    pub fn hijack(&mut self, path: &str, body: Option<&[u8]>) -> Result<(UnixStream, Vec<u8>)> {
        let p = self.versioned(path)?;
        let mut s = self.connect()?;
        write_head(
            &mut s,
            "POST",
            &p,
            &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
            body.map(|b| ("application/json", b.len())),
        )?;
        if let Some(b) = body {
            s.write_all(b)?;
        }
        let resp = check(read_response(s)?)?;
        let leftover = resp.body.rd.buffer().to_vec();
        Ok((resp.body.rd.into_inner(), leftover))
    }
}

fn write_head(
    s: &mut UnixStream,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: Option<(&str, usize)>,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-cli\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Some((ct, n)) => head.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {n}\r\n")),
        None if method == "POST" => head.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
}

fn read_response(s: UnixStream) -> Result<Response> {
    let mut rd = BufReader::with_capacity(32 * 1024, s);
    let mut line = String::new();
    rd.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(Error::Protocol(format!(
            "unexpected response line {:?}",
            line.trim_end()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("bad status line {:?}", line.trim_end())))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if rd.read_line(&mut line)? == 0 {
            return Err(Error::Protocol("connection closed in response head".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if headers.len() > 200 {
            return Err(Error::Protocol("too many response headers".into()));
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let kind = if status == 101 || status == 204 || status == 304 {
        if status == 101 {
            BodyKind::Eof
        } else {
            BodyKind::Length(0)
        }
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        BodyKind::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse().ok()) {
        BodyKind::Length(n)
    } else {
        BodyKind::Eof
    };
    Ok(Response {
        status,
        headers,
        body: Body { rd, kind },
    })
}

/// Turns an error status into [`Error::Daemon`] with the daemon's message.
fn check(mut r: Response) -> Result<Response> {
    if r.status < 400 {
        return Ok(r);
    }
    let mut raw = Vec::new();
    let _ = r.body.by_ref().take(1 << 20).read_to_end(&mut raw);
    let message = serde_json::from_slice::<Value>(&raw)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&raw).trim().to_string());
    Err(Error::Daemon {
        status: r.status,
        message,
    })
}

impl Response {
    /// A response header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Body {
    /// The whole body.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }

    /// The whole body as JSON; an empty body is `Null`.
    pub fn json(&mut self) -> Result<Value> {
        let raw = self.read_all()?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&raw)
            .map_err(|e| Error::Protocol(format!("invalid JSON from daemon: {e}")))
    }

    /// Reads the body as a stream of JSON values (events, stats, pull/import progress),
    /// calling `f` for each; stops early when `f` returns false.
    pub fn json_stream(&mut self, mut f: impl FnMut(Value) -> bool) -> Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = self.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut used = 0;
            while let Some(item) = it.next() {
                match item {
                    Ok(v) => {
                        used = it.byte_offset();
                        if !f(v) {
                            return Ok(());
                        }
                    }
                    Err(e) if e.is_eof() => break,
                    Err(e) => return Err(Error::Protocol(format!("invalid JSON stream: {e}"))),
                }
            }
            buf.drain(..used);
        }
        Ok(())
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.kind {
            BodyKind::Length(0) => Ok(0),
            BodyKind::Length(n) => {
                let max = (*n).min(out.len() as u64) as usize;
                let got = self.rd.read(&mut out[..max])?;
                if got == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *n -= got as u64;
                Ok(got)
            }
            BodyKind::Eof => self.rd.read(out),
            BodyKind::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let mut line = String::new();
                    self.rd.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        // The CRLF after the previous chunk.
                        line.clear();
                        self.rd.read_line(&mut line)?;
                    }
                    if line.is_empty() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let n = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if n == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = n;
                }
                let max = (*left).min(out.len() as u64) as usize;
                let got = self.rd.read(&mut out[..max])?;
                if got == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= got as u64;
                Ok(got)
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Builds `path?k=v&…` from pairs, skipping none.
pub fn with_query(path: &str, q: &[(&str, String)]) -> String {
    if q.is_empty() {
        return path.to_string();
    }
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("{path}?{}", qs.join("&"))
}
