//! Micro-benchmark for berth-store's metadata database: one engine per build (`--features sqlite`
//! or `--features redb`; no feature gives the baseline binary used to subtract size and RSS).
//!
//! Workload, shaped like berth's metadata: string keys of the form `sha256:<64 hex>`, values of
//! about 300 bytes of JSON, one table.
//!
//! 1. open (create) a fresh database;
//! 2. 1000 single-record write transactions, each committed on its own (median, p99);
//! 3. 1000 point reads of existing keys, each in its own read transaction (median, p99);
//! 4. one transaction inserting 10,000 records, then full scans of the 11,000 (median of 10);
//! 5. reopening the 11,000-record database (median of 20);
//! 6. peak RSS (VmHWM) of the process.
//!
//! Usage: `berth-dbbench DIR [MODE]`; MODE is `normal` or `full` (SQLite's synchronous pragma)
//! for the sqlite build, `immediate` or `none` (redb durability) for the redb build.

#![cfg_attr(not(any(feature = "sqlite", feature = "redb")), allow(dead_code, unused_imports))]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn key(i: u64) -> String {
    // A cheap deterministic 64-hex-digit key (splitmix64 expanded), like a digest.
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut s = String::from("sha256:");
    for _ in 0..4 {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        s.push_str(&format!("{x:016x}"));
    }
    s
}

fn value(i: u64) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"id":"{}","manifest_digest":"{}","media_type":"application/vnd.oci.image.manifest.v1+json","#,
            r#""size":{},"created":"2026-01-01T00:00:00Z","platform":{{"os":"linux","architecture":"amd64"}}}}"#
        ),
        key(i),
        key(i + 1_000_000),
        i * 4096
    )
    .into_bytes()
}

trait Kv: Sized {
    fn open(path: &Path, mode: &str) -> Self;
    fn put_one(&mut self, k: &str, v: &[u8]);
    fn put_many(&mut self, kvs: &[(String, Vec<u8>)]);
    fn get(&self, k: &str) -> Option<Vec<u8>>;
    /// Reads every record whose key starts with `prefix`; returns the number of value bytes.
    fn scan(&self, prefix: &str) -> usize;
}

#[cfg(feature = "sqlite")]
mod engine {
    use super::*;
    use rusqlite::{Connection, params};

    pub const NAME: &str = "sqlite";
    pub struct Db(Connection);

