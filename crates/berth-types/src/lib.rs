//! berth-types: the vocabulary shared by berthd's crates.
//!
//! A leaf crate with no I/O beyond reading the kernel's random source: it only parses,
//! validates, formats and hashes, so every other crate (store, image service, API server) can
//! agree on what a digest, an id, a container name or an image reference is, and on how an
//! error maps to an HTTP status.
//!
//! | module | what |
//! |---|---|
//! | [`digest`] | `sha256:<hex>` content digests, validation and streaming hashing |
//! | [`id`] | 64-hex container and exec ids, short forms, Docker's unique-prefix lookup |
//! | [`name`] | container-name validation and the `adjective_surname` generator |
//! | [`reference`](mod@reference) | Docker image references, normalized exactly as Docker does |
//! | [`error`] | the daemon-wide error kinds and their HTTP status codes |

pub mod digest;
pub mod error;
pub mod id;
pub mod name;
pub mod reference;
pub mod time;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error::{Error, ErrorBody, Result};
pub use id::{Ambiguous, ContainerId, ExecId, IdError, match_prefix};
pub use name::{NameError, random_name, validate_container_name};
pub use reference::{AnyReference, Reference, ReferenceError, parse_any};
