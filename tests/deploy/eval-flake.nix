# Evaluates the top-level flake.nix's outputs against a stand-in nixpkgs (no
# nixpkgs here): package attributes are their names, mkDerivation and mkShell
# return their arguments. Shows what each output would hand to nixpkgs.
# nix-instantiate --eval --strict --json eval-flake.nix --arg flake /path/to/flake.nix
{ flake }:
let
  b = builtins;
  genAttrs = names: f: b.listToAttrs (map (n: { name = n; value = f n; }) names);
  names = [ "cmake" "pkg-config" "libgit2" "libyaml" "curl" "jansson" "libssh2" "libsodium"
            "openssl" "libmicrohttpd" "zlib" "cmocka" "git" "openssh" "age" "caddy" "nix"
            "python3" "clang" "gdb" ];
  fakePkgs = system: genAttrs names (n: n) // {
    inherit system;
    python3Packages.aiosmtpd = "python3Packages.aiosmtpd";
    stdenv.mkDerivation = a: a // { drv = "mkDerivation"; };
    mkShell = a: a // { drv = "mkShell"; };
  };
  nixpkgs = {
    lib = { inherit genAttrs; platforms.linux = [ "x86_64-linux" "aarch64-linux" ]; };
    legacyPackages = genAttrs [ "x86_64-linux" "aarch64-linux" "i686-linux" ] fakePkgs;
  };
  self = outputs // { outPath = b.dirOf flake; };
  outputs = (import flake).outputs { inherit self nixpkgs; };
  pkg = outputs.packages.x86_64-linux.default;
  moduleResult = outputs.nixosModules.default { };
in
{
  inputs = b.attrNames (import flake).inputs;
  systems = b.attrNames outputs.packages;
  package = { inherit (pkg) pname version cmakeFlags nativeBuildInputs buildInputs installPhase drv; };
  overlay = (outputs.overlays.default (fakePkgs "x86_64-linux") { }).tend.pname;
  moduleImports = map toString moduleResult.imports;
  moduleOverlays = b.length moduleResult.nixpkgs.overlays;
  bareModuleIsFunction = b.isFunction outputs.nixosModules.tend;
  devShell = { inherit (outputs.devShells.x86_64-linux.default) packages drv; inputsFrom = map (p: p.pname) outputs.devShells.x86_64-linux.default.inputsFrom; };
}
