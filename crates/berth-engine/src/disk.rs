//! Disk usage and reclaiming it: `docker images` with all its filters, image sizes measured
//! on disk, `GraphDriver` data, `docker image prune`, `GET /system/df` and garbage collection
//! after removals.
//!
//! Sizes are real: an image's size is the disk usage (`st_blocks`, as `du` counts, hard links
//! once) of its layer snapshots, a container's `SizeRw` that of its writable snapshot. A
//! committed layer never changes, so its size is measured once and remembered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use berth_api_types::Filters;
use berth_api_types::models::{
    ContainerSummary, DriverData, ImageDeleteResponseItem, ImagePruneResponse, ImageSummary,
};
use berth_image::DeleteItem;
use berth_store::ImageRecord;
use berth_types::Error;
use serde_json::{Value, json};

use crate::clock;
use crate::engine::Engine;

/// Sizes of committed layer snapshots, by snapshotter root and chain id.
fn layer_cache() -> &'static Mutex<HashMap<(PathBuf, String), u64>> {
    static CACHE: OnceLock<Mutex<HashMap<(PathBuf, String), u64>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn secs(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(clock::parse_rfc3339)
        .map_or(0, |ns| (ns / 1_000_000_000) as i64)
}

fn nanos(t: &Option<String>) -> i128 {
    t.as_deref().and_then(clock::parse_rfc3339).unwrap_or(0)
}

/// `true`/`false` (and `1`/`0`) as Docker's boolean filters take them.
fn filter_bool(filters: &Filters, name: &str) -> Result<Option<bool>, Error> {
    match filters.get(name).first().map(String::as_str) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(v) => Err(Error::invalid_parameter(format!(
            "invalid filter '{name}={v}'"
        ))),
    }
}

/// Docker's `until` filter value (Unix time, RFC 3339 or a duration before now), in ns.
fn filter_until(filters: &Filters) -> Result<Option<i128>, Error> {
    match filters.get("until").first() {
        None => Ok(None),
        Some(u) => clock::parse_timestamp(u, clock::now_ns())
            .map(Some)
            .ok_or_else(|| {
                Error::invalid_parameter(format!(
                    "invalid filter 'until={u}': failed to parse value as time or duration"
                ))
            }),
    }
}

/// Whether `labels` carry any of the `label!` filter's `key` / `key=value`.
fn matches_negated(filters: &Filters, labels: &HashMap<String, String>) -> bool {
    filters
        .get("label!")
        .iter()
        .any(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
}

/// Go's `path.Match`: `*` is any run of non-`/` bytes, `?` one non-`/` byte, `[…]` a class
/// (`^` or `!` negates, ranges `a-z`, `\` escapes). A malformed class matches nothing.
pub(crate) fn path_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => {
            path_match(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && path_match(p, &s[1..]))
        }
        Some(b'?') => !s.is_empty() && s[0] != b'/' && path_match(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some((&c, rest)) = s.split_first() else {
                return false;
            };
            if c == b'/' {
                return false;
            }
            let mut i = 1;
            let neg = matches!(p.get(i), Some(b'^' | b'!'));
            if neg {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            loop {
                let Some(&lo) = p.get(i) else { return false };
                if lo == b']' && !first {
                    i += 1;
                    break;
                }
                first = false;
                let lo = if lo == b'\\' {
                    i += 1;
                    match p.get(i) {
                        Some(&x) => x,
                        None => return false,
                    }
                } else {
                    lo
                };
                i += 1;
                let hi = if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|x| *x != b']') {
                    i += 2;
                    p[i - 1]
                } else {
                    lo
                };
                if lo <= c && c <= hi {
                    hit = true;
                }
            }
            hit != neg && path_match(&p[i..], rest)
        }
        Some(b'\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && path_match(&p[2..], &s[1..]),
        Some(&x) => !s.is_empty() && s[0] == x && path_match(&p[1..], &s[1..]),
    }
}

/// Docker's `reference` filter (distribution's `FamiliarMatch`): the pattern against the
/// familiar reference (`busybox:latest`), else against its name (`busybox`).
pub(crate) fn reference_matches(familiar: &str, pattern: &str) -> bool {
    if path_match(pattern.as_bytes(), familiar.as_bytes()) {
        return true;
    }
    let name = match familiar.rfind(['@', ':']) {
        Some(i) if !familiar[i..].contains('/') => &familiar[..i],
        _ => familiar,
    };
    path_match(pattern.as_bytes(), name.as_bytes())
}

