#!/usr/bin/env node
// The gantry CLI: loads the one bundled entry point (built by `npm run build:ts`).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
