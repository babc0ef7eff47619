/**
 * dockerfile/parse-instruction: one logical line → one typed instruction, following BuildKit's
 * instructions/parse.go (per-instruction argument rules, flags, heredoc sources, HEALTHCHECK durations).
 * Errors name file:line:column and the instruction. Pure.
 */
import type { GantryError } from '../errors/index.js';
import { ChmodError, parseChmod } from './chmod.js';
import { lexWord } from './expand.js';
import type {
  CommandLine,
  FromInstruction,
  HealthConfig,
  Instruction,
  KeyValue,
  Location,
  MountFlag,
} from './instructions.js';
import { MountError, mountFields, parseMount } from './mount.js';
import {
  type LogicalLine,
  locationError,
  parseHeredocWord,
  parseWords,
  type RawFlag,
  type SourcePosition,
  splitCommand,
} from './source.js';

const ALL_INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
];

type FlagKind = 'bool' | 'string' | 'strings';

interface FlagValues {
  bools: Map<string, boolean>;
  strings: Map<string, string>;
  lists: Map<string, string[]>;
}

/** Context for one instruction: names it in errors and resolves positions. */
class InstructionContext {
  readonly name: string;
  constructor(
    readonly line: LogicalLine,
    readonly file: string,
    readonly escapeToken: string,
  ) {
    this.name = line.keyword.toUpperCase();
  }

  fail(message: string, pos: SourcePosition = this.line.start, cause?: unknown): GantryError {
    return locationError(this.file, pos, `${this.name}: ${message}`, cause);
  }

  location(): Location {
    return {
      file: this.file,
      line: this.line.start.line,
      column: this.line.start.column,
      endLine: this.line.endLine,
    };
  }

  /** BuildKit's BFlags.Parse: only declared flags, no repeats except list flags, typed values. */
  flags(defs: Record<string, FlagKind>, flags: readonly RawFlag[] = this.line.flags): FlagValues {
    const out: FlagValues = { bools: new Map(), strings: new Map(), lists: new Map() };
    const used = new Set<string>();
    for (const flag of flags) {
      if (flag.text === '--') break;
      if (!flag.text.startsWith('--'))
        throw this.fail(`arg should start with -- : ${flag.text}`, flag.position);
      const eq = flag.text.indexOf('=');
      const flagName = eq < 0 ? flag.text : flag.text.slice(0, eq);
      const value = eq < 0 ? undefined : flag.text.slice(eq + 1);
      const name = flagName.slice(2);
      const kind = Object.hasOwn(defs, name) ? defs[name] : undefined;
      if (kind === undefined) {
        const known = Object.keys(defs);
        const hint = known.length ? ` (known flags: ${known.map((k) => `--${k}`).join(', ')})` : '';
        throw this.fail(`unknown flag ${flagName}${hint}`, flag.position);
      }
      if (used.has(name) && kind !== 'strings') {
        throw this.fail(`duplicate flag specified: ${flagName}`, flag.position);
      }
      used.add(name);
      if (kind === 'bool') {
        if (value === '') throw this.fail(`missing a value on flag: ${flagName}`, flag.position);
        const v = (value ?? 'true').toLowerCase();
        if (v !== 'true' && v !== 'false') {
          throw this.fail(`expecting boolean value for flag ${flagName}, not: ${value}`, flag.position);
        }
        out.bools.set(name, v === 'true');
      } else {
        if (value === undefined) throw this.fail(`missing a value on flag: ${flagName}`, flag.position);
        if (kind === 'string') out.strings.set(name, value);
        else out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
      }
    }
    return out;
  }

  flagPosition(name: string): SourcePosition {
    const flag = this.line.flags.find((f) => f.text === `--${name}` || f.text.startsWith(`--${name}=`));
    return flag?.position ?? this.line.start;
  }
}

