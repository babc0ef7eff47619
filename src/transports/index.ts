/**
 * transports: parses skopeo-style transport references (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`,
 * `dir:`) and opens the matching ImageSource / ImageDestination. A string without a known transport prefix is a
 * registry reference, as in crane and cosign.
 */
import { GantryError } from '../errors/index.js';
import { type ImageReference, parseImageReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { openRegistryDestination, openRegistrySource } from './docker.js';
import type { ImageDestination, ImageSource } from './types.js';

export type TransportReference =
  | { transport: 'docker'; image: ImageReference; text: string }
  | { transport: 'oci' | 'oci-archive' | 'docker-archive'; path: string; ref?: string; text: string }
  | { transport: 'dir'; path: string; text: string };

const FILE_TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;
const UNSUPPORTED_TRANSPORTS = ['containers-storage', 'docker-daemon', 'sif', 'tarball'] as const;

export function parseTransportReference(text: string): TransportReference {
  if (text.startsWith('docker://')) {
    return { transport: 'docker', image: parseImageReference(text.slice('docker://'.length)), text };
  }
  const colon = text.indexOf(':');
  const prefix = colon > 0 ? text.slice(0, colon) : '';
  const rest = text.slice(colon + 1);
  if (prefix === 'dir') {
    if (rest === '')
      throw new GantryError('INVALID_REFERENCE', 'dir: needs a directory path', { subject: text });
    return { transport: 'dir', path: rest, text };
  }
  if ((FILE_TRANSPORTS as readonly string[]).includes(prefix)) {
    // Like skopeo, the path ends at the first ':'; what follows is the image's name inside the layout/archive.
    const sep = rest.indexOf(':');
    const path = sep >= 0 ? rest.slice(0, sep) : rest;
    const ref = sep >= 0 ? rest.slice(sep + 1) : undefined;
    if (path === '') throw new GantryError('INVALID_REFERENCE', `${prefix}: needs a path`, { subject: text });
    if (ref === '')
      throw new GantryError('INVALID_REFERENCE', 'empty image name after the path', { subject: text });
    const transport = prefix as (typeof FILE_TRANSPORTS)[number];
    return ref === undefined ? { transport, path, text } : { transport, path, ref, text };
  }
  if ((UNSUPPORTED_TRANSPORTS as readonly string[]).includes(prefix)) {
    throw new GantryError(
      'INVALID_REFERENCE',
      `transport "${prefix}" needs a daemon or local image store, which gantry does not use (use docker://, oci:, oci-archive:, docker-archive: or dir:)`,
      { subject: text },
    );
  }
  return { transport: 'docker', image: parseImageReference(text), text };
}

/** Registry clients per side of a copy, since source and destination may need different credentials. */
export interface TransportContext {
  registry: RegistryClient;
}

// File transports are imported when used: a registry-only command then never loads tar handling.
export async function openSource(ref: TransportReference, context: TransportContext): Promise<ImageSource> {
  switch (ref.transport) {
    case 'docker':
      return openRegistrySource(context.registry, ref.image);
    case 'oci':
      return (await import('./oci-layout.js')).openOciLayoutSource({
        dir: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'oci-archive':
      return (await import('./oci-archive.js')).openOciArchiveSource({
        file: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'docker-archive':
      return (await import('./docker-archive.js')).openDockerArchiveSource({
        file: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'dir':
      return (await import('./dir.js')).openDirSource({ dir: ref.path, name: ref.text });
  }
}

export async function openDestination(
  ref: TransportReference,
  context: TransportContext,
): Promise<ImageDestination> {
  switch (ref.transport) {
    case 'docker':
      return openRegistryDestination(context.registry, ref.image);
    case 'oci':
      return (await import('./oci-layout.js')).openOciLayoutDestination({
        dir: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'oci-archive':
      return (await import('./oci-archive.js')).openOciArchiveDestination({
        file: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'docker-archive':
      return (await import('./docker-archive.js')).openDockerArchiveDestination({
        file: ref.path,
        ref: ref.ref,
        name: ref.text,
      });
    case 'dir':
      return (await import('./dir.js')).openDirDestination({ dir: ref.path, name: ref.text });
  }
}

export type { ImageDestination, ImageSource } from './types.js';
