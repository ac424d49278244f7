//! Invariants of the stored layout, computed straight from the log lines (own minimal parsing,
//! not the crate's reader or profiler): counters add up to the conn lines of each profile and
//! window, and profiles exist exactly for the IPs the home-net rule allows.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use common::dump::{hash, stored_anchor};
use common::ingest::ingest;
use common::redis_server::RedisServer;
use common::*;
use ipnetwork::IpNetwork;
use kalipso_ingest::profile::routing::Direction;
use serde_json::Value;

/// The fields every record has: ts, uid, saddr, daddr.
#[derive(Clone, Debug)]
struct Line {
    ts: f64,
    uid: String,
    saddr: IpAddr,
    daddr: IpAddr,
}

/// A field lookup on one line.
type Getter = Box<dyn Fn(&str) -> Option<String>>;

/// The records of a log: JSON lines, or TSV found by `#fields` (no escapes in these fields).
fn lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(f) = l.strip_prefix("#fields\t") {
            fields = f.split('\t').map(str::to_string).collect();
            continue;
        }
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let get: Getter = if l.starts_with('{') {
            let v: Value = serde_json::from_str(l).unwrap();
            Box::new(move |k: &str| match &v[k] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        } else {
            let cols: Vec<String> = l.split('\t').map(str::to_string).collect();
            let idx: BTreeMap<String, usize> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), i))
                .collect();
            Box::new(move |k: &str| idx.get(k).map(|i| cols[*i].clone()))
        };
        let (Some(ts), Some(uid), Some(s), Some(d)) =
            (get("ts"), get("uid"), get("id.orig_h"), get("id.resp_h"))
        else {
            continue;
        };
        let (Ok(saddr), Ok(daddr)) = (s.parse::<IpAddr>(), d.parse::<IpAddr>()) else {
            continue;
        };
        if saddr.is_ipv4() != daddr.is_ipv4() {
            continue;
        }
        out.push(Line {
            ts: ts.parse().unwrap(),
            uid,
            saddr,
            daddr,
        });
    }
    out
}

fn family_flows(v: &str) -> u64 {
    let v: Value = serde_json::from_str(v).unwrap();
    v.as_object()
        .unwrap()
        .values()
        .map(|t| t["totalflows"].as_u64().unwrap())
        .sum()
}

fn check(capture: &str, home: &[&str], direction: Direction) {
    let dir = fixtures().join(capture);
    let server = RedisServer::start();
    ingest(&server, &dir, home, direction);
    let mut con = server.connection();
    let what = format!("{capture} {home:?} {direction:?}");

    let nets: Vec<IpNetwork> = home.iter().map(|h| h.parse().unwrap()).collect();
    let is_home = |ip: IpAddr| nets.is_empty() || nets.iter().any(|n| n.contains(ip));
    let conns = lines(&dir.join("conn.log"));
    let mut all = conns.clone();
    for alt in ["dns", "http", "ssl"] {
        all.extend(lines(&dir.join(format!("{alt}.log"))));
    }
    assert!(!conns.is_empty());

    // Profiles: exactly the home IPs (every IP without a home net) of any record.
    let want: BTreeSet<String> = all
        .iter()
        .flat_map(|l| [l.saddr, l.daddr])
        .filter(|ip| is_home(*ip))
        .map(|ip| format!("profile_{ip}"))
        .collect();
    let got: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg("profiles")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, want, "{what}: profiles");

    // Windows: N from the stored anchor and width.
    let anchor: f64 = stored_anchor(&mut con);
    let n_of = |ts: f64| ((ts - anchor) / 3600.0).floor() as i64 + 1;
    // (window key) → (flows out, flows in, uids, DstIPs counts)
    type Expect = (u64, u64, BTreeSet<String>, BTreeMap<String, u64>);
    let mut expect: BTreeMap<String, Expect> = BTreeMap::new();
    for c in &conns {
        let n = n_of(c.ts);
        if is_home(c.saddr) {
            let e = expect
                .entry(format!("profile_{}_timewindow{n}", c.saddr))
                .or_default();
            e.0 += 1;
            e.2.insert(c.uid.clone());
            *e.3.entry(c.daddr.to_string()).or_default() += 1;
        }
        if direction == Direction::All && is_home(c.daddr) {
            let e = expect
                .entry(format!("profile_{}_timewindow{n}", c.daddr))
                .or_default();
            e.1 += 1;
            e.2.insert(c.uid.clone());
        }
    }
    let windows: BTreeSet<String> = redis::cmd("KEYS")
        .arg("profile_*_timewindow*")
        .query::<Vec<String>>(&mut con)
        .unwrap()
        .into_iter()
        .filter(|k| k.matches('_').count() == 2)
        .collect();
    assert_eq!(
        windows,
        expect.keys().cloned().collect::<BTreeSet<_>>(),
        "{what}: windows"
    );
    for (key, (out, inbound, uids, dst_ips)) in &expect {
        let h = hash(&mut con, key);
        let sum = |prefix: &str| -> u64 {
            h.iter()
                .filter(|(f, _)| f.starts_with(prefix))
                .map(|(_, v)| family_flows(v))
                .sum()
        };
        assert_eq!(sum("DstPortsClient"), *out, "{what}: {key} client flows");
        assert_eq!(
            sum("DstIPsClient"),
            *out,
            "{what}: {key} client flows by IP"
        );
        assert_eq!(
            sum("DstPortsServer"),
            *inbound,
            "{what}: {key} server flows"
        );
        let got: BTreeMap<String, u64> = h
            .get("DstIPs")
            .map(|v| serde_json::from_str(v).unwrap())
            .unwrap_or_default();
        assert_eq!(&got, dst_ips, "{what}: {key} DstIPs");
        let stored: BTreeSet<String> = hash(&mut con, &format!("{key}_flows"))
            .into_keys()
            .collect();
        assert_eq!(&stored, uids, "{what}: {key}_flows");
    }

    // twsprofile lists exactly the windows with data; ModifiedTWForLogs those with conns.
    let modified: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg("ModifiedTWForLogs")
        .query(&mut con)
        .unwrap();
    assert_eq!(modified, windows, "{what}: ModifiedTWForLogs");
    for p in &got {
        let ip = &p["profile_".len()..];
        let tws: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("twsprofile_{ip}"))
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        for tw in &tws {
            let k = format!("{p}_{tw}");
            let data = windows.contains(&k)
                || redis::cmd("EXISTS")
                    .arg(format!("{k}_altflows"))
                    .query::<bool>(&mut con)
                    .unwrap();
            assert!(data, "{what}: {tw} of {p} listed without data");
        }
        for w in windows.iter().filter(|w| w.starts_with(&format!("{p}_"))) {
            let tw = &w[p.len() + 1..];
            assert!(tws.iter().any(|t| t == tw), "{what}: {w} not in twsprofile");
        }
    }
}

#[test]
fn counters_match_the_logs_in_every_case() {
    for (capture, net) in [
        ("slips/test9", "10.0.2.0/24"),
        ("corpus/zat-bro2-2014", "192.168.33.0/24"),
        ("corpus/slips-test10-tsv", "2001:718:2:1663::/64"),
    ] {
        for home in [vec![], vec![net]] {
            for direction in [Direction::Out, Direction::All] {
                check(capture, &home, direction);
            }
        }
    }
}
