//! A gzip writer for committed layers that stores what does not compress.
//!
//! zlib-rs at level 1 (`deflate_quick`, the fastest) Huffman-codes every block, even of
//! incompressible data (random bytes, media, already compressed files), which then comes out
//! about 5 % larger and must be decoded byte by byte by every reader (`docker load`, a pull).
//! This writer compresses at level 1 and watches what each chunk of input yields: once a
//! chunk does not shrink, the following chunks are written as stored blocks (a copy that
//! inflates at memory speed), and every few chunks it tries compressing again in case the
//! data changed. The output is an ordinary gzip stream (one member): deflate allows any mix of
//! block types, and a sync flush leaves the compressor's output at a byte boundary where
//! stored blocks (and, after a reset, newly compressed ones) can follow.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input handed to the compressor at a time, and the unit of the level decision.
const CHUNK: usize = 256 << 10;
/// After a chunk that did not shrink, this many chunks (4 MiB) are stored before trying
/// again: incompressible data ends up about 94 % stored, 6 % Huffman-coded.
const STORE_RUN: u32 = 16;
/// A chunk that compresses to more than this share of its size (in 1/1000) did not shrink.
const NO_GAIN_PERMILLE: u64 = 980;

/// Gzip-compresses what is written to it into `inner`; [`AdaptiveGz::finish`] ends the
/// stream.
pub(crate) struct AdaptiveGz<W: Write> {
    inner: W,
    z: Compress,
    crc: Crc,
    pending: Vec<u8>,
    out: Vec<u8>,
    /// Chunks still to store before trying to compress again; 0 while compressing.
    storing: u32,
    header_written: bool,
}

impl<W: Write> AdaptiveGz<W> {
    pub(crate) fn new(inner: W) -> Self {
        AdaptiveGz {
            inner,
            z: Compress::new(Compression::fast(), false),
            crc: Crc::new(),
            pending: Vec::with_capacity(CHUNK),
            out: Vec::with_capacity(CHUNK + CHUNK / 8),
            storing: 0,
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, no mtime, no extra flags, OS unknown.
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Runs the compressor over `input` (all of it) with `flush`, writing what it makes.
    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.out.clear();
            let before_in = self.z.total_in();
            let status = self
                .z
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            self.inner.write_all(&self.out)?;
            let full = self.out.len() == self.out.capacity();
            match status {
                Status::StreamEnd => return Ok(()),
                _ if input.is_empty() && !full => return Ok(()),
                _ => {}
            }
        }
    }

    /// Writes `data` as stored blocks (the output is at a byte boundary).
    fn store(&mut self, data: &[u8]) -> io::Result<()> {
        for block in data.chunks(usize::from(u16::MAX)) {
            let len = block.len() as u16;
            let [a, b] = len.to_le_bytes();
            let [c, d] = (!len).to_le_bytes();
            // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN and NLEN.
            self.inner.write_all(&[0, a, b, c, d])?;
            self.inner.write_all(block)?;
        }
        Ok(())
    }

    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.header()?;
        self.crc.update(data);
        if self.storing > 0 {
            // The compressor was flushed and reset when storing began; it starts afresh
            // (with an empty window) on the chunk after the run.
            self.storing -= 1;
            return self.store(data);
        }
        let before = self.z.total_out();
        self.deflate(data, FlushCompress::None)?;
        let made = self.z.total_out() - before;
        if made * 1000 > data.len() as u64 * NO_GAIN_PERMILLE {
            self.deflate(&[], FlushCompress::Sync)?;
            self.z.reset();
            self.storing = STORE_RUN;
        }
        Ok(())
    }

    /// Compresses what is left, writes the gzip trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.chunk(&rest)?;
        }
        self.header()?;
        self.deflate(&[], FlushCompress::Finish)?;
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for AdaptiveGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            let data = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
            self.chunk(&data)?;
            self.pending = data;
            self.pending.clear();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;

    fn round_trip(data: &[u8]) -> Vec<u8> {
        let mut gz = AdaptiveGz::new(Vec::new());
        // Odd write sizes, to cross chunk boundaries.
        for part in data.chunks(300_001) {
            gz.write_all(part).unwrap();
        }
        let out = gz.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "round trip changed the data");
        out
    }

    fn noise(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn incompressible_data_is_stored_not_coded() {
        let data = noise(20 << 20, 0x9e37_79b9_7f4a_7c15);
        let out = round_trip(&data);
        // Level 1 alone makes random data about 5 % larger; stored blocks cost 5 bytes per
        // 64 KiB, and the one chunk in STORE_RUN + 1 that probes compression again 5 %.
        assert!(
            (out.len() as f64) < data.len() as f64 * 1.02,
            "{} bytes of noise became {}",
            data.len(),
            out.len()
        );
    }

    #[test]
    fn compressible_data_is_compressed_also_after_noise() {
        let text: Vec<u8> = b"berth commits layers; "
            .iter()
            .copied()
            .cycle()
            .take(12 << 20)
            .collect();
        let mut data = noise(3 << 20, 7);
        data.extend_from_slice(&text);
        let out = round_trip(&data);
        // The noise is stored, then the STORE_RUN chunks after the one that did not shrink
        // (4 MiB, 1.25 MiB of it text), then the rest of the text is compressed again.
        assert!(
            out.len() < (6 << 20),
            "3 MiB of noise and 12 MiB of text became {} bytes",
            out.len()
        );
        assert!(round_trip(b"").len() >= 18);
        assert!(round_trip(b"small").len() < 40);
    }
}
