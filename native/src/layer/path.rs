//! Entry names → safe relative component lists. Pure: the one place that decides which tar names are allowed.
use super::error::{show, LayerError, LayerResult};

/// Splits a tar entry name into components, dropping `.` and empty parts (`./a//b/` → `[a, b]`). Refuses
/// absolute names and any `..` component: such an entry could only mean "outside the target".
pub fn components(name: &[u8]) -> LayerResult<Vec<&[u8]>> {
  if name.first() == Some(&b'/') {
    return Err(LayerError::Unsafe(format!("{}: absolute path", show(name))));
  }
  let mut out = Vec::new();
  for part in name.split(|b| *b == b'/') {
    match part {
      b"" | b"." => {}
      b".." => return Err(LayerError::Unsafe(format!("{}: `..` component", show(name)))),
      _ if part.contains(&0) => return Err(LayerError::Invalid(format!("{}: NUL in name", show(name)))),
      _ => out.push(part),
    }
  }
  Ok(out)
}

/// Joins components back into a canonical relative path (`a/b`), the key used to track what a layer created.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
  parts.join(&b'/')
}

pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What an entry's last component says about whiteouts.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
  None,
  /// `.wh..wh..opq`: the parent directory hides everything below it in lower layers.
  Opaque,
  /// `.wh.NAME`: NAME is deleted.
  Remove(&'a [u8]),
}

pub fn whiteout(base: &[u8]) -> LayerResult<Whiteout<'_>> {
  if base == OPAQUE_MARKER {
    return Ok(Whiteout::Opaque);
  }
  match base.strip_prefix(WHITEOUT_PREFIX) {
    None => Ok(Whiteout::None),
    Some(b"") | Some(b".") | Some(b"..") => Err(LayerError::Unsafe(format!("bad whiteout name {}", show(base)))),
    Some(name) => Ok(Whiteout::Remove(name)),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn normalises_and_refuses() {
    assert_eq!(components(b"./a//b/").unwrap(), vec![&b"a"[..], b"b"]);
    assert!(components(b"./").unwrap().is_empty());
    assert!(matches!(components(b"a/../../etc"), Err(LayerError::Unsafe(_))));
    assert!(matches!(components(b"/etc/passwd"), Err(LayerError::Unsafe(_))));
    assert_eq!(whiteout(b".wh..wh..opq").unwrap(), Whiteout::Opaque);
    assert_eq!(whiteout(b".wh.x").unwrap(), Whiteout::Remove(b"x"));
    assert!(whiteout(b".wh...").is_err());
  }
}
