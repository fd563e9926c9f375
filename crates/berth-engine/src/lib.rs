//! berth's container engine: the containers' state machine (create, start, stop, restart
//! policies, removal), their streams (logs, attach, exec), figures (stats, top), the event
//! bus, and the image endpoints; it implements berth-server's backend traits.
//!
//! The engine never forks: a container's processes belong to its shim (`berth-shim`),
//! which runs the OCI runtime. The engine talks to shims over their sockets and keeps its
//! records in the metadata database, so it can be restarted while containers run.

mod archive;
mod attach;
mod backend;
pub mod bundle;
pub mod clock;
mod commit;
mod disk;
mod engine;
pub mod events;
mod exec;
mod health;
mod images;
mod lifecycle;
mod logs;
pub mod net;
pub mod record;
mod saveload;
pub mod seccomp_profile;
pub mod spec;
mod stats;
mod system;
pub mod usernet;
mod volumes;

pub use engine::{Config, Engine};
pub use images::{Images, ResolvedImage};
pub use net::NetConfig;
