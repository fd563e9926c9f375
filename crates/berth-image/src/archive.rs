//! `docker save` / `docker load`: images as tar archives.
//!
//! # What `save` writes
//!
//! The layout Docker 25+ writes, which older Dockers load too: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) plus Docker's `manifest.json` (and the
//! legacy `repositories`) whose `Config` and `Layers` paths point into `blobs/`. The blobs are
//! the content store's, streamed as they are: layers stay compressed (gzip as berth stores
//! them), under their compressed digest, with the manifest's media type. That is a valid OCI
//! layout (descriptors name compressed blobs), and valid for `docker load`, which decompresses
//! each layer (`DecompressStream`) and checks the result against the config's `diff_ids`
//! (the archive spec's "uncompressed tar" is what Docker writes, not what it requires; the
//! interop tests load berth's archives into dockerd 20.10 and read them with skopeo). It
//! also means no layer is decompressed, let alone copied, to save: `save` is a file-to-socket
//! copy. [`SaveFormat::Oci`] leaves out `manifest.json` and `repositories` (a pure OCI layout,
//! as `skopeo copy oci-archive:` expects).
//!
//! # How `load` reads
//!
//! The archive (plain, gzip or zstd) is read as a stream, once. Its members are either small
//! JSON documents (`manifest.json`, `index.json`, configs, at most [`JSON_LIMIT`] each, kept
//! in memory) or blobs, spooled into the content store while hashed (members named
//! `blobs/sha256/<hex>` must hash to their name). Everything written is protected by a lease.
//! A blob of 1 MiB or more that starts like a layer (gzip, zstd or a tar header) and is not in
//! the store yet is also unpacked while it streams in: each chunk goes both to the content
//! store and, over a bounded channel, to a thread applying it into a parentless work
//! snapshot (the archive's order says nothing about parents, and `manifest.json` may come
//! last). Once the images are known, such a layer is attached to its parent
//! ([`berth_snapshot::Snapshotter::commit_onto`]) if its diff_id is the one the config
//! names and its unpacking did not depend on the layers below (it created no directory it
//! did not contain); otherwise it is unpacked again from the stored blob, the normal way.
//! Only then, since `manifest.json` may come last, the images are assembled: `manifest.json`
//! (Docker's format, old or new) or else `index.json` (OCI), every path it names resolved
//! inside the archive (symbolic and hard links between members followed, never out), each layer
//! unpacked from its blob into a snapshot named by its chain id and its digest checked against
//! the config's `diff_ids`, and finally, in one transaction, the image records and their tags.
//! A failure at any point deletes the lease, the snapshots and the blobs this load made that
//! nothing else needs: no image is listed, nothing is left behind.
//!
//! Member names are treated as hostile: absolute names, `..` components, duplicates, device
//! nodes, links leaving the archive and oversized JSON are refused with an error naming the
//! member. Layers are unpacked by berth-snapshot, which keeps every entry inside the snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_snapshot::{AppliedLayer, ApplyOptions, Compression, Driver};
use berth_store::ImageRecord;
use berth_store::db::TAGS;
use berth_types::{Algorithm, Digest, Hasher, Reference};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::model::{
    Descriptor, ImageConfig, Index, MEDIA_DOCKER_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST, Manifest,
    ManifestDoc, chain_ids, host_platform, parse_manifest,
};
use crate::store::{IMPORT_LEASE_TTL, ImageStore, json, random_token, tag_key};

/// The most a JSON member of an archive (`manifest.json`, `index.json`, a config, a manifest)
/// may hold.
pub const JSON_LIMIT: u64 = 16 << 20;
/// The most all JSON members of one archive may hold together.
const JSON_TOTAL_LIMIT: u64 = 64 << 20;
/// The most members an archive may have.
const MAX_MEMBERS: u64 = 100_000;
/// The most images one archive may describe, and layers one image may have.
const MAX_IMAGES: usize = 10_000;
const MAX_LAYERS: usize = 1_000;
/// Links between members followed before giving up (loops).
const MAX_LINK_HOPS: usize = 16;
/// Read/write buffer for blob copies.
const COPY_BUF: usize = 1 << 20;
/// Blobs at least this large that look like layers are unpacked while they stream in.
const SPECULATE_MIN: u64 = 1 << 20;
/// Chunks of [`COPY_BUF`] queued between the spooling and the unpacking of a blob.
const SPECULATE_QUEUE: usize = 8;
/// Layers unpacked at once while an archive streams in (a small layer of many files may take
/// longer to unpack than the next, large, blob to stream in).
const SPECULATE_THREADS: usize = 4;

/// Which archive `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// Docker's: an OCI layout plus `manifest.json` and `repositories` (Docker 25+).
    #[default]
    Docker,
    /// A pure OCI image layout.
    Oci,
}

/// What [`ImageStore::load`] may accept.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Limits for unpacking each layer (hostile input: set `max_bytes`/`max_entries`).
    pub apply: ApplyOptions,
    /// The most bytes of blobs the archive may carry (`None`: no limit).
    pub max_blob_bytes: Option<u64>,
}

/// One image a load made, as `docker load` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image id.
    pub id: Digest,
    /// The tags set on it (familiar forms are what Docker prints).
    pub tags: Vec<Reference>,
}

/// What is saved of one image: its record and the tags to write.
#[derive(Debug, Clone)]
pub struct SaveItem {
    record: ImageRecord,
    manifest: Vec<u8>,
    tags: Vec<Reference>,
}

/// The images a save writes, resolved up front so that errors come before the first byte.
/// Holds a lease on every blob it writes until dropped.
#[derive(Debug)]
pub struct SavePlan<'a> {
    store: &'a ImageStore,
    items: Vec<SaveItem>,
    lease: String,
    /// Each blob once, in write order, with its size.
    blobs: Vec<(Digest, u64)>,
}

impl SavePlan<'_> {
    /// The ids of the images the plan saves.
    pub fn image_ids(&self) -> Vec<String> {
        self.items.iter().map(|i| i.record.id.to_string()).collect()
    }
}

