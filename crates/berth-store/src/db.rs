//! The metadata database: what berthd knows about images, tags, containers, snapshots,
//! leases, volumes and networks, in one file (`<root>/metadata.redb`).
//!
//! The engine is [redb](https://www.redb.org), an embedded, pure-Rust, copy-on-write B-tree
//! store with ACID transactions; `DB.md` beside this crate records why it was chosen over
//! SQLite, with measurements. Every commit is durable (fsync'd) before it returns.
//!
//! # Schema, version 1
//!
//! Every table maps a UTF-8 string key to a value that is a JSON document (`&str → &[u8]` in
//! redb terms). JSON keeps records readable in a dump and lets fields be added without a
//! migration (unknown fields are ignored on read, missing optional ones default).
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `schema_version` | the schema version, a JSON number (this build: [`SCHEMA_VERSION`]) |
//! | `images` | image id = config digest, `sha256:<hex>` | [`ImageRecord`] |
//! | `tags` | normalized reference, `docker.io/library/busybox:latest` or `…/busybox@sha256:<hex>` (see [`berth_types::Reference::docker_ref`]) | the image id, a JSON string |
//! | `containers` | container id (64 hex) | [`ContainerRecord`]: id, name, and a JSON document defined by the container service |
//! | `names` | container name (as the container service spells it, `/web`) | the container id, a JSON string |
//! | `snapshots` | snapshot key | [`SnapshotRef`]: who needs the snapshot (a container's read-write layer) |
//! | `leases` | lease id | [`Lease`] |
//! | `volumes` | volume name | opaque JSON, defined by the volume service |
//! | `networks` | network id (64 hex) | opaque JSON, defined by the network service |
//!
//! Invariants kept by the write helpers: every `names` entry points at a `containers` record
//! with that name and vice versa ([`WriteTx::create_container`] reserves the name in the same
//! transaction as the insert, so two creates racing for one name cannot both succeed); every
//! `tags` value is the key of an `images` record (callers delete tags with their image).
//! Executions (`docker exec`) are not stored: they live only as long as the daemon.
//!
//! Keys are ordered byte-wise, so [`ReadTx::list`] with a prefix (an id prefix, a repository
//! name followed by `:`) is a range scan.
//!
//! # Versions and migrations
//!
//! [`Db::open`] creates the tables of the current schema and records [`SCHEMA_VERSION`] in a
//! new file. An older file is migrated step by step in one transaction (there are no steps yet:
//! version 1 is the first). A file with a newer version is refused with
//! [`Error::SchemaTooNew`], so an older berthd never misreads or damages what a newer one
//! wrote. Adding a field to a JSON value does not need a new version; changing a key format or
//! a field's meaning does.
//!
//! # Concurrency
//!
//! [`Db`] is `Send + Sync`; share it in an `Arc`. Read transactions see a consistent snapshot
//! and run concurrently with each other and with the one write transaction at a time (a second
//! [`Db::write`] blocks until the first finishes; calling [`Db::write`] from inside a write
//! closure deadlocks). Calls are blocking: point reads take microseconds and a commit one
//! fsync (milliseconds), which async callers may make directly, but large scans and batches
//! belong in `tokio::task::spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_types::Digest;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::error::{Error, Result};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The table holding the schema version.
const META: &str = "meta";
const SCHEMA_VERSION_KEY: &str = "schema_version";

/// A migration from version `n + 1` to `n + 2`, at index `n`.
type Migration = fn(&redb::WriteTransaction) -> Result<()>;
const MIGRATIONS: &[Migration] = &[];
const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize - 1);

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

fn def(name: &'static str) -> Def {
    TableDefinition::new(name)
}

/// A named table whose values are JSON documents of type `V`.
///
/// The type parameter is what makes reads and writes typed: `tx.get(&IMAGES, id)` returns an
/// [`ImageRecord`]. Tables not yet designed hold [`serde_json::Value`].
#[derive(Debug)]
pub struct Table<V> {
    name: &'static str,
    _value: PhantomData<fn() -> V>,
}

