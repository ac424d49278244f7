#!/usr/bin/env bash
# Install what kalipso-ingest needs on a fresh Debian machine of this kind, if it is missing:
# redis-server (Debian package; the tests start their own instances on free loopback ports) and
# systemd-analyze (package systemd; the unit test verifies the service file with it), openssl
# (the TLS test makes its certificates), setpriv (util-linux; a test runs the daemon as nobody),
# tmux, node and npm (the real-viewer test runs Kalipso in tmux).
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
need() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "$1 is missing: installing $2 from Debian's packages" >&2
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
# The redis package starts a system instance on 6379; we never use it, so leave it to the admin.
need redis-server redis-server
need systemd-analyze systemd
need openssl openssl
need setpriv util-linux
# The real-viewer tests (tests/viewer_kalipso2020.rs) run Kalipso in tmux with Node.js.
need tmux tmux
need node nodejs
need npm npm
