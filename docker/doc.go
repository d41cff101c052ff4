// Package docker holds the container packaging of quorumha: the controller
// image (Dockerfile), the MariaDB image with the host agent beside the
// server (mariadb/), compose.yaml (three controllers in three zones and a
// MariaDB master with two replicas), the controllers' configs under
// config/ and the MariaDB settings and init scripts under mariadb/.
//
// It has no Go code of its own. Its static tests check, without a Docker
// engine, what can be checked statically: the compose file parses, every
// file it or the Dockerfiles reference exists, each controller config and
// the agent config load and validate, and the addresses, ports, zones and
// bootstrap lists in the configs agree with the compose services.
// TestComposeE2E (skipped by -short) builds the images, starts the stack on
// a real engine, kills the master's container and checks the failover.
package docker
