#!/usr/bin/env bash
# Rolling restart under load (issue 15, point 6): builds mailplane and the
# rollout driver, starts every service as two `mailplane serve` processes
# behind one DNS name and the gateway in front (a fresh database on
# ROLLOUT_DATABASE_URL's server, a NATS server of its own), keeps a steady
# REST load of address creates and reads on the edge, restarts each process
# in turn, and prints what was sent, retried, lost and duplicated, requests
# and events. Exits 1 if anything was lost or duplicated.
#
#   scripts/rolling-restart.sh                      every service, then the gateway
#   scripts/rolling-restart.sh -restart mailboxes   one service (flags go to rollout)
#   RATE=40 scripts/rolling-restart.sh
#
# docs/operations.md ("Rolling restarts") says what the counts mean.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-20}
PAUSE=${PAUSE:-5s}

go build -o bin/mailplane ./services/cmd/mailplane
go build -o bin/rollout ./services/cmd/rollout

# Thirteen processes hold about 60 connections: unless ROLLOUT_DATABASE_URL
# names a server, the run gets a PostgreSQL cluster of its own (the
# machine's binaries, default settings but max_connections), so that other
# users of a shared server neither starve it nor are starved.
DB=${ROLLOUT_DATABASE_URL:-}
if [ -z "$DB" ]; then
	pgbin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
	pgdir=$(mktemp -d)
	as=()
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$pgdir"
		as=(runuser -u postgres --)
	fi
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"${as[@]}" "$pgbin/initdb" -D "$pgdir" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
	"${as[@]}" "$pgbin/pg_ctl" -D "$pgdir" -l "$pgdir/server.log" -w start \
		-o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
	trap '"${as[@]}" "$pgbin/pg_ctl" -D "$pgdir" -m fast -w stop >/dev/null; rm -rf "$pgdir"' EXIT
	DB=postgres://postgres@127.0.0.1:$port/postgres
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
bin/rollout -bin bin/mailplane -database-url "$DB" -rate "$RATE" -pause "$PAUSE" "$@" || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
