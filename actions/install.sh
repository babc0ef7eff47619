#!/usr/bin/env bash
# Builds gantry from this action's checkout (once per job) and puts `gantry` on the PATH of later steps.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$root/dist/cli.cjs" ]; then
  (cd "$root" && npm install --no-audit --no-fund --loglevel=error && npm run --silent build:ts)
  # The native addon speeds up bundle verification; copy and sync work without Rust, so it is optional here.
  if command -v cargo >/dev/null; then (cd "$root" && npm run --silent build:native); fi
fi
echo "$root/bin" >> "${GITHUB_PATH:-/dev/null}"
export PATH="$root/bin:$PATH"
gantry version
