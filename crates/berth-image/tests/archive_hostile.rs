//! `docker load` of hostile archives: every fixture is generated here, deterministically, with
//! the `tar` crate (raw headers where the crate would refuse the name), fed to
//! `ImageStore::load` on a real store (redb, content store, overlay snapshots), and must be
//! refused with an error naming the problem, or contained, and in every case leave nothing
//! half-written: no image listed, no lease, no snapshot, every blob verifying (none left
//! after a refusal), and nothing written outside the store.
//! Run as root.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::{Error, ImageStore, LoadOptions};
use berth_snapshot::{ApplyOptions, Driver, Snapshotter};
use berth_store::{ContentStore, Db};
use berth_types::Digest;

struct Env {
    dir: tempfile::TempDir,
    store: ImageStore,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("metadata.redb")).unwrap());
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    let snaps = Arc::new(Snapshotter::open(dir.path().join("snapshots"), Driver::Overlay).unwrap());
    std::fs::create_dir(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("outside/victim"), b"original").unwrap();
    Env {
        store: ImageStore::new(db, content, snaps),
        dir,
    }
}

impl Env {
    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Nothing outside the store changed: the `outside` directory holds only its victim,
    /// unchanged, and the temp dir only the store's own entries.
    fn assert_contained(&self) {
        let mut names: Vec<String> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["victim"], "a file appeared outside the store");
        assert_eq!(
            std::fs::read(self.outside().join("victim")).unwrap(),
            b"original"
        );
        let mut top: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["content", "metadata.redb", "outside", "snapshots"]);
    }

    /// Nothing of a failed load is left: no image, lease, snapshot or blob.
    fn assert_empty(&self) {
        assert!(self.store.list().unwrap().is_empty(), "an image is listed");
        assert!(
            self.store.db().leases().unwrap().is_empty(),
            "a lease is left"
        );
        assert!(
            self.store.snapshotter().list().is_empty(),
            "snapshots left: {:?}",
            self.store.snapshotter().list()
        );
        assert!(
            self.store.content().list().unwrap().is_empty(),
            "blobs left: {:?}",
            self.store.content().list().unwrap()
        );
        let ingest = self.store.content().root().join("ingest");
        assert_eq!(std::fs::read_dir(ingest).map(|r| r.count()).unwrap_or(0), 0);
        self.assert_contained();
    }

    fn load(&self, archive: &[u8]) -> Result<Vec<berth_image::LoadedImage>, Error> {
        self.load_with(archive, &LoadOptions::default())
    }

    fn load_with(
        &self,
        archive: &[u8],
        opts: &LoadOptions,
    ) -> Result<Vec<berth_image::LoadedImage>, Error> {
        self.store.load(archive, opts)
    }

    /// The archive is refused with an error containing `needle`, as bad input, and nothing
    /// is left behind.
    #[track_caller]
    fn refused(&self, archive: &[u8], needle: &str) {
        self.refused_with(archive, needle, &LoadOptions::default());
    }

    #[track_caller]
    fn refused_with(&self, archive: &[u8], needle: &str, opts: &LoadOptions) {
        let err = self.load_with(archive, opts).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter(_)),
            "not a bad-input error: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
        self.assert_empty();
        // Every blob verifies (none should be left at all, see assert_empty).
        for d in self.store.content().list().unwrap() {
            self.store.content().verify(&d).unwrap();
        }
    }
}

/// A tar archive built member by member; names are written raw into the header so hostile
/// ones (`..`, absolute) go in as they are.
struct Ar(tar::Builder<Vec<u8>>);

