#!/usr/bin/env bash
# Writes DIR/nix.conf, the nix configuration the demo and the tests run with (NIX_CONF_DIR=DIR),
# so that they depend neither on /etc/nix nor on how the machine's nix was set up.
# usage: scripts/nix-conf.sh DIR    (prints one line saying how builds will run; exit 1 if nix is unusable)
#
# What it decides, and why (docs/testing.md):
# - flakes on, no binary cache: the test and demo systems have no inputs and build offline;
# - build users: the `nixbld` group when the machine has it (scripts/bootstrap.sh creates it the way
#   Debian's nix-setup-systemd does); otherwise root builds as itself, which nix allows;
# - the build sandbox on, as on a real host, with `sandbox-fallback = false` so that a sandbox that
#   cannot be set up is an error rather than a silent unsandboxed build. Debian's nix-bin is built
#   without a sandbox shell (its `sandbox-paths` is empty), so the sandbox gets Debian's static
#   busybox as /bin/sh, as nixpkgs' nix gets its busybox-sandbox-shell. Where the kernel refuses the
#   sandbox (no user namespaces, e.g. inside a chroot), it is turned off and the reason printed.
set -euo pipefail

dir="${1:?usage: $0 DIR}"
mkdir -p "$dir"
conf="$dir/nix.conf"

if ! command -v nix >/dev/null 2>&1; then
  echo "nix-conf: nix is not installed (Debian package nix-bin)" >&2
  exit 1
fi

users=""
getent group nixbld >/dev/null 2>&1 && users=nixbld

write() { # write SANDBOX [SANDBOX_PATHS]
  {
    echo "# Written by scripts/nix-conf.sh for tend's demo and tests; do not edit."
    echo "experimental-features = nix-command flakes"
    echo "substituters ="
    echo "build-users-group = $users"
    echo "sandbox = $1"
    echo "sandbox-fallback = false"
    [ -n "${2:-}" ] && echo "sandbox-paths = $2"
  } >"$conf.tmp"
  mv -f "$conf.tmp" "$conf"
}

# Does nix already give the sandbox a shell (nixpkgs' nix does; Debian's does not)?
write true
shell=""
defaults="$(NIX_CONF_DIR="$dir" nix show-config 2>/dev/null | sed -n 's/^sandbox-paths = //p')"
case " $defaults " in
  *" /bin/sh="*|*" /bin/sh "*) ;;
  *)
    # A static busybox runs in the empty sandbox; a dynamic one would find no libc there.
    if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
      shell="/bin/sh=/bin/busybox"
    fi
    ;;
esac
write true "$shell"

# One tiny sandboxed build says whether the sandbox works here.
nonce="$(date +%s%N)-$$"
expr="derivation { name = \"tend-sandbox-check\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo ok > \$out\" ]; nonce = \"$nonce\"; }"
if [ -z "$shell" ] && [ -z "$defaults" ]; then
  why="nix has no shell to put in its sandbox (install busybox-static)"
elif out="$(NIX_CONF_DIR="$dir" nix build --no-link --impure --expr "$expr" 2>&1)"; then
  who="root"; [ -n "$users" ] && who="the nixbld build users"
  echo "nix-conf: builds run in nix's sandbox as $who${shell:+ (its /bin/sh is /bin/busybox)}"
  exit 0
else
  why="$(printf '%s\n' "$out" | grep -m1 -i 'error' || printf '%s\n' "$out" | tail -1)"
fi
write false
echo "nix-conf: nix's build sandbox is not available here, so builds run without it: $why"
if ! out="$(NIX_CONF_DIR="$dir" nix build --no-link --impure --expr "$expr" 2>&1)"; then
  echo "nix-conf: nix cannot build at all with $conf:" >&2
  printf '%s\n' "$out" | tail -5 >&2
  exit 1
fi