    impl Kv for Db {
        fn open(path: &Path, mode: &str) -> Self {
            let c = Connection::open(path.join("meta.sqlite")).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            c.pragma_update(None, "synchronous", if mode == "full" { "FULL" } else { "NORMAL" })
                .unwrap();
            c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
                .unwrap();
            Db(c)
        }
        fn put_one(&mut self, k: &str, v: &[u8]) {
            let tx = self.0.transaction().unwrap();
            tx.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")
                .unwrap()
                .execute(params![k, v])
                .unwrap();
            tx.commit().unwrap();
        }
        fn put_many(&mut self, kvs: &[(String, Vec<u8>)]) {
            let tx = self.0.transaction().unwrap();
            {
                let mut st = tx.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)").unwrap();
                for (k, v) in kvs {
                    st.execute(params![k, v]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        fn get(&self, k: &str) -> Option<Vec<u8>> {
            // A deferred read transaction, like the daemon's read(|tx| ..).
            let tx = self.0.unchecked_transaction().unwrap();
            let v = tx
                .prepare_cached("SELECT v FROM kv WHERE k = ?1")
                .unwrap()
                .query_row(params![k], |r| r.get::<_, Vec<u8>>(0))
                .ok();
            tx.commit().unwrap();
            v
        }
        fn scan(&self, prefix: &str) -> usize {
            let tx = self.0.unchecked_transaction().unwrap();
            let mut n = 0;
            {
                let mut st = tx.prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k").unwrap();
                let mut rows = st.query(params![prefix]).unwrap();
                while let Some(r) = rows.next().unwrap() {
                    let k: String = r.get(0).unwrap();
                    if !k.starts_with(prefix) {
                        break;
                    }
                    let v: Vec<u8> = r.get(1).unwrap();
                    n += v.len();
                }
            }
            tx.commit().unwrap();
            n
        }
    }
}

#[cfg(feature = "redb")]
mod engine {
    use super::*;
    use redb::{Database, Durability, ReadableDatabase, TableDefinition};

    pub const NAME: &str = "redb";
    const T: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
    pub struct Db(Database, Durability);

    impl Kv for Db {
        fn open(path: &Path, mode: &str) -> Self {
            let db = Database::create(path.join("meta.redb")).unwrap();
            let d = if mode == "none" { Durability::None } else { Durability::Immediate };
            let tx = db.begin_write().unwrap();
            tx.open_table(T).unwrap();
            tx.commit().unwrap();
            Db(db, d)
        }
        fn put_one(&mut self, k: &str, v: &[u8]) {
            let mut tx = self.0.begin_write().unwrap();
            tx.set_durability(self.1).unwrap();
            tx.open_table(T).unwrap().insert(k, v).unwrap();
            tx.commit().unwrap();
        }
        fn put_many(&mut self, kvs: &[(String, Vec<u8>)]) {
            let tx = self.0.begin_write().unwrap();
            {
                let mut t = tx.open_table(T).unwrap();
                for (k, v) in kvs {
                    t.insert(k.as_str(), v.as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        fn get(&self, k: &str) -> Option<Vec<u8>> {
            let tx = self.0.begin_read().unwrap();
            let t = tx.open_table(T).unwrap();
            t.get(k).unwrap().map(|g| g.value().to_vec())
        }
        fn scan(&self, prefix: &str) -> usize {
            let tx = self.0.begin_read().unwrap();
            let t = tx.open_table(T).unwrap();
            let mut n = 0;
            for e in t.range(prefix..).unwrap() {
                let (k, v) = e.unwrap();
                if !k.value().starts_with(prefix) {
                    break;
                }
                n += v.value().len();
            }
            n
        }
    }
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let med = v[v.len() / 2];
    let p99 = v[(v.len() * 99 / 100).min(v.len() - 1)];
    (med, p99)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_string())
        .unwrap_or_default()
}

#[cfg(any(feature = "sqlite", feature = "redb"))]
fn run(dir: PathBuf, mode: &str) {
    use engine::Db;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    println!("engine: {} ({mode})", engine::NAME);

    let t = Instant::now();
    let mut db = Db::open(&dir, mode);
    println!("open (create): {}", us(t.elapsed()));
    println!("RSS after open: {}", proc_status("VmRSS:"));

    let mut w = Vec::with_capacity(1000);
    for i in 0..1000 {
        let (k, v) = (key(i), value(i));
        let t = Instant::now();
        db.put_one(&k, &v);
        w.push(t.elapsed());
    }
    let (m, p) = stats(w);
    println!("write+commit 1 record: median {} p99 {}", us(m), us(p));

    let mut r = Vec::with_capacity(1000);
    for i in 0..1000u64 {
        let k = key((i * 7919) % 1000);
        let t = Instant::now();
        let v = db.get(&k);
        r.push(t.elapsed());
        assert!(v.is_some());
    }
    let (m, p) = stats(r);
    println!("read 1 record: median {} p99 {}", us(m), us(p));

    let bulk: Vec<_> = (1000..11_000).map(|i| (key(i), value(i))).collect();
    let t = Instant::now();
    db.put_many(&bulk);
    println!("insert 10k records in one transaction: {}", us(t.elapsed()));

    let mut s = Vec::new();
    let mut bytes = 0;
    for _ in 0..10 {
        let t = Instant::now();
        bytes = db.scan("sha256:");
        s.push(t.elapsed());
    }
    let (m, _) = stats(s);
    println!("scan 11k records ({bytes} value bytes): median {}", us(m));

    drop(db);
    let mut o = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let db = Db::open(&dir, mode);
        o.push(t.elapsed());
        drop(db);
    }
    let (m, _) = stats(o);
    println!("reopen (11k records): median {}", us(m));

    let size: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!("files on disk: {} KiB", size / 1024);
}

#[cfg(not(any(feature = "sqlite", feature = "redb")))]
fn run(_dir: PathBuf, _mode: &str) {
    println!("engine: none (baseline)");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/berth-dbbench".into()));
    let mode = args.next().unwrap_or_default();
    // Touch the same std machinery in every build so the baseline is comparable.
    let _ = (key(0), value(0));
    run(dir, &mode);
    println!("peak RSS (VmHWM): {}", proc_status("VmHWM:"));
}
