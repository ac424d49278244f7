//! The seed lines quoted in the timeline issue, verbatim, from `fixtures/seeds/` (TZ pinned to
//! UTC), with Unicode, quotes, backslashes and tabs rendered as Python `str()` in the timeline
//! and as Python-JSON in `_altflows`.

mod common;

use common::dump::hash;
use common::ingest::{churn, ingest, ingest_with};
use common::redis_server::RedisServer;
use common::*;
use kalipso_ingest::ingest::IngestOptions;
use kalipso_ingest::profile::routing::Direction;

fn timeline(con: &mut redis::Connection, key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(con)
        .unwrap()
}

#[test]
fn seed_lines_come_out_exactly() {
    let server = RedisServer::start();
    ingest(&server, &fixtures().join("seeds"), &[], Direction::Out);
    let mut con = server.connection();
    let got = timeline(&mut con, "profile_10.0.2.15_timewindow1_timeline");
    let want = [
        "2019/10/22 22:43:03.512034 - DNS asked to 8.8.8.8 53/udp, Sent: 48, Recv: 64, Tot: 112.00b | \n",
        "2019/10/22 22:43:03.512034 \t- Query: mtalk.google.com, Query Class: C_INTERNET, Type: A, Response Code: NOERROR, Answers: ['mobile-gtalk.l.google.com', '74.125.71.188']\n",
        "2019/10/22 22:43:03.571442 - Google Playstore or Google Talk or Google Chrome Sync asked to 74.125.71.188 5228/tcp, Sent: 2143, Recv: 4310, Tot: 6.30Kb | \n",
        "2019/10/22 22:43:03.571442 \t[!] Attention. We know this port number, but we couldn't identify the protocol. Check UID CSeedGtalk1\n",
        "2019/10/22 22:43:10.000000 - http asked to 93.184.216.34 80/tcp, Sent: 300, Recv: 900, Tot: 1.17Kb | \n",
        "2019/10/22 22:43:10.000000 \t- GET http://example.com/café?q=\"x\" HTTP/1.1 200/OK  MIME:['text/html'] Sent:0b, Recv:648b UA:Mozilla/5.0 (Ünicode; 😀) \n",
        "2019/10/22 22:43:10.000000 \t- GET http://example.com/favicon.ico HTTP/1.1 404/Not Found  MIME: Sent:0b, Recv:0b UA:Mozilla/5.0 (Ünicode; 😀) \n",
        "2019/10/22 22:43:11.000000 - https asked to 93.184.216.35 443/tcp, Sent: 700, Recv: 3000, Tot: 3.61Kb | \n",
        "2019/10/22 22:43:11.000000 \t- bücher.example. Issuer: . Trust Cert: ?? (Resumed). Subject: . Version: TLSv13. Resumed: True \n",
        "2019/10/22 22:43:12.000000 - DNS asked to 8.8.8.8 53/udp, Sent: 40, Recv: 90, Tot: 130.00b | \n",
        "2019/10/22 22:43:12.000000 \t- Query: xn--bcher-kva.example, Query Class: C_INTERNET, Type: TXT, Response Code: NOERROR, Answers: [\"café 'quoted' \\\\ back\", 'tab\\there']\n",
    ];
    assert_eq!(got, want);

    // `_altflows`: the last record of each uid, Python-JSON (ensure_ascii, lowercase \u).
    let alt = hash(&mut con, "profile_10.0.2.15_timewindow1_altflows");
    assert_eq!(
        alt["CSeedUni1"],
        r#"{"uid": "CSeedUni1", "type": "http", "method": "GET", "host": "example.com", "uri": "/favicon.ico", "version": "1.1", "user_agent": "Mozilla/5.0 (\u00dcnicode; \ud83d\ude00)", "request_body_len": 0, "response_body_len": 0, "status_code": 404, "status_msg": "Not Found", "resp_mime_types": "", "resp_fuids": ""}"#
    );
    assert_eq!(
        alt["CSeedUni3"],
        r#"{"uid": "CSeedUni3", "type": "dns", "query": "xn--bcher-kva.example", "qclass_name": "C_INTERNET", "qtype_name": "TXT", "rcode_name": "NOERROR", "answers": ["caf\u00e9 'quoted' \\ back", "tab\there"], "ttls": [60.0, 60.0]}"#
    );
}

#[test]
fn inbound_copies_get_the_same_sub_lines_with_the_asked_from_wording() {
    let server = RedisServer::start();
    ingest(&server, &fixtures().join("seeds"), &[], Direction::All);
    let mut con = server.connection();
    let got = timeline(&mut con, "profile_8.8.8.8_timewindow1_timeline");
    assert_eq!(
        got,
        [
            "2019/10/22 22:43:03.512034 - DNS/udp asked from 10.0.2.15, Sent: 64, Recv: 48, Tot: 112.00b\n",
            "2019/10/22 22:43:03.512034 \t- Query: mtalk.google.com, Query Class: C_INTERNET, Type: A, Response Code: NOERROR, Answers: ['mobile-gtalk.l.google.com', '74.125.71.188']\n",
            "2019/10/22 22:43:12.000000 - DNS/udp asked from 10.0.2.15, Sent: 90, Recv: 40, Tot: 130.00b\n",
            "2019/10/22 22:43:12.000000 \t- Query: xn--bcher-kva.example, Query Class: C_INTERNET, Type: TXT, Response Code: NOERROR, Answers: [\"café 'quoted' \\\\ back\", 'tab\\there']\n",
        ]
    );
}

