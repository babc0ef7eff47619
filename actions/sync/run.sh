#!/usr/bin/env bash
# Runs `gantry sync` from the action's inputs (GANTRY_* variables); the JSON report goes to the step outputs.
set -euo pipefail
: "${GANTRY_SOURCE:?source input is required}" "${GANTRY_DESTINATION:?destination input is required}"
args=(sync --json --src "${GANTRY_SOURCE_KIND:-docker}" --dest "${GANTRY_DESTINATION_KIND:-docker}")
[ "${GANTRY_ALL:-false}" = true ] && args+=(--all)
[ "${GANTRY_DELETE_EXTRANEOUS:-false}" = true ] && args+=(--delete-extraneous)
[ "${GANTRY_KEEP_GOING:-false}" = true ] && args+=(--keep-going)
[ "${GANTRY_DRY_RUN:-false}" = true ] && args+=(--dry-run)
[ -n "${GANTRY_SHARD:-}" ] && args+=(--shard "$GANTRY_SHARD")
# shellcheck disable=SC2206
[ -n "${GANTRY_EXTRA_ARGS:-}" ] && args+=(${GANTRY_EXTRA_ARGS})
report="$(mktemp)"
status=0
gantry "${args[@]}" "$GANTRY_SOURCE" "$GANTRY_DESTINATION" > "$report" || status=$?
cat "$report"
{ echo 'report<<GANTRY_EOF'; cat "$report"; echo 'GANTRY_EOF'; } >> "${GITHUB_OUTPUT:-/dev/null}"
rm -f "$report"
exit "$status"
