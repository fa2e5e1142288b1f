#!/usr/bin/env bash
# The homelab demo on one machine: five tend agents (one per host, on
# 127.77.0.N) follow a git repository derived from examples/homelab, converge
# in dependency order with real nix, then a commit breaks PostgreSQL on db1:
# db1 rolls back, mails the operator (a local SMTP sink), the hosts that need
# the database wait, and the fix converges everyone. Cleans up after itself.
# usage: run-demo.sh [TEND_BINARY]   (TEND_DEMO_KEEP=1 keeps the work directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"     # examples/homelab/nix
homelab="$(dirname "$here")"
tend="$(realpath "${1:-$homelab/../../build/plain/agent/tend}")"
hosts=(gateway db1 apps1 home1 nas1)
work="$(mktemp -d "${TMPDIR:-/tmp}/tend-demo.XXXXXX")"
pids=()
start=$SECONDS

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
cleanup() {
  local p f
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/run/*/standin.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  # A stand-in still starting has no pid file yet: every process naming this
  # demo's work directory is the demo's own.
  pkill -TERM -f "$work/" 2>/dev/null || true
  wait 2>/dev/null || true
  # the service users the demo systems' activation created
  if [ -f "$work/run/created-users" ]; then
    while read -r u; do userdel "$u" 2>/dev/null || true; done < "$work/run/created-users"
  fi
  if [ -n "${TEND_DEMO_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# nix with the demo's own configuration (flakes, offline, the build sandbox where the kernel
# allows it), whatever /etc/nix holds: scripts/nix-conf.sh says how builds will run.
bash "$homelab/../../scripts/nix-conf.sh" "$work/nix"
export NIX_CONF_DIR="$work/nix"

# A python3 that has aiosmtpd (Debian's python3-aiosmtpd lives in /usr/bin/python3).
smtp_python=python3
python3 -c 'import aiosmtpd' 2>/dev/null || smtp_python=/usr/bin/python3
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

git_commit() { git -C "$work/fleet" add -A && git -C "$work/fleet" -c user.name=operator -c user.email=ops@example.net commit -q -m "$1"; }
head_commit() { git -C "$work/fleet" rev-parse --short=12 HEAD; }

# As root, the secrets keep their real owners (grafana, postgres, ...): the demo systems create
# those users when they are activated, as NixOS does, and the demo removes them when it ends.
if [ "$(id -u)" = 0 ]; then export TEND_DEMO_USERS=1; fi

bold "a fleet repository from examples/homelab (hosts on 127.77.0.1-5)"
python3 "$here/demo-fleet.py" "$homelab" "$work/fleet"
git -C "$work/fleet" init -q -b main
git_commit "homelab: five hosts, thirteen services"
(cd "$work/fleet" && "$tend" validate)

smtp_port="$(free_port)"
"$smtp_python" -u -m aiosmtpd -n -c aiosmtpd.handlers.Debugging -l "127.0.0.1:$smtp_port" >"$work/mail.log" 2>&1 &
pids+=($!)

n=0
for h in "${hosts[@]}"; do
  n=$((n + 1))
  cat >"$work/$h.yaml" <<YAML
host: $h
repository: {url: fleet, branch: main}
state_dir: state/$h
root: root/$h
secrets_root: root/$h/run/tend/secrets
secrets_storage: disk
age_identities: [fleet/demo-keys/DEMO-ONLY-age-key.txt]
nix: {extra_options: [--option, substituters, '']}
system: {profile: profiles/$h/system, current_system: run/$h/current-system}
listen: {address: 127.77.0.$n, port: 8470}
poll: {interval: 2s, jitter: 500ms}
probes: {deadline: 60s, liveness_interval: 5s}
alerts:
  email: {to: [ops@example.net], from: tend@lab.example.net, smtp_url: "smtp://127.0.0.1:$smtp_port", starttls: false}
YAML
done
export TEND_DEMO_ROOT="$work/run" PATH="$here/demo-bin:$PATH"
cd "$work"

bold "tend plan on db1 (nothing runs yet)"
"$tend" plan --config db1.yaml || true

bold "five agents start: db1 first, then the hosts that need its database"
for h in "${hosts[@]}"; do
  "$tend" run --config "$h.yaml" 2>"$h.log" &
  pids+=($!)
done

# Print the fleet table whenever it changes, until want() holds or time runs out.
watch_fleet() { # watch_fleet SECONDS PREDICATE
  local deadline=$((SECONDS + $1)) last="" table
  while [ $SECONDS -lt $deadline ]; do
    table="$("$tend" status --config gateway.yaml --fleet 2>&1 || true)"
    # Before gateway's agent fetched anything it knows no fleet: nothing to show yet.
    if [ "$table" != "$last" ] && [[ "$table" != "tend: error:"* ]]; then
      printf '%s\n\n' "$table" | sed "s|$work/||g"
      last="$table"
    fi
    if "$2" "$table"; then return 0; fi
    sleep 1
  done
  echo "(timed out waiting)"; return 1
}
all_converged_at() { # every host converged with TARGET = head
  local head; head="$(head_commit)"
  [ "$(grep -c " converged .* $head " <<<"$1" || true)" -eq 5 ]
}
nas1_degraded() { grep -qE '^nas1 .* degraded ' <<<"$1"; }
db1_rolled_back_apps1_blocked() {
  grep -qE '^db1 .* (rolled-back|failed) ' <<<"$1" && grep -qE '^apps1 .* blocked ' <<<"$1"
}

# show_mail SUBJECT_PATTERN: the first mail whose subject matches, once the agent has sent it
# (its alerter mails in the background: on a loaded machine that takes a few seconds).
show_mail() {
  local i
  for i in $(seq 1 60); do
    grep -q "^Subject: .*$1" mail.log 2>/dev/null && break
    sleep 0.5
  done
  if ! grep -q "^Subject: .*$1" mail.log 2>/dev/null; then
    echo "(no mail with a subject matching '$1' arrived within 30 s)"
    return 1
  fi
  sed -n "/^Subject: .*$1/,/^------------ END MESSAGE/p" mail.log | grep -v '^X-Peer\|^Message-ID\|^MIME\|^Content-' || true
}

watch_fleet 90 all_converged_at
echo "order of the first switches (from the agents' logs):"
grep -h 'applied commit' ./*.log | sort | sed -E 's/^([^ ]+) .*switched to .*-homelab-demo-system-(.*)$/  \1  \2/'

bold "a commit that breaks PostgreSQL on db1 (and changes Grafana, which needs it)"
printf '  demo_fail: true\n' >>fleet/services/postgresql/service.yaml
printf '  dashboards: [postgresql-overview]\n' >>fleet/services/grafana/service.yaml
git_commit "postgresql: raise shared_buffers; grafana: database dashboard"
echo "pushed $(head_commit): postgresql: raise shared_buffers; grafana: database dashboard"
watch_fleet 60 db1_rolled_back_apps1_blocked
bold "the alert mail (captured by the local SMTP server)"
show_mail "rolled back"

bold "the fix"
sed -i '/demo_fail/d; s/shared_buffers: 512MB/shared_buffers: 1GB/' fleet/services/postgresql/service.yaml
git_commit "postgresql: shared_buffers 1GB"
echo "pushed $(head_commit): postgresql: shared_buffers 1GB"
watch_fleet 60 all_converged_at
show_mail "resolved"

bold "db1's history"
"$tend" history --config db1.yaml --limit 3 | sed "s|$work/||g"

bold "an upgrade: Grafana 10.4.2 -> 11.0.1 (nix/packages.nix); apps1's history says what its switch changed"
sed -i 's/grafana = "10.4.2"/grafana = "11.0.1"/' fleet/nix/packages.nix
git_commit "grafana 11.0.1"
echo "pushed $(head_commit): grafana 11.0.1"
watch_fleet 60 all_converged_at >/dev/null
"$tend" history --config apps1.yaml --limit 1 | sed "s|$work/||g"

bold "liveness between reconciles: nas1's services stopped by hand"
kill "$(cat run/nas1/standin.pid)"
watch_fleet 30 nas1_degraded
show_mail "degraded"
bold "and started again by hand"
run/nas1/current-system/bin/switch-to-configuration test >/dev/null
watch_fleet 30 all_converged_at
show_mail "recovered"

bold "the fleet page: every agent serves it, e.g. http://127.77.0.1:8470/ (gateway)"
# gateway shows the other hosts as they answered at its last liveness run (every 5 s here)
for i in $(seq 1 20); do
  curl -fsS http://127.77.0.1:8470/ | grep -q 'data-phase="degraded"' || break
  sleep 0.5
done
curl -fsS http://127.77.0.1:8470/ | grep -o '<tr class="host" data-host="[^"]*" data-phase="[^"]*"' | sed 's/^/  /'
if [ -n "${TEND_DEMO_SCREENSHOT:-}" ] && command -v chromium >/dev/null; then
  chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1100,1500 \
    --screenshot="$TEND_DEMO_SCREENSHOT" http://127.77.0.1:8470/ >/dev/null 2>&1
  echo "screenshot: $TEND_DEMO_SCREENSHOT"
fi
echo
echo "demo finished in $((SECONDS - start)) s; cleaning up"
