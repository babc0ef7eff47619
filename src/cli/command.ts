/** cli/command: the shape of one subcommand module, loaded lazily by cli/main so start-up stays fast. */
import type { FlagSpecs } from './args.js';

export interface Command {
  /** One line for `gantry help`. */
  summary: string;
  /** Usage line after `gantry`, e.g. `copy [flags] SRC DST`. */
  usage: string;
  flags: FlagSpecs;
  /** Runs the command; returns the process exit code. */
  run(argv: string[]): Promise<number>;
}
