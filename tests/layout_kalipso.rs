//! `--layout kalipso` (issue 18): the shapes the current Kalipso reads, exact, the same through
//! eviction and reload and in follow mode, and a database that refuses the other layout.

mod common;

use std::path::Path;

use common::daemon::{batch_dump_with, command, once_with, settle, terminate};
use common::dump::{dump, dump_diff, hash, without_run_state};
use common::ingest::{churn, settings};
use common::redis_server::RedisServer;
use kalipso_ingest::ingest::{IngestOptions, run_once};
use kalipso_ingest::model::layout::Layout;
use kalipso_ingest::profile::routing::Direction;
use redis::Commands;

const T0: f64 = 1_700_000_000.0;

fn conn(ts: f64, uid: &str, src: &str, dst: &str, proto: &str, dport: u16, state: &str) -> String {
    format!(
        "{{\"ts\":{ts},\"uid\":\"{uid}\",\"id.orig_h\":\"{src}\",\"id.orig_p\":8,\"id.resp_h\":\"{dst}\",\"id.resp_p\":{dport},\"proto\":\"{proto}\",\"duration\":1.23456,\"orig_bytes\":100,\"resp_bytes\":250,\"conn_state\":\"{state}\",\"orig_pkts\":3,\"orig_ip_bytes\":260,\"resp_pkts\":4,\"resp_ip_bytes\":450}}\n"
    )
}

/// A capture: http, dns, ssl, an icmp echo, an unknown port, a port scan (3 targets), all from
/// 10.0.0.1, and a conn from outside to it.
fn capture(dir: &Path) {
    let mut conns = vec![
        conn(T0, "Chttp", "10.0.0.1", "93.184.216.34", "tcp", 80, "SF"),
        conn(T0 + 1.0, "Cdns", "10.0.0.1", "10.0.0.53", "udp", 53, "SF"),
        conn(
            T0 + 2.0,
            "Cssl",
            "10.0.0.1",
            "93.184.216.35",
            "tcp",
            443,
            "SF",
        ),
        conn(T0 + 3.0, "Cicmp", "10.0.0.1", "8.8.8.8", "icmp", 0, "OTH"),
        conn(
            T0 + 4.0,
            "Cunk",
            "10.0.0.1",
            "93.184.216.36",
            "tcp",
            31337,
            "SF",
        ),
        conn(T0 + 9.0, "Cin", "198.51.100.9", "10.0.0.1", "tcp", 22, "SF"),
    ];
    for k in 0..3 {
        let dst = format!("192.0.2.{}", k + 1);
        conns.push(conn(
            T0 + 5.0 + f64::from(k),
            &format!("Cs{k}"),
            "10.0.0.1",
            &dst,
            "tcp",
            23,
            "S0",
        ));
    }
    std::fs::write(dir.join("conn.log"), conns.concat()).unwrap();
    std::fs::write(
        dir.join("http.log"),
        format!("{{\"ts\":{},\"uid\":\"Chttp\",\"id.orig_h\":\"10.0.0.1\",\"id.orig_p\":8,\"id.resp_h\":\"93.184.216.34\",\"id.resp_p\":80,\"method\":\"GET\",\"host\":\"example.com\",\"uri\":\"/index.html\",\"version\":\"1.1\",\"user_agent\":\"curl/8.0\",\"request_body_len\":0,\"response_body_len\":1256,\"status_code\":200,\"status_msg\":\"OK\",\"resp_mime_types\":[\"text/html\"]}}\n", T0 + 0.1),
    )
    .unwrap();
    std::fs::write(
        dir.join("dns.log"),
        format!("{{\"ts\":{},\"uid\":\"Cdns\",\"id.orig_h\":\"10.0.0.1\",\"id.orig_p\":8,\"id.resp_h\":\"10.0.0.53\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"example.com\",\"qtype_name\":\"A\",\"rcode_name\":\"NOERROR\",\"answers\":[\"93.184.216.34\"],\"TTLs\":[60.0]}}\n", T0 + 1.01),
    )
    .unwrap();
    std::fs::write(
        dir.join("ssl.log"),
        format!("{{\"ts\":{},\"uid\":\"Cssl\",\"id.orig_h\":\"10.0.0.1\",\"id.orig_p\":8,\"id.resp_h\":\"93.184.216.35\",\"id.resp_p\":443,\"version\":\"TLSv13\",\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"resumed\":false,\"established\":true,\"subject\":\"CN=example.org,O=Example\",\"validation_status\":\"ok\",\"server_name\":\"example.org\"}}\n", T0 + 2.1),
    )
    .unwrap();
}

