//! The Zeek reader against real logs: every pristine log parses with zero errors and yields one
//! record per data line; broken files report exactly their bad lines and still yield the rest.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use kalipso_ingest::zeek::{LineErrorKind, LogKind, Record};

/// Data lines as an independent count: non-empty lines that are not header/comment lines.
fn data_lines(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed: &[u8] = {
            let n = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
            &line[n..]
        };
        if line.is_empty()
            || line.starts_with(b"#")
            || line.starts_with(b"PREFIX<>")
            || trimmed.starts_with(b"#separator ")
        {
            continue;
        }
        out.push(i as u64 + 1);
    }
    out
}

/// Files that are not Zeek logs at all.
fn is_log_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.ends_with(".md")
        || name.ends_with(".tsv")
        || name.ends_with(".csv")
        || name == "SHA256SUMS")
}

/// Expected malformed lines of the deliberately broken files, by path relative to the corpus.
fn expected_bad_lines(rel: &str, data: &[u64]) -> Option<Vec<u64>> {
    Some(match rel {
        "rita-truncated/conn.log" => vec![67],
        "rita-truncated/conn_top.log" => data.to_vec(),
        "rita-has-unknown-field/http.log" => vec![9],
        "slips-test10-tsv/notice.log" => vec![21],
        _ => return None,
    })
}

/// Canonified btest baselines carry `XXXXXXXXXX.XXXXXX` for times: give them a real one.
fn decanonify(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("XXXXXXXXXX.XXXXXX") {
        text.replace("XXXXXXXXXX.XXXXXX", "1234567890.123456")
            .into_bytes()
    } else {
        bytes
    }
}

fn check_corpus(root: &Path, skip: &[&str]) -> usize {
    let mut checked = 0;
    for path in files_below(root).into_iter().filter(|p| is_log_file(p)) {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if skip.iter().any(|s| rel.starts_with(s)) {
            continue;
        }
        let bytes = decanonify(file_bytes(&path));
        let data = data_lines(&bytes);
        let kind = LogKind::from_file_name(&path);
        let got = read_bytes(&rel, &bytes, kind);
        let bad: Vec<u64> = got.errors.iter().map(|e| e.line).collect();
        let expected_bad = expected_bad_lines(&rel, &data).unwrap_or_default();
        assert_eq!(
            bad,
            expected_bad,
            "{rel}: malformed lines {:?}",
            got.errors.first()
        );
        assert_eq!(
            got.records.len() + bad.len(),
            data.len(),
            "{rel}: records + malformed must equal the data lines"
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_fixture_log_reads_exactly_its_data_lines() {
    let n = check_corpus(&fixtures().join("corpus"), &[]);
    assert!(n > 150, "only {n} files checked");
    let n = check_corpus(&fixtures().join("slips"), &["oracle/"]);
    assert_eq!(n, 9);
}

#[test]
fn every_shared_corpus_log_reads_exactly_its_data_lines() {
    let Some(root) = shared_corpus() else {
        return;
    };
    // kishpud is corrupted on purpose: checked separately below.
    let n = check_corpus(&root, &["kishpud-soc-lab/"]);
    assert!(n > 250, "only {n} files checked");
}

#[test]
fn corrupted_capture_reports_its_bad_lines_and_keeps_the_rest() {
    let Some(root) = shared_corpus() else {
        return;
    };
    // Field-count mismatches per the corpus MANIFEST (records glued together or cut).
    let expected: BTreeMap<&str, usize> = [
        ("conn.log", 1),
        ("dns.log", 5),
        ("http.log", 1),
        ("ssl.log", 36),
        ("quic.log", 31),
    ]
    .into();
    for (name, bad) in expected {
        let path = root.join("kishpud-soc-lab").join(name);
        let bytes = file_bytes(&path);
        let got = read_file(&path);
        assert_eq!(got.errors.len(), bad, "{name}");
        assert!(
            got.errors
                .iter()
                .all(|e| matches!(e.kind, LineErrorKind::ColumnCount { .. }))
        );
        assert_eq!(got.records.len() + bad, data_lines(&bytes).len(), "{name}");
    }
}

#[test]
fn record_counts_match_the_manifest() {
    let corpus = fixtures().join("corpus");
    let count = |rel: &str| read_file(&corpus.join(rel)).records.len();
    assert_eq!(count("zat-bro2-2014/conn.log"), 360);
    assert_eq!(count("zat-bro2-2014/http.log"), 150);
    assert_eq!(count("zat-json-zeek3/ssl.log"), 50);
    assert_eq!(count("slips-test10-tsv/conn.log"), 141);
    assert_eq!(count("slips-test18-labeled/conn.log.labeled"), 766);
    assert_eq!(
        count("rita-proxy-rolling/conn.15:00:00-16:00:00.log.gz")
            + count("rita-proxy-rolling/conn.16:00:00-17:00:00.log.gz"),
        7550
    );
    assert_eq!(count("zed-wrccdc-zeek620/zeek-default/dns.log.gz"), 53615);
}

/// Records of one file, sorted so that two formats of one run line up.
fn sorted_records(path: &Path) -> Vec<Record<'static>> {
    let got = read_file(path);
    assert!(
        got.errors.is_empty(),
        "{}: {:?}",
        path.display(),
        got.errors.first()
    );
    assert!(got.io_error.is_none());
    let mut recs = got.records;
    recs.sort_by(|a, b| {
        (a.uid(), a.ts())
            .partial_cmp(&(b.uid(), b.ts()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    recs
}

#[test]
fn tsv_and_json_of_the_same_run_give_identical_records() {
    let corpus = fixtures().join("corpus");
    for (tsv, json) in [
        (
            "zed-wrccdc-zeek620/zeek-default/dns.log.gz",
            "zed-wrccdc-zeek620/zeek-json/dns.json.gz",
        ),
        (
            "zed-wrccdc-zeek620/zeek-default/ssl.log.gz",
            "zed-wrccdc-zeek620/zeek-json/ssl.json.gz",
        ),
        (
            "zed-wrccdc-zeek300/zeek-default/dns.log.gz",
            "zed-wrccdc-zeek300/zeek-ndjson/dns.ndjson.gz",
        ),
        (
            "zed-wrccdc-zeek300/zeek-default/ssl.log.gz",
            "zed-wrccdc-zeek300/zeek-ndjson/ssl.ndjson.gz",
        ),
    ] {
        let a = sorted_records(&corpus.join(tsv));
        let b = sorted_records(&corpus.join(json));
        assert_eq!(a.len(), b.len(), "{tsv}");
        assert!(!a.is_empty());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{tsv} vs {json}");
        }
    }
}

#[test]
fn escaped_queries_decode_like_the_json_writer() {
    // NetBIOS queries with NUL bytes: TSV `\x00` decodes to the 4-character text JSON holds.
    let corpus = fixtures().join("corpus");
    let recs = sorted_records(&corpus.join("zed-wrccdc-zeek300/zeek-default/dns.log.gz"));
    let queries: Vec<&str> = recs
        .iter()
        .filter_map(|r| match r {
            Record::Dns(d) => d.query.as_deref(),
            _ => None,
        })
        .filter(|q| q.contains("\\x00"))
        .collect();
    assert!(queries.len() > 1000, "{}", queries.len());
    assert!(queries.contains(&r"*\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"));
}
