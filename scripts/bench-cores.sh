#!/usr/bin/env bash
# How the ingest's rate depends on the cores it may use: a private Redis pinned to the last
# CPU, then `--once` over the generated N-line benchmark (default 500,000 over 4 h) pinned to
# the first 1, 2, … CPUs (`taskset`), each into an empty database, ROUNDS times alternately.
# Prints flows/s and the ingestor's CPU per run. With CPUs to spare the ingestor is measured
# with Redis on a core of its own; on a small machine the last run shares Redis' core.
# Where the instructions go per thread (what bounds the scaling): `make bench-instructions`
# with `THREADS=1` (see docs/performance.md).
# FLAGS adds options to the ingest; BIN=PATH measures another build (not rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500000}
HOURS=${HOURS:-4}
ROUNDS=${ROUNDS:-2}
DIR=${BENCH_DIR:-/tmp/kalipso-bench-$N-${HOURS}h}
. scripts/private-redis.sh
. scripts/bench-input.sh
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/kalipso-cores.XXXXXX)
trap 'stop_private_redises; rm -rf "$WORK"' EXIT
bench_bin BIN
bench_input "$DIR" "$N" "$HOURS"
cpus=$(nproc)
last=$((cpus - 1))
private_redis PORT --appendonly no
taskset -pc "$last" "$(cat "$PRIVATE_REDIS_DIR/$PORT.pid")" >/dev/null
echo "== $N conn lines over $HOURS h ${FLAGS:-}; Redis on CPU $last of $cpus"
for round in $(seq "$ROUNDS"); do
    for k in $(seq "$cpus"); do
        redis-cli -p "$PORT" flushall >/dev/null
        /usr/bin/time -f '%e %U %S' -o "$WORK/time" taskset -c "0-$((k - 1))" "$BIN" \
            --zeek-dir "$DIR" --once --home-net 10.0.0.0/16 --timezone UTC \
            --redis-url "redis://127.0.0.1:$PORT/0" --no-progress --log-level warn ${FLAGS:-} \
            >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
        read -r wall user sys <"$WORK/time"
        flows=$(sed -n 's/.*flows profiled: \([0-9]*\).*/\1/p' "$WORK/out" "$WORK/err" | head -1)
        awk -v k="$k" -v r="$round" -v w="$wall" -v u="$user" -v s="$sys" -v f="$flows" -v l="$last" \
            'BEGIN {printf "round %d, CPUs 0-%d%s: %.1f s, %.0f flows/s, ingestor %.2f us CPU/flow\n",
                    r, k - 1, (k - 1 >= l ? " (Redis shares one)" : ""), w, f / w, (u + s) * 1e6 / f}'
    done
done
