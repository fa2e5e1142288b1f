# NixOS module for the tend agent: `services.tend` writes the agent's
# configuration (/etc/tend/agent.yaml, keys of docs/agent-config.md) and runs
# `tend run` as a root systemd service that survives the switches it performs.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.tend;
  # RFC 42: settings is any value YAML can hold (hence no functions), checked by type.
  settingsFormat = pkgs.formats.yaml { };

  # The host keys NixOS generates; the ed25519 ones double as age identities (as sops-nix).
  ed25519HostKeys = map (k: k.path)
    (builtins.filter (k: (k.type or null) == "ed25519") config.services.openssh.hostKeys);

  # Services of this host with secrets, from the rendered inputs: those the agent must decrypt.
  servicesWithSecrets = builtins.filter
    (n: (cfg.inputs.services.${n}.secrets or [ ]) != [ ])
    (builtins.attrNames (cfg.inputs.services or { }));

  # Paths to secrets are plain strings on purpose: a Nix path literal
  # (./deploy_key) would be copied into the world-readable store.
  secretPath = description: mkOption {
    type = types.nullOr types.str;
    default = null;
    example = "/run/keys/tend-deploy-key";
    description = description + " A path on the host, given as a string; never a Nix path literal, which would copy the secret into the store.";
  };

  # Drop nulls (recursively) so absent options fall back to tend's own defaults.
  clean = v:
    if builtins.isAttrs v then
      builtins.listToAttrs (builtins.concatMap
        (n: let x = clean v.${n}; in if x == null then [ ] else [{ name = n; value = x; }])
        (builtins.attrNames v))
    else if builtins.isList v then map clean v
    else v;

  # Merge settings into the generated configuration, attribute sets key by key.
  merge = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (n: v: if a ? ${n} then merge a.${n} v else v) b
    else b;

  allowedSignersFile =
    if cfg.allowedSigners == null then null
    else if builtins.isList cfg.allowedSigners then
      "${pkgs.writeText "tend-allowed-signers" (builtins.concatStringsSep "\n" cfg.allowedSigners + "\n")}"
    else "${cfg.allowedSigners}";

  email = cfg.alerts.email;

  agentConfig = clean (merge {
    host = cfg.hostName;
    repository = {
      inherit (cfg.repository) url branch;
      ssh_key_file = cfg.repository.sshKeyFile;
      known_hosts = cfg.repository.knownHosts;
      token_file = cfg.repository.tokenFile;
      ca_file = if cfg.repository.caFile == null then null else "${cfg.repository.caFile}";
      allowed_signers = allowedSignersFile;
    };
    state_dir = "/var/lib/tend";
    age_identities = cfg.ageIdentityFiles;
    secrets_root = cfg.secretsRoot;
    # An absolute nix: the agent finds nix-env next to it and needs no PATH.
    nix.command = "${config.nix.package}/bin/nix";
    poll.interval = cfg.pollInterval;
    poll.drift_interval = cfg.driftInterval;
    system.reachability_timeout = cfg.reachabilityTimeout;
    probes.liveness_interval = cfg.livenessInterval;
    listen = { inherit (cfg.listen) address port; };
    webhook_secret_file = cfg.webhookSecretFile;
    alerts = if email.to == [ ] then null else {
      email = {
        inherit (email) to from username;
        smtp_url = email.smtpUrl;
        password_file = email.passwordFile;
      };
    };
  } cfg.settings);

  # JSON is YAML; tend's loader reads it as such.
  configText = builtins.toJSON agentConfig;

  storePaths = builtins.filter (p: p != null && lib.hasPrefix builtins.storeDir p) [
    cfg.repository.sshKeyFile cfg.repository.tokenFile cfg.webhookSecretFile email.passwordFile
  ];
