#!/usr/bin/env python3
"""Measure follow mode while a replay writes a log directory.

Samples every few milliseconds how far each log has been written (its size) and how far
kalipso-ingest has committed it to Redis (the offset in `kalipso-ingest:checkpoints`), until
every log is committed to its end and the writer is done. Prints the sustained rate (lines
written / time until everything was visible in Redis) and the latency from a byte written to
that byte committed (p50, p90, p99, max, weighted by bytes).

Usage: follow_latency.py DIR REDIS_PORT WRITER_PID
"""

import json
import os
import socket
import sys
import time

LOGS = ["conn.log", "dns.log", "http.log", "ssl.log"]


class Redis:
    """One connection, RESP by hand (a redis-cli process per sample cost 8 % of the machine)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", int(port)))
        self.buf = self.sock.makefile("rb")

    def command(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.reply()

    def reply(self):
        line = self.buf.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest.decode()


def committed(redis):
    """path -> committed offset, from the checkpoints hash."""
    out = redis.command("HGETALL", "kalipso-ingest:checkpoints")
    offsets = {}
    for value in out[1::2]:
        try:
            c = json.loads(value)
        except ValueError:
            continue
        path = os.path.basename(c.get("path", ""))
        offsets[path] = max(offsets.get(path, 0), int(c.get("offset", 0)))
    return offsets


def main():
    directory, port, writer = sys.argv[1], sys.argv[2], int(sys.argv[3])
    redis = Redis(port)
    sizes = {name: [] for name in LOGS}  # name -> [(t, size)]
    done = {name: 0 for name in LOGS}
    samples = []  # (latency, bytes)
    start = time.monotonic()
    writer_done = None
    last_poll = 0.0
    while True:
        now = time.monotonic()
        for name in LOGS:
            try:
                size = os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
            s = sizes[name]
            if not s or s[-1][1] != size:
                s.append((now, size))
        if writer_done is None:
            try:
                os.kill(writer, 0)
            except ProcessLookupError:
                writer_done = now
        if now - last_poll >= 0.05:
            last_poll = now
            offsets = committed(redis)
            t = time.monotonic()
            for name in LOGS:
                new = offsets.get(name, 0)
                old = done[name]
                if new <= old:
                    continue
                prev = 0
                for ts, size in sizes[name]:
                    lo, hi = max(prev, old), min(size, new)
                    if hi > lo:
                        samples.append((t - ts, hi - lo))
                    prev = size
                    if size >= new:
                        break
                done[name] = new
            caught_up = all(
                not sizes[n] or done[n] >= sizes[n][-1][1] for n in LOGS
            )
            if writer_done is not None and caught_up:
                end = t
                break
        time.sleep(0.005)
    lines = 0
    for name in LOGS:
        try:
            with open(os.path.join(directory, name), "rb") as f:
                lines += sum(1 for line in f if not line.startswith(b"#"))
        except FileNotFoundError:
            pass
    samples.sort()
    total = sum(b for _, b in samples)

    def pct(p):
        acc = 0
        for lat, b in samples:
            acc += b
            if acc >= p * total:
                return lat
        return samples[-1][0] if samples else float("nan")

    elapsed = end - start
    print(f"lines written:            {lines}")
    print(f"writer finished after:    {writer_done - start:.2f} s")
    print(f"all visible in Redis at:  {elapsed:.2f} s")
    print(f"sustained lines/s:        {lines / elapsed:.0f}")
    print(
        "latency written->Redis:   p50 {:.3f} s, p90 {:.3f} s, p99 {:.3f} s, max {:.3f} s".format(
            pct(0.5), pct(0.9), pct(0.99), samples[-1][0] if samples else float("nan")
        )
    )


if __name__ == "__main__":
    main()
