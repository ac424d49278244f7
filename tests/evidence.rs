//! Evidence (issue 17): port scans, blocklisted peers and domains, detected windows, exactly as
//! Slips' detection modules of early 2020 wrote them, as a function of the window's records.

mod common;

use std::path::Path;

use common::daemon::{batch_dump_with, command, settle, terminate};
use common::dump::{dump, dump_diff, hash, without_run_state};
use common::ingest::{churn, settings};
use common::redis_server::RedisServer;
use kalipso_ingest::ingest::{IngestOptions, run_once};
use kalipso_ingest::profile::routing::Direction;
use kalipso_ingest::store::redis_store::Target;
use redis::Commands;

const T0: f64 = 1_700_000_000.0;

/// A conn of Zeek's JSON writer: tcp, `S0` (not established) unless `state` says otherwise.
fn conn(ts: f64, uid: &str, src: &str, dst: &str, dport: u16, pkts: u64, state: &str) -> String {
    format!(
        "{{\"ts\":{ts},\"uid\":\"{uid}\",\"id.orig_h\":\"{src}\",\"id.orig_p\":40000,\"id.resp_h\":\"{dst}\",\"id.resp_p\":{dport},\"proto\":\"tcp\",\"duration\":0.5,\"orig_bytes\":0,\"resp_bytes\":0,\"conn_state\":\"{state}\",\"orig_pkts\":{pkts},\"orig_ip_bytes\":{},\"resp_pkts\":0,\"resp_ip_bytes\":0}}\n",
        pkts * 40
    )
}

/// The evidence of a horizontal scan to port 23 of three targets of 1 packet each (10.0.0.1).
const SCAN_AT_B: &str = "{\"dport:23:PortScanType2\": [0.3, 50, \"New horizontal port scan detected to port 23. Not Estab TCP from IP: 10.0.0.1. Tot pkts sent all IPs: 3\"]}";

fn write_conns(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("conn.log"), lines.concat()).unwrap();
}

fn ingest_dir(server: &RedisServer, dir: &Path, opts: &IngestOptions) {
    run_once(&settings(server, dir, &[], Direction::Out), opts).expect("ingest");
}

/// A horizontal scan from 10.0.0.1: `n` targets on port 23, target k sent k % 3 + 1 packets,
/// and, after them, one more flow to the first target (it changes no firing).
fn horizontal(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|k| {
            let dst = format!("10.0.1.{}", k + 1);
            conn(
                T0 + k as f64,
                &format!("Ch{k:03}"),
                "10.0.0.1",
                &dst,
                23,
                k as u64 % 3 + 1,
                "S0",
            )
        })
        .collect();
    v.push(conn(
        T0 + 100.0,
        "Chlast",
        "10.0.0.1",
        "10.0.1.1",
        23,
        5,
        "REJ",
    ));
    v
}

/// A vertical scan from 10.0.0.1 of 10.0.2.1: `n` ports, port k with k % 3 + 1 packets.
fn vertical(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            conn(
                T0 + 200.0 + k as f64,
                &format!("Cv{k:03}"),
                "10.0.0.1",
                "10.0.2.1",
                1000 + k as u16,
                k as u64 % 3 + 1,
                "S0",
            )
        })
        .collect()
}

/// What Slips wrote for a scan of `n` targets with the packets above: the last firing (at
/// the largest multiple of 3), its packets those of the flows up to it.
fn expected_pkts(n: usize) -> Option<(usize, u64)> {
    let fired = n - n % 3;
    (fired >= 3).then(|| (fired, (0..fired).map(|k| k as u64 % 3 + 1).sum()))
}

fn confidence(pkts: u64) -> String {
    if pkts > 10 {
        "1".into()
    } else {
        let c = pkts as f64 / 10.0;
        if c.fract() == 0.0 {
            format!("{c:.1}")
        } else {
            format!("{c}")
        }
    }
}

fn evidence_of(server: &RedisServer, window: &str) -> Option<String> {
    let mut con = server.connection();
    con.hget(window, "Evidence").unwrap()
}

