# The version of each service's package in the demo systems. A real fleet gets these from
# nixpkgs; here each is a stand-in derivation "<service>-<version>" in its host's system
# closure, with a unit <service>.service. Upgrading one changes its host's system, and
# `tend plan` names the package with both versions and the unit it restarts.
{
  authentik = "2024.8.3";
  grafana = "10.4.2";
  guacamole = "1.5.5";
  home-assistant = "2024.9.1";
  jellyfin = "10.9.11";
  loki = "3.1.1";
  mosquitto = "2.0.18";
  nextcloud = "29.0.7";
  postgresql = "16.4";
  samba = "4.20.4";
  traefik = "3.1.4";
  vaultwarden = "1.32.0";
  victoriametrics = "1.102.1";
}
