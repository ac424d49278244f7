# kalipso-ingest: the two README commands (demo, test) and a few helpers.
SAMPLE ?= fixtures/slips/test9
CARGO ?= cargo

.PHONY: demo test deps build lint bench bench-ceiling bench-instructions bench-cores fuzz chaos soak

## demo: build, ingest the bundled sample into Redis (started on 127.0.0.1:6379 when none
## answers there; REDIS_URL=... to use another), print the summary and how to open Kalipso.
demo: deps build
	SAMPLE=$(SAMPLE) ./scripts/demo.sh

## test: formatting, lints, then every test (unit, integration, doc).
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet
	$(CARGO) test --doc
	$(CARGO) test --lib --bins --tests

## chaos: the service under faults alone (tests/service_faults.rs and the daemon's kill,
## restart and rotation cases in tests/follow_daemon.rs), with Redis down for 60 s.
chaos: deps
	KALIPSO_OUTAGE_SECS=60 $(CARGO) test --release --test service_faults --test follow_daemon

## soak: the daemon follows 48 simulated hours with --retain 6h; Redis memory and the daemon's
## RSS per simulated hour (they must level off). A figure for docs/performance.md, not a test.
soak: deps build
	./scripts/soak.sh

deps:
	@./scripts/ensure-deps.sh

build:
	$(CARGO) build --release --quiet

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## bench: criterion benchmarks, the parser throughput on the bundled logs, then the end-to-end
## benchmark (scripts/bench.sh: N=2,000,000 generated conn lines into a private Redis) and the
## follow-mode benchmark (scripts/bench-follow.sh: replay at RATE=50,000 lines/s, latency).
bench: build
	$(CARGO) bench --bench parse
	$(CARGO) bench --bench pipeline
	$(CARGO) run --release --quiet --example parse_throughput -- \
		fixtures/corpus/rita-proxy-rolling/conn.15:00:00-16:00:00.log.gz \
		fixtures/corpus/zed-wrccdc-zeek620/zeek-default/dns.log.gz \
		fixtures/corpus/zed-wrccdc-zeek620/zeek-json/dns.json.gz \
		fixtures/slips/test9/conn.log
	./scripts/bench.sh
	./scripts/bench-follow.sh

## bench-ceiling: how fast Redis alone absorbs the writes of the N-line benchmark (default
## 500,000): the ingest's writes logged by Redis, replayed by redis-cli into an empty Redis.
bench-ceiling: build
	./scripts/bench-redis-ceiling.sh

## bench-instructions: the ingestor's instructions per flow (callgrind, the 125 k benchmark;
## THREADS=1 for each thread's share).
bench-instructions: build
	./scripts/bench-instructions.sh

## bench-cores: the ingest's rate with the ingestor pinned to 1, 2, ... CPUs, Redis to the last.
bench-cores: build
	./scripts/bench-cores.sh

## fuzz: ten minutes of cargo-fuzz on the reader (needs a nightly toolchain and cargo-fuzz).
fuzz:
	cd fuzz && cargo +nightly fuzz run parse_log -- -max_total_time=600 -max_len=65536
