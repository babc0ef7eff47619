//! digestFile: the sha256 digest of a file, streamed in 1 MiB chunks off the main thread.
use std::fs::File;
use std::io::{ErrorKind, Read};

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use sha2::{Digest, Sha256};

const CHUNK_SIZE: usize = 1 << 20;

pub struct DigestFileTask {
  path: String,
}

fn hash_file(path: &str) -> std::io::Result<String> {
  let mut file = File::open(path)?;
  let mut hasher = Sha256::new();
  let mut buf = vec![0u8; CHUNK_SIZE];
  loop {
    match file.read(&mut buf) {
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