fn ingest(server: &RedisServer, dir: &Path, direction: Direction, opts: &IngestOptions) {
    let mut s = settings(server, dir, &[], direction);
    s.layout = Layout::Kalipso;
    s.redis.layout = Layout::Kalipso;
    run_once(&s, opts).expect("ingest");
}

const W: &str = "profile_10.0.0.1_timewindow1";

#[test]
fn the_timeline_is_a_zset_of_json_entries_with_their_info() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let server = RedisServer::start();
    ingest(
        &server,
        dir.path(),
        Direction::Out,
        &IngestOptions::default(),
    );
    let mut con = server.connection();
    let kind: String = redis::cmd("TYPE")
        .arg(format!("{W}_timeline"))
        .query(&mut con)
        .unwrap();
    assert_eq!(kind, "zset");
    let entries: Vec<(String, f64)> = con
        .zrange_withscores(format!("{W}_timeline"), 0, -1)
        .unwrap();
    let texts: Vec<&str> = entries.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(entries[0].1, T0);
    assert_eq!(
        texts[0],
        r#"{"timestamp": "2023/11/14 22:13:20.000000", "dport_name": "HTTP", "preposition": "to", "dns_resolution": "example.com", "daddr": "93.184.216.34", "dport/proto": "80/TCP", "state": "Established", "warning": "", "info": {"Request": "GET http://example.com/index.html", "Status Code": "200/OK", "MIME": "['text/html']", "UA": "curl/8.0"}, "sent": 100, "recv": 250, "tot": 350, "duration": 1.235, "critical warning": ""}"#
    );
    assert_eq!(
        texts[1],
        r#"{"timestamp": "2023/11/14 22:13:21.000000", "dport_name": "DNS", "preposition": "to", "dns_resolution": "????", "daddr": "10.0.0.53", "dport/proto": "53/UDP", "state": "Established", "warning": "", "info": {"query": "example.com", "answers": ["93.184.216.34"]}, "sent": 100, "recv": 250, "tot": 350, "duration": 1.235, "critical warning": ""}"#
    );
    assert_eq!(
        texts[2],
        r#"{"timestamp": "2023/11/14 22:13:22.000000", "dport_name": "HTTPS", "preposition": "to", "dns_resolution": "example.org", "daddr": "93.184.216.35", "dport/proto": "443/TCP", "state": "Established", "warning": "", "info": {"server_name": "CN=example.org", "trusted": "Yes", "resumed": "False", "version": "TLSv13", "dns_resolution": "example.org", "critical warning": ""}, "sent": 100, "recv": 250, "tot": 350, "duration": 1.235, "critical warning": ""}"#
    );
    assert_eq!(
        texts[3],
        r#"{"timestamp": "2023/11/14 22:13:23.000000", "dport_name": "PING echo", "preposition": "from", "saddr": "10.0.0.1", "size": 350, "duration": 1.235, "dns_resolution": "", "daddr": "8.8.8.8", "dport/proto": "8/ICMP", "state": "", "warning": "", "sent": "", "recv": "", "tot": "", "critical warning": "", "info": ""}"#
    );
    assert_eq!(
        texts[4],
        r#"{"timestamp": "2023/11/14 22:13:24.000000", "dport_name": "????", "preposition": "to", "dns_resolution": "????", "daddr": "93.184.216.36", "dport/proto": "31337/TCP", "state": "Established", "warning": "", "info": "", "sent": 100, "recv": 250, "tot": 350, "duration": 1.235, "critical warning": "Protocol not recognized by Slips nor Zeek."}"#
    );
    assert!(
        texts[5].contains(r#""state": "Not Established""#),
        "{}",
        texts[5]
    );
}

