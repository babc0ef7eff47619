/**
 * build/flags: `gantry build` flag values into builder options — `--output type=...`, `--secret id=..,src=..|env=..`,
 * `KEY=VALUE` lists, `--timestamp` / SOURCE_DATE_EPOCH. Pure.
 */
import { GantryError } from '../errors/index.js';
import type { SecretSource } from './types.js';

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