impl Drop for SavePlan<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.db().delete_lease(&self.lease) {
            warn!(lease = self.lease, error = %e, "cannot delete save lease");
        }
    }
}

/// One line of Docker's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidParameter(msg.into())
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => MEDIA_OCI_LAYER,
        Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
        Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
    }
}

/// The compression a stream starts with.
fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn decompressed<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let c = sniff(r.fill_buf()?);
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

fn tar_header(size: u64, mode: u32, typ: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(typ);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar_header(data.len() as u64, 0o644, tar::EntryType::Regular);
    b.append_data(&mut h, path, data)
        .map_err(|e| Error::Msg(format!("writing {path} to the archive: {e}")))
}

/// A member name made canonical: relative, `/`-separated, no `.`, no `..`, no empty parts.
fn clean_name(name: &str) -> std::result::Result<String, &'static str> {
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("'..' in path"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link target against the directory holding the link, refusing to leave the
/// archive's root.
fn join_inside(dir: &str, target: &str) -> std::result::Result<String, &'static str> {
    if target.starts_with('/') {
        return Err("absolute link target");
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("link target outside the archive");
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn parent_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(d, _)| d)
}

/// A member of an archive being loaded.
#[derive(Debug, Clone)]
enum Member {
    /// Small JSON kept in memory.
    Mem(Vec<u8>),
    /// Spooled into the content store.
    Blob(Digest, u64),
    /// A symbolic link (target already resolved against its directory) or a hard link.
    Link(String),
}

/// Whether a member is kept in memory (JSON and tiny metadata) rather than spooled.
fn is_json_member(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.ends_with(".json") || matches!(base, "json" | "VERSION" | "repositories" | "oci-layout")
}

/// The digest a member named `blobs/<alg>/<hex>` must have.
fn blob_name_digest(name: &str) -> Option<std::result::Result<Digest, String>> {
    let rest = name.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    let alg = Algorithm::from_name(alg)?;
    Some(Digest::from_parts(alg, hex).map_err(|e| format!("archive member {name}: {e}")))
}

/// The members of a loaded archive and what resolving them needs.
struct Members {
    map: HashMap<String, Member>,
}

enum Resolved<'a> {
    Mem(&'a [u8]),
    Blob(&'a Digest, u64),
}

impl Members {
    /// Follows links from `path` (as named by `who`) to a file member.
    fn resolve(&self, path: &str, who: &str) -> Result<Resolved<'_>> {
        let mut cur =
            clean_name(path).map_err(|why| bad(format!("{who} refers to {path:?}: {why}")))?;
        for _ in 0..MAX_LINK_HOPS {
            match self.map.get(&cur) {
                None => {
                    return Err(bad(format!(
                        "{who} refers to {path:?}, which is not in the archive"
                    )));
                }
                Some(Member::Mem(b)) => return Ok(Resolved::Mem(b)),
                Some(Member::Blob(d, n)) => return Ok(Resolved::Blob(d, *n)),
                Some(Member::Link(t)) => cur = t.clone(),
            }
        }
        Err(bad(format!(
            "{who} refers to {path:?}: too many levels of links"
        )))
    }
}

/// One image to assemble from the archive.
struct Plan {
    /// The member the config came from (for messages).
    config_name: String,
    config: Vec<u8>,
    /// Member name (for messages), blob, size.
    layers: Vec<(String, Digest, u64)>,
    tags: Vec<Reference>,
}

/// State of one load: the lease and what it wrote, for clean-up.
struct LoadCtx<'a> {
    store: &'a ImageStore,
    lease: String,
    token: String,
    blobs: Vec<Digest>,
    snapshots: Vec<String>,
    work: Vec<String>,
    /// Layers unpacked while their blobs streamed in, by blob digest.
    spec: HashMap<Digest, Speculation>,
}

/// A blob unpacked as a layer while it was spooled, into a parentless work snapshot, before
/// anything said it was a layer or what its parent is (`manifest.json` comes last).
/// [`LoadCtx::assemble`] attaches it to its parent when the image needs it there and the
/// result cannot depend on the parent (no implicit directories); otherwise the layer is
/// unpacked again from the stored blob, the normal way.
struct Speculation {
    /// The work snapshot, until some image takes it.
    work: Option<String>,
    applied: AppliedLayer,
}

/// A layer being unpacked on its own thread while its blob is spooled (or after).
struct Inflight<'s> {
    /// The blob's digest, as spooled.
    blob: Digest,
    work: String,
    handle: std::thread::ScopedJoinHandle<'s, berth_snapshot::Result<AppliedLayer>>,
}

/// Whether the start of a blob looks like a layer: gzip, zstd or a tar header.
fn looks_like_layer(head: &[u8]) -> bool {
    sniff(head) != Compression::None || head.get(257..262) == Some(b"ustar".as_slice())
}

