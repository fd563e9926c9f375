//! The Docker Engine API as berth speaks it: request and response bodies, query parameters,
//! filters and the framing of multiplexed streams.
//!
//! Bodies come from `bollard-stubs` (generated from moby's swagger, so field names match
//! Docker's exactly); it is re-exported pinned here so every crate uses the same version.
//! Query parameters are our own structs because the stubs' only serialize. Types here hold
//! no logic beyond parsing.

pub use bollard_stubs::models;

pub mod archive;
pub mod filters;
pub mod query;
pub mod stdcopy;
pub mod version;

pub use filters::Filters;
pub use version::ApiVersion;
