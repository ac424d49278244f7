#!/usr/bin/env python3
"""Train the zstd dictionary of --no-flows' compact records (src/model/records/vN.dict).

Ingests every capture of ../shared/zeek-corpus/ (real Zeek logs) with --no-flows into a Redis
you started for it (never 6379: it is flushed), reads the frames back, and trains a 32 KiB
dictionary on their payloads. A new dictionary is a new frame version: frames written with an
old one must stay readable (src/model/records/frame.rs).

    pip install zstandard redis
    redis-server --port 23499 --save '' --daemonize yes
    scripts/train-records-dict.py 23499 src/model/records/v2.dict
"""
import glob
import os
import subprocess
import sys

import redis
import zstandard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "zeek-corpus")
BINARY = os.path.join(ROOT, "target", "release", "kalipso-ingest")
DICTS = {0: None, 1: os.path.join(ROOT, "src", "model", "records", "v1.dict")}


def payload(frame):
    path = DICTS.get(frame[0], "unknown")
    if path == "unknown":
        raise ValueError(f"frame version {frame[0]}")
    d = zstandard.ZstdCompressionDict(open(path, "rb").read()) if path else None
    return zstandard.ZstdDecompressor(dict_data=d).decompressobj().decompress(frame[1:])


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    assert port != 6379, "never the default Redis"
    r = redis.Redis(port=port)
    payloads = []
    for d in sorted(os.listdir(CORPUS)):
        top = os.path.join(CORPUS, d)
        if not os.path.isdir(top):
            continue
        for sub in [top] + sorted(x for x in glob.glob(top + "/*") if os.path.isdir(x)):
            r.flushall()
            subprocess.run([BINARY, "--zeek-dir", sub, "--once", "--direction", "all",
                            "--no-flows", "--redis-url", f"redis://127.0.0.1:{port}/0",
                            "--no-progress", "--log-level", "error"], capture_output=True)
            for k in r.scan_iter(match=b"kalipso-ingest:recs:*", count=5000):
                payloads += [payload(f) for f in r.lrange(k, 0, -1)]
    r.flushall()
    print(f"{len(payloads)} payloads, {sum(map(len, payloads))} bytes", file=sys.stderr)
    d = zstandard.train_dictionary(32768, payloads)
    open(out, "wb").write(d.as_bytes())


if __name__ == "__main__":
    main()
