//! The content store: blobs (layers, manifests, configs) stored by digest, containerd's model.
//!
//! Layout under the root:
//!
//! ```text
//! <root>/blobs/<algorithm>/<hex>   committed blobs, read-only (0444), named by their digest
//! <root>/ingest/<pid>-<random>     blobs being written (0600); never listed as blobs
//! ```
//!
//! A blob is written through a [`Writer`], which hashes while writing into an ingest file. Only
//! [`Writer::commit`] publishes it, after checking the expected digest and size and syncing the
//! file: the ingest file is hard-linked to its final name (which fails, rather than replaces,
//! if the blob is already there) and then unlinked. A blob is therefore either absent or
//! complete under `blobs/`; a crash leaves at most an ingest file, which
//! [`ContentStore::cleanup_ingest`] removes.
//!
//! Concurrent writers of the same content each get their own ingest file; the first to commit
//! publishes the blob and the others find it there, discard their copy and succeed.
//!
//! Garbage collection ([`ContentStore::gc`]) deletes every blob that the caller does not name
//! as referenced, except blobs younger than a grace period, so that content written by an
//! operation that has not yet recorded it anywhere survives. Operations that take longer than
//! the grace period must protect their blobs with a lease (see [`crate::db::Lease`]).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use berth_types::{Algorithm, Digest, Hasher};
use tracing::{debug, info, warn};

use crate::error::{Context, Error, Result};

/// How long a fresh blob is safe from [`ContentStore::gc`] unless changed with
/// [`ContentStore::set_gc_grace`].
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(10 * 60);

const ALGORITHMS: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];

/// Every this many bytes written, a [`Writer`] asks the kernel to start writing them to disk
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), so that the disk works
/// while the blob is still streaming in and the fsync of [`Writer::commit`] finds most of a
/// large blob written already instead of all of it dirty.
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// A content-addressed blob store rooted at one directory. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Names of the ingest files of writers alive in this process, which cleanup must spare.
    live: Mutex<HashSet<String>>,
    gc_grace: Mutex<Duration>,
}