fn header(typ: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(typ);
    h.set_mode(if typ.is_dir() { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    let raw = &mut h.as_old_mut().name;
    assert!(name.len() < raw.len(), "fixture name too long");
    raw[..name.len()].copy_from_slice(name.as_bytes());
    h
}

impl Ar {
    fn new() -> Self {
        Ar(tar::Builder::new(Vec::new()))
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, name, data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn dir(mut self, name: &str) -> Self {
        let mut h = header(tar::EntryType::Directory, name, 0);
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    fn link(mut self, typ: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = header(typ, name, 0);
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, name, target)
    }

    fn device(mut self, name: &str) -> Self {
        let mut h = header(tar::EntryType::Char, name, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    fn fifo(mut self, name: &str) -> Self {
        let mut h = header(tar::EntryType::Fifo, name, 0);
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }

    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn sha(b: &[u8]) -> Digest {
    Digest::sha256_of(b)
}

/// A harmless layer: one file.
fn good_layer(text: &str) -> Vec<u8> {
    Ar::new()
        .dir("etc/")
        .file("etc/hello", text.as_bytes())
        .done()
}

/// An image config for layers with these uncompressed contents.
fn config_for(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l).to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": null},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Docker's old format: `<n>/layer.tar`, `<hex>.json`, `manifest.json`.
fn docker_archive(layers: &[&[u8]], tags: &[&str]) -> Vec<u8> {
    let config = config_for(layers);
    let cname = format!("{}.json", sha(&config).hex());
    let mut ar = Ar::new();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        ar = ar.dir(&format!("l{i}/")).file(&p, l);
        paths.push(p);
    }
    let manifest = serde_json::json!([{"Config": cname, "RepoTags": tags, "Layers": paths}]);
    ar.file(&cname, &config)
        .file("manifest.json", manifest.to_string().as_bytes())
        .done()
}

/// A manifest.json naming `config` and `layers` as given.
fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::json!([{"Config": config, "RepoTags": ["x:1"], "Layers": layers}])
        .to_string()
        .into_bytes()
}

/// A pure OCI layout for one image.
fn oci_archive(
    layer: &[u8],
    name: Option<&str>,
    tweak: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let config = config_for(&[layer]);
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(layer).to_string(), "size": layer.len()}],
    });
    tweak(&mut m);
    let mb = m.to_string().into_bytes();
    let mut desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(&mb).to_string(), "size": mb.len(),
    });
    if let Some(n) = name {
        desc["annotations"] = serde_json::json!({"io.containerd.image.name": n});
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]});
    Ar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file(&format!("blobs/sha256/{}", sha(layer).hex()), layer)
        .file(&format!("blobs/sha256/{}", sha(&config).hex()), &config)
        .file(&format!("blobs/sha256/{}", sha(&mb).hex()), &mb)
        .file("index.json", index.to_string().as_bytes())
        .done()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

// ---- the baseline: the fixtures' shapes are valid -------------------------------------

#[test]
fn baseline_archives_load() {
    let e = env();
    let l = good_layer("hi");
    let out = e.load(&docker_archive(&[&l], &["ok:1"])).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tags[0].familiar(), "ok:1");
    let l2 = good_layer("oci");
    let out = e
        .load(&oci_archive(&l2, Some("docker.io/library/oci:2"), |_| {}))
        .unwrap();
    assert_eq!(out[0].tags[0].familiar(), "oci:2");
    // A gzip-compressed archive of a gzip layer.
    let gl = gzip(&good_layer("zipped"));
    let config = config_for(&[&good_layer("zipped")]);
    let ar = Ar::new()
        .file("a/layer.tar", &gl)
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["a/layer.tar"]))
        .done();
    e.load(&gzip(&ar)).unwrap();
    assert_eq!(e.store.list().unwrap().len(), 3);
    for d in e.store.content().list().unwrap() {
        e.store.content().verify(&d).unwrap();
    }
    e.assert_contained();
}

// ---- member names ---------------------------------------------------------------------

#[test]
fn dotdot_member_refused() {
    let e = env();
    let l = good_layer("a");
    let ar = Ar::new().file("../evil", &l).done();
    e.refused(&ar, "'..' in path");
}

#[test]
fn absolute_member_refused() {
    let e = env();
    let target = format!("{}/pwned", e.outside().display());
    let ar = Ar::new().file(&target, b"x").done();
    e.refused(&ar, "absolute path");
}

