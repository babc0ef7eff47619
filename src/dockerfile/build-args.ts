/**
 * dockerfile/build-args: `--build-arg` and `--build-arg-file` values into the map `parseDockerfile` takes.
 * `KEY=VALUE` sets a value; a bare `KEY` takes the caller's environment value when there is one (as docker and
 * buildah do). Files hold one argument per line; blank lines and `#` comments are skipped. Later values win,
 * and `--build-arg` flags win over files. Pure: callers read the files and pass the process environment.
 */
import { GantryError } from '../errors/index.js';

export interface BuildArgSources {
  /** `--build-arg` values in command-line order. */
  args?: readonly string[];
  /** Contents of `--build-arg-file` files in command-line order, with a name for errors. */
  files?: readonly { name: string; text: string }[];
  /** The environment bare `KEY` arguments read from. */
  env?: Readonly<Record<string, string | undefined>>;
}

export function resolveBuildArgs(sources: BuildArgSources): Record<string, string> {
  const out: Record<string, string> = {};
  const env = sources.env ?? {};
  const add = (entry: string, subject: string): void => {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    if (key === '' || /\s/.test(key)) {
      throw new GantryError('INVALID_ARGUMENT', `invalid build argument ${JSON.stringify(entry)}`, {
        subject,
      });
    }
    if (eq >= 0) out[key] = entry.slice(eq + 1);
    else if (env[key] !== undefined) out[key] = env[key] as string;
  };
  for (const file of sources.files ?? []) {
    for (const [i, raw] of file.text.split('\n').entries()) {
      const line = raw.replace(/\r$/, '').trim();
      if (line === '' || line.startsWith('#')) continue;
      add(line, `${file.name}:${i + 1}`);
    }
  }
  for (const arg of sources.args ?? []) add(arg, '--build-arg');
  return out;
}
