#!/bin/sh
# switch-to-configuration of the demo host @host@: the NixOS contract in
# miniature. Under $TEND_DEMO_ROOT/@host@ it installs this system's config,
# points current-system at it and restarts the host's stand-in services.
set -eu
action="${1:-switch}"
case "$action" in
switch|test|boot|dry-activate) ;;
*) echo "switch-to-configuration: unknown action $action" >&2; exit 1 ;;
esac
[ "$action" = switch ] || [ "$action" = test ] || exit 0
root="${TEND_DEMO_ROOT:?TEND_DEMO_ROOT is not set}/@host@"
mkdir -p "$root"
echo "activating @out@ on @host@"
cat @out@/host.json > "$root/config.json.tmp"
mv "$root/config.json.tmp" "$root/config.json"
ln -sfn @out@ "$root/current-system.tmp"
mv -T "$root/current-system.tmp" "$root/current-system"
# Stop the running stand-ins and wait until their ports are free.
if [ -f "$root/standin.pid" ]; then
	pid=$(cat "$root/standin.pid")
	if kill "$pid" 2>/dev/null; then
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	fi
	rm -f "$root/standin.pid"
fi
# Debian's python3 when there is one: a python3 on PATH may be a slow shim (pyenv).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# The stand-in writes its own pid file: $! may name setsid, not the stand-in.
setsid "$py" @out@/bin/standin.py --pidfile "$root/standin.pid" "$root/config.json" \
	</dev/null >>"$root/standin.log" 2>&1 &
i=0
while [ ! -f "$root/standin.pid" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
"$py" @out@/bin/standin.py --describe "$root/config.json"
