/**
 * cli/args: a small spec-driven argument parser. Node's parseArgs lacks skopeo's `--flag=false` booleans on
 * Node 20, so gantry parses flags itself: `--name value`, `--name=value`, `-x`, repeatable flags, booleans
 * with optional `=true|false`, and `--` to end flags. Unknown flags are errors that name the flag.
 */
import { GantryError } from '../errors/index.js';

export interface FlagSpec {
  type: 'boolean' | 'string';
  short?: string;
  multiple?: boolean;
  description: string;
  /** Shown in help for string flags, e.g. `USER:PASS`. */
  valueName?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]?: S[K]['type'] extends 'boolean'
    ? boolean
    : S[K]['multiple'] extends true
      ? string[]
      : string;
};

export interface ParsedArgs<S extends FlagSpecs> {
  flags: FlagValues<S>;
  positionals: string[];
}

export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S): ParsedArgs<S> {
  const flags: Record<string, boolean | string | string[]> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(specs).flatMap(([name, s]) => (s.short ? [[s.short, name]] : [])));
  const usageError = (message: string): never => {
    throw new GantryError('INVALID_ARGUMENT', message);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else if (arg.startsWith('-') && arg.length > 2) {
      // Bundled (`-af`) or inline (`-f=oci`) short flags are not supported; taking them as positionals hid typos.
      name = usageError(`unknown flag ${arg} (short flags take one letter; use --name=value)`);
    } else if (arg.startsWith('-') && arg.length === 2) {
      name = byShort.get(arg.slice(1)) ?? usageError(`unknown flag ${arg}`);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = specs[name] ?? usageError(`unknown flag --${name}`);
    let value: boolean | string;
    if (spec.type === 'boolean') {
      if (inline === undefined || inline === 'true') value = true;
      else if (inline === 'false') value = false;
      else value = usageError(`--${name} takes true or false, not ${JSON.stringify(inline)}`);
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined) usageError(`--${name} needs a value`);
      value = next as string;
      i++;
    }
    if (spec.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), value as string];
    else flags[name] = value;
  }
  return { flags: flags as FlagValues<S>, positionals };
}

export function formatFlagHelp(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` ${s.valueName ?? 'VALUE'}` : ''}`;
    return `  ${left.padEnd(34)} ${s.description}`;
  });
  return rows.join('\n');
}

/** A flag value that must be one of `allowed`; `fallback` when the flag is absent. */
export function parseChoice<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new GantryError(
      'INVALID_ARGUMENT',
      `--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}