/** BuildKit's parseJSON: a JSON array of strings, or undefined when the text is not a JSON array at all. */
function parseJsonArgs(ctx: InstructionContext, args: string): string[] | undefined {
  const trimmed = args.trimStart();
  if (!trimmed.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((v) => typeof v === 'string')) {
    throw ctx.fail('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return parsed as string[];
}

const splitWhitespace = (text: string): string[] => (text === '' ? [] : text.split(/[\t\v\f\r ]+/));

function commandLine(ctx: InstructionContext, args: string): CommandLine {
  const json = args === '' ? undefined : parseJsonArgs(ctx, args);
  if (json) return { form: 'exec', args: json, files: ctx.line.heredocs };
  return { form: 'shell', args: args === '' ? [] : [args], files: ctx.line.heredocs };
}

function keyValues(ctx: InstructionContext): KeyValue[] {
  const words = parseWords(ctx.line.args, ctx.escapeToken);
  if (words.length === 0) throw ctx.fail(`${ctx.name} requires at least one argument`);
  let pairs: KeyValue[];
  if (!(words[0] as string).includes('=')) {
    const parts = ctx.line.args.split(/[\t\v\f\r ]+/);
    if (parts.length < 2) throw ctx.fail(`${ctx.name} must have two arguments`);
    const key = parts[0] as string;
    const value = ctx.line.args.slice(ctx.line.args.indexOf(key) + key.length).replace(/^[\t\v\f\r ]+/, '');
    pairs = [{ key, value, legacy: true }];
  } else {
    pairs = words.map((word) => {
      const eq = word.indexOf('=');
      if (eq < 0) {
        throw ctx.fail(
          `Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`,
        );
      }
      return { key: word.slice(0, eq), value: word.slice(eq + 1), legacy: false };
    });
  }
  if (pairs.some((p) => p.key === '')) throw ctx.fail(`${ctx.name} names can not be blank`);
  return pairs;
}

function exactlyOne(ctx: InstructionContext): string {
  if (ctx.line.args === '') throw ctx.fail(`${ctx.name} requires exactly one argument`);
  return ctx.line.args;
}

const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration, in nanoseconds. */
export function parseGoDuration(text: string): number {
  const fail = (what: string): Error => new Error(`time: ${what} ${JSON.stringify(text)}`);
  let rest = text.replace(/^[-+]/, '');
  const sign = text.startsWith('-') ? -1 : 1;
  if (rest === '0') return 0;
  if (rest === '') throw fail('invalid duration');
  let total = 0;
  while (rest !== '') {
    const num = /^(\d+\.?\d*|\.\d+)/.exec(rest);
    if (!num) throw fail('invalid duration');
    rest = rest.slice(num[0].length);
    // Longer units first so `ms` is not read as `m`.
    const unit = /^(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!unit) {
      const word = /^[^\d.]*/.exec(rest)?.[0] ?? '';
      throw fail(
        word === '' ? 'missing unit in duration' : `unknown unit ${JSON.stringify(word)} in duration`,
      );
    }
    total += Number.parseFloat(num[0]) * (GO_DURATION_UNITS[unit[0]] as number);
    rest = rest.slice(unit[0].length);
  }
  return Math.round(sign * total);
}

function healthcheck(ctx: InstructionContext): HealthConfig {
  const args = ctx.line.args;
  const sep = args.search(/\s/);
  const typeWord = sep < 0 ? args : args.slice(0, sep);
  if (typeWord === '') throw ctx.fail('HEALTHCHECK requires at least one argument');
  const restText = sep < 0 ? '' : args.slice(sep).trimStart();
  const type = typeWord.toUpperCase();
  const empty = { interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === 'NONE') {
    if (restText !== '') throw ctx.fail('HEALTHCHECK NONE takes no arguments');
    return { test: ['NONE'], ...empty };
  }
  const f = ctx.flags({
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  if (type !== 'CMD') throw ctx.fail(`Unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
  const cmd = restText === '' ? undefined : commandLine(ctx, restText);
  if (!cmd || cmd.args.length === 0) throw ctx.fail('Missing command after HEALTHCHECK CMD');
  const duration = (name: string): number => {
    const value = f.strings.get(name) ?? '';
    if (value === '') return 0;
    let ns: number;
    try {
      ns = parseGoDuration(value);
    } catch (err) {
      throw ctx.fail((err as Error).message, ctx.flagPosition(name));
    }
    if (ns !== 0 && ns < 1e6)
      throw ctx.fail(`Interval "${name}" cannot be less than 1ms`, ctx.flagPosition(name));
    return ns;
  };
  let retries = 0;
  const retriesText = f.strings.get('retries') ?? '';
  if (retriesText !== '') {
    if (!/^[-+]?\d+$/.test(retriesText) || Math.abs(Number(retriesText)) > 2 ** 31 - 1) {
      throw ctx.fail(
        `strconv.ParseInt: parsing ${JSON.stringify(retriesText)}: invalid syntax`,
        ctx.flagPosition('retries'),
      );
    }
    retries = Number(retriesText);
    if (retries < 0) throw ctx.fail(`--retries cannot be negative (${retries})`, ctx.flagPosition('retries'));
  }
  return {
    test: [cmd.form === 'exec' ? 'CMD' : 'CMD-SHELL', ...cmd.args],
    interval: duration('interval'),
    timeout: duration('timeout'),
    startPeriod: duration('start-period'),
    startInterval: duration('start-interval'),
    retries,
  };
}

function mountFlag(ctx: InstructionContext, text: string, pos: SourcePosition): MountFlag {
  try {
    if (!text.includes('$')) {
      const mount = parseMount(text);
      return mount.from === undefined ? { text, mount } : { text, from: mount.from, mount };
    }
    const from = mountFields(text).find((f) => f.key === 'from')?.value;
    if (from !== undefined && from.indexOf('$') >= 0 && from.indexOf('$') !== from.length - 1) {
      throw new MountError("'from' doesn't support variable expansion, define alias stage instead");
    }
    return from === undefined ? { text } : { text, from };
  } catch (err) {
    if (err instanceof MountError) throw ctx.fail(err.message, pos);
    throw err;
  }
}

function copyParts(ctx: InstructionContext, withChecksum: boolean) {
  const args = parseJsonArgs(ctx, ctx.line.args) ?? splitWhitespace(ctx.line.args);
  if (args.length < 2) {
    throw ctx.fail(
      `${ctx.name} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
  const dest = args[args.length - 1] as string;
  if (parseHeredocWord(dest)) throw ctx.fail(`${ctx.name} cannot accept a heredoc as a destination`);
  const sources: string[] = [];
  const inline = [];
  for (const src of args.slice(0, -1)) {
    const doc = parseHeredocWord(src);
    if (!doc) {
      sources.push(src);
      continue;
    }
    const body = ctx.line.heredocs.find((h) => h.name === doc.name);
    inline.push({ ...doc, content: body?.content ?? '' });
  }
  const defs: Record<string, FlagKind> = {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    exclude: 'strings',
  };
  if (withChecksum) Object.assign(defs, { checksum: 'string', 'keep-git-dir': 'bool', unpack: 'bool' });
  else Object.assign(defs, { from: 'string', parents: 'bool' });
  const f = ctx.flags(defs);
  const chmod = f.strings.get('chmod');
  let chmodSpec: ReturnType<typeof parseChmod> | undefined;
  if (chmod !== undefined && chmod !== '' && !chmod.includes('$')) {
    try {
      chmodSpec = parseChmod(chmod);
    } catch (err) {
      if (err instanceof ChmodError) throw ctx.fail(err.message, ctx.flagPosition('chmod'));
      throw err;
    }
  }
  const chown = f.strings.get('chown');
  return {
    f,
    common: {
      location: ctx.location(),
      original: ctx.line.text.trim(),
      sources,
      inline,
      dest,
      ...(chown ? { chown } : {}),
      ...(chmod ? { chmod } : {}),
      ...(chmodSpec ? { chmodSpec } : {}),
      link: f.bools.get('link') ?? false,
      excludes: f.lists.get('exclude') ?? [],
    },
  };
}

/** Parses the FROM line of a stage. */
export function parseFrom(line: LogicalLine, file: string, escapeToken: string): FromInstruction {
  const ctx = new InstructionContext(line, file, escapeToken);
  const args = splitWhitespace(line.args);
  let name: string | undefined;
  if (args.length === 3 && (args[1] as string).toLowerCase() === 'as') {
    name = (args[2] as string).toLowerCase();
    if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
      throw ctx.fail(
        `invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`,
      );
    }
  } else if (args.length !== 1) {
    throw ctx.fail('FROM requires either one or three arguments');
  }
  const f = ctx.flags({ platform: 'string' });
  const platform = f.strings.get('platform');
  return {
    kind: 'FROM',
    location: ctx.location(),
    original: line.text.trim(),
    image: args[0] as string,
    ...(platform ? { platform } : {}),
    ...(name ? { name } : {}),
  };
}

/** Parses any instruction but FROM. */
export function parseInstruction(line: LogicalLine, file: string, escapeToken: string): Instruction {
  const ctx = new InstructionContext(line, file, escapeToken);
  const base = { location: ctx.location(), original: line.text.trim() };
  switch (ctx.name) {
    case 'ENV':
      ctx.flags({});
      return { kind: 'ENV', ...base, pairs: keyValues(ctx) };
    case 'LABEL':
      ctx.flags({});
      return { kind: 'LABEL', ...base, pairs: keyValues(ctx) };
    case 'MAINTAINER':
      ctx.flags({});
      return { kind: 'MAINTAINER', ...base, maintainer: exactlyOne(ctx) };
    case 'WORKDIR':
      ctx.flags({});
      return { kind: 'WORKDIR', ...base, path: exactlyOne(ctx) };
    case 'USER':
      ctx.flags({});
      return { kind: 'USER', ...base, user: exactlyOne(ctx) };
    case 'STOPSIGNAL':
      ctx.flags({});
      return { kind: 'STOPSIGNAL', ...base, signal: exactlyOne(ctx) };
    case 'ARG': {
      ctx.flags({});
      const words = parseWords(line.args, escapeToken);
      if (words.length === 0) throw ctx.fail('ARG requires at least one argument');
      const args = words.map((word) => {
        const eq = word.indexOf('=');
        if (eq === 0) throw ctx.fail('ARG names can not be blank');
        return eq < 0 ? { key: word } : { key: word.slice(0, eq), value: word.slice(eq + 1) };
      });
      return { kind: 'ARG', ...base, args };
    }
    case 'RUN': {
      const f = ctx.flags({ mount: 'strings', network: 'string', security: 'string', device: 'strings' });
      const network = f.strings.get('network') ?? 'default';
      if (network !== 'default' && network !== 'none' && network !== 'host') {
        throw ctx.fail(`invalid network mode ${JSON.stringify(network)}`, ctx.flagPosition('network'));
      }
      const security = f.strings.get('security') ?? 'sandbox';
      if (security !== 'sandbox' && security !== 'insecure') {
        throw ctx.fail(`security ${JSON.stringify(security)} is not valid`, ctx.flagPosition('security'));
      }
      const mountPositions = line.flags.filter((fl) => fl.text.startsWith('--mount='));
      const mounts = (f.lists.get('mount') ?? []).map((text, i) =>
        mountFlag(ctx, text, mountPositions[i]?.position ?? line.start),
      );
      const command = commandLine(ctx, line.args);
      if (command.args.length === 0 && command.files.length === 0) {
        throw ctx.fail('RUN requires at least one argument');
      }
      return {
        kind: 'RUN',
        ...base,
        command,
        mounts,
        network,
        security,
        devices: f.lists.get('device') ?? [],
      };
    }
    case 'CMD':
      ctx.flags({});
      return { kind: 'CMD', ...base, command: commandLine(ctx, line.args) };
    case 'ENTRYPOINT':
      ctx.flags({});
      return { kind: 'ENTRYPOINT', ...base, command: commandLine(ctx, line.args) };
    case 'SHELL': {
      ctx.flags({});
      const json = line.args === '' ? undefined : parseJsonArgs(ctx, line.args);
      if (json === undefined) {
        if (line.args === '') throw ctx.fail('SHELL requires at least one argument');
        throw ctx.fail('SHELL requires the arguments to be in JSON form');
      }
      if (json.length === 0) throw ctx.fail('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, shell: json };
    }
    case 'EXPOSE': {
      ctx.flags({});
      const ports = splitWhitespace(line.args);
      if (ports.length === 0) throw ctx.fail('EXPOSE requires at least one argument');
      return { kind: 'EXPOSE', ...base, ports: ports.sort() };
    }
    case 'VOLUME': {
      ctx.flags({});
      const raw = parseJsonArgs(ctx, line.args) ?? splitWhitespace(line.args);
      if (raw.length === 0) throw ctx.fail('VOLUME requires at least one argument');
      const volumes = raw.map((v) => v.trim());
      if (volumes.includes('')) throw ctx.fail('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, volumes };
    }
    case 'HEALTHCHECK':
      return { kind: 'HEALTHCHECK', ...base, health: healthcheck(ctx) };
    case 'COPY': {
      const { f, common } = copyParts(ctx, false);
      const from = f.strings.get('from');
      return { kind: 'COPY', ...common, ...(from ? { from } : {}), parents: f.bools.get('parents') ?? false };
    }
    case 'ADD': {
      const { f, common } = copyParts(ctx, true);
      const checksum = f.strings.get('checksum');
      const keepGitDir = f.bools.get('keep-git-dir');
      const unpack = f.bools.get('unpack');
      return {
        kind: 'ADD',
        ...common,
        ...(checksum ? { checksum } : {}),
        ...(keepGitDir !== undefined ? { keepGitDir } : {}),
        ...(unpack !== undefined ? { unpack } : {}),
      };
    }
    case 'ONBUILD':
      return parseOnbuild(ctx, base);
    case 'FROM':
      throw ctx.fail('FROM is handled by the stage parser');
    default: {
      const close = ALL_INSTRUCTIONS.find((k) => editDistance(k, ctx.name) <= 2);
      throw locationError(
        file,
        line.start,
        `unknown instruction: ${line.keyword}${close ? ` (did you mean ${close.toLowerCase()}?)` : ''}`,
      );
    }
  }
}

function parseOnbuild(ctx: InstructionContext, base: { location: Location; original: string }): Instruction {
  ctx.flags({});
  if (ctx.line.args === '') throw ctx.fail('ONBUILD requires at least one argument');
  const sub = splitCommand(ctx.line.args, ctx.escapeToken);
  const triggerName = sub.keyword.toUpperCase();
  if (triggerName === 'ONBUILD') throw ctx.fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (triggerName === 'MAINTAINER' || triggerName === 'FROM') {
    throw ctx.fail(`${triggerName} isn't allowed as an ONBUILD trigger`);
  }
  const offset = ctx.line.argsOffset;
  const triggerLine: LogicalLine = {
    keyword: sub.keyword,
    text: ctx.line.args,
    flags: sub.flags.map((fl) => ({ text: fl.text, position: ctx.line.positionAt(offset + fl.offset) })),
    args: sub.args,
    argsOffset: offset + sub.argsOffset,
    heredocs: ctx.line.heredocs,
    start: ctx.line.positionAt(offset),
    endLine: ctx.line.endLine,
    emptyContinuation: ctx.line.emptyContinuation,
    positionAt: (o) => ctx.line.positionAt(offset + o),
  };
  const trigger = parseInstruction(triggerLine, ctx.file, ctx.escapeToken);
  let expression = ctx.line.text.replace(/^\s*ONBUILD\s*/i, '');
  for (const doc of ctx.line.heredocs) expression += `\n${doc.content}${doc.name}`;
  return { kind: 'ONBUILD', ...base, expression, trigger };
}

/** Levenshtein distance, for "did you mean" on unknown instructions. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** BuildKit refuses any expansion in COPY --from: a literal name, index or image only. */
export function isLiteralWord(word: string, escapeToken: string): boolean {
  try {
    return lexWord(word, new Map(), { escape: escapeToken }).value === word;
  } catch {
    return false;
  }
}
