//! LayerError: why a layer operation failed, split by whose fault it is so the TypeScript side can pick a
//! GantryError code (a refused or malformed layer is bad input; anything else is local I/O).
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum LayerError {
  /// The layer tries to write outside the target (`..`, absolute paths, symlink tricks, outside hard links).
  Unsafe(String),
  /// The blob is not a readable layer (bad compression, corrupt tar, unknown entry semantics).
  Invalid(String),
  /// A local filesystem operation failed; the string names the path.
  Io(String, io::Error),
}

pub type LayerResult<T> = Result<T, LayerError>;

impl LayerError {
  pub fn io(context: impl Into<String>, err: io::Error) -> Self {
    LayerError::Io(context.into(), err)
  }
}

impl fmt::Display for LayerError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      LayerError::Unsafe(m) => write!(f, "unsafe layer entry refused: {m}"),
      LayerError::Invalid(m) => write!(f, "invalid layer: {m}"),
      LayerError::Io(ctx, e) => write!(f, "{ctx}: {e}"),
    }
  }
}

/// Shows a path stored as bytes (tar names need not be UTF-8) in messages.
pub fn show(path: &[u8]) -> String {
  String::from_utf8_lossy(path).into_owned()
}
