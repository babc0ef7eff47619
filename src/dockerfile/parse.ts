/**
 * dockerfile/parse: `parseDockerfile` — text to the IR: parser directives, global ARGs, stages with their
 * FROM resolved against global ARGs, --build-arg and the automatic platform ARGs (as BuildKit does before
 * dispatch), the chosen target, and lint-style warnings. Pure.
 */
import { GantryError } from '../errors/index.js';
import { hostPlatform, type Platform, parsePlatform } from '../oci/index.js';
import { automaticArgs, type PlatformPair } from './args.js';
import { ExpansionError, lexWord } from './expand.js';
import type { ArgInstruction, Instruction, Location, Stage, StageBase, Warning } from './instructions.js';
import { parseFrom, parseInstruction } from './parse-instruction.js';
import { type Directives, locationError, readSource } from './source.js';

export interface ParseOptions {
  /** Names the Dockerfile in errors and locations. */
  file: string;
  buildArgs?: Readonly<Record<string, string>>;
  /** Stage name to build; default the last stage. */
  target?: string;
  /** Default: both the host platform. */
  platform?: PlatformPair;
}

export interface DockerfileIR {
  file: string;
  directives: Directives;
  /** ARG instructions before the first FROM. */
  metaArgs: readonly ArgInstruction[];
  /** Global scope after metaArgs: automatic platform ARGs, declared global ARGs, --build-arg values. */
  globalArgs: ReadonlyMap<string, string>;
  buildArgs: Readonly<Record<string, string>>;
  platform: PlatformPair;
  stages: readonly Stage[];
  /** Index of the stage to build. */
  target: number;
  warnings: readonly Warning[];
}

const at = (loc: Location) => ({ line: loc.line, column: loc.column });

export function parseDockerfile(text: string, options: ParseOptions): DockerfileIR {
  const { file } = options;
  const buildArgs = options.buildArgs ?? {};
  const platform = options.platform ?? { build: hostPlatform(), target: hostPlatform() };
  const source = readSource(text, file);
  const escapeToken = source.directives.escape;
  const metaArgs: ArgInstruction[] = [];
  const raw: { from: ReturnType<typeof parseFrom>; instructions: Instruction[] }[] = [];
  const warnings: Warning[] = [];
  for (const line of source.lines) {
    if (line.emptyContinuation) {
      warnings.push({
        location: { file, line: line.start.line, column: line.start.column, endLine: line.endLine },
        rule: 'NoEmptyContinuation',
        message: 'Empty continuation line',
      });
    }
    if (line.keyword.toUpperCase() === 'FROM') {
      raw.push({ from: parseFrom(line, file, escapeToken), instructions: [] });
      continue;
    }
    const instruction = parseInstruction(line, file, escapeToken);
    if (instruction.kind === 'MAINTAINER') {
      warnings.push({
        location: instruction.location,
        rule: 'MaintainerDeprecated',
        message: 'Maintainer instruction is deprecated in favor of using label',
      });
    }
    if (
      (instruction.kind === 'ENV' || instruction.kind === 'LABEL') &&
      instruction.pairs.some((p) => p.legacy)
    ) {
      warnings.push({
        location: instruction.location,
        rule: 'LegacyKeyValueFormat',
        message: `"${instruction.kind} key=value" should be used instead of legacy "${instruction.kind} key value" format`,
      });
    }
    const current = raw[raw.length - 1];
    if (current) current.instructions.push(instruction);
    else if (instruction.kind === 'ARG') metaArgs.push(instruction);
    else {
      throw locationError(
        file,
        at(instruction.location),
        `${instruction.kind}: no build stage in current context`,
      );
    }
  }
  if (raw.length === 0) {
    throw locationError(file, { line: 1, column: 1 }, 'dockerfile contains no stages to build');
  }
  const lastName = raw[raw.length - 1]?.from.name ?? '';
  const globalArgs = resolveGlobalArgs(
    metaArgs,
    automaticArgs(platform, buildArgs, options.target || lastName),
    buildArgs,
    escapeToken,
  );
  const stages: Stage[] = [];
  const byName = new Map<string, number>();
  for (const [index, { from, instructions }] of raw.entries()) {
    const where = at(from.location);
    if (from.name === 'scratch' || from.name === 'context') {
      warnings.push({
        location: from.location,
        rule: 'ReservedStageName',
        message: `Stage name should not use the same name as reserved stage ${JSON.stringify(from.name)}`,
      });
    }
    if (from.name && byName.has(from.name)) {
      // BuildKit only warns; later references see the later stage.
      warnings.push({
        location: from.location,
        rule: 'DuplicateStageName',
        message: `Duplicate stage name ${JSON.stringify(from.name)}, stage names should be unique`,
      });
    }
    const baseName = expandGlobal(from.image, globalArgs, escapeToken, file, where);
    if (baseName === '')
      throw locationError(file, where, `FROM: base name (${from.image}) should not be blank`);
    let stagePlatform: Platform | undefined;
    if (from.platform !== undefined) {
      const p = expandGlobal(from.platform, globalArgs, escapeToken, file, where);
      if (p === '')
        throw locationError(file, where, `FROM: empty platform value from expression ${from.platform}`);
      try {
        stagePlatform = parsePlatform(p);
      } catch (err) {
        throw locationError(file, where, `FROM: failed to parse platform ${from.platform}`, err);
      }
    }
    // A stage named like an earlier one is that stage; names are lowercase, the lookup is not (as in BuildKit).
    const baseIndex = byName.get(baseName);
    const base: StageBase =
      baseName === 'scratch'
        ? { kind: 'scratch' }
        : baseIndex !== undefined
          ? { kind: 'stage', index: baseIndex }
          : { kind: 'image', ref: baseName };
    stages.push({
      index,
      ...(from.name ? { name: from.name } : {}),
      from,
      baseName,
      base,
      ...(stagePlatform ? { platform: stagePlatform } : {}),
      instructions,
    });
    if (from.name) byName.set(from.name, index);
  }
  let target = stages.length - 1;
  if (options.target) {
    const found = byName.get(options.target.toLowerCase());
    if (found === undefined) {
      const names = [...byName.keys()];
      throw new GantryError(
        'INVALID_ARGUMENT',
        `target stage ${JSON.stringify(options.target)} could not be found${names.length ? ` (stages: ${names.join(', ')})` : ''}`,
        { subject: file },
      );
    }
    target = found;
  }
  return {
    file,
    directives: source.directives,
    metaArgs,
    globalArgs,
    buildArgs,
    platform,
    stages,
    target,
    warnings,
  };
}