/// Reads until `buf` is full or the stream ends.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl ImageStore {
    /// Resolves the images `names` (references, ids or id prefixes) for [`ImageStore::save`]
    /// and protects their blobs with a lease while the plan lives. A name that is a tag puts
    /// that tag in the archive; an id saves the image untagged.
    pub fn save_plan(&self, names: &[String]) -> Result<SavePlan<'_>> {
        if names.is_empty() {
            return Err(bad("no image to save"));
        }
        let mut items: Vec<SaveItem> = Vec::new();
        for name in names {
            let rec = self.resolve(name)?;
            let tag = match berth_types::parse_any(name) {
                Ok(berth_types::AnyReference::Named(r)) if r.digest().is_none() => {
                    let r = r.docker_ref();
                    let tagged = self
                        .db()
                        .read(|tx| tx.get(&TAGS, &tag_key(&r)))?
                        .is_some_and(|id| id == rec.id);
                    tagged.then_some(r)
                }
                _ => None,
            };
            if let Some(item) = items.iter_mut().find(|i| i.record.id == rec.id) {
                if let Some(t) = tag
                    && !item.tags.contains(&t)
                {
                    item.tags.push(t);
                }
                continue;
            }
            let manifest = self.content().read(&rec.manifest_digest)?;
            items.push(SaveItem {
                record: rec,
                manifest,
                tags: tag.into_iter().collect(),
            });
        }
        let lease = format!("save-{}", random_token()?);
        self.db().create_lease(&lease, Some(IMPORT_LEASE_TTL))?;
        let mut plan = SavePlan {
            store: self,
            items: Vec::new(),
            lease,
            blobs: Vec::new(),
        };
        let mut seen = HashSet::new();
        for item in &items {
            let m: Manifest = serde_json::from_slice(&item.manifest)
                .map_err(|e| Error::Msg(format!("manifest of image {}: {e}", item.record.id)))?;
            let digests = m
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .chain([m.config.digest.clone(), item.record.manifest_digest.clone()]);
            for d in digests {
                if seen.insert(d.clone()) {
                    self.db().lease_add_content(&plan.lease, &d)?;
                    let size = self.content().info(&d).map_err(|e| {
                        Error::Msg(format!("image {}: blob {d}: {e}", item.record.id))
                    })?;
                    plan.blobs.push((d, size));
                }
            }
        }
        plan.items = items;
        Ok(plan)
    }

    /// `docker save`: writes the images of `plan` to `w` as a tar archive (see the module
    /// documentation for the layout), streaming every blob from the content store.
    pub fn save<W: Write>(&self, plan: &SavePlan<'_>, format: SaveFormat, w: W) -> Result<()> {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Deterministic);
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = tar_header(0, 0o755, tar::EntryType::Directory);
            b.append_data(&mut h, dir, io::empty())
                .map_err(|e| Error::Msg(format!("writing {dir} to the archive: {e}")))?;
        }
        let mut buf = vec![0u8; COPY_BUF];
        for (d, size) in &plan.blobs {
            let path = format!("blobs/{}/{}", d.algorithm().as_str(), d.hex());
            let mut h = tar_header(*size, 0o444, tar::EntryType::Regular);
            h.set_path(&path)
                .map_err(|e| Error::Msg(format!("archive path {path}: {e}")))?;
            h.set_cksum();
            let file = self.content().open_blob(d)?;
            let mut src = BufReader::with_capacity(0, file);
            let mut copied = 0u64;
            // tar::Builder copies with a small buffer; write the header and data ourselves.
            let out = b.get_mut();
            out.write_all(h.as_bytes())
                .map_err(|e| Error::Msg(format!("writing the archive: {e}")))?;
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Msg(format!("reading blob {d}: {e}"))),
                };
                let n = n.min((*size - copied) as usize);
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .map_err(|e| Error::Msg(format!("writing the archive: {e}")))?;
                copied += n as u64;
            }
            if copied != *size {
                return Err(Error::Msg(format!(
                    "blob {d} changed while being saved ({copied} of {size} bytes)"
                )));
            }
            let pad = (512 - (size % 512) as usize) % 512;
            out.write_all(&[0u8; 512][..pad])
                .map_err(|e| Error::Msg(format!("writing the archive: {e}")))?;
        }
        let mut index = Vec::new();
        let mut docker = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for item in &plan.items {
            let rec = &item.record;
            let desc = |annotations: BTreeMap<String, String>| Descriptor {
                media_type: rec.media_type.clone(),
                digest: rec.manifest_digest.clone(),
                size: item.manifest.len() as u64,
                platform: None,
                annotations,
                extra: Default::default(),
            };
            if item.tags.is_empty() {
                index.push(desc(BTreeMap::new()));
            }
            for t in &item.tags {
                let mut a = BTreeMap::new();
                a.insert("io.containerd.image.name".to_string(), t.to_string());
                if let Some(tag) = t.tag() {
                    a.insert(
                        "org.opencontainers.image.ref.name".to_string(),
                        tag.to_string(),
                    );
                    if let Some(top) = rec.chain_ids.last() {
                        repositories
                            .entry(t.familiar_name())
                            .or_default()
                            .insert(tag.to_string(), top.hex().to_string());
                    }
                }
                index.push(desc(a));
            }
            let m: Manifest = serde_json::from_slice(&item.manifest)
                .map_err(|e| Error::Msg(format!("manifest of image {}: {e}", rec.id)))?;
            docker.push(ArchiveEntry {
                config: format!("blobs/sha256/{}", m.config.digest.hex()),
                repo_tags: Some(item.tags.iter().map(Reference::familiar).collect()),
                layers: m
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_INDEX.into()),
            manifests: index,
            extra: Default::default(),
        };
        append_bytes(&mut b, "index.json", &json(&index)?)?;
        if format == SaveFormat::Docker {
            append_bytes(&mut b, "manifest.json", &json(&docker)?)?;
        }
        append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if format == SaveFormat::Docker && !repositories.is_empty() {
            append_bytes(&mut b, "repositories", &json(&repositories)?)?;
        }
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::Msg(format!("writing the archive: {e}")))?;
        info!(images = plan.items.len(), "images saved");
        Ok(())
    }

    /// `docker load`: reads an archive written by `docker save` (any version) or an OCI
    /// image layout tar from `r` and makes its images; see the module documentation.
    pub fn load<R: Read>(&self, r: R, opts: &LoadOptions) -> Result<Vec<LoadedImage>> {
        let token = random_token()?;
        let lease = format!("load-{token}");
        self.db().create_lease(&lease, Some(IMPORT_LEASE_TTL))?;
        let mut ctx = LoadCtx {
            store: self,
            lease,
            token,
            blobs: Vec::new(),
            snapshots: Vec::new(),
            work: Vec::new(),
            spec: HashMap::new(),
        };
        let res = ctx.run(r, opts);
        ctx.finish(res.is_ok());
        if let Err(e) = &res {
            debug!(error = %e, "load failed");
        }
        res
    }
}

