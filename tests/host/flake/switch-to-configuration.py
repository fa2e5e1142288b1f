#!/usr/bin/python3
# switch-to-configuration of a host-lab system (@out@): a stand-in for NixOS's, doing against the
# guest's real systemd what NixOS's (switch-to-configuration-ng) does that matters to tend:
# - takes /run/nixos/switch-to-configuration.lock with LOCK_EX|LOCK_NB ("Could not acquire lock",
#   exit 11 when it is held);
# - `boot` only makes the system the boot default (the profile, which the caller set, is what
#   the lab's boot loader boots) and exits 0; both sync the disks first, as -ng syncs the store;
# - exits 100 before touching any unit when the system's init-interface-version differs from the
#   running one's ("won't take effect until you reboot");
# - compares the running system's units with this system's: a changed active unit is stopped
#   before activation and started after, unless X-RestartIfChanged=false ("NOT restarting");
#   a removed active unit is stopped unless X-StopOnRemoval=false; new units and inactive wanted
#   ones start with multi-user.target, as NixOS starts its active targets again;
# - records the units it will start and restart in /run/nixos/start-list and restart-list before
#   stopping anything and deletes each list when done, so an interrupted run is resumed by the next;
# - activation points /run/current-system at this system and links its units into
#   /etc/systemd/system (links into the store, as NixOS's /etc/static), then daemon-reload,
#   restarts, starts;
# - "warning: the following units failed: ..." and exit 4 when a unit of this system failed.
# - activation creates the system's users (the file users, a name a line) that do not exist
#   yet, as NixOS's update-users-groups does, before any unit starts;
# Left out: the boot loader itself, the rest of the activation script's work (/etc, wrappers),
# reloads, sockets, mounts, swaps, user units and systemd's re-exec. `lab_switch_sleep` (the
# file switch-sleep) makes it wait between activation and starting units, for the tests that
# interrupt a switch there. `boot-activate` is the lab boot's activation (tests/host/guest).
import fcntl
import os
import subprocess
import sys
import time

OUT = "@out@"
UNIT_DIR = "/etc/systemd/system"
WANTS_DIR = UNIT_DIR + "/multi-user.target.wants"
MANAGED = UNIT_DIR + "/.lab-system-units"
RUN = "/run/nixos"
START_LIST, RESTART_LIST = RUN + "/start-list", RUN + "/restart-list"


def say(*args):
    print(*args, file=sys.stderr, flush=True)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_list(path):
    return [line for line in (read(path, "") or "").split("\n") if line]


def unit_setting(text, key):
    for line in (text or "").split("\n"):
        if line.strip().startswith(key + "="):
            return line.split("=", 1)[1].strip().lower()
    return None


def active(unit):
    r = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True)
    return r.stdout.strip() in ("active", "activating", "reloading")


def systemctl(*args):
    return subprocess.run(["systemctl", *args]).returncode


