#!/usr/bin/env bash
# make bench: the end-to-end throughput benchmark. Generates a large Zeek directory
# (deterministic; N conn lines, default 2,000,000, with matching dns/ssl/http), starts a private
# Redis, runs `kalipso-ingest --once` on it and prints flows/s, MB/s, peak RSS, Redis memory
# and Redis commands per flow. `N=500000 scripts/bench.sh` for a quicker run; `HOURS=16` spreads
# the same lines over 16 hours of log time (default 4), i.e. a longer input at a lower rate.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000000}
HOURS=${HOURS:-4}
DIR=${BENCH_DIR:-/tmp/kalipso-bench-$N-${HOURS}h}
. scripts/bench-input.sh
cargo build --release --quiet
bench_input "$DIR" "$N" "$HOURS"
. scripts/private-redis.sh
trap stop_private_redises EXIT
private_redis PORT --appendonly no
redis-cli -p "$PORT" config resetstat >/dev/null
bytes=$(du -cb "$DIR"/*.log | tail -1 | cut -f1)
out=$( { /usr/bin/time -v ./target/release/kalipso-ingest --zeek-dir "$DIR" --once \
    --home-net 10.0.0.0/16 --timezone UTC --redis-url "redis://127.0.0.1:$PORT/0" \
    --no-progress --log-level warn; } 2>&1 )
echo "$out" | grep -E '^  (conn|dns|http|ssl|flows|dns/http|profiles|elapsed|redis)'
elapsed=$(echo "$out" | sed -n 's/.*elapsed: \([0-9.]*\) s.*/\1/p')
flows=$(echo "$out" | sed -n 's/.*flows profiled: \([0-9]*\).*/\1/p')
rss=$(echo "$out" | sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p')
mem=$(redis-cli -p "$PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
calls=$(echo "$out" | sed -n 's/.*redis: \([0-9]*\) commands.*/\1/p')
rcpu=$(redis-cli -p "$PORT" info cpu | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.1f", s}')
rin=$(redis-cli -p "$PORT" info stats | sed -n 's/^total_net_input_bytes:\([0-9]*\).*/\1/p')
ucpu=$(echo "$out" | sed -n 's/.*User time (seconds): \([0-9.]*\)/\1/p')
scpu=$(echo "$out" | sed -n 's/.*System time (seconds): \([0-9.]*\)/\1/p')
echo "== $N conn lines, $((bytes / 1048576)) MiB of logs"
awk -v f="$flows" -v e="$elapsed" -v b="$bytes" -v r="$rss" -v m="$mem" -v c="$calls" -v rc="$rcpu" -v ri="$rin" -v uc="$ucpu" -v sc="$scpu" 'BEGIN {
    printf "flows/s:                 %.0f\n", f / e
    printf "MB/s of input:           %.1f\n", b / 1048576 / e
    printf "peak RSS (MiB):          %.0f\n", r / 1024
    printf "Redis used_memory (MiB): %.0f\n", m / 1048576
    printf "Redis commands per flow: %.3f\n", c / f
    printf "ingestor CPU (s):        %.1f user + %.1f sys\n", uc, sc
    printf "Redis CPU (s):           %.1f\n", rc
    printf "sent to Redis (MiB):     %.0f\n", ri / 1048576
}'