#[test]
fn nested_dotdot_member_refused() {
    let e = env();
    let ar = Ar::new().file("a/../../b/layer.tar", b"x").done();
    e.refused(&ar, "'..' in path");
}

#[test]
fn duplicate_member_refused() {
    let e = env();
    let l = good_layer("a");
    let mut ar = docker_archive(&[&l], &["dup:1"]);
    // Append a second manifest.json before the end-of-archive blocks.
    ar.truncate(ar.len() - 1024);
    let extra = Ar::new().file("manifest.json", b"[]").done();
    ar.extend_from_slice(&extra);
    e.refused(&ar, "manifest.json appears twice");
}

#[test]
fn device_member_refused() {
    let e = env();
    let ar = Ar::new().device("dev/null").done();
    e.refused(&ar, "unsupported type");
}

#[test]
fn fifo_member_refused() {
    let e = env();
    let ar = Ar::new().fifo("pipe").done();
    e.refused(&ar, "unsupported type");
}

// ---- links between members ------------------------------------------------------------

#[test]
fn symlink_member_escaping_refused() {
    let e = env();
    let ar = Ar::new()
        .symlink("l/layer.tar", "../../../etc/passwd")
        .done();
    e.refused(&ar, "link target outside the archive");
}

#[test]
fn absolute_symlink_member_refused() {
    let e = env();
    let ar = Ar::new().symlink("l/layer.tar", "/etc/passwd").done();
    e.refused(&ar, "absolute link target");
}

#[test]
fn symlink_loop_refused() {
    let e = env();
    let l = good_layer("a");
    let config = config_for(&[&l]);
    let ar = Ar::new()
        .symlink("a/layer.tar", "../b/layer.tar")
        .symlink("b/layer.tar", "../a/layer.tar")
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["a/layer.tar"]))
        .done();
    e.refused(&ar, "too many levels of links");
}

#[test]
fn hardlink_member_escaping_refused() {
    let e = env();
    let ar = Ar::new().hardlink("l/layer.tar", "../outside").done();
    e.refused(&ar, "'..' in path");
}

#[test]
fn symlinked_layers_inside_the_archive_load() {
    // docker save writes a repeated layer as a symlink to the first copy.
    let e = env();
    let l = good_layer("same");
    let config = config_for(&[&l, &l]);
    let ar = Ar::new()
        .file("a/layer.tar", &l)
        .symlink("b/layer.tar", "../a/layer.tar")
        .file("c.json", &config)
        .file(
            "manifest.json",
            &manifest("c.json", &["a/layer.tar", "b/layer.tar"]),
        )
        .done();
    e.load(&ar).unwrap();
    assert_eq!(e.store.list().unwrap().len(), 1);
    e.assert_contained();
}

// ---- manifest.json ----------------------------------------------------------------------

#[test]
fn manifest_config_outside_refused() {
    let e = env();
    let l = good_layer("a");
    let ar = Ar::new()
        .file("l/layer.tar", &l)
        .file(
            "manifest.json",
            &manifest("../../etc/passwd", &["l/layer.tar"]),
        )
        .done();
    e.refused(
        &ar,
        "manifest.json entry 1 refers to \"../../etc/passwd\": '..' in path",
    );
}

#[test]
fn manifest_absolute_layer_refused() {
    let e = env();
    let l = good_layer("a");
    let config = config_for(&[&l]);
    let ar = Ar::new()
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["/etc/passwd"]))
        .done();
    e.refused(&ar, "absolute path");
}

#[test]
fn manifest_missing_layer_refused() {
    let e = env();
    let l = good_layer("a");
    let config = config_for(&[&l]);
    let ar = Ar::new()
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["gone/layer.tar"]))
        .done();
    e.refused(&ar, "\"gone/layer.tar\", which is not in the archive");
}

#[test]
fn no_manifest_refused() {
    let e = env();
    let ar = Ar::new().file("some/layer.tar", &good_layer("a")).done();
    e.refused(&ar, "neither manifest.json nor index.json");
}

#[test]
fn invalid_manifest_json_refused() {
    let e = env();
    let ar = Ar::new().file("manifest.json", b"{not json").done();
    e.refused(&ar, "manifest.json is not valid");
}

