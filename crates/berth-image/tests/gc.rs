//! Garbage collection on the real thing: redb, the content store and overlay snapshots.
//! Run as root.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use berth_image::{ImageStore, ImportOptions};
use berth_snapshot::{Driver, Snapshotter};
use berth_store::{ContentStore, Db};
use berth_types::Reference;

fn layer(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, "f", content).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn gc_keeps_what_is_needed_or_leased_and_startup_drops_stale_leases() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("metadata.redb")).unwrap());
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    content.set_gc_grace(Duration::ZERO);
    let snaps = Arc::new(Snapshotter::open(dir.path().join("snapshots"), Driver::Overlay).unwrap());
    let store = ImageStore::new(db.clone(), content.clone(), snaps.clone());
    let opts = ImportOptions {
        reference: Some(Reference::parse_normalized("kept:1").unwrap()),
        ..Default::default()
    };
    let img = store.import(&layer(b"kept")[..], &opts).unwrap();
    let top = img.record.chain_ids[0].as_str().to_string();
    store.prepare_rootfs(&img.record.id, "container-x").unwrap();

    // What a crash leaves: a blob and a stack of snapshots nobody references.
    let orphan_blob = content.put(b"orphan", None).unwrap();
    snaps.prepare("orphan", Some(&top)).unwrap();
    snaps.commit("orphan-layer", "orphan").unwrap();
    snaps.prepare("orphan-child", Some("orphan-layer")).unwrap();
    // Work in flight: leased.
    db.create_lease("inflight", None).unwrap();
    let leased_blob = content.put(b"in flight", None).unwrap();
    db.lease_add_content("inflight", &leased_blob).unwrap();
    db.lease_add_snapshot("inflight", "work").unwrap();
    snaps.prepare("work", Some(&top)).unwrap();

    let r = store.gc().unwrap();
    assert_eq!(r.snapshots, 2, "{r:?}");
    assert!(r.blob_bytes >= 6, "{r:?}");
    assert!(!content.exists(&orphan_blob).unwrap());
    assert!(snaps.stat("orphan-layer").is_err() && snaps.stat("orphan-child").is_err());
    for key in [top.as_str(), "container-x", "work"] {
        assert!(snaps.stat(key).is_ok(), "{key} was collected");
    }
    assert!(content.exists(&leased_blob).unwrap());
    for d in [
        &img.record.id,
        &img.record.manifest_digest,
        &img.record.layers[0],
    ] {
        assert!(content.exists(d).unwrap(), "{d} was collected");
    }

    // At start-up every lease is stale: what it protected goes; the image stays whole.
    let r = store.gc_startup().unwrap();
    assert_eq!((r.leases, r.snapshots), (1, 1), "{r:?}");
    assert!(!content.exists(&leased_blob).unwrap());
    assert!(snaps.stat("work").is_err());
    assert!(db.leases().unwrap().is_empty());
    for d in [
        &img.record.id,
        &img.record.manifest_digest,
        &img.record.layers[0],
    ] {
        content.verify(d).unwrap();
    }
    assert!(snaps.stat("container-x").is_ok());
    assert_eq!(store.inspect("kept:1").unwrap().record.id, img.record.id);
    store.release_rootfs("container-x").unwrap();
}
