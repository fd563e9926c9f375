//! Object ids: 64 lower-case hex characters (256 random bits), as Docker gives containers and
//! exec sessions.
//!
//! Users may name an object by any unique prefix of its id (`docker stop 4f2a`), so besides
//! generation and validation this module has [`match_prefix`], which implements Docker's rule:
//! a prefix must identify exactly one id, or the lookup is ambiguous.

use std::fmt;
use std::str::FromStr;

use crate::digest::{is_lower_hex, to_hex};

/// The length of a full id.
pub const ID_LEN: usize = 64;
/// The length of the short form shown by `docker ps`.
pub const SHORT_LEN: usize = 12;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: {value:?} is not 64 lower-case hex characters")]
pub struct IdError {
    /// What kind of id was expected (`container`, `exec`).
    pub kind: &'static str,
    /// The input.
    pub value: String,
}

/// More than one id starts with the prefix a user gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("multiple ids found with provided prefix: {prefix}")]
pub struct Ambiguous {
    /// The prefix.
    pub prefix: String,
}

/// Fills 32 bytes from the kernel's random source (getrandom(2), which never blocks after
/// boot-time seeding). Panics only if the kernel cannot provide randomness at all, in which
/// case no id can be made safely.
fn random_hex() -> String {
    let mut buf = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("cannot read random bytes from the kernel: {e}");
    }
    to_hex(&buf)
}

/// Generates a random 64-hex id. Like Docker, it draws again when the 12-character short form
/// would be all decimal digits, so a short id is never mistaken for a number (a pid, an index).
pub(crate) fn generate_hex() -> String {
    loop {
        let id = random_hex();
        if !id[..SHORT_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// Whether `s` is a full id.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN && is_lower_hex(s)
}

/// Returns the one id in `ids` that starts with `prefix`, following Docker's lookup by unique
/// prefix: `Ok(None)` if none does (or `prefix` is empty), [`Ambiguous`] if more than one does.
/// A full id is a prefix of itself, so exact matches are found too.
pub fn match_prefix<'a, I, T>(ids: I, prefix: &str) -> Result<Option<&'a T>, Ambiguous>
where
    I: IntoIterator<Item = &'a T>,
    T: AsRef<str> + ?Sized + 'a,
{
    if prefix.is_empty() {
        return Ok(None);
    }
    let mut found = None;
    for id in ids {
        if id.as_ref().starts_with(prefix) {
            if found.is_some() {
                return Err(Ambiguous {
                    prefix: prefix.to_string(),
                });
            }
            found = Some(id);
        }
    }
    Ok(found)
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                $name(generate_hex())
            }

            /// Validates a full 64-hex id.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_valid_id(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(IdError { kind: $kind, value: s.to_string() })
                }
            }

            /// The full id.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The first 12 characters, as `docker ps` shows them.
            pub fn short(&self) -> &str {
                &self.0[..SHORT_LEN]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A container's id: 64 lower-case hex characters, random.
    ContainerId,
    "container"
);
hex_id!(
    /// An exec session's id: 64 lower-case hex characters, random.
    ExecId,
    "exec"
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generate_is_valid_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let id = ContainerId::generate();
            assert!(is_valid_id(id.as_str()), "{id}");
            assert_eq!(id.short().len(), 12);
            assert!(!id.short().bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn parse_validates() {
        let ok = "a".repeat(64);
        assert_eq!(ContainerId::parse(&ok).unwrap().as_str(), ok);
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            let e = ExecId::parse(bad).unwrap_err();
            assert_eq!(e.kind, "exec");
            assert!(e.to_string().starts_with("invalid exec id: "), "{e}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let id = ContainerId::generate();
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ContainerId>(&j).unwrap(), id);
        assert!(serde_json::from_str::<ContainerId>("\"short\"").is_err());
    }

    #[test]
    fn prefix_lookup() {
        let a = ContainerId::parse(&format!("abc1{}", "0".repeat(60))).unwrap();
        let b = ContainerId::parse(&format!("abc2{}", "0".repeat(60))).unwrap();
        let c = ContainerId::parse(&format!("def0{}", "0".repeat(60))).unwrap();
        let ids = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(match_prefix(&ids, "abc1").unwrap(), Some(&a));
        assert_eq!(match_prefix(&ids, "d").unwrap(), Some(&c));
        assert_eq!(match_prefix(&ids, c.as_str()).unwrap(), Some(&c));
        assert_eq!(match_prefix(&ids, "f").unwrap(), None);
        assert_eq!(match_prefix(&ids, "").unwrap(), None);
        let e = match_prefix(&ids, "abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "multiple ids found with provided prefix: abc"
        );
        // Works over plain strings too.
        let strs = ["abc", "abd"];
        assert_eq!(
            match_prefix(strs.iter().copied(), "abd").unwrap(),
            Some("abd")
        );
    }
}
