# The homelab's flake, in demo form: no inputs (no nixpkgs), so it builds offline
# in a second. Each host's "NixOS system" is a small derivation built from the
# inputs tend renders into .tend/hosts/<host>.json, so its store path changes
# exactly when that host's inputs change: all of them but "commit" and "revision",
# which change at every commit and would make every commit a new system on every
# host (a real flake may set system.configurationRevision from "revision", knowing
# that: docs/operator-guide.md).
# Its bin/switch-to-configuration, under
# $TEND_DEMO_ROOT/<host>, installs the host's config and (re)starts loopback
# stand-ins answering the health probes of the host's services (nix/standin.py).
# A real fleet's flake would instead build nixpkgs.lib.nixosSystem per host and
# read the same file through services.tend.inputsFile (deploy/nixos-module.nix).
{
  description = "homelab fleet (tend demo systems)";
  outputs = { self }:
    let
      # Flakes cannot ask which machine evaluates them: the demo writes nix/system.txt.
      system =
        if builtins.pathExists ./nix/system.txt
        then builtins.replaceStrings [ "\n" ] [ "" ] (builtins.readFile ./nix/system.txt)
        else "x86_64-linux";
      hostsDir = ./.tend/hosts;
      hostNames =
        if builtins.pathExists hostsDir
        then map (f: builtins.replaceStrings [ ".json" ] [ "" ] f)
          (builtins.filter (f: builtins.match ".*\\.json" f != null)
            (builtins.attrNames (builtins.readDir hostsDir)))
        else [ ];
      versions = import ./nix/packages.nix;
      # A service's package: a stand-in named as nixpkgs names it, so that the system's
      # closure says which version of it the host runs.
      mkPackage = name: derivation {
        name = "${name}-${versions.${name} or "0"}";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "echo ${name} > $out" ];
      };
      mkHost = host:
        let
          hostJson = builtins.toJSON (builtins.removeAttrs
            (builtins.fromJSON (builtins.readFile (hostsDir + "/${host}.json"))) [ "commit" "revision" ]);
          inputs = (builtins.fromJSON hostJson).services or { };
          # One unit a service, as NixOS would write it: ExecStart names the package, and
          # X-Restart-Triggers changes with the service's inputs (a changed setting restarts it).
          units = map (s: "${s}=${mkPackage s}=${builtins.hashString "sha256" (builtins.toJSON inputs.${s})}")
            (builtins.attrNames inputs);
        in {
        config.system.build.toplevel = derivation {
          name = "homelab-demo-system-${host}";
          inherit system hostJson;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          hostName = host;
          switchScript = ./nix/switch.sh;
          standinScript = ./nix/standin.py;
          units = builtins.concatStringsSep " " units;
          args = [ "-c" ''
            set -e
            mkdir -p "$out/bin" "$out/etc/systemd/system"
            for u in $units; do
              name=''${u%%=*}; rest=''${u#*=}
              printf '[Unit]\nDescription=%s (demo stand-in)\nX-Restart-Triggers=%s\n\n[Service]\nExecStart=%s\n' \
                "$name" "''${rest#*=}" "''${rest%%=*}" > "$out/etc/systemd/system/$name.service"
            done
            printf '%s' "$hostJson" > "$out/host.json"
            cp "$standinScript" "$out/bin/standin.py"
            sed -e "s|@out@|$out|g" -e "s|@host@|$hostName|g" "$switchScript" > "$out/bin/switch-to-configuration"
            chmod 0755 "$out/bin/switch-to-configuration"
          '' ];
        };
      };
    in
    {
      nixosConfigurations = builtins.listToAttrs
        (map (h: { name = h; value = mkHost h; }) hostNames);
    };
}
