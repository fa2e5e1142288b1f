#!/usr/bin/env python3
# tend.service for a lab guest, made from what deploy/nixos-module.nix declares (the JSON of
# tests/deploy/eval-module.nix on stdin), the way NixOS writes a unit from systemd.services.<name>:
# unitConfig, description, after/wants into [Unit]; serviceConfig, restartIfChanged=false as
# X-RestartIfChanged=false, environment as Environment= into [Service]; wantedBy into [Install].
# Store paths of the stand-in packages become the guest's: tend at /usr/local/bin/tend,
# coreutils' kill at /bin/kill. `path` (nix, git, ssh) is left out: the guest has no store,
# and its default PATH already finds its own nix, git and ssh in /usr/bin.
# usage: unit-from-module.py [--key KEY] [EXTRA_UNIT_LINE...] < eval.json > tend.service
# KEY: the evaluation's unit to write: unit (tend.service, the default) or secretsUnit
# (tend-secrets.service).
import json
import sys

args = sys.argv[1:]
key = "unit"
if args[:1] == ["--key"]:
    key, args = args[1], args[2:]
doc = json.load(sys.stdin)
unit, tend_pkg = doc[key], doc["tendPackage"]


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def path_of(text):
    text = text.replace(tend_pkg + "/bin/tend", "/usr/local/bin/tend")
    # any other stand-in store path (coreutils): the guest's own tool
    out = []
    for word in text.split(" "):
        if word.startswith("/nix/store/") and "/bin/" in word:
            word = "/bin/" + word.rsplit("/bin/", 1)[1]
        out.append(word)
    return " ".join(out)


lines = ["# Made by tests/host/unit-from-module.py from deploy/nixos-module.nix", "[Unit]"]
lines.append("Description=" + unit.get("description", "tend"))
for field, name in (("after", "After"), ("before", "Before"), ("wants", "Wants")):
    for v in unit.get(field, []):
        lines.append("%s=%s" % (name, v))
for k, v in sorted(unit.get("unitConfig", {}).items()):
    lines.append("%s=%s" % (k, value(v)))
lines.append("")
lines.append("[Service]")
if unit.get("restartIfChanged", True) is False:
    lines.append("X-RestartIfChanged=false")
# quoted as NixOS quotes them (toJSON of "NAME=value"); null values are not set
for k, v in sorted(unit.get("environment", {}).items()):
    if v is not None:
        lines.append("Environment=" + json.dumps("%s=%s" % (k, path_of(value(v)))))
for k, v in sorted(unit.get("serviceConfig", {}).items()):
    lines.append("%s=%s" % (k, path_of(value(v))))
lines.extend(args)
lines.append("")
lines.append("[Install]")
for v in unit.get("wantedBy", []):
    lines.append("WantedBy=" + v)
print("\n".join(lines))
