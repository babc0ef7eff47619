/**
 * dockerfile/scope: dispatch-time expansion. A stage's variables (its base image's ENV, then its own ENV and
 * ARG instructions) and `expandInstruction`, which returns a copy of an instruction with exactly the fields
 * BuildKit expands substituted (ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR, RUN --mount values,
 * COPY/ADD heredoc bodies; never RUN/CMD/ENTRYPOINT commands, which the shell expands). Pure.
 */

import { isProxyArg } from './args.js';
import { ChmodError, parseChmod } from './chmod.js';
import { ExpansionError, lexWord } from './expand.js';
import type { ArgDefinition, Instruction } from './instructions.js';
import { MountError, parseMount } from './mount.js';
import type { DockerfileIR } from './parse.js';
import type { Heredoc } from './source.js';
import { locationError } from './source.js';

export interface StageVariables {
  /** What expansions see: ENV and ARG values in one namespace, the last definition winning. */
  readonly vars: ReadonlyMap<string, string>;
  /** ENV for the image config, in definition order. */
  readonly env: ReadonlyMap<string, string>;
  /** ARGs declared in the stage (or a stage it builds on), with their resolved values, in order. */
  readonly args: readonly ArgDefinition[];
}

/** Variables at the start of a stage: its base stage's final variables, or its base image's config Env. */
export function initialVariables(options: {
  imageEnv?: readonly string[];
  base?: StageVariables;
}): StageVariables {
  if (options.base) return options.base;
  const env = new Map<string, string>();
  for (const entry of options.imageEnv ?? []) {
    const eq = entry.indexOf('=');
    env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
  }
  return { vars: new Map(env), env, args: [] };
}

export interface ExpandedStep {
  /**
   * The instruction with BuildKit's fields expanded. For RUN every mount has `mount` set; for COPY/ADD
   * `chmodSpec` is set when --chmod is; for ARG each value is the resolved one (absent when it has none).
   */
  instruction: Instruction;
  /** Variables after this instruction (changed by ENV and ARG only). */
  variables: StageVariables;
}

/** Expands one instruction against the stage's variables and returns the variables that follow it. */
export function expandInstruction(
  ir: DockerfileIR,
  variables: StageVariables,
  instruction: Instruction,
): ExpandedStep {
  const escapeToken = ir.directives.escape;
  const vars = variables.vars;
  const where = { line: instruction.location.line, column: instruction.location.column };
  const fail = (message: string, cause?: unknown) =>
    locationError(instruction.location.file, where, `${instruction.kind}: ${message}`, cause);
  const word = (text: string): string => {
    try {
      return lexWord(text, vars, { escape: escapeToken }).value;
    } catch (err) {
      if (err instanceof ExpansionError) throw fail(err.message, err);
      throw err;
    }
  };
  const body = (doc: Heredoc): Heredoc => {
    if (!doc.expand) return doc;
    try {
      // BuildKit expands heredoc bodies with `\` escapes and quotes taken literally, whatever the escape token.
      return { ...doc, content: lexWord(doc.content, vars, { skipQuotes: true }).value };
    } catch (err) {
      if (err instanceof ExpansionError) throw fail(err.message, err);
      throw err;
    }
  };
  const same = (i: Instruction): ExpandedStep => ({ instruction: i, variables });
  switch (instruction.kind) {
    case 'ENV': {
      // Every pair sees the variables from before the instruction (`ENV a=1 b=$a` uses the old a).
      const pairs = instruction.pairs.map((p) => ({ ...p, key: word(p.key), value: word(p.value) }));
      const nextVars = new Map(vars);
      const env = new Map(variables.env);
      for (const p of pairs) {
        nextVars.set(p.key, p.value);
        // Re-setting a key keeps its place, as BuildKit's addEnv replaces in place.
        env.set(p.key, p.value);
      }
      return {
        instruction: { ...instruction, pairs },
        variables: { vars: nextVars, env, args: variables.args },
      };
    }
    case 'ARG':
      return expandArg(ir, variables, instruction, word);
    case 'LABEL':
      return same({
        ...instruction,
        pairs: instruction.pairs.map((p) => ({ ...p, key: word(p.key), value: word(p.value) })),
      });
    case 'WORKDIR':
      return same({ ...instruction, path: word(instruction.path) });
    case 'USER':
      return same({ ...instruction, user: word(instruction.user) });
    case 'STOPSIGNAL':
      return same({ ...instruction, signal: word(instruction.signal) });
    case 'VOLUME':
      return same({ ...instruction, volumes: instruction.volumes.map(word) });
    case 'EXPOSE':
      return same({
        ...instruction,
        ports: instruction.ports.flatMap((p) => {
          try {
            return lexWord(p, vars, { escape: escapeToken }).words;
          } catch (err) {
            if (err instanceof ExpansionError) throw fail(err.message, err);
            throw err;
          }
        }),
      });
    case 'RUN':
      return same({
        ...instruction,
        mounts: instruction.mounts.map((m) => {
          try {
            const mount = parseMount(m.text, word);
            return mount.from === undefined
              ? { text: m.text, mount }
              : { text: m.text, from: mount.from, mount };
          } catch (err) {
            if (err instanceof MountError) throw fail(err.message, err);
            throw err;
          }
        }),
      });
    case 'COPY':
    case 'ADD': {
      const chown = instruction.chown === undefined ? undefined : word(instruction.chown);
      const chmod = instruction.chmod === undefined ? undefined : word(instruction.chmod);
      let chmodSpec = instruction.chmodSpec;
      if (chmod) {
        try {
          chmodSpec = parseChmod(chmod);
        } catch (err) {
          if (err instanceof ChmodError) throw fail(err.message, err);
          throw err;
        }
      }
      const common = {
        sources: instruction.sources.map(word),
        dest: word(instruction.dest),
        inline: instruction.inline.map(body),
        ...(chown ? { chown } : {}),
        ...(chmod ? { chmod } : {}),
        ...(chmod && chmodSpec ? { chmodSpec } : {}),
      };
      if (instruction.kind === 'COPY') {
        if (common.sources.some(isHttpSource)) throw fail("source can't be a URL for COPY");
        const { chown: _o, chmod: _m, chmodSpec: _s, ...rest } = instruction;
        return same({ ...rest, ...common });
      }
      const { chown: _o, chmod: _m, chmodSpec: _s, checksum, ...rest } = instruction;
      const sum = checksum === undefined ? undefined : word(checksum);
      if (sum) checkChecksum(sum, common.sources, fail);
      return same({ ...rest, ...common, ...(sum ? { checksum: sum } : {}) });
    }
    default:
      return same(instruction);
  }
}

