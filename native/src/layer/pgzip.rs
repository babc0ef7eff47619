//! A parallel gzip writer in the style of pigz: input is cut into blocks, each compressed as raw deflate on
//! a worker thread with the previous block's last 32 KiB as dictionary (so the ratio stays close to serial
//! gzip) and ended with a sync flush; a writer thread puts the blocks back in order behind one gzip header and
//! ends with the combined CRC-32 and length. The result is a single ordinary gzip member.
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use flate2::{Compress, Compression, FlushCompress, Status};

const BLOCK: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;
// mtime 0 (reproducible), no flags, OS = Unix.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

struct Job {
  seq: u64,
  data: Vec<u8>,
  dict: Vec<u8>,
  last: bool,
}

struct Done {
  seq: u64,
  out: io::Result<Vec<u8>>,
  crc: crc32fast::Hasher,
  len: u64,
  last: bool,
}

pub struct ParGzWriter<W: Write + Send + 'static> {
  block: Vec<u8>,
  prev_tail: Vec<u8>,
  seq: u64,
  jobs: Option<SyncSender<Job>>,
  workers: Vec<JoinHandle<()>>,
  writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> ParGzWriter<W> {
  pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
    let threads = threads.max(1);
    let (job_tx, job_rx) = sync_channel::<Job>(threads * 2);
    let (done_tx, done_rx) = sync_channel::<Done>(threads * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
      let rx = Arc::clone(&job_rx);
      let tx = done_tx.clone();
      workers.push(
        thread::Builder::new()
          .name(format!("gantry-gzip-{i}"))
          .spawn(move || work(&rx, &tx, level))?,
      );
    }
    drop(done_tx);
    inner.write_all(&HEADER)?;
    let writer = thread::Builder::new()
      .name("gantry-gzip-out".into())
      .spawn(move || assemble(inner, done_rx))?;
    Ok(ParGzWriter {
      block: Vec::with_capacity(BLOCK),
      prev_tail: Vec::new(),
      seq: 0,
      jobs: Some(job_tx),
      workers,
      writer: Some(writer),
    })
  }

  fn dispatch(&mut self, last: bool) -> io::Result<()> {
    let data = std::mem::replace(&mut self.block, Vec::with_capacity(if last { 0 } else { BLOCK }));
    let tail_from = data.len().saturating_sub(WINDOW);
    let dict = std::mem::replace(&mut self.prev_tail, data[tail_from..].to_vec());
    let job = Job {
      seq: self.seq,
      data,
      dict,
      last,
    };
    self.seq += 1;
    let sent = self.jobs.as_ref().map(|tx| tx.send(job).is_ok()).unwrap_or(false);
    if sent {
      Ok(())
    } else {
      // A worker or the writer stopped: finishing reports its error.
      Err(io::Error::other("gzip pipeline stopped"))
    }
  }

  /// Compresses what is left, writes the trailer and returns the inner writer.
  pub fn finish(mut self) -> io::Result<W> {
    let dispatched = self.dispatch(true);
    self.jobs = None;
    for w in self.workers.drain(..) {
      let _ = w.join();
    }
    let inner = self
      .writer
      .take()
      .expect("finish runs once")
      .join()
      .map_err(|_| io::Error::other("gzip writer panicked"))?;
    let inner = inner?;
    dispatched?;
    Ok(inner)
  }
}

impl<W: Write + Send + 'static> Write for ParGzWriter<W> {
  fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
    let n = buf.len().min(BLOCK - self.block.len());
    self.block.extend_from_slice(&buf[..n]);
    if self.block.len() == BLOCK {
      self.dispatch(false)?;
    }
    Ok(n)
  }

  fn flush(&mut self) -> io::Result<()> {
    Ok(())
  }
}

fn work(jobs: &Mutex<Receiver<Job>>, done: &SyncSender<Done>, level: u32) {
  loop {
    let job = match jobs.lock() {
      Ok(rx) => match rx.recv() {
        Ok(job) => job,
        Err(_) => return,
      },
      Err(_) => return,
    };
    // A fresh compressor per block: a reset one (zlib-rs) kept state from the worker's previous block, so the
    // same tar compressed differently depending on which worker got which block, and layer digests were not
    // reproducible. Setting one up costs far less than deflating the 1 MiB block.
    let mut deflate = Compress::new(Compression::new(level), false);
    let out = compress_block(&mut deflate, &job);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&job.data);
    let result = Done {
      seq: job.seq,
      out,
      crc,
      len: job.data.len() as u64,
      last: job.last,
    };
    if done.send(result).is_err() {
      return;
    }
  }
}

fn compress_block(deflate: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
  let to_io = |e: flate2::CompressError| io::Error::other(e.to_string());
  if !job.dict.is_empty() {
    deflate.set_dictionary(&job.dict).map_err(to_io)?;
  }
  let flush = if job.last {
    FlushCompress::Finish
  } else {
    FlushCompress::Sync
  };
  let mut out = Vec::with_capacity(job.data.len() / 2 + 1024);
  let start = deflate.total_in();
  loop {
    let consumed = (deflate.total_in() - start) as usize;
    let status = deflate
      .compress_vec(&job.data[consumed..], &mut out, flush)
      .map_err(to_io)?;
    let all_in = (deflate.total_in() - start) as usize == job.data.len();
    let finished = match flush {
      FlushCompress::Finish => status == Status::StreamEnd,
      // A sync flush is complete once deflate stops filling the whole output buffer.
      _ => all_in && out.len() < out.capacity(),
    };
    if finished {
      return Ok(out);
    }
    out.reserve(out.capacity().max(64 * 1024));
  }
}

fn assemble<W: Write>(mut inner: W, done: Receiver<Done>) -> io::Result<W> {
  let mut pending = BTreeMap::new();
  let mut next = 0u64;
  let mut crc = crc32fast::Hasher::new();
  let mut total = 0u64;
  for block in done {
    pending.insert(block.seq, block);
    while let Some(block) = pending.remove(&next) {
      inner.write_all(&block.out?)?;
      crc.combine(&block.crc);
      total += block.len;
      next += 1;
      if block.last {
        inner.write_all(&crc.clone().finalize().to_le_bytes())?;
        inner.write_all(&(total as u32).to_le_bytes())?;
        inner.flush()?;
        return Ok(inner);
      }
    }
  }
  Err(io::Error::other("gzip pipeline ended before its last block"))
}
