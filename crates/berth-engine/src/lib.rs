//! berth's container engine.
//!
//! Today: what turns `docker run` options into the OCI runtime configuration berth's
//! runtime executes: seccomp profiles in Docker's format ([`seccomp_profile`]) and the
//! runtime configuration of a container ([`spec`]).

pub mod seccomp_profile;
pub mod spec;
