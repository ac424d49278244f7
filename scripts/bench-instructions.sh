#!/usr/bin/env bash
# make bench-instructions: the ingestor's instructions per flow, independent of the machine's
# load — `valgrind --tool=callgrind` over one `--once` of the generated N-line benchmark
# (default 125,000 conn lines over 4 h, as the figures in docs/performance.md) into a private
# Redis; prints the total, per flow, and the functions with the most instructions
# (self cost). FLAGS adds options to the ingest; OUT=FILE keeps callgrind's output (for
# `callgrind_annotate --tree=caller FILE`); BIN=PATH measures another build (not rebuilt);
# THREADS=1 also prints each thread's instructions and its outermost functions of ours (what
# bounds the scaling with cores: the main thread's share).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-125000}
HOURS=${HOURS:-4}
DIR=${BENCH_DIR:-/tmp/kalipso-bench-$N-${HOURS}h}
. scripts/private-redis.sh
. scripts/bench-input.sh
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/kalipso-instr.XXXXXX)
trap 'stop_private_redises; rm -rf "$WORK"' EXIT
bench_bin BIN
bench_input "$DIR" "$N" "$HOURS"
private_redis PORT --appendonly no
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$BIN" \
    --zeek-dir "$DIR" --once --home-net 10.0.0.0/16 --timezone UTC \
    --redis-url "redis://127.0.0.1:$PORT/0" --no-progress --log-level warn ${FLAGS:-} \
    >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
flows=$(sed -n 's/.*flows profiled: \([0-9]*\).*/\1/p' "$WORK/out" "$WORK/err" | head -1)
total=$(callgrind_annotate "$WORK/cg.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "== $N conn lines over $HOURS h: $flows flows ${FLAGS:-}"
awk -v t="$total" -v f="$flows" 'BEGIN {printf "instructions: %.2f G, %.0f per flow\n", t / 1e9, t / f}'
callgrind_annotate "$WORK/cg.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '2,21p'
[ -z "${OUT:-}" ] || cp "$WORK/cg.out" "$OUT"
if [ -n "${THREADS:-}" ]; then
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/thr.out" "$BIN" \
        --zeek-dir "$DIR" --once --home-net 10.0.0.0/16 --timezone UTC \
        --redis-url "redis://127.0.0.1:$PORT/1" --no-progress --log-level warn ${FLAGS:-} \
        >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    echo "== per thread"
    for f in "$WORK"/thr.out-*; do
        n=$(callgrind_annotate "$f" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d , || true)
        top=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null \
            | sed -n 's/.*kalipso_ingest::\([A-Za-z_:<>]*\).*/\1/p' | awk '!seen[$0]++' | head -3 | paste -sd'>' || true)
        awk -v n="$n" -v t="$total" -v f="$flows" -v top="$top" \
            'BEGIN {printf "%6.2f G %5.1f %% %7.0f per flow  %s\n", n / 1e9, 100 * n / t, n / f, top}'
    done
fi
