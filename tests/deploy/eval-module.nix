# The smallest honest evaluation of deploy/nixos-module.nix without nixpkgs:
# a hand-written `lib` (options carry a type whose `check` is enforced on every
# value set and every default), a fixed point for `config` (option defaults
# filled under the caller's values, as the module system would), mkIf resolved.
# Prints what a NixOS system would get from the module: the agent configuration
# file, the systemd unit, firewall ports and failed assertions.
# nix-instantiate --eval --strict --json eval-module.nix --arg module /path --argstr user '{...}'
{ module, user ? "{}", hostName ? "db1", inputsDir ? null }:
let
  b = builtins;
  fakeDrv = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; };

  mkType = name: check: { _type = "type"; inherit name check; };
  types = rec {
    bool = mkType "bool" b.isBool;
    str = mkType "str" b.isString;
    int = mkType "int" b.isInt;
    port = mkType "port" (v: b.isInt v && v >= 0 && v <= 65535);
    path = mkType "path" (v: b.isPath v || (b.isString v && builtins.substring 0 1 v == "/"));
    package = mkType "package" (v: b.isAttrs v && v ? outPath);
    anything = mkType "anything" (v: true);
    nullOr = t: mkType "null or ${t.name}" (v: v == null || t.check v);
    either = t1: t2: mkType "${t1.name} or ${t2.name}" (v: t1.check v || t2.check v);
    listOf = t: mkType "list of ${t.name}" (v: b.isList v && b.all t.check v);
    attrsOf = t: mkType "attribute set of ${t.name}" (v: b.isAttrs v && b.all t.check (b.attrValues v));
  };
  lib = {
    inherit types;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = what: lib.mkOption { type = types.bool; default = false; description = "Whether to enable ${what}."; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = c: x: if c then [ x ] else [ ];
    hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
  };
  pkgs = {
    tend = fakeDrv "tend-0.1.0";
    coreutils = fakeDrv "coreutils";
    writeText = name: text: b.toFile name text;
  };

  isOption = v: b.isAttrs v && (v._type or null) == "option";
  # Values set by the caller over defaults, type-checked; unknown options refused.
  fill = prefix: opts: given:
    let
      unknown = b.filter (n: !(opts ? ${n})) (b.attrNames given);
      one = n: o:
        let
          p = "${prefix}.${n}";
          v = if given ? ${n} then given.${n}
              else if o ? default then o.default
              else throw "The option `${p}' is used but not defined.";
        in
        if isOption o then
          (if o.type.check v then v
           else throw "The option `${p}' is not of type `${o.type.name}'.")
        else fill p o (given.${n} or { });
    in
    if unknown != [ ] then throw "The option `${prefix}.${b.head unknown}' does not exist."
    else b.mapAttrs one opts;

  # Paths in the caller's JSON are strings; inputsFile may point into inputsDir.
  userCfg = b.fromJSON user // (if inputsDir == null then { } else {
    inputsFile = inputsDir + "/hosts/${hostName}.json";
  });

  evaluated = import module { inherit config lib pkgs; };
  config = {
    networking.hostName = hostName;
    nix.package = fakeDrv "nix-2.18";
    services.tend = fill "services.tend" evaluated.options.services.tend userCfg;
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
  inputs = config.services.tend.inputs;
}
