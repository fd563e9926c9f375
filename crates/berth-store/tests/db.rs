//! Metadata database tests on the real filesystem.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_store::db::{
    CONTAINERS, IMAGES, LEASES, NAMES, SCHEMA_VERSION, SNAPSHOTS, TAGS, Table, VOLUMES,
};
use berth_store::{ContainerRecord, ContentStore, Db, Error, ImageRecord, Platform, SnapshotRef};
use berth_types::{Digest, Reference};

fn image(n: u8) -> ImageRecord {
    ImageRecord {
        id: Digest::sha256_of(&[n]),
        manifest_digest: Digest::sha256_of(&[n, n]),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        index_digest: None,
        size: 1000 + u64::from(n),
        created: Some("2026-01-02T03:04:05Z".into()),
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
        layers: vec![Digest::sha256_of(&[n, 1])],
        diff_ids: vec![Digest::sha256_of(&[n, 2])],
        chain_ids: vec![Digest::sha256_of(&[n, 2])],
        parent: None,
        labels: BTreeMap::from([("org.example".to_string(), n.to_string())]),
    }
}

fn tag_key(r: &str) -> String {
    Reference::parse(r).unwrap().docker_ref().to_string()
}

#[test]
fn send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    check::<ContentStore>();
}

#[test]
fn open_creates_and_reopen_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/metadata.redb");
    let img = image(1);
    {
        let db = Db::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        db.write(|tx| {
            tx.put(&IMAGES, img.id.as_str(), &img)?;
            tx.put(&TAGS, &tag_key("busybox"), &img.id)
        })
        .unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    let (got, id) = db
        .read(|tx| {
            Ok::<_, Error>((
                tx.get(&IMAGES, img.id.as_str())?,
                tx.get(&TAGS, "docker.io/library/busybox:latest")?,
            ))
        })
        .unwrap();
    assert_eq!(got, Some(img.clone()));
    assert_eq!(id, Some(img.id));
}

#[test]
fn typed_get_put_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let imgs: Vec<_> = (0..20).map(image).collect();
    db.write(|tx| {
        for i in &imgs {
            tx.put(&IMAGES, i.id.as_str(), i)?;
        }
        tx.put(&TAGS, &tag_key("busybox:1"), &imgs[0].id)?;
        tx.put(&TAGS, &tag_key("busybox:2"), &imgs[1].id)?;
        tx.put(&TAGS, &tag_key("busyboxer:1"), &imgs[2].id)?;
        tx.put(&VOLUMES, "c1", &serde_json::json!({"name": "/web"}))
    })
    .unwrap();

    db.read(|tx| {
        assert_eq!(tx.list(&IMAGES, "")?.len(), 20);
        let all = tx.list(&IMAGES, "sha256:")?;
        let keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "list is in key order");
        // An id prefix finds exactly the matching images.
        let id = imgs[5].id.as_str();
        let hits = tx.list(&IMAGES, &id[..14])?;
        assert!(hits.iter().any(|(k, v)| k == id && v == &imgs[5]));
        assert!(hits.iter().all(|(k, _)| k.starts_with(&id[..14])));
        // Tags of one repository: "busybox:" does not match "busyboxer:".
        let tags = tx.list(&TAGS, "docker.io/library/busybox:")?;
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].1, imgs[0].id);
        assert!(tx.contains(&VOLUMES, "c1")?);
        assert_eq!(tx.get(&VOLUMES, "c1")?.unwrap()["name"], "/web");
        assert_eq!(tx.get(&VOLUMES, "nope")?, None);
        Ok::<_, Error>(())
    })
    .unwrap();

    let deleted = db
        .write(|tx| tx.delete(&IMAGES, imgs[3].id.as_str()))
        .unwrap();
    assert!(deleted);
    assert!(
        !db.write(|tx| tx.delete(&IMAGES, imgs[3].id.as_str()))
            .unwrap()
    );
    assert_eq!(db.read(|tx| tx.list(&IMAGES, "")).unwrap().len(), 19);
}