impl<V> Table<V> {
    /// A table called `name`. It must be listed in [`TABLES`] to be created on open.
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            _value: PhantomData,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Images by id: `sha256:<hex>` → [`ImageRecord`].
pub const IMAGES: Table<ImageRecord> = Table::new("images");
/// Tags: normalized reference → image id.
pub const TAGS: Table<Digest> = Table::new("tags");
/// Containers by id: → [`ContainerRecord`]. Write through [`WriteTx::create_container`] and
/// friends so that [`NAMES`] stays in step.
pub const CONTAINERS: Table<ContainerRecord> = Table::new("containers");
/// Container names: name → container id. Unique by construction (it is the key).
pub const NAMES: Table<String> = Table::new("names");
/// Snapshots wanted by someone: snapshot key → [`SnapshotRef`]. Garbage collection of
/// snapshots keeps every key listed here (besides images' chain ids and leases).
pub const SNAPSHOTS: Table<SnapshotRef> = Table::new("snapshots");
/// Leases by id: → [`Lease`].
pub const LEASES: Table<Lease> = Table::new("leases");
/// Volumes by name (value defined by the volume service).
pub const VOLUMES: Table<serde_json::Value> = Table::new("volumes");
/// Networks by id (value defined by the network service).
pub const NETWORKS: Table<serde_json::Value> = Table::new("networks");

/// Every data table of the current schema, created by [`Db::open`].
pub const TABLES: [&str; 8] = [
    "images",
    "tags",
    "containers",
    "names",
    "snapshots",
    "leases",
    "volumes",
    "networks",
];

/// An image known to the daemon, keyed by its id (the digest of its config).
///
/// The tags and repo digests naming the image live in [`TAGS`] (reference → id), not here, so
/// that moving a tag is one write. Everything else `docker images` / `docker image inspect`
/// shows and the garbage collector needs is here; the full config and manifest are blobs in
/// the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: the digest of the image config.
    pub id: Digest,
    /// The digest of the manifest whose layers are stored (written locally for imported and
    /// built images).
    pub manifest_digest: Digest,
    /// The media type of that manifest (`application/vnd.oci.image.manifest.v1+json`,
    /// `application/vnd.docker.distribution.manifest.v2+json`).
    pub media_type: String,
    /// The digest of the image index (manifest list) the manifest was chosen from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The image's size in bytes: its layers uncompressed, as Docker reports it.
    pub size: u64,
    /// When the image was built, RFC 3339, as the config's `created` says (it may lack one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The platform the image is for.
    pub platform: Platform,
    /// The layer blobs (compressed, as in the manifest), bottom first.
    #[serde(default)]
    pub layers: Vec<Digest>,
    /// The uncompressed layer digests (the config's `rootfs.diff_ids`), bottom first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
    /// The chain id of each layer prefix, bottom first; the last one is the committed
    /// snapshot holding the image's root filesystem (empty for an image without layers).
    #[serde(default)]
    pub chain_ids: Vec<Digest>,
    /// The image this one was built from (Docker's `Parent`, set by local builds and commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// The config's labels, copied here for `docker images --filter label=…`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl ImageRecord {
    /// The key of the committed snapshot with the image's root filesystem, if it has layers.
    pub fn top_snapshot(&self) -> Option<&Digest> {
        self.chain_ids.last()
    }
}

/// A container's record: its id, its unique name and whatever the container service keeps
/// (config, state, mounts) as one JSON document. The name is also reserved in [`NAMES`];
/// create, rename and delete through [`WriteTx::create_container`],
/// [`WriteTx::rename_container`] and [`WriteTx::delete_container`] keep the two in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container id (64 hex).
    pub id: String,
    /// The container's name, as the container service spells it (Docker: `/web`).
    pub name: String,
    /// Config and state, defined by the container service.
    pub data: serde_json::Value,
}

/// Why a snapshot must be kept: who uses it (a container's read-write layer, a build step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The owner, as `kind:id` (`container:<64 hex>`).
    pub owner: String,
    /// When the reference was recorded, in seconds since the Unix epoch.
    pub created: u64,
}

/// What garbage collection must keep: see [`ReadTx::gc_roots`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcRoots {
    /// Blobs referenced by images (config, manifest, index, layers) or protected by leases.
    pub content: HashSet<Digest>,
    /// Snapshot keys: images' chain ids, [`SNAPSHOTS`] keys, and those protected by leases.
    pub snapshots: HashSet<String>,
}

/// An OCI platform: what an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU architecture, Go-style (`amd64`, `arm64`).
    pub architecture: String,
    /// The architecture variant (`v7`, `v8`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A lease: a named set of blobs and snapshots protected from garbage collection while an
