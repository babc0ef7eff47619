//! `gantry-sandbox layer SPEC_FILE`: writes a layer blob from a changes directory inside a user namespace with
//! the container's id maps. There stat() gives the ids the container gave each file (not the caller's
//! subordinate ids) and, as the namespace's root, every file is readable whatever its mode — so a rootless
//! RUN's layer records exact owners, symlinks included. The blob is the same as the addon's createLayer
//! writes (one code path: native/src/layer/create.rs); the report is printed as one JSON line on stdout.
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use super::owners::in_user_namespace;
use super::spec::IdMaps;
use super::sys;
use crate::layer::create::{create_layer, owner_key, CreateOptions};
use crate::layer::unpack::Compression;

#[derive(Deserialize)]
struct OwnerSpec {
  path: String,
  uid: u32,
  gid: u32,
}

/// Mirrors the addon's CreateLayerOptions (src/layer/userns.ts writes it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerSpec {
  id_maps: IdMaps,
  changes: String,
  base: Option<String>,
  output_path: String,
  compression: String,
  level: Option<i32>,
  source_date_epoch: Option<i64>,
  #[serde(default)]
  owners: Vec<OwnerSpec>,
}

fn options(spec: &LayerSpec) -> sys::Result<CreateOptions> {
  let compression =
    Compression::from_name(&spec.compression).ok_or_else(|| format!("unknown compression {}", spec.compression))?;
  let owners: HashMap<_, _> =
    spec.owners.iter().map(|o| (owner_key(&o.path), (u64::from(o.uid), u64::from(o.gid)))).collect();
  Ok(CreateOptions {
    changes: PathBuf::from(&spec.changes),
    base: spec.base.as_ref().map(PathBuf::from),
    output: PathBuf::from(&spec.output_path),
    compression,
    level: spec.level,
    source_date_epoch: spec.source_date_epoch,
    owners,
  })
}

pub fn main(spec_file: &str) -> i32 {
  let result = (|| -> sys::Result<()> {
    let bytes = fs::read(spec_file).map_err(|e| format!("{spec_file}: {e}"))?;
    let spec: LayerSpec = serde_json::from_slice(&bytes).map_err(|e| format!("invalid spec: {e}"))?;
    let opts = options(&spec)?;
    in_user_namespace(&spec.id_maps, "layer", || {
      let report = create_layer(&opts).map_err(|e| e.to_string())?;
      let line = serde_json::json!({ "digest": report.digest, "diffId": report.diff_id, "size": report.size });
      // The child leaves through _exit, which flushes nothing: write and flush here.
      let mut out = std::io::stdout().lock();
      writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| format!("writing the report: {e}"))
    })
  })();
  match result {
    Ok(()) => 0,
    Err(e) => {
      eprintln!("gantry-sandbox layer: {e}");
      1
    }
  }
}