#[test]
fn write_sees_its_own_writes_and_insert_new_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    db.write(|tx| {
        tx.insert_new(&VOLUMES, "c", &serde_json::json!(1))?;
        assert_eq!(tx.get(&VOLUMES, "c")?, Some(serde_json::json!(1)));
        let e = tx
            .insert_new(&VOLUMES, "c", &serde_json::json!(2))
            .unwrap_err();
        assert!(matches!(
            e,
            Error::Exists {
                table: "volumes",
                ..
            }
        ));
        assert_eq!(e.to_string(), "volumes record already exists: c");
        // The refused insert did not replace the value.
        assert_eq!(tx.get(&VOLUMES, "c")?, Some(serde_json::json!(1)));
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn failing_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let img = image(7);
    db.write(|tx| tx.put(&IMAGES, img.id.as_str(), &img))
        .unwrap();

    // An error after writes to several tables: none of them is kept.
    let r: Result<(), berth_types::Error> = db.write(|tx| {
        tx.put(&IMAGES, Digest::sha256_of(b"new").as_str(), &image(8))?;
        tx.put(&TAGS, &tag_key("new"), &img.id)?;
        tx.delete(&IMAGES, img.id.as_str())?;
        Err(berth_types::Error::conflict(
            "image is in use by container abc",
        ))
    });
    assert_eq!(r.unwrap_err().status(), 409);
    db.read(|tx| {
        assert_eq!(tx.list(&IMAGES, "")?.len(), 1);
        assert!(tx.get(&IMAGES, img.id.as_str())?.is_some());
        assert!(tx.list(&TAGS, "")?.is_empty());
        Ok::<_, Error>(())
    })
    .unwrap();

    // A panic too.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = db.write(|tx| {
            tx.put(&TAGS, &tag_key("panic"), &img.id)?;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<_, Error>(())
        });
    }));
    assert!(panicked.is_err());
    assert!(db.read(|tx| tx.list(&TAGS, "")).unwrap().is_empty());
    // And the database is still usable.
    db.write(|tx| tx.put(&TAGS, &tag_key("after"), &img.id))
        .unwrap();
    assert_eq!(db.read(|tx| tx.list(&TAGS, "")).unwrap().len(), 1);
}

#[test]
fn untag_and_delete_image_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let img = image(3);
    db.write(|tx| {
        tx.put(&IMAGES, img.id.as_str(), &img)?;
        tx.put(&TAGS, &tag_key("a:1"), &img.id)?;
        tx.put(&TAGS, &tag_key("b:1"), &img.id)
    })
    .unwrap();
    // Remove every tag pointing at the image, then the image, in one transaction.
    let removed = db
        .write(|tx| {
            let tags: Vec<String> = tx
                .list(&TAGS, "")?
                .into_iter()
                .filter(|(_, id)| id == &img.id)
                .map(|(k, _)| k)
                .collect();
            for t in &tags {
                tx.delete(&TAGS, t)?;
            }
            tx.delete(&IMAGES, img.id.as_str())?;
            Ok::<_, Error>(tags)
        })
        .unwrap();
    assert_eq!(removed, ["docker.io/library/a:1", "docker.io/library/b:1"]);
    db.read(|tx| {
        assert!(tx.list(&TAGS, "")?.is_empty());
        assert!(tx.list(&IMAGES, "")?.is_empty());
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    drop(Db::open(&path).unwrap());
    // A newer berthd wrote version SCHEMA_VERSION + 1 (written here as the schema documents it).
    {
        let raw = redb::Database::create(&path).unwrap();
        let tx = raw.begin_write().unwrap();
        {
            let mut meta = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            let v = (SCHEMA_VERSION + 1).to_string();
            meta.insert("schema_version", v.as_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }
    let err = Db::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("has schema version 2, newer than the 1 this berthd supports"),
        "{msg}"
    );
    // The refusal left the file as it was.
    let raw = redb::Database::create(&path).unwrap();
    let tx = redb::ReadableDatabase::begin_read(&raw).unwrap();
    let meta = tx
        .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
        .unwrap();
    assert_eq!(meta.get("schema_version").unwrap().unwrap().value(), b"2");
}

#[test]
fn second_open_of_the_same_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    let _db = Db::open(&path).unwrap();
    let e = Db::open(&path).unwrap_err();
    assert!(matches!(e, Error::Db(_)), "{e:?}");
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
}

#[test]
fn wrong_value_type_names_table_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    db.write(|tx| tx.put(&VOLUMES, "c1", &serde_json::json!({"x": 1})))
        .unwrap();
    const AS_IMAGES: Table<ImageRecord> = Table::new("volumes");
    let e = db.read(|tx| tx.get(&AS_IMAGES, "c1")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Decode {
                table: "volumes",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("volumes record c1: "), "{e}");
}

#[test]
fn concurrent_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("m.redb")).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let key = format!("{t}-{i}");
                    db.write(|tx| tx.put(&VOLUMES, &key, &serde_json::json!(i)))
                        .unwrap();
                    let n = db
                        .read(|tx| tx.list(&VOLUMES, &format!("{t}-")))
                        .unwrap()
                        .len();
                    assert_eq!(n, i + 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(db.read(|tx| tx.list(&VOLUMES, "")).unwrap().len(), 100);
}

