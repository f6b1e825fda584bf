#!/usr/bin/env bash
# The lists service's side of the lists benchmark (docs/benchmarks.md,
# "Lists"): starts the SMTP sink (services/cmd/smtpsink, 127.0.0.1:8025,
# counts on :8026) unless one answers already, then runs the benchmarks of
# services/lists/bench_test.go against a fresh database on the local
# PostgreSQL (BENCH_DATABASE_URL, or MAILPLANE_TEST_DATABASE_URL):
#
#   TestBenchSink       the sink alone: its ceiling
#   TestBenchSubscribe  SUBSCRIBE members through the API, members/s per 1,000
#   TestBenchSubscribeBatch  the same by BatchCreateMembers, 100 and 1,000 a call
#   TestBenchFanOut     one post to each list size in FANOUT: recipients/s, RSS, heap
#
#   SUBSCRIBE=5000 FANOUT="1000 3000 10000" scripts/bench-lists.sh
#   PROFILE=/tmp/prof scripts/bench-lists.sh   # CPU profiles of each phase
#
# The connection to PostgreSQL goes without TLS (PGSSLMODE=disable) unless
# PGSSLMODE says otherwise: Mailman's SQLite has none either.
set -euo pipefail
cd "$(dirname "$0")/.."

export MAILPLANE_TEST_DATABASE_URL=${BENCH_DATABASE_URL:-${MAILPLANE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
export PGSSLMODE=${PGSSLMODE:-disable}
export MAILPLANE_LISTS_BENCH=1
export MAILPLANE_LISTS_BENCH_SUBSCRIBE=${SUBSCRIBE:-5000}
export MAILPLANE_LISTS_BENCH_FANOUT=${FANOUT:-1000 3000 10000}
export MAILPLANE_LISTS_BENCH_PROFILE=${PROFILE:-}
# RUN narrows the benchmarks run (a regular expression of their names,
# e.g. RUN='Subscribe|SubscribeBatch').
run=${RUN:-Sink|Subscribe|SubscribeBatch|FanOut}
export MAILPLANE_LISTS_BENCH_SINK=127.0.0.1:8025 MAILPLANE_LISTS_BENCH_SINK_HTTP=127.0.0.1:8026

sink=
if ! curl -sf http://$MAILPLANE_LISTS_BENCH_SINK_HTTP/ >/dev/null; then
	(cd services && go build -o ../bin/smtpsink ./cmd/smtpsink)
	bin/smtpsink -addr $MAILPLANE_LISTS_BENCH_SINK -http $MAILPLANE_LISTS_BENCH_SINK_HTTP >/tmp/smtpsink-lists.log 2>&1 &
	sink=$!
	trap 'kill $sink' EXIT
	for _ in $(seq 50); do curl -sf http://$MAILPLANE_LISTS_BENCH_SINK_HTTP/ >/dev/null && break; sleep 0.1; done
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
cd services
go test -c -o /tmp/lists-bench.test ./lists/
cd lists
/tmp/lists-bench.test -test.count 1 -test.v -test.run "TestBench($run)\$" | grep -v -E '^(=== RUN|PASS$)' | sed -E 's/^ +bench_test.go:[0-9]+: //'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
