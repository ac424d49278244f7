#!/usr/bin/env bash
# make bench-ceiling: how fast Redis alone can absorb what kalipso-ingest writes — the ceiling
# of any ingestor on this machine with this layout. Runs `kalipso-ingest --once` on the
# generated benchmark directory (as scripts/bench.sh; N conn lines, default 500,000, over HOURS
# hours, default 4) into a private Redis that logs every write to its append-only file, then
# replays that file with `redis-cli --pipe` (the fastest client there is: the bytes are already
# encoded) into a second, empty Redis and prints its time, its CPU and the flows/s it implies.
# Both databases are compared with DEBUG DIGEST: the replay is exactly the ingest's writes.
# The ingest is timed in a second run, into a Redis without the log (as the replay's).
# BIN=PATH measures another build (not rebuilt). FLAGS adds options to the ingest (e.g.
# FLAGS="--no-flows --direction all"); the summary gives Redis' CPU and memory per flow;
# STATS=1 prints the replay's command statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500000}
HOURS=${HOURS:-4}
DIR=${BENCH_DIR:-/tmp/kalipso-bench-$N-${HOURS}h}
. scripts/private-redis.sh
. scripts/bench-input.sh
# Two free loopback ports (never 6379): only the servers started here are stopped.
PORT=$(free_port)
REPLAY_PORT=$(free_port)
WORK=$(mktemp -d /tmp/kalipso-ceiling.XXXXXX)
bench_bin BIN
bench_input "$DIR" "$N" "$HOURS"
stop() {
    local f
    for f in "$WORK"/redis-*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    sleep 0.2
    rm -rf "$WORK" "$PRIVATE_REDIS_DIR"
}
trap stop EXIT
start() { # port, extra flags...
    local port=$1
    shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' --daemonize yes \
        --enable-debug-command local --pidfile "$WORK/redis-$port.pid" "$@" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
    echo "redis-server on $port did not start" >&2
    exit 1
}
cpu() { redis-cli -p "$1" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.2f", s}'; }

ingest() { # port: one --once run into it; its summary in $WORK/ingest-out, GNU time's user
    # and sys seconds in $WORK/ingest-time
    /usr/bin/time -f "%U %S" -o "$WORK/ingest-time" "$BIN" --zeek-dir "$DIR" \
        --once --home-net 10.0.0.0/16 --timezone UTC --redis-url "redis://127.0.0.1:$1/0" \
        --no-progress --log-level warn ${FLAGS:-} >"$WORK/ingest-out" 2>&1
}
# 1. The writes captured: an ingest into a Redis that logs every write (no fsync, no
# rewrite: one plain RESP file).
start "$PORT" --dir "$WORK" --appendonly yes --appendfsync no --auto-aof-rewrite-percentage 0
ingest "$PORT"
digest=$(redis-cli -p "$PORT" debug digest)
aof=$(ls "$WORK"/appendonlydir/*.incr.aof)
# 2. The ingest timed into a Redis without a log, as the replay's (the log costs Redis about
# as much CPU again, which the replay does not pay).
TIMED_PORT=$(free_port)
start "$TIMED_PORT" --appendonly no
ingest "$TIMED_PORT"
out=$(cat "$WORK/ingest-out")
own_cpu=$(awk '{printf "%.2f", $1 + $2}' "$WORK/ingest-time")
flows=$(echo "$out" | sed -n 's/.*flows profiled: \([0-9]*\).*/\1/p')
elapsed=$(echo "$out" | sed -n 's/.*elapsed: \([0-9.]*\) s.*/\1/p')
ingest_cpu=$(cpu "$TIMED_PORT")
timed_digest=$(redis-cli -p "$TIMED_PORT" debug digest)

# 2. The same writes, replayed by redis-cli into an empty Redis without a log.
start "$REPLAY_PORT" --appendonly no
cat "$aof" >/dev/null # from the page cache, not the disk
t0=$(date +%s.%N)
replies=$(redis-cli -p "$REPLAY_PORT" --pipe <"$aof" | tail -1)
t1=$(date +%s.%N)
replay_cpu=$(cpu "$REPLAY_PORT")
replay_digest=$(redis-cli -p "$REPLAY_PORT" debug digest)
[ -z "${STATS:-}" ] || redis-cli -p "$REPLAY_PORT" info commandstats | grep -v '^#'
memory=$(redis-cli -p "$REPLAY_PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')

echo "== $N conn lines over $HOURS h: $flows flows, $(($(stat -c %s "$aof") / 1048576)) MiB of writes"
echo "$replies"
awk -v m="$memory" -v f="$flows" -v e="$elapsed" -v ic="$ingest_cpu" -v t0="$t0" -v t1="$t1" -v rc="$replay_cpu" -v oc="$own_cpu" 'BEGIN {
    printf "kalipso-ingest --once:          %.1f s, %.0f flows/s (Redis CPU %.1f s)\n", e, f / e, ic
    printf "redis-cli --pipe replay:        %.1f s, %.0f flows/s (Redis CPU %.1f s)\n", t1 - t0, f / (t1 - t0), rc
    printf "ingest / replay rate:           %.2f\n", (f / e) / (f / (t1 - t0))
    printf "ceiling from Redis CPU alone:   %.0f flows/s\n", f / rc
    printf "kalipso-ingest per flow:        %.2f us of CPU (user + sys, %.1f s)\n", oc * 1e6 / f, oc
    printf "Redis per flow:                 %.2f us of CPU (replay), %.0f bytes of memory\n", rc * 1e6 / f, m / f
}'

if [ "$digest" = "$replay_digest" ] && [ "$digest" = "$timed_digest" ]; then
    echo "replayed database identical (DEBUG DIGEST $digest)"
else
    echo "databases DIFFER: logged $digest, timed $timed_digest, replayed $replay_digest" >&2
    exit 1
fi
