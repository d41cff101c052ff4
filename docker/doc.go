// Package docker holds the container packaging of quorumha: Dockerfile,
// compose.yaml (three controllers in three zones and a MariaDB master with
// two replicas), the controllers' configs under config/ and the MariaDB
// settings and init scripts under mariadb/.
//
// It has no Go code of its own. Its tests check, without a Docker engine,
// what can be checked statically: the compose file parses, every file it or
// the Dockerfile references exists, each controller config loads and
// validates for run, and the addresses, ports, zones and bootstrap lists in
// the configs agree with the compose services. Docker itself is not
// exercised in CI.
package docker
