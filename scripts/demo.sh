#!/usr/bin/env bash
# The demo on the bundled example fleet: five real agents on loopback, real Nix,
# a breaking commit rolled back with an alert mail, then the fix.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tend="${1:-$here/build/plain/agent/tend}"
exec "$here/examples/homelab/nix/run-demo.sh" "$tend"
