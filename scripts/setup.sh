#!/usr/bin/env bash
# setup.sh: prepares a Debian machine (or a developer checkout) to build and test gantry. Idempotent:
# installs missing system packages (as root, or through sudo), creates the unprivileged `gantry-test` user
# with subordinate id ranges (as root), checks Rust, runs `npm install` (locked versions) when node_modules is stale,
# installs the pinned cosign (tests' signing oracle) into the tools cache, then builds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

PACKAGES=(docker-registry skopeo umoci uidmap busybox-static apache2-utils openssl buildah ca-certificates zstd attr fuse-overlayfs git bzip2 xz-utils openssh-client)

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

install_packages() {
  command -v dpkg-query >/dev/null || { log "not a Debian-like system; make sure these are installed: ${PACKAGES[*]}"; return; }
  local missing=()
  for pkg in "${PACKAGES[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && { log "system packages present"; return; }

  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      die "missing packages: ${missing[*]} — install them as root: apt-get install -y ${missing[*]}"
    fi
  fi
  log "installing: ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Next free subordinate id range start in /etc/subuid or /etc/subgid (after every existing range).
next_sub_start() {
  awk -F: 'BEGIN { max = 100000 } NF == 3 && $2 + $3 > max { max = $2 + $3 } END { print max }' "$1" 2>/dev/null || echo 100000
}

ensure_test_user() {
  [ "$(id -u)" -eq 0 ] || { log "not root: skipping the gantry-test user"; return; }
  if ! id gantry-test >/dev/null 2>&1; then
    log "creating user gantry-test"
    useradd --create-home --shell /bin/bash gantry-test
  fi
  for file in /etc/subuid /etc/subgid; do
    touch "$file"
    if ! grep -q '^gantry-test:' "$file"; then
      echo "gantry-test:$(next_sub_start "$file"):65536" >>"$file"
      log "added a gantry-test range to $file"
    fi
  done
}

check_toolchain() {
  command -v node >/dev/null || die "node is not installed (gantry needs Node >= 20.18.1)"
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  command -v cargo >/dev/null || die "Rust is not installed (cargo not found): install it with rustup (https://rustup.rs) or apt-get install cargo"
}

install_node_modules() {
  # npm writes node_modules/.package-lock.json; if package-lock.json is newer, dependencies changed.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # npm 11.19 writes lock files that list only this platform's optional packages (esbuild, biome, napi)
    # and then its own `npm ci` rejects them as out of sync; `npm install` honours the locked versions.
    log "npm install (locked versions)"
    npm install --no-audit --no-fund
  else
    log "node_modules up to date"
  fi
}

# cosign, the signature-interoperability oracle of the sign/verify tests, built from the Go module proxy into a
# cache dir (not rebuilt when that version is already there; CI caches the dir). Pinned: keep COSIGN_VERSION in
# test/harness/cosign.ts in step. A failed build fails setup, so the tests never run without their oracle.
COSIGN_VERSION=v2.6.5
install_cosign() {
  local tools="${GANTRY_TOOLS_DIR:-$HOME/.cache/gantry-tools}"
  local bin="$tools/bin/cosign"
  if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "GitVersion: *${COSIGN_VERSION}\$"; then
    log "cosign ${COSIGN_VERSION} present ($bin)"
    return
  fi
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
  if ! command -v go >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    # No Go on this machine: Debian's backports Go 1.23 can fetch the toolchain cosign's go.mod asks for from
    # the Go module proxy (GOTOOLCHAIN=auto).
    log "installing Go 1.23 from bookworm-backports to build cosign"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/gantry-backports.list
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go
    export PATH="/usr/lib/go-1.23/bin:$PATH" GOTOOLCHAIN=auto
  fi
  command -v go >/dev/null || die "Go is not installed (needed to build cosign for the signing tests): install it to /usr/local/go"
  log "building cosign ${COSIGN_VERSION} with go install (a few minutes, once)"
  mkdir -p "$tools/bin"
  GOBIN="$tools/bin" go install "github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}"
  "$bin" version >/dev/null || die "cosign ${COSIGN_VERSION} did not build"
}

build() {
  log "npm run build"
  npm run build
}

install_packages
ensure_test_user
check_toolchain
install_node_modules
install_cosign
build
log "done"
