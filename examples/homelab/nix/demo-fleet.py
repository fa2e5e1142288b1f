#!/usr/bin/env python3
# Derive the demo fleet from examples/homelab so that five "hosts" run on one
# machine without root: host addresses 10.10.0.N become 127.77.0.N (agents find
# each other on loopback), probes of privileged ports move up by 10000,
# pg_isready probes become TCP probes, and secrets keep their real owners (grafana,
# postgres, ...) when TEND_DEMO_USERS=1 (run-demo.sh as root: the demo systems'
# activation creates those users, as NixOS's does, and the demo removes them at
# its end), else they are owned by the user running the demo. (systemctl comes
# from nix/demo-bin/systemctl on the agents' PATH.)
# Startup probes get at most 5 tries, 1s apart, after 1s of grace: the demo is quick.
# Text edits only (stdlib), so comments and layout survive.
# usage: demo-fleet.py SRC DEST [SYSTEM]   (DEST must not exist)
import grp
import os
import pwd
import re
import shutil
import sys


def low_port(m):
    port = int(m.group(2))
    return "%s%d" % (m.group(1), port + 10000 if port < 1024 else port)


def rewrite(text, user, group):
    text = text.replace("10.10.0.", "127.77.0.")
    out = []
    startup = False
    for line in text.splitlines(keepends=True):
        if re.match(r"\s*(startup|liveness):", line):
            startup = "startup" in line
        if startup:
            line = re.sub(r"^(\s*interval: )(\d+)s\s*$", lambda m: m.group(1) + "1s\n" if int(m.group(2)) > 1 else m.group(0), line)
        m = re.match(r'(\s*- )command: \[pg_isready, --host, ([\d.]+), --port, "?(\d+)"?\]', line)
        if m:
            line = "%stcp: {host: %s, port: %s}\n" % (m.group(1), m.group(2), m.group(3))
        if "tcp:" in line or "http:" in line:
            line = re.sub(r"(port: )(\d+)", low_port, line)
            line = re.sub(r"(://[\d.]+:)(\d+)", low_port, line)
        # Demo timing: a broken service is noticed in seconds, not minutes.
        line = re.sub(r"^(\s*retries: )(\d+)", lambda m: m.group(1) + str(min(int(m.group(2)), 5)), line)
        line = re.sub(r"^(\s*grace: )\S+", lambda m: m.group(1) + "1s", line)
        if user is not None:
            line = re.sub(r"^(\s*owner: ).*$", lambda m: m.group(1) + user, line)
            line = re.sub(r"^(\s*group: ).*$", lambda m: m.group(1) + group, line)
        out.append(line)
    return "".join(out)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: demo-fleet.py SRC DEST [SYSTEM]")
    src, dest = sys.argv[1], sys.argv[2]
    system = sys.argv[3] if len(sys.argv) == 4 else os.uname().machine + "-linux"
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    if os.environ.get("TEND_DEMO_USERS") == "1":
        user = group = None   # the real owners: the systems' activation creates them
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".tend", ".git", "system.txt"))
    for dirpath, _, files in os.walk(dest):
        for f in files:
            if f.endswith(".yaml"):
                p = os.path.join(dirpath, f)
                with open(p) as fh:
                    text = fh.read()
                with open(p, "w") as fh:
                    fh.write(rewrite(text, user, group))
    with open(os.path.join(dest, "nix", "system.txt"), "w") as fh:
        fh.write(system + "\n")


if __name__ == "__main__":
    main()
