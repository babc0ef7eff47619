//! A minimal deterministic tar writer: ustar headers, PAX records only when needed (long names, xattrs), no
//! user/group names, access times or device numbers for non-devices, so the same tree gives the same bytes.
use std::io::{self, Read, Write};

use tar::{EntryType, Header};

pub struct TarEntry<'a> {
  /// Path inside the layer; directories end with `/`.
  pub name: &'a [u8],
  pub kind: EntryType,
  pub mode: u32,
  pub uid: u64,
  pub gid: u64,
  pub mtime: u64,
  pub size: u64,
  pub link: Option<&'a [u8]>,
  pub device: (u32, u32),
  pub xattrs: &'a [(String, Vec<u8>)],
}

pub struct TarWriter<W: Write> {
  pub out: W,
}

impl<W: Write> TarWriter<W> {
  pub fn new(out: W) -> Self {
    TarWriter { out }
  }

  /// Writes one entry; `data` must yield exactly `entry.size` bytes (a file that changed size while being
  /// read is an error, not a corrupt archive).
  pub fn append(&mut self, entry: &TarEntry<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
    let mut header = Header::new_ustar();
    let mut pax: Vec<(String, &[u8])> = Vec::new();
    if !set_name(&mut header, entry.name) {
      pax.push(("path".into(), entry.name));
      set_name(&mut header, &entry.name[..100]);
    }
    if let Some(link) = entry.link {
      if link.len() > 100 {
        pax.push(("linkpath".into(), link));
        header.set_link_name_literal(&link[..100])?;
      } else {
        header.set_link_name_literal(link)?;
      }
    }
    for (name, value) in entry.xattrs {
      pax.push((format!("SCHILY.xattr.{name}"), value));
    }
    header.set_entry_type(entry.kind);
    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(entry.mtime);
    header.set_size(entry.size);
    if matches!(entry.kind, EntryType::Char | EntryType::Block) {
      header.set_device_major(entry.device.0)?;
      header.set_device_minor(entry.device.1)?;
    }
    header.set_cksum();
    if !pax.is_empty() {
      self.pax(&pax, entry.mtime)?;
    }
    self.out.write_all(header.as_bytes())?;
    if let Some(data) = data {
      let copied = io::copy(&mut data.take(entry.size), &mut self.out)?;
      if copied != entry.size {
        return Err(io::Error::other(format!(
          "{} changed while being read ({} of {} bytes)",
          String::from_utf8_lossy(entry.name),
          copied,
          entry.size
        )));
      }
    }
    self.pad(entry.size)
  }

  fn pax(&mut self, records: &[(String, &[u8])], mtime: u64) -> io::Result<()> {
    let mut data = Vec::new();
    for (key, value) in records {
      // Each record is "<len> <key>=<value>\n" where <len> counts its own digits.
      let rest = key.len() + value.len() + 3;
      let mut len = rest + 1;
      while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
      }
      data.extend_from_slice(format!("{len} {key}=").as_bytes());
      data.extend_from_slice(value);
      data.push(b'\n');
    }
    let mut header = Header::new_ustar();
    set_name(&mut header, b"././@PaxHeader");
    header.set_entry_type(EntryType::XHeader);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_size(data.len() as u64);
    header.set_cksum();
    self.out.write_all(header.as_bytes())?;
    self.out.write_all(&data)?;
    self.pad(data.len() as u64)
  }

  fn pad(&mut self, len: u64) -> io::Result<()> {
    let rem = (len % 512) as usize;
    if rem != 0 {
      self.out.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
  }

  /// Ends the archive with two zero blocks and returns the writer.
  pub fn finish(mut self) -> io::Result<W> {
    self.out.write_all(&[0u8; 1024])?;
    Ok(self.out)
  }
}

/// Stores a name in ustar's name (100 bytes) and prefix (155 bytes) fields, splitting at a `/`. Returns false
/// when it does not fit (the caller then uses a PAX `path` record).
fn set_name(header: &mut Header, name: &[u8]) -> bool {
  let Some(ustar) = header.as_ustar_mut() else {
    return false;
  };
  if name.len() <= 100 {
    ustar.name[..name.len()].copy_from_slice(name);
    return true;
  }
  // Do not split at a trailing slash: the name part must not be empty.
  let searchable = &name[..name.len() - 1];
  let split = searchable
    .iter()
    .enumerate()
    .rev()
    .filter(|(i, b)| **b == b'/' && *i <= 155 && name.len() - i - 1 <= 100)
    .map(|(i, _)| i)
    .next();
  match split {
    Some(i) => {
      ustar.prefix[..i].copy_from_slice(&name[..i]);
      ustar.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
      true
    }
    None => false,
  }
}