#[test]
fn huge_manifest_json_refused() {
    let e = env();
    let big = vec![b' '; (berth_image::archive::JSON_LIMIT + 1) as usize];
    let ar = Ar::new().file("manifest.json", &big).done();
    e.refused(&ar, "manifest.json is too large");
}

#[test]
fn huge_config_blob_refused() {
    let e = env();
    let l = good_layer("a");
    let big = vec![b' '; (berth_image::archive::JSON_LIMIT + 1) as usize];
    let name = format!("blobs/sha256/{}", sha(&big).hex());
    let ar = Ar::new()
        .file(&name, &big)
        .file("l/layer.tar", &l)
        .file("manifest.json", &manifest(&name, &["l/layer.tar"]))
        .done();
    e.refused(&ar, "is too large");
}

#[test]
fn invalid_repo_tag_refused() {
    let e = env();
    let l = good_layer("a");
    let ar = docker_archive(&[&l], &["UPPER/Case:1"]);
    e.refused(&ar, "invalid reference");
}

#[test]
fn layer_count_mismatch_refused() {
    let e = env();
    let l = good_layer("a");
    let config = config_for(&[&l, &l]);
    let ar = Ar::new()
        .file("l/layer.tar", &l)
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["l/layer.tar"]))
        .done();
    e.refused(&ar, "lists 2 layers but the manifest has 1");
}

// ---- digests ----------------------------------------------------------------------------

#[test]
fn layer_diff_id_mismatch_refused() {
    let e = env();
    let l = good_layer("real");
    let config = config_for(&[&good_layer("claimed")]);
    let ar = Ar::new()
        .file("l/layer.tar", &l)
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["l/layer.tar"]))
        .done();
    e.refused(&ar, "layer 1 (l/layer.tar): content is sha256:");
}

#[test]
fn blob_digest_mismatch_refused() {
    let e = env();
    let name = format!("blobs/sha256/{}", sha(b"something else").hex());
    let ar = Ar::new().file(&name, b"tampered").done();
    e.refused(&ar, "digest mismatch");
}

#[test]
fn oci_missing_manifest_blob_refused() {
    let e = env();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(b"nope").to_string(), "size": 4}]});
    let ar = Ar::new()
        .file("index.json", index.to_string().as_bytes())
        .done();
    e.refused(&ar, "which is not in the archive");
}

#[test]
fn oci_descriptor_size_mismatch_refused() {
    let e = env();
    let l = good_layer("a");
    let ar = oci_archive(&l, Some("docker.io/library/s:1"), |m| {
        m["layers"][0]["size"] = serde_json::json!(3);
    });
    e.refused(&ar, "its descriptor says 3");
}

#[test]
fn truncated_archive_refused() {
    let e = env();
    let l = good_layer(&"x".repeat(100_000));
    let ar = docker_archive(&[&l], &["t:1"]);
    e.refused(&ar[..60_000], "archive member l0/layer.tar: size mismatch");
}

// ---- hostile layers ---------------------------------------------------------------------

fn layer_archive(layer: &[u8]) -> Vec<u8> {
    docker_archive(&[layer], &["hostile:1"])
}

#[test]
fn layer_dotdot_entry_refused() {
    let e = env();
    let layer = Ar::new().file("../../outside/pwned", b"x").done();
    e.refused(&layer_archive(&layer), "layer 1");
}

#[test]
fn layer_symlink_escape_contained() {
    let e = env();
    let abs = e.outside().display().to_string();
    let layer = Ar::new()
        .symlink("esc", &abs)
        .file("esc/pwned", b"x")
        .done();
    match e.load(&layer_archive(&layer)) {
        Ok(_) => {}
        Err(_) => e.assert_empty(),
    }
    e.assert_contained();
}