in
{
  options.services.tend = {
    enable = mkEnableOption "the tend GitOps agent (polls the fleet repository and converges this host)";

    # pkgs.tend comes from the flake's overlay (nixosModules.default adds it).
    package = lib.mkPackageOption pkgs "tend" { };

    hostName = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      description = "This host's name in fleet.yaml.";
    };

    repository = {
      url = mkOption {
        type = types.str;
        example = "ssh://git@git.lab.example.net/ops/fleet.git";
        description = "The fleet repository (ssh://, https://, file://, user@host:path or a local path).";
      };
      branch = mkOption {
        type = types.str;
        default = "main";
        description = "The branch tend follows.";
      };
      sshKeyFile = secretPath "OpenSSH private key for ssh:// remotes.";
      knownHosts = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/etc/tend/known_hosts";
        description = "OpenSSH known_hosts file the server's key must be in.";
      };
      tokenFile = secretPath "File holding an HTTPS bearer token.";
      caFile = mkOption {
        type = types.nullOr (types.either types.path types.str);
        default = null;
        example = lib.literalExpression "./lab-ca.pem";
        description = ''
          PEM file of the CAs an https:// repository's certificate must chain to (public
          certificates only, so the store is fine). Unset: $SSL_CERT_FILE, else the system
          bundle /etc/ssl/certs/ca-certificates.crt, which security.pki.certificateFiles
          extends. HTTPS health probes take theirs from settings.probes.ca_file.
        '';
      };
    };

    pollInterval = mkOption {
      type = types.str;
      default = "60s";
      example = "5m";
      description = "How often the agent fetches the repository (tend duration: 500ms, 30s, 5m, 1h30m).";
    };

    driftInterval = mkOption {
      type = types.str;
      default = "10m";
      example = "0";
      description = ''
        While the branch head has not moved, a poll only asks the remote for its head
        (no reconcile); a full reconcile, which also puts back hand-edited files, runs
        at least this often. "0": every poll is a full reconcile.
      '';
    };

    reachabilityTimeout = mkOption {
      type = types.str;
      default = "60s";
      example = "2m";
      description = ''
        The reachability guard: after a switch the repository must answer again, and a
        host other hosts depend on must answer on its fleet.yaml agent address, within
        this; otherwise the switch is rolled back (a firewall or network change that cuts
        the host off would keep the fix from arriving). "0": not checked. When and how
        the host takes a new system and reboots is the fleet's, in fleet.yaml:
        `operation: switch | boot`, `reboot_window` and `apply_window` (docs/manifest.md).
      '';
    };

    livenessInterval = mkOption {
      type = types.str;
      default = "60s";
      example = "15s";
      description = ''
        How often the services' `health.liveness` probes run between reconciles. A failing
        one puts the host in phase `degraded` (one mail, one "recovered" mail when it
        answers again; nothing is rolled back) and sets `tend_probe_up` in /metrics. The
        same run refreshes what the fleet page (`GET /` on the agent's address) shows of
        the other hosts. "0": no liveness runs.
      '';
    };

    allowedSigners = mkOption {
      type = types.nullOr (types.either types.path (types.listOf types.str));
      default = null;
      example = [ "alice@example.net ssh-ed25519 AAAAC3Nza..." ];
      description = ''
        Who may push: an ssh-keygen allowed_signers file, or its lines. When set,
        every commit tend applies must carry a good SSH signature from one of them.
        Public keys only, so the store is the right place for it.
      '';
    };

    ageIdentityFiles = mkOption {
      type = types.listOf types.str;
      default = ed25519HostKeys;
      defaultText = lib.literalExpression
        ''map (k: k.path) (lib.filter (k: k.type == "ed25519") config.services.openssh.hostKeys)'';
      example = [ "/etc/tend/age.key" ];
      description = ''
        age identity files or OpenSSH Ed25519 private keys that decrypt this host's
        secrets. The default is the host's Ed25519 SSH host keys, as sops-nix does:
        encrypt to their age recipient (ssh-to-age of /etc/ssh/ssh_host_ed25519_key.pub
        with NixOS's default host keys). Evaluation fails when the rendered inputs
        (`inputs`) give this host's services secrets and the list is empty.
      '';
    };

    secretsRoot = mkOption {
      type = types.str;
      default = "/run/tend/secrets";
      description = "Decrypted secrets are read at <secretsRoot>/<service>/<name>: <secretsRoot> links to a generation under <secretsRoot>.d, a ramfs tend mounts (settings.secrets_storage = \"disk\" for a host without one).";
    };

    listen = {
      address = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = ''
          Address of the agent's HTTP endpoint (/healthz, /v1/status, /metrics, the webhook).
          Hosts whose services others depend on must be reachable at their fleet.yaml
          address: agents ask each other for /v1/status before switching.
        '';
      };
      port = mkOption {
        type = types.port;
        default = 8470;
        description = "Port of the HTTP endpoint (fleet.yaml's agent_port); 0 disables it.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open the endpoint's port in the firewall.";
      };
    };

    webhookSecretFile = secretPath "Shared secret of the push webhook (POST /v1/hook); without it the webhook is off.";

    alerts.email = {
      to = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Recipients of alert mails; empty disables mail alerts.";
      };
      from = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Sender address (required when `to` is set).";
      };
      smtpUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "smtp://mail.example.net:587";
        description = "smtp://host:port (STARTTLS required) or smtps://host:port.";
      };
      username = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "SMTP user name.";
      };
      passwordFile = secretPath "File holding the SMTP password.";
    };

    settings = mkOption {
      type = types.submodule { freeformType = settingsFormat.type; };
      default = { };
      example = { poll.jitter = "30s"; probes.deadline = "5m"; history_limit = 500; };
      description = ''
        Further keys of the agent configuration (docs/agent-config.md), merged over
        the ones generated from the options above (a null drops a generated key).
        Any value YAML can hold; unknown keys make the agent refuse to start, with
        the key's line and column.
      '';
    };

    inputsFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression "./.tend/hosts/db1.json";
      description = ''
        The per-host inputs tend renders into the exported revision before it builds
        the system (.tend/hosts/<host>.json at the root of the fleet repository).
        Set it from the host's configuration in the fleet flake; read it through
        `services.tend.inputs`.
      '';
    };

    inputs = mkOption {
      type = types.attrsOf types.anything;
      default =
        if cfg.inputsFile != null && builtins.pathExists cfg.inputsFile
        then builtins.fromJSON (builtins.readFile cfg.inputsFile)
        else { };
      defaultText = lib.literalExpression "builtins.fromJSON (builtins.readFile config.services.tend.inputsFile), or { } when it is absent";
      description = ''
        The rendered inputs of this host (services, databases to create, OIDC clients,
        secret paths...), for the rest of the host's configuration to read, e.g.
        `config.services.tend.inputs.services.grafana.database.password_file`.
        Empty when inputsFile is unset or absent (a build outside tend).
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = storePaths == [ ];
        message = "services.tend: secret files must not live in the Nix store: ${builtins.concatStringsSep ", " storePaths}";
      }
      {
        assertion = email.to == [ ] || (email.from != null && email.smtpUrl != null);
        message = "services.tend.alerts.email: `from` and `smtpUrl` are required when `to` is set.";
      }
      {
        assertion = servicesWithSecrets == [ ] || cfg.ageIdentityFiles != [ ];
        message = "services.tend: this host's services have secrets (${builtins.concatStringsSep ", " servicesWithSecrets}) but ageIdentityFiles is empty, so nothing can decrypt them: set services.tend.ageIdentityFiles, or add an ed25519 key to services.openssh.hostKeys (the default takes those).";
      }
    ];

    environment.etc."tend/agent.yaml".text = configText;
    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = lib.optional (cfg.listen.openFirewall && cfg.listen.port != 0) cfg.listen.port;

    systemd.services.tend = {
      description = "tend GitOps agent";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      # The agent runs switch-to-configuration in a transient unit of its own
      # (tend-switch-to-configuration, as nixos-rebuild does), so stopping, restarting or
      # killing this unit never kills a switch half-way; still, a switch must not restart
      # the agent that waits for it. After a switch that changed this unit, the agent
      # records the reconcile and exits 0; Restart=always then starts the new unit (a new
      # binary alone is re-executed in place). A commit that removes this unit must not
      # stop it mid-switch either (as system.autoUpgrade's nixos-upgrade.service).
      restartIfChanged = false;
      unitConfig."X-StopOnRemoval" = false;
      # A changed configuration file is picked up with SIGHUP (kept if invalid).
      reloadTriggers = [ configText ];
      # What system.autoUpgrade gives nixos-upgrade.service, so that what `nixos-rebuild`
      # builds on this host builds under tend too: nix fetches git+ssh flake inputs with git
      # and ssh (HOME: root's known_hosts and fetcher cache), reads nix.envVars and reaches
      # caches through networking.proxy. tend's own fetch links libgit2 and libssh2.
      path = [ config.nix.package pkgs.git config.programs.ssh.package ];
      environment = config.nix.envVars // { HOME = "/root"; } // config.networking.proxy.envVars;
      serviceConfig = {
        Type = "notify";
        # SIGTERM to the agent alone, which forwards it to its workers and finishes the
        # step it is in; what is left is killed only after TimeoutStopSec.
        KillMode = "mixed";
        ExecStart = "${cfg.package}/bin/tend run --config /etc/tend/agent.yaml";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "always";
        RestartSec = "10s";
        # The agent keeps pinging while a step (build, switch, probes) runs, up to 2 h.
        WatchdogSec = "5min";
        TimeoutStopSec = "2min";
        User = "root";
        Group = "root";
        StateDirectory = "tend";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "tend";
        RuntimeDirectoryMode = "0711";
        # The secrets under /run/tend/secrets must outlive an agent restart.
        RuntimeDirectoryPreserve = "yes";
        UMask = "0022";
        # Hardening that cannot break a switch. No mount namespace of any kind
        # (ProtectSystem, ProtectHome, PrivateTmp, PrivateDevices, ReadOnlyPaths,
        # ProtectKernel*): activation mounts /run/wrappers and special file systems,
        # writes /etc, /boot and sysctls, and must do so in the host's namespace.
        # No NoNewPrivileges, RestrictSUIDSGID, CapabilityBoundingSet or
        # SystemCallFilter: activation creates setuid wrappers, loads modules and
        # runs arbitrary activation scripts, exactly as nixos-rebuild would.
        RestrictRealtime = true;
        KeyringMode = "private";
        LimitCORE = 0;
      };
    };

    # Secrets at boot: /run is empty after a reboot, and the agent's first reconcile may wait
    # for the network, the repository or other hosts. This puts the applied commit's secrets
    # back from local state (the state directory's mirror and the identities) before sysinit
    # ends, so every ordinary service starts after it, as sops-nix and agenix decrypt during
    # activation. Nothing applied yet, or a failure: the boot goes on (the agent tries again).
    systemd.services.tend-secrets = {
      description = "tend: the applied commit's secrets, from local state";
      wantedBy = [ "sysinit.target" ];
      before = [ "sysinit.target" "tend.service" ];
      # owners first: on hosts whose users come from systemd-sysusers or userborn rather than
      # the activation script (ordering on a unit that is not there is a no-op)
      after = [ "local-fs.target" "systemd-sysusers.service" "userborn.service" ];
      unitConfig.DefaultDependencies = false;
      # a switch never needs it again: the agent installs secrets as it applies commits
      restartIfChanged = false;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${cfg.package}/bin/tend secret install --config /etc/tend/agent.yaml";
        User = "root";
        Group = "root";
        # directories under the secrets root must stay traversable for the services' users
        # (each secret's own mode is set explicitly)
        UMask = "0022";
        LimitCORE = 0;
      };
    };
  };
}
