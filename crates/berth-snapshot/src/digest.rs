//! A small content digest (`sha256:<hex>`) and the hashing reader/writer wrappers that compute
//! digests while data streams through.
//!
//! This is a local stand-in until the workspace has a shared digest type: it only knows
//! sha256, the one algorithm layers use.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lower-case hex>` content digest.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`; anything else is refused.
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("digest {s:?}: only sha256 is supported"))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("digest {s:?}: expected 64 lower-case hex digits"));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Self {
        let out = h.finalize();
        let mut s = String::with_capacity(7 + 64);
        s.push_str("sha256:");
        for b in out.iter() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        Digest(s)
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part alone.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// A running sha256 and byte count, shared between a hashing wrapper and its owner.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) sha: Sha256,
    pub(crate) len: u64,
}

pub(crate) type SharedTally = Rc<RefCell<Tally>>;

/// A reader that hashes and counts everything read through it.
pub(crate) struct HashReader<R> {
    inner: R,
    tally: SharedTally,
    hash: bool,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R, tally: SharedTally) -> Self {
        HashReader {
            inner,
            tally,
            hash: true,
        }
    }

    /// From now on only counts what is read, without hashing it.
    pub(crate) fn count_only(&mut self) {
        self.hash = false;
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tally.borrow_mut();
        if self.hash {
            t.sha.update(&buf[..n]);
        }
        t.len += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashWriter<W> {
    inner: W,
    pub(crate) sha: Sha256,
    pub(crate) len: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            sha: Sha256::new(),
            len: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse("sha256:XYZ").is_err());
    }
}