/** Git sources BuildKit recognises by form: scp-like `git@host:repo`, git:// and ssh:// URLs, and https `.git` URLs. */
function isGitSource(src: string): boolean {
  if (/^(git@[^:]+:|git:\/\/|ssh:\/\/)/.test(src)) return true;
  return /^https?:\/\//.test(src) && /\.git$/.test(src.split('#')[0] as string);
}

function isHttpSource(src: string): boolean {
  return /^https?:\/\//.test(src) && !isGitSource(src);
}

/** ADD --checksum applies to exactly one HTTP(S) or Git source; HTTP checksums must be digests. */
function checkChecksum(sum: string, sources: readonly string[], fail: (message: string) => Error): void {
  if (sources.length !== 1) throw fail("checksum can't be specified for multiple sources");
  const src = sources[0] as string;
  if (!isHttpSource(src) && !isGitSource(src)) throw fail('checksum requires HTTP(S) or Git sources');
  if (isHttpSource(src) && !/^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/.test(sum)) {
    throw fail(`invalid checksum digest format: ${sum}`);
  }
}

/** BuildKit's dispatchArg: --build-arg value, else the default expanded, else the global ARG of that name. */
function expandArg(
  ir: DockerfileIR,
  variables: StageVariables,
  instruction: Extract<Instruction, { kind: 'ARG' }>,
  word: (text: string) => string,
): ExpandedStep {
  const vars = new Map(variables.vars);
  const declared = [...variables.args];
  const resolved: ArgDefinition[] = [];
  for (const arg of instruction.args) {
    let value: string | undefined;
    if (Object.hasOwn(ir.buildArgs, arg.key)) value = ir.buildArgs[arg.key];
    else if (arg.value !== undefined) value = word(arg.value);
    else value = ir.globalArgs.get(arg.key);
    const def = value === undefined ? { key: arg.key } : { key: arg.key, value };
    if (value !== undefined) vars.set(arg.key, value);
    resolved.push(def);
    declared.push(def);
  }
  return {
    instruction: { ...instruction, args: resolved },
    variables: { vars, env: variables.env, args: declared },
  };
}

export interface RunEnvironment {
  /** Variables the command sees that belong in history and cache keys: ENV and declared ARGs. */
  env: ReadonlyMap<string, string>;
  /**
   * Predefined proxy ARGs given with --build-arg but not declared with ARG: the command sees them, but they
   * stay out of history and cache keys (BuildKit's proxy env).
   */
  proxy: ReadonlyMap<string, string>;
}

/** The environment a RUN step gets. */
export function runEnvironment(ir: DockerfileIR, variables: StageVariables): RunEnvironment {
  const declared = new Set(variables.args.map((a) => a.key));
  const proxy = new Map<string, string>();
  for (const [key, value] of Object.entries(ir.buildArgs)) {
    if (isProxyArg(key) && !declared.has(key)) proxy.set(key, value);
  }
  return { env: variables.vars, proxy };
}
