/**
 * cli/main: the `gantry` entry point. A thin shell: it picks the subcommand, loads only that module (so start-up
 * stays near Node's own), runs it, and turns errors into one clear line and an exit code:
 * 0 success, 1 failure, 2 usage error.
 */
import { isGantryError } from '../errors/index.js';
import { formatFlagHelp } from './args.js';
import type { Command } from './command.js';

type Loader = () => Promise<Command>;

const COMMANDS: Record<string, Loader> = {
  copy: async () => (await import('./commands/copy.js')).command,
  sync: async () => (await import('./commands/sync.js')).command,
  inspect: async () => (await import('./commands/inspect.js')).command,
  'list-tags': async () => (await import('./commands/list-tags.js')).command,
  delete: async () => (await import('./commands/delete.js')).command,
  manifest: async () => (await import('./commands/manifest.js')).command,
  'manifest-digest': async () => (await import('./commands/manifest-digest.js')).command,
  login: async () => (await import('./commands/login.js')).login,
  logout: async () => (await import('./commands/login.js')).logout,
  run: async () => (await import('./commands/run.js')).command,
  build: async () => (await import('./commands/build.js')).command,
  cache: async () => (await import('./commands/cache.js')).command,
  info: async () => (await import('./commands/info.js')).command,
  'generate-key-pair': async () => (await import('./commands/generate-key-pair.js')).command,
  sign: async () => (await import('./commands/sign.js')).command,
  verify: async () => (await import('./commands/verify.js')).command,
  attest: async () => (await import('./commands/attest.js')).command,
  'verify-attestation': async () => (await import('./commands/verify-attestation.js')).command,
};

const VERSION = '0.1.0';

async function usage(): Promise<string> {
  const lines = ['Usage: gantry COMMAND [flags] ...', '', 'Commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(16)} ${(await load()).summary}`);
  }
  lines.push('', 'Run `gantry COMMAND --help` for its flags.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${await usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`gantry ${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`gantry: unknown command "${name}"\n\n${await usage()}\n`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(
      `Usage: gantry ${command.usage}\n\n${command.summary}\n\nFlags:\n${formatFlagHelp(command.flags)}\n`,
    );
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (isGantryError(err)) {
      process.stderr.write(`gantry ${name}: ${err.message} [${err.code}]\n`);
      if (process.env.GANTRY_DEBUG && err.cause) process.stderr.write(`cause: ${String(err.cause)}\n`);
      return err.code === 'INVALID_ARGUMENT' || err.code === 'INVALID_REFERENCE' ? 2 : 1;
    }
    process.stderr.write(
      `gantry ${name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}
