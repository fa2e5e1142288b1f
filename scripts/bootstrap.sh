#!/usr/bin/env bash
# One entry point for newcomers and CI: install what is missing (Debian 12),
# build, then run the demo (`demo`) or the whole test suite (`test`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
case "$mode" in
  demo|test|deps|build) ;;
  *) echo "usage: $0 demo|test|deps|build" >&2; exit 1 ;;
esac

# Everything tend builds with, and every real tool the tests drive.
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libgit2-dev libyaml-dev libcurl4-openssl-dev libjansson-dev libssh2-1-dev
  libsodium-dev libcmocka-dev libssl-dev libmicrohttpd-dev zlib1g-dev
  git openssh-client openssh-server age caddy nix-bin python3 python3-aiosmtpd
  iproute2 ca-certificates curl openssl
)

install_deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node may come from elsewhere (NodeSource ships npm inside nodejs): ask for the commands.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "tend: these Debian packages are missing; install them and run this again:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # ajv (JSON Schema validator for rendered Traefik configs), pinned, from npm.
  if [ ! -x "$here/build/npm/node_modules/.bin/ajv" ]; then
    echo "==> installing ajv-cli from npm"
    mkdir -p "$here/build/npm"
    npm install --silent --no-audit --no-fund --prefix "$here/build/npm" ajv-cli@5.0.0 ajv-formats@2.1.1 >/dev/null
  fi
}

jobs="$(nproc 2>/dev/null || echo 2)"

build() { # build DIR [cmake options...]
  local dir="$1"; shift
  cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

passed=0; failed=0
run_tests() { # run_tests DIR: ctest, adding its counts to the totals printed at the end
  local log rc=0
  log="$(mktemp)"
  (cd "$1" && ctest --output-on-failure -j "$jobs") 2>&1 | tee "$log" || rc=1
  local line total nfail
  line="$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)"
  if [ -n "$line" ]; then
    nfail="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
    total="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")"
    passed=$((passed + total - nfail)); failed=$((failed + nfail))
  fi
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then echo "tests: $passed passed, $failed failed"; exit 1; fi
}

install_deps
[ "$mode" = deps ] && exit 0

werror=OFF
[ -n "${CI:-}" ] && werror=ON
export TEND_AJV="$here/build/npm/node_modules/.bin/ajv"

case "$mode" in
  build)
    build "$here/build/plain" -DTEND_WERROR="$werror"
    ;;
  demo)
    build "$here/build/plain" -DTEND_WERROR="$werror"
    exec "$here/scripts/demo.sh" "$here/build/plain/agent/tend"
    ;;
  test)
    echo "==> plain build (-Werror: $werror)"
    build "$here/build/plain" -DTEND_WERROR="$werror"
    run_tests "$here/build/plain"
    echo "==> ASan+UBSan build"
    build "$here/build/asan" -DTEND_WERROR="$werror" -DTEND_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    run_tests "$here/build/asan"
    if [ -f "$here/fuzz/CMakeLists.txt" ]; then
      echo "==> libFuzzer targets, short runs"
      build "$here/build/fuzz" -DTEND_FUZZ=ON -DTEND_TESTS=OFF -DCMAKE_C_COMPILER=clang
      "$here/scripts/fuzz.sh" "$here/build/fuzz" 10
    fi
    echo "tests: $passed passed, $failed failed"
    ;;
esac
