/**
 * build/run-heredoc: the argv a RUN executes, heredocs included, as BuildKit's dispatchRun builds it. A lone
 * `RUN <<EOF` runs its body as the shell's script, or, when the body starts with `#!`, as an executable file
 * mounted read-only at /dev/pipes/<name>; any other form (`RUN <<EOF bash`, `RUN cat <<A <<B`, `<<-`) goes to
 * the shell with the bodies put back after the line, for the shell to feed. Bodies are not expanded here:
 * the shell does that, as in BuildKit. Pure.
 */
import type { CommandLine } from '../dockerfile/index.js';
import { parseHeredocWord } from '../dockerfile/source.js';
import { commandArgs } from './config.js';

/** Where BuildKit mounts a shebang heredoc's file. */
export const PIPES_DIR = '/dev/pipes';

export interface RunScript {
  args: string[];
  /** A file (mode 0755) the sandbox mounts at `${PIPES_DIR}/${name}`, for a shebang heredoc. */
  pipe?: { name: string; content: string };
}

export function runScript(command: CommandLine, shell: readonly string[] | undefined): RunScript {
  const first = command.files[0];
  if (!first || command.form === 'exec') return { args: commandArgs(command, shell) };
  const line = command.args.join(' ');
  const shellForm = (text: string): string[] => commandArgs({ ...command, args: [text] }, shell);
  if (parseHeredocWord(line)) {
    // `<<-` bodies come from the parser with their leading tabs already removed.
    if (first.content.startsWith('#!')) {
      return {
        args: shellForm(`${PIPES_DIR}/${first.name}`),
        pipe: { name: first.name, content: first.content },
      };
    }
    return { args: shellForm(first.content) };
  }
  let full = line;
  for (const doc of command.files) full += `\n${doc.content}${doc.name}`;
  return { args: shellForm(full) };
}
