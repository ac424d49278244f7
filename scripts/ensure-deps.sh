#!/usr/bin/env bash
# Install what kalipso-ingest needs on a fresh Debian machine of this kind, if it is missing:
# redis-server (Debian package; the tests start their own instances on free loopback ports).
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is missing: installing it from Debian's packages" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # The package starts a system instance on 6379; we never use it, so leave it to the admin.
fi
