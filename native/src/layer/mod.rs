//! Layer I/O exposed to Node: `unpackLayer` (safe extraction with whiteouts) and `createLayer` (tree or diff →
//! compressed, hashed layer blob). Both run as AsyncTasks on libuv's pool; the Rust entry points
//! (`unpack::unpack_layer`, `create::create_layer`) are plain functions so a helper process can call them too
//! (e.g. inside a user namespace, where ownership can be kept).
pub mod create;
mod error;
mod fsat;
mod path;
mod pgzip;
mod stream;
mod tarw;
pub mod unpack;

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;

use create::{owner_key, CreateOptions, CreateReport};
use error::LayerError;
use unpack::{Compression, UnpackOptions, UnpackReport};

impl From<LayerError> for Error {
  fn from(err: LayerError) -> Self {
    let status = match err {
      LayerError::Unsafe(_) | LayerError::Invalid(_) => Status::InvalidArg,
      LayerError::Io(..) => Status::GenericFailure,
    };
    Error::new(status, err.to_string())
  }
}

#[napi(object)]
pub struct UnpackLayerOptions {
  /// Path of the layer blob (tar, tar+gzip or tar+zstd; detected from its first bytes).
  pub source: String,
  /// Existing directory to unpack into.
  pub target: String,
  /// `apply` (default) deletes what whiteouts name; `overlay` writes overlayfs whiteouts instead.
  pub whiteout_mode: Option<String>,
}

#[napi(object)]
pub struct SkippedEntry {
  pub path: String,
  pub reason: String,
}

#[napi(object)]
pub struct UnpackLayerResult {
  pub entries: u32,
  pub skipped: Vec<SkippedEntry>,
  pub diff_id: String,
  pub owners_recorded: u32,
}

pub struct UnpackLayerTask {
  options: UnpackOptions,
}

impl Task for UnpackLayerTask {
  type Output = UnpackReport;
  type JsValue = UnpackLayerResult;

  fn compute(&mut self) -> Result<Self::Output> {
    unpack::unpack_layer(&self.options).map_err(Error::from)
  }

  fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
    Ok(UnpackLayerResult {
      entries: out.entries,
      skipped: out
        .skipped
        .into_iter()
        .map(|s| SkippedEntry {
          path: s.path,
          reason: s.reason,
        })
        .collect(),
      diff_id: out.diff_id,
      owners_recorded: out.owners_recorded,
    })
  }
}

/// Unpacks one layer blob into `target`, refusing entries that would escape it.
#[napi(ts_return_type = "Promise<UnpackLayerResult>")]
pub fn unpack_layer(options: UnpackLayerOptions) -> Result<AsyncTask<UnpackLayerTask>> {
  let overlay = match options.whiteout_mode.as_deref() {
    None | Some("apply") => false,
    Some("overlay") => true,
    Some(other) => return Err(Error::new(Status::InvalidArg, format!("unknown whiteoutMode {other}"))),
  };
  Ok(AsyncTask::new(UnpackLayerTask {
    options: UnpackOptions {
      source: options.source.into(),
      target: options.target.into(),
      overlay,
    },
  }))
}

#[napi(object)]
pub struct CreateLayerOptions {
  /// Directory of changes (an overlay upperdir), or the new tree when `base` is given.
  pub changes: String,
  pub base: Option<String>,
  pub output_path: String,
  /// `gzip` (default), `zstd` or `none`.
  pub compression: Option<String>,
  pub level: Option<i32>,
  /// Clamp entry mtimes to this many seconds since the epoch.
  pub source_date_epoch: Option<i64>,
  /// Owners to write for these paths (relative to `changes`) instead of what the files say.
  pub owners: Option<Vec<LayerOwner>>,
}

#[napi(object)]
pub struct LayerOwner {
  pub path: String,
  pub uid: u32,
  pub gid: u32,
}

#[napi(object)]
pub struct CreateLayerResult {
  pub digest: String,
  pub diff_id: String,
  /// Size of the blob in bytes.
  pub size: i64,
}

pub struct CreateLayerTask {
  options: CreateOptions,
}

impl Task for CreateLayerTask {
  type Output = CreateReport;
  type JsValue = CreateLayerResult;

  fn compute(&mut self) -> Result<Self::Output> {
    create::create_layer(&self.options).map_err(Error::from)
  }

  fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
    Ok(CreateLayerResult {
      digest: out.digest,
      diff_id: out.diff_id,
      size: out.size as i64,
    })
  }
}

/// Writes a layer blob from a directory of changes (or a two-tree diff), hashing and compressing in one pass.
#[napi(ts_return_type = "Promise<CreateLayerResult>")]
pub fn create_layer(options: CreateLayerOptions) -> Result<AsyncTask<CreateLayerTask>> {
  let name = options.compression.as_deref().unwrap_or("gzip");
  let compression = Compression::from_name(name)
    .ok_or_else(|| Error::new(Status::InvalidArg, format!("unknown compression {name}")))?;
  let owners = options.owners.unwrap_or_default().into_iter();
  Ok(AsyncTask::new(CreateLayerTask {
    options: CreateOptions {
      changes: PathBuf::from(options.changes),
      base: options.base.map(PathBuf::from),
      output: PathBuf::from(options.output_path),
      compression,
      level: options.level,
      source_date_epoch: options.source_date_epoch,
      owners: owners.map(|o| (owner_key(&o.path), (o.uid.into(), o.gid.into()))).collect(),
    },
  }))
}