impl<'a> LoadCtx<'a> {
    fn run<R: Read>(&mut self, r: R, opts: &LoadOptions) -> Result<Vec<LoadedImage>> {
        let members = self.read_archive(r, opts)?;
        let plans = self.plans(&members)?;
        let mut records = Vec::new();
        for p in &plans {
            records.push(self.assemble(p, opts)?);
        }
        let store = self.store;
        let _gc = store.gc_guard();
        store.publish(&records)?;
        let out: Vec<LoadedImage> = records
            .into_iter()
            .map(|(rec, tags)| LoadedImage { id: rec.id, tags })
            .collect();
        for i in &out {
            info!(id = %i.id, tags = ?i.tags.iter().map(Reference::familiar).collect::<Vec<_>>(), "image loaded");
        }
        Ok(out)
    }

    /// Reads every member: JSON into memory, the rest into the content store. Blobs that
    /// look like layers are also unpacked while they stream in (see [`Speculation`]), on a
    /// second thread, when the snapshotter can attach them to their parent afterwards.
    fn read_archive<R: Read>(&mut self, r: R, opts: &LoadOptions) -> Result<Members> {
        let input = BufReader::with_capacity(COPY_BUF, r);
        let input = decompressed(input).map_err(|e| bad(format!("reading the archive: {e}")))?;
        let mut ar = tar::Archive::new(input);
        let entries = ar
            .entries()
            .map_err(|e| bad(format!("reading the archive: {e}")))?;
        let speculate = self.store.snapshotter().driver() == Driver::Overlay
            && opts.apply.lower_dirs.is_empty();
        std::thread::scope(|s| {
            let mut inflight: Vec<Inflight<'_>> = Vec::new();
            let res = self.read_members(entries, opts, speculate, s, &mut inflight);
            for f in inflight {
                self.land(f);
            }
            res
        })
    }

    /// Waits for a layer unpacked while it streamed in and keeps the result for
    /// [`LoadCtx::assemble`]; a failed one is simply not used (its work snapshot goes with
    /// the load's clean-up, and the layer is unpacked the normal way if an image needs it).
    fn land(&mut self, f: Inflight<'_>) -> Option<Digest> {
        match f.handle.join() {
            Ok(Ok(applied)) => {
                let d = f.blob;
                debug!(blob = %d, diff_id = %applied.diff_id, "layer unpacked while loading");
                self.spec.insert(
                    d.clone(),
                    Speculation {
                        work: Some(f.work),
                        applied,
                    },
                );
                Some(d)
            }
            Ok(Err(e)) => {
                debug!(work = f.work, error = %e, "blob not unpacked while loading");
                None
            }
            Err(_) => {
                warn!(work = f.work, "layer unpacking thread panicked");
                None
            }
        }
    }

