/** sign/args: inputs the signing commands share, parsed purely — image references as cosign takes them, `k=v` annotations. */
import { GantryError } from '../errors/index.js';
import { type ImageReference, parseImageReference } from '../reference/index.js';

/** `host/repo:tag`, `host/repo@sha256:…`, with or without `docker://`. */
export function parseSignReference(text: string): ImageReference {
  return parseImageReference(text.startsWith('docker://') ? text.slice('docker://'.length) : text);
}

/** `-a key=value` flags as a record; a repeated key keeps its last value. */
export function parseAnnotations(values: readonly string[] | undefined): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0) {
      throw new GantryError('INVALID_ARGUMENT', `annotation must be KEY=VALUE, got ${JSON.stringify(value)}`);
    }
    annotations[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return annotations;
}
