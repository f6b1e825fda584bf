#!/usr/bin/env bash
# Measures the REST edge's overhead over direct gRPC for a read and for a
# create, RUNS times. Each run starts `mailplane dev` on a fresh database,
# signs a user in, makes a mail service, then back to back at the same
# concurrency and duration:
#   read:   GET /v1/users/me (wrk)            vs GetCurrentUser (loadgrpc)
#   create: POST .../addresses (wrk + Lua)    vs CreateAddress (loadgrpc)
# each create a new local part, both sides in the same mail service. It
# prints requests/s, p50, p99, the server's CPU per request and the
# edge/direct ratios, then their medians over the runs.
# Needs wrk (apt-get install wrk) and a PostgreSQL server (BENCH_DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-50}
DURATION=${DURATION:-20}
RUNS=${RUNS:-3}
# OPS: which pairs to measure, "read create" or one of them.
OPS=${OPS:-read create}
# QUIET_LOAD, when set, makes each run wait (up to 5 minutes) until the
# 1-minute load average is below it: on a shared machine the two sides of
# a pair must not see different neighbours.
QUIET_LOAD=${QUIET_LOAD:-}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=mailplane_bench
# Ports of their own (bench-address.sh uses 18082 and 19092).
HTTP=${HTTP_ADDR:-127.0.0.1:18084}
GRPC=${GRPC_ADDR:-127.0.0.1:19094}
METRICS=${METRICS_ADDR:-127.0.0.1:19468}
PPROF=${PPROF_ADDR:-127.0.0.1:16064}

# The server and loadgrpc run with the garbage collector's setting the
# Deployments have (deploy/kubernetes/base/config.env) unless GOGC is set.
export GOGC=${GOGC:-$(sed -n 's/^GOGC=//p' deploy/kubernetes/base/config.env)}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
go build -o bin/mailplane ./services/cmd/mailplane
go build -o bin/loadgrpc ./services/cmd/loadgrpc

