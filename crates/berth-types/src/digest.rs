//! Content digests: `algorithm:hex`, as the OCI image spec and Docker write them.
//!
//! A [`Digest`] is always valid once built: the algorithm is one berth can compute (`sha256`,
//! and `sha384`/`sha512`, which go-digest registers too and registries may serve), and the
//! hex part is lower-case and exactly as long as that algorithm's output. Parsing is strict on
//! purpose: digests name files in the content store, so anything looser would let two spellings
//! name one blob, or a crafted string name a path.

use std::fmt;
use std::io;
use std::str::FromStr;

use sha2::Digest as _;

/// A hash algorithm a [`Digest`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm of every digest Docker computes itself.
    Sha256,
    /// SHA-384, accepted because go-digest registers it.
    Sha384,
    /// SHA-512, accepted for content pushed with it.
    Sha512,
}

impl Algorithm {
    /// The name written before the colon (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    /// Looks an algorithm up by its name; `None` if berth does not support it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a digest. Each message quotes the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:hex` at all.
    #[error("invalid digest format: {0:?}")]
    Format(String),
    /// Well-formed, but the algorithm is not one berth computes.
    #[error("unsupported digest algorithm: {0:?}")]
    Unsupported(String),
    /// The hex part is not as long as the algorithm's output.
    #[error(
        "invalid digest length: {digest:?} has {len} hex characters, {algorithm} needs {expected}"
    )]
    Length {
        /// The input.
        digest: String,
        /// The algorithm named in it.
        algorithm: Algorithm,
        /// The number of hex characters found.
        len: usize,
        /// The number required.
        expected: usize,
    },
    /// The hex part holds something other than `0-9a-f` (upper case included).
    #[error("invalid digest: {0:?} must be lower-case hex after the algorithm")]
    Hex(String),
}

/// A validated content digest such as `sha256:e3b0c442…`.
///
/// Ordering, equality and hashing are those of the string form. Serialized as that string;
/// deserializing validates it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    repr: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses and validates `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::Format(s.to_string()));
        };
        if !valid_algorithm_syntax(alg) || hex.is_empty() {
            return Err(DigestError::Format(s.to_string()));
        }
        let algorithm =
            Algorithm::from_name(alg).ok_or_else(|| DigestError::Unsupported(alg.to_string()))?;
        Self::from_parts(algorithm, hex).map_err(|e| match e {
            DigestError::Length {
                algorithm,
                len,
                expected,
                ..
            } => DigestError::Length {
                digest: s.to_string(),
                algorithm,
                len,
                expected,
            },
            DigestError::Hex(_) => DigestError::Hex(s.to_string()),
            other => other,
        })
    }

    /// Builds a digest from an algorithm and its hex encoding, validating the hex.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Self, DigestError> {
        let repr = format!("{algorithm}:{hex}");
        if hex.len() != algorithm.hex_len() {
            // A hex string of the wrong length is reported as such even if it is also not hex,
            // which is what go-digest does.
            return Err(DigestError::Length {
                digest: repr,
                algorithm,
                len: hex.len(),
                expected: algorithm.hex_len(),
            });
        }
        if !is_lower_hex(hex) {
            return Err(DigestError::Hex(repr));
        }
        Ok(Digest { repr, algorithm })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(bytes);
        h.finalize()
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finalize()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, after the colon.
    pub fn hex(&self) -> &str {
        &self.repr[self.algorithm.as_str().len() + 1..]
    }

    /// The whole `algorithm:hex` string.
    pub fn as_str(&self) -> &str {
        &self.repr
    }

    /// The first 12 hex characters, as `docker images` shows image ids.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