#[test]
fn layer_relative_symlink_escape_contained() {
    let e = env();
    let layer = Ar::new()
        .symlink("up", "../../../../../../../../../../..")
        .file("up/tmp/berth-hostile-pwned", b"x")
        .done();
    match e.load(&layer_archive(&layer)) {
        Ok(_) => {}
        Err(_) => e.assert_empty(),
    }
    assert!(!Path::new("/tmp/berth-hostile-pwned").exists());
    e.assert_contained();
}

#[test]
fn layer_hardlink_escape_contained() {
    let e = env();
    let victim = format!("{}/victim", e.outside().display());
    let layer = Ar::new()
        .hardlink("stolen", &victim)
        .file("stolen", b"overwritten")
        .done();
    match e.load(&layer_archive(&layer)) {
        Ok(_) => {}
        Err(_) => e.assert_empty(),
    }
    e.assert_contained();
}

#[test]
fn layer_whiteout_escape_contained() {
    let e = env();
    let layer = Ar::new()
        .file("../.wh.victim", b"")
        .file("a/.wh...", b"")
        .done();
    match e.load(&layer_archive(&layer)) {
        Ok(_) => {}
        Err(_) => e.assert_empty(),
    }
    e.assert_contained();
}

#[test]
fn layer_bomb_refused_by_budget() {
    // 64 MiB of zeros in one file, gzip-compressed to a few dozen KiB; the budget is 8 MiB.
    let e = env();
    let zeros = vec![0u8; 64 << 20];
    let layer = Ar::new().file("bomb", &zeros).done();
    let config = config_for(&[&layer]);
    let gz = gzip(&layer);
    assert!(gz.len() < 1 << 20);
    drop(layer);
    let ar = Ar::new()
        .file("l/layer.tar", &gz)
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["l/layer.tar"]))
        .done();
    let opts = LoadOptions {
        apply: ApplyOptions {
            max_bytes: Some(8 << 20),
            ..Default::default()
        },
        ..Default::default()
    };
    e.refused_with(&ar, "layer 1", &opts);
}

#[test]
fn archive_budget_refused() {
    let e = env();
    let l = good_layer(&"y".repeat(200_000));
    let opts = LoadOptions {
        max_blob_bytes: Some(100_000),
        ..Default::default()
    };
    e.refused_with(&layer_archive(&l), "exceed the size limit", &opts);
}

#[test]
fn nested_compression_refused() {
    // A layer gzip'ed twice: the inner stream is not a tar.
    let e = env();
    let l = good_layer("nested");
    let config = config_for(&[&l]);
    let ar = Ar::new()
        .file("l/layer.tar", &gzip(&gzip(&l)))
        .file("c.json", &config)
        .file("manifest.json", &manifest("c.json", &["l/layer.tar"]))
        .done();
    e.refused(&ar, "is compressed twice");
}

// ---- all or nothing -----------------------------------------------------------------------

#[test]
fn second_image_bad_nothing_loaded() {
    let e = env();
    let good = good_layer("good");
    let bad = good_layer("bad");
    let c1 = config_for(&[&good]);
    let c2 = config_for(&[&good_layer("not bad")]);
    let m = serde_json::json!([
        {"Config": "c1.json", "RepoTags": ["good:1"], "Layers": ["g/layer.tar"]},
        {"Config": "c2.json", "RepoTags": ["bad:1"], "Layers": ["b/layer.tar"]},
    ]);
    let ar = Ar::new()
        .file("g/layer.tar", &good)
        .file("b/layer.tar", &bad)
        .file("c1.json", &c1)
        .file("c2.json", &c2)
        .file("manifest.json", m.to_string().as_bytes())
        .done();
    e.refused(&ar, "layer 1 (b/layer.tar)");
}

