#!/usr/bin/env node
// The gantry CLI: loads the one bundled entry point (built by `npm run build:ts`).
import module from 'node:module';

// Node >= 22.1 can cache compiled code on disk between runs; gantry is run many times per CI job.
module.enableCompileCache?.();

const { main } = await import('../dist/cli.js');
const code = await main(process.argv.slice(2));
// Exit as soon as the command is done: everything it does is awaited by then, and stdout/stderr writes to
// pipes and files are synchronous on Linux; idle keep-alive sockets would otherwise hold the process open.
process.exit(code);