    fn read_members<'s, 'env, R: Read>(
        &mut self,
        entries: tar::Entries<'_, R>,
        opts: &'env LoadOptions,
        speculate: bool,
        scope: &'s std::thread::Scope<'s, 'env>,
        inflight: &mut Vec<Inflight<'s>>,
    ) -> Result<Members>
    where
        'a: 'env,
    {
        let mut map: HashMap<String, Member> = HashMap::new();
        let mut json_total = 0u64;
        let mut blob_budget = opts.max_blob_bytes;
        let mut count = 0u64;
        let mut buf = vec![0u8; COPY_BUF];
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("reading the archive: {e}")))?;
            count += 1;
            if count > MAX_MEMBERS {
                return Err(bad(format!("archive has more than {MAX_MEMBERS} members")));
            }
            let raw = entry.path_bytes().into_owned();
            let raw =
                String::from_utf8(raw).map_err(|_| bad("archive member name is not UTF-8"))?;
            let name =
                clean_name(&raw).map_err(|why| bad(format!("archive member {raw:?}: {why}")))?;
            let typ = entry.header().entry_type();
            if typ.is_dir() {
                continue;
            }
            if name.is_empty() {
                return Err(bad(format!("archive member {raw:?}: no name")));
            }
            if map.contains_key(&name) {
                return Err(bad(format!("archive member {name} appears twice")));
            }
            let member = match typ {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry
                        .header()
                        .size()
                        .map_err(|e| bad(format!("archive member {name}: bad size: {e}")))?;
                    let named = blob_name_digest(&name).transpose().map_err(bad)?;
                    if named.is_some() || !is_json_member(&name) {
                        let d = self.spool_member(
                            &mut entry,
                            &name,
                            named,
                            size,
                            &mut blob_budget,
                            &mut buf,
                            (speculate && size >= SPECULATE_MIN).then_some((opts, scope)),
                            inflight,
                        )?;
                        Member::Blob(d, size)
                    } else {
                        if size > JSON_LIMIT {
                            return Err(bad(format!(
                                "archive member {name} is too large ({size} bytes, at most {JSON_LIMIT})"
                            )));
                        }
                        json_total += size;
                        if json_total > JSON_TOTAL_LIMIT {
                            return Err(bad(format!(
                                "archive's JSON members exceed {JSON_TOTAL_LIMIT} bytes"
                            )));
                        }
                        let mut v = Vec::with_capacity(size as usize);
                        (&mut entry)
                            .take(JSON_LIMIT + 1)
                            .read_to_end(&mut v)
                            .map_err(|e| bad(format!("reading archive member {name}: {e}")))?;
                        Member::Mem(v)
                    }
                }
                tar::EntryType::Symlink => {
                    let target = link_target(&entry, &name)?;
                    Member::Link(join_inside(parent_of(&name), &target).map_err(|why| {
                        bad(format!("archive member {name} (link to {target:?}): {why}"))
                    })?)
                }
                tar::EntryType::Link => {
                    let target = link_target(&entry, &name)?;
                    Member::Link(clean_name(&target).map_err(|why| {
                        bad(format!(
                            "archive member {name} (hard link to {target:?}): {why}"
                        ))
                    })?)
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                other => {
                    return Err(bad(format!(
                        "archive member {name}: unsupported type {other:?} (only files, directories and links)"
                    )));
                }
            };
            map.insert(name, member);
        }
        Ok(Members { map })
    }

    /// [`LoadCtx::spool`]s one blob member; with `spec`, and when its start looks like a
    /// layer that is not in the store yet, also unpacks it on another thread as it streams
    /// (up to [`SPECULATE_THREADS`] layers at a time).
    #[allow(clippy::too_many_arguments)]
    fn spool_member<'s, 'env, R: Read>(
        &mut self,
        entry: &mut R,
        name: &str,
        expected: Option<Digest>,
        size: u64,
        budget: &mut Option<u64>,
        buf: &mut [u8],
        spec: Option<(&'env LoadOptions, &'s std::thread::Scope<'s, 'env>)>,
        inflight: &mut Vec<Inflight<'s>>,
    ) -> Result<Digest>
    where
        'a: 'env,
    {
        let Some((opts, scope)) = spec else {
            return self.spool(entry, name, expected, size, budget, buf, None);
        };
        let mut head = [0u8; 512];
        let n = read_full(entry, &mut head)
            .map_err(|e| bad(format!("reading archive member {name}: {e}")))?;
        let head = &head[..n];
        let mut input = head.chain(entry);
        let known = match &expected {
            Some(d) => self.store.content().exists(d).unwrap_or(false),
            None => false,
        };
        if known || !looks_like_layer(head) {
            return self.spool(&mut input, name, expected, size, budget, buf, None);
        }
        if inflight.len() >= SPECULATE_THREADS {
            let f = inflight.remove(0);
            self.land(f);
        }
        let store: &'env ImageStore = self.store;
        let work = format!("load-{}-s{}", self.token, self.work.len());
        store.db().lease_add_snapshot(&self.lease, &work)?;
        self.work.push(work.clone());
        store.snapshotter().prepare(&work, None)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(SPECULATE_QUEUE);
        let key = work.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        // The spooling hashes the blob already.
        let apply = ApplyOptions {
            hash_input: false,
            ..opts.apply.clone()
        };
        let handle = std::thread::Builder::new()
            .name("layer-unpack".into())
            .spawn_scoped(scope, move || {
                let r = ChanReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                    cancel: Some(stop),
                };
                store.snapshotter().apply_layer(&key, r, &apply)
            })
            .map_err(|e| Error::Msg(format!("starting a layer unpacking thread: {e}")))?;
        let mut tx = Some(tx);
        let d = self.spool(&mut input, name, expected, size, budget, buf, Some(&mut tx))?;
        // The unpacker sees the end of its stream and finishes on its own (the next blobs
        // stream in meanwhile); a plain layer's digest is its diff_id, and when a snapshot is
        // named by it (a base layer some image has already; Docker's old archives name layers
        // by directory, not digest, so this is known only now), the unpacking is stopped:
        // assemble finds the snapshot and uses it.
        drop(tx);
        if sniff(head) == Compression::None && store.snapshotter().stat(d.as_str()).is_ok() {
            cancel.store(true, Ordering::Relaxed);
        }
        inflight.push(Inflight {
            blob: d.clone(),
            work,
            handle,
        });
        Ok(d)
    }

    /// Copies one member into the content store (protected by the lease before it is
    /// published, under the gc lock), feeding a copy of every chunk to `feed` while it takes
    /// them (a layer unpacked while it streams in).
    #[allow(clippy::too_many_arguments)]
    fn spool<R: Read>(
        &mut self,
        entry: &mut R,
        name: &str,
        expected: Option<Digest>,
        size: u64,
        budget: &mut Option<u64>,
        buf: &mut [u8],
        mut feed: Option<&mut Option<std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>>>,
    ) -> Result<Digest> {
        if let Some(left) = budget {
            *left = left.checked_sub(size).ok_or_else(|| {
                bad(format!(
                    "archive member {name}: the archive's blobs exceed the size limit"
                ))
            })?;
        }
        let store = self.store;
        let mut w = store.content().writer(expected, Some(size))?;
        loop {
            let n = read_full(entry, buf)
                .map_err(|e| bad(format!("reading archive member {name}: {e}")))?;
            if n == 0 {
                break;
            }
            if let Some(slot) = feed.as_deref_mut()
                && let Some(tx) = slot
                && tx.send(Ok(buf[..n].to_vec())).is_err()
            {
                // The unpacker stopped (not a layer after all, or a bad one): spool on.
                *slot = None;
            }
            w.write_all(&buf[..n])
                .map_err(|e| Error::Msg(format!("spooling archive member {name}: {e}")))?;
        }
        let _gc = store.gc_guard();
        let d = w.commit().map_err(|e| match e {
            berth_store::Error::DigestMismatch { .. } | berth_store::Error::SizeMismatch { .. } => {
                bad(format!("archive member {name}: {e}"))
            }
            e => e.into(),
        })?;
        store.db().lease_add_content(&self.lease, &d)?;
        self.blobs.push(d.clone());
        Ok(d)
    }

    /// Unpacks (or finds) the layers of one image, checks them against its config and
    /// stores config and manifest. Returns the record to write and its tags.
    fn assemble(&mut self, p: &Plan, opts: &LoadOptions) -> Result<(ImageRecord, Vec<Reference>)> {
        let store = self.store;
        let config: ImageConfig = serde_json::from_slice(&p.config)
            .map_err(|e| bad(format!("image config {}: {e}", p.config_name)))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != p.layers.len() {
            return Err(bad(format!(
                "image config {} lists {} layers but the manifest has {}",
                p.config_name,
                diff_ids.len(),
                p.layers.len()
            )));
        }
        let chain = chain_ids(diff_ids);
        let mut size = 0u64;
        let mut descs = Vec::new();
        for (i, ((name, blob, blob_size), diff_id)) in p.layers.iter().zip(diff_ids).enumerate() {
            let key = chain[i].as_str().to_string();
            let parent = i.checked_sub(1).map(|j| chain[j].as_str().to_string());
            let what = || format!("layer {} ({name})", i + 1);
            let compression;
            let spec = self.spec.get_mut(blob);
            if store.snapshotter().stat(&key).is_ok() {
                // Already unpacked by another image: only check that this blob is that layer.
                store.db().lease_add_snapshot(&self.lease, &key)?;
                let (actual, c) = match spec {
                    Some(sp) => (
                        Digest::parse(sp.applied.diff_id.as_str())
                            .map_err(|e| Error::Msg(format!("{}: {e}", what())))?,
                        sp.applied.compression,
                    ),
                    None => uncompressed_digest(store, blob)?,
                };
                if &actual != diff_id {
                    return Err(bad(format!(
                        "{}: content is {actual} but the image config says {diff_id}",
                        what()
                    )));
                }
                compression = c;
                size += store.snapshotter().usage(&key).map_or(0, |u| u.size);
            } else if let Some(sp) = spec
                && sp.applied.implicit_dirs == 0
                && let Some(spec_work) = sp.work.take()
            {
                // Unpacked while the archive streamed in, and independent of its parent.
                if sp.applied.diff_id.as_str() != diff_id.as_str() {
                    return Err(bad(format!(
                        "{}: content is {} but the image config says {diff_id}",
                        what(),
                        sp.applied.diff_id
                    )));
                }
                compression = sp.applied.compression;
                size += sp.applied.size;
                store.db().lease_add_snapshot(&self.lease, &key)?;
                match store
                    .snapshotter()
                    .commit_onto(&key, &spec_work, parent.as_deref())
                {
                    Ok(()) => self.snapshots.push(key.clone()),
                    Err(berth_snapshot::Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                let work = format!("load-{}-{i}", self.token);
                store.db().lease_add_snapshot(&self.lease, &work)?;
                self.work.push(work.clone());
                store.snapshotter().prepare(&work, parent.as_deref())?;
                let (reader, c) = inflating(store, blob)?;
                let applied = store
                    .snapshotter()
                    .apply_layer(&work, reader, &opts.apply)
                    .map_err(|e| bad(format!("{}: {e}", what())))?;
                if applied.diff_id.as_str() != diff_id.as_str() {
                    return Err(bad(format!(
                        "{}: content is {} but the image config says {diff_id}",
                        what(),
                        applied.diff_id
                    )));
                }
                compression = c;
                size += applied.size;
                store.db().lease_add_snapshot(&self.lease, &key)?;
                match store.snapshotter().commit(&key, &work) {
                    Ok(()) => self.snapshots.push(key.clone()),
                    Err(berth_snapshot::Error::AlreadyExists(_)) => {
                        store.snapshotter().remove(&work)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            descs.push(Descriptor {
                media_type: layer_media_type(compression).into(),
                digest: blob.clone(),
                size: *blob_size,
                platform: None,
                annotations: Default::default(),
                extra: Default::default(),
            });
        }
        let id = {
            let _gc = store.gc_guard();
            let id = store.content().put(&p.config, None)?;
            store.db().lease_add_content(&self.lease, &id)?;
            self.blobs.push(id.clone());
            id
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: id.clone(),
                size: p.config.len() as u64,
                platform: None,
                annotations: Default::default(),
                extra: Default::default(),
            },
            layers: descs,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_digest = {
            let _gc = store.gc_guard();
            let d = store.content().put(&json(&manifest)?, None)?;
            store.db().lease_add_content(&self.lease, &d)?;
            self.blobs.push(d.clone());
            d
        };
        let record = ImageRecord {
            id,
            manifest_digest,
            media_type: MEDIA_OCI_MANIFEST.into(),
            index_digest: None,
            size,
            created: config.created.clone(),
            platform: config.platform(),
            layers: p.layers.iter().map(|(_, d, _)| d.clone()).collect(),
            diff_ids: diff_ids.clone(),
            chain_ids: chain,
            parent: None,
            labels: config
                .config
                .as_ref()
                .map(|c| c.labels.clone())
                .unwrap_or_default(),
        };
        Ok((record, p.tags.clone()))
    }

    /// Drops the lease, then everything this load wrote that nothing else needs (on success:
    /// the members no image uses; on failure: everything not shared).
    fn finish(&mut self, ok: bool) {
        let store = self.store;
        for w in self.work.iter().rev() {
            match store.snapshotter().remove(w) {
                Ok(()) | Err(berth_snapshot::Error::NotFound(_)) => {}
                Err(e) => warn!(key = w, error = %e, "cannot remove load snapshot"),
            }
        }
        if let Err(e) = store.db().delete_lease(&self.lease) {
            warn!(lease = self.lease, error = %e, "cannot delete load lease");
            return;
        }
        let _gc = store.gc_guard();
        let roots = match store.db().gc_roots() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot clean up after load");
                return;
            }
        };
        for s in self.snapshots.iter().rev() {
            if roots.snapshots.contains(s) {
                continue;
            }
            match store.snapshotter().remove(s) {
                Ok(()) | Err(berth_snapshot::Error::NotFound(_)) => {}
                Err(e) => warn!(snapshot = s, error = %e, "cannot remove load snapshot"),
            }
        }
        let mut done = HashSet::new();
        for d in &self.blobs {
            if roots.content.contains(d) || !done.insert(d.clone()) {
                continue;
            }
            match store.content().delete(d) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(digest = %d, error = %e, "cannot delete load blob"),
            }
        }
        if !ok {
            debug!("failed load cleaned up");
        }
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<String> {
    let t = entry
        .link_name_bytes()
        .ok_or_else(|| bad(format!("archive member {name}: link without a target")))?;
    String::from_utf8(t.into_owned())
        .map_err(|_| bad(format!("archive member {name}: link target is not UTF-8")))
}

/// Reads a decompressor's output from the thread running it (or a blob's chunks from the
/// thread spooling it), until the sender is gone or `cancel` is set.
struct ChanReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    cancel: Option<Arc<AtomicBool>>,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(io::Error::other("cancelled: the layer is unpacked already"));
        }
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A layer blob as a plain tar stream, and the compression it is stored with. A compressed
/// blob is inflated on a helper thread, so that decompression and unpacking (hashing, writing
/// files) run on two cores instead of one after the other; the thread ends when the stream
/// does or when the reader is dropped.
fn inflating(store: &ImageStore, blob: &Digest) -> Result<(Box<dyn Read>, Compression)> {
    let file = store.content().open_blob(blob)?;
    let mut r = BufReader::with_capacity(COPY_BUF, file);
    let c = sniff(
        r.fill_buf()
            .map_err(|e| Error::Msg(format!("reading blob {blob}: {e}")))?,
    );
    if c == Compression::None {
        return Ok((Box::new(r), c));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let what = blob.to_string();
    std::thread::Builder::new()
        .name("layer-inflate".into())
        .spawn(move || {
            let mut src = match decompressed(r) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut first = true;
            loop {
                let mut buf = vec![0u8; COPY_BUF];
                let mut n = 0;
                while n < buf.len() {
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(io::Error::new(
                                e.kind(),
                                format!("decompressing {what}: {e}"),
                            )));
                            return;
                        }
                    }
                }
                if n == 0 {
                    return;
                }
                if first && sniff(&buf[..n]) != Compression::None {
                    // A layer is compressed once; a compressed stream inside is not a tar.
                    let _ = tx.send(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{what} is compressed twice"),
                    )));
                    return;
                }
                first = false;
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| Error::Msg(format!("starting a decompression thread: {e}")))?;
    Ok((
        Box::new(ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            cancel: None,
        }),
        c,
    ))
}

