/**
 * build/flags: `gantry build` flag values into builder options — `--output type=...`, `--secret id=..,src=..|env=..`,
 * `--build-context`, `--platform`, `KEY=VALUE` lists, `--timestamp` / SOURCE_DATE_EPOCH. Pure.
 */
import { isAbsolute, join } from 'node:path';
import { GantryError } from '../errors/index.js';
import { formatPlatform, isDigest, type Platform, parsePlatform } from '../oci/index.js';
import { formatImageReference, parseImageReference } from '../reference/index.js';
import type { NamedContext, SecretSource } from './types.js';

function csv(text: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new GantryError(
        'INVALID_ARGUMENT',
        `${flag} needs key=value fields, got ${JSON.stringify(part)}`,
      );
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/** `--output type=registry,name=REF | type=oci|oci-archive|docker-archive,dest=PATH` to a transport reference. */
export function parseOutput(text: string): string {
  const f = csv(text, '--output');
  const type = f.get('type');
  if (type === 'registry' || type === 'image') {
    const name = f.get('name');
    if (!name)
      throw new GantryError('INVALID_ARGUMENT', '--output type=registry needs name=REF', { subject: text });
    return name.startsWith('docker://') ? name : `docker://${name}`;
  }
  if (type === 'oci' || type === 'oci-archive' || type === 'docker-archive') {
    const dest = f.get('dest');
    if (!dest)
      throw new GantryError('INVALID_ARGUMENT', `--output type=${type} needs dest=PATH`, { subject: text });
    const name = f.get('name');
    return name ? `${type}:${dest}:${name}` : `${type}:${dest}`;
  }
  throw new GantryError('INVALID_ARGUMENT', 'type must be registry, oci, oci-archive or docker-archive', {
    subject: text,
  });
}

/** `--secret id=ID[,src=FILE|,env=VAR]` (docker's forms; a bare id reads the variable of that name). */
export function parseSecret(text: string): [string, SecretSource] {
  const f = csv(text, '--secret');
  const id = f.get('id');
  if (!id) throw new GantryError('INVALID_ARGUMENT', '--secret needs id=ID', { subject: '--secret' });
  const file = f.get('src') ?? f.get('source');
  if (file) return [id, { file }];
  return [id, { env: f.get('env') ?? id }];
}

/** `KEY=VALUE` values (labels, annotations) into a record; later values win. */
export function parsePairs(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0)
      throw new GantryError('INVALID_ARGUMENT', `${flag} needs KEY=VALUE, got ${JSON.stringify(v)}`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** `--timestamp`, else SOURCE_DATE_EPOCH, as whole seconds. */
export function parseTimestamp(flag: string | undefined, env: NodeJS.ProcessEnv): number | undefined {
  const text = flag ?? env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `timestamp must be seconds since the epoch, got ${JSON.stringify(text)}`,
      {
        subject: flag === undefined ? 'SOURCE_DATE_EPOCH' : '--timestamp',
      },
    );
  }
  return Number(text);
}

/** The registry (`docker://`) references among parsed `--output`s: where signatures and attestations attach. */
export function registryOutputs(destinations: readonly string[]): string[] {
  return destinations.filter((d) => d.startsWith('docker://'));
}

/**
 * The key a `--build-context` name and a FROM / --from value are matched by, as BuildKit's dockerui does: image
 * names are normalised (`alpine`, `alpine:latest` and `docker.io/library/alpine` are one name); other names
 * (stage names) compare lowercased.
 */
export function contextKey(name: string): string {
  try {
    return formatImageReference(parseImageReference(name));
  } catch {
    return name.toLowerCase();
  }
}

/** `oci-layout://DIR[:TAG][@DIGEST]`, also `DIR@TAG`: the tag is what follows the last path segment's `:`. */
function ociLayoutContext(rest: string, cwd: string, spec: string): NamedContext {
  let path = rest;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = path.lastIndexOf('@');
  if (at >= 0) {
    const after = path.slice(at + 1);
    path = path.slice(0, at);
    if (isDigest(after)) digest = after;
    else if (after.startsWith('sha256:')) {
      throw new GantryError('INVALID_ARGUMENT', `--build-context: bad digest ${JSON.stringify(after)}`, {
        subject: spec,
      });
    } else tag = after;
  }
  const slash = path.lastIndexOf('/');
  const colon = path.lastIndexOf(':');
  if (colon > slash && tag === undefined) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (path === '' || tag === '') {
    throw new GantryError('INVALID_ARGUMENT', '--build-context: oci-layout:// needs DIR[:TAG][@DIGEST]', {
      subject: spec,
    });
  }
  const dir = isAbsolute(path) ? path : join(cwd, path);
  return {
    kind: 'oci-layout',
    dir,
    ...(tag === undefined && digest === undefined ? { tag: 'latest' } : {}),
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    spec,
  };
}

/**
 * `--build-context NAME=VALUE` (buildx's forms): `docker-image://REF`, `oci-layout://DIR[:TAG][@DIGEST]`, or a
 * local directory (relative to `cwd`). Git and HTTP contexts are refused by name. Returns `[contextKey, context]`.
 */
export function parseBuildContext(text: string, cwd: string): [string, NamedContext] {
  const eq = text.indexOf('=');
  const name = eq > 0 ? text.slice(0, eq).trim() : '';
  const value = eq > 0 ? text.slice(eq + 1).trim() : '';
  if (name === '' || value === '') {
    throw new GantryError('INVALID_ARGUMENT', '--build-context needs NAME=VALUE', { subject: text });
  }
  if (name.toLowerCase() === 'scratch' || name.toLowerCase() === 'context') {
    throw new GantryError('INVALID_ARGUMENT', `--build-context: ${JSON.stringify(name)} is a reserved name`, {
      subject: text,
    });
  }
  const key = contextKey(name);
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    try {
      parseImageReference(ref);
    } catch (err) {
      throw new GantryError('INVALID_ARGUMENT', `--build-context: ${(err as Error).message}`, {
        subject: text,
        cause: err,
      });
    }
    return [key, { kind: 'image', ref, spec: text }];
  }
  if (value.startsWith('oci-layout://')) {
    return [key, ociLayoutContext(value.slice('oci-layout://'.length), cwd, text)];
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith('git@')) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      '--build-context supports a directory, docker-image:// and oci-layout:// (not Git or URLs)',
      { subject: text },
    );
  }
  return [key, { kind: 'dir', dir: isAbsolute(value) ? value : join(cwd, value), spec: text }];
}

/** `--platform os/arch[/variant][,...]`: one or more platforms, duplicates refused. */
export function parsePlatforms(values: readonly string[]): Platform[] {
  const out: Platform[] = [];
  for (const text of values.flatMap((v) => v.split(',')).map((v) => v.trim())) {
    let platform: Platform;
    try {
      platform = parsePlatform(text);
    } catch (err) {
      throw new GantryError('INVALID_ARGUMENT', (err as Error).message, {
        subject: '--platform',
        cause: err,
      });
    }
    if (out.some((p) => formatPlatform(p) === formatPlatform(platform))) {
      throw new GantryError('INVALID_ARGUMENT', `platform ${text} is given twice`, { subject: '--platform' });
    }
    out.push(platform);
  }
  return out;
}
