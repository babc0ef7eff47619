#!/usr/bin/env bash
# Logs in to a registry: checks the credentials, stores them in a job-local auth file, and exports
# REGISTRY_AUTH_FILE so later gantry (and skopeo/podman) steps use it. The password never reaches argv.
set -euo pipefail
: "${GANTRY_REGISTRY:?registry input is required}" "${GANTRY_USERNAME:?username input is required}" "${GANTRY_PASSWORD:?password input is required}"
authfile="${REGISTRY_AUTH_FILE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gantry-auth.json}"
printf '%s' "$GANTRY_PASSWORD" | gantry login --authfile "$authfile" -u "$GANTRY_USERNAME" --password-stdin "$GANTRY_REGISTRY"
echo "REGISTRY_AUTH_FILE=$authfile" >> "${GITHUB_ENV:-/dev/null}"