#[test]
fn failed_load_keeps_shared_data() {
    let e = env();
    let l = good_layer("shared");
    e.load(&docker_archive(&[&l], &["keep:1"])).unwrap();
    let blobs = e.store.content().list().unwrap();
    // Same layer blob, but a config claiming two layers where the second is wrong.
    let wrong = good_layer("wrong");
    let config = config_for(&[&l, &good_layer("claimed")]);
    let ar = Ar::new()
        .file("a/layer.tar", &l)
        .file("b/layer.tar", &wrong)
        .file("c.json", &config)
        .file(
            "manifest.json",
            &manifest("c.json", &["a/layer.tar", "b/layer.tar"]),
        )
        .done();
    let err = e.load(&ar).unwrap_err().to_string();
    assert!(err.contains("layer 2 (b/layer.tar)"), "{err}");
    assert_eq!(e.store.list().unwrap().len(), 1);
    assert_eq!(e.store.content().list().unwrap(), blobs);
    for d in &blobs {
        e.store.content().verify(d).unwrap();
    }
    assert_eq!(e.store.snapshotter().list().len(), 1);
    assert!(e.store.db().leases().unwrap().is_empty());
    e.assert_contained();
}

// ---- the fuzz target's body, over mutated fixtures (stable CI; `cargo fuzz` goes further) --

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn fuzz_load_smoke() {
    let l = good_layer("fuzz");
    let seeds = [
        docker_archive(&[&l], &["f:1"]),
        oci_archive(&l, Some("docker.io/library/f:2"), |_| {}),
        gzip(&docker_archive(&[&l, &good_layer("two")], &["f:3"])),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for s in &seeds {
        berth_image::archive::fuzz_load(s);
        for _ in 0..12 {
            let mut d = s.clone();
            for _ in 0..4 {
                let i = (xorshift(&mut seed) as usize) % d.len();
                d[i] = (xorshift(&mut seed) >> 16) as u8;
            }
            let cut = (xorshift(&mut seed) as usize) % (d.len() + 1);
            berth_image::archive::fuzz_load(&d[..cut.max(d.len() / 2)]);
        }
    }
}

// ---- layers unpacked while the archive streams in (blobs of 1 MiB and more) -------------

/// `n` bytes that do not compress.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n).map(|_| (xorshift(&mut seed) >> 24) as u8).collect()
}

/// The chain ids of the layers with these uncompressed contents.
fn chain_of(layers: &[&[u8]]) -> Vec<String> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| sha(l)).collect();
    berth_image::model::chain_ids(&diff_ids)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn large_layers_arriving_in_any_order_get_their_parents() {
    let e = env();
    let l0 = Ar::new()
        .dir("data/")
        .file("data/zero", &noise(3 << 19, 1))
        .file("data/gone", b"deleted by layer 2")
        .done();
    let l1 = Ar::new()
        .dir("data/")
        .file("data/one", &noise(3 << 19, 2))
        .file("data/.wh.gone", b"")
        .done();
    let l2 = Ar::new().file("two", &noise(3 << 19, 3)).done();
    let config = config_for(&[&l0, &l1, &l2]);
    // Newest layer first, one of them gzip-compressed, the manifest last.
    let ar = Ar::new()
        .file("c/layer.tar", &l2)
        .file("b/layer.tar", &gzip(&l1))
        .file("a/layer.tar", &l0)
        .file("cfg.json", &config)
        .file(
            "manifest.json",
            &manifest("cfg.json", &["a/layer.tar", "b/layer.tar", "c/layer.tar"]),
        )
        .done();
    let out = e.load(&ar).unwrap();
    assert_eq!(out[0].tags[0].familiar(), "x:1");
    let chain = chain_of(&[&l0, &l1, &l2]);
    let snaps = e.store.snapshotter();
    assert_eq!(snaps.list().len(), 3, "{:?}", snaps.list());
    for (i, key) in chain.iter().enumerate() {
        let info = snaps.stat(key).unwrap();
        assert_eq!(info.parent.as_ref(), i.checked_sub(1).map(|j| &chain[j]));
    }
    let fs = |i: usize| snaps.paths(&chain[i]).unwrap().fs;
    assert_eq!(
        std::fs::read(fs(0).join("data/zero")).unwrap(),
        noise(3 << 19, 1)
    );
    assert_eq!(
        std::fs::read(fs(1).join("data/one")).unwrap(),
        noise(3 << 19, 2)
    );
    assert_eq!(std::fs::read(fs(2).join("two")).unwrap(), noise(3 << 19, 3));
    // The whiteout is overlay's (a 0:0 character device), in the layer that made it.
    use std::os::unix::fs::FileTypeExt;
    let wh = std::fs::symlink_metadata(fs(1).join("data/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert!(e.store.db().leases().unwrap().is_empty());
    for d in e.store.content().list().unwrap() {
        e.store.content().verify(&d).unwrap();
    }
    e.assert_contained();
}

#[test]
fn large_layer_missing_parent_dirs_takes_them_from_its_parent() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let e = env();
    let mut h = header(tar::EntryType::Directory, "opt/", 0);
    h.set_mode(0o710);
    h.set_uid(1234);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty()).unwrap();
    let l0 = b.into_inner().unwrap();
    // No "opt/" entry: the directory comes from the layer below.
    let l1 = Ar::new().file("opt/big", &noise(3 << 19, 4)).done();
    let config = config_for(&[&l0, &l1]);
    let ar = Ar::new()
        .file("b/layer.tar", &l1)
        .file("a/layer.tar", &l0)
        .file("cfg.json", &config)
        .file(
            "manifest.json",
            &manifest("cfg.json", &["a/layer.tar", "b/layer.tar"]),
        )
        .done();
    e.load(&ar).unwrap();
    let chain = chain_of(&[&l0, &l1]);
    let snaps = e.store.snapshotter();
    assert_eq!(snaps.list().len(), 2, "{:?}", snaps.list());
    let fs = snaps.paths(&chain[1]).unwrap().fs;
    let m = std::fs::metadata(fs.join("opt")).unwrap();
    assert_eq!((m.uid(), m.permissions().mode() & 0o7777), (1234, 0o710));
    assert_eq!(
        std::fs::read(fs.join("opt/big")).unwrap(),
        noise(3 << 19, 4)
    );
    assert!(e.store.db().leases().unwrap().is_empty());
    e.assert_contained();
}

