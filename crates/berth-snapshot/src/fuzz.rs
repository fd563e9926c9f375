//! An entry point for fuzzing layer application (`cargo fuzz` target body).

use std::path::Path;

use crate::apply::{ApplyOptions, apply_layer, apply_layer_copy};
use crate::fsutil;

/// Applies `data` as a layer, in both formats, into a scratch directory beside a canary,
/// and panics if anything outside the target changed. Errors from the layer are expected
/// and ignored; a panic (here or inside the crate) is a finding.
///
/// The scratch directory lives under `$TMPDIR`; budgets keep one input small (16 MiB of file
/// data, 10 000 entries). Device nodes are refused so a fuzzer running as root creates none.
pub fn fuzz_apply(data: &[u8]) {
    let Ok(t) = tempfile::Builder::new().prefix("berth-fuzz-").tempdir() else {
        return;
    };
    let base = t.path();
    let canary = base.join("canary");
    if std::fs::create_dir(&canary).is_err() || std::fs::write(canary.join("c"), b"canary").is_err()
    {
        return;
    }
    let opts = ApplyOptions {
        max_bytes: Some(16 << 20),
        max_entries: Some(10_000),
        devices: false,
        ..Default::default()
    };
    for (i, copy) in [false, true].into_iter().enumerate() {
        let dest = base.join(format!("dest{i}"));
        if std::fs::create_dir(&dest).is_err() {
            return;
        }
        let _ = if copy {
            apply_layer_copy(data, &dest, &opts)
        } else {
            apply_layer(data, &dest, &opts)
        };
        check_outside(base);
    }
    // Some entries may be read-only directories; remove without relying on permissions.
    for i in 0..2 {
        let _ = fsutil::remove_tree(&base.join(format!("dest{i}")));
    }
}

fn check_outside(base: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.retain(|n| !n.starts_with("dest"));
    assert_eq!(names, ["canary"], "layer created files beside its target");
    let inner: Vec<_> = std::fs::read_dir(base.join("canary"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(inner.len(), 1, "layer changed the canary directory");
    assert_eq!(
        std::fs::read(base.join("canary/c")).unwrap_or_default(),
        b"canary",
        "layer changed the canary file"
    );
}
