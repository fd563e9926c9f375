//! Docker's multiplexed stream framing ("stdcopy"), used by attach, exec and logs when the
//! container has no tty: each chunk is preceded by an 8-byte header — the stream (0 stdin,
//! 1 stdout, 2 stderr, 3 system error), three zero bytes, and the big-endian payload length.

/// Stream numbers in the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// An error from the daemon, in-band (API ≥ 1.42 uses it for exec/attach failures).
    System = 3,
}

impl Stream {
    /// The stream for a header byte.
    pub fn from_byte(b: u8) -> Option<Stream> {
        Some(match b {
            0 => Stream::Stdin,
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            3 => Stream::System,
            _ => return None,
        })
    }
}

/// The 8-byte header for a payload of `len` bytes.
pub fn header(stream: Stream, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// One frame: header and payload.
pub fn frame(stream: Stream, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.extend_from_slice(&header(stream, data.len()));
    v.extend_from_slice(data);
    v
}

/// Incremental decoder: feed bytes, take out complete frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered. Unknown stream bytes are an error.
    pub fn next_frame(&mut self) -> Result<Option<(Stream, Vec<u8>)>, String> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = Stream::from_byte(self.buf[0])
            .ok_or_else(|| format!("bad stream byte {}", self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let data = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Ok(Some((stream, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let mut wire = frame(Stream::Stdout, b"hello\n");
        wire.extend(frame(Stream::Stderr, b""));
        wire.extend(frame(Stream::Stderr, &[7u8; 70000]));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(5) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (Stream::Stdout, b"hello\n".to_vec()));
        assert_eq!(got[1], (Stream::Stderr, vec![]));
        assert_eq!(got[2].1.len(), 70000);
        assert_eq!(header(Stream::Stdout, 258), [1, 0, 0, 0, 0, 0, 1, 2]);
    }
}