#[test]
fn large_layer_diff_id_mismatch_refused() {
    let e = env();
    let real = Ar::new().file("big", &noise(3 << 19, 5)).done();
    let claimed = Ar::new().file("big", &noise(3 << 19, 6)).done();
    let config = config_for(&[&claimed]);
    let ar = Ar::new()
        .file(&format!("blobs/sha256/{}", sha(&real).hex()), &real)
        .file("cfg.json", &config)
        .file(
            "manifest.json",
            &manifest("cfg.json", &[&format!("blobs/sha256/{}", sha(&real).hex())]),
        )
        .done();
    e.refused(&ar, "content is sha256:");
}

#[test]
fn large_blob_digest_mismatch_refused() {
    let e = env();
    let real = Ar::new().file("big", &noise(3 << 19, 7)).done();
    let name = format!("blobs/sha256/{}", sha(b"something else").hex());
    let ar = Ar::new().file(&name, &real).done();
    e.refused(&ar, "digest mismatch");
}

#[test]
fn large_base_layer_already_unpacked_is_reused() {
    let e = env();
    let base = Ar::new().file("base", &noise(3 << 19, 8)).done();
    e.load(&docker_archive(&[&base], &["base:1"])).unwrap();
    assert_eq!(e.store.snapshotter().list().len(), 1);
    let top = Ar::new().file("top", &noise(3 << 19, 9)).done();
    let out = e.load(&docker_archive(&[&base, &top], &["top:1"])).unwrap();
    assert_eq!(out[0].tags[0].familiar(), "top:1");
    let chain = chain_of(&[&base, &top]);
    let snaps = e.store.snapshotter();
    assert_eq!(snaps.list().len(), 2, "{:?}", snaps.list());
    assert_eq!(
        snaps.stat(&chain[1]).unwrap().parent.as_ref(),
        Some(&chain[0])
    );
    let fs = snaps.paths(&chain[1]).unwrap().fs;
    assert_eq!(std::fs::read(fs.join("top")).unwrap(), noise(3 << 19, 9));
    assert!(e.store.db().leases().unwrap().is_empty());
    e.assert_contained();
}
