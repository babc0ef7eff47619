/**
 * dockerfile/load-dockerignore: the front end's only file access — reads `<Dockerfile>.dockerignore` next to
 * the Dockerfile, or else `<context>/.dockerignore`, as BuildKit's dockerui does.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asGantryError } from '../errors/index.js';
import { parseDockerignore } from './dockerignore.js';

export interface LoadedIgnoreFile {
  /** The file the patterns came from; absent when neither file exists. */
  file?: string;
  patterns: string[];
}

export async function loadDockerignore(
  contextDir: string,
  dockerfilePath: string,
): Promise<LoadedIgnoreFile> {
  for (const file of [`${dockerfilePath}.dockerignore`, join(contextDir, '.dockerignore')]) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw asGantryError(err, 'IO', 'cannot read ignore file', file);
    }
    return { file, patterns: parseDockerignore(text) };
  }
  return { patterns: [] };
}
