/**
 * dockerfile/chmod: `COPY/ADD --chmod` values, octal (`0755`) or symbolic (`u=rwx,go=rx`, `+x`, `a-w`,
 * `g=u`), parsed once and applied per copied file (`X` depends on whether the file is a directory or already
 * executable). Follows BSD setmode with a zero umask, as BuildKit does. Pure.
 */

export type ChmodSpec =
  | { kind: 'octal'; mode: number }
  | { kind: 'symbolic'; text: string; clauses: ChmodClause[] };

interface ChmodClause {
  /** Bits of "who" (u, g, o): a mask over 0o7777; empty `who` means all. */
  who: number;
  actions: { op: '+' | '-' | '='; perm: string; copyFrom?: 'u' | 'g' | 'o' }[];
}

export class ChmodError extends Error {
  override name = 'ChmodError';
}

const WHO_MASK: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o0007, a: 0o6777 };

/** Parses a --chmod value; throws ChmodError with BuildKit's wording. */
export function parseChmod(text: string): ChmodSpec {
  if (/^[0-9]+$/.test(text)) {
    const octal = /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : Number.NaN;
    if (!(octal <= 0o7777)) {
      throw new ChmodError(
        `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`,
      );
    }
    return { kind: 'octal', mode: octal };
  }
  const clauses: ChmodClause[] = [];
  for (const part of text.split(',')) {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(part);
    if (!m) throw new ChmodError(`invalid chmod parameter: '${text}': invalid syntax`);
    let who = 0;
    for (const w of m[1] as string) who |= WHO_MASK[w] as number;
    const actions: ChmodClause['actions'] = [];
    for (const a of (m[2] as string).matchAll(/([-+=])([ugo]|[rwxXst]*)/g)) {
      const op = a[1] as '+' | '-' | '=';
      const perm = a[2] as string;
      if (perm === 'u' || perm === 'g' || perm === 'o') actions.push({ op, perm: '', copyFrom: perm });
      else actions.push({ op, perm });
    }
    clauses.push({ who, actions });
  }
  return { kind: 'symbolic', text, clauses };
}

/** The permission bits (incl. setuid/setgid/sticky) a file ends up with. */
export function applyChmod(spec: ChmodSpec, mode: number, isDirectory: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  const original = mode & 0o7777;
  let out = original;
  for (const clause of spec.clauses) {
    const explicitWho = clause.who !== 0;
    const who = explicitWho ? clause.who : 0o6777;
    for (const action of clause.actions) {
      let bits = 0;
      if (action.copyFrom) {
        const shift = { u: 6, g: 3, o: 0 }[action.copyFrom];
        const v = (out >> shift) & 0o7;
        bits = (v << 6) | (v << 3) | v;
      } else {
        for (const p of action.perm) {
          if (p === 'r') bits |= 0o444;
          else if (p === 'w') bits |= 0o222;
          else if (p === 'x') bits |= 0o111;
          else if (p === 'X') {
            if (isDirectory || (original & 0o111) !== 0 || action.op === '-') bits |= 0o111;
          } else if (p === 's') bits |= 0o6000;
          else if (p === 't' && (!explicitWho || (clause.who & ~0o0007) !== 0)) bits |= 0o1000;
        }
      }
      // Sticky only applies when "who" is empty or includes more than o.
      const mask = who | (bits & 0o1000 ? 0o1000 : 0);
      if (action.op === '+') out |= bits & mask;
      else if (action.op === '-') out &= ~(bits & mask);
      else out = (out & ~(who & 0o6777)) | (bits & mask);
    }
  }
  return out & 0o7777;
}
