/**
 * dockerfile/mount: `RUN --mount=...` values (BuildKit's commands_runmount.go): CSV fields, types bind, cache,
 * tmpfs, secret and ssh, their options and the checks between them. Values are expanded by the caller
 * first; BuildKit parses mounts after expansion, so a `$VAR` type is only checked then. Pure.
 */

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

export interface RunMount {
  type: MountType;
  /** Stage name or image the mount comes from (bind/cache); absent means the build context (bind). */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** Cache or secret/ssh id. */
  id?: string;
  sharing?: CacheSharing;
  required: boolean;
  /** Secret exposed as this environment variable. */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export class MountError extends Error {
  override name = 'MountError';
}

const TYPES = new Set<string>(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const SHARING = new Set<string>(['shared', 'private', 'locked']);
const KEYS = [
  'type',
  'from',
  'source',
  'target',
  'readonly',
  'id',
  'sharing',
  'required',
  'size',
  'mode',
  'uid',
  'gid',
  'src',
  'dst',
  'destination',
  'ro',
  'rw',
  'readwrite',
  'env',
];

/** Splits one CSV record (RFC 4180 quoting, as Go's encoding/csv reads it). */
export function csvFields(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length)
          throw new MountError(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i];
        i++;
      }
      if (i < text.length && text[i] !== ',') {
        throw new MountError(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
      }
    } else {
      const end = text.indexOf(',', i);
      field = text.slice(i, end < 0 ? text.length : end);
      if (field.includes('"')) throw new MountError(`failed to parse csv mounts: bare " in non-quoted-field`);
      i = end < 0 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

/** Field keys and raw values, for checks that must run before expansion. */
export function mountFields(text: string): { key: string; value?: string }[] {
  return csvFields(text).map((field) => {
    const eq = field.indexOf('=');
    return eq < 0
      ? { key: field.toLowerCase() }
      : { key: field.slice(0, eq).toLowerCase(), value: field.slice(eq + 1) };
  });
}

function parseBool(key: string, value: string): boolean {
  // Go's strconv.ParseBool.
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new MountError(`invalid value for ${key}: ${value}`);
}

function parseUint(key: string, value: string, radix: 8 | 10): number {
  const ok = radix === 8 ? /^[0-7]+$/.test(value) : /^[0-9]+$/.test(value);
  const n = ok ? Number.parseInt(value, radix) : Number.NaN;
  if (!(n <= 0xffffffff)) throw new MountError(`invalid value ${value} for ${key}`);
  return n;
}

/** docker/go-units RAMInBytes: `64m`, `1.5g`, `512kb`, binary multiples. */
export function parseRamBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(value);
  if (!m) throw new MountError(`invalid value for size: ${value}`);
  const unit = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5 }[(m[2] as string).toLowerCase()] as number;
  return Math.floor(Number.parseFloat(m[1] as string) * 1024 ** unit);
}

/**
 * Parses a --mount value. `expand` is applied to each field's value after CSV splitting, as BuildKit expands
 * mounts at dispatch; the default leaves values as written.
 */
export function parseMount(text: string, expand: (value: string) => string = (v) => v): RunMount {
  const m: RunMount = { type: 'bind', readOnly: true, required: false };
  let roAuto = true;
  for (const field of mountFields(text)) {
    const key = field.key;
    const value = field.value === undefined ? undefined : expand(field.value);
    if (value === undefined) {
      if (key === 'readonly' || key === 'ro' || key === 'readwrite' || key === 'rw') {
        m.readOnly = key === 'readonly' || key === 'ro';
        roAuto = false;
      } else if (key === 'required') {
        if (m.type !== 'secret' && m.type !== 'ssh') {
          throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        }
        m.required = true;
      } else {
        throw new MountError(`invalid field '${key}' must be a key=value pair`);
      }
      continue;
    }
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!TYPES.has(t)) throw new MountError(`unsupported mount type "${value}"`);
        m.type = t as MountType;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = parseBool(key, value);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !parseBool(key, value);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') {
          throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        }
        m.required = parseBool(key, value);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.size = parseRamBytes(value);
        break;
      case 'id':
        m.id = value;
        break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (!SHARING.has(s)) throw new MountError(`unsupported sharing value "${value}"`);
        m.sharing = s as CacheSharing;
        break;
      }
      case 'mode':
        m.mode = parseUint('mode', value, 8);
        break;
      case 'uid':
        m.uid = parseUint('uid', value, 10);
        break;
      case 'gid':
        m.gid = parseUint('gid', value, 10);
        break;
      case 'env':
        m.env = value;
        break;
      default:
        throw new MountError(`unexpected key '${key}' in '${key}=${value}' (valid keys: ${KEYS.join(', ')})`);
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new MountError(`${k} not allowed for "${m.type}" type mounts`);
    }
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== undefined) throw new MountError('secret mount should not have a from');
    if (m.sharing !== undefined) throw new MountError('secret mount should not define sharing');
    if (!m.source && !m.target && !m.id)
      throw new MountError('invalid secret mount. one of source, target required');
    if (m.source && m.id) throw new MountError("both source and id can't be set");
  }
  if (m.sharing !== undefined && m.type !== 'cache') {
    throw new MountError(`invalid cache sharing set for ${m.type} mount`);
  }
  return m;
}
