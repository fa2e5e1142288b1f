#!/usr/bin/env bash
# One entry point for newcomers and CI: install what is missing (Debian 12), set nix up, build,
# then run the demo (`demo`) or the whole test suite (`test`). Every step that fails says which
# step it was and prints its output; the script then exits non-zero.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
case "$mode" in
  demo|test|deps|build) ;;
  *) echo "usage: $0 demo|test|deps|build" >&2; exit 1 ;;
esac

# Everything tend builds with, and every real tool the tests drive. busybox-static is the shell of
# nix's build sandbox (scripts/nix-conf.sh); Debian's nix-bin ships none.
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libgit2-dev libyaml-dev libcurl4-openssl-dev libjansson-dev libssh2-1-dev
  libsodium-dev libcmocka-dev libssl-dev libmicrohttpd-dev zlib1g-dev
  git openssh-client openssh-server age caddy nix-bin busybox-static python3 python3-aiosmtpd
  iproute2 ca-certificates curl openssl tzdata
  qemu-system-x86 qemu-utils debootstrap
)
# The fleet page's test loads it in a real headless browser (tests/agent/test_run_fleet.c); the demo
# does not need one.
if [ "$mode" != demo ]; then
  packages+=(chromium fonts-dejavu-core)
fi

logs="$here/build/logs"
mkdir -p "$logs"

# step NAME COMMAND...: runs COMMAND with its output in build/logs/NAME.log; on failure prints
# the step's name, its exit status and the end of its output, and exits 1.
step() {
  local name="$1" rc=0; shift
  "$@" >"$logs/$name.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bootstrap: step '$name' failed (exit $rc): $*" >&2
    tail -n 40 "$logs/$name.log" | sed 's/^/  | /' >&2
    echo "bootstrap: the whole output is in $logs/$name.log" >&2
    exit 1
  fi
}

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
    step apt-update apt-get update
    step apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  # ajv (JSON Schema validator for rendered Traefik configs), pinned, from npm.
  if [ ! -x "$here/build/npm/node_modules/.bin/ajv" ]; then
    echo "==> installing ajv-cli from npm"
    mkdir -p "$here/build/npm"
    step npm-install npm install --no-audit --no-fund --prefix "$here/build/npm" ajv-cli@5.0.0 ajv-formats@2.1.1
  fi
}

# Nix's build users, created as Debian's nix-setup-systemd creates them (nix-bin only recommends
# that package, and without it a fresh machine has none: nix then refuses every build with "the
# group 'nixbld' specified in 'build-users-group' does not exist"). With them, builds run as an
# unprivileged user, as on NixOS. The demo and the tests also bring their own nix.conf
# (scripts/nix-conf.sh), so they do not depend on /etc/nix.
nix_users() {
  getent group nixbld >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "tend: nix has no build users; as root, run: $0 deps" >&2
    return 0
  fi
  echo "==> creating nix's build users (group nixbld, users nixbld1-10, as nix-setup-systemd does)"
  step nix-users create_nix_users
}
create_nix_users() {
  groupadd --force --system nixbld
  local n
  for n in $(seq 1 10); do
    id "nixbld$n" >/dev/null 2>&1 ||
      useradd --system --comment "Nix build user $n" --home-dir /var/empty --gid nixbld \
        --groups nixbld --no-user-group --shell /usr/sbin/nologin "nixbld$n"
  done
}

jobs="$(nproc 2>/dev/null || echo 2)"

build() { # build DIR [cmake options...]
  local dir="$1"; shift
  local name; name="build-$(basename "$dir")"
  step "$name-configure" cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
  grep -o 'nix-conf:.*' "$logs/$name-configure.log" || true
  step "$name" cmake --build "$dir" -j "$jobs"
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
nix_users
[ "$mode" = deps ] && exit 0

werror=OFF
[ -n "${CI:-}" ] && werror=ON
export TEND_AJV="$here/build/npm/node_modules/.bin/ajv"

case "$mode" in
  build)
    build "$here/build/plain" -DTEND_WERROR="$werror"
    ;;
  demo)
    echo "==> building tend"
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