#[test]
fn port_scans_are_exact_at_2_3_5_6_and_9_targets_in_either_order() {
    for n in [2, 3, 5, 6, 9] {
        for reversed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut lines = horizontal(n);
            lines.extend(vertical(n));
            if reversed {
                lines.reverse();
            }
            write_conns(dir.path(), &lines);
            let server = RedisServer::start();
            ingest_dir(&server, dir.path(), &IngestOptions::default());
            let got = evidence_of(&server, "profile_10.0.0.1_timewindow1");
            let want = expected_pkts(n).map(|(fired, pkts)| {
                format!(
                    "{{\"dport:23:PortScanType2\": [{c}, 50, \"New horizontal port scan detected to port 23. Not Estab TCP from IP: 10.0.0.1. Tot pkts sent all IPs: {pkts}\"], \"dstip:10.0.2.1:PortScanType1\": [{c}, 50, \"New vertical port scan detected to IP 10.0.2.1 from 10.0.0.1. Total {fired} dst ports. Not Estab TCP. Tot pkts sent all ports: {pkts}\"]}}",
                    c = confidence(pkts)
                )
            });
            assert_eq!(got, want, "{n} targets, reversed: {reversed}");
            let mut con = server.connection();
            let blocked: Vec<String> = con.smembers("BlockedProfTW").unwrap();
            let request: Option<String> = con
                .hget("profile_10.0.0.1_timewindow1", "BlockRequest")
                .unwrap();
            if want.is_some() {
                // 2 × 50 × confidence ≥ 30 > 6: detected with the default threshold.
                assert_eq!(blocked, vec!["profile_10.0.0.1_timewindow1".to_string()]);
                assert_eq!(request.as_deref(), Some("True"));
            } else {
                assert!(blocked.is_empty() && request.is_none(), "{n}: {blocked:?}");
            }
        }
    }
}

#[test]
fn established_udp_and_inbound_flows_are_no_port_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for k in 0..6 {
        let dst = format!("10.0.1.{}", k + 1);
        lines.push(conn(
            T0 + k as f64,
            &format!("Ce{k}"),
            "10.0.0.1",
            &dst,
            80,
            4,
            "SF",
        ));
    }
    write_conns(dir.path(), &lines);
    let server = RedisServer::start();
    ingest_dir(&server, dir.path(), &IngestOptions::default());
    assert_eq!(evidence_of(&server, "profile_10.0.0.1_timewindow1"), None);
}

/// A capture with a horizontal scan split over two windows, a vertical one, a blocklisted peer
/// (IPv4 and IPv6) and a query of a listed domain.
fn mixed_capture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut lines = Vec::new();
    for k in 0..8u64 {
        // Four targets before the window boundary, four after (windows of 3600 s from T0's).
        let ts = T0 - T0 % 3600.0 + 3590.0 + k as f64 * 3.0;
        let dst = format!("192.0.2.{}", k + 10);
        lines.push(conn(
            ts,
            &format!("Cs{k}"),
            "10.0.0.5",
            &dst,
            445,
            k % 2 + 1,
            "S0",
        ));
    }
    for k in 0..7u16 {
        lines.push(conn(
            T0 + 10.0 + f64::from(k),
            &format!("Cp{k}"),
            "10.0.0.6",
            "198.51.100.7",
            20 + k,
            1,
            "REJ",
        ));
    }
    lines.push(conn(
        T0 + 30.0,
        "Cbad4",
        "10.0.0.7",
        "203.0.113.66",
        443,
        3,
        "SF",
    ));
    lines.push(conn(
        T0 + 31.0,
        "Cbad6",
        "2001:db8::7",
        "2001:db8:bad::1",
        443,
        3,
        "SF",
    ));
    lines.push(conn(
        T0 + 32.0,
        "Cdns1",
        "10.0.0.8",
        "10.0.0.53",
        53,
        1,
        "SF",
    ));
    write_conns(dir, &lines);
    std::fs::write(
        dir.join("dns.log"),
        format!(
            "{{\"ts\":{},\"uid\":\"Cdns1\",\"id.orig_h\":\"10.0.0.8\",\"id.orig_p\":40000,\"id.resp_h\":\"10.0.0.53\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"www.Evil.example.\",\"qtype_name\":\"A\",\"rcode_name\":\"NOERROR\",\"answers\":[\"203.0.113.66\"],\"TTLs\":[60.0]}}\n",
            T0 + 32.1
        ),
    )
    .unwrap();
    let lists = dir.parent().unwrap().join(format!(
        "lists-{}",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&lists).unwrap();
    let ips = lists.join("ips.txt");
    std::fs::write(
        &ips,
        "# a comment\n203.0.113.66 known C2 server\n2001:db8:bad::/48,IPv6 botnet\n",
    )
    .unwrap();
    let domains = lists.join("domains.txt");
    std::fs::write(&domains, "evil.example phishing kit\n").unwrap();
    (ips, domains)
}