/// operation that creates them (a pull, an import, a commit) is in flight, before anything
/// else references them. Deleting the lease ends the protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The lease's id, chosen by its creator.
    pub id: String,
    /// When the lease was created, in seconds since the Unix epoch.
    pub created: u64,
    /// When the lease stops protecting anything, in seconds since the Unix epoch; `None` for
    /// a lease that lasts until deleted. Expiry guards against operations that die without
    /// cleaning up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The blobs protected.
    #[serde(default)]
    pub content: BTreeSet<Digest>,
    /// The snapshot keys protected.
    #[serde(default)]
    pub snapshots: BTreeSet<String>,
}

impl Lease {
    /// Whether the lease has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| unix_secs(now) >= e)
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The metadata database. See the module documentation for the schema.
#[derive(Debug)]
pub struct Db {
    db: redb::Database,
    path: PathBuf,
}

impl Db {
    /// Opens the database at `path`, creating it if needed, migrating an older schema, and
    /// refusing a newer one ([`Error::SchemaTooNew`]). Fails if another process has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| Error::Io {
                what: format!("create {}", dir.display()),
                err,
            })?;
        }
        let db =
            redb::Database::create(&path).map_err(|e| Error::Db(format!("open {shown}: {e}")))?;
        let tx = db.begin_write()?;
        let found =
            {
                let meta = tx.open_table(def(META))?;
                let v = meta.get(SCHEMA_VERSION_KEY)?;
                match v {
                    None => None,
                    Some(g) => Some(serde_json::from_slice::<u32>(g.value()).map_err(|err| {
                        Error::Decode {
                            table: META,
                            key: SCHEMA_VERSION_KEY.to_string(),
                            err,
                        }
                    })?),
                }
            };
        match found {
            Some(0) => {
                tx.abort()?;
                return Err(Error::Db(format!("{shown}: invalid schema version 0")));
            }
            Some(v) if v > SCHEMA_VERSION => {
                tx.abort()?;
                return Err(Error::SchemaTooNew {
                    path: shown,
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) if v < SCHEMA_VERSION => {
                for (step, migrate) in MIGRATIONS.iter().enumerate().skip(v as usize - 1) {
                    info!(path = %shown, from = step + 1, to = step + 2, "migrating metadata database");
                    migrate(&tx)?;
                }
            }
            Some(_) | None => {}
        }
        for name in TABLES {
            tx.open_table(def(name))?;
        }
        if found != Some(SCHEMA_VERSION) {
            let mut meta = tx.open_table(def(META))?;
            let v = serde_json::to_vec(&SCHEMA_VERSION).map_err(|e| Error::Msg(e.to_string()))?;
            meta.insert(SCHEMA_VERSION_KEY, v.as_slice())?;
        }
        tx.commit()?;
        debug!(path = %shown, version = SCHEMA_VERSION, "metadata database opened");
        Ok(Db { db, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u32> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(def(META))?;
        let g = meta
            .get(SCHEMA_VERSION_KEY)?
            .ok_or_else(|| Error::NotFound {
                table: META,
                key: SCHEMA_VERSION_KEY.to_string(),
            })?;
        serde_json::from_slice(g.value()).map_err(|err| Error::Decode {
            table: META,
            key: SCHEMA_VERSION_KEY.to_string(),
            err,
        })
    }

    /// Runs `f` in a read transaction: a consistent snapshot of every table.
    pub fn read<T, E: From<Error>>(&self, f: impl FnOnce(&ReadTx) -> Result<T, E>) -> Result<T, E> {
        let tx = ReadTx {
            tx: self.db.begin_read().map_err(Error::from)?,
        };
        f(&tx)
    }

    /// Runs `f` in a write transaction and commits if it returns `Ok`. If it returns `Err`
    /// (or panics), nothing it wrote is kept. The commit is durable when this returns.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut tx = WriteTx {
            tx: self.db.begin_write().map_err(Error::from)?,
        };
        match f(&mut tx) {
            Ok(v) => {
                tx.tx.commit().map_err(Error::from)?;
                Ok(v)
            }
            Err(e) => {
                tx.tx.abort().map_err(Error::from)?;
                Err(e)
            }
        }
    }

    /// Creates a lease protecting nothing yet; with `ttl`, it expires after that long.
    /// Fails with [`Error::Exists`] if the id is taken.
    pub fn create_lease(&self, id: &str, ttl: Option<Duration>) -> Result<Lease> {
        self.write(|tx| tx.create_lease(id, ttl))
    }

    /// Deletes a lease, ending its protection; returns whether it existed.
    pub fn delete_lease(&self, id: &str) -> Result<bool> {
        self.write(|tx| tx.delete(&LEASES, id))
    }

    /// Adds a blob to a lease.
    pub fn lease_add_content(&self, id: &str, digest: &Digest) -> Result<()> {
        self.write(|tx| tx.lease_add_content(id, digest))
    }

    /// Adds a snapshot key to a lease.
    pub fn lease_add_snapshot(&self, id: &str, key: &str) -> Result<()> {
        self.write(|tx| tx.lease_add_snapshot(id, key))
    }

    /// Every lease.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        self.read(|tx| Ok(tx.list(&LEASES, "")?.into_iter().map(|(_, l)| l).collect()))
    }

    /// The blobs protected by leases that have not expired.
    pub fn protected_digests(&self) -> Result<HashSet<Digest>> {
        self.read(|tx| tx.protected_digests(SystemTime::now()))
    }

    /// The snapshot keys protected by leases that have not expired.
    pub fn protected_snapshots(&self) -> Result<HashSet<String>> {
        self.read(|tx| tx.protected_snapshots(SystemTime::now()))
    }

    /// Everything garbage collection must keep now (see [`ReadTx::gc_roots`]).
    pub fn gc_roots(&self) -> Result<GcRoots> {
        self.read(|tx| tx.gc_roots(SystemTime::now()))
    }

    /// Deletes expired leases and returns their ids.
    pub fn delete_expired_leases(&self) -> Result<Vec<String>> {
        let now = SystemTime::now();
        self.write(|tx| {
            let expired: Vec<String> = tx
                .list(&LEASES, "")?
                .into_iter()
                .filter(|(_, l)| l.is_expired(now))
                .map(|(k, _)| k)
                .collect();
            for id in &expired {
                tx.delete(&LEASES, id)?;
            }
            Ok(expired)
        })
    }
}

