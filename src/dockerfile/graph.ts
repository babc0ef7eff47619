/**
 * dockerfile/graph: which stages a stage needs (`FROM <stage>`, `COPY --from`, `RUN --mount=from=`, and the
 * ONBUILD triggers of a stage it builds on) and `stagesNeeded`, the stages a target needs in dependency order,
 * grouped into levels that can build concurrently. Follows BuildKit's dispatch rules. Pure.
 */
import { GantryError } from '../errors/index.js';
import type { Instruction, Stage } from './instructions.js';
import type { DockerfileIR } from './parse.js';
import { isLiteralWord } from './parse-instruction.js';
import { locationError } from './source.js';

/** Where one dependency comes from. */
export type StageSource = { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface StageDependencies {
  /** Earlier stages this stage reads, ascending. */
  stages: number[];
  /** Images named by COPY --from / RUN --mount=from that are not stages. */
  images: string[];
}

export interface PlannedStage {
  stage: Stage;
  dependsOn: number[];
  /** 0 for stages with no stage dependencies; otherwise 1 + the highest level among its dependencies. */
  level: number;
  images: string[];
}

export interface StagePlan {
  target: number;
  /** Only the stages the target needs, dependencies first. */
  stages: PlannedStage[];
  /** Stage indices by level: stages within one level are independent of each other. */
  levels: number[][];
}

function findByName(ir: DockerfileIR, name: string): number | undefined {
  const lower = name.toLowerCase();
  // The last stage with the name wins, as later definitions replace earlier ones in BuildKit's lookup.
  for (let i = ir.stages.length - 1; i >= 0; i--) if (ir.stages[i]?.name === lower) return i;
  return undefined;
}

/** Resolves a COPY --from value or RUN --mount from= value to a stage or an image. */
export function resolveSource(
  ir: DockerfileIR,
  instruction: Instruction,
  value: string,
  options: { allowIndex: boolean },
): StageSource {
  const loc = instruction.location;
  const where = { line: loc.line, column: loc.column };
  if (options.allowIndex) {
    if (!isLiteralWord(value, ir.directives.escape)) {
      throw locationError(
        ir.file,
        where,
        `${instruction.kind}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround`,
      );
    }
    if (/^-?\d+$/.test(value)) {
      const index = Number(value);
      if (index < 0 || index >= ir.stages.length) {
        throw locationError(ir.file, where, `${instruction.kind}: invalid stage index ${index}`);
      }
      return { kind: 'stage', index };
    }
  }
  const index = findByName(ir, value);
  return index === undefined ? { kind: 'image', ref: value } : { kind: 'stage', index };
}

function sourcesOf(ir: DockerfileIR, instruction: Instruction): StageSource[] {
  if (instruction.kind === 'COPY' && instruction.from !== undefined) {
    return [resolveSource(ir, instruction, instruction.from, { allowIndex: true })];
  }
  if (instruction.kind === 'RUN') {
    return instruction.mounts.flatMap((m) =>
      m.from === undefined ? [] : [resolveSource(ir, instruction, m.from, { allowIndex: false })],
    );
  }
  return [];
}

/** The ONBUILD triggers a stage inherits from stages it builds on (their triggers run first in it). */
export function inheritedTriggers(ir: DockerfileIR, stage: Stage): Instruction[] {
  if (stage.base.kind !== 'stage') return [];
  const base = ir.stages[stage.base.index] as Stage;
  return base.instructions.flatMap((i) => (i.kind === 'ONBUILD' ? [i.trigger] : []));
}

/** Direct dependencies of one stage; a dependency must be defined before the stage (BuildKit's rule). */
export function stageDependencies(ir: DockerfileIR, stage: Stage): StageDependencies {
  const stages = new Set<number>();
  const images = new Set<string>();
  if (stage.base.kind === 'stage') stages.add(stage.base.index);
  for (const instruction of [...inheritedTriggers(ir, stage), ...stage.instructions]) {
    for (const source of sourcesOf(ir, instruction)) {
      if (source.kind === 'image') {
        images.add(source.ref);
        continue;
      }
      if (source.index >= stage.index) {
        const other = ir.stages[source.index] as Stage;
        const label = (s: Stage) => s.name ?? `stage-${s.index}`;
        throw locationError(
          ir.file,
          { line: instruction.location.line, column: instruction.location.column },
          `${instruction.kind}: cannot use stage ${JSON.stringify(label(other))}, it needs to be defined before current stage ${JSON.stringify(label(stage))}`,
        );
      }
      stages.add(source.index);
    }
  }
  return { stages: [...stages].sort((a, b) => a - b), images: [...images].sort() };
}

/**
 * The stages `target` (name, index, or the IR's target) needs, dependencies first, with concurrency levels.
 * Stages the target does not reach are left out and their errors are not reported, as in BuildKit.
 */
export function stagesNeeded(ir: DockerfileIR, target?: string | number): StagePlan {
  let targetIndex = ir.target;
  if (typeof target === 'number') targetIndex = target;
  else if (target !== undefined) {
    const found = findByName(ir, target);
    if (found === undefined) {
      throw new GantryError('INVALID_ARGUMENT', `target stage ${JSON.stringify(target)} could not be found`, {
        subject: ir.file,
      });
    }
    targetIndex = found;
  }
  if (!ir.stages[targetIndex]) {
    throw new GantryError('INVALID_ARGUMENT', `invalid stage index ${targetIndex}`, { subject: ir.file });
  }
  const deps = new Map<number, StageDependencies>();
  const pending = [targetIndex];
  // Every dependency has a lower index, so this walk ends and ascending index order is a valid build order.
  while (pending.length > 0) {
    const index = pending.pop() as number;
    if (deps.has(index)) continue;
    const d = stageDependencies(ir, ir.stages[index] as Stage);
    deps.set(index, d);
    pending.push(...d.stages);
  }
  const order = [...deps.keys()].sort((a, b) => a - b);
  const levelOf = new Map<number, number>();
  const stages: PlannedStage[] = [];
  for (const index of order) {
    const d = deps.get(index) as StageDependencies;
    const level = d.stages.reduce((max, s) => Math.max(max, (levelOf.get(s) as number) + 1), 0);
    levelOf.set(index, level);
    stages.push({ stage: ir.stages[index] as Stage, dependsOn: d.stages, level, images: d.images });
  }
  const levels: number[][] = [];
  for (const s of stages) {
    const level = levels[s.level] ?? [];
    level.push(s.stage.index);
    levels[s.level] = level;
  }
  return { target: targetIndex, stages, levels };
}