impl ContentStore {
    /// Opens the store at `root`, creating `blobs/sha256` and `ingest` if needed. Leftover
    /// ingest files are not touched: call [`ContentStore::cleanup_ingest`] at start-up.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs").join(Algorithm::Sha256.as_str());
        fs::create_dir_all(&blobs).ctx(|| format!("create {}", blobs.display()))?;
        let ingest = root.join("ingest");
        fs::create_dir_all(&ingest).ctx(|| format!("create {}", ingest.display()))?;
        fs::set_permissions(&ingest, fs::Permissions::from_mode(0o700))
            .ctx(|| format!("chmod {}", ingest.display()))?;
        debug!(root = %root.display(), "content store opened");
        Ok(ContentStore {
            root,
            inner: Arc::new(Inner {
                live: Mutex::new(HashSet::new()),
                gc_grace: Mutex::new(DEFAULT_GC_GRACE),
            }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets how young a blob must be for [`ContentStore::gc`] to spare it regardless.
    pub fn set_gc_grace(&self, grace: Duration) {
        *self
            .inner
            .gc_grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = grace;
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Starts writing a blob. With `expected`, the content must hash to it (and is hashed with
    /// its algorithm); with `expected_size`, it must be exactly that long, and writing more
    /// fails at once. Without `expected`, the content is hashed with sha256 and stored under
    /// whatever digest it has.
    pub fn writer(&self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<Writer> {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| Error::Msg(format!("random ingest name: {e}")))?;
        let name = format!(
            "{}-{}",
            std::process::id(),
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let path = self.ingest_dir().join(&name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ctx(|| format!("create ingest file {}", path.display()))?;
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone());
        let algorithm = expected
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm);
        Ok(Writer {
            store: self.clone(),
            file: Some(BufWriter::with_capacity(128 * 1024, file)),
            name,
            path,
            hasher: Hasher::new(algorithm),
            written: 0,
            kicked: 0,
            expected,
            expected_size,
        })
    }

    /// Writes `bytes` as a blob in one go (for small content: manifests, configs) and returns
    /// its digest. `expected` is checked as for [`ContentStore::writer`].
    pub fn put(&self, bytes: &[u8], expected: Option<Digest>) -> Result<Digest> {
        let mut w = self.writer(expected, Some(bytes.len() as u64))?;
        w.write_all(bytes)
            .ctx(|| format!("write ingest file {}", w.path.display()))?;
        w.commit()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(e, digest, "open"))
    }

    /// Reads a whole blob into memory (for small content: manifests, configs).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .ctx(|| format!("read blob {digest}"))?;
        Ok(buf)
    }

    /// The size of a blob in bytes.
    pub fn info(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(e, digest, "stat"))
    }

    /// Whether a blob is present.
    pub fn exists(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        path.try_exists()
            .ctx(|| format!("stat blob {}", path.display()))
    }

    /// Deletes a blob. Readers that have it open keep reading it.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| self.not_found_or(e, digest, "delete"))?;
        debug!(%digest, "blob deleted");
        Ok(())
    }

    /// Every blob's digest, sorted. Files under `blobs/` whose names are not digests are skipped
    /// with a warning; ingest files are never listed.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in ALGORITHMS {
            let dir = self.root.join("blobs").join(alg.as_str());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("list {}", dir.display()),
                        err: e,
                    });
                }
            };
            for entry in entries {
                let entry = entry.ctx(|| format!("list {}", dir.display()))?;
                let name = entry.file_name();
                match name.to_str().map(|n| Digest::from_parts(alg, n)) {
                    Some(Ok(d)) => out.push(d),
                    _ => warn!(path = %entry.path().display(), "not a blob, skipped"),
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hashes a blob and fails with [`Error::Corrupt`] if it no longer matches its name.
    pub fn verify(&self, digest: &Digest) -> Result<()> {
        let mut file = self.open_blob(digest)?;
        let mut h = Hasher::new(digest.algorithm());
        io::copy(&mut file, &mut h).ctx(|| format!("read blob {digest}"))?;
        let actual = h.finalize();
        if &actual != digest {
            return Err(Error::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Removes ingest files left behind by writers that are gone (a crash, a killed daemon).
    /// Files of writers alive in this process are kept, so this is safe at any time; it is
    /// meant for start-up. Returns how many files were removed.
    pub fn cleanup_ingest(&self) -> Result<usize> {
        let dir = self.ingest_dir();
        let live = self
            .inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut removed = 0;
        for entry in fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
            let entry = entry.ctx(|| format!("list {}", dir.display()))?;
            if entry.file_name().to_str().is_some_and(|n| live.contains(n)) {
                continue;
            }
            let path = entry.path();
            let res = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match res {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("remove leftover ingest file {}", path.display()),
                        err: e,
                    });
                }
            }
        }
        if removed > 0 {
            info!(removed, "removed leftover ingest files");
        }
        Ok(removed)
    }

    /// Deletes every blob not in `keep` and older than the grace period, and returns the bytes
    /// freed. `keep` is the set of digests referenced by images and protected by leases.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<u64> {
        let grace = *self
            .inner
            .gc_grace
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.gc_with_grace(keep, grace)
    }

    /// [`ContentStore::gc`] with an explicit grace period. `Duration::ZERO` is for a daemon's
    /// start-up, when no writer of this store can be in flight: whatever a crash left
    /// unreferenced goes at once.
    pub fn gc_with_grace(&self, keep: &HashSet<Digest>, grace: Duration) -> Result<u64> {
        let now = SystemTime::now();
        let (mut freed, mut removed) = (0u64, 0usize);
        for digest in self.list()? {
            if keep.contains(&digest) {
                continue;
            }
            let path = self.blob_path(&digest);
            let meta = match fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("stat blob {}", path.display()),
                        err: e,
                    });
                }
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(Duration::ZERO);
            if age < grace {
                debug!(%digest, ?age, "unreferenced blob kept: younger than the gc grace period");
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    freed += meta.len();
                    removed += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("delete blob {}", path.display()),
                        err: e,
                    });
                }
            }
        }
        info!(removed, freed, "content garbage collected");
        Ok(freed)
    }

    fn not_found_or(&self, e: io::Error, digest: &Digest, op: &str) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::BlobNotFound(digest.clone())
        } else {
            Error::Io {
                what: format!("{op} blob {}", self.blob_path(digest).display()),
                err: e,
            }
        }
    }

    fn forget_ingest(&self, name: &str) {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

/// Writes one blob: an [`io::Write`] that hashes what it writes into an ingest file.
///
/// Nothing is visible in the store until [`Writer::commit`] succeeds. Dropping the writer (or
/// [`Writer::abort`]) removes the ingest file.
#[derive(Debug)]
pub struct Writer {
    store: ContentStore,
    file: Option<BufWriter<File>>,
    name: String,
    path: PathBuf,
    hasher: Hasher,
    written: u64,
    /// The file's first bytes whose writeback has been started.
    kicked: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl Writer {
    /// The number of bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn what(&self) -> String {
        self.expected
            .as_ref()
            .map_or_else(|| "blob".to_string(), |d| format!("blob {d}"))
    }

    /// Verifies and publishes the blob, returning its digest.
    ///
    /// Fails with [`Error::SizeMismatch`] or [`Error::DigestMismatch`] (leaving nothing behind)
    /// if the content is not what was expected. Otherwise the content is synced to disk, made
    /// read-only and linked into `blobs/`; if the blob is already there, this copy is discarded
    /// and the commit succeeds all the same.
    pub fn commit(mut self) -> Result<Digest> {
        let buf = self
            .file
            .take()
            .ok_or_else(|| Error::Msg("writer already finished".into()))?;
        let file = buf.into_inner().map_err(|e| Error::Io {
            what: format!("write ingest file {}", self.path.display()),
            err: e.into_error(),
        })?;
        if let Some(expected) = self.expected_size
            && expected != self.written
        {
            return Err(Error::SizeMismatch {
                what: self.what(),
                expected,
                actual: self.written,
            });
        }
        let actual = std::mem::take(&mut self.hasher).finalize();
        if let Some(expected) = &self.expected
            && expected != &actual
        {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        file.sync_all()
            .ctx(|| format!("sync ingest file {}", self.path.display()))?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .ctx(|| format!("chmod ingest file {}", self.path.display()))?;
        drop(file);

        let target = self.store.blob_path(&actual);
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.store.root.clone());
        fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        match fs::hard_link(&self.path, &target) {
            Ok(()) => {
                File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .ctx(|| format!("sync {}", dir.display()))?;
                debug!(digest = %actual, size = self.written, "blob committed");
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Someone committed the same content first. Refresh its time so that gc's grace
                // period covers this writer's caller too.
                if let Err(e) = File::open(&target).and_then(|f| f.set_modified(SystemTime::now()))
                {
                    debug!(digest = %actual, error = %e, "cannot refresh blob time");
                }
                debug!(digest = %actual, "blob already present, copy discarded");
            }
            Err(e) => {
                return Err(Error::Io {
                    what: format!("link {} to {}", self.path.display(), target.display()),
                    err: e,
                });
            }
        }
        self.remove_ingest();
        Ok(actual)
    }

    /// Abandons the blob and removes its ingest file (dropping the writer does the same).
    pub fn abort(mut self) {
        self.file = None;
        self.remove_ingest();
    }

    fn remove_ingest(&mut self) {
        self.file = None;
        if self.name.is_empty() {
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(path = %self.path.display(), error = %e, "cannot remove ingest file"),
        }
        self.store.forget_ingest(&self.name);
        self.name.clear();
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.expected_size
            && self.written + buf.len() as u64 > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is larger than the expected {limit} bytes", self.what()),
            ));
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("writer already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        let in_file = self.written - file.buffer().len() as u64;
        if in_file - self.kicked >= WRITEBACK_CHUNK {
            start_writeback(file.get_ref(), self.kicked, in_file - self.kicked);
            self.kicked = in_file;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Starts writing `len` bytes of `file` from `offset` to disk without waiting for it. Only
/// a hint: a failure shows (if it matters) in the fsync that follows.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor `file` keeps open; no memory is passed.
    let rc =
        unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc != 0 {
        debug!(error = %io::Error::last_os_error(), "sync_file_range failed");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.remove_ingest();
    }
}