def lock():
    os.makedirs(RUN, mode=0o755, exist_ok=True)
    f = open(RUN + "/switch-to-configuration.lock", "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("Could not acquire lock")
        sys.exit(11)
    return f


def new_units():
    d = OUT + "/etc/systemd/system"
    return {n: read(os.path.join(d, n)) for n in sorted(os.listdir(d))} if os.path.isdir(d) else {}


def install(units, old_names):
    for name in old_names:
        if name not in units:
            for p in (os.path.join(UNIT_DIR, name), os.path.join(WANTS_DIR, name)):
                if os.path.lexists(p):
                    os.unlink(p)
    os.makedirs(WANTS_DIR, exist_ok=True)
    for name, text in units.items():
        # a link into this system, as NixOS's /etc/systemd/system -> /etc/static -> the store:
        # a changed unit resolves to another store path (tend watches its own unit that way)
        path, tmp = os.path.join(UNIT_DIR, name), os.path.join(UNIT_DIR, "." + name + ".lab-tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.join(OUT, "etc/systemd/system", name), tmp)
        os.replace(tmp, path)
        link = os.path.join(WANTS_DIR, name)
        if unit_setting(text, "WantedBy") == "multi-user.target" and not os.path.lexists(link):
            os.symlink(os.path.join(UNIT_DIR, name), link)
    write(MANAGED, "".join(n + "\n" for n in sorted(units)))


def create_users():
    import pwd
    for name in read_list(OUT + "/users"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            say("creating system user '%s'" % name)
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", name], check=True)


def switch(action):
    held = lock()
    if action in ("switch", "boot"):
        say("updating the boot loader: the lab boots the system profile's default")
    if action != "boot-activate" and not os.environ.get("NIXOS_NO_SYNC"):
        os.sync()  # as -ng's syncfs of /nix/store: what nix built reaches the disk
    if action == "boot":
        return 0
    cur = read("/run/current-system/init-interface-version")
    new = read(OUT + "/init-interface-version")
    if action != "boot-activate" and cur is not None and new is not None and cur != new:
        say("Warning: the new NixOS configuration has an 'init' that is incompatible with the current "
            "configuration. The new configuration won't take effect until you reboot the system.")
        return 100
    units = new_units()
    old_names = read_list(MANAGED)
    start, restart = read_list(START_LIST), read_list(RESTART_LIST)
    stop, not_restarting = [], []
    for name in sorted(set(old_names) | set(units)):
        old_text = read(os.path.join(UNIT_DIR, name))
        if old_text is None or not active(name):
            continue
        if name not in units:
            if unit_setting(old_text, "X-StopOnRemoval") != "false":
                stop.append(name)
        elif old_text != units[name]:
            if unit_setting(old_text, "X-RestartIfChanged") == "false" or \
               unit_setting(units[name], "X-RestartIfChanged") == "false":
                not_restarting.append(name)
            else:
                stop.append(name)
                if name not in start:
                    start.append(name)
    if action == "dry-activate":
        say("would stop: " + ", ".join(stop))
        say("would start: " + ", ".join(start))
        return 0
    os.makedirs(RUN, exist_ok=True)
    write(START_LIST, "".join(u + "\n" for u in start))
    write(RESTART_LIST, "".join(u + "\n" for u in restart))
    if stop:
        say("stopping the following units: " + ", ".join(stop))
        systemctl("stop", *stop)
    if not_restarting:
        say("NOT restarting the following changed units: " + ", ".join(not_restarting))
    say("activating the configuration...")
    tmp = "/run/current-system.lab-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(OUT, tmp)
    os.replace(tmp, "/run/current-system")
    create_users()
    install(units, old_names)
    pause = float(read(OUT + "/switch-sleep", "0") or 0)
    if pause > 0 and action != "boot-activate":
        say("sleeping %gs between activation and starting units (lab_switch_sleep)" % pause)
        time.sleep(pause)
    say("reloading the systemd manager...")
    systemctl("daemon-reload")
    failed = []
    for name in restart:
        say("restarting " + name)
        if systemctl("restart", name) != 0:
            failed.append(name)
    os.unlink(RESTART_LIST)
    if start:
        say("starting the following units: " + ", ".join(start))
    # At boot the units start with the boot (nixos-boot runs before some of them): no waiting.
    start_args = ["start", "--no-block"] if action == "boot-activate" else ["start"]
    for name in start + ["multi-user.target"]:
        if systemctl(*start_args, name) != 0 and name not in failed:
            failed.append(name)
    os.unlink(START_LIST)
    for name in units if action != "boot-activate" else []:
        if subprocess.run(["systemctl", "is-failed", "-q", name]).returncode == 0 and name not in failed:
            failed.append(name)
    del held
    if failed:
        say("warning: the following units failed: " + ", ".join(failed))
        subprocess.run(["systemctl", "status", "--no-pager", "--full", *failed])
        return 4
    return 0


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action not in ("switch", "boot", "test", "dry-activate", "boot-activate"):
        say("Usage: switch-to-configuration [switch|boot|test|dry-activate]")
        return 1
    if os.geteuid() != 0:
        say("This program does not support being run outside of the root user")
        return 1
    return switch(action)


if __name__ == "__main__":
    sys.exit(main())
