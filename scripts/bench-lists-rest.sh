#!/usr/bin/env bash
# Subscribing through the REST edge, as Mailman's benchmark subscribes
# through its REST API (scripts/bench-mailman.sh): the same Python driver,
# one POST .../lists/{list}/members?silent=true per member (no welcome, as
# Mailman's send_welcome_message=false), one caller, a new HTTP connection
# per call, members/s per 1,000; then, as an import does, POST
# .../members:batchCreate with BATCHES members a call (each size into a
# list of its own). Runs `mailplane dev` (edge and
# every service in one process) on a fresh database on the local
# PostgreSQL (BENCH_DATABASE_URL), without TLS to it (sslmode=disable).
#
#   SUBSCRIBE=5000 BATCHES="100 1000" scripts/bench-lists-rest.sh
#   SINGLE=0 scripts/bench-lists-rest.sh   # the batches only
#
# The mail service is marked verified in the database: its TXT record
# would need a DNS server the benchmark does not run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBE=${SUBSCRIBE:-5000}
BATCHES=${BATCHES:-100 1000}
SINGLE=${SINGLE:-1}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=mailplane_bench_lists
HTTP=127.0.0.1:18083
GRPC=127.0.0.1:19093

go build -o bin/mailplane ./services/cmd/mailplane
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
db_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$DB', query='sslmode=disable').geturl())" "$ADMIN_URL")
work=$(mktemp -d)
bin/mailplane dev --data-dir "$work" --database-url "$db_url" --http-addr $HTTP --grpc-addr $GRPC \
	--metrics-addr 127.0.0.1:19466 --socketmap-addr= --policy-addr= --milter-addr= --lmtp-addr= --log-level warn >"$work/log" 2>&1 &
pid=$!
trap 'kill -INT $pid; wait $pid || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf http://$HTTP/readyz >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -sf -X POST http://$HTTP/v1/auth:signUp -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password","displayName":"Bench","organizationDisplayName":"Bench"}' >/dev/null
token=$(curl -sf -X POST http://$HTTP/v1/auth:signIn -H 'Content-Type: application/json' -d '{"email":"bench@example.com","password":"benchmark password"}' | json '["accessToken"]')
org=$(curl -sf http://$HTTP/v1/users/me -H "Authorization: Bearer $token" | json '["memberships"][0]["name"].split("/members")[0]')
ms=$(curl -sf -X POST "http://$HTTP/v1/$org/mailServices" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"domain":"bench.example"}' | json '["name"]')
psql "$db_url" -qc "UPDATE mailboxes.mail_services SET state = 'verified', verify_time = now() WHERE id = '${ms##*/}'"
list=$(curl -sf -X POST "http://$HTTP/v1/$ms/lists" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"localPart":"team"}' | json '["name"]')

tck=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
subscribe() { # list, batch size (0: one POST .../members per member)
	URL="http://$HTTP/v1/$1/members" TOKEN="$token" N="$SUBSCRIBE" BATCH="$2" LIST="$1" PID="$pid" TCK="$tck" python3 - <<'PY'
import json, os, time, urllib.request

url, token, n, batch, parent = os.environ["URL"], os.environ["TOKEN"], int(os.environ["N"]), int(os.environ["BATCH"]), os.environ["LIST"]
pid, tck = os.environ["PID"], int(os.environ["TCK"])

def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck

def post(u, body):
    req = urllib.request.Request(u, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        r.read()

print(f"{'members':<12} {'members/s':>10} {'server CPU per member':>22}")
t0, c0 = time.monotonic(), cpu()
step = max(batch, 1)
for i in range(0, n, step):
    if batch == 0:
        post(url + "?silent=true", {"email": f"m{i:05d}@example.net"})
    else:
        post(url + ":batchCreate", {"requests": [{"parent": parent, "member": {"email": f"m{j:05d}@example.net"}, "silent": True} for j in range(i, min(i + batch, n))]})
    done = min(i + step, n)
    if done % 1000 == 0 or done == n:
        t1, c1 = time.monotonic(), cpu()
        k = done - (done - 1) // 1000 * 1000
        print(f"{done - k:>5}-{done:<6} {k / (t1 - t0):>10.1f} {(c1 - c0) / k * 1e3:>19.2f} ms", flush=True)
        t0, c0 = t1, c1
PY
}

if [ "$SINGLE" != 0 ]; then
	echo "subscribe $SUBSCRIBE members through the REST edge, one call each, into team@bench.example"
	subscribe "$list" 0
fi
for b in $BATCHES; do
	l=$(curl -sf -X POST "http://$HTTP/v1/$ms/lists" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "{\"localPart\":\"batch$b\"}" | json '["name"]')
	echo
	echo "subscribe $SUBSCRIBE members through the REST edge, $b a call (members:batchCreate), into batch$b@bench.example"
	subscribe "$l" "$b"
done