/// go-digest's algorithm grammar: `[a-z0-9]+([+._-][a-z0-9]+)*`. Checked before looking the
/// name up so that garbage is reported as a format error, not as an unsupported algorithm.
fn valid_algorithm_syntax(alg: &str) -> bool {
    !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether `s` is non-empty and only `0-9a-f`.
pub(crate) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lower-case hex encoding of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.repr)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.repr
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.repr)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Computes a [`Digest`] incrementally, for content that arrives in pieces (a registry
/// download, a tar stream). Also an [`io::Write`] sink, so `io::copy` can feed it.
#[derive(Clone)]
pub struct Hasher {
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => State::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Hasher { state }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha384(_) => Algorithm::Sha384,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha384(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self.state {
            State::Sha256(h) => to_hex(&h.finalize()),
            State::Sha384(h) => to_hex(&h.finalize()),
            State::Sha512(h) => to_hex(&h.finalize()),
        };
        Digest {
            repr: format!("{algorithm}:{hex}"),
            algorithm,
        }
    }
}

impl Default for Hasher {
    /// A sha256 hasher.
    fn default() -> Self {
        Hasher::new(Algorithm::Sha256)
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({})", self.algorithm())
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_vectors() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY256);
        assert_eq!(
            Digest::sha256_of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Digest::of(Algorithm::Sha512, b"abc").hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(Digest::of(Algorithm::Sha384, b"").hex().len(), 96);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Hasher::default();
        for chunk in data.chunks(777) {
            h.update(chunk);
        }
        assert_eq!(h.finalize(), Digest::sha256_of(&data));

        let mut h = Hasher::new(Algorithm::Sha512);
        std::io::copy(&mut &data[..], &mut h).unwrap();
        assert_eq!(h.finalize(), Digest::of(Algorithm::Sha512, &data));
    }

    #[test]
    fn parse_valid() {
        let d = Digest::parse(EMPTY256).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.to_string(), EMPTY256);
        let s512 = format!("sha512:{}", "f".repeat(128));
        assert_eq!(Digest::parse(&s512).unwrap().algorithm(), Algorithm::Sha512);
        let d2: Digest = EMPTY256.parse().unwrap();
        assert_eq!(d, d2);
    }

    #[test]
    fn parse_invalid() {
        type Check = fn(&DigestError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, DigestError::Format(_))),
            ("sha256", |e| matches!(e, DigestError::Format(_))),
            ("sha256:", |e| matches!(e, DigestError::Format(_))),
            (":abc", |e| matches!(e, DigestError::Format(_))),
            ("SHA256:abc", |e| matches!(e, DigestError::Format(_))),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", |e| {
                matches!(e, DigestError::Unsupported(_))
            }),
            ("sha256:abc", |e| {
                matches!(
                    e,
                    DigestError::Length {
                        len: 3,
                        expected: 64,
                        ..
                    }
                )
            }),
            (&EMPTY256[..EMPTY256.len() - 1], |e| {
                matches!(e, DigestError::Length { .. })
            }),
            (
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                |e| matches!(e, DigestError::Length { expected: 128, .. }),
            ),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                |e| matches!(e, DigestError::Hex(_)),
            ),
            (
                "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                |e| matches!(e, DigestError::Hex(_)),
            ),
            (
                "sha256:../../../../etc/passwd000000000000000000000000000000000000000000",
                |e| matches!(e, DigestError::Hex(_)),
            ),
        ];
        for (input, check) in cases {
            let e = Digest::parse(input).unwrap_err();
            assert!(check(&e), "{input:?}: unexpected {e:?}");
            assert!(
                e.to_string().starts_with("invalid") || e.to_string().starts_with("unsupported")
            );
        }
    }

    #[test]
    fn error_messages_name_the_input() {
        let e = Digest::parse("sha256:abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid digest length: \"sha256:abc\" has 3 hex characters, sha256 needs 64"
        );
        assert_eq!(
            Digest::parse("md5:00").unwrap_err().to_string(),
            "unsupported digest algorithm: \"md5\""
        );
    }

    #[test]
    fn serde_is_the_string() {
        let d = Digest::sha256_of(b"x");
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&j).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn order_follows_string() {
        let mut v = [Digest::sha256_of(b"b"), Digest::sha256_of(b"a")];
        v.sort();
        assert!(v[0].as_str() < v[1].as_str());
    }
}
