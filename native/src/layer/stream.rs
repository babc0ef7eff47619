//! Plumbing shared by unpack and create: sha256 hex formatting, a hashing/counting writer, and a reader
//! fed by another thread through a bounded channel (so decompression and hashing run beside extraction).
use std::io::{self, Read, Write};
use std::sync::mpsc::Receiver;

use sha2::{Digest, Sha256};

/// Chunk size for the channels between pipeline threads: big enough to amortise hand-offs, small enough
/// that a few in flight stay a few MiB.
pub const CHUNK: usize = 1 << 20;

pub fn digest_string(hasher: Sha256) -> String {
  let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
  format!("sha256:{hex}")
}

/// Passes writes through to `inner` while hashing and counting them.
pub struct HashWriter<W: Write> {
  pub inner: W,
  pub hasher: Sha256,
  pub count: u64,
}

impl<W: Write> HashWriter<W> {
  pub fn new(inner: W) -> Self {
    HashWriter {
      inner,
      hasher: Sha256::new(),
      count: 0,
    }
  }
}

impl<W: Write> Write for HashWriter<W> {
  fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
    let n = self.inner.write(buf)?;
    self.hasher.update(&buf[..n]);
    self.count += n as u64;
    Ok(n)
  }

  fn flush(&mut self) -> io::Result<()> {
    self.inner.flush()
  }
}

/// Reads the chunks another thread sends; a sent error is returned once, a closed channel is end of input.
pub struct ChannelReader {
  rx: Receiver<io::Result<Vec<u8>>>,
  chunk: Vec<u8>,
  pos: usize,
}

impl ChannelReader {
  pub fn new(rx: Receiver<io::Result<Vec<u8>>>) -> Self {
    ChannelReader {
      rx,
      chunk: Vec::new(),
      pos: 0,
    }
  }
}

impl Read for ChannelReader {
  fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
    while self.pos == self.chunk.len() {
      match self.rx.recv() {
        Ok(Ok(chunk)) => {
          self.chunk = chunk;
          self.pos = 0;
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(0),
      }
    }
    let n = buf.len().min(self.chunk.len() - self.pos);
    buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
    self.pos += n;
    Ok(n)
  }
}
