//! TCP is served only with TLS and client certificates: certificates made with openssl, a
//! rustls client with and without a client certificate, and the docker CLI with --tlsverify.
#![allow(clippy::unwrap_used)]

mod fake;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all P-256.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=berth test ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ];
    a.extend(ec);
    a.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &a);
    for (name, cn, ext) in [
        (
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={cn}");
        let mut a = vec![
            "req",
            "-new",
            "-subj",
            subj.as_str(),
            "-keyout",
            key.as_str(),
            "-out",
            csr.as_str(),
        ];
        a.extend(ec);
        openssl(dir, &a);
        let out = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &out,
            ],
        );
    }
}

async fn ping(
    addr: std::net::SocketAddr,
    dir: &Path,
    with_client_cert: bool,
) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_client_cert {
        let cert = CertificateDer::from_pem_file(dir.join("client.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("client-key.pem")).unwrap();
        b.with_client_auth_cert(vec![cert], key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    s.write_all(b"GET /v1.50/_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_needs_tls_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    make_certs(p);
    let tls = berth_server::TlsConfig {
        ca: p.join("ca.pem"),
        cert: p.join("server.pem"),
        key: p.join("server-key.pem"),
    };
    let l = berth_server::Listener::bind("tcp://127.0.0.1:0", Some(&tls))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let fake = fake::Fake::new();
    let (tx, mut rx) = watch::channel(false);
    let server = tokio::spawn(berth_server::serve(
        vec![l],
        berth_server::app(fake),
        async move {
            let _ = rx.changed().await;
        },
    ));

    let out = tokio::time::timeout(Duration::from_secs(60), ping(addr, p, true))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nOK"), "{out}");
    // Without a client certificate the handshake (or the first read) fails: no HTTP answer.
    let r = tokio::time::timeout(Duration::from_secs(60), ping(addr, p, false))
        .await
        .unwrap();
    match r {
        Err(_) => {}
        Ok(text) => assert!(
            !text.contains("HTTP/1.1"),
            "served without a client cert: {text}"
        ),
    }

    if Path::new("/usr/local/bin/docker").exists() {
        let host = format!("tcp://{addr}");
        let run = |extra: &[&str]| {
            let mut c = Command::new("timeout");
            c.args(["60", "/usr/local/bin/docker", "-H", &host])
                .args(extra)
                .args(["version", "--format", "{{.Server.APIVersion}}"]);
            c.env("DOCKER_CONFIG", p.join("cfg"))
                .env_remove("DOCKER_HOST")
                .env_remove("DOCKER_TLS_VERIFY");
            c.output().unwrap()
        };
        let ca = p.join("ca.pem");
        let cert = p.join("client.pem");
        let key = p.join("client-key.pem");
        let o = run(&[
            "--tlsverify",
            "--tlscacert",
            ca.to_str().unwrap(),
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "1.50\n");
        let o = run(&["--tlsverify", "--tlscacert", ca.to_str().unwrap()]);
        assert!(!o.status.success(), "served the CLI without a client cert");
    }
    // Bad TLS material is refused with the file named.
    let bad = berth_server::TlsConfig {
        ca: p.join("ca.pem"),
        cert: p.join("nope.pem"),
        key: p.join("server-key.pem"),
    };
    let e = berth_server::Listener::bind("tcp://127.0.0.1:0", Some(&bad))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
