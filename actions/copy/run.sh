#!/usr/bin/env bash
# Runs `gantry copy` from the action's inputs (GANTRY_* variables) and writes the copied digest to the
# step outputs. Shared by the GitHub action and the GitLab template.
set -euo pipefail
: "${GANTRY_SOURCE:?source input is required}" "${GANTRY_DESTINATION:?destination input is required}"
digestfile="$(mktemp)"
args=(copy --digestfile "$digestfile")
[ "${GANTRY_ALL:-false}" = true ] && args+=(--all)
[ -n "${GANTRY_PLATFORM:-}" ] && args+=(--platform "$GANTRY_PLATFORM")
[ "${GANTRY_REMOVE_SIGNATURES:-false}" = true ] && args+=(--remove-signatures)
# Extra flags are split on whitespace on purpose, like a command line.
# shellcheck disable=SC2206
[ -n "${GANTRY_EXTRA_ARGS:-}" ] && args+=(${GANTRY_EXTRA_ARGS})
gantry "${args[@]}" "$GANTRY_SOURCE" "$GANTRY_DESTINATION"
echo "digest=$(cat "$digestfile")" >> "${GITHUB_OUTPUT:-/dev/stdout}"
rm -f "$digestfile"