#[test]
fn follow_mode_and_reloaded_windows_give_the_once_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    let (ips, domains) = mixed_capture(&capture);
    let ips = ips.to_string_lossy().into_owned();
    let domains = domains.to_string_lossy().into_owned();
    let flags = ["--blocklist", &ips, "--domain-blocklist", &domains];
    let want = batch_dump_with(&capture, &flags);

    // The values, once.
    let server = RedisServer::start();
    common::daemon::once_with(&capture, &server, &flags);
    let mut con = server.connection();
    let keys: Vec<String> = con.keys("profile_10.0.0.5_timewindow*").unwrap();
    let split: Vec<String> = keys
        .into_iter()
        .filter(|k| k.ends_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(split.len(), 2, "{split:?}");
    let mut scans = String::new();
    for w in &split {
        if let Some(e) = con.hget::<_, _, Option<String>>(w, "Evidence").unwrap() {
            scans.push_str(&e);
        }
    }
    // Four targets on each side of the boundary: each window fired once, at its third.
    assert_eq!(scans.matches("PortScanType2").count(), 2, "{scans}");
    let w = hash(&mut con, "profile_10.0.0.7_timewindow1");
    assert_eq!(
        w.get("Evidence").map(String::as_str),
        Some(
            "{\"dstip:203.0.113.66:ThreatIntelligenceBlacklist\": [1, 50, \"Threat Intelligence. known C2 server\"]}"
        )
    );
    assert_eq!(w.get("BlockRequest").map(String::as_str), Some("True"));
    let w6 = hash(&mut con, "profile_2001:db8::7_timewindow1");
    assert_eq!(
        w6.get("Evidence").map(String::as_str),
        Some(
            "{\"dstip:2001:db8:bad::1:ThreatIntelligenceBlacklist\": [1, 50, \"Threat Intelligence. IPv6 botnet\"]}"
        )
    );
    let wd = hash(&mut con, "profile_10.0.0.8_timewindow1");
    assert_eq!(
        wd.get("Evidence").map(String::as_str),
        Some(
            "{\"domain:www.evil.example:ThreatIntelligenceBlacklistDomain\": [1, 50, \"Threat Intelligence. phishing kit\"]}"
        )
    );
    let info: Option<String> = con.hget("IPsInfo", "203.0.113.66").unwrap();
    assert_eq!(
        info.as_deref(),
        Some("{\"Malicious\": \"known C2 server\"}")
    );
    let clean: Option<String> = con.hget("IPsInfo", "198.51.100.7").unwrap();
    assert_eq!(clean.as_deref(), Some("{}"));
    let blocked: std::collections::BTreeSet<String> = con.smembers("BlockedProfTW").unwrap();
    for w in [
        "profile_10.0.0.6_timewindow1",
        "profile_10.0.0.7_timewindow1",
        "profile_2001:db8::7_timewindow1",
        "profile_10.0.0.8_timewindow1",
    ] {
        assert!(blocked.contains(w), "{w} not in {blocked:?}");
    }

    // Every window evicted and reloaded along the way: the same database.
    let server = RedisServer::start();
    let mut s = settings(&server, &capture, &[], Direction::Out);
    s.enrich.blocklists = vec![ips.clone().into()];
    s.enrich.domain_blocklists = vec![domains.clone().into()];
    s.clock = kalipso_ingest::timeline::Clock::Utc;
    s.label = "malicious".into();
    run_once(&s, &churn()).expect("ingest");
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "reloaded windows differ:\n{}",
        dump_diff(&got, &want)
    );

    // Follow mode, the lines arriving in two parts.
    let live = dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let conns = std::fs::read_to_string(capture.join("conn.log")).unwrap();
    let cut = conns[..conns.len() / 2].rfind('\n').unwrap() + 1;
    std::fs::write(live.join("conn.log"), &conns[..cut]).unwrap();
    std::fs::copy(capture.join("dns.log"), live.join("dns.log")).unwrap();
    let server = RedisServer::start();
    let child = command(&live, &server)
        .args(flags)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    settle(&server);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(live.join("conn.log"))
        .unwrap();
    f.write_all(&conns.as_bytes()[cut..]).unwrap();
    drop(f);
    std::thread::sleep(std::time::Duration::from_secs(2));
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    // What the daemon leaves unfinished (windows still open) a --once pass over the same
    // directory completes; the result is the one batch pass's.
    common::daemon::once_with(&live, &server, &flags);
    let got = without_run_state(dump(&mut server.connection()));
    let want_live = batch_dump_with(&live, &flags);
    assert!(
        got == want_live,
        "follow mode differs:\n{}",
        dump_diff(&got, &want_live)
    );
}

