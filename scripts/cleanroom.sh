#!/usr/bin/env bash
# Runs a command on a fresh Debian 12 machine, as a newcomer's would be: a debootstrap'd bookworm
# root (made once and cached outside the clone), a throw-away overlay per run, and a clean clone of
# the project's committed HEAD (uncommitted work is not there). Exits with the command's status.
# usage: scripts/cleanroom.sh [--keep] "COMMAND"     e.g. scripts/cleanroom.sh "bash scripts/bootstrap.sh test"
#
# Needs root, debootstrap (installed when missing), overlayfs and unshare. The root is entered with
# pivot_root in private mount and PID namespaces, not chroot: the kernel refuses user namespaces,
# which nix's build sandbox uses, to a chrooted process, and a real machine is not chrooted. The PID
# namespace ends every process the command left behind when it exits. The machine's extra CA
# certificates and npm settings are carried in: a network that reaches the package registries
# through its own CA needs them; one with direct access needs nothing. Nothing else is.
# Environment: TEND_CLEANROOM_CACHE (default /var/tmp/tend-cleanroom), TEND_CLEANROOM_MIRROR (the
# Debian mirror; default: the one this machine's apt uses), CI (passed into the root when set).
set -euo pipefail

keep=""
[ "${1:-}" = --keep ] && { keep=1; shift; }
cmd="${1:?usage: $0 [--keep] \"COMMAND\"}"
proj="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${TEND_CLEANROOM_CACHE:-/var/tmp/tend-cleanroom}"
base="$cache/bookworm"

die() { echo "cleanroom: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mounts, namespaces)"
git -C "$proj" rev-parse --verify -q HEAD >/dev/null || die "$proj has no commit to clone"

mirror() {
  local m="${TEND_CLEANROOM_MIRROR:-}"
  [ -n "$m" ] || m="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [ -n "$m" ] || m="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

# The base root, made once: built beside its final name and renamed when complete, under a lock,
# so an interrupted or concurrent run never leaves or uses a half-made root.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ ! -x "$base/bin/bash" ]; then
  command -v debootstrap >/dev/null 2>&1 || {
    echo "cleanroom: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >"$cache/apt.log" 2>&1 ||
      { apt-get update -qq >>"$cache/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$cache/apt.log" 2>&1; } ||
      { tail -20 "$cache/apt.log" >&2; die "could not install debootstrap (see $cache/apt.log)"; }
  }
  echo "cleanroom: debootstrap bookworm from $(mirror) into $base (once)"
  rm -rf "$base.new"
  debootstrap bookworm "$base.new" "$(mirror)" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (see $cache/debootstrap.log)"; }
  mv "$base.new" "$base"
fi
flock -u 9

run="$(mktemp -d "$cache/run.XXXXXX")"
r="$run/root"
cleanup() {
  local m
  for m in $(awk -v r="$r" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  if [ -n "$keep" ]; then echo "cleanroom: kept $run/upper"; else rm -rf "$run"; fi
}
trap cleanup EXIT
mkdir -p "$run/upper" "$run/work" "$r"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$r" ||
  die "overlay mount failed"

cp /etc/resolv.conf "$r/etc/resolv.conf"
mkdir -p "$r/usr/local/share/ca-certificates" "$r/etc/ssl/certs"
cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
[ -f /root/.npmrc ] && cp /root/.npmrc "$r/root/.npmrc"
mkdir -p "$r/root/src"
git clone -q "$proj" "$r/root/src/project" || die "git clone of $proj failed"
echo "cleanroom: fresh bookworm root, clone of $(git -C "$proj" rev-parse --short=12 HEAD); running: $cmd"

# Inside new mount and PID namespaces: the root's own /proc, /sys, /dev, /run and /tmp, then
# pivot_root into it and drop the old root; the environment is a login's, not this shell's.
cat >"$run/enter.sh" <<'EOF'
set -e
r="$1"
mount --make-rprivate /
mount --rbind "$r" "$r"
mount -t proc proc "$r/proc"
mount -t sysfs sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts"
mount --bind "$r/dev/pts/ptmx" "$r/dev/ptmx"
mount -t tmpfs tmpfs "$r/dev/shm"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs -o size=8g tmpfs "$r/tmp"
cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
cd /root/src/project
exec /usr/bin/env -i HOME=/root TERM=dumb ${CI:+CI=$CI} \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  bash -c "$2"
EOF
rc=0
unshare --mount --pid --fork bash "$run/enter.sh" "$r" "$cmd" </dev/null || rc=$?
echo "cleanroom: exit $rc"
exit "$rc"
