#!/usr/bin/env bash
# scripts/digest-check.sh OLD_BIN NEW_BIN: the rule of performance work — Redis content
# byte-identical for the same options. Runs both builds with `--once` on every directory of
# the corpus (CORPUS, default ../shared/zeek-corpus, else fixtures/corpus) and on the benchmark
# directory (BENCH_DIR, default the 125 k benchmark, generated if missing) under each option set
# below, each into a fresh private Redis, and compares DEBUG DIGEST. Prints one line per
# difference and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "$1")
NEW=$(realpath "$2")
CORPUS=${CORPUS:-../shared/zeek-corpus}
[ -d "$CORPUS" ] || CORPUS=fixtures/corpus
BENCH_DIR=${BENCH_DIR:-/tmp/kalipso-bench-125000-4h}
. scripts/private-redis.sh
. scripts/bench-input.sh
trap stop_private_redises EXIT
bench_input "$BENCH_DIR" 125000 4
private_redis PORT --appendonly no --enable-debug-command local
OPTION_SETS=(
    ""
    "--direction all"
    "--no-flows"
    "--layout kalipso --direction all"
)
dirs=$(find "$CORPUS" -type f \( -name 'conn*' -o -name 'dns*' -o -name 'ssl*' -o -name 'http*' \) \
    -printf '%h\n' | sort -u)
digest() { # bin dir options...
    local bin=$1 dir=$2
    shift 2
    redis-cli -p "$PORT" flushall >/dev/null
    "$bin" --zeek-dir "$dir" --once --home-net 10.0.0.0/8 --timezone UTC \
        --redis-url "redis://127.0.0.1:$PORT/0" --no-progress --log-level error "$@" \
        >/dev/null 2>&1 || echo "exit $?"
    # Every database the layouts use (IPsInfo may live in another one).
    for db in 0 1; do redis-cli -p "$PORT" -n "$db" debug digest; done | tr '\n' ' '
}
bad=0
n=0
for dir in $dirs "$BENCH_DIR"; do
    for opts in "${OPTION_SETS[@]}"; do
        # shellcheck disable=SC2086
        a=$(digest "$OLD" "$dir" $opts)
        # shellcheck disable=SC2086
        b=$(digest "$NEW" "$dir" $opts)
        n=$((n + 1))
        if [ "$a" != "$b" ]; then
            echo "DIFFERENT: $dir $opts: $a vs $b"
            bad=1
        fi
    done
done
echo "$n runs compared: $([ $bad = 0 ] && echo identical || echo DIFFERENCES)"
exit $bad
