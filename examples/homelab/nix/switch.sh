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
# The system's users (the owners of its services' secrets), created as NixOS's activation
# creates a module's users.users.<name>, when the demo runs with TEND_DEMO_USERS=1 (as root);
# each one created is listed for the demo to remove at its end.
if [ "${TEND_DEMO_USERS:-}" = 1 ]; then
	# an assignment, so that a failure of the python stops the switch (set -e)
	users=$(python3 -c 'import json,sys
h = json.load(open(sys.argv[1]))
print(" ".join(sorted({s.get("owner") for svc in h.get("services", {}).values()
                       for s in svc.get("secrets", []) if s.get("owner") not in (None, "root")})))' @out@/host.json)
	for u in $users; do
		if ! getent passwd "$u" >/dev/null; then
			useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$u"
			echo "$u" >> "$TEND_DEMO_ROOT/created-users"
			echo "created system user $u"
		fi
	done
fi
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
