# Sourced by the benchmark scripts: a redis-server of their own on a loopback port found free
# (never 6379, never one already answering), stopped at exit by its pid, so a script never
# writes into, nor shuts down, a Redis it did not start.
#   private_redis VAR [redis-server args...]   start one; its port in $VAR
#   stop_private_redises                       stop every one started (call from the EXIT trap)
PRIVATE_REDIS_DIR=$(mktemp -d /tmp/kalipso-redis-XXXXXX)
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
private_redis() {
    local var=$1 port
    shift
    for _ in $(seq 20); do
        port=$(free_port)
        [ "$port" != 6379 ] || continue
        redis-cli -p "$port" ping >/dev/null 2>&1 && continue
        redis-server --port "$port" --bind 127.0.0.1 --save '' --daemonize yes \
            --pidfile "$PRIVATE_REDIS_DIR/$port.pid" --dir "$PRIVATE_REDIS_DIR" \
            --appendfilename "aof-$port.aof" --appenddirname "aof-$port" "$@" >/dev/null || continue
        for _ in $(seq 50); do
            [ -s "$PRIVATE_REDIS_DIR/$port.pid" ] && redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        if [ -s "$PRIVATE_REDIS_DIR/$port.pid" ]; then
            printf -v "$var" '%s' "$port"
            return 0
        fi
    done
    echo "could not start a private redis-server" >&2
    return 1
}
stop_private_redises() {
    local f
    for f in "$PRIVATE_REDIS_DIR"/*.pid; do
        [ -s "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 0.2
    rm -rf "$PRIVATE_REDIS_DIR"
}
