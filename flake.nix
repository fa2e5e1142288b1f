# tend: the package (CMake build against nixpkgs' libraries), the NixOS module,
# an overlay adding pkgs.tend, and a development shell.
{
  description = "tend: GitOps reconciliation agent for NixOS fleets";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      tendFor = pkgs: pkgs.stdenv.mkDerivation {
        pname = "tend";
        version = "0.1.0";
        src = self;
        nativeBuildInputs = with pkgs; [ cmake pkg-config ];
        buildInputs = with pkgs; [
          libgit2 libyaml curl jansson libssh2 libsodium openssl libmicrohttpd zlib cmocka
        ];
        # The test suite drives real git, age, caddy, sshd and nix: run it with
        # scripts/bootstrap.sh test, not inside the build sandbox.
        cmakeFlags = [ "-DTEND_TESTS=OFF" ];
        # The CMake project has no install rule: copy the one binary.
        installPhase = ''
          runHook preInstall
          install -Dm0755 agent/tend $out/bin/tend
          install -Dm0644 $src/deploy/nixos-module.nix $out/share/tend/nixos-module.nix
          runHook postInstall
        '';
        meta = {
          description = "GitOps reconciliation agent for NixOS fleets";
          mainProgram = "tend";
          platforms = nixpkgs.lib.platforms.linux;
        };
      };
    in
    {
      overlays.default = final: prev: { tend = tendFor final; };

      packages = forAllSystems (pkgs: rec {
        tend = tendFor pkgs;
        default = tend;
      });

      # The module with the overlay, so pkgs.tend (the package option's default) exists.
      nixosModules.default = { ... }: {
        imports = [ ./deploy/nixos-module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };
      # The bare module, for configurations that set services.tend.package themselves.
      nixosModules.tend = import ./deploy/nixos-module.nix;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ (tendFor pkgs) ];
          packages = with pkgs; [ git openssh age caddy nix python3 python3Packages.aiosmtpd clang gdb ];
        };
      });
    };
}
