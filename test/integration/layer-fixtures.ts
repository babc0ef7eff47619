/**
 * Fixtures for the layer tests: hand-made tar blobs (including hostile ones) and a tree snapshot that
 * records each path's type, mode, link target and content hash for round-trip comparisons.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

export interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  content?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
}

/** Writes a tar (gzip-compressed unless `gzip: false`) with exactly these entries, names as given. */
export async function writeTar(path: string, items: TarItem[], opts: { gzip?: boolean } = {}): Promise<void> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const item of items) {
    const { content, ...header } = item;
    await new Promise<void>((resolve, reject) => {
      p.entry(
        { mtime: new Date(1_700_000_000_000), mode: item.type === 'directory' ? 0o755 : 0o644, ...header },
        content ?? '',
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  await writeFile(path, opts.gzip === false ? tar : gzipSync(tar));
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size?: number;
  sha256?: string;
  link?: string;
}

/** path → what it is, for every path under `root` (symlinks not followed). */
export async function snapshot(root: string, rel = ''): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const full = join(root, path);
    const st = await lstat(full);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      out[path] = { type: 'dir', mode };
      Object.assign(out, await snapshot(root, path));
    } else if (st.isSymbolicLink()) {
      out[path] = { type: 'symlink', mode: 0, link: await readlink(full) };
    } else if (st.isFile()) {
      const sha256 = createHash('sha256')
        .update(await readFile(full))
        .digest('hex');
      out[path] = { type: 'file', mode, size: st.size, sha256 };
    } else {
      out[path] = { type: 'other', mode };
    }
  }
  return out;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