#[test]
fn tuples_families_evidence_and_detections_in_the_current_shapes() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let server = RedisServer::start();
    ingest(
        &server,
        dir.path(),
        Direction::All,
        &IngestOptions::default(),
    );
    let mut con = server.connection();
    let w = hash(&mut con, W);
    let out = w.get("OutTuples").cloned().unwrap_or_default();
    assert!(out.starts_with(r#"{"93.184.216.34-80-tcp": ["#), "{out}");
    let inn = w.get("InTuples").cloned().unwrap_or_default();
    assert!(inn.starts_with(r#"{"198.51.100.9-22-tcp": ["#), "{inn}");
    assert_eq!(
        w.get("DstPortsClientTCPNotEstablished").map(String::as_str),
        Some(
            r#"{"23": {"totalflows": 3, "totalpkt": 21, "totalbytes": 1050, "dstips": {"192.0.2.1": {"pkts": 7}, "192.0.2.2": {"pkts": 7}, "192.0.2.3": {"pkts": 7}}}}"#
        )
    );
    let evidence = r#"{"dport:23:PortScanType2": "{\"type_detection\": \"dport\", \"detection_info\": \"23\", \"type_evidence\": \"PortScanType2\", \"description\": \"New horizontal port scan detected to port 23. Not Estab TCP from IP: 10.0.0.1. Tot pkts sent all IPs: 21\"}"}"#;
    assert_eq!(w.get("Evidence").map(String::as_str), Some(evidence));
    let per_profile: Option<String> = con.hget("evidenceprofile_10.0.0.1", "timewindow1").unwrap();
    assert_eq!(per_profile.as_deref(), Some(evidence));
    let kind: String = redis::cmd("TYPE")
        .arg("BlockedProfTW")
        .query(&mut con)
        .unwrap();
    assert_eq!(kind, "hash");
    let blocked: Option<String> = con.hget("BlockedProfTW", "profile_10.0.0.1").unwrap();
    assert_eq!(blocked.as_deref(), Some(r#"["timewindow1"]"#));
    // The inbound copy: `from`, with its source.
    let entries: Vec<String> = con.zrange(format!("{W}_timeline"), 0, -1).unwrap();
    let inbound = entries.iter().find(|e| e.contains("198.51.100.9")).unwrap();
    assert!(
        inbound.contains(r#""dport_name": "SSH", "preposition": "from", "dns_resolution": "????", "saddr": "198.51.100.9", "daddr": "10.0.0.1", "#),
        "{inbound}"
    );
}

#[test]
fn reloaded_windows_and_follow_mode_give_the_once_database() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let want = batch_dump_with(dir.path(), &["--layout", "kalipso", "--direction", "all"]);
    let server = RedisServer::start();
    once_with(
        dir.path(),
        &server,
        &["--layout", "kalipso", "--direction", "all"],
    );
    let want_info = ips_info(&server);
    assert!(
        want_info["93.184.216.35"].contains("example.org"),
        "{want_info:?}"
    );
    let server = RedisServer::start();
    ingest(&server, dir.path(), Direction::All, &churn());
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "reloaded windows differ:\n{}",
        dump_diff(&got, &want)
    );
    assert_eq!(ips_info(&server), want_info, "reloaded windows: IPsInfo");

    let server = RedisServer::start();
    let child = command(dir.path(), &server)
        .args(["--layout", "kalipso", "--direction", "all"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    settle(&server);
    assert_eq!(terminate(child).0, Some(0));
    once_with(
        dir.path(),
        &server,
        &["--layout", "kalipso", "--direction", "all"],
    );
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "follow mode differs:\n{}",
        dump_diff(&got, &want)
    );
    assert_eq!(ips_info(&server), want_info, "follow mode: IPsInfo");
}

#[test]
fn the_same_dns_http_ssl_records_read_again_change_nothing() {
    // A copy of the dns/http/ssl logs is new files to the checkpoints: each record comes
    // twice, the second time after the first was written and its window left memory. (A conn
    // read twice is two flows, as in Slips.)
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let copy = tempfile::tempdir().unwrap();
    for name in ["dns.log", "http.log", "ssl.log"] {
        std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
    }
    // The checkpoints name the files read; nothing else may differ.
    let layout = |mut d: serde_json::Value| {
        if let Some(m) = d.as_object_mut() {
            m.remove("kalipso-ingest:checkpoints");
        }
        d
    };
    // Without and with retention's index (the records kept per window too).
    for retain in [&[][..], &["--retain", "1d"][..]] {
        let flags = [&["--layout", "kalipso", "--direction", "all"][..], retain].concat();
        let once = RedisServer::start();
        once_with(dir.path(), &once, &flags);
        let server = RedisServer::start();
        once_with(dir.path(), &server, &flags);
        once_with(copy.path(), &server, &flags);
        let (got, want) = (
            layout(without_run_state(dump(&mut server.connection()))),
            layout(without_run_state(dump(&mut once.connection()))),
        );
        assert!(
            got == want,
            "read again {retain:?}:\n{}",
            dump_diff(&got, &want)
        );
        assert_eq!(ips_info(&server), ips_info(&once), "IPsInfo {retain:?}");
    }
}

#[test]
fn a_database_keeps_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    for (first, second) in [("kalipso-2020", "kalipso"), ("kalipso", "kalipso-2020")] {
        let server = RedisServer::start();
        once_with(dir.path(), &server, &["--layout", first]);
        let out = command(dir.path(), &server)
            .args(["--once", "--no-progress", "--layout", second])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("holds the {first} layout")) && stderr.contains(second),
            "{stderr}"
        );
        // No marker is the 2020 layout (databases from before the marker stay as they were).
        let layout: Option<String> = server.connection().get("kalipso-ingest:layout").unwrap();
        let want = (first == "kalipso").then_some(first);
        assert_eq!(layout.as_deref(), want);
    }
    let out = command(dir.path(), &RedisServer::start())
        .args(["--once", "--layout", "kalipso-2026"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A database of an earlier build of the layout (another form of its DNS and IPsInfo
    // state): refused, and rebuilt by --reset.
    let server = RedisServer::start();
    once_with(dir.path(), &server, &["--layout", "kalipso"]);
    let _: () = server
        .connection()
        .del("kalipso-ingest:kalipso-state")
        .unwrap();
    let run = |extra: &[&str]| {
        command(dir.path(), &server)
            .args(["--once", "--no-progress", "--layout", "kalipso"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("earlier build") && stderr.contains("--reset"),
        "{stderr}"
    );
    let out = run(&["--reset"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// MaxMind's test databases, a capture with a conn to an address they know, and a server;
/// `None` (reported) without the databases.
fn geo_capture() -> Option<(std::path::PathBuf, tempfile::TempDir, RedisServer)> {
    let db = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip-test");
    if !db.join("GeoIP2-Country-Test.mmdb").exists() {
        common::missing("../shared/geoip-test (MaxMind's test databases)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("conn.log"),
        conn(T0, "Cgeo", "10.0.0.1", "214.78.120.5", "tcp", 443, "SF"),
    )
    .unwrap();
    Some((db, dir, RedisServer::start()))
}

/// The ssl record of [`geo_capture`]'s conn, with this server name.
fn geo_ssl(dir: &Path, name: &str) {
    let line = ssl(T0 + 0.5, "Cgeo", "10.0.0.1", "214.78.120.5", 443, name);
    std::fs::write(dir.join("ssl.log"), line).unwrap();
}

#[test]
fn ip_information_goes_to_database_1_with_the_asn_as_an_object() {
    let Some((db, dir, server)) = geo_capture() else {
        return;
    };
    let (country, asn) = (
        db.join("GeoIP2-Country-Test.mmdb"),
        db.join("GeoLite2-ASN-Test.mmdb"),
    );
    let flags = [
        "--layout",
        "kalipso",
        "--geoip-db",
        &country.to_string_lossy(),
        "--asn-db",
        &asn.to_string_lossy(),
    ];
    // A server name joins what the enrichment says, after it.
    geo_ssl(dir.path(), "geo.example");
    once_with(dir.path(), &server, &flags);
    let mut con = server.connection();
    let in_db0: bool = con.exists("IPsInfo").unwrap();
    assert!(!in_db0, "IPsInfo belongs in database 1");
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let info: Option<String> = con.hget("IPsInfo", "214.78.120.5").unwrap();
    assert_eq!(
        info.as_deref(),
        Some(
            r#"{"asn": {"asnorg": "DoD Network Information Center"}, "geocountry": "United States", "SNI": [{"server_name": "geo.example", "dport": 443}]}"#
        )
    );
    let private: Option<String> = con.hget("IPsInfo", "10.0.0.1").unwrap();
    assert_eq!(
        private.as_deref(),
        Some(r#"{"asn": {"asnorg": "Unknown"}, "geocountry": "Private"}"#)
    );
    // --reset removes it with the rest of this tool's keys.
    let out = command(dir.path(), &server)
        .args(["--once", "--no-progress", "--reset"])
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = con.hlen("IPsInfo").unwrap();
    assert_eq!(n, 2, "rewritten once after the reset");
}

fn ssl(ts: f64, uid: &str, src: &str, dst: &str, dport: u16, name: &str) -> String {
    format!(
        "{{\"ts\":{ts},\"uid\":\"{uid}\",\"id.orig_h\":\"{src}\",\"id.orig_p\":8,\"id.resp_h\":\"{dst}\",\"id.resp_p\":{dport},\"version\":\"TLSv13\",\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"resumed\":false,\"established\":true,\"server_name\":\"{name}\"}}\n"
    )
}

/// A directory with these conn, ssl and dns lines, each log in its order or reversed.
fn logs(conns: &[String], ssls: &[String], dnss: &[String], reversed: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, lines) in [("conn.log", conns), ("ssl.log", ssls), ("dns.log", dnss)] {
        let mut lines = lines.to_vec();
        if reversed {
            lines.reverse();
        }
        std::fs::write(dir.path().join(name), lines.concat()).unwrap();
    }
    dir
}

/// Another program's `IPsInfo` entry for 93.184.216.36; the connection, on database 1.
fn theirs(server: &RedisServer) -> redis::Connection {
    let mut con = server.connection();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let _: () = con
        .hset("IPsInfo", "93.184.216.36", r#"{"asn": "theirs"}"#)
        .unwrap();
    con
}

/// Every address's `IPsInfo` entry, from database 1.
fn ips_info(server: &RedisServer) -> std::collections::BTreeMap<String, String> {
    let mut con = server.connection();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    hash(&mut con, "IPsInfo")
}

#[test]
fn ip_information_has_server_names_and_reverse_names_whatever_the_order() {
    let v6_reverse = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    let conns = [
        conn(T0, "Cs1", "10.0.0.1", "93.184.216.35", "tcp", 443, "SF"),
        conn(
            T0 + 1.0,
            "Cs2",
            "10.0.0.1",
            "93.184.216.35",
            "tcp",
            8443,
            "SF",
        ),
        conn(
            T0 + 2.0,
            "Ct",
            "10.0.0.1",
            "93.184.216.36",
            "tcp",
            443,
            "SF",
        ),
        conn(T0 + 3.0, "C6", "fd00::1", "2001:db8::1", "tcp", 443, "SF"),
    ];
    let ssls = [
        ssl(
            T0 + 0.5,
            "Cs1",
            "10.0.0.1",
            "93.184.216.35",
            443,
            "b.example",
        ),
        ssl(
            T0 + 1.5,
            "Cs2",
            "10.0.0.1",
            "93.184.216.35",
            8443,
            "a.example",
        ),
        // Seen again later, and with no conn: the first record places it.
        ssl(
            T0 + 7.0,
            "Cs3",
            "10.0.0.1",
            "93.184.216.35",
            443,
            "b.example",
        ),
        ssl(
            T0 + 2.5,
            "Ct",
            "10.0.0.1",
            "93.184.216.36",
            443,
            "t.example",
        ),
        // With no conn: its addresses are registered by the record itself.
        ssl(
            T0 + 4.0,
            "Cn",
            "10.0.0.1",
            "93.184.216.99",
            443,
            "n.example",
        ),
    ];
    let dnss = [
        dns(
            T0 + 9.0,
            "Cp2",
            "10.0.0.1",
            "35.216.184.93.in-addr.arpa",
            "PTR",
            r#"["late.example"]"#,
        ),
        dns(
            T0 + 2.0,
            "Cp1",
            "10.0.0.1",
            "35.216.184.93.in-addr.arpa",
            "PTR",
            r#"["early.example", "other.example"]"#,
        ),
        dns(
            T0 + 3.5,
            "Cp6",
            "10.0.0.1",
            v6_reverse,
            "PTR",
            r#"["six.example"]"#,
        ),
        dns(
            T0 + 3.6,
            "Cp9",
            "10.0.0.1",
            "9.9.9.9.in-addr.arpa",
            "PTR",
            r#"["nine.example"]"#,
        ),
        // No record has 9.9.9.9 as an address: no entry. Not an address's reverse name:
        dns(
            T0 + 3.7,
            "Cpx",
            "10.0.0.1",
            "x.in-addr.arpa",
            "PTR",
            r#"["x.example"]"#,
        ),
    ];
    let want = [
        ("10.0.0.1", "{}"),
        (
            "93.184.216.35",
            r#"{"reverse_dns": "early.example", "SNI": [{"server_name": "b.example", "dport": 443}, {"server_name": "a.example", "dport": 8443}]}"#,
        ),
        // Enriched by another program before: kept.
        ("93.184.216.36", r#"{"asn": "theirs"}"#),
        ("2001:db8::1", r#"{"reverse_dns": "six.example"}"#),
        ("fd00::1", "{}"),
        ("10.0.0.53", "{}"),
        (
            "93.184.216.99",
            r#"{"SNI": [{"server_name": "n.example", "dport": 443}]}"#,
        ),
    ];
    let want: std::collections::BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (reversed, opts) in [
        (false, IngestOptions::default()),
        (true, IngestOptions::default()),
        (false, churn()),
        (true, churn()),
    ] {
        let dir = logs(&conns, &ssls, &dnss, reversed);
        let server = RedisServer::start();
        theirs(&server);
        ingest(&server, dir.path(), Direction::Out, &opts);
        let got = ips_info(&server);
        assert_eq!(
            got, want,
            "reversed: {reversed}, flushes of {}",
            opts.flush_every
        );
    }

    // The records in two runs: the names first, the flows that register the addresses later.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dns.log"), dnss.concat()).unwrap();
    let server = RedisServer::start();
    let mut con = theirs(&server);
    ingest(
        &server,
        dir.path(),
        Direction::Out,
        &IngestOptions::default(),
    );
    let early: Option<String> = con.hget("IPsInfo", "93.184.216.35").unwrap();
    assert_eq!(early, None, "no entry before a record has the address");
    std::fs::write(dir.path().join("conn.log"), conns.concat()).unwrap();
    std::fs::write(dir.path().join("ssl.log"), ssls.concat()).unwrap();
    ingest(
        &server,
        dir.path(),
        Direction::Out,
        &IngestOptions::default(),
    );
    assert_eq!(ips_info(&server), want, "names first, flows in a later run");
}

#[test]
fn retention_removes_ip_information_from_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..2)
        .map(|i| {
            let (src, dst) = (format!("10.0.0.{i}"), format!("93.184.0.{i}"));
            conn(
                T0 + f64::from(i) * 20_000.0,
                &format!("Cr{i}"),
                &src,
                &dst,
                "tcp",
                80,
                "SF",
            )
        })
        .collect();
    std::fs::write(dir.path().join("conn.log"), lines).unwrap();
    let names: String = (0..2)
        .map(|i| {
            let (src, dst) = (format!("10.0.0.{i}"), format!("93.184.0.{i}"));
            let ts = T0 + f64::from(i) * 20_000.0 + 0.5;
            ssl(ts, &format!("Cr{i}"), &src, &dst, 443, "r.example")
        })
        .collect();
    std::fs::write(dir.path().join("ssl.log"), names).unwrap();
    let server = RedisServer::start();
    once_with(
        dir.path(),
        &server,
        &["--layout", "kalipso", "--retain", "1h"],
    );
    let mut con = server.connection();
    let facts: Vec<bool> = ["93.184.0.0", "93.184.0.1"]
        .iter()
        .map(|ip| con.exists(format!("kalipso-ingest:ipinfo:{ip}")).unwrap())
        .collect();
    assert_eq!(facts, [false, true], "an address's facts go with its entry");
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let mut kept: Vec<String> = con.hkeys("IPsInfo").unwrap();
    kept.sort();
    assert_eq!(kept, ["10.0.0.1", "93.184.0.1"]);
}

fn dns(ts: f64, uid: &str, src: &str, query: &str, qtype: &str, answers: &str) -> String {
    format!(
        "{{\"ts\":{ts},\"uid\":\"{uid}\",\"id.orig_h\":\"{src}\",\"id.orig_p\":8,\"id.resp_h\":\"10.0.0.53\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"{query}\",\"qtype_name\":\"{qtype}\",\"rcode_name\":\"NOERROR\",\"answers\":{answers},\"TTLs\":[60.0]}}\n"
    )
}

#[test]
fn dns_resolution_is_a_function_of_the_answers_in_the_shape_both_panels_read() {
    let records = [
        dns(
            T0 + 5.0,
            "Cb",
            "10.0.0.2",
            "www.example.com",
            "A",
            r#"["93.184.216.34"]"#,
        ),
        dns(
            T0,
            "Ca",
            "10.0.0.1",
            "example.com",
            "A",
            r#"["example.net", "93.184.216.34"]"#,
        ),
        dns(
            T0 + 9.0,
            "Cc",
            "10.0.0.1",
            "example.com",
            "A",
            r#"["93.184.216.34"]"#,
        ),
        dns(
            T0 + 1.0,
            "Cd",
            "10.0.0.1",
            "34.216.184.93.in-addr.arpa",
            "PTR",
            r#"["x.example"]"#,
        ),
        dns(
            T0 + 2.0,
            "Ce",
            "10.0.0.1",
            "txt.example.com",
            "TXT",
            r#"["93.184.216.35"]"#,
        ),
    ];
    let want = r#"{"ts": 1700000009.0, "uid": "Cc", "domains": ["example.com", "www.example.com"], "resolved-by": ["10.0.0.1", "10.0.0.2"], "timewindows": ["timewindow1"], "0": "example.com", "1": "www.example.com", "length": 2}"#;
    for (order, opts) in [(false, IngestOptions::default()), (true, churn())] {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = records.to_vec();
        if order {
            lines.reverse();
        }
        std::fs::write(dir.path().join("dns.log"), lines.concat()).unwrap();
        let server = RedisServer::start();
        ingest(&server, dir.path(), Direction::Out, &opts);
        let mut con = server.connection();
        let got: Option<String> = con.hget("DNSresolution", "93.184.216.34").unwrap();
        assert_eq!(got.as_deref(), Some(want), "reversed: {order}");
        let n: usize = con.hlen("DNSresolution").unwrap();
        assert_eq!(
            n, 1,
            "only A/AAAA answers that are addresses, no reverse names"
        );
    }
}

#[test]
fn dns_resolution_names_are_escaped_as_python_json() {
    let dir = tempfile::tempdir().unwrap();
    // A name with a quote, a backslash, an accent and an emoji (JSON-escaped in the log).
    let query = r#"q\"u\\o-\u00e9-\ud83d\ude00.example"#;
    std::fs::write(
        dir.path().join("dns.log"),
        dns(T0, "Cx", "10.0.0.1", query, "A", r#"["93.184.216.99"]"#),
    )
    .unwrap();
    let server = RedisServer::start();
    ingest(
        &server,
        dir.path(),
        Direction::Out,
        &IngestOptions::default(),
    );
    let got: Option<String> = server
        .connection()
        .hget("DNSresolution", "93.184.216.99")
        .unwrap();
    let name = r#""q\"u\\o-\u00e9-\ud83d\ude00.example""#;
    let want = format!(
        r#"{{"ts": 1700000000.0, "uid": "Cx", "domains": [{name}], "resolved-by": ["10.0.0.1"], "timewindows": ["timewindow1"], "0": {name}, "length": 1}}"#
    );
    assert_eq!(got.as_deref(), Some(want.as_str()));
}

#[test]
fn a_database_keeps_its_ip_information_database() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let server = RedisServer::start();
    once_with(
        dir.path(),
        &server,
        &["--layout", "kalipso", "--ipinfo-db", "2"],
    );
    let out = command(dir.path(), &server)
        .args(["--once", "--no-progress", "--layout", "kalipso"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("IPsInfo in database 2"), "{stderr}");
    // Out of Redis' range: a settings error.
    let out = command(dir.path(), &RedisServer::start())
        .args(["--once", "--layout", "kalipso", "--ipinfo-db", "16"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--retain`: dns answers and `IPsInfo` facts go with the window of their record, so what is
/// left is the same in any order, in one run or two.
#[test]
fn retention_removes_dns_answers_and_ip_facts_by_their_window_in_any_order() {
    const HOUR: f64 = 3600.0;
    let (old, mid, new) = (T0, T0 + 6.0 * HOUR, T0 + 12.0 * HOUR);
    let conns = [
        conn(old, "Co", "10.0.0.1", "93.184.216.35", "tcp", 443, "SF"),
        conn(new, "Cn", "10.0.0.1", "93.184.216.35", "tcp", 443, "SF"),
        conn(
            old + 1.0,
            "Cx",
            "10.0.0.1",
            "93.184.216.40",
            "tcp",
            443,
            "SF",
        ),
        conn(
            new + 1.0,
            "Cy",
            "10.0.0.1",
            "93.184.216.40",
            "tcp",
            443,
            "SF",
        ),
    ];
    let ssls = [
        ssl(
            old + 0.5,
            "Co",
            "10.0.0.1",
            "93.184.216.35",
            443,
            "old.example",
        ),
        ssl(
            new + 0.5,
            "Cn",
            "10.0.0.1",
            "93.184.216.35",
            443,
            "new.example",
        ),
    ];
    let dnss = [
        // Only in a removed window: the entry goes.
        dns(
            old,
            "Da",
            "10.0.0.1",
            "gone.example",
            "A",
            r#"["93.184.216.50"]"#,
        ),
        // In both: the old name goes, the new one stays, ts/uid of the latest.
        dns(
            old,
            "Db",
            "10.0.0.1",
            "old.example",
            "A",
            r#"["93.184.216.35"]"#,
        ),
        dns(
            new,
            "Dc",
            "10.0.0.1",
            "new.example",
            "A",
            r#"["93.184.216.35"]"#,
        ),
        // The kept name also in both removed windows (removed together in a run that comes
        // late): its earliest record is recomputed from the window kept.
        dns(
            old + 2.0,
            "De",
            "10.0.0.1",
            "new.example",
            "A",
            r#"["93.184.216.35"]"#,
        ),
        dns(
            mid + 2.0,
            "Df",
            "10.0.0.1",
            "new.example",
            "A",
            r#"["93.184.216.35"]"#,
        ),
        // A PTR answer in a removed window, for an address whose last window is kept.
        dns(
            mid,
            "Dp",
            "10.0.0.1",
            "40.216.184.93.in-addr.arpa",
            "PTR",
            r#"["mid.example"]"#,
        ),
    ];
    // The window's name counts from the database's first record (`timewindow1` when the new
    // records came first).
    let want_dns = |tw: u32| {
        format!(
            r#"{{"ts": 1700043200.0, "uid": "Dc", "domains": ["new.example"], "resolved-by": ["10.0.0.1"], "timewindows": ["timewindow{tw}"], "0": "new.example", "length": 1}}"#
        )
    };
    let want_info = r#"{"SNI": [{"server_name": "new.example", "dport": 443}]}"#;
    let flags = ["--layout", "kalipso", "--retain", "2h"];
    let check = |server: &RedisServer, tw: u32, what: &str| {
        let mut con = server.connection();
        let all = hash(&mut con, "DNSresolution");
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["93.184.216.35"],
            "{what}: DNSresolution"
        );
        assert_eq!(all["93.184.216.35"], want_dns(tw), "{what}");
        let own: Vec<String> = con.keys("kalipso-ingest:dns:*").unwrap();
        assert_eq!(own, ["kalipso-ingest:dns:93.184.216.35"], "{what}");
        let info = ips_info(server);
        assert_eq!(info["93.184.216.35"], want_info, "{what}");
        assert_eq!(info["93.184.216.40"], "{}", "{what}: its PTR answer went");
        // Nothing of the removed windows is left: only window 13 (absolute 472234) is kept.
        let mut kept: Vec<String> = con.keys("kalipso-ingest:*w:*").unwrap();
        kept.sort();
        assert_eq!(
            kept,
            [
                "kalipso-ingest:dnsw:472234:93.184.216.35",
                "kalipso-ingest:ipinfow:472234:93.184.216.35"
            ],
            "{what}: per-window keys"
        );
        for index in [
            "kalipso-ingest:dns-windows",
            "kalipso-ingest:ipinfo-windows",
        ] {
            let members: Vec<String> = con.zrange(index, 0, -1).unwrap();
            assert_eq!(members, ["93.184.216.35|472234"], "{what}: {index}");
        }
        let facts: bool = con.exists("kalipso-ingest:ipinfo:93.184.216.40").unwrap();
        assert!(!facts, "{what}: the removed fact's hash is gone");
    };
    for reversed in [false, true] {
        let dir = logs(&conns, &ssls, &dnss, reversed);
        let server = RedisServer::start();
        once_with(dir.path(), &server, &flags);
        check(&server, 13, &format!("one run, reversed: {reversed}"));
    }
    // Two runs, in both orders: the old and middle records first, the new ones appended; or
    // the new ones first, the old ones arriving when their windows are already removed.
    for new_first in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let server = RedisServer::start();
        let parts = |new_part: bool| -> [(&str, String); 3] {
            let pick = |lines: &[String], keep: &dyn Fn(&str) -> bool| -> String {
                lines
                    .iter()
                    .filter(|l| keep(l) == new_part)
                    .cloned()
                    .collect()
            };
            let is_new = |l: &str| {
                l.contains(&format!("{new}"))
                    || l.contains(&format!("{}", new + 0.5))
                    || l.contains(&format!("{}", new + 1.0))
            };
            [
                ("conn.log", pick(&conns, &is_new)),
                ("ssl.log", pick(&ssls, &is_new)),
                ("dns.log", pick(&dnss, &is_new)),
            ]
        };
        for (name, text) in parts(new_first) {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        once_with(dir.path(), &server, &flags);
        append(dir.path(), &parts(!new_first));
        once_with(dir.path(), &server, &flags);
        let tw = if new_first { 1 } else { 13 };
        check(&server, tw, &format!("two runs, new first: {new_first}"));
    }

    // The same answer again, later: only the latest record moves (the kept `body` serves).
    let again = dns(
        new + 60.0,
        "Dd",
        "10.0.0.1",
        "new.example",
        "A",
        r#"["93.184.216.35"]"#,
    );
    let dir = logs(&conns, &ssls, &dnss, false);
    let server = RedisServer::start();
    once_with(dir.path(), &server, &flags);
    append(dir.path(), &[("dns.log", again.clone())]);
    once_with(dir.path(), &server, &flags);
    let mut all = dnss.to_vec();
    all.push(again);
    let once = RedisServer::start();
    once_with(logs(&conns, &ssls, &all, false).path(), &once, &flags);
    let value = |server: &RedisServer| -> String {
        server
            .connection()
            .hget("DNSresolution", "93.184.216.35")
            .unwrap()
    };
    assert_eq!(value(&server), value(&once));
    assert!(
        value(&server)
            .starts_with(r#"{"ts": 1700043260.0, "uid": "Dd", "domains": ["new.example"]"#)
    );
}

/// Append these texts to the files of `dir`.
fn append(dir: &Path, parts: &[(&str, String)]) {
    for (name, text) in parts {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(name))
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    }
}

/// An entry written with the enrichment of one run keeps it (as before), and still gets the
/// facts of later runs without it.
#[test]
fn ip_facts_still_reach_an_entry_written_with_other_databases() {
    let Some((db, dir, server)) = geo_capture() else {
        return;
    };
    let country = db.join("GeoIP2-Country-Test.mmdb");
    once_with(
        dir.path(),
        &server,
        &[
            "--layout",
            "kalipso",
            "--geoip-db",
            &country.to_string_lossy(),
        ],
    );
    let first = ips_info(&server)["214.78.120.5"].clone();
    assert_eq!(first, r#"{"geocountry": "United States"}"#);
    geo_ssl(dir.path(), "later.example");
    once_with(dir.path(), &server, &["--layout", "kalipso"]);
    assert_eq!(
        ips_info(&server)["214.78.120.5"],
        r#"{"geocountry": "United States", "SNI": [{"server_name": "later.example", "dport": 443}]}"#
    );
}
