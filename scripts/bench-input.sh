# Sourced by the benchmark scripts: the build they measure and the input they measure it on.
#   bench_bin VAR             $BIN when set (another build, not rebuilt), else the release build
#                             of this checkout, built now; the path in $VAR
#   bench_input DIR N HOURS   the generated benchmark in DIR (N conn lines over HOURS hours,
#                             seed 1), made unless DIR already holds it
bench_bin() {
    if [ -n "${BIN:-}" ]; then
        printf -v "$1" '%s' "$BIN"
    else
        cargo build --release --quiet
        printf -v "$1" '%s' ./target/release/kalipso-ingest
    fi
}
bench_input() {
    if [ ! -s "$1/conn.log" ]; then
        cargo run --release --quiet --example generate -- "$1" "$2" 1 "$3"
    fi
}