# The server talks to PostgreSQL over loopback without TLS, as in
# bench-address.sh.
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$DB', query='sslmode=disable').geturl())" "$ADMIN_URL")
work=$(mktemp -d)
pid=
stop() {
	if [ -n "$pid" ]; then
		kill -INT "$pid"
		wait "$pid" || true
		pid=
	fi
}
trap 'stop; rm -rf "$work"' EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
hz=$(getconf CLK_TCK)
# server_ticks: user+system CPU ticks the mailplane process has used so far.
server_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat"; }
# pg_ticks: the same for the PostgreSQL backends serving the benchmark's
# database (not the server's shared processes, WAL writer and checkpointer,
# which other databases' work keeps busy too on a shared machine).
pg_ticks() {
	for p in $(pgrep -f "^postgres: .*: [^ ]+ $DB "); do cat "/proc/$p/stat" 2>/dev/null; done |
		awk '{sub(/^.*\) /, ""); t += $12 + $13} END {print t + 0}'
}
# per_op TICKS OPS: microseconds of CPU per operation.
per_op() { python3 -c "print(f'{$1 / $hz / max($2, 1) * 1e6:.0f}')"; }
# ms DURATION: wrk's (850.00us, 12.50ms, 1.20s) or Go's (850µs, 12.5ms)
# duration in milliseconds.
ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /(us|µs)$/) { sub(/(us|µs)$/, "", v); v /= 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v) }
		else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
		else if (v ~ /m$/) { sub(/m$/, "", v); v *= 60000 }
		else { print "?"; exit }
		printf "%.1f\n", v }'
}
# count TABLE: the rows in TABLE. PostgreSQL is shared: when it has no
# connection to spare, try again rather than lose the run.
count() {
	for _ in $(seq 1 50); do
		psql "$db_url" -qAtc "SELECT count(*) FROM $1" 2>/dev/null && return
		sleep 0.2
	done
	echo "cannot count $1" >&2
	return 1
}
addresses() { count mailboxes.addresses; }
# rounds: the writes and the rounds the address creates' group commit has
# counted so far (services/platform/pg.Group): how many creates share a
# round decides much of what one costs PostgreSQL.
rounds() {
	curl -sf "http://$METRICS/metrics" | awk '
		/^mailplane_pg_group_writes_sum\{group="mailboxes.addresses"/ {s = $NF}
		/^mailplane_pg_group_writes_count\{group="mailboxes.addresses"/ {c = $NF}
		END {print s + 0, c + 0}'
}
# per_round "W0 R0" "W1 R1": creates per round between two readings.
per_round() { python3 -c "w0, r0 = $1; w1, r1 = $2; print(f'{(w1 - w0) / max(r1 - r0, 1):.1f}')" ; }
# settle: waits until the outbox relay and the audit consumer have caught up
# with the creates, whose work is part of what a create costs, and keeps
# it out of the next phase.
settle() {
	for _ in $(seq 1 150); do
		[ "$(count mailboxes.outbox)" = 0 ] && break
		sleep 0.2
	done
	sleep 1
}

# start: a fresh database, the server, a signed-in owner and a mail service.
start() {
	psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
	# A fresh data directory too: the embedded NATS keeps its streams there.
	bin/mailplane dev --data-dir "$(mktemp -d -p "$work")" --database-url "$db_url" --http-addr $HTTP --grpc-addr $GRPC \
		--metrics-addr $METRICS --pprof-addr $PPROF --socketmap-addr= --policy-addr= --milter-addr= \
		--log-level warn >>"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 1 150); do curl -sf http://$HTTP/readyz >/dev/null && break; sleep 0.2; done
	if ! kill -0 "$pid" 2>/dev/null || ! curl -sf http://$HTTP/readyz >/dev/null; then
		pid=
		echo "mailplane did not start:" >&2
		tail -5 "$work/log" >&2
		exit 1
	fi
	curl -sf -X POST http://$HTTP/v1/auth:signUp -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' >/dev/null
	token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password"}' | json '["accessToken"]')
	org=$(curl -sf http://$HTTP/v1/users/me -H "Authorization: Bearer $token" | json '["memberships"][0]["name"].split("/members")[0]')
	ms_name=$(curl -sf -X POST http://$HTTP/v1/$org/mailServices -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"domain":"bench.example"}' | json '["name"]')
	cat >"$work/create.lua" <<-LUA
		local n = 0
		function setup(thread)
		  thread:set("id", tostring(math.random(1, 1000000000)))
		end
		function request()
		  n = n + 1
		  return wrk.format("POST", "/v1/$ms_name/addresses",
		    {["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json"},
		    '{"address":{"localPart":"u' .. id .. '-' .. n .. '"}}')
		end
	LUA
}

# record RUN OP PATH RPS P50 P99 OK ERRORS SERVER_TICKS PG_TICKS
# [PER_ROUND]: one line of results.
record() {
	local app pg
	app=$(per_op "$9" "$7") pg=$(per_op "${10}" "$7")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$app" "$pg" "${11:--}" >>"$work/results"
	printf '%-6s %-6s %8s req/s  p50 %7s ms  p99 %7s ms  errors %s  CPU/request: mailplane %s µs, PostgreSQL %s µs%s\n' \
		"$2" "$3" "$4" "$5" "$6" "$8" "$app" "$pg" "${11:+, $11 creates per commit round}"
}

# edge RUN OP: one wrk phase.
edge() {
	local s0 p0 s1 p1 a0 out=$work/wrk.$1.$2
	local args=(-H "Authorization: Bearer $token" "http://$HTTP/v1/users/me")
	[ "$2" = create ] && args=(-s "$work/create.lua" "http://$HTTP")
	a0=$(addresses) s0=$(server_ticks) p0=$(pg_ticks) r0=$(rounds)
	wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" >"$out"
	[ "$2" = create ] && settle
	s1=$(server_ticks) p1=$(pg_ticks) r1=$(rounds)
	local total bad ok round=
	total=$(awk '/requests in/{print $1}' "$out")
	bad=$(awk '/Non-2xx/{print $5}' "$out")
	bad=${bad:-0}
	ok=$((total - bad))
	if [ "$2" = create ]; then
		ok=$(($(addresses) - a0)) round=$(per_round "${r0// /, }" "${r1// /, }")
	fi
	record "$1" "$2" edge "$(awk '/Requests\/sec/{printf "%.0f", $2}' "$out")" \
		"$(ms "$(awk '$1 == "50%" {print $2}' "$out")")" "$(ms "$(awk '$1 == "99%" {print $2}' "$out")")" \
		"$ok" "$bad" $((s1 - s0)) $((p1 - p0)) "$round"
}

# direct RUN OP: one loadgrpc phase.
direct() {
	local s0 p0 s1 p1 a0 out=$work/grpc.$1.$2
	local args=(-call read)
	[ "$2" = create ] && args=(-call create-address -parent "$ms_name")
	a0=$(addresses) s0=$(server_ticks) p0=$(pg_ticks) r0=$(rounds)
	bin/loadgrpc -addr $GRPC -token "$token" -c "$CONNS" -d "${DURATION}s" "${args[@]}" >"$out"
	[ "$2" = create ] && settle
	s1=$(server_ticks) p1=$(pg_ticks) r1=$(rounds)
	local ok round=
	ok=$(awk '{print $2}' "$out")
	if [ "$2" = create ]; then
		ok=$(($(addresses) - a0)) round=$(per_round "${r0// /, }" "${r1// /, }")
	fi
	record "$1" "$2" direct "$(awk '{print $6}' "$out")" "$(ms "$(awk '{print $8}' "$out")")" "$(ms "$(awk '{print $12}' "$out")")" \
		"$ok" "$(awk '{print $4}' "$out")" $((s1 - s0)) $((p1 - p0)) "$round"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "each phase: $CONNS connections (wrk) or callers (loadgrpc), ${DURATION}s; GOGC=$GOGC"
[ -n "${PROFILE:-}" ] && echo "profiling at http://$PPROF/debug/pprof/"
for run in $(seq 1 "$RUNS"); do
	if [ -n "$QUIET_LOAD" ]; then
		for _ in $(seq 1 60); do
			awk -v max="$QUIET_LOAD" '{exit !($1 < max)}' /proc/loadavg && break
			sleep 5
		done
	fi
	start
	echo
	echo "== run $run, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$run $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/load"
	if [[ " $OPS " == *" read "* ]]; then
		edge "$run" read
		direct "$run" read
	fi
	# The second create phase finds the first one's rows in the table:
	# alternate which goes first so that neither always does.
	if [[ " $OPS " == *" create "* ]]; then
		if [ $((run % 2)) = 1 ]; then
			edge "$run" create
			direct "$run" create
		else
			direct "$run" create
			edge "$run" create
		fi
	fi
	stop
done

echo
python3 - "$work/results" "$work/load" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
load = [l.split()[1:] for l in open(sys.argv[2])]
print("run  op      edge req/s  direct req/s  edge/direct  p50 edge/direct ms  p99 edge/direct ms  mailplane CPU/req edge/direct µs  PostgreSQL CPU/req µs  creates/round  load (1, 5, 15 min)")
ratios = {}
for run in sorted({r[0] for r in rows}, key=int):
    for op in ("read", "create"):
        e = next((r for r in rows if r[0] == run and r[1] == op and r[2] == "edge"), None)
        d = next((r for r in rows if r[0] == run and r[1] == op and r[2] == "direct"), None)
        if not e or not d:
            continue
        ratio = float(e[3]) / float(d[3])
        ratios.setdefault(op, []).append(ratio)
        print(f"{run:>3}  {op:<6}  {e[3]:>10}  {d[3]:>12}  {ratio:>10.0%}  {e[4]:>8} / {d[4]:<8}  {e[5]:>8} / {d[5]:<8}  {e[8]:>10} / {d[8]:<10}  {e[9]:>6} / {d[9]:<6}  {e[10]:>5} / {d[10]:<5}  {' '.join(load[int(run) - 1])}")
for op, rs in ratios.items():
    print(f"median edge/direct, {op}: {statistics.median(rs):.0%} (runs: {', '.join(f'{r:.0%}' for r in rs)})")
PY
