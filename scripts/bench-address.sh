#!/usr/bin/env bash
# Measures creating one address through the REST edge (wrk, 50 connections,
# each request a new local part) next to PostgreSQL's own single-row insert
# rate (pgbench, 50 clients), in one run on one machine. Needs wrk, pgbench
# and a PostgreSQL server (BENCH_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-50}
DURATION=${DURATION:-15}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=mailplane_bench_address
HTTP=127.0.0.1:18082
GRPC=127.0.0.1:19092

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
go build -o bin/mailplane ./services/cmd/mailplane
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
# Both sides talk to PostgreSQL over loopback without TLS (sslmode=disable),
# so neither pays for encryption the other does not.
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$DB', query='sslmode=disable').geturl())" "$ADMIN_URL")
work=$(mktemp -d)
bin/mailplane dev --data-dir "$work" --database-url "$db_url" --http-addr $HTTP --grpc-addr $GRPC \
	--metrics-addr 127.0.0.1:19465 --socketmap-addr= --policy-addr= --milter-addr= --log-level warn >"$work/log" 2>&1 &
pid=$!
trap 'kill -INT $pid; wait $pid || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf http://$HTTP/readyz >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -X POST http://$HTTP/v1/auth:signUp -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' >/dev/null
token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password"}' | json '["accessToken"]')
org=$(curl -sf http://$HTTP/v1/users/me -H "Authorization: Bearer $token" | json '["memberships"][0]["name"].split("/members")[0]')
ms=$(curl -sf -X POST http://$HTTP/v1/$org/mailServices -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"domain":"bench.example"}' | json '["name"]')

cat >"$work/create.lua" <<LUA
local n = 0
function setup(thread)
  thread:set("id", tostring(math.random(1, 1000000000)))
end
function request()
  n = n + 1
  return wrk.format("POST", "/v1/$ms/addresses",
    {["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json"},
    '{"address":{"localPart":"u' .. id .. '-' .. n .. '"}}')
end
LUA

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
# cpu_ticks NAME...: user+system CPU ticks used so far by the processes with
# those command names (live ones only: run it around a phase whose processes
# stay up).
cpu_ticks() {
	for name in "$@"; do
		for pid in $(pgrep -x "$name"); do cat "/proc/$pid/stat" 2>/dev/null; done
	done | awk '{sub(/^.*\) /, ""); t += $12 + $13} END {print t + 0}'
}
# busy_ticks: CPU ticks the whole machine has spent busy (not idle or
# waiting for I/O).
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
hz=$(getconf CLK_TCK)
# per_op TICKS OPS: microseconds of CPU per operation.
per_op() { python3 -c "print(f'{$1 / $hz / max($2, 1) * 1e6:.0f}')"; }

echo "== edge: wrk -t2 -c$CONNS -d${DURATION}s POST .../addresses (a new address each)"
before=$(psql "$db_url" -qAtc "SELECT count(*) FROM mailboxes.addresses")
app0=$(cpu_ticks mailplane) pg0=$(cpu_ticks postgres) all0=$(busy_ticks)
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/create.lua" http://$HTTP | tee "$work/wrk"
# The outbox relay and the audit consumer finish after the load stops:
# their work is part of what a create costs.
for _ in $(seq 1 100); do
	[ "$(psql "$db_url" -qAtc "SELECT count(*) FROM mailboxes.outbox")" = 0 ] && break
	sleep 0.2
done
sleep 1
app1=$(cpu_ticks mailplane) pg1=$(cpu_ticks postgres) all1=$(busy_ticks)
created=$(($(psql "$db_url" -qAtc "SELECT count(*) FROM mailboxes.addresses") - before))
echo "addresses created: $created"
echo "CPU per create: mailplane $(per_op $((app1 - app0)) "$created") µs, PostgreSQL $(per_op $((pg1 - pg0)) "$created") µs, whole machine $(per_op $((all1 - all0)) "$created") µs"

echo
echo "== PostgreSQL: pgbench -c$CONNS -j2 -T$DURATION, one single-row INSERT per transaction"
psql "$db_url" -qc "CREATE TABLE bench_insert (id uuid PRIMARY KEY, local_key text NOT NULL UNIQUE, create_time timestamptz NOT NULL DEFAULT now())"
echo "INSERT INTO bench_insert (id, local_key) VALUES (gen_random_uuid(), md5(random()::text));" >"$work/insert.sql"
all0=$(busy_ticks)
pgbench -n -c"$CONNS" -j2 -T"$DURATION" -f "$work/insert.sql" "$db_url" | tee "$work/pgbench"
all1=$(busy_ticks)
inserted=$(psql "$db_url" -qAtc "SELECT count(*) FROM bench_insert")
echo "CPU per insert: whole machine (pgbench and PostgreSQL) $(per_op $((all1 - all0)) "$inserted") µs"

edge=$(awk '/Requests\/sec/{print $2}' "$work/wrk")
raw=$(awk '/^tps/{print $3}' "$work/pgbench")
echo
python3 -c "print(f'edge create / raw insert: {$edge/$raw:.0%}')"
