//! One test per reader edge case, on real logs (or real logs with a documented change).

mod common;

use std::net::IpAddr;

use common::*;
use kalipso_ingest::zeek::{Format, LineErrorKind, LogKind, Record};

fn corpus(rel: &str) -> std::path::PathBuf {
    fixtures().join("corpus").join(rel)
}

fn conns(recs: &[Record<'static>]) -> Vec<kalipso_ingest::zeek::ConnRecord<'static>> {
    recs.iter()
        .filter_map(|r| match r {
            Record::Conn(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn escaped_set_separator_stays_inside_one_element() {
    // slips-test10 dns.log: TXT answers holding `\x2c` (a comma inside one answer).
    let got = read_file(&corpus("slips-test10-tsv/dns.log"));
    assert!(got.errors.is_empty());
    let raw = String::from_utf8(file_bytes(&corpus("slips-test10-tsv/dns.log"))).unwrap();
    let escaped_lines = raw.lines().filter(|l| l.contains("\\x2c")).count();
    assert!(escaped_lines > 0);
    let with_comma = got
        .records
        .iter()
        .filter(|r| match r {
            Record::Dns(d) => {
                d.answers.iter().flatten().any(|a| a.contains(','))
                    || d.query.as_deref().is_some_and(|q| q.contains(','))
            }
            _ => false,
        })
        .count();
    assert_eq!(with_comma, escaped_lines);
}

#[test]
fn unset_and_empty_markers() {
    // zat-bro2-2014 dns.log: `-` answers are unset, `(empty)` sets are empty lists.
    let got = read_file(&corpus("zeek-cut-logs/conn.log"));
    let c = &conns(&got.records)[0];
    assert_eq!(c.duration, Some(0.112432));
    // local_orig `-` is not read; `service` present:
    assert_eq!(c.service.as_deref(), Some("ftp-data"));
    let text = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tquery\tanswers\tTTLs\n#types\ttime\tstring\tstring\tvector[string]\tvector[interval]\n1.0\tC1\t-\t(empty)\t-\n2.0\tC2\t(empty)\ta,b\t1.0,2.0\n";
    let got = read_bytes("dns.log", text.as_bytes(), None);
    let Record::Dns(d) = &got.records[0] else {
        panic!()
    };
    assert_eq!(
        (
            d.query.as_deref(),
            d.answers.as_ref().map(Vec::len),
            &d.ttls
        ),
        (None, Some(0), &None)
    );
    let Record::Dns(d) = &got.records[1] else {
        panic!()
    };
    assert_eq!(d.query.as_deref(), Some(""));
    assert_eq!(d.answers.as_ref().unwrap(), &["a", "b"]);
    // A custom unset marker (zeek-cut-logs/unset-field.log uses `(unset_test)`).
    let got = read_file(&corpus("zeek-cut-logs/unset-field.log"));
    assert!(got.errors.is_empty());
    assert_eq!(got.records.len(), 1);
}

#[test]
fn ipv6_endpoints() {
    let got = read_file(&corpus("slips-test10-tsv/conn.log"));
    assert!(got.errors.is_empty());
    let v6 = conns(&got.records)
        .into_iter()
        .filter(|c| matches!(c.id.orig_h, Some(IpAddr::V6(_))))
        .count();
    assert!(v6 > 10, "{v6}");
}

#[test]
fn header_blocks_mid_file_switch_the_schema() {
    // btest ssl-log-ext: 9 header blocks with different columns in one file.
    let bytes = String::from_utf8(file_bytes(&corpus(
        "zeek-btest/scripts.policy.protocols.ssl.ssl-log-ext/ssl-all.log",
    )))
    .unwrap()
    .replace("XXXXXXXXXX.XXXXXX", "1.5");
    let got = read_bytes("ssl.log", bytes.as_bytes(), None);
    assert!(got.errors.is_empty());
    assert_eq!(got.records.len(), 12);
    assert!(
        got.records
            .iter()
            .all(|r| matches!(r, Record::Ssl(s) if s.ts == Some(1.5)))
    );
}

#[test]
fn close_footer_then_a_json_block() {
    let text = "#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n1.0\tC1\n#close\t2020-01-01-00-00-00\n{\"ts\":2.0,\"uid\":\"C2\"}\n";
    let mut reader = kalipso_ingest::source::reader::from_reader(
        "conn.log",
        text.as_bytes(),
        Some(LogKind::Conn),
    );
    let mut uids = Vec::new();
    while let Some(r) = reader.next() {
        uids.push(r.unwrap().uid().map(str::to_owned));
    }
    assert_eq!(uids, [Some("C1".into()), Some("C2".into())]);
    assert_eq!(reader.format(), Some(Format::Json));
}

#[test]
fn unknown_extra_columns_are_ignored() {
    // rita-has-unknown-field: header with `i_dont_exist`, one short line, no trailing newline.
    let got = read_file(&corpus("rita-has-unknown-field/http.log"));
    assert_eq!(got.records.len(), 4);
    assert_eq!(got.errors.len(), 1);
    assert!(
        got.records
            .iter()
            .all(|r| matches!(r, Record::Http(h) if h.method.is_some()))
    );
    // slips-test18: label columns appended.
    let got = read_file(&corpus("slips-test18-labeled/conn.log.labeled"));
    assert!(got.errors.is_empty());
    // cluster `_node_name` first column.
    let got = read_file(&corpus("rita-proxy-rolling/conn.15:00:00-16:00:00.log.gz"));
    assert!(got.errors.is_empty());
    assert!(
        conns(&got.records)
            .iter()
            .all(|c| c.uid.is_some() && c.ts.is_some())
    );
}

#[test]
fn reordered_columns_give_the_same_records() {
    // conntimelast.log has the conn.log records with `ts` moved to the last column; its
    // `#path` is `conntimelast`, read here as conn.
    let last = String::from_utf8(file_bytes(&corpus("zeek-cut-logs/conntimelast.log")))
        .unwrap()
        .replace("#path\tconntimelast", "#path\tconn");
    let a = read_bytes("conn.log", last.as_bytes(), None);
    let b = read_file(&corpus("zeek-cut-logs/conn.log"));
    assert!(a.errors.is_empty() && b.errors.is_empty());
    let n = a.records.len();
    assert!(n >= 4 && n <= b.records.len());
    assert_eq!(a.records[..], b.records[..n]);
}

#[test]
fn other_separators_and_comma_logs() {
    let got = read_file(&corpus("zeek-cut-logs/conncomma.log"));
    assert!(got.errors.is_empty());
    assert!(conns(&got.records).iter().all(|c| c.id.orig_h.is_some()));
    let got = read_file(&corpus(
        "zeek-btest-writer/scripts.base.frameworks.logging.ascii-escape/ssh.log",
    ));
    assert!(
        got.errors.is_empty()
            || got
                .errors
                .iter()
                .all(|e| matches!(e.kind, LineErrorKind::BadValue { field: "ts", .. }))
    );
}

#[test]
fn gzip_and_corrupt_gzip() {
    let got = read_file(&corpus("zat-misc/http.log.gz"));
    assert_eq!(got.records.len(), 150);
    assert!(got.io_error.is_none());
    let got = read_file(&corpus("zat-misc/http.log.corrupt.gz"));
    assert_eq!(
        got.records.len(),
        150,
        "every record before the cut is read"
    );
    assert!(got.io_error.unwrap().contains("http.log.corrupt.gz"));
    let got = read_file(&corpus("zat-misc/http_empty.log"));
    assert_eq!((got.records.len(), got.errors.len()), (0, 0));
}

#[test]
fn truncated_last_line_is_reported_as_such() {
    let got = read_file(&corpus("rita-truncated/conn.log"));
    assert_eq!(got.records.len(), 58);
    assert_eq!(got.errors.len(), 1);
    let e = &got.errors[0];
    assert_eq!(e.line, 67);
    assert!(e.unterminated);
    assert!(e.to_string().contains("rita-truncated/conn.log:67"), "{e}");
    // A complete last record without a newline is not lost.
    let text = String::from_utf8(file_bytes(&corpus("zeek-cut-logs/conn.log"))).unwrap();
    let cut: String = text
        .lines()
        .filter(|l| !l.starts_with("#close"))
        .collect::<Vec<_>>()
        .join("\n");
    let all = read_bytes("conn.log", text.as_bytes(), None).records.len();
    let got = read_bytes("conn.log", cut.as_bytes(), None);
    assert!(!cut.ends_with('\n'));
    assert_eq!(got.records.len(), all);
    assert!(got.errors.is_empty());
}

#[test]
fn garbage_between_good_lines_is_skipped_and_counted() {
    let clean = file_bytes(&corpus("slips-test10-tsv/conn.log"));
    let good = read_bytes("conn.log", &clean, None);
    assert!(good.errors.is_empty());
    let garbage: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff\xfe binary".to_vec(),
        b"{\"ts\": 1.0, broken json".to_vec(),
        vec![b'x'; 2 << 20],
        b"1.0\tCshort\t1.2.3.4".to_vec(),
        b"\xc3\x28 invalid utf8 \xff".to_vec(),
        b"17".to_vec(),
    ];
    let mut mixed = Vec::new();
    let mut bad_lines = Vec::new();
    let mut line_no = 0u64;
    for (i, line) in clean.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        mixed.extend_from_slice(line);
        mixed.push(b'\n');
        line_no += 1;
        if i > 9 && i % 20 == 0 {
            let g = &garbage[(i / 20) % garbage.len()];
            mixed.extend_from_slice(g);
            mixed.push(b'\n');
            line_no += 1;
            bad_lines.push(line_no);
        }
    }
    let got = read_bytes("conn.log", &mixed, None);
    assert_eq!(got.records, good.records, "every good line still read");
    assert_eq!(
        got.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        bad_lines
    );
    assert!(
        got.errors
            .iter()
            .any(|e| matches!(e.kind, LineErrorKind::TooLong { .. }))
    );
}

#[test]
fn json_lines_variants() {
    // zat-json-zeek3: unset fields are omitted keys.
    let got = read_file(&corpus("zat-json-zeek3/conn.log"));
    assert!(got.errors.is_empty());
    assert_eq!(got.records.len(), 50);
    // ISO timestamps, nulls, millis, and invalid UTF-8 inside a JSON line.
    let text: &[u8] = b"{\"ts\":\"2020-02-27T13:26:40.123456Z\",\"uid\":\"C1\",\"proto\":null}\n{\"ts\":1582810000123,\"uid\":\"C2\"}\n{\"ts\":1.0,\"uid\":\"\xff\"}\n[1,2]\n{\"ts\":1582810000.5,\"uid\":\"C3\",\"id.orig_h\":\"fe80::1\",\"id.orig_p\":1,\"id.resp_h\":\"ff02::1\",\"id.resp_p\":2}\n";
    let got = read_bytes("conn.log", text, Some(LogKind::Conn));
    let c = conns(&got.records);
    assert_eq!(c.len(), 3);
    assert_eq!(
        (c[0].ts, c[0].proto.as_deref()),
        (Some(1582810000.123456), None)
    );
    assert_eq!(c[1].ts, Some(1582810000.123));
    assert!(matches!(c[2].id.resp_h, Some(IpAddr::V6(_))));
    assert_eq!(
        got.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        [3, 4]
    );
}

#[test]
fn look_alike_files_are_not_picked_up_from_a_directory() {
    let found = kalipso_ingest::source::find_logs(&corpus("rita-open-sni"), false).unwrap();
    assert!(found.is_empty(), "{found:?}");
    let found = kalipso_ingest::source::find_logs(&corpus("rita-proxy-rolling"), false).unwrap();
    let names: Vec<_> = found
        .iter()
        .map(|(p, k)| (p.file_name().unwrap().to_string_lossy().into_owned(), *k))
        .collect();
    assert_eq!(names.len(), 8);
    assert_eq!(
        names[0],
        ("conn.15:00:00-16:00:00.log.gz".to_string(), LogKind::Conn)
    );
}

#[test]
fn fuzz_regressions_do_not_hang_or_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for path in files_below(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        for kind in [
            None,
            Some(LogKind::Conn),
            Some(LogKind::Dns),
            Some(LogKind::Http),
            Some(LogKind::Ssl),
        ] {
            let body = bytes.get(1..).unwrap_or_default();
            let _ = read_bytes("fuzz.log", body, kind);
        }
    }
}
