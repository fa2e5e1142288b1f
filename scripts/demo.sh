#!/usr/bin/env bash
# The demo on the bundled example fleet: grows with each issue that lands.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tend="${1:-$here/build/plain/agent/tend}"
echo "\$ tend --version"; "$tend" --version