/// Disk bytes (`st_blocks`, as `du` counts, hard links once) below `dir`, links not followed
/// and other file systems not entered; 0 if it cannot be read.
fn dir_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = root.dev();
    let mut seen = HashSet::new();
    let mut total = root.blocks() * 512;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert(m.ino()) {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

impl Engine {
    /// The disk usage of one committed layer (cached: layers never change).
    pub(crate) fn layer_size(&self, chain_id: &str) -> u64 {
        let snaps = self.inner.images.store().snapshotter();
        let key = (snaps.root().to_path_buf(), chain_id.to_string());
        if let Some(n) = layer_cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return *n;
        }
        let Ok(u) = snaps.usage(chain_id) else {
            return 0;
        };
        layer_cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, u.size);
        u.size
    }

    /// An image's size on disk: the sum of its layers' disk usage.
    pub(crate) fn image_disk_size(&self, rec: &ImageRecord) -> u64 {
        rec.chain_ids
            .iter()
            .map(|c| self.layer_size(c.as_str()))
            .sum()
    }

    /// The disk usage of a container's writable layer.
    pub(crate) fn container_size_rw(&self, snapshot_key: &str) -> u64 {
        self.inner
            .images
            .store()
            .snapshotter()
            .usage(snapshot_key)
            .map_or(0, |u| u.size)
    }

    /// `GraphDriver` as Docker's overlay2 shows it: the top layer's directory as `UpperDir`,
    /// the ones below (nearest first) as `LowerDir`, all real snapshot directories.
    pub(crate) fn graph_driver(&self, rec: &ImageRecord) -> DriverData {
        let snaps = self.inner.images.store().snapshotter();
        let mut data = HashMap::new();
        if let Some(top) = rec.top_snapshot()
            && let Ok(p) = snaps.paths(top.as_str())
        {
            data.insert("UpperDir".to_string(), p.fs.display().to_string());
            data.insert("WorkDir".to_string(), p.work.display().to_string());
            if let Some(parent) = p.fs.parent() {
                data.insert(
                    "MergedDir".to_string(),
                    parent.join("merged").display().to_string(),
                );
            }
            if !p.lowers.is_empty() {
                let lowers: Vec<String> =
                    p.lowers.iter().map(|l| l.display().to_string()).collect();
                data.insert("LowerDir".to_string(), lowers.join(":"));
            }
        }
        DriverData {
            name: snaps.driver().to_string(),
            data,
        }
    }

    /// `GET /images/json` (blocking): Docker's listing with the filters `dangling`, `label`,
    /// `before`, `since`, `reference` and `until`. With `df`, `SharedSize` and the container
    /// counts are computed as `system df` shows them.
    pub(crate) fn list_images(
        &self,
        all: bool,
        filters: &Filters,
        df: bool,
    ) -> Result<Vec<ImageSummary>, Error> {
        filters
            .check(&["dangling", "label", "before", "since", "reference", "until"])
            .map_err(Error::invalid_parameter)?;
        let dangling = filter_bool(filters, "dangling")?;
        let until = filter_until(filters)?;
        let created_of = |name: &str| -> Result<i128, Error> {
            let r = self.inner.images.resolve(name)?;
            let rec = self
                .inner
                .images
                .store()
                .resolve(&r.id)
                .map_err(Error::from)?;
            Ok(nanos(&rec.created))
        };
        let before = filters
            .get("before")
            .first()
            .map(|b| created_of(b))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|b| created_of(b))
            .transpose()?;
        let list = self.inner.images.store().list().map_err(Error::from)?;
        let parents: HashSet<String> = list
            .iter()
            .filter_map(|s| s.record.parent.as_ref().map(|p| p.to_string()))
            .collect();
        let mut users: HashMap<String, i64> = HashMap::new();
        for c in self.all() {
            *users.entry(c.record().image).or_default() += 1;
        }
        // How many images share each layer (for SharedSize).
        let mut layer_users: HashMap<String, usize> = HashMap::new();
        if df {
            for s in &list {
                for c in &s.record.chain_ids {
                    *layer_users.entry(c.as_str().to_string()).or_default() += 1;
                }
            }
        }
        let patterns = filters.get("reference");
        let mut out = Vec::new();
        for s in list {
            let id = s.record.id.to_string();
            let created = secs(&s.record.created);
            let labels: HashMap<String, String> = s.record.labels.clone().into_iter().collect();
            if !filters.match_labels("label", &labels) {
                continue;
            }
            let created_ns = nanos(&s.record.created);
            if before.is_some_and(|b| created_ns >= b) || since.is_some_and(|t| created_ns <= t) {
                continue;
            }
            if until.is_some_and(|u| created_ns > u) {
                continue;
            }
            let keep =
                |f: &str| patterns.is_empty() || patterns.iter().any(|p| reference_matches(f, p));
            let tags: Vec<String> = s
                .repo_tags
                .iter()
                .map(|r| r.familiar())
                .filter(|f| keep(f))
                .collect();
            let digests: Vec<String> = s
                .repo_digests
                .iter()
                .map(|r| r.familiar())
                .filter(|f| keep(f))
                .collect();
            if tags.is_empty() && digests.is_empty() {
                // Untagged: shown when dangling (no child images) or with --all; never when
                // filtering by reference or asking for dangling=false.
                if !patterns.is_empty() || dangling == Some(false) {
                    continue;
                }
                if !all && parents.contains(&id) && dangling != Some(true) {
                    continue;
                }
                if dangling == Some(true) && parents.contains(&id) {
                    continue;
                }
            } else if dangling == Some(true) {
                continue;
            }
            let size = self.image_disk_size(&s.record) as i64;
            let shared = if df {
                s.record
                    .chain_ids
                    .iter()
                    .filter(|c| layer_users.get(c.as_str()).is_some_and(|n| *n > 1))
                    .map(|c| self.layer_size(c.as_str()) as i64)
                    .sum()
            } else {
                -1
            };
            out.push((
                created_ns,
                ImageSummary {
                    id: id.clone(),
                    parent_id: s
                        .record
                        .parent
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    repo_tags: tags,
                    repo_digests: digests,
                    created,
                    size,
                    shared_size: shared,
                    labels,
                    containers: users.get(&id).copied().unwrap_or(0),
                    ..Default::default()
                },
            ));
        }
        out.sort_by_key(|(ns, _)| std::cmp::Reverse(*ns));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// Collects garbage after a removal; failures are logged, never the caller's problem.
    pub(crate) fn collect_garbage(&self) -> u64 {
        match self.inner.images.store().gc() {
            Ok(r) => r.bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection failed");
                0
            }
        }
    }

    /// `POST /images/prune` (blocking). `dangling=true` (the default) removes images without
    /// any reference and without child images; `dangling=false` (`-a`) every image no
    /// container uses. `label`, `label!` and `until` narrow the set. Untagged parents freed
    /// by a removal are removed in turn, as Docker's prune does. Reports what was untagged
    /// and deleted, and the disk bytes freed.
    pub(crate) fn prune_images(&self, filters: &Filters) -> Result<ImagePruneResponse, Error> {
        filters
            .check(&["dangling", "label", "label!", "until"])
            .map_err(Error::invalid_parameter)?;
        let all = filter_bool(filters, "dangling")? == Some(false);
        let until = filter_until(filters)?;
        let store = self.inner.images.store();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        let mut tried: HashSet<String> = HashSet::new();
        loop {
            let used: HashSet<String> = self.all().iter().map(|c| c.record().image).collect();
            let list = store.list().map_err(Error::from)?;
            let parents: HashSet<String> = list
                .iter()
                .filter_map(|s| s.record.parent.as_ref().map(|p| p.to_string()))
                .collect();
            let mut progress = false;
            for s in list {
                let id = s.record.id.to_string();
                if used.contains(&id) || tried.contains(&id) {
                    continue;
                }
                let untagged = s.repo_tags.is_empty() && s.repo_digests.is_empty();
                if !all && !untagged {
                    continue;
                }
                if parents.contains(&id) && untagged {
                    // An intermediate image: it goes with its last child.
                    continue;
                }
                let labels: HashMap<String, String> = s.record.labels.clone().into_iter().collect();
                if !filters.match_labels("label", &labels) || matches_negated(filters, &labels) {
                    continue;
                }
                if until.is_some_and(|u| nanos(&s.record.created) > u) {
                    continue;
                }
                if parents.contains(&id) {
                    // A tagged parent of other images (`-a`): as Docker does, its references
                    // go and the image stays under its children.
                    for r in s.repo_tags.iter().chain(&s.repo_digests) {
                        if store.untag(r).is_ok() {
                            progress = true;
                            deleted.push(self.report_delete(DeleteItem::Untagged(r.familiar())));
                        }
                    }
                    continue;
                }
                tried.insert(id.clone());
                // Not in use (checked above), so forcing only lifts the refusal of an
                // image tagged in several repositories, which prune removes anyway.
                match store.remove_reporting(&id, true, &self.in_use()) {
                    Ok((items, freed)) => {
                        progress = true;
                        reclaimed += freed;
                        for it in items {
                            deleted.push(self.report_delete(it));
                        }
                    }
                    Err(e) => tracing::debug!(image = id, error = %e, "prune kept an image"),
                }
            }
            if !progress {
                break;
            }
        }
        reclaimed += self.collect_garbage();
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), reclaimed.to_string());
        self.inner
            .events
            .publish("image", "prune", String::new(), attrs);
        Ok(ImagePruneResponse {
            images_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }

    /// One item of an image removal as the API reports it, with its event.
    pub(crate) fn report_delete(&self, it: DeleteItem) -> ImageDeleteResponseItem {
        match it {
            DeleteItem::Untagged(r) => {
                let mut attrs = BTreeMap::new();
                attrs.insert("name".to_string(), r.clone());
                self.inner
                    .events
                    .publish("image", "untag", r.clone(), attrs);
                ImageDeleteResponseItem {
                    untagged: Some(r),
                    deleted: None,
                }
            }
            DeleteItem::Deleted(d) => {
                self.inner
                    .events
                    .publish("image", "delete", d.to_string(), Default::default());
                ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(d.to_string()),
                }
            }
        }
    }

    /// Sets `SizeRw` and `SizeRootFs` on container summaries.
    pub(crate) fn fill_sizes(&self, list: &mut [ContainerSummary]) {
        let recs: HashMap<String, (String, String)> = self
            .all()
            .iter()
            .map(|c| {
                let r = c.record();
                (r.id.clone(), (r.snapshot_key.clone(), r.image.clone()))
            })
            .collect();
        let images: HashMap<String, ImageRecord> = self
            .inner
            .images
            .store()
            .list()
            .map(|l| {
                l.into_iter()
                    .map(|s| (s.record.id.to_string(), s.record))
                    .collect()
            })
            .unwrap_or_default();
        for c in list {
            let Some((key, image)) = c.id.as_ref().and_then(|id| recs.get(id)) else {
                continue;
            };
            let rw = self.container_size_rw(key) as i64;
            let base = images
                .get(image)
                .map_or(0, |r| self.image_disk_size(r) as i64);
            c.size_rw = Some(rw);
            c.size_root_fs = Some(rw + base);
        }
    }

    /// `GET /system/df` (blocking): `types` (`container`, `image`, `volume`, `build-cache`;
    /// empty for all) selects what is computed; the rest is left out.
    pub(crate) fn system_df(
        &self,
        types: &[String],
        containers: Vec<ContainerSummary>,
    ) -> Result<Value, Error> {
        for t in types {
            if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
                return Err(Error::invalid_parameter(format!(
                    "unknown object type: {t}"
                )));
            }
        }
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let mut out = serde_json::Map::new();
        if want("image") {
            let images = self.list_images(false, &Filters::default(), true)?;
            let mut layers: HashSet<String> = HashSet::new();
            for s in self.inner.images.store().list().map_err(Error::from)? {
                layers.extend(s.record.chain_ids.iter().map(|c| c.as_str().to_string()));
            }
            let layers_size: u64 = layers.iter().map(|c| self.layer_size(c)).sum();
            out.insert("LayersSize".into(), json!(layers_size));
            out.insert(
                "Images".into(),
                serde_json::to_value(images).map_err(|e| Error::internal(e.to_string()))?,
            );
        }
        if want("container") {
            let mut list = containers;
            self.fill_sizes(&mut list);
            out.insert(
                "Containers".into(),
                serde_json::to_value(list).map_err(|e| Error::internal(e.to_string()))?,
            );
        }
        if want("volume") {
            let vols = self
                .volumes()
                .list(&Default::default(), &|_| false)
                .map_err(|e| Error::system(format!("listing volumes: {e}")))?;
            let list: Vec<Value> = vols
                .into_iter()
                .map(|v| {
                    let refs = self.volume_users(&v.name).len();
                    json!({
                        "Name": v.name,
                        "Driver": v.driver,
                        "Mountpoint": v.mountpoint.display().to_string(),
                        "CreatedAt": v.created_at,
                        "Labels": v.labels,
                        "Scope": "local",
                        "Options": v.options,
                        "UsageData": {"Size": dir_usage(&v.mountpoint), "RefCount": refs},
                    })
                })
                .collect();
            out.insert("Volumes".into(), Value::Array(list));
        }
        if want("build-cache") {
            out.insert("BuildCache".into(), json!([]));
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        let m = |p: &str, s: &str| path_match(p.as_bytes(), s.as_bytes());
        assert!(m("busy*", "busybox"));
        assert!(!m("busy*", "busy/box"));
        assert!(m("b?sybox", "busybox"));
        assert!(m("[a-c]usybox", "busybox"));
        assert!(!m("[^a-c]usybox", "busybox"));
        assert!(m("*/*", "library/busybox"));
        assert!(!m("*", "library/busybox"));
        assert!(!m("[", "x"));
    }

    #[test]
    fn docker_reference_filter() {
        assert!(reference_matches("busybox:latest", "busybox"));
        assert!(reference_matches("busybox:latest", "busy*"));
        assert!(reference_matches("busybox:latest", "busybox:l*"));
        assert!(!reference_matches("busybox:latest", "busybox:1"));
        assert!(reference_matches("me/app:1", "me/*"));
        assert!(!reference_matches("me/app:1", "*"));
        assert!(reference_matches(
            "localhost:5000/app:1",
            "localhost:5000/app"
        ));
    }
}