fn encode<V: Serialize>(table: &'static str, key: &str, value: &V) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|err| Error::Decode {
        table,
        key: key.to_string(),
        err,
    })
}

fn decode<V: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> Result<V> {
    serde_json::from_slice(bytes).map_err(|err| Error::Decode {
        table,
        key: key.to_string(),
        err,
    })
}

fn get_in<T, V>(t: &T, table: &'static str, key: &str) -> Result<Option<V>>
where
    T: ReadableTable<&'static str, &'static [u8]>,
    V: DeserializeOwned,
{
    match t.get(key)? {
        Some(g) => Ok(Some(decode(table, key, g.value())?)),
        None => Ok(None),
    }
}

fn list_in<T, V>(t: &T, table: &'static str, prefix: &str) -> Result<Vec<(String, V)>>
where
    T: ReadableTable<&'static str, &'static [u8]>,
    V: DeserializeOwned,
{
    let mut out = Vec::new();
    for entry in t.range(prefix..)? {
        let (k, v) = entry?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_string(), decode(table, key, v.value())?));
    }
    Ok(out)
}

/// Reads shared by [`ReadTx`] and [`WriteTx`] (a write transaction sees its own writes).
macro_rules! reads {
    ($tx:ty) => {
        impl $tx {
            /// The value stored under `key`, if any.
            pub fn get<V: DeserializeOwned>(
                &self,
                table: &Table<V>,
                key: &str,
            ) -> Result<Option<V>> {
                match self.table(table.name)? {
                    Some(t) => get_in(&t, table.name, key),
                    None => Ok(None),
                }
            }

            /// Whether `key` is present.
            pub fn contains<V>(&self, table: &Table<V>, key: &str) -> Result<bool> {
                match self.table(table.name)? {
                    Some(t) => Ok(t.get(key)?.is_some()),
                    None => Ok(false),
                }
            }

            /// Every record whose key starts with `prefix` (all of them for `""`), in key order.
            pub fn list<V: DeserializeOwned>(
                &self,
                table: &Table<V>,
                prefix: &str,
            ) -> Result<Vec<(String, V)>> {
                match self.table(table.name)? {
                    Some(t) => list_in(&t, table.name, prefix),
                    None => Ok(Vec::new()),
                }
            }

            /// The blobs protected by leases not expired at `now`.
            pub fn protected_digests(&self, now: SystemTime) -> Result<HashSet<Digest>> {
                Ok(self
                    .list(&LEASES, "")?
                    .into_iter()
                    .filter(|(_, l)| !l.is_expired(now))
                    .flat_map(|(_, l)| l.content)
                    .collect())
            }

            /// The snapshot keys protected by leases not expired at `now`.
            pub fn protected_snapshots(&self, now: SystemTime) -> Result<HashSet<String>> {
                Ok(self
                    .list(&LEASES, "")?
                    .into_iter()
                    .filter(|(_, l)| !l.is_expired(now))
                    .flat_map(|(_, l)| l.snapshots)
                    .collect())
            }

            /// Everything garbage collection must keep at `now`, from one consistent
            /// snapshot of the database: each image's config, manifest, index and layer
            /// blobs and its chain ids, every [`SNAPSHOTS`] key, and what unexpired leases
            /// protect.
            pub fn gc_roots(&self, now: SystemTime) -> Result<GcRoots> {
                let mut roots = GcRoots::default();
                for (_, img) in self.list(&IMAGES, "")? {
                    roots.content.insert(img.id);
                    roots.content.insert(img.manifest_digest);
                    roots.content.extend(img.index_digest);
                    roots.content.extend(img.layers);
                    roots
                        .snapshots
                        .extend(img.chain_ids.iter().map(|c| c.as_str().to_string()));
                }
                for (key, _) in self.list(&SNAPSHOTS, "")? {
                    roots.snapshots.insert(key);
                }
                for (_, lease) in self.list(&LEASES, "")? {
                    if !lease.is_expired(now) {
                        roots.content.extend(lease.content);
                        roots.snapshots.extend(lease.snapshots);
                    }
                }
                Ok(roots)
            }

            /// The id of the container called `name`, if any.
            pub fn container_by_name(&self, name: &str) -> Result<Option<String>> {
                self.get(&NAMES, name)
            }

            /// Every tag and repo digest (keys of [`TAGS`]) naming image `id`, in key order.
            pub fn refs_of(&self, id: &Digest) -> Result<Vec<String>> {
                Ok(self
                    .list(&TAGS, "")?
                    .into_iter()
                    .filter(|(_, v)| v == id)
                    .map(|(k, _)| k)
                    .collect())
            }
        }
    };
}

