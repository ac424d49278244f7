#!/usr/bin/env bash
# make bench (follow part): the daemon follows a directory that `kalipso-ingest replay` writes
# at RATE lines/s (default 50,000), Zeek-style (time order, lines split across writes); a probe
# samples file sizes and the committed checkpoints in Redis and prints the sustained rate and the
# latency from a line written to its being visible in Redis (p50/p90/p99/max).
# Input: the generated benchmark directory of N conn lines (default 500,000). DAEMON_FLAGS are
# added to the daemon's command line (e.g. "--flush-interval-ms 250"); BIN is the binary followed
# (default ./target/release/kalipso-ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500000}
RATE=${RATE:-50000}
# The binary under test (for comparing builds).
BIN=${BIN:-./target/release/kalipso-ingest}
SRC=${BENCH_DIR:-/tmp/kalipso-bench-$N-4h}
OUT=$(mktemp -d /tmp/kalipso-follow-XXXXXX)
cargo build --release --quiet
if [ ! -s "$SRC/conn.log" ]; then
    cargo run --release --quiet --example generate -- "$SRC" "$N" 1 4
fi
. scripts/private-redis.sh
cleanup() {
    if [ -n "${DAEMON:-}" ]; then kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; fi
    stop_private_redises
    rm -rf "$OUT"
}
trap cleanup EXIT
private_redis PORT --appendonly no
# Log time spanned by the input, to turn RATE into a replay speed.
lines=$(cat "$SRC"/*.log | grep -vc '^#')
first=$(awk '!/^#/ { print $1; exit }' "$SRC/conn.log")
last=$(awk '!/^#/ { t = $1 } END { print t }' "$SRC/conn.log")
speed=$(awk -v n="$lines" -v a="$first" -v b="$last" -v r="$RATE" 'BEGIN { printf "%.3f", r * (b - a) / n }')
echo "== follow: $lines lines at $RATE lines/s (replay --speed $speed)"
"$BIN" --zeek-dir "$OUT" --home-net 10.0.0.0/16 --timezone UTC \
    --redis-url "redis://127.0.0.1:$PORT/0" --log-level warn ${DAEMON_FLAGS:-} &
DAEMON=$!
sleep 1
/usr/bin/time -f "replay: %e s" ./target/release/kalipso-ingest replay --from "$SRC" --to "$OUT" \
    --speed "$speed" &
WRITER=$!
python3 scripts/follow_latency.py "$OUT" "$PORT" "$WRITER"
wait "$WRITER" || true
grep VmHWM "/proc/$DAEMON/status" | awk '{ printf "daemon peak RSS (MiB):    %.0f\n", $2 / 1024 }'
