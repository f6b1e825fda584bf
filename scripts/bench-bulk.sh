#!/usr/bin/env bash
# Measures bulk address creation from CSV end to end, as a frontend does it:
# POST the file to the REST edge (addresses:bulkCreate), then poll the job
# until it SUCCEEDED. For each file size, a fresh `mailplane dev` process
# (edge, services, embedded NATS with the outbox relay) on a fresh database,
# so that its peak resident memory (VmHWM, reset just before the upload)
# belongs to that upload alone. The process runs with GODEBUG=gctrace=1: the
# largest heap at a GC start and the largest live heap after a GC during the
# upload come from its trace. Needs a PostgreSQL server (BENCH_DATABASE_URL),
# curl and python3.
#
#   ROWS="10000 20000 40000" scripts/bench-bulk.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-10000 20000 40000}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=mailplane_bench_bulk
HTTP=127.0.0.1:18081
GRPC=127.0.0.1:19091

go build -o bin/mailplane ./services/cmd/mailplane
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$DB').geturl())" "$ADMIN_URL")
work=$(mktemp -d)
pid=
stop() {
	if [ -n "$pid" ]; then kill -INT "$pid"; wait "$pid" || true; pid=; fi
}
trap 'stop; rm -rf "$work"' EXIT

now() { date +%s.%N; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }

# csv N FILE: N addresses like the integration test's: every tenth with two
# aliases, every seventh a redirect, every thirteenth no-reply; BOM, CRLF.
csv() {
	python3 - "$1" "$2" <<'EOF'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w", newline="") as f:
    f.write("\ufefflocal_part,kind,aliases,redirect_destinations,quota_mb\r\n")
    for i in range(n):
        if i % 7 == 0:
            f.write(f'User{i},redirect,,"boss{i}@elsewhere.example, team@elsewhere.example",\r\n')
        elif i % 13 == 0:
            f.write(f"user{i},no_reply,,,\r\n")
        elif i % 10 == 1:
            f.write(f"user{i},mailbox,u{i}a u{i}b,,1024\r\n")
        else:
            f.write(f"user{i},,,,\r\n")
EOF
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
printf "%-7s %-9s %-11s %-13s %-8s %-14s %-14s %s\n" rows "file MiB" "end to end" "job (server)" "rows/s" "live heap MB" "peak heap MB" "RSS MiB: before, peak"
for n in $ROWS; do
	psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
	rm -rf "$work/data"
	GODEBUG=gctrace=1 bin/mailplane dev --data-dir "$work/data" --database-url "$db_url" --http-addr $HTTP --grpc-addr $GRPC \
		--metrics-addr 127.0.0.1:19465 --socketmap-addr= --policy-addr= --milter-addr= --log-level warn >"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -sf http://$HTTP/readyz >/dev/null && break; sleep 0.2; done

	org=$(curl -sf -X POST http://$HTTP/v1/auth:signUp -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' | json 'd["organization"]["name"]')
	token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password"}' | json 'd["accessToken"]')
	auth="Authorization: Bearer $token"
	ms=$(curl -sf -X POST -H "$auth" http://$HTTP/v1/$org/mailServices -H 'Content-Type: application/json' -d '{"domain":"bench.example"}' | json 'd["name"]')
	csv "$n" "$work/file.csv"
	size=$(stat -c %s "$work/file.csv")

	before=$(kib VmRSS)
	live0=$(grep -o '[0-9]*->[0-9]*->[0-9]* MB' "$work/log" | tail -1 | awk -F'->| ' '{print $3}')
	mark=$(stat -c %s "$work/log")
	echo 5 >"/proc/$pid/clear_refs" # resets VmHWM to the current RSS
	t0=$(now)
	job=$(curl -sf -X POST -H "$auth" -H "Content-Type: text/csv" --data-binary @"$work/file.csv" \
		"http://$HTTP/v1/$ms/addresses:bulkCreate" | json 'd["name"]')
	while curl -sf -H "$auth" "http://$HTTP/v1/$job" >"$work/job.json" && grep -q BULK_JOB_STATE_RUNNING "$work/job.json"; do
		sleep 0.02
	done
	t1=$(now)
	peak=$(kib VmHWM)
	grep -q BULK_JOB_STATE_SUCCEEDED "$work/job.json" || { cat "$work/job.json"; exit 1; }
	heap=$(tail -c +$((mark + 1)) "$work/log" | grep -o '[0-9]*->[0-9]*->[0-9]* MB' | awk -F'->| ' '$1 > a {a = $1} $3 > l {l = $3} END {print a + 0, l + 0}')
	count=$(psql "$db_url" -Atc "SELECT count(*) FROM mailboxes.addresses")
	[ "$count" = "$n" ] || { echo "$count addresses, want $n"; exit 1; }
	server=$(json '(__import__("datetime").datetime.fromisoformat(d["endTime"].replace("Z","+00:00")) - __import__("datetime").datetime.fromisoformat(d["createTime"].replace("Z","+00:00"))).total_seconds()' <"$work/job.json")
	python3 -c "
n, size, t, server, before, peak, live0 = $n, $size, $t1 - $t0, $server, $before, $peak, ${live0:-0}
heap, live = map(int, '$heap'.split())
print(f'{n:<7} {size/1048576:<9.2f} {t:<11.2f} {server:<13.2f} {n/t:<8,.0f} {live0} -> {live:<9} {heap:<14} {before/1024:.1f}, {peak/1024:.1f} (+{(peak-before)/1024:.1f})')"
	stop
done

# For reference: PostgreSQL's COPY alone on this machine, of as many rows
# into a table shaped like addresses, with its indexes.
n=${ROWS%% *}
python3 -c "import uuid
for i in range($n): print(uuid.uuid4(), '00000000-0000-0000-0000-000000000001', f'user{i}', f'user{i}', 'mailbox', sep='\t')" >"$work/copy.tsv"
psql "$db_url" -q <<EOF
CREATE TEMP TABLE a (id uuid PRIMARY KEY, ms uuid, local_part text, local_key text, kind text, redirects text[] DEFAULT '{}', quota_bytes bigint DEFAULT 0, create_time timestamptz DEFAULT now());
CREATE UNIQUE INDEX ON a (ms, local_key);
\echo COPY of $n rows:
\timing on
\copy a (id, ms, local_part, local_key, kind) FROM '$work/copy.tsv'
EOF
