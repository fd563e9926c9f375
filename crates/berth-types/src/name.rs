//! Container names: validation with Docker's rule, and random `adjective_surname` names.
//!
//! Docker stores names with a leading `/` (`/web`) and accepts them with or without it; the
//! rest must match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so a name has at least two characters.
//! Random names follow Docker's style with berth's own word lists: adjectives and the surnames
//! of explorers and navigators (a berth is where ships dock).

/// Why a string is not a valid container name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
pub struct NameError(pub String);

/// Validates a container name and returns it without its leading `/`.
pub fn validate_container_name(name: &str) -> Result<&str, NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let bytes = bare.as_bytes();
    let valid = bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(bare)
    } else {
        Err(NameError(name.to_string()))
    }
}

const ADJECTIVES: [&str; 50] = [
    "amber", "ardent", "bold", "breezy", "bright", "buoyant", "candid", "cheerful", "civil",
    "clever", "cosmic", "crisp", "dapper", "daring", "deft", "earnest", "eager", "fabled",
    "fervent", "frank", "gallant", "gleaming", "hardy", "hearty", "humble", "jaunty", "keen",
    "lively", "loyal", "lucid", "mellow", "mighty", "nimble", "noble", "plucky", "polished",
    "prudent", "radiant", "rugged", "sage", "salty", "serene", "snug", "spry", "staunch", "steady",
    "sturdy", "tidal", "valiant", "wise",
];

const SURNAMES: [&str; 50] = [
    "amundsen",
    "baffin",
    "balboa",
    "ballard",
    "barents",
    "battuta",
    "bering",
    "bird",
    "bly",
    "bougainville",
    "cabot",
    "cabral",
    "cartier",
    "champlain",
    "cook",
    "cousteau",
    "dampier",
    "dezhnev",
    "earle",
    "eriksson",
    "flinders",
    "franklin",
    "frobisher",
    "gama",
    "henson",
    "heyerdahl",
    "hudson",
    "jansz",
    "kingsley",
    "laperouse",
    "mackenzie",
    "magellan",
    "nansen",
    "peary",
    "piccard",
    "pytheas",
    "raleigh",
    "ross",
    "sacagawea",
    "scott",
    "shackleton",
    "stark",
    "tasman",
    "tenzing",
    "vancouver",
    "verrazzano",
    "vespucci",
    "vitus",
    "xuanzang",
    "zhenghe",
];

/// A random name such as `plucky_nansen`. When `retry` is above zero (the previous name was
/// taken), a random digit is appended, as Docker does, to make a collision less likely.
pub fn random_name(retry: u32) -> String {
    let mut buf = [0u8; 3];
    if getrandom::fill(&mut buf).is_err() {
        // Names need no secrecy: the clock will do if the kernel has no randomness to give.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        buf.copy_from_slice(&nanos.to_le_bytes()[..3]);
    }
    let adjective = ADJECTIVES[usize::from(buf[0]) % ADJECTIVES.len()];
    let surname = SURNAMES[usize::from(buf[1]) % SURNAMES.len()];
    if retry > 0 {
        format!("{adjective}_{surname}{}", buf[2] % 10)
    } else {
        format!("{adjective}_{surname}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for n in ["web", "/web", "a1", "My_App.v2-1", "0x", "/x.y"] {
            let bare = validate_container_name(n).unwrap();
            assert_eq!(bare, n.trim_start_matches('/'));
        }
    }

    #[test]
    fn invalid_names() {
        for n in [
            "", "/", "a", "/a", "_web", ".web", "-web", "we b", "web/1", "//web", "wéb", "web!",
        ] {
            let e = validate_container_name(n).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            );
        }
    }

    #[test]
    fn word_lists_are_clean() {
        for w in ADJECTIVES.iter().chain(SURNAMES.iter()) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
        let mut a = ADJECTIVES.to_vec();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), ADJECTIVES.len());
        let mut s = SURNAMES.to_vec();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), SURNAMES.len());
    }

    #[test]
    fn random_names_are_valid() {
        for retry in 0..200 {
            let n = random_name(retry % 2);
            validate_container_name(&n).unwrap();
            let (adj, rest) = n.split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&adj), "{n}");
            let surname = rest.trim_end_matches(|c: char| c.is_ascii_digit());
            assert!(SURNAMES.contains(&surname), "{n}");
            assert_eq!(rest.len() > surname.len(), retry % 2 == 1, "{n}");
        }
    }
}
