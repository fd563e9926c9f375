//! `/containers/{id}/archive` on the wire: the stat header, the tar body, the upload's
//! options, and the errors.
#![allow(clippy::unwrap_used)]

mod fake;

use berth_api_types::archive::ContainerPathStat;
use fake::{Daemon, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_routes() {
    let d = Daemon::start().await;
    let r = request(
        &d.sock,
        "HEAD",
        "/v1.50/containers/c1/archive?path=%2Fetc%2Fa%20b",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let st = ContainerPathStat::decode(&r.header("x-docker-container-path-stat")).unwrap();
    assert_eq!((st.name.as_str(), st.size, st.is_dir()), ("a b", 4, false));
    let r = request(
        &d.sock,
        "GET",
        "/containers/c1/archive?path=/etc/hostname",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"tar!");
    assert_eq!(r.header("content-type"), "application/x-tar");
    assert_eq!(
        ContainerPathStat::decode(&r.header("x-docker-container-path-stat"))
            .unwrap()
            .name,
        "hostname"
    );
    let r = request(&d.sock, "GET", "/containers/c1/archive?path=/missing", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.message(),
        "Could not find the file /missing in container c1"
    );
    let r = request(&d.sock, "HEAD", "/containers/c1/archive?path=/missing", "").await;
    assert_eq!(r.status, 404);
    for m in ["GET", "PUT"] {
        let r = request(&d.sock, m, "/containers/c1/archive", "").await;
        assert_eq!(r.status, 400, "{m}");
        assert_eq!(r.message(), "path is required");
    }
    let r = request(
        &d.sock,
        "PUT",
        "/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=true&copyUIDGID=1",
        "body",
    )
    .await;
    assert_eq!(r.status, 200);
    let (id, o, body) = d.fake.last_archive_put.lock().unwrap().take().unwrap();
    assert_eq!(
        (id.as_str(), o.path.as_str(), body.as_slice()),
        ("c1", "/tmp", &b"body"[..])
    );
    assert!(o.no_overwrite_dir_non_dir && o.copy_uid_gid);
    let r = request(
        &d.sock,
        "PUT",
        "/containers/c1/archive?path=/tmp&copyUIDGID=false",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let (_, o, _) = d.fake.last_archive_put.lock().unwrap().take().unwrap();
    assert!(!o.no_overwrite_dir_non_dir && !o.copy_uid_gid);
    d.stop().await.unwrap();
}
