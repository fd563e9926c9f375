//! The API over a real unix socket, driven with hyper's client and raw sockets.
#![allow(clippy::unwrap_used)]

mod fake;

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_api_types::stdcopy;
use fake::{Daemon, build, connect, request};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_version_and_headers() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/_ping", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"OK");
    assert_eq!(r.header("api-version"), "1.50");
    assert_eq!(r.header("ostype"), "linux");
    assert_eq!(r.header("docker-experimental"), "false");
    assert_eq!(r.header("builder-version"), "1");
    assert_eq!(
        r.header("cache-control"),
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(r.header("pragma"), "no-cache");
    assert_eq!(r.header("server"), "Docker/0.1.0-fake (linux)");
    let r = request(&d.sock, "HEAD", "/v1.40/_ping", "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("api-version"), "1.50");

    for path in ["/version", "/v1.24/version", "/v1.50/version"] {
        let r = request(&d.sock, "GET", path, "").await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["ApiVersion"], "1.50");
        assert_eq!(r.json()["Components"][0]["Name"], "Engine");
    }
    let r = request(&d.sock, "GET", "/v1.43/info", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Name"], "fakehost");
    d.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_outside_the_range_are_refused() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/v1.23/version", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    assert_eq!(
        r.header("api-version"),
        "1.50",
        "error responses carry the headers too"
    );
    let r = request(&d.sock, "GET", "/v1.51/containers/json", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "client version 1.51 is too new. Maximum supported API version is 1.50"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/nope", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, br#"{"message":"page not found"}"#);
    assert_eq!(r.header("content-type"), "application/json");
    let r = request(&d.sock, "GET", "/v1.41/containers/x/y/z", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "page not found");
    let r = request(&d.sock, "DELETE", "/version", "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.message(), "method not allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_lifecycle_and_errors() {
    let d = Daemon::start().await;
    let body = r#"{"Image":"busybox","Cmd":["sleep","100"],"Labels":{"a":"b"},"HostConfig":{"Memory":1048576}}"#;
    let r = request(
        &d.sock,
        "POST",
        "/v1.50/containers/create?name=web&platform=linux/amd64",
        body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["Warnings"], serde_json::json!([]));
    {
        let last = d.fake.last_create.lock().unwrap();
        let (opts, body, raw) = last.as_ref().unwrap();
        assert_eq!(opts.name.as_deref(), Some("web"));
        assert_eq!(opts.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(body.host_config.as_ref().unwrap().memory, Some(1048576));
        assert_eq!(raw["Labels"]["a"], "b");
    }
    // Name conflict → 409 with the backend's message.
    let r = request(&d.sock, "POST", "/containers/create?name=web", body).await;
    assert_eq!(r.status, 409);
    assert!(r.message().contains("is already in use"), "{}", r.message());
    // A non-linux platform is refused before the backend sees it.
    let r = request(
        &d.sock,
        "POST",
        "/containers/create?platform=windows/amd64",
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("windows/amd64"));

    assert_eq!(
        request(&d.sock, "POST", "/containers/web/start", "")
            .await
            .status,
        204
    );
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/start", "")
            .await
            .status,
        304
    );
    let r = request(
        &d.sock,
        "GET",
        &format!("/containers/{}/json", &id[..12]),
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Name"], "/web");
    assert_eq!(r.json()["State"]["Running"], true);
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/pause", "")
            .await
            .status,
        204
    );
    assert!(d.fake.container("web").unwrap().paused);
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/unpause", "")
            .await
            .status,
        204
    );
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/resize?h=40&w=120", "")
            .await
            .status,
        200
    );
    assert_eq!(d.fake.last_resize.lock().unwrap().as_ref().unwrap().1, 40);
    let r = request(&d.sock, "POST", "/containers/web/resize?h=-1&w=120", "").await;
    assert_eq!(r.status, 400);
    let r = request(&d.sock, "POST", "/containers/web/resize?h=abc", "").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("h"), "{}", r.message());
    let r = request(&d.sock, "GET", "/containers/web/top?ps_args=aux", "").await;
    assert_eq!(r.json()["Processes"][0][1], "aux");
    let r = request(&d.sock, "GET", "/containers/web/stats?stream=0", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], id.as_str());
    let r = request(
        &d.sock,
        "GET",
        "/containers/web/stats?stream=1&one-shot=1",
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = request(
        &d.sock,
        "POST",
        "/containers/web/update",
        r#"{"Memory":2097152}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(&d.sock, "POST", "/containers/web/kill?signal=BOGUS", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.message(), "invalid signal: BOGUS");
    let r = request(&d.sock, "DELETE", "/containers/web", "").await;
    assert_eq!(r.status, 409);
    assert!(r.message().contains("container is running"));
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/stop?t=1", "")
            .await
            .status,
        204
    );
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/stop", "")
            .await
            .status,
        304
    );
    assert_eq!(d.fake.container("web").unwrap().exit_code, 143);
    assert_eq!(
        request(&d.sock, "POST", "/containers/web/rename?name=site", "")
            .await
            .status,
        204
    );
    assert_eq!(
        request(&d.sock, "POST", "/containers/site/rename", "")
            .await
            .status,
        400
    );
    assert_eq!(
        request(&d.sock, "DELETE", "/containers/site?force=1&v=1", "")
            .await
            .status,
        204
    );

    let r = request(&d.sock, "GET", "/containers/x/json", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such container: x");
    assert_eq!(r.body, br#"{"message":"No such container: x"}"#);
    let r = request(
        &d.sock,
        "POST",
        "/containers/create",
        r#"{"Image":"missing"}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    // Bad query values name the parameter.
    let r = request(&d.sock, "GET", "/containers/json?all=maybe", "").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("all"), "{}", r.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_with_the_reason() {
    let d = Daemon::start().await;
    // Unknown fields, nested, are named by path.
    let r = request(
        &d.sock,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memroy":1}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "unknown field in request body: HostConfig.Memroy"
    );
    let r = request(
        &d.sock,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","Bogus":1,"Cmd":["a"],"Other":{}}"#,
    )
    .await;
    assert_eq!(r.message(), "unknown fields in request body: Bogus, Other");
    // Malformed JSON: line and column.
    let r = request(&d.sock, "POST", "/containers/create", "{\n\"Image\": }").await;
    assert_eq!(r.status, 400);
    assert!(
        r.message().starts_with("invalid JSON in request body:"),
        "{}",
        r.message()
    );
    assert!(r.message().contains("line 2 column"), "{}", r.message());
    // Wrong type: the field's path.
    let r = request(
        &d.sock,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("HostConfig.Memory"), "{}", r.message());
    // Nothing was created by any of those.
    assert!(d.fake.state.lock().unwrap().containers.is_empty());
    // An empty body is `{}`: the backend's own validation answers.
    let r = request(&d.sock, "POST", "/containers/create", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.message(), "config must specify an image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_json_body_is_413() {
    let d = Daemon::start().await;
    let mut body = br#"{"Image":"busybox","Env":[""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', berth_server::MAX_JSON_BODY + 10));
    body.extend(br#""]}"#);
    let r = request(&d.sock, "POST", "/containers/create", body).await;
    assert_eq!(r.status, 413);
    assert!(r.message().contains("larger than"), "{}", r.message());
    assert!(d.fake.state.lock().unwrap().containers.is_empty());
    // Streamed bodies (image import) have no such limit.
    let big = vec![0u8; berth_server::MAX_JSON_BODY + 4096];
    let r = request(&d.sock, "POST", "/images/create?fromSrc=-&repo=imp&tag=v1&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3Db&message=hi", big).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (opts, n) = d.fake.last_import.lock().unwrap().clone().unwrap();
    assert_eq!(n, berth_server::MAX_JSON_BODY + 4096);
    assert_eq!(opts.repo.as_deref(), Some("imp"));
    assert_eq!(opts.tag.as_deref(), Some("v1"));
    assert_eq!(opts.message.as_deref(), Some("hi"));
    assert_eq!(opts.changes, ["CMD [\"sh\"]", "ENV A=b"]);
    let line: serde_json::Value = serde_json::from_slice(r.body.trim_ascii_end()).unwrap();
    assert_eq!(line["status"], format!("sha256:{:064x}", n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/images/json", "").await;
    assert_eq!(r.json()[0]["RepoTags"][0], "busybox:latest");
    let r = request(&d.sock, "GET", "/images/library/busybox:latest/json", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["RepoTags"][0], "busybox:latest");
    let r = request(&d.sock, "GET", "/images/busybox/history", "").await;
    assert_eq!(r.json()[0]["CreatedBy"], "ADD rootfs");
    let r = request(&d.sock, "GET", "/images/nope/json", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "No such image: nope")
    );
    assert_eq!(
        request(&d.sock, "POST", "/images/busybox/tag?repo=mine&tag=1", "")
            .await
            .status,
        201
    );
    assert_eq!(
        request(&d.sock, "POST", "/images/busybox/tag", "")
            .await
            .status,
        400
    );
    let r = request(&d.sock, "DELETE", "/images/busybox:latest?force=1", "").await;
    assert_eq!(r.json()[0]["Untagged"], "busybox:latest");
    let r = request(&d.sock, "POST", "/images/create?fromImage=alpine&tag=3", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (501, "pulling is not supported yet")
    );
    // An error after progress started is reported in-band, as the CLI expects.
    let r = request(&d.sock, "POST", "/images/create?fromImage=midway", "").await;
    assert_eq!(r.status, 200);
    let lines: Vec<serde_json::Value> = r
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], "Pulling fs layer");
    assert_eq!(
        lines[1]["errorDetail"]["message"],
        "connection reset while pulling"
    );
    let r = request(
        &d.sock,
        "POST",
        "/images/create?fromSrc=http://example.invalid/x.tar",
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = request(&d.sock, "POST", "/images/create", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        request(&d.sock, "POST", "/images/prune", "").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_both_forms() {
    let d = Daemon::start().await;
    d.fake.add("one", &["sleep"], false, true);
    d.fake.add("two", &["sleep"], false, false);
    let q = |f: &str| format!("/containers/json?all=1&filters={}", pct(f));
    let r = request(&d.sock, "GET", &q(r#"{"status":["running"]}"#), "").await;
    assert_eq!(r.status, 200);
    let names: Vec<_> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["/one"]);
    let r = request(&d.sock, "GET", &q(r#"{"status":{"created":true}}"#), "").await;
    let names: Vec<_> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["/two"]);
    let r = request(&d.sock, "GET", &q(r#"{"colour":["red"]}"#), "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "invalid filter 'colour'")
    );
    let r = request(&d.sock, "GET", &q("{not json"), "").await;
    assert_eq!(r.status, 400);
    assert!(
        r.message().starts_with("invalid filters"),
        "{}",
        r.message()
    );
    let r = request(&d.sock, "GET", "/containers/json", "").await;
    assert_eq!(
        r.json().as_array().unwrap().len(),
        1,
        "without all only running ones"
    );
    let r = request(&d.sock, "POST", "/containers/prune", "").await;
    assert_eq!(r.json()["ContainersDeleted"].as_array().unwrap().len(), 1);
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_framing_timestamps_and_tty() {
    let d = Daemon::start().await;
    d.fake.add("f", &["fail"], false, false);
    assert_eq!(
        request(&d.sock, "POST", "/containers/f/start", "")
            .await
            .status,
        204
    );
    let r = request(&d.sock, "GET", "/containers/f/logs?stdout=1&stderr=1", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        "application/vnd.docker.multiplexed-stream"
    );
    let mut dec = stdcopy::Decoder::default();
    dec.push(&r.body);
    assert_eq!(
        dec.next_frame().unwrap(),
        Some((stdcopy::Stream::Stdout, b"trying\n".to_vec()))
    );
    assert_eq!(
        dec.next_frame().unwrap(),
        Some((stdcopy::Stream::Stderr, b"oops\n".to_vec()))
    );
    assert_eq!(dec.next_frame().unwrap(), None);
    let r = request(
        &d.sock,
        "GET",
        "/containers/f/logs?stderr=1&timestamps=1&tail=1",
        "",
    )
    .await;
    let mut dec = stdcopy::Decoder::default();
    dec.push(&r.body);
    let (s, data) = dec.next_frame().unwrap().unwrap();
    assert_eq!(s, stdcopy::Stream::Stderr);
    let text = String::from_utf8(data).unwrap();
    let (ts, rest) = text.split_once(' ').unwrap();
    assert_eq!(rest, "oops\n");
    assert_eq!(ts.len(), "2024-05-01T12:00:00.000000001Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
    let r = request(&d.sock, "GET", "/containers/f/logs", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "you must choose at least one stream")
    );
    let r = request(
        &d.sock,
        "GET",
        "/containers/f/logs?stdout=1&since=yesterday",
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    // A far-future `since` leaves nothing.
    let r = request(
        &d.sock,
        "GET",
        "/containers/f/logs?stdout=1&since=99999999999.5",
        "",
    )
    .await;
    assert!(r.body.is_empty());

    let t = d.fake.add("t", &["echo", "hi", "there"], true, false);
    request(&d.sock, "POST", &format!("/containers/{t}/start"), "").await;
    let r = request(&d.sock, "GET", "/containers/t/logs?stdout=1", "").await;
    assert_eq!(
        r.header("content-type"),
        "application/vnd.docker.raw-stream"
    );
    assert_eq!(r.body, b"hi there\n");
}

/// The wait is registered before the response head is sent: a client that sees the head,
/// then starts a container that exits at once, still gets the exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_is_registered_before_headers() {
    let d = Daemon::start().await;
    d.fake.add("w", &["exit", "7"], false, false);
    let mut send = connect(&d.sock).await;
    let resp = tokio::time::timeout(
        T,
        send.send_request(build(
            "POST",
            "/v1.50/containers/w/wait?condition=next-exit",
            "",
        )),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        d.fake.waits_registered.load(Ordering::SeqCst),
        1,
        "registered before the head arrived"
    );
    assert_eq!(
        request(&d.sock, "POST", "/containers/w/start", "")
            .await
            .status,
        204
    );
    let body = tokio::time::timeout(T, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["StatusCode"], 7);

    let r = request(&d.sock, "POST", "/containers/w/wait?condition=bogus", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "invalid condition: \"bogus\"")
    );
    let r = request(&d.sock, "POST", "/containers/zz/wait", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "No such container: zz")
    );
    // not-running on an exited container answers at once.
    let r = request(&d.sock, "POST", "/containers/w/wait", "").await;
    assert_eq!(r.json()["StatusCode"], 7);
}

/// Sends a raw HTTP request and reads up to the end of the response head.
async fn raw_request(
    sock: &std::path::Path,
    req: &str,
) -> (tokio::net::UnixStream, String, Vec<u8>) {
    let mut s = tokio::net::UnixStream::connect(sock).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    let end = loop {
        let n = tokio::time::timeout(T, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed before the head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&b[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    (s, head, buf[end..].to_vec())
}

async fn read_exact_within(s: &mut tokio::net::UnixStream, mut have: Vec<u8>, n: usize) -> Vec<u8> {
    let mut b = [0u8; 1024];
    while have.len() < n {
        let k = tokio::time::timeout(T, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(
            k > 0,
            "closed early with {:?}",
            String::from_utf8_lossy(&have)
        );
        have.extend_from_slice(&b[..k]);
    }
    have
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_hijack_with_upgrade() {
    let d = Daemon::start().await;
    d.fake.add("a", &["cat"], false, true);
    let (mut s, head, rest) = raw_request(
        &d.sock,
        "POST /v1.50/containers/a/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101 UPGRADED\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/vnd.docker.multiplexed-stream\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Upgrade: tcp\r\n") && head.contains("Connection: Upgrade\r\n"),
        "{head}"
    );
    s.write_all(b"hello \x00\xff bytes").await.unwrap();
    let want = stdcopy::frame(stdcopy::Stream::Stdout, b"hello \x00\xff bytes");
    let got = read_exact_within(&mut s, rest, want.len()).await;
    assert_eq!(got, want);
    // Closing stdin ends the session: the server closes its side.
    s.shutdown().await.unwrap();
    let mut tail = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut tail))
        .await
        .unwrap()
        .unwrap();
    assert!(tail.is_empty(), "{tail:?}");

    // Errors before the hijack are normal HTTP responses.
    let stopped = d.fake.add("stopped", &["cat"], false, true);
    d.fake.exit(&stopped, 0);
    let r = request(
        &d.sock,
        "POST",
        "/containers/stopped/attach?stream=1&stdout=1",
        "",
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.message(),
        "You cannot attach to a stopped container, start it first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_hijack_without_upgrade_header() {
    let d = Daemon::start().await;
    d.fake.add("tty", &["cat"], true, true);
    let (mut s, head, rest) = raw_request(
        &d.sock,
        "POST /containers/tty/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    );
    // A tty stream is raw both ways: no framing, no chunked encoding.
    s.write_all(b"ping\r\n").await.unwrap();
    let got = read_exact_within(&mut s, rest, 6).await;
    assert_eq!(got, b"ping\r\n");
    s.write_all(b"more").await.unwrap();
    let got = read_exact_within(&mut s, Vec::new(), 4).await;
    assert_eq!(got, b"more");
    drop(s);
    // The server goes on serving.
    assert_eq!(request(&d.sock, "GET", "/_ping", "").await.status, 200);
}

/// A keep-alive connection can serve ordinary requests before it is hijacked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hijack_after_keepalive_requests() {
    let d = Daemon::start().await;
    d.fake.add("k", &["cat"], false, true);
    let (mut s, head, rest) =
        raw_request(&d.sock, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    // "OK" body (content-length 2) may already be in `rest`.
    let rest = read_exact_within(&mut s, rest, 2).await;
    assert_eq!(&rest[..2], b"OK");
    s.write_all(b"POST /v1.41/containers/k/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n").await.unwrap();
    let mut buf = rest[2..].to_vec();
    let mut b = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(T, s.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(text.starts_with("HTTP/1.1 101 UPGRADED\r\n"), "{text}");
    // API 1.41 predates the multiplexed-stream content type.
    assert!(text.contains("application/vnd.docker.raw-stream"), "{text}");
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    s.write_all(b"x").await.unwrap();
    let got = read_exact_within(&mut s, buf[end..].to_vec(), 9).await;
    assert_eq!(got, stdcopy::frame(stdcopy::Stream::Stdout, b"x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_create_start_inspect() {
    let d = Daemon::start().await;
    d.fake.add("e", &["sleep"], false, true);
    let r = request(
        &d.sock,
        "POST",
        "/containers/e/exec",
        r#"{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = request(
        &d.sock,
        "POST",
        "/containers/e/exec",
        r#"{"Cmd":["cat"],"Nope":true}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (400, "unknown field in request body: Nope")
    );
    let body = r#"{"Detach":false,"Tty":true}"#;
    let (mut s, head, rest) = raw_request(
        &d.sock,
        &format!("POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101 UPGRADED\r\n"), "{head}");
    let got = read_exact_within(&mut s, rest, 6).await;
    assert_eq!(got, b"exec> ");
    s.write_all(b"ls\n").await.unwrap();
    assert_eq!(read_exact_within(&mut s, Vec::new(), 3).await, b"ls\n");
    drop(s);
    assert_eq!(
        request(&d.sock, "POST", &format!("/exec/{id}/resize?h=10&w=20"), "")
            .await
            .status,
        200
    );
    assert_eq!(
        *d.fake.last_resize.lock().unwrap(),
        Some((id.clone(), 10, 20))
    );
    let r = request(&d.sock, "GET", &format!("/exec/{id}/json"), "").await;
    assert_eq!(r.json()["ContainerID"], d.fake.container("e").unwrap().id);
    let r = request(
        &d.sock,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Detach":true}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(&d.sock, "POST", "/exec/nope/start", r#"{"Detach":true}"#).await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "No such exec instance: nope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_json_lines() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/events?since=150&until=1000", "").await;
    assert_eq!(r.status, 200);
    let lines: Vec<serde_json::Value> = r
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let actions: Vec<_> = lines
        .iter()
        .map(|l| l["Action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start", "die"]);
    assert_eq!(lines[0]["Type"], "container");
    let f = pct(r#"{"event":{"die":true}}"#);
    let r = request(
        &d.sock,
        "GET",
        &format!("/events?until=1000&filters={f}"),
        "",
    )
    .await;
    assert_eq!(r.body.iter().filter(|b| **b == b'\n').count(), 1);
    let r = request(
        &d.sock,
        "GET",
        &format!("/events?filters={}", pct(r#"{"bogus":["x"]}"#)),
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    // Without until the stream stays open: the first events arrive, then it waits.
    let mut send = connect(&d.sock).await;
    let resp = send
        .send_request(build("GET", "/events", ""))
        .await
        .unwrap();
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(T, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(frame.data_ref().unwrap()).contains("create"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_and_the_server_lives() {
    let d = Daemon::start().await;
    d.fake.add("p", &["sleep"], false, true);
    let r = request(&d.sock, "GET", "/containers/p/top?ps_args=panic", "").await;
    assert_eq!(r.status, 500);
    assert!(
        r.message().contains("top was asked to panic"),
        "{}",
        r.message()
    );
    assert_eq!(
        request(&d.sock, "GET", "/containers/p/top", "")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_removes_the_socket_and_rebinding_works() {
    let d = Daemon::start().await;
    let sock = d.sock.clone();
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let m = std::fs::metadata(&sock).unwrap();
    assert!(m.file_type().is_socket());
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    // A live daemon's socket is not clobbered.
    let e = berth_server::Listener::bind(&format!("unix://{}", sock.display()), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("another daemon is already listening on {}", sock.display())
    );
    assert_eq!(
        request(&sock, "GET", "/_ping", "").await.status,
        200,
        "still serving"
    );
    let tmp = tempfile::tempdir().unwrap();
    // A stale socket (nobody listening) is replaced.
    let stale = tmp.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let l = berth_server::Listener::bind(stale.to_str().unwrap(), None)
        .await
        .unwrap();
    drop(l);
    // A regular file is never replaced.
    let file = tmp.path().join("file");
    std::fs::write(&file, "keep").unwrap();
    let e = berth_server::Listener::bind(&format!("unix://{}", file.display()), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    // tcp without TLS is refused, bad addresses are named.
    let e = berth_server::Listener::bind("tcp://127.0.0.1:0", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("need TLS"), "{e}");
    let e = berth_server::Listener::bind("udp://x", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("udp://x"), "{e}");
    d.stop().await.unwrap();
    assert!(!sock.exists(), "socket removed on shutdown");
}

/// `docker save`/`load` routes: parameters checked before the backend; the fake backend
/// implements neither, so what reaches it is a 501.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_load_routes() {
    let d = Daemon::start().await;
    let r = request(&d.sock, "GET", "/images/get", "").await;
    assert_eq!((r.status, r.message().as_str()), (400, "names is required"));
    let r = request(&d.sock, "GET", "/images/get?names=busybox&format=zip", "").await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("unknown archive format \"zip\""));
    let r = request(&d.sock, "GET", "/images/get?names=busybox&names=x", "").await;
    assert_eq!(r.status, 501);
    let r = request(
        &d.sock,
        "GET",
        "/v1.47/images/library/busybox:latest/get",
        "",
    )
    .await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (501, "image save is not supported")
    );
    let r = request(&d.sock, "POST", "/images/load?quiet=1", "").await;
    assert_eq!(
        (r.status, r.message().as_str()),
        (501, "image load is not supported")
    );
}
