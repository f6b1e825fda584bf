#!/usr/bin/env bash
# Measures an authenticated GET /v1/users/me through the REST edge (wrk) and
# the same RPC straight over gRPC (loadgrpc), in one run, at the same
# concurrency, with the server's CPU time per request. Needs wrk
# (apt-get install wrk) and a PostgreSQL server (BENCH_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-50}
DURATION=${DURATION:-20}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=mailplane_bench
HTTP=127.0.0.1:18080
GRPC=127.0.0.1:19090

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
go build -o bin/mailplane ./services/cmd/mailplane
go build -o bin/loadgrpc ./services/cmd/loadgrpc

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$DB').geturl())" "$ADMIN_URL")
data=$(mktemp -d)
bin/mailplane dev --data-dir "$data" --database-url "$db_url" --http-addr $HTTP --grpc-addr $GRPC \
	--metrics-addr 127.0.0.1:19464 --pprof-addr 127.0.0.1:16060 --socketmap-addr= --policy-addr= --milter-addr= --log-level warn >"$data/log" 2>&1 &
pid=$!
trap 'kill -INT $pid; wait $pid || true; rm -rf "$data"' EXIT
[ -n "${PROFILE:-}" ] && echo "profiling at http://127.0.0.1:16060/debug/pprof/"
for _ in $(seq 1 100); do curl -sf http://$HTTP/readyz >/dev/null && break; sleep 0.2; done

curl -sf -X POST http://$HTTP/v1/auth:signUp -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' >/dev/null
token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password"}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')

tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{print ($14+$15)/t}' /proc/$pid/stat; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "== edge: wrk -t2 -c$CONNS -d${DURATION}s GET /v1/users/me"
c0=$(cpu)
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" http://$HTTP/v1/users/me | tee "$data/wrk"
c1=$(cpu)
edge_req=$(awk '/requests in/{print $1}' "$data/wrk")
edge_rps=$(awk '/Requests\/sec/{print $2}' "$data/wrk")
echo "server CPU per request: $(python3 -c "print(f'{($c1-$c0)/$edge_req*1e6:.0f} µs')")"

echo
echo "== direct gRPC: loadgrpc -c $CONNS -d ${DURATION}s GetCurrentUser"
c0=$(cpu)
bin/loadgrpc -addr $GRPC -token "$token" -c "$CONNS" -d "${DURATION}s" | tee "$data/grpc"
c1=$(cpu)
grpc_req=$(awk '{print $2}' "$data/grpc")
grpc_rps=$(awk '{print $6}' "$data/grpc")
echo "server CPU per request: $(python3 -c "print(f'{($c1-$c0)/$grpc_req*1e6:.0f} µs')")"

echo
python3 -c "print(f'edge / direct gRPC throughput: {$edge_rps/$grpc_rps:.0%}')"