/// The digest of a layer blob's uncompressed content, and its compression.
fn uncompressed_digest(store: &ImageStore, blob: &Digest) -> Result<(Digest, Compression)> {
    let (mut src, c) = inflating(store, blob)?;
    let mut h = Hasher::new(Algorithm::Sha256);
    io::copy(&mut src, &mut h).map_err(|e| bad(format!("layer {blob}: {e}")))?;
    Ok((h.finalize(), c))
}

fn read_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("{what} is not valid: {e}")))
}

fn parse_tag(s: &str, who: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(s)
        .map_err(|e| bad(format!("{who}: invalid reference {s:?}: {e}")))?;
    if r.digest().is_some() {
        return Err(bad(format!("{who}: {s:?} is not a tag")));
    }
    Ok(r.docker_ref())
}

/// Whether an index entry's platform (if any) is this host's.
fn platform_matches(p: Option<&serde_json::Value>) -> bool {
    let host = host_platform();
    match p {
        None => false,
        Some(v) => {
            v.get("os").and_then(|x| x.as_str()) == Some(host.os.as_str())
                && v.get("architecture").and_then(|x| x.as_str())
                    == Some(host.architecture.as_str())
        }
    }
}

impl LoadCtx<'_> {
    /// The bytes of a JSON member (JSON blobs live in the content store).
    fn small(&self, r: Resolved<'_>, who: &str) -> Result<Vec<u8>> {
        match r {
            Resolved::Mem(b) => Ok(b.to_vec()),
            Resolved::Blob(d, n) => {
                if n > JSON_LIMIT {
                    return Err(bad(format!(
                        "{who} is too large ({n} bytes, at most {JSON_LIMIT})"
                    )));
                }
                Ok(self.store.content().read(d)?)
            }
        }
    }

    /// The images an archive describes: from `manifest.json` if there is one (Docker's
    /// format, old or new), else from `index.json` (OCI image layout).
    fn plans(&self, m: &Members) -> Result<Vec<Plan>> {
        let mut plans: Vec<Plan> = Vec::new();
        if m.map.contains_key("manifest.json") {
            let bytes = self.small(m.resolve("manifest.json", "the archive")?, "manifest.json")?;
            let entries: Vec<ArchiveEntry> = read_json(&bytes, "manifest.json")?;
            if entries.is_empty() {
                return Err(bad("manifest.json lists no image"));
            }
            if entries.len() > MAX_IMAGES {
                return Err(bad(format!(
                    "manifest.json lists more than {MAX_IMAGES} images"
                )));
            }
            for (i, e) in entries.iter().enumerate() {
                let who = format!("manifest.json entry {}", i + 1);
                let config = self.small(
                    m.resolve(&e.config, &who)?,
                    &format!("image config {}", e.config),
                )?;
                if e.layers.len() > MAX_LAYERS {
                    return Err(bad(format!("{who}: more than {MAX_LAYERS} layers")));
                }
                let mut layers = Vec::new();
                for l in &e.layers {
                    match m.resolve(l, &who)? {
                        Resolved::Blob(d, n) => layers.push((l.clone(), d.clone(), n)),
                        Resolved::Mem(_) => {
                            return Err(bad(format!("{who}: layer {l} is not a layer tar")));
                        }
                    }
                }
                let tags = e
                    .repo_tags
                    .iter()
                    .flatten()
                    .map(|t| parse_tag(t, &who))
                    .collect::<Result<Vec<_>>>()?;
                merge(
                    &mut plans,
                    Plan {
                        config_name: e.config.clone(),
                        config,
                        layers,
                        tags,
                    },
                );
            }
        } else if m.map.contains_key("index.json") {
            let bytes = self.small(m.resolve("index.json", "the archive")?, "index.json")?;
            let index: Index = read_json(&bytes, "index.json")?;
            if index.manifests.is_empty() {
                return Err(bad("index.json lists no image"));
            }
            if index.manifests.len() > MAX_IMAGES {
                return Err(bad(format!(
                    "index.json lists more than {MAX_IMAGES} images"
                )));
            }
            let blob = |d: &Digest, size: u64, who: &str| -> Result<Resolved<'_>> {
                let path = format!("blobs/{}/{}", d.algorithm().as_str(), d.hex());
                let r = m.resolve(&path, who)?;
                let n = match &r {
                    Resolved::Mem(b) => b.len() as u64,
                    Resolved::Blob(_, n) => *n,
                };
                if n != size {
                    return Err(bad(format!(
                        "{who}: blob {d} has {n} bytes, its descriptor says {size}"
                    )));
                }
                Ok(r)
            };
            for (i, top) in index.manifests.iter().enumerate() {
                let who = format!("index.json manifest {}", i + 1);
                let mut desc = top.clone();
                let mut depth = 0;
                let manifest = loop {
                    depth += 1;
                    if depth > 4 {
                        return Err(bad(format!("{who}: indexes nested too deeply")));
                    }
                    let bytes = self.small(blob(&desc.digest, desc.size, &who)?, &who)?;
                    match parse_manifest(&bytes, Some(&desc.media_type))
                        .map_err(|e| bad(format!("{who} ({}): {e}", desc.digest)))?
                    {
                        ManifestDoc::Manifest(man, _) => break man,
                        ManifestDoc::Index(ix, mt) => {
                            let pick = match ix.manifests.as_slice() {
                                [only] => only.clone(),
                                many => many
                                    .iter()
                                    .find(|d| platform_matches(d.platform.as_ref()))
                                    .cloned()
                                    .ok_or_else(|| {
                                        let h = host_platform();
                                        bad(format!(
                                            "{who}: the {} {} has no manifest for {}/{}",
                                            if mt == MEDIA_DOCKER_LIST {
                                                "manifest list"
                                            } else {
                                                "index"
                                            },
                                            desc.digest,
                                            h.os,
                                            h.architecture
                                        ))
                                    })?,
                            };
                            desc = pick;
                        }
                    }
                };
                let config_who = format!("image config {}", manifest.config.digest);
                let config = self.small(
                    blob(&manifest.config.digest, manifest.config.size, &who)?,
                    &config_who,
                )?;
                if manifest.layers.len() > MAX_LAYERS {
                    return Err(bad(format!("{who}: more than {MAX_LAYERS} layers")));
                }
                let mut layers = Vec::new();
                for l in &manifest.layers {
                    if !crate::model::is_layer_media_type(&l.media_type) {
                        return Err(bad(format!(
                            "{who}: layer {} has unsupported media type {}",
                            l.digest, l.media_type
                        )));
                    }
                    match blob(&l.digest, l.size, &who)? {
                        Resolved::Blob(d, n) => layers.push((
                            format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()),
                            d.clone(),
                            n,
                        )),
                        Resolved::Mem(_) => {
                            return Err(bad(format!("{who}: layer {} is not a blob", l.digest)));
                        }
                    }
                }
                let mut tags = Vec::new();
                if let Some(n) = top.annotations.get("io.containerd.image.name") {
                    tags.push(parse_tag(n, &who)?);
                } else if let Some(n) = top.annotations.get("org.opencontainers.image.ref.name")
                    && (n.contains('/') || n.contains(':'))
                    && let Ok(r) = parse_tag(n, &who)
                {
                    tags.push(r);
                }
                merge(
                    &mut plans,
                    Plan {
                        config_name: config_who,
                        config,
                        layers,
                        tags,
                    },
                );
            }
        } else {
            return Err(bad(
                "the archive has neither manifest.json nor index.json: not an image archive",
            ));
        }
        Ok(plans)
    }
}

