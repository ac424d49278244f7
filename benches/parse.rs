//! Criterion benchmarks of the Zeek reader: TSV and JSON conn.log parsing, lines/s and bytes/s.

use std::hint::black_box;
use std::io::Read;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kalipso_ingest::source::reader::from_reader;
use kalipso_ingest::zeek::LogKind;

/// Header plus the data lines of a real log repeated to about `target` data lines.
fn corpus_log(rel: &str, target: usize) -> (Vec<u8>, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    let raw = std::fs::read(&path).expect("fixture");
    let mut text = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut text)
            .expect("gunzip");
    } else {
        text = raw;
    }
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let (header, data): (Vec<&[u8]>, Vec<&[u8]>) = lines
        .into_iter()
        .filter(|l| !l.starts_with(b"#close"))
        .partition(|l| l.starts_with(b"#"));
    let mut out = Vec::new();
    for h in &header {
        out.extend_from_slice(h);
        out.push(b'\n');
    }
    let mut n = 0;
    while n < target {
        for d in &data {
            out.extend_from_slice(d);
            out.push(b'\n');
            n += 1;
        }
    }
    (out, n)
}

fn parse_all(bytes: &[u8]) -> usize {
    let mut reader = from_reader("bench.log", bytes, Some(LogKind::Conn));
    let mut n = 0;
    while let Some(item) = reader.next() {
        if item.is_ok() {
            n += 1;
        }
    }
    n
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("conn_parse");
    group.sample_size(20);
    for (name, rel) in [
        (
            "tsv",
            "corpus/rita-proxy-rolling/conn.15:00:00-16:00:00.log.gz",
        ),
        ("json", "slips/test9/conn.log"),
    ] {
        let (bytes, lines) = corpus_log(rel, 200_000);
        assert_eq!(parse_all(&bytes), lines, "{name}: every line parses");
        group.throughput(Throughput::Elements(lines as u64));
        group.bench_function(format!("{name}_lines"), |b| {
            b.iter(|| parse_all(black_box(&bytes)))
        });
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{name}_bytes"), |b| {
            b.iter(|| parse_all(black_box(&bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
