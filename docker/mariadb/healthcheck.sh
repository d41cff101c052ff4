#!/bin/sh
# Health check of the compose demo's MariaDB container: initialised and
# started (the entrypoint's marker), the server answers on its socket and
# the host agent answers /healthz.
[ -e /run/qha-db.ready ] || exit 1
mariadb-admin --protocol=socket --socket=/run/mysqld/mysqld.sock -uroot ping >/dev/null 2>&1 || exit 1
curl -fsS --max-time 2 http://127.0.0.1:7080/healthz >/dev/null || exit 1
