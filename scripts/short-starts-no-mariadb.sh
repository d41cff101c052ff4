#!/bin/sh
# Checks that `go test -short ./...` starts no MariaDB: shims named like the
# MariaDB binaries come first in PATH (the sandbox looks PATH up first),
# log every call and fail it. Any call is a live test without its
# testing.Short() guard (sandbox.New also refuses to run under -short).
set -eu
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
for b in mariadbd mariadb-install-db mysqld mariadb mysql; do
	printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 1\n' "$b" "$shim" > "$shim/$b"
	chmod +x "$shim/$b"
done
status=0
PATH="$shim:$PATH" go test -count=1 -short "${@:-./...}" || status=$?
if [ -s "$shim/calls" ]; then
	echo "go test -short ran MariaDB binaries:" >&2
	cat "$shim/calls" >&2
	exit 1
fi
exit $status