#[test]
fn the_detection_threshold_edge() {
    // One horizontal scan of 3 targets with 1 packet each: confidence 0.3, evidence 15.0;
    // threshold 0.25 × 3600 / 60 = 15.0 is reached, 0.2501 is not.
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..3)
        .map(|k| {
            conn(
                T0 + f64::from(k),
                &format!("Ct{k}"),
                "10.0.0.1",
                &format!("10.0.1.{k}"),
                23,
                1,
                "S0",
            )
        })
        .collect();
    write_conns(dir.path(), &lines);
    for (threshold, detected) in [(0.25, true), (0.2501, false)] {
        let server = RedisServer::start();
        let mut s = settings(&server, dir.path(), &[], Direction::Out);
        s.detection_threshold = threshold;
        run_once(&s, &IngestOptions::default()).expect("ingest");
        let mut con = server.connection();
        let w = hash(&mut con, "profile_10.0.0.1_timewindow1");
        assert_eq!(w.get("Evidence").map(String::as_str), Some(SCAN_AT_B));
        assert_eq!(
            w.contains_key("BlockRequest"),
            detected,
            "threshold {threshold}"
        );
        let n: usize = con.scard("BlockedProfTW").unwrap();
        assert_eq!(n, usize::from(detected), "threshold {threshold}");
    }
}

#[test]
fn blocklists_in_every_form_with_malformed_lines_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    let peers = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "203.0.113.9",
        "2001:db8:1::5",
        "192.0.2.200",
    ];
    let lines: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let src = if p.contains(':') {
                "2001:db8::1"
            } else {
                "10.0.0.1"
            };
            conn(T0 + i as f64, &format!("Cl{i}"), src, p, 443, 4, "SF")
        })
        .collect();
    write_conns(&capture, &lines);
    let list = dir.path().join("mixed.txt");
    std::fs::write(
        &list,
        [
            "#    \"Number\",\"IP address\",\"Rating\", \"Description\"",
            "198.51.100.1",
            "198.51.100.2   spam source",
            "\"0\", \"198.51.100.3\",\"90\", \"Karel from our village. He is bad guy.\"",
            "203.0.113.0/24,scanner net",
            "2001:db8:1::/48 v6 range",
            "not an address at all",
            "300.1.1.1 bad octet",
            "",
        ]
        .join("\n"),
    )
    .unwrap();
    let server = RedisServer::start();
    let out = command(&capture, &server)
        .args(["--once", "--no-progress", "--blocklist"])
        .arg(&list)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let at = |line: usize| format!("{}:{line}", list.display());
    assert!(
        stderr.contains(&at(7)) && stderr.contains(&at(8)),
        "{stderr}"
    );
    assert!(
        stderr.contains("malformed=2") && stderr.contains("entries=5"),
        "{stderr}"
    );
    let mut con = server.connection();
    let info =
        |con: &mut redis::Connection, ip: &str| -> String { con.hget("IPsInfo", ip).unwrap() };
    let listed_in = format!("listed in {}", list.file_name().unwrap().to_string_lossy());
    for (ip, what) in [
        ("198.51.100.1", listed_in.as_str()),
        ("198.51.100.2", "spam source"),
        ("198.51.100.3", "Karel from our village. He is bad guy."),
        ("203.0.113.9", "scanner net"),
        ("2001:db8:1::5", "v6 range"),
    ] {
        assert_eq!(
            info(&mut con, ip),
            format!("{{\"Malicious\": \"{what}\"}}"),
            "{ip}"
        );
    }
    assert_eq!(info(&mut con, "192.0.2.200"), "{}");
    let w = hash(&mut con, "profile_10.0.0.1_timewindow1");
    let e = w.get("Evidence").cloned().unwrap_or_default();
    assert!(e.starts_with("{\"dstip:198.51.100.1:ThreatIntelligenceBlacklist\": [1, 50, \"Threat Intelligence. listed in mixed.txt\"], \"dstip:198.51.100.2:"), "{e}");
    assert_eq!(e.matches("ThreatIntelligenceBlacklist").count(), 4, "{e}");
    // The listed peer's timeline line carries its IPsInfo after the `|`, as Slips rendered it.
    let lines: Vec<String> = con
        .lrange("profile_10.0.0.1_timewindow1_timeline", 0, -1)
        .unwrap();
    assert!(
        lines[1].ends_with("| Malicious='spam source'\n"),
        "{lines:?}"
    );
    // The summary's reading: every detected window counted, the evidence of the first `read`.
    let mut store =
        kalipso_ingest::store::redis_store::RedisStore::connect(&Target::new(&server.url()))
            .unwrap();
    let all = store.detections(5, 100).unwrap();
    let first = store.detections(5, 1).unwrap();
    assert_eq!((all.count, all.top.len()), (2, 2), "{all:?}");
    assert_eq!((first.count, first.top.len()), (2, 1), "{first:?}");
    // A missing list is an error at start naming the flag.
    let out = command(&capture, &server)
        .args([
            "--once",
            "--no-progress",
            "--blocklist",
            "/nonexistent/list.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--blocklist /nonexistent/list.txt"),
        "{stderr}"
    );
}

