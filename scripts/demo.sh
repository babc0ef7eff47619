#!/usr/bin/env bash
# README quick start, command 1: set up (packages, npm, native build) and run the end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/demo.mjs
