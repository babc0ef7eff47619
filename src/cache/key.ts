/**
 * cache/key: the per-step cache key and the explanation of a miss. A key hashes the parent step's key, the
 * expanded instruction, the variables the step can see, step options that change the output (compression,
 * timestamp), and for COPY/ADD the fingerprints of exactly the files copied. Secret values are never inputs:
 * a RUN's secret mounts enter the key by id and target only. Pure.
 */
import { createHash } from 'node:crypto';

export interface StepInputs {
  /** Key of the previous step, or the base image's identity for the first step of a stage. */
  parent: string;
  /** The normalised, expanded instruction. */
  instruction: string;
  /** `KEY=value` the step sees (ENV and declared ARGs), sorted. */
  env: readonly string[];
  /** Copied files by destination path: type, mode, content digest. */
  files?: Readonly<Record<string, string>>;
  /** Other inputs by name (compression, timestamp, source stage key, mounts). */
  options?: Readonly<Record<string, string>>;
}

function canonical(inputs: StepInputs): string {
  const files = inputs.files ?? {};
  const options = inputs.options ?? {};
  return JSON.stringify([
    inputs.parent,
    inputs.instruction,
    [...inputs.env].sort(),
    Object.keys(files)
      .sort()
      .map((k) => [k, files[k]]),
    Object.keys(options)
      .sort()
      .map((k) => [k, options[k]]),
  ]);
}

/** The step's cache key: `sha256:<hex>`. */
export function stepKey(inputs: StepInputs): string {
  return `sha256:${createHash('sha256').update(canonical(inputs)).digest('hex')}`;
}

function listChanged(before: Readonly<Record<string, string>>, after: Readonly<Record<string, string>>) {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}

function envMap(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const eq = e.indexOf('=');
    out[eq < 0 ? e : e.slice(0, eq)] = eq < 0 ? '' : e.slice(eq + 1);
  }
  return out;
}

function summarise(kind: string, names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return `${kind} changed: ${shown}${names.length > 5 ? ` (+${names.length - 5} more)` : ''}`;
}

/**
 * Why `current` missed, given the cached steps that followed the same parent: the parent is new, the
 * instruction differs, or which variables, files or options changed against the closest cached step.
 */
export function explainMiss(current: StepInputs, sameParent: readonly StepInputs[]): string {
  if (sameParent.length === 0)
    return 'no cached step follows the parent (the base or an earlier step changed)';
  const sameInstruction = sameParent.filter((c) => c.instruction === current.instruction);
  if (sameInstruction.length === 0) return `instruction changed (cached: ${sameParent[0]?.instruction})`;
  const reasons = sameInstruction.map((c) => {
    const env = listChanged(envMap(c.env), envMap(current.env));
    if (env.length > 0) return summarise('variables', env);
    const files = listChanged(c.files ?? {}, current.files ?? {});
    if (files.length > 0) return summarise('files', files);
    const options = listChanged(c.options ?? {}, current.options ?? {});
    return summarise('options', options);
  });
  // The cached step with the fewest differences is the most useful comparison.
  return reasons.sort((a, b) => a.length - b.length)[0] as string;
}
