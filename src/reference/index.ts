/**
 * reference: parsing of registry image references (`host[:port]/repo[:tag][@digest]`) following the
 * distribution reference grammar, including Docker Hub's `docker.io/library/` normalisation. Pure.
 */
import { GantryError } from '../errors/index.js';
import { isDigest } from '../oci/index.js';

export interface ImageReference {
  /** Registry host as used for connections, e.g. `127.0.0.1:5000` or `registry-1.docker.io`. */
  registry: string;
  /** Repository path within the registry, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/;

export function parseImageReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw new GantryError('INVALID_REFERENCE', `invalid image reference: ${why}`, { subject: input });
  };
  if (input === '' || input.length > 4096) fail('empty or too long');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) fail(`bad digest ${JSON.stringify(digest)}`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) fail(`bad tag ${JSON.stringify(tag)}`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(firstSlash + 1);
    }
  }
  if (!HOST_RE.test(registry)) fail(`bad registry host ${JSON.stringify(registry)}`);
  if (registry === DOCKER_HUB || registry === 'index.docker.io') {
    registry = DOCKER_HUB;
    if (!repository.includes('/')) repository = `library/${repository}`;
  }
  if (repository === '' || repository.length > 255) fail('empty or too long repository');
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) {
      fail(
        `repository component ${JSON.stringify(component)} must be lowercase letters, digits and separators`,
      );
    }
  }
  const ref: ImageReference = { registry, repository };
  if (tag) ref.tag = tag;
  if (digest) ref.digest = digest;
  if (!tag && !digest) ref.tag = 'latest';
  return ref;
}

/** The host to connect to: Docker Hub's API lives on a different name than its references. */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** `host/repo:tag@digest`, omitting what is absent. */
export function formatImageReference(ref: ImageReference): string {
  let out = `${ref.registry}/${ref.repository}`;
  if (ref.tag) out += `:${ref.tag}`;
  if (ref.digest) out += `@${ref.digest}`;
  return out;
}

/** The tag or digest to ask the registry for; a digest wins because it is exact. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** True for hosts where plain HTTP is allowed without being marked insecure. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '');
  // Only a literal 127.x.y.z address is loopback: a DNS name like `127.example.com` can resolve anywhere.
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
