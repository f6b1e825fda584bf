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
curl -sf -X POST http://$HTTP/v1/auth:signUp -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' >/dev/null
token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -d '{"email":"bench@example.com","password":"benchmark password"}' | json '["accessToken"]')
org=$(curl -sf http://$HTTP/v1/users/me -H "Authorization: Bearer $token" | json '["memberships"][0]["name"].split("/members")[0]')
ms=$(curl -sf -X POST http://$HTTP/v1/$org/mailServices -H "Authorization: Bearer $token" -d '{"domain":"bench.example"}' | json '["name"]')

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
echo "== edge: wrk -t2 -c$CONNS -d${DURATION}s POST .../addresses (a new address each)"
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/create.lua" http://$HTTP | tee "$work/wrk"
created=$(psql "$db_url" -qAtc "SELECT count(*) FROM mailboxes.addresses")
echo "addresses in the database: $created"

echo
echo "== PostgreSQL: pgbench -c$CONNS -j2 -T$DURATION, one single-row INSERT per transaction"
psql "$db_url" -qc "CREATE TABLE bench_insert (id uuid PRIMARY KEY, local_key text NOT NULL UNIQUE, create_time timestamptz NOT NULL DEFAULT now())"
echo "INSERT INTO bench_insert (id, local_key) VALUES (gen_random_uuid(), md5(random()::text));" >"$work/insert.sql"
pgbench -n -c"$CONNS" -j2 -T"$DURATION" -f "$work/insert.sql" "$db_url" | tee "$work/pgbench"

edge=$(awk '/Requests\/sec/{print $2}' "$work/wrk")
raw=$(awk '/^tps/{print $3}' "$work/pgbench")
echo
python3 -c "print(f'edge create / raw insert: {$edge/$raw:.0%}')"
