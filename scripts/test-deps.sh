#!/usr/bin/env bash
# Installs what the seed-origin tests (crates/tollgate-test/tests/seed_origins.rs and the gateway
# tests that use tollgate_test::origins) and the load runner's `gateway` rows need, from this
# repository's own files:
#
#   - a Python venv with PyJWT[crypto] at the versions of crates/tollgate-test/origins/requirements.txt,
#     for Cloudflare's Python cookie origin (origins/cookie_origin.py);
#   - Debian's python3-venv, golang-go and go-oidc v2.1.0 (golang-github-coreos-go-oidc-dev, which brings
#     go-jose v2 and the rest), and nginx for the load runner's reverse-proxy row, installed with
#     apt-get when running as root and missing;
#   - the Go origin (origins/go-oidc/main.go) built in GOPATH mode against Debian's sources;
#   - Cloudflare's TypeScript SDK (npm `cloudflare`, pinned in origins/cloudflare-node/package.json
#     and its lock file), installed with the machine's npm into test-node/node_modules, for the
#     admin API's SDK test.
#
# Everything goes to $CARGO_TARGET_DIR (default: target/ of the workspace): test-venv/,
# test-origins/go-oidc-origin and test-node/, where the harness (tollgate_test::origins) looks
# for them;
# TOLLGATE_TEST_VENV and TOLLGATE_TEST_ORIGINS override the two places for both.
#
# Idempotent, and quick when everything is in place (no network then). It never fails because a
# registry is unreachable: it prints a WARNING and the tests that need the missing piece print
# SKIPPED. With --strict it exits 1 when something is missing.
#
# Usage: scripts/test-deps.sh [--strict]
set -uo pipefail

strict=0
case "${1:-}" in
  "") ;;
  --strict) strict=1 ;;
  *) echo "usage: $0 [--strict]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
origins_src="$root/crates/tollgate-test/origins"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${TOLLGATE_TEST_VENV:-$target/test-venv}"
bin_dir="${TOLLGATE_TEST_ORIGINS:-$target/test-origins}"
go_binary="$bin_dir/go-oidc-origin"
gopath=/usr/share/gocode
# python3-venv: Debian's python3 creates no venv without it.
debian_packages=(python3-venv golang-go golang-github-coreos-go-oidc-dev golang-gopkg-square-go-jose.v2-dev nginx)
started=$(date +%s)
missing=()

say() { printf 'test-deps: %s\n' "$*"; }
warn() { missing+=("$1"); printf 'test-deps: WARNING: %s\n' "$2" >&2; } # warn WHAT MESSAGE

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- Debian packages -------------------------------------------------------------------------
want=()
if command -v dpkg-query >/dev/null; then
  for package in "${debian_packages[@]}"; do
    installed "$package" || want+=("$package")
  done
fi
if ! command -v dpkg-query >/dev/null; then
  say "no dpkg: not checking for ${debian_packages[*]} (install their equivalents by hand)"
elif [ "${#want[@]}" -eq 0 ]; then
  say "Debian packages present (${debian_packages[*]})"
elif [ "$(id -u)" -ne 0 ]; then
  say "not root: skipping apt-get install ${want[*]} (run it as root, or: sudo apt-get install -y ${want[*]})"
elif ! command -v apt-get >/dev/null; then
  say "no apt-get: install ${want[*]} by hand"
else
  say "apt-get install ${want[*]}"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o Acquire::http::Timeout=20 -o Acquire::Retries=1 "${want[@]}" >>"$bin_dir.apt.log" 2>&1
  }
  mkdir -p "$(dirname "$bin_dir")"
  # Package lists may be missing or stale on a fresh machine: update once and retry.
  if ! apt_install; then
    say "apt-get install failed; apt-get update and one more try"
    DEBIAN_FRONTEND=noninteractive apt-get update -q -o Acquire::http::Timeout=20 \
      -o Acquire::Retries=1 >>"$bin_dir.apt.log" 2>&1 || true
    apt_install || say "apt-get install failed (log: $bin_dir.apt.log)"
  fi
fi

# --- the Python venv -------------------------------------------------------------------------
requirements="$origins_src/requirements.txt"
stamp="$venv/.tollgate-requirements"
python="${PYTHON:-$(command -v python3 || true)}"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  say "venv up to date ($venv)"
elif [ -z "$python" ]; then
  warn "python" "no python3 on PATH: the Python origin's tests will be SKIPPED"
else
  say "creating the venv $venv with $("$python" --version 2>&1)"
  rm -rf "$venv"
  if "$python" -m venv "$venv" \
    && "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input \
      --timeout 20 --retries 1 -r "$requirements"; then
    cp "$requirements" "$stamp"
  else
    rm -rf "$venv"
    warn "python" "could not create the venv with $requirements (PyPI unreachable?): the Python origin's tests will be SKIPPED"
  fi
fi

# --- the Go origin ---------------------------------------------------------------------------
go_source="$origins_src/go-oidc/main.go"
go=$(command -v go || true)
if [ -z "$go" ] && [ -x /usr/lib/go/bin/go ]; then go=/usr/lib/go/bin/go; fi
if [ -x "$go_binary" ] && [ "$go_binary" -nt "$go_source" ]; then
  say "Go origin up to date ($go_binary)"
elif [ -z "$go" ]; then
  warn "go" "no go toolchain (apt-get install golang-go): the Go origin's tests will be SKIPPED"
elif [ ! -d "$gopath/src/github.com/coreos/go-oidc" ]; then
  warn "go" "no go-oidc in $gopath (apt-get install golang-github-coreos-go-oidc-dev): the Go origin's tests will be SKIPPED"
else
  say "building the Go origin with $("$go" version)"
  mkdir -p "$bin_dir"
  if env GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOCACHE="$bin_dir/go-build" \
    "$go" build -o "$go_binary.tmp" "$go_source"; then
    mv "$go_binary.tmp" "$go_binary"
  else
    rm -f "$go_binary.tmp"
    warn "go" "go build of $go_source failed: the Go origin's tests will be SKIPPED"
  fi
fi

# --- Cloudflare's TypeScript SDK -------------------------------------------------------------
node_src="$origins_src/cloudflare-node"
node_dir="$target/test-node"
npm=$(command -v npm || true)
if [ -f "$node_dir/node_modules/cloudflare/package.json" ] \
  && cmp -s "$node_src/package-lock.json" "$node_dir/package-lock.json"; then
  say "TypeScript SDK up to date ($node_dir)"
elif [ -z "$npm" ] || ! command -v node >/dev/null; then
  warn "node" "no node and npm: the TypeScript SDK test will be SKIPPED"
else
  say "installing Cloudflare's TypeScript SDK into $node_dir with npm $("$npm" --version 2>/dev/null)"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$node_src/package.json" "$node_src/package-lock.json" "$node_dir/"
  if ! (cd "$node_dir" && "$npm" ci --no-audit --no-fund --loglevel=error \
    --fetch-timeout=20000 --fetch-retries=1 >"$node_dir.npm.log" 2>&1); then
    rm -rf "$node_dir"
    warn "node" "npm ci of $node_src failed (registry unreachable? log: $node_dir.npm.log): the TypeScript SDK test will be SKIPPED"
  fi
fi

# --- nginx (the load runner's reverse-proxy row) -----------------------------------------------
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  warn "nginx" "no nginx: the load runner's gateway mode will skip its nginx row"
fi

say "done in $(($(date +%s) - started)) s"
if [ "${#missing[@]}" -gt 0 ]; then
  say "missing: ${missing[*]}"
  [ "$strict" -eq 1 ] && exit 1
fi
exit 0
