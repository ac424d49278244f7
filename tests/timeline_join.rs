//! The uid join on real captures: every conn that has dns/ssl/http records with its uid gets one
//! sub-line per record, right under its own main line, and no other conn gets them. The
//! expectation is computed from the logs with the tests' own minimal parser.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::dump::stored_anchor;
use common::ingest::ingest;
use common::redis_server::RedisServer;
use common::*;
use kalipso_ingest::profile::routing::Direction;
use kalipso_ingest::source::find_logs;
use kalipso_ingest::zeek::LogKind;

type Rec = BTreeMap<String, String>;
/// An alt record as its kind and the values of [`ALT_FIELDS`].
type AltKey = (LogKind, Vec<Option<String>>);

/// The fields of each alt kind that make up its `_altflows` value (duplicates of all of them
/// are one record).
const ALT_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.resp_h",
    "query",
    "qclass_name",
    "qtype_name",
    "rcode_name",
    "answers",
    "TTLs",
    "method",
    "host",
    "uri",
    "version",
    "user_agent",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
    "resp_mime_types",
    "resp_fuids",
    "cipher",
    "resumed",
    "established",
    "cert_chain_fuids",
    "client_cert_chain_fuids",
    "subject",
    "issuer",
    "validation_status",
    "curve",
    "server_name",
];

/// A text the record's sub-line must contain, when it is plain enough to predict.
fn marker(kind: LogKind, r: &Rec) -> Option<String> {
    let plain = |s: &String| s.is_ascii() && !s.contains('\\') && !s.contains(',');
    match kind {
        LogKind::Dns => r
            .get("query")
            .filter(|q| plain(q))
            .map(|q| format!("Query: {q},")),
        LogKind::Http => match (r.get("host"), r.get("uri")) {
            (Some(h), Some(u)) if plain(h) && plain(u) => Some(format!("http://{h}{u} ")),
            _ => None,
        },
        _ => r
            .get("server_name")
            .filter(|s| plain(s))
            .map(|s| format!("\t- {s}. Issuer")),
    }
}

fn check(dir: &Path) -> usize {
    let server = RedisServer::start();
    ingest(&server, dir, &[], Direction::Out);
    let mut con = server.connection();
    let anchor: f64 = stored_anchor(&mut con);

    let files = find_logs(dir, false).unwrap();
    let mut conns: Vec<Rec> = Vec::new();
    let mut alts: BTreeMap<String, BTreeSet<AltKey>> = BTreeMap::new();
    let mut markers: BTreeMap<AltKey, Option<String>> = BTreeMap::new();
    for (path, kind) in &files {
        for r in simple_records(path) {
            if *kind == LogKind::Conn {
                conns.push(r);
                continue;
            }
            let Some(uid) = r.get("uid").cloned() else {
                continue;
            };
            let key: Vec<Option<String>> = ALT_FIELDS.iter().map(|f| r.get(*f).cloned()).collect();
            markers.insert((*kind, key.clone()), marker(*kind, &r));
            alts.entry(uid).or_default().insert((*kind, key));
        }
    }

    // Each window's conns with a main line, in (ts, uid) order, first copy of a uid only.
    let mut windows: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    for c in &conns {
        let (Some(ts), Some(uid), Some(s), Some(d), Some(proto)) = (
            c.get("ts").and_then(|t| t.parse::<f64>().ok()),
            c.get("uid"),
            c.get("id.orig_h")
                .and_then(|a| a.parse::<std::net::IpAddr>().ok()),
            c.get("id.resp_h")
                .and_then(|a| a.parse::<std::net::IpAddr>().ok()),
            c.get("proto"),
        ) else {
            continue;
        };
        if s.is_ipv4() != d.is_ipv4() || !["tcp", "udp", "icmp"].contains(&proto.as_str()) {
            continue;
        }
        let n = ((ts - anchor) / 3600.0).floor() as i64 + 1;
        windows
            .entry(format!("profile_{s}_timewindow{n}_timeline"))
            .or_default()
            .push((ts, uid.clone()));
    }

    let mut joined = 0;
    for (key, mut list) in windows {
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut seen = BTreeSet::new();
        list.retain(|(_, uid)| seen.insert(uid.clone()));
        let lines: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        let mut i = 0;
        for (_, uid) in &list {
            let main = &lines[i];
            assert!(
                !main[27..].starts_with('\t'),
                "{key}: expected the main line of {uid}, got {main:?}"
            );
            i += 1;
            let subs: Vec<&String> = lines[i..]
                .iter()
                .take_while(|l| l[27..].starts_with('\t'))
                .collect();
            i += subs.len();
            for s in &subs {
                assert_eq!(
                    &s[..27],
                    &main[..27],
                    "{key}: a sub-line of {uid} with another time"
                );
            }
            let records = alts.get(uid).cloned().unwrap_or_default();
            if records.is_empty() {
                assert!(
                    subs.len() <= 1
                        && subs
                            .iter()
                            .all(|s| s.contains(&format!("Check UID {uid}\n"))),
                    "{key}: {uid} has no dns/ssl/http record but got {subs:?}"
                );
                continue;
            }
            joined += 1;
            assert_eq!(
                subs.len(),
                records.len(),
                "{key}: sub-lines of {uid}: {subs:?}"
            );
            for r in &records {
                if let Some(Some(m)) = markers.get(r) {
                    assert!(
                        subs.iter().any(|s| s.contains(m.as_str())),
                        "{key}: no sub-line of {uid} shows {m:?}: {subs:?}"
                    );
                }
            }
        }
        assert_eq!(i, lines.len(), "{key}: lines left over");
    }
    joined
}

#[test]
fn every_joined_conn_gets_exactly_its_sub_lines_on_fixture_captures() {
    for capture in [
        "slips/test9",
        "corpus/rita-proxy",
        "corpus/rita-proxy-rolling",
        "corpus/zat-bro2-2014",
        "corpus/zat-json-zeek3",
        "corpus/slips-test10-tsv",
        "seeds",
    ] {
        let joined = check(&fixtures().join(capture));
        eprintln!("{capture}: {joined} conns with dns/ssl/http sub-lines");
        assert!(joined > 0, "{capture}: no conn with a dns/ssl/http record");
    }
}

#[test]
fn every_joined_conn_gets_exactly_its_sub_lines_on_the_shared_corpus() {
    let Some(corpus) = shared_corpus() else {
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let dir = entry.unwrap().path();
        let files = find_logs(&dir, false).unwrap_or_default();
        let has = |k: LogKind| files.iter().any(|(_, fk)| *fk == k);
        if dir.is_dir()
            && has(LogKind::Conn)
            && (has(LogKind::Dns) || has(LogKind::Http) || has(LogKind::Ssl))
            && !dir.to_string_lossy().contains("kishpud")
        // deliberately broken files
        {
            let joined = check(&dir);
            eprintln!(
                "{}: {joined} conns with dns/ssl/http sub-lines",
                dir.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} corpus captures checked");
}
