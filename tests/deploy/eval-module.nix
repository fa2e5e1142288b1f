# The smallest honest evaluation of deploy/nixos-module.nix without nixpkgs:
# a hand-written `lib` (options carry a type whose `check` is enforced on every
# value set and every default), a fixed point for `config` (option defaults
# filled under the caller's values, as the module system would), mkIf resolved.
# Prints what a NixOS system would get from the module: the agent configuration
# file, the systemd unit, firewall ports and failed assertions.
# nix-instantiate --eval --strict --json eval-module.nix --arg module /path --argstr user '{...}'
#   [--argstr system '{...}'] [--arg userNix '{...}']
# user: services.tend as JSON; userNix: more of it, in Nix, over user (what JSON cannot
# say: packages, functions); system: the rest of the NixOS configuration the module reads
# (nix.envVars, networking.proxy.envVars, services.openssh.hostKeys), as JSON.
{ module, user ? "{}", hostName ? "db1", inputsDir ? null, system ? "{}", userNix ? { } }:
let
  b = builtins;
  fakeDrv = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; };

  mkType = name: check: { _type = "type"; inherit name check; };
  types = rec {
    bool = mkType "bool" b.isBool;
    str = mkType "str" b.isString;
    int = mkType "int" b.isInt;
    attrs = mkType "attribute set" b.isAttrs;
    port = mkType "port" (v: b.isInt v && v >= 0 && v <= 65535);
    path = mkType "path" (v: b.isPath v || (b.isString v && builtins.substring 0 1 v == "/"));
    package = mkType "package" (v: b.isAttrs v && v ? outPath);
    anything = mkType "anything" (v: true);
    nullOr = t: mkType "null or ${t.name}" (v: v == null || t.check v);
    either = t1: t2: mkType "${t1.name} or ${t2.name}" (v: t1.check v || t2.check v);
    listOf = t: mkType "list of ${t.name}" (v: b.isList v && b.all t.check v);
    attrsOf = t: mkType "attribute set of ${t.name}" (v: b.isAttrs v && b.all t.check (b.attrValues v));
    # Only the RFC 42 form: a freeform type and no declared options. Each attribute is
    # checked against the freeform type (fill below), so an error names it.
    submodule = m:
      if !(b.isAttrs m) || (m.options or { }) != { } || !(m ? freeformType)
      then throw "eval-module.nix: only `submodule { freeformType = ...; }' is modelled"
      else mkType "submodule" b.isAttrs // { inherit (m) freeformType; };
    # nixpkgs' (pkgs.formats.yaml { }).type: null, bool, int, float, str, path (a
    # derivation coerces to one), and attribute sets and lists of these; no functions.
    yamlValue = mkType "YAML value" (v:
      v == null || b.isBool v || b.isInt v || b.isFloat v || b.isString v || b.isPath v
      || (b.isList v && b.all yamlValue.check v)
      || (b.isAttrs v && (v ? outPath || b.all yamlValue.check (b.attrValues v))));
  };
  lib = {
    inherit types;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = what: lib.mkOption { type = types.bool; default = false; description = "Whether to enable ${what}."; };
    # As nixpkgs' (24.05): pkgs.<default> (an attribute path), a throw when it is missing.
    mkPackageOption = pkgs: name:
      { nullable ? false, default ? name, example ? null, extraDescription ? "", pkgsText ? "pkgs" }:
      let
        name' = if b.isList name then lib.last name else name;
        attrPath = if b.isList default then default else [ default ];
        dotted = b.concatStringsSep "." attrPath;
      in
      lib.mkOption ({
        type = if nullable || default == null then types.nullOr types.package else types.package;
        description = "The ${name'} package to use."
          + (if extraDescription == "" then "" else " " + extraDescription);
      } // (if default == null then { default = null; defaultText = lib.literalExpression "null"; } else {
        default = b.foldl' (set: n: set.${n} or (throw "${dotted} cannot be found in ${pkgsText}")) pkgs attrPath;
        defaultText = lib.literalExpression "${pkgsText}.${dotted}";
      }) // (if example == null then { } else { inherit example; }));
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = c: x: if c then [ x ] else [ ];
    hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
    last = l: b.elemAt l (b.length l - 1);
  };
  pkgs = {
    tend = fakeDrv "tend-0.1.0";
    coreutils = fakeDrv "coreutils";
    git = fakeDrv "git-2.44.0";
    openssh = fakeDrv "openssh-9.7p1";
    writeText = name: text: b.toFile name text;
    formats.yaml = { }: { type = types.yamlValue; };
  };

  isOption = v: b.isAttrs v && (v._type or null) == "option";
  # Values set by the caller over defaults, type-checked; unknown options refused.
  fill = prefix: opts: given:
    let
      unknown = b.filter (n: !(opts ? ${n})) (b.attrNames given);
      dot = n: if prefix == "" then n else "${prefix}.${n}";
      one = n: o:
        let
          p = dot n;
          v = if given ? ${n} then given.${n}
              else if o ? default then o.default
              else throw "The option `${p}' is used but not defined.";
        in
        if isOption o then checked p o.type v
        else fill p o (given.${n} or { });
    in
    if unknown != [ ] then throw "The option `${dot (b.head unknown)}' does not exist."
    else b.mapAttrs one opts;
  checked = p: t: v:
    if !(t.check v) then throw "The option `${p}' is not of type `${t.name}'."
    else if t ? freeformType then b.mapAttrs (n: checked "${p}.${n}" t.freeformType) v
    else v;

  # Right over left, attribute sets key by key (packages are values, not sets).
  update = l: r:
    if b.isAttrs l && b.isAttrs r && !(l ? outPath) && !(r ? outPath)
    then l // b.mapAttrs (n: v: if l ? ${n} then update l.${n} v else v) r
    else r;

  # Paths in the caller's JSON are strings; inputsFile may point into inputsDir.
  userCfg = update (b.fromJSON user) userNix // (if inputsDir == null then { } else {
    inputsFile = inputsDir + "/hosts/${hostName}.json";
  });

  # The NixOS options the module reads, with NixOS's types (nix.envVars and
  # networking.proxy.envVars are `attrs' there) and defaults.
  nixos = {
    networking.hostName = lib.mkOption { type = types.str; default = hostName; };
    networking.proxy.envVars = lib.mkOption { type = types.attrs; default = { }; };
    nix.package = lib.mkOption { type = types.package; default = fakeDrv "nix-2.18"; };
    nix.envVars = lib.mkOption { type = types.attrs; default = { }; };
    programs.ssh.package = lib.mkOption { type = types.package; default = pkgs.openssh; };
    services.openssh.hostKeys = lib.mkOption {
      type = types.listOf types.attrs;
      default = [
        { type = "rsa"; bits = 4096; path = "/etc/ssh/ssh_host_rsa_key"; }
        { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; }
      ];
    };
  };
  rest = fill "" nixos (b.fromJSON system);

  evaluated = import module { inherit config lib pkgs; };
  config = rest // {
    services = rest.services // {
      tend = fill "services.tend" evaluated.options.services.tend userCfg;
    };
  };

  resolve = v:
    if b.isAttrs v && (v._type or null) == "if" then (if v.condition then resolve v.content else { })
    else if b.isAttrs v && !(v ? outPath) then b.mapAttrs (_: resolve) v
    else v;
  out = resolve evaluated.config;
in
{
  enabled = out ? systemd;
  configFile = out.environment.etc."tend/agent.yaml".text or null;
  unit = out.systemd.services.tend or null;
  secretsUnit = out.systemd.services.tend-secrets or null;
  firewallPorts = out.networking.firewall.allowedTCPPorts or [ ];
  systemPackages = out.environment.systemPackages or [ ];
  failedAssertions = map (a: a.message) (b.filter (a: !a.assertion) (out.assertions or [ ]));
  tendPackage = "${pkgs.tend}";
  nixPackage = "${config.nix.package}";
  gitPackage = "${pkgs.git}";
  sshPackage = "${config.programs.ssh.package}";
  inputs = config.services.tend.inputs;
}
