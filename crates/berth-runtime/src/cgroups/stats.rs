//! Resource usage of a container, in the JSON shape of runc's `events --stats`.
//!
//! STUB: to be filled in.

use serde::Serialize;

/// Resource usage of one container.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {}
