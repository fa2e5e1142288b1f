# The host lab's fleet flake (tests/host/): every host's "NixOS system" is a small derivation with
# what tend and systemd see of a real one: etc/systemd/system/ with the host's units, a kernel
# file, and bin/switch-to-configuration, a stand-in for NixOS's (switch-to-configuration.py, whose
# header says what it does and leaves out). No inputs: it builds in the guest's nix sandbox,
# offline, in about a second.
#
# A service's settings in its manifest decide its unit:
#   lab_port: N           an HTTP service on 127.0.0.1:N (lab-<service>.service, Type=simple)
#   lab_status, lab_body  what it answers (200, "ok")
#   lab_body_file: PATH   it answers PATH's content as read when it started ("no-secret" when
#                         PATH was missing then): a service that needs its secret at start
#   lab_delay: S          it listens only S seconds after it started (a slow first start)
#   lab_broken: true      its unit fails to start (a oneshot running /bin/false)
#   lab_crash: "MSG"      its unit starts, then 3 s later logs MSG and exits 1 (Type=simple)
#   lab_user: NAME        its unit runs as NAME, a system user the system's activation creates
#                         (as a NixOS module's users.users.NAME)
#   lab_restart_if_changed: false    X-RestartIfChanged=false
#   lab_switch_sleep: S   switch-to-configuration sleeps S seconds before it starts units
#   lab_kernel: "K"       the system's kernel (a change needs a reboot)
#   lab_init: "V"         the system's init-interface-version (a change: switch exits 100)
#   lab_firewall: "M"     lab-firewall.service: nft rejects what the match M ("ip daddr
#                         10.0.2.2 tcp dport 9418") selects of what the guest sends out
# The repository's lab/tend.service (made from deploy/nixos-module.nix's unit) is the system's
# tend.service, so a commit can change tend's own unit.
{
  description = "tend host lab fleet";
  outputs = { self }:
    let
      b = builtins;
      hostsDir = ./.tend/hosts;
      hostNames =
        if b.pathExists hostsDir
        then map (f: b.replaceStrings [ ".json" ] [ "" ] f)
          (b.filter (f: b.match ".*\\.json" f != null) (b.attrNames (b.readDir hostsDir)))
        else [ ];
      tendUnit = if b.pathExists ./lab/tend.service then b.readFile ./lab/tend.service else null;

      unitText = name: s:
        let
          restart = if (s.lab_restart_if_changed or true) then "" else "X-RestartIfChanged=false\n";
          user = if s ? lab_user then "User=${s.lab_user}\n" else "";
          exec =
            if s.lab_broken or false
            then "Type=oneshot\nExecStart=/bin/false\n"
            else if s ? lab_crash
            then "Type=simple\nExecStart=/usr/bin/python3 ${./service.py} crash \"${s.lab_crash}\"\n"
            else "Type=simple\n${user}ExecStart=/usr/bin/python3 ${./service.py} ${toString s.lab_port} "
              + "${toString (s.lab_status or 200)} ${if s ? lab_body_file then "@" + s.lab_body_file else s.lab_body or "ok"} "
              + "${toString (s.lab_delay or 0)}\n";
        in
        "[Unit]\nDescription=lab service ${name}\n${restart}\n[Service]\n${exec}\n[Install]\nWantedBy=multi-user.target\n";

      mkHost = host:
        let
          # all the inputs but "commit" and "revision": with them every commit would be a new system
          json = b.toJSON (b.removeAttrs (b.fromJSON (b.readFile (hostsDir + "/${host}.json")))
            [ "commit" "revision" ]);
          services = (b.fromJSON json).services or { };
          settingsOf = n: services.${n}.settings or { };
          withUnit = b.filter (n: (settingsOf n) ? lab_port || (settingsOf n).lab_broken or false
            || (settingsOf n) ? lab_crash)
            (b.attrNames services);
          users = b.filter (u: u != null) (map (n: (settingsOf n).lab_user or null) (b.attrNames services));
          pick = key: default:
            let vals = b.filter (v: v != null) (map (n: (settingsOf n).${key} or null) (b.attrNames services));
            in if vals == [ ] then default else b.head vals;
          firewall = pick "lab_firewall" null;
          firewallUnit = "[Unit]\nDescription=lab firewall\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            + "ExecStart=/usr/sbin/nft add table inet labfw\n"
            + "ExecStart=/usr/sbin/nft \"add chain inet labfw out { type filter hook output priority 0 ; }\"\n"
            + "ExecStart=/usr/sbin/nft \"add rule inet labfw out ${firewall} reject\"\n"
            + "ExecStop=/usr/sbin/nft delete table inet labfw\n\n[Install]\nWantedBy=multi-user.target\n";
          units = map (n: { name = "lab-${n}.service"; text = unitText n (settingsOf n); }) withUnit
            ++ (if tendUnit == null then [ ] else [ { name = "tend.service"; text = tendUnit; } ])
            ++ (if firewall == null then [ ] else [ { name = "lab-firewall.service"; text = firewallUnit; } ]);
          unitEnv = b.listToAttrs (b.genList (i: { name = "unit${toString i}"; value = (b.elemAt units i).text; })
            (b.length units));
          writeUnits = b.concatStringsSep "\n" (b.genList (i:
            "printf '%s' \"$unit${toString i}\" > \"$out/etc/systemd/system/${(b.elemAt units i).name}\"")
            (b.length units));
        in
        {
          config.system.build.toplevel = derivation ({
            name = "lab-system-${host}";
            system = "x86_64-linux";
            builder = "/bin/sh";
            hostJson = json;
            kernel = "lab-kernel-${toString (pick "lab_kernel" "1")}";
            switchSleep = toString (pick "lab_switch_sleep" 0);
            initVersion = toString (pick "lab_init" "systemd");
            users = b.concatStringsSep "\n" users;
            stc = ./switch-to-configuration.py;
            args = [ "-c" ''
              set -e
              mkdir -p "$out/bin" "$out/etc/systemd/system"
              printf '%s' "$hostJson" > "$out/host.json"
              printf '%s' "$kernel" > "$out/kernel"
              printf '%s' "$switchSleep" > "$out/switch-sleep"
              printf '%s' "$initVersion" > "$out/init-interface-version"
              printf '%s' "$users" > "$out/users"
              ${writeUnits}
              sed -e "s|@out@|$out|g" "$stc" > "$out/bin/switch-to-configuration"
              chmod 0755 "$out/bin/switch-to-configuration"
            '' ];
          } // unitEnv);
        };
    in
    {
      nixosConfigurations = b.listToAttrs (map (h: { name = h; value = mkHost h; }) hostNames);
    };
}