/// Adds a plan, folding one for the same config (another tag of the same image) into it.
fn merge(plans: &mut Vec<Plan>, p: Plan) {
    if let Some(q) = plans.iter_mut().find(|q| {
        q.config == p.config
            && q.layers
                .iter()
                .map(|l| &l.1)
                .eq(p.layers.iter().map(|l| &l.1))
    }) {
        for t in p.tags {
            if !q.tags.contains(&t) {
                q.tags.push(t);
            }
        }
    } else {
        plans.push(p);
    }
}

/// A `cargo fuzz` target body for [`ImageStore::load`]: loads `data` into a fresh store in a
/// scratch directory (with budgets: 16 MiB of blobs, 16 MiB and 10 000 entries per layer, no
/// device nodes) and panics if a refused archive left anything behind (an image, a lease, a
/// snapshot, a blob, an ingest file), if any blob does not verify, or if anything appeared
/// beside the store. Errors from the archive are expected; a panic is a finding.
pub fn fuzz_load(data: &[u8]) {
    use std::sync::Arc;
    let Ok(t) = tempfile::Builder::new()
        .prefix("berth-fuzz-load-")
        .tempdir()
    else {
        return;
    };
    let base = t.path();
    let Ok(db) = berth_store::Db::open(base.join("meta.redb")) else {
        return;
    };
    let Ok(content) = berth_store::ContentStore::open(base.join("content")) else {
        return;
    };
    let Ok(snaps) =
        berth_snapshot::Snapshotter::open(base.join("snapshots"), berth_snapshot::Driver::Auto)
    else {
        return;
    };
    let store = ImageStore::new(Arc::new(db), content, Arc::new(snaps));
    let opts = LoadOptions {
        apply: ApplyOptions {
            max_bytes: Some(16 << 20),
            max_entries: Some(10_000),
            devices: false,
            ..Default::default()
        },
        max_blob_bytes: Some(16 << 20),
    };
    let res = store.load(data, &opts);
    let blobs = store.content().list().unwrap_or_default();
    for d in &blobs {
        assert!(
            store.content().verify(d).is_ok(),
            "blob {d} does not verify"
        );
    }
    assert!(
        store.db().leases().map(|l| l.is_empty()).unwrap_or(true),
        "a lease was left"
    );
    if res.is_err() {
        assert!(
            store.list().map(|l| l.is_empty()).unwrap_or(true),
            "a refused archive listed an image"
        );
        assert!(blobs.is_empty(), "a refused archive left blobs");
        assert!(
            store.snapshotter().list().is_empty(),
            "a refused archive left snapshots"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        ["content", "meta.redb", "snapshots"],
        "load wrote beside the store"
    );
    // Snapshots may hold read-only directories; the snapshotter removes them properly.
    for _ in 0..MAX_LAYERS {
        let left = store.snapshotter().list();
        if left.is_empty() {
            break;
        }
        for info in left {
            let _ = store.snapshotter().remove(&info.name);
        }
    }
}
