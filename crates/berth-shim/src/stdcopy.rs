//! Docker's stdcopy framing, used on attach and exec streams of containers without a tty.
//!
//! Each frame is an 8-byte header — the stream byte (0 stdin, 1 stdout, 2 stderr), three zero
//! bytes, the payload length as a big-endian `u32` — followed by the payload. This is what the
//! Docker API sends for `attach`/`exec` of a non-tty container, so the daemon can forward the
//! shim's bytes unchanged. Streams of containers with a tty carry raw bytes instead.

use std::io::{self, Read};

/// Stream byte for stdin.
pub const STDIN: u8 = 0;
/// Stream byte for stdout.
pub const STDOUT: u8 = 1;
/// Stream byte for stderr.
pub const STDERR: u8 = 2;

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The header of a frame carrying `len` bytes of `stream`.
pub fn header(stream: u8, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Appends a frame (header and payload) to `out`; payloads over 4 GiB are split, and an
/// empty payload adds nothing.
pub fn push_frame(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&header(stream, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
}

/// Reads one frame: `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stdcopy: truncated frame header",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((h[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        push_frame(&mut buf, STDOUT, b"hello\n");
        push_frame(&mut buf, STDERR, b"");
        push_frame(&mut buf, STDERR, b"e");
        assert_eq!(&buf[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello\n".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDERR, b"e".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut short = &buf[..3];
        assert!(read_frame(&mut short).is_err());
    }
}
