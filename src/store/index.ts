/**
 * store: gantry's local content-addressed store. `images/` is an OCI image layout (pulled images, named by the
 * reference they were pulled as), `layers/sha256/<hex>/` holds each layer unpacked once, by diffID, and
 * `tmp/` holds scratch space (unpacks in progress, containers' changes). Unpacked layers appear atomically
 * (rename), so concurrent runs never see half a layer; shared with the builder, whose layer steps hand over
 * their finished changes directories instead of having their blobs unpacked again (`adoptLayer`).
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { asGantryError } from '../errors/index.js';
import { assertDigest, digestAlgorithm, digestHex } from '../oci/index.js';
import { type AdoptOptions, conformChanges } from './adopt.js';

export type { AdoptOptions } from './adopt.js';

/** `$GANTRY_STORE`, else `${XDG_DATA_HOME:-~/.local/share}/gantry`. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GANTRY_STORE) return resolve(env.GANTRY_STORE);
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(resolve(data), 'gantry');
}

export class LayerStore {
  private constructor(readonly root: string) {}

  /** Opens (creating when missing) the store at `root`. */
  static async open(root: string): Promise<LayerStore> {
    const store = new LayerStore(resolve(root));
    try {
      for (const dir of [store.imagesDir, join(store.root, 'layers'), store.tmpDir]) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      throw asGantryError(err, 'IO', 'cannot create the store', root);
    }
    return store;
  }

  /** The OCI layout holding pulled images. */
  get imagesDir(): string {
    return join(this.root, 'images');
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  blobPath(digest: string): string {
    assertDigest(digest, this.root);
    return join(this.imagesDir, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  /** Where the layer with this diffID is (or will be) unpacked. */
  layerPath(diffId: string): string {
    assertDigest(diffId, this.root);
    return join(this.root, 'layers', digestAlgorithm(diffId), digestHex(diffId));
  }

  /**
   * The unpacked layer, unpacking it with `unpack(dir)` first when it is not there yet. Unpacking goes to a
   * temporary directory that is renamed into place; if another process got there first, its copy is kept.
   */
  async ensureLayer(diffId: string, unpack: (dir: string) => Promise<void>): Promise<string> {
    const target = this.layerPath(diffId);
    if (await isDirectory(target)) return target;
    await mkdir(join(target, '..'), { recursive: true });
    const temp = await this.makeScratch('unpack');
    try {
      await unpack(temp);
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      // Lost a race with a concurrent unpack of the same layer: theirs is complete, use it.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await isDirectory(target))) return target;
      throw asGantryError(err, 'IO', `unpacking layer ${diffId}`, target);
    } finally {
      await this.releaseScratch(temp);
    }
    return target;
  }

  /**
   * Keeps `dir`, a layer step's finished changes directory, as the unpacked layer with this diffID instead
   * of unpacking the blob again later: when it can be made exactly what unpacking gives (./adopt.ts), it is
   * renamed into place — the one atomic step that also completes an unpack, so an interrupted adoption leaves
   * only scratch behind. True when the layer is in the store afterwards (also when another process put it
   * there first; `dir` is then left for the caller to remove); false leaves `dir` for the caller to remove
   * and the blob to be unpacked when needed. Never throws: adopting only saves work.
   */
  async adoptLayer(diffId: string, dir: string, options: AdoptOptions = {}): Promise<boolean> {
    const target = this.layerPath(diffId);
    if (await isDirectory(target)) return true;
    try {
      const dump = `${dir}.adopt-xattrs`;
      const refused = await conformChanges(dir, { ...options, scratch: dump }).finally(() =>
        rm(dump, { force: true }),
      );
      if (refused !== undefined) return false;
      await mkdir(join(target, '..'), { recursive: true });
      await rename(dir, target);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return (code === 'ENOTEMPTY' || code === 'EEXIST') && (await isDirectory(target));
    }
  }

  /**
   * A fresh scratch directory under tmp/, with a `<dir>.pid` file naming this process so that
   * `sweepStale` can tell a live run's scratch from one a killed run left behind.
   */
  async makeScratch(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(this.tmpDir, `${prefix}-`));
    await writeFile(`${dir}.pid`, String(process.pid));
    return dir;
  }

  /** Forgets a scratch directory's owner once the directory itself is gone or renamed away. */
  async releaseScratch(dir: string): Promise<void> {
    await rm(`${dir}.pid`, { force: true });
  }

  /**
   * Removes scratch directories whose process is gone (a run killed with SIGKILL leaves its scratch). A
   * directory without a pid file is left alone for an hour: its owner may be between mkdtemp and writeFile.
   * `remove` deletes one directory (the caller may need a user namespace for files owned by subordinate ids).
   */
  async sweepStale(remove: (dir: string) => Promise<void>): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of await readdir(this.tmpDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(this.tmpDir, entry.name);
      const pid = await readFile(`${dir}.pid`, 'utf8').then(Number, () => undefined);
      const stale =
        pid === undefined
          ? Date.now() - (await stat(dir)).mtimeMs > 3_600_000
          : Number.isSafeInteger(pid) && pid > 0 && !isAlive(pid);
      if (!stale) continue;
      await remove(dir);
      await this.releaseScratch(dir);
      removed.push(dir);
    }
    return removed;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
