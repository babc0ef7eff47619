/**
 * attest/sbom: the SPDX 2.3 JSON document `gantry build --sbom` attaches — every regular file of the image's
 * flattened filesystem with its SHA-1 and SHA-256, and the packages its package databases list
 * (/var/lib/dpkg/status, /lib/apk/db/installed). The filesystem is read by unpacking the layers in order, with
 * whiteouts applied, into scratch space; parsing and the document itself are pure.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { asGantryError } from '../errors/index.js';
import { unpackLayer } from '../layer/index.js';
import { digestHex } from '../oci/index.js';

export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document';

export interface ImageFile {
  /** Absolute path inside the image, e.g. `/etc/os-release`. */
  path: string;
  sha1: string;
  sha256: string;
}

export interface OsPackage {
  kind: 'deb' | 'apk';
  name: string;
  version: string;
  architecture?: string;
  license?: string;
}

export interface ImageContents {
  files: ImageFile[];
  packages: OsPackage[];
}

const DPKG_STATUS = 'var/lib/dpkg/status';
const APK_INSTALLED = 'lib/apk/db/installed';

/** Unpacks `layers` (blob paths, bottom first) into scratch space and lists the result; the scratch is removed. */
export async function readImageContents(
  layers: readonly { path: string; mediaType: string }[],
): Promise<ImageContents> {
  const root = await mkdtemp(join(tmpdir(), 'gantry-sbom-'));
  try {
    for (const layer of layers) {
      await unpackLayer({ source: layer.path, mediaType: layer.mediaType, target: root });
    }
    const files: ImageFile[] = [];
    await walk(root, '', files);
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const packages = [
      ...parseDpkgStatus(await readOptional(join(root, DPKG_STATUS))),
      ...parseApkInstalled(await readOptional(join(root, APK_INSTALLED))),
    ];
    return { files, packages };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Depth-first over the unpacked tree. The scratch tree is ours: modes are widened before reading so that an
 * image's unreadable files and directories (mode 000 as non-root) are still listed, and removable afterwards.
 */
async function walk(dir: string, rel: string, out: ImageFile[]): Promise<void> {
  await chmod(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      await walk(full, path, out);
    } else if (entry.isFile()) {
      await chmod(full, 0o600);
      out.push({ path, ...(await hashFile(full, path)) });
    }
  }
}

async function hashFile(full: string, path: string): Promise<{ sha1: string; sha256: string }> {
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  try {
    await pipeline(createReadStream(full), async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) {
        sha1.update(chunk);
        sha256.update(chunk);
      }
    });
  } catch (err) {
    throw asGantryError(err, 'IO', 'cannot read an image file for the SBOM', path);
  }
  return { sha1: sha1.digest('hex'), sha256: sha256.digest('hex') };
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw asGantryError(err, 'IO', 'cannot read a package database', path);
  }
}

/** RFC 822-style stanzas separated by blank lines; continuation lines (leading space) are dropped. */
function stanzas(text: string): Map<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(' ') || line.startsWith('\t')) continue;
        const colon = line.indexOf(':');
        if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
      }
      return fields;
    })
    .filter((f) => f.size > 0);
}

/** Installed packages of a dpkg status file (Status `... installed`); others are config-files leftovers. */
export function parseDpkgStatus(text: string): OsPackage[] {
  return stanzas(text).flatMap((f) => {
    const name = f.get('Package');
    const version = f.get('Version');
    if (!name || !version || !/\binstalled$/.test(f.get('Status') ?? '')) return [];
    const architecture = f.get('Architecture');
    return [{ kind: 'deb' as const, name, version, ...(architecture ? { architecture } : {}) }];
  });
}

/** Packages of apk's installed database (`P:` name, `V:` version, `A:` arch, `L:` license). */
export function parseApkInstalled(text: string): OsPackage[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        if (line.length > 2 && line[1] === ':' && !fields.has(line[0] as string))
          fields.set(line[0] as string, line.slice(2));
      }
      return fields;
    })
    .flatMap((f) => {
      const name = f.get('P');
      const version = f.get('V');
      if (!name || !version) return [];
      const architecture = f.get('A');
      const license = f.get('L');
      return [
        {
          kind: 'apk' as const,
          name,
          version,
          ...(architecture ? { architecture } : {}),
          ...(license ? { license } : {}),
        },
      ];
    });
}

export interface SpdxOptions {
  /** The document's name, e.g. the image reference or its ID. */
  name: string;
  /** The image config digest (image ID): names the image package and makes the namespace unique and stable. */
  imageId: string;
  contents: ImageContents;
  created: Date;
}

/** An SPDX 2.3 JSON document: the image as a package that CONTAINS its files and OS packages. */
export function spdxDocument(o: SpdxOptions): Record<string, unknown> {
  const imageSpdxId = 'SPDXRef-Image';
  const packages = o.contents.packages.map((p, i) => ({
    name: p.name,
    SPDXID: `SPDXRef-Package-${p.kind}-${i + 1}`,
    versionInfo: p.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: p.license ?? 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    externalRefs: [
      { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(p) },
    ],
  }));
  const files = o.contents.files.map((f, i) => ({
    fileName: `.${f.path}`,
    SPDXID: `SPDXRef-File-${i + 1}`,
    checksums: [
      { algorithm: 'SHA1', checksumValue: f.sha1 },
      { algorithm: 'SHA256', checksumValue: f.sha256 },
    ],
    licenseConcluded: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
  }));
  const contains = [...packages, ...files].map((x) => ({
    spdxElementId: imageSpdxId,
    relationshipType: 'CONTAINS',
    relatedSpdxElement: x.SPDXID,
  }));
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: o.name,
    documentNamespace: `https://gantry.dev/spdx/image/${digestHex(o.imageId)}`,
    creationInfo: {
      created: o.created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      creators: ['Tool: gantry'],
    },
    documentDescribes: [imageSpdxId],
    packages: [
      {
        name: o.name,
        SPDXID: imageSpdxId,
        versionInfo: o.imageId,
        downloadLocation: 'NOASSERTION',
        // true would require a packageVerificationCode; the files are tied to the image by CONTAINS instead.
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        primaryPackagePurpose: 'CONTAINER',
      },
      ...packages,
    ],
    files,
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageSpdxId },
      ...contains,
    ],
  };
}

function purl(p: OsPackage): string {
  const namespace = p.kind === 'deb' ? 'debian' : 'alpine';
  const arch = p.architecture ? `?arch=${encodeURIComponent(p.architecture)}` : '';
  return `pkg:${p.kind}/${namespace}/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}${arch}`;
}
