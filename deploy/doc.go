// Package deploy holds what a host installation of quorumha needs besides
// the binary: systemd/quorumha.service and config.example.yaml (the
// commented /etc/quorumha/config.yaml) for controllers, and
// systemd/quorumha-agent.service and agent.example.yaml for the binlog
// salvage agent on database hosts, and prometheus/quorumha-rules.yml (alert
// rules, with promtool unit tests beside them). It has no Go code of its
// own; its tests load the examples as the binary would and check the unit
// files and the rules.
package deploy
