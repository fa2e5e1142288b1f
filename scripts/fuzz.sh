#!/usr/bin/env bash
# Run every built fuzz target for a few seconds each, seeded from fuzz/corpus/<name>/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$here/build/fuzz}"; secs="${2:-20}"
found=0
for bin in "$dir"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  found=1
  name="$(basename "$bin")"
  work="$(mktemp -d)"
  seeds=()
  [ -d "$here/fuzz/corpus/$name" ] && seeds=("$here/fuzz/corpus/$name")
  echo "--> $name for ${secs}s"
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 "$work" "${seeds[@]}" 2>"$work.log" || {
    echo "fuzz target $name failed:"; tail -50 "$work.log"; exit 1; }
  tail -1 "$work.log"
  rm -rf "$work" "$work.log"
done
[ "$found" = 1 ] || echo "no fuzz targets built"