/// A read transaction: a consistent snapshot of the database. See [`Db::read`].
pub struct ReadTx {
    tx: redb::ReadTransaction,
}

impl ReadTx {
    fn table(
        &self,
        name: &'static str,
    ) -> Result<Option<redb::ReadOnlyTable<&'static str, &'static [u8]>>> {
        match self.tx.open_table(def(name)) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

reads!(ReadTx);

/// A write transaction. See [`Db::write`].
pub struct WriteTx {
    tx: redb::WriteTransaction,
}

impl WriteTx {
    fn table(
        &self,
        name: &'static str,
    ) -> Result<Option<redb::Table<'_, &'static str, &'static [u8]>>> {
        Ok(Some(self.tx.open_table(def(name))?))
    }

    /// Stores `value` under `key`, replacing any value there.
    pub fn put<V: Serialize>(&mut self, table: &Table<V>, key: &str, value: &V) -> Result<()> {
        let bytes = encode(table.name, key, value)?;
        self.tx
            .open_table(def(table.name))?
            .insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Stores `value` under `key`, failing with [`Error::Exists`] if the key is taken.
    pub fn insert_new<V: Serialize>(
        &mut self,
        table: &Table<V>,
        key: &str,
        value: &V,
    ) -> Result<()> {
        if self.contains(table, key)? {
            return Err(Error::Exists {
                table: table.name,
                key: key.to_string(),
            });
        }
        self.put(table, key, value)
    }

    /// Deletes `key`; returns whether it was there.
    pub fn delete<V>(&mut self, table: &Table<V>, key: &str) -> Result<bool> {
        Ok(self.tx.open_table(def(table.name))?.remove(key)?.is_some())
    }

    /// Inserts a new container record and reserves its name, atomically: fails with
    /// [`Error::NameInUse`] if another container has the name and [`Error::Exists`] if the id
    /// is taken, writing nothing in either case.
    pub fn create_container(&mut self, rec: &ContainerRecord) -> Result<()> {
        if let Some(owner) = self.get(&NAMES, &rec.name)? {
            return Err(Error::NameInUse {
                name: rec.name.clone(),
                id: owner,
            });
        }
        self.insert_new(&CONTAINERS, &rec.id, rec)?;
        self.put(&NAMES, &rec.name, &rec.id)
    }

    /// Replaces the data of an existing container (its id and name stay).
    pub fn update_container(&mut self, id: &str, data: &serde_json::Value) -> Result<()> {
        let mut rec = self.container(id)?;
        rec.data = data.clone();
        self.put(&CONTAINERS, id, &rec)
    }

    /// Renames a container: the new name must be free ([`Error::NameInUse`]), the old one is
    /// released. Renaming to the current name is a no-op.
    pub fn rename_container(&mut self, id: &str, new_name: &str) -> Result<()> {
        let mut rec = self.container(id)?;
        if rec.name == new_name {
            return Ok(());
        }
        if let Some(owner) = self.get(&NAMES, new_name)? {
            return Err(Error::NameInUse {
                name: new_name.to_string(),
                id: owner,
            });
        }
        self.delete(&NAMES, &rec.name)?;
        rec.name = new_name.to_string();
        self.put(&NAMES, new_name, &id.to_string())?;
        self.put(&CONTAINERS, id, &rec)
    }

    /// Deletes a container's record and releases its name; returns the record it deleted,
    /// or `None` if there was none.
    pub fn delete_container(&mut self, id: &str) -> Result<Option<ContainerRecord>> {
        let Some(rec) = self.get(&CONTAINERS, id)? else {
            return Ok(None);
        };
        // Release the name only if it is still this container's (it always is unless the
        // tables were written around these helpers).
        if self.get(&NAMES, &rec.name)?.as_deref() == Some(id) {
            self.delete(&NAMES, &rec.name)?;
        }
        self.delete(&CONTAINERS, id)?;
        Ok(Some(rec))
    }

    fn container(&self, id: &str) -> Result<ContainerRecord> {
        self.get(&CONTAINERS, id)?.ok_or_else(|| Error::NotFound {
            table: CONTAINERS.name,
            key: id.to_string(),
        })
    }

    /// Creates a lease (see [`Db::create_lease`]).
    pub fn create_lease(&mut self, id: &str, ttl: Option<Duration>) -> Result<Lease> {
        let now = SystemTime::now();
        let lease = Lease {
            id: id.to_string(),
            created: unix_secs(now),
            expires: ttl.map(|t| unix_secs(now + t)),
            content: BTreeSet::new(),
            snapshots: BTreeSet::new(),
        };
        self.insert_new(&LEASES, id, &lease)?;
        Ok(lease)
    }

    fn update_lease(&mut self, id: &str, f: impl FnOnce(&mut Lease)) -> Result<()> {
        let mut lease = self.get(&LEASES, id)?.ok_or_else(|| Error::NotFound {
            table: LEASES.name,
            key: id.to_string(),
        })?;
        f(&mut lease);
        self.put(&LEASES, id, &lease)
    }

    /// Adds a blob to a lease; fails with [`Error::NotFound`] if there is no such lease.
    pub fn lease_add_content(&mut self, id: &str, digest: &Digest) -> Result<()> {
        self.update_lease(id, |l| {
            l.content.insert(digest.clone());
        })
    }

    /// Adds a snapshot key to a lease; fails with [`Error::NotFound`] if there is no such lease.
    pub fn lease_add_snapshot(&mut self, id: &str, key: &str) -> Result<()> {
        self.update_lease(id, |l| {
            l.snapshots.insert(key.to_string());
        })
    }
}

reads!(WriteTx);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_constant_is_created_on_open() {
        for name in [
            IMAGES.name(),
            TAGS.name(),
            CONTAINERS.name(),
            NAMES.name(),
            SNAPSHOTS.name(),
            LEASES.name(),
            VOLUMES.name(),
            NETWORKS.name(),
        ] {
            assert!(TABLES.contains(&name), "{name}");
        }
        assert!(!TABLES.contains(&META));
    }

    #[test]
    fn image_record_json_shape() {
        let r = ImageRecord {
            id: Digest::sha256_of(b"c"),
            manifest_digest: Digest::sha256_of(b"m"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            index_digest: None,
            size: 42,
            created: None,
            platform: Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into()),
            },
            layers: vec![Digest::sha256_of(b"l")],
            diff_ids: vec![Digest::sha256_of(b"d")],
            chain_ids: vec![Digest::sha256_of(b"d")],
            parent: None,
            labels: BTreeMap::new(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["id"], r.id.as_str());
        assert_eq!(v["platform"]["variant"], "v8");
        assert!(v.get("created").is_none());
        assert!(v.get("labels").is_none());
        assert_eq!(r.top_snapshot(), Some(&Digest::sha256_of(b"d")));
        // Unknown fields (written by a newer berthd) are ignored, missing optional ones default.
        let mut v2 = v.clone();
        v2["future_field"] = serde_json::json!(true);
        let back: ImageRecord = serde_json::from_value(v2).unwrap();
        assert_eq!(back, r);
    }
}
