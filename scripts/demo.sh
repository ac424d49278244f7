#!/usr/bin/env bash
# make demo: ingest the bundled sample into Redis and say how to look at it.
# Uses $REDIS_URL when given; otherwise the Redis on 127.0.0.1:6379 (the one Kalipso reads),
# starting a throw-away one there (no persistence) when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE=${SAMPLE:-fixtures/corpus/slips-test10-tsv}
BLOCKLIST=${BLOCKLIST:-fixtures/demo/blocklist.txt}
# Country and ASN when the user has MaxMind-format databases (GEOIP_DB=..., ASN_DB=...).
extra=()
[ -n "$BLOCKLIST" ] && extra+=(--blocklist "$BLOCKLIST")
[ -n "${GEOIP_DB:-}" ] && extra+=(--geoip-db "$GEOIP_DB")
[ -n "${ASN_DB:-}" ] && extra+=(--asn-db "$ASN_DB")
BIN=./target/release/kalipso-ingest

started=""
if [ -z "${REDIS_URL:-}" ]; then
    REDIS_URL=redis://127.0.0.1:6379/0
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        echo "== using the Redis already running on 127.0.0.1:6379"
    else
        echo "== starting a demo Redis on 127.0.0.1:6379 (no persistence)"
        redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
        for _ in $(seq 50); do
            redis-cli -p 6379 ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        started=yes
    fi
fi

echo "== kalipso-ingest --zeek-dir $SAMPLE --once --reset --redis-url $REDIS_URL ${extra[*]}"
"$BIN" --zeek-dir "$SAMPLE" --once --reset --redis-url "$REDIS_URL" --no-progress --log-level warn "${extra[@]}"

cli() { redis-cli -u "$REDIS_URL" "$@"; }
echo
echo "== what Redis holds now"
echo "profiles:            $(cli scard profiles)"
echo "timewindow hashes:   $(cli --scan --pattern 'profile_*_timewindow*' | grep -vc '_flows\|_altflows\|_timeline' || true)"
busiest=$(for k in $(cli --scan --pattern 'profile_*_timewindow*_flows'); do
    echo "$(cli hlen "$k") ${k%_flows}"; done | sort -rn | head -1)
echo "busiest window:      ${busiest#* } (${busiest%% *} flows)"
echo "its DstIPs:          $(cli hget "${busiest#* }" DstIPs | cut -c1-150)..."
echo "its OutTuples:       $(cli hget "${busiest#* }" OutTuples | cut -c1-150)..."
echo
echo "== detected windows (red in Kalipso) and their evidence"
for w in $(cli smembers BlockedProfTW | sort); do
    echo "$w: $(cli hget "$w" Evidence)"
done
if [ -z "${GEOIP_DB:-}${ASN_DB:-}" ]; then
    echo "(country and ASN: set GEOIP_DB and ASN_DB to MaxMind-format databases, e.g. DB-IP lite)"
else
    echo "IPsInfo of 185.247.224.89: $(cli hget IPsInfo 185.247.224.89)"
fi
echo
echo "== the first 20 timeline lines of ${busiest#* } (what Kalipso shows for it)"
cli --raw lrange "${busiest#* }_timeline" 0 19 | sed -e '/^$/d' 
echo
echo "== open it in Kalipso"
echo "Kalipso of Slips early 2020 (modules/blessed) reads 127.0.0.1:6379 database 0; its folder"
echo "has no package.json, so install the versions that work from contrib/kalipso-2020/:"
echo "    git clone https://github.com/stratosphereips/StratosphereLinuxIPS /tmp/slips"
echo "    git -C /tmp/slips checkout b8d89a5d1"
echo "    cp contrib/kalipso-2020/package*.json /tmp/slips/modules/blessed/"
echo "    cd /tmp/slips/modules/blessed && npm ci && node ips_timewindows.js"
echo "Tab leaves the welcome box; Enter opens a profile and shows a window's timeline and"
echo "evidence; detected profiles and windows are red; 'o' reloads the tree; 'q' quits."
if [ -n "$started" ]; then
    echo "Stop the demo Redis afterwards with: redis-cli -p 6379 shutdown nosave"
fi
