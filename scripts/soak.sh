#!/usr/bin/env bash
# make soak: the daemon follows a replay of HOURS (default 48) hours of generated traffic,
# compressed in time (SPEED, default 900: an hour in 4 s), with --retain RETAIN (default 6h),
# into a private Redis; every simulated hour it prints Redis used_memory, the daemon's RSS, how
# far behind the replay it is (seconds of data time) and the records/s it committed. With the
# retention, Redis memory must level off after RETAIN and stay flat; the daemon's RSS too.
# A figure, not a test (docs/performance.md has the curve).
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${HOURS:-48}
N=${N:-480000}
SPEED=${SPEED:-900}
RETAIN=${RETAIN:-6h}
SRC=${SOAK_DIR:-/tmp/kalipso-soak-$N-${HOURS}h}
BIN=${BIN:-./target/release/kalipso-ingest}
OUT=$(mktemp -d /tmp/kalipso-soak-XXXXXX)
cargo build --release --quiet
if [ ! -s "$SRC/conn.log" ]; then
    cargo run --release --quiet --example generate -- "$SRC" "$N" 1 "$HOURS"
fi
. scripts/private-redis.sh
cleanup() {
    for p in "${DAEMON:-}" "${WRITER:-}"; do
        [ -n "$p" ] && { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
    done
    stop_private_redises
    rm -rf "$OUT"
}
trap cleanup EXIT
private_redis PORT --appendonly no
"$BIN" --zeek-dir "$OUT" --home-net 10.0.0.0/16 --timezone UTC --retain "$RETAIN" \
    --redis-url "redis://127.0.0.1:$PORT/0" --log-level warn &
DAEMON=$!
"$BIN" replay --from "$SRC" --to "$OUT" --speed "$SPEED" --rotate-every 60 >/dev/null &
WRITER=$!
first=$(awk '!/^#/ { print $1; exit }' "$SRC/conn.log")
start=$(date +%s.%N)
echo "sim_hour used_memory_MiB daemon_rss_MiB behind_s records_per_s windows"
python3 - "$PORT" "$DAEMON" "$WRITER" "$first" "$SPEED" "$start" "$HOURS" <<'PY'
import json, os, socket, sys, time
port, daemon, writer, first, speed, start, hours = sys.argv[1:]
first, speed, start, hours = float(first), float(speed), float(start), int(hours)
s = socket.create_connection(("127.0.0.1", int(port))); f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in (str(v).encode() for v in a)))
    return read()
def read():
    line = f.readline(); t, rest = line[:1], line[1:-2]
    if t in b"+-:": return rest.decode()
    if t == b"$":
        n = int(rest); return None if n < 0 else f.read(n + 2)[:-2].decode()
    if t == b"*": return [read() for _ in range(int(rest))]
def rss(pid):
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmRSS:"): return int(l.split()[1]) / 1024
    except OSError: return float("nan")
def committed():
    cps = cmd("HGETALL", "kalipso-ingest:checkpoints") or []
    return sum(json.loads(v).get("line", 0) for v in cps[1::2])
last_n, last_t, hour = committed(), time.time(), 1
while hour <= hours:
    due = start + hour * 3600 / speed
    while time.time() < due: time.sleep(0.05)
    info = cmd("INFO", "memory")
    used = int(next(l.split(":")[1] for l in info.split("\r\n") if l.startswith("used_memory:")))
    marks = cmd("HGET", "kalipso-ingest:watermarks", "conn")
    now_data = first + (time.time() - start) * speed
    behind = now_data - float(marks) if marks else float("nan")
    n, t = committed(), time.time()
    windows = cmd("ZCARD", "kalipso-ingest:windows")
    print(f"{hour:8d} {used / 2**20:15.1f} {rss(daemon):14.1f} {behind:8.1f} {(n - last_n) / (t - last_t):13.0f} {windows}", flush=True)
    last_n, last_t, hour = n, t, hour + 1
PY