#[test]
fn leases_protect_content_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));

    let lease = db.create_lease("pull-1", None).unwrap();
    assert_eq!(lease.id, "pull-1");
    assert!(lease.expires.is_none());
    assert!(matches!(
        db.create_lease("pull-1", None),
        Err(Error::Exists { .. })
    ));
    db.lease_add_content("pull-1", &a).unwrap();
    db.lease_add_content("pull-1", &a).unwrap();
    db.lease_add_snapshot("pull-1", "snap-1").unwrap();
    let e = db.lease_add_content("nope", &b).unwrap_err();
    assert_eq!(e.to_string(), "no such leases record: nope");

    // An expired lease protects nothing.
    db.create_lease("dead", Some(Duration::ZERO)).unwrap();
    db.lease_add_content("dead", &b).unwrap();

    assert_eq!(db.protected_digests().unwrap(), HashSet::from([a.clone()]));
    assert_eq!(
        db.protected_snapshots().unwrap(),
        HashSet::from(["snap-1".to_string()])
    );
    assert_eq!(db.leases().unwrap().len(), 2);
    assert_eq!(db.delete_expired_leases().unwrap(), ["dead"]);
    assert_eq!(db.leases().unwrap().len(), 1);

    // Adding to a lease in the same transaction as other writes.
    db.write(|tx| {
        tx.lease_add_content("pull-1", &b)?;
        tx.put(&VOLUMES, "x", &serde_json::json!(null))
    })
    .unwrap();
    assert_eq!(db.protected_digests().unwrap().len(), 2);
    assert_eq!(
        db.read(|tx| tx.get(&LEASES, "pull-1"))
            .unwrap()
            .unwrap()
            .content
            .len(),
        2
    );

    assert!(db.delete_lease("pull-1").unwrap());
    assert!(!db.delete_lease("pull-1").unwrap());
    assert!(db.protected_digests().unwrap().is_empty());
}

#[test]
fn gc_keeps_what_images_and_leases_reference() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let cs = ContentStore::open(dir.path().join("content")).unwrap();
    cs.set_gc_grace(Duration::ZERO);

    let config = cs.put(b"{\"config\":1}", None).unwrap();
    let manifest = cs.put(b"{\"manifest\":1}", None).unwrap();
    let in_flight = cs.put(b"layer being pulled", None).unwrap();
    let garbage = cs.put(b"nobody wants me", None).unwrap();

    let mut img = image(1);
    img.id = config.clone();
    img.manifest_digest = manifest.clone();
    db.write(|tx| tx.put(&IMAGES, img.id.as_str(), &img))
        .unwrap();
    db.create_lease("pull", None).unwrap();
    db.lease_add_content("pull", &in_flight).unwrap();

    let layer = cs.put(b"layer of the image", None).unwrap();
    img.layers = vec![layer.clone()];
    db.write(|tx| {
        tx.put(&IMAGES, img.id.as_str(), &img)?;
        tx.put(
            &SNAPSHOTS,
            "container-rw",
            &SnapshotRef {
                owner: "container:abc".into(),
                created: 0,
            },
        )
    })
    .unwrap();
    db.lease_add_snapshot("pull", "unpacking").unwrap();

    let roots = db.gc_roots().unwrap();
    let freed = cs.gc(&roots.content).unwrap();
    assert_eq!(freed, b"nobody wants me".len() as u64);
    let mut left = cs.list().unwrap();
    left.sort();
    let mut want = vec![config, manifest, in_flight, layer];
    want.sort();
    assert_eq!(left, want);
    assert!(!cs.exists(&garbage).unwrap());
    let want_snaps: HashSet<String> = [
        img.chain_ids[0].as_str().to_string(),
        "container-rw".to_string(),
        "unpacking".to_string(),
    ]
    .into();
    assert_eq!(roots.snapshots, want_snaps);

    // Once the lease is gone, what only it protected is collected.
    db.delete_lease("pull").unwrap();
    let roots = db.gc_roots().unwrap();
    assert_eq!(
        cs.gc(&roots.content).unwrap(),
        b"layer being pulled".len() as u64
    );
    assert!(!roots.snapshots.contains("unpacking"));
}

fn container(id: &str, name: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.to_string(),
        name: name.to_string(),
        data: serde_json::json!({"Config": {"Image": "busybox"}, "State": {"Running": false}}),
    }
}

