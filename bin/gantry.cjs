#!/usr/bin/env node
// The gantry CLI: loads the bundled entry point (built by `npm run build:ts`). CommonJS, like the CLI bundle:
// Node's ES module loader would add ~8 ms to every command's start (scripts/bundle.mjs).
'use strict';

// Node >= 22.1 can cache compiled code on disk between runs; gantry is run many times per CI job.
require('node:module').enableCompileCache?.();

const { main } = require('../dist/cli.cjs');
main(process.argv.slice(2)).then((code) => {
  // Exit as soon as the command is done: everything it does is awaited by then, and stdout/stderr writes to
  // pipes and files are synchronous on Linux; idle keep-alive sockets would otherwise hold the process open.
  process.exit(code);
});