#[test]
fn a_conn_of_a_host_with_itself_has_one_main_line_in_all_mode() {
    // Client and server of one profile: the contract's one main line per uid of the window, in
    // the outbound wording; the aggregates still count both sides.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("conn.log"),
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount\tcount\tcount\n\
1700000000.0\tCself1\t10.0.0.5\t40000\t10.0.0.5\t8080\ttcp\thttp\t0.5\t100\t200\tSF\t3\t250\t3\t350\n\
1700000001.0\tCout1\t10.0.0.5\t40001\t93.184.216.34\t443\ttcp\tssl\t0.5\t100\t200\tSF\t3\t250\t3\t350\n",
    )
    .unwrap();
    let server = RedisServer::start();
    ingest(&server, dir.path(), &[], Direction::All);
    let mut con = server.connection();
    let lines = timeline(&mut con, "profile_10.0.0.5_timewindow1_timeline");
    let main: Vec<&String> = lines.iter().filter(|l| l.contains(" - ")).collect();
    assert_eq!(main.len(), 2, "{lines:#?}");
    assert!(
        main[0].contains(" asked to 10.0.0.5 8080/tcp"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("asked from")),
        "{lines:#?}"
    );
    let fields = hash(&mut con, "profile_10.0.0.5_timewindow1");
    let client = fields
        .get("DstIPsClientTCPEstablished")
        .cloned()
        .unwrap_or_default();
    let server_side = fields
        .get("SrcIPsServerTCPEstablished")
        .cloned()
        .unwrap_or_default();
    assert!(client.contains("10.0.0.5"), "{fields:#?}");
    assert!(server_side.contains("10.0.0.5"), "{fields:#?}");
}

#[test]
fn a_conn_of_a_host_with_itself_keeps_one_main_line_when_its_window_is_reloaded() {
    // The self conn has a dns sub-line and comes twice (a repeated uid, last in the file, so
    // after later entries were written): one main line, in the outbound wording, directly
    // followed by its one sub-line, whether the window stays in memory or is evicted and
    // reloaded from Redis at every step (`churn`).
    let dir = tempfile::tempdir().unwrap();
    let conn = |ts: &str, uid: &str, daddr: &str, dport: u16| {
        format!(
            r#"{{"ts":{ts},"uid":"{uid}","id.orig_h":"10.0.0.5","id.orig_p":5353,"id.resp_h":"{daddr}","id.resp_p":{dport},"proto":"udp","service":"dns","duration":0.01,"orig_bytes":40,"resp_bytes":90,"conn_state":"SF","orig_pkts":1,"orig_ip_bytes":68,"resp_pkts":1,"resp_ip_bytes":118}}"#
        )
    };
    let conns = [
        conn("1700000000.0", "Cbefore", "8.8.8.8", 53),
        conn("1700000001.0", "Cself", "10.0.0.5", 53),
        conn("1700000002.0", "Cafter1", "8.8.4.4", 53),
        conn("1700000003.0", "Cafter2", "1.1.1.1", 53),
        conn("1700000001.0", "Cself", "10.0.0.5", 53),
    ];
    std::fs::write(dir.path().join("conn.log"), conns.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.path().join("dns.log"),
        r#"{"ts":1700000001.0,"uid":"Cself","id.orig_h":"10.0.0.5","id.orig_p":5353,"id.resp_h":"10.0.0.5","id.resp_p":53,"proto":"udp","query":"self.example","qclass_name":"C_INTERNET","qtype_name":"A","rcode_name":"NOERROR","answers":["10.0.0.5"],"TTLs":[60.0]}"#
            .to_string()
            + "\n",
    )
    .unwrap();
    let mut runs = Vec::new();
    for opts in [IngestOptions::default(), churn()] {
        let server = RedisServer::start();
        ingest_with(&server, dir.path(), &[], Direction::All, &opts);
        let mut con = server.connection();
        runs.push(timeline(&mut con, "profile_10.0.0.5_timewindow1_timeline"));
    }
    let lines = &runs[0];
    assert_eq!(&runs[1], lines, "reloaded at every step");
    let main: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" - "))
        .collect();
    assert_eq!(main.len(), 4, "{lines:#?}");
    let selfs: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" asked to 10.0.0.5 53/udp"))
        .collect();
    assert_eq!(selfs, [main[1]], "{lines:#?}");
    assert!(
        lines[main[1] + 1].contains("Query: self.example"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("self.example")).count(),
        1,
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("asked from")),
        "{lines:#?}"
    );
}
