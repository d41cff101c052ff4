// Package deploy holds what a host installation of quorumha needs besides
// the binary: systemd/quorumha.service and config.example.yaml (the
// commented /etc/quorumha/config.yaml). It has no Go code of its own; its
// tests load the example config as run would and check the unit file.
package deploy