#[test]
fn container_names_are_unique_and_reserved_with_the_insert() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    db.write(|tx| tx.create_container(&container(&a, "/web")))
        .unwrap();

    // A second container cannot take the name; nothing of it is written.
    let e = db
        .write(|tx| tx.create_container(&container(&b, "/web")))
        .unwrap_err();
    assert!(
        matches!(&e, Error::NameInUse { name, id } if name == "/web" && id == &a),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("\"/web\" is already in use by container"),
        "{e}"
    );
    assert_eq!(berth_types::Error::from(e).status(), 409);
    db.read(|tx| {
        assert!(tx.get(&CONTAINERS, &b)?.is_none());
        assert_eq!(tx.container_by_name("/web")?, Some(a.clone()));
        Ok::<_, Error>(())
    })
    .unwrap();

    // The same id twice is refused too, and does not reserve the new name.
    let e = db
        .write(|tx| tx.create_container(&container(&a, "/other")))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Exists {
                table: "containers",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(db.read(|tx| tx.container_by_name("/other")).unwrap(), None);

    // Rename moves the reservation; the old name is free afterwards.
    db.write(|tx| tx.create_container(&container(&b, "/db")))
        .unwrap();
    let e = db.write(|tx| tx.rename_container(&b, "/web")).unwrap_err();
    assert!(matches!(e, Error::NameInUse { .. }), "{e:?}");
    db.write(|tx| tx.rename_container(&a, "/front")).unwrap();
    db.write(|tx| tx.rename_container(&b, "/web")).unwrap();
    db.read(|tx| {
        assert_eq!(tx.container_by_name("/web")?, Some(b.clone()));
        assert_eq!(tx.container_by_name("/front")?, Some(a.clone()));
        assert_eq!(tx.container_by_name("/db")?, None);
        assert_eq!(tx.get(&CONTAINERS, &b)?.unwrap().name, "/web");
        assert_eq!(tx.list(&NAMES, "")?.len(), 2);
        Ok::<_, Error>(())
    })
    .unwrap();

    // Updating data keeps id and name; deleting releases the name.
    let state = serde_json::json!({"State": {"Running": true, "Pid": 42}});
    db.write(|tx| tx.update_container(&a, &state)).unwrap();
    let rec = db.read(|tx| tx.get(&CONTAINERS, &a)).unwrap().unwrap();
    assert_eq!((rec.name.as_str(), &rec.data), ("/front", &state));
    let e = db
        .write(|tx| tx.update_container("nope", &state))
        .unwrap_err();
    assert_eq!(e.to_string(), "no such containers record: nope");
    let gone = db.write(|tx| tx.delete_container(&a)).unwrap().unwrap();
    assert_eq!(gone.name, "/front");
    assert!(db.write(|tx| tx.delete_container(&a)).unwrap().is_none());
    db.write(|tx| tx.create_container(&container(&"c".repeat(64), "/front")))
        .unwrap();
}

#[test]
fn racing_creates_for_one_name_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("m.redb")).unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8u8)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let id = format!("{t:x}").repeat(64);
                barrier.wait();
                db.write(|tx| tx.create_container(&container(&id, "/race")))
                    .map(|()| id)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::NameInUse { .. }), "{e:?}");
        }
    }
    db.read(|tx| {
        assert_eq!(tx.list(&CONTAINERS, "")?.len(), 1);
        assert_eq!(tx.container_by_name("/race")?.as_ref(), Some(winners[0]));
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn refs_of_lists_tags_and_repo_digests() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("m.redb")).unwrap();
    let (one, two) = (image(1), image(2));
    let by_digest = format!("busybox@{}", one.manifest_digest);
    db.write(|tx| {
        tx.put(&IMAGES, one.id.as_str(), &one)?;
        tx.put(&IMAGES, two.id.as_str(), &two)?;
        tx.put(&TAGS, &tag_key("busybox"), &one.id)?;
        tx.put(&TAGS, &tag_key(&by_digest), &one.id)?;
        tx.put(&TAGS, &tag_key("other:1"), &two.id)
    })
    .unwrap();
    let refs = db.read(|tx| tx.refs_of(&one.id)).unwrap();
    assert_eq!(
        refs,
        [
            "docker.io/library/busybox:latest".to_string(),
            format!("docker.io/library/busybox@{}", one.manifest_digest),
        ]
    );
    assert_eq!(
        db.read(|tx| tx.refs_of(&Digest::sha256_of(b"x"))).unwrap(),
        Vec::<String>::new()
    );
}