#[test]
fn a_late_flow_that_lowers_a_scan_takes_the_detection_back() {
    // A, B, C (20 packets) to port 23 fire at C: 22 packets, confidence 1, evidence 50. D, a
    // fourth target earlier than all of them, moves the firing to B: 3 packets, 0.3, 15 —
    // below the threshold of 0.5 × 3600 / 60 = 30. A first run over A, B, C writes the window
    // detected (a batch run writes a window's fields when it closes: at the end of the run);
    // D, appended and read by the next run, takes the detection back, as one run over all
    // four (one flush, or a flush every 3 records with every window evicted) never makes it.
    let dir = tempfile::tempdir().unwrap();
    let lines = vec![
        conn(T0 + 10.0, "Cla", "10.0.0.1", "10.0.1.1", 23, 1, "S0"),
        conn(T0 + 11.0, "Clb", "10.0.0.1", "10.0.1.2", 23, 1, "S0"),
        conn(T0 + 12.0, "Clc", "10.0.0.1", "10.0.1.3", 23, 20, "S0"),
        conn(T0 + 1.0, "Cld", "10.0.0.1", "10.0.1.4", 23, 1, "S0"),
    ];
    write_conns(dir.path(), &lines[..3]);
    let server = RedisServer::start();
    let mut s = settings(&server, dir.path(), &[], Direction::Out);
    s.detection_threshold = 0.5;
    run_once(&s, &IngestOptions::default()).expect("ingest");
    let w = hash(&mut server.connection(), "profile_10.0.0.1_timewindow1");
    assert_eq!(
        w.get("BlockRequest").map(String::as_str),
        Some("True"),
        "{w:?}"
    );
    write_conns(dir.path(), &lines);
    run_once(&s, &IngestOptions::default()).expect("ingest");
    let mut dumps = vec![check_taken_back(&server)];
    for opts in [IngestOptions::default(), churn()] {
        let server = RedisServer::start();
        let mut s = settings(&server, dir.path(), &[], Direction::Out);
        s.detection_threshold = 0.5;
        run_once(&s, &opts).expect("ingest");
        dumps.push(check_taken_back(&server));
    }
    for other in &dumps[1..] {
        assert!(dumps[0] == *other, "{}", dump_diff(other, &dumps[0]));
    }
}

/// The window of `a_late_flow_that_lowers_a_scan_takes_the_detection_back` once D is in: its
/// evidence below the threshold, not detected; the database's dump.
fn check_taken_back(server: &RedisServer) -> serde_json::Value {
    let mut con = server.connection();
    let w = hash(&mut con, "profile_10.0.0.1_timewindow1");
    assert_eq!(w.get("Evidence").map(String::as_str), Some(SCAN_AT_B));
    assert!(!w.contains_key("BlockRequest"), "{w:?}");
    let n: usize = con.scard("BlockedProfTW").unwrap();
    assert_eq!(n, 0);
    without_run_state(dump(&mut con))
}
