/**
 * sync/yaml: reads skopeo-style sync YAML files. Kept apart from sync/config.ts so only `--src yaml` loads the
 * YAML parser.
 */
import { parse as parseYaml } from 'yaml';
import { GantryError } from '../errors/index.js';
import { parseSyncConfig, type SyncSourceRepo } from './config.js';

/** Parses a skopeo sync YAML document. `file` is only used to name the input in errors. */
export function parseSyncYaml(text: string, file: string): SyncSourceRepo[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (cause) {
    throw new GantryError('INVALID_ARGUMENT', `not valid YAML: ${(cause as Error).message}`, {
      subject: file,
      cause,
    });
  }
  return parseSyncConfig(doc, file);
}
