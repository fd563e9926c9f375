//! Freezing and thawing: cgroup v1 `freezer.state`, cgroup v2 `cgroup.freeze`.

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::util;
use crate::{Error, Result};

/// Freezes a cgroup v1 freezer directory and waits until the kernel reports FROZEN.
///
/// A freeze can stay in FREEZING while processes keep forking or joining; like runc, retry
/// the write many times, now and then thawing briefly so stragglers can settle. Gives up
/// (thawed) after about two seconds.
pub(crate) fn freeze_v1(dir: &Path) -> Result<()> {
    for i in 0..1000u32 {
        if i % 50 == 49 {
            let _ = util::write_raw(&dir.join("freezer.state"), "THAWED");
            sleep(Duration::from_millis(10));
        }
        util::write("", dir, "freezer.state", "FROZEN")?;
        if i % 25 == 24 {
            sleep(Duration::from_micros(100));
        }
        match util::read(dir, "freezer.state")?.trim() {
            "FROZEN" => return Ok(()),
            "FREEZING" | "THAWED" => continue,
            other => {
                return Err(Error::msg(format!(
                    "{}: unexpected state {other:?} after writing FROZEN",
                    dir.join("freezer.state").display()
                )));
            }
        }
    }
    let _ = util::write_raw(&dir.join("freezer.state"), "THAWED");
    Err(Error::msg(format!(
        "{}: could not freeze the cgroup: still FREEZING after 1000 attempts (left thawed)",
        dir.join("freezer.state").display()
    )))
}

/// Thaws a cgroup v1 freezer directory.
pub(crate) fn thaw_v1(dir: &Path) -> Result<()> {
    util::write("", dir, "freezer.state", "THAWED")
}

/// Whether a cgroup v1 freezer directory is frozen (by itself or a frozen ancestor).
pub(crate) fn frozen_v1(dir: &Path) -> Result<bool> {
    Ok(util::read(dir, "freezer.state")?.trim() == "FROZEN")
}

/// Freezes a cgroup v2 directory and waits (up to ten seconds) for `frozen 1` in
/// `cgroup.events`; on timeout the cgroup is thawed again.
pub(crate) fn freeze_v2(dir: &Path) -> Result<()> {
    util::write("", dir, "cgroup.freeze", "1")?;
    for _ in 0..1000 {
        if frozen_v2(dir)? {
            return Ok(());
        }
        sleep(Duration::from_millis(10));
    }
    let _ = util::write_raw(&dir.join("cgroup.freeze"), "0");
    Err(Error::msg(format!(
        "{}: the cgroup did not report frozen within 10s (left thawed)",
        dir.join("cgroup.events").display()
    )))
}

/// Thaws a cgroup v2 directory.
pub(crate) fn thaw_v2(dir: &Path) -> Result<()> {
    util::write("", dir, "cgroup.freeze", "0")
}

/// Whether a cgroup v2 directory is frozen (`frozen 1` in cgroup.events).
pub(crate) fn frozen_v2(dir: &Path) -> Result<bool> {
    let events = util::read(dir, "cgroup.events")?;
    Ok(util::keyed_value(&events, "frozen") == Some(1))
}
