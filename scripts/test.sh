#!/usr/bin/env bash
# test.sh: sets the machine up (scripts/setup.sh) and runs the vitest suite; arguments go to vitest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec npx vitest run "$@"
