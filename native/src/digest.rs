//! digestFile: the sha256 digest of a file, streamed in 1 MiB chunks off the main thread. digestFiles: the
//! digests of many files at once on a few threads of its own, for COPY cache keys over thousands of small
//! files, where one libuv round trip per open/read/close dominated.
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use sha2::{Digest, Sha256};

const CHUNK_SIZE: usize = 1 << 20;

pub struct DigestFileTask {
  path: String,
}

fn hash_file(path: &str) -> std::io::Result<String> {
  let mut buf = vec![0u8; CHUNK_SIZE];
  hash_file_with(path, &mut buf)
}

fn hash_file_with(path: &str, buf: &mut [u8]) -> std::io::Result<String> {
  let mut file = File::open(path)?;
  let mut hasher = Sha256::new();
  loop {
    match file.read(buf) {
      Ok(0) => break,
      Ok(n) => hasher.update(&buf[..n]),
      Err(e) if e.kind() == ErrorKind::Interrupted => continue,
      Err(e) => return Err(e),
    }
  }
  let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
  Ok(format!("sha256:{hex}"))
}

impl Task for DigestFileTask {
  type Output = String;
  type JsValue = String;

  // Runs on a libuv worker thread.
  fn compute(&mut self) -> Result<Self::Output> {
    hash_file(&self.path)
      .map_err(|e| Error::new(Status::GenericFailure, format!("{}: {}", self.path, e)))
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output)
  }
}

/// Returns `sha256:<hex>` of the file at `path`, reading it in 1 MiB chunks on a worker thread.
#[napi(ts_return_type = "Promise<string>")]
pub fn digest_file(path: String) -> AsyncTask<DigestFileTask> {
  AsyncTask::new(DigestFileTask { path })
}

/// Threads digestFiles uses at most: small files are bound by open/close system calls, which overlap well.
const BATCH_THREADS: usize = 8;
/// Per-thread read buffer: most COPY sources are small.
const BATCH_BUFFER: usize = 256 * 1024;

pub struct DigestFilesTask {
  paths: Vec<String>,
}

fn hash_files(paths: &[String]) -> std::result::Result<Vec<String>, String> {
  let results: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; paths.len()]);
  let next = AtomicUsize::new(0);
  let failure: Mutex<Option<String>> = Mutex::new(None);
  let threads = BATCH_THREADS.min(paths.len()).max(1);
  std::thread::scope(|scope| {
    for _ in 0..threads {
      scope.spawn(|| {
        let mut buf = vec![0u8; BATCH_BUFFER];
        loop {
          let i = next.fetch_add(1, Ordering::Relaxed);
          if i >= paths.len() || failure.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
          }
          match hash_file_with(&paths[i], &mut buf) {
            Ok(digest) => {
              if let Ok(mut r) = results.lock() {
                r[i] = Some(digest);
              }
            }
            Err(e) => {
              if let Ok(mut f) = failure.lock() {
                f.get_or_insert(format!("{}: {}", paths[i], e));
              }
              return;
            }
          }
        }
      });
    }
  });
  if let Some(message) = failure.into_inner().map_err(|_| "digest thread panicked".to_string())? {
    return Err(message);
  }
  let results = results.into_inner().map_err(|_| "digest thread panicked".to_string())?;
  results.into_iter().map(|d| d.ok_or_else(|| "a file was not digested".to_string())).collect()
}

impl Task for DigestFilesTask {
  type Output = Vec<String>;
  type JsValue = Vec<String>;

  // Runs on a libuv worker thread, which spreads the files over a few threads of its own.
  fn compute(&mut self) -> Result<Self::Output> {
    hash_files(&self.paths).map_err(|e| Error::new(Status::GenericFailure, e))
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output)
  }
}

/// Returns `sha256:<hex>` of every file in `paths`, in order; fails naming the first file that cannot be read.
#[napi(ts_return_type = "Promise<string[]>")]
pub fn digest_files(paths: Vec<String>) -> AsyncTask<DigestFilesTask> {
  AsyncTask::new(DigestFilesTask { paths })
}