function expandGlobal(
  word: string,
  vars: ReadonlyMap<string, string>,
  escapeToken: string,
  file: string,
  where: { line: number; column: number },
): string {
  try {
    return lexWord(word, vars, { escape: escapeToken }).value;
  } catch (err) {
    if (err instanceof ExpansionError) throw locationError(file, where, `FROM: ${err.message}`, err);
    throw err;
  }
}

/** BuildKit's buildMetaArgs: each global ARG takes its --build-arg value, else its default expanded so far. */
function resolveGlobalArgs(
  metaArgs: readonly ArgInstruction[],
  automatic: Map<string, string>,
  buildArgs: Readonly<Record<string, string>>,
  escapeToken: string,
): Map<string, string> {
  const vars = new Map(automatic);
  for (const instruction of metaArgs) {
    for (const arg of instruction.args) {
      let value: string | undefined;
      if (Object.hasOwn(buildArgs, arg.key)) value = buildArgs[arg.key];
      else if (arg.value !== undefined) {
        try {
          value = lexWord(arg.value, vars, { escape: escapeToken }).value;
        } catch (err) {
          if (err instanceof ExpansionError) {
            throw locationError(
              instruction.location.file,
              at(instruction.location),
              `ARG: ${err.message}`,
              err,
            );
          }
          throw err;
        }
      }
      if (value !== undefined) vars.set(arg.key, value);
    }
  }
  return vars;
}

/**
 * Parses the ONBUILD triggers a base image's config carries (`config.OnBuild`), to run first in a stage built on
 * it. Each is parsed on its own with the default escape token, as BuildKit does; errors point at the stage's FROM.
 */
export function parseImageTriggers(expressions: readonly string[], from: Location): Instruction[] {
  return expressions.map((expression) => {
    let lines: ReturnType<typeof readSource>['lines'];
    try {
      lines = readSource(expression, from.file).lines;
    } catch (err) {
      throw triggerError(from, expression, err);
    }
    const line = lines[0];
    if (!line || lines.length !== 1) {
      throw locationError(from.file, at(from), 'ONBUILD: onbuild trigger should be a single expression');
    }
    const keyword = line.keyword.toUpperCase();
    if (keyword === 'FROM' || keyword === 'MAINTAINER' || keyword === 'ONBUILD') {
      throw locationError(from.file, at(from), `ONBUILD: ${keyword} isn't allowed as an ONBUILD trigger`);
    }
    try {
      const instruction = parseInstruction(line, from.file, '\\');
      return { ...instruction, location: from } as Instruction;
    } catch (err) {
      throw triggerError(from, expression, err);
    }
  });
}

function triggerError(from: Location, expression: string, err: unknown): GantryError {
  // The trigger was parsed as its own one-line file: drop that file's position from the inner message.
  const detail = (err instanceof Error ? err.message : String(err)).replace(/^.*?:\d+:\d+: /, '');
  return locationError(from.file, at(from), `ONBUILD trigger ${JSON.stringify(expression)}: ${detail}`, err);
}
