//! Country and ASN in `IPsInfo` (issue 17), from MaxMind's test databases in
//! `../shared/geoip-test/`: exact values, IPv6, private addresses, addresses the databases do
//! not hold, the timeline's `| <ipinfo>`, bad files at start, SIGHUP re-opening them.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::{command, once_with, settle, terminate};
use common::redis_server::RedisServer;
use redis::Commands;

const T0: f64 = 1_700_000_000.0;

fn geoip_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip-test");
    if dir.join("GeoIP2-Country-Test.mmdb").exists() {
        Some(dir)
    } else {
        common::missing("../shared/geoip-test (MaxMind's test databases)");
        None
    }
}

fn conn(i: usize, src: &str, dst: &str) -> String {
    format!(
        "{{\"ts\":{},\"uid\":\"Cg{i:03}\",\"id.orig_h\":\"{src}\",\"id.orig_p\":40000,\"id.resp_h\":\"{dst}\",\"id.resp_p\":443,\"proto\":\"tcp\",\"duration\":0.5,\"orig_bytes\":100,\"resp_bytes\":200,\"conn_state\":\"SF\",\"orig_pkts\":3,\"orig_ip_bytes\":260,\"resp_pkts\":3,\"resp_ip_bytes\":360}}\n",
        T0 + i as f64
    )
}

const PEERS: [(&str, &str); 7] = [
    ("10.0.0.1", "214.78.120.5"),
    ("10.0.0.1", "1.128.0.1"),
    ("10.0.0.1", "12.81.96.1"),
    ("10.0.0.1", "192.168.7.7"),
    ("10.0.0.1", "1.0.0.1"),
    ("2001:db8::1", "2001:218::1"),
    ("2001:db8::1", "2001:220::1"),
];

fn capture(dir: &Path, peers: &[(&str, &str)], from: usize) {
    let lines: String = peers
        .iter()
        .enumerate()
        .map(|(i, (s, d))| conn(from + i, s, d))
        .collect();
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("conn.log"))
        .unwrap();
    f.write_all(lines.as_bytes()).unwrap();
}

fn info(con: &mut redis::Connection, ip: &str) -> Option<String> {
    con.hget("IPsInfo", ip).unwrap()
}

#[test]
fn country_and_asn_of_every_address_exactly() {
    let Some(db) = geoip_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &PEERS, 0);
    let server = RedisServer::start();
    let mut con = server.connection();
    // An entry another program wrote is kept; `{}` is filled.
    let _: () = con
        .hset("IPsInfo", "1.0.0.1", r#"{"asn": "theirs"}"#)
        .unwrap();
    let _: () = con.hset("IPsInfo", "1.128.0.1", "{}").unwrap();
    let (country, asn) = (
        db.join("GeoIP2-Country-Test.mmdb"),
        db.join("GeoLite2-ASN-Test.mmdb"),
    );
    once_with(
        dir.path(),
        &server,
        &[
            "--geoip-db",
            &country.to_string_lossy(),
            "--asn-db",
            &asn.to_string_lossy(),
        ],
    );
    assert_eq!(
        info(&mut con, "1.0.0.1").as_deref(),
        Some(r#"{"asn": "theirs"}"#)
    );
    for (ip, want) in [
        (
            "214.78.120.5",
            r#"{"geocountry": "United States", "asn": "DoD Network Information Center"}"#,
        ),
        (
            "1.128.0.1",
            r#"{"geocountry": "Unknown", "asn": "Telstra Pty Ltd"}"#,
        ),
        // An ASN record without an organisation, and no country.
        (
            "12.81.96.1",
            r#"{"geocountry": "Unknown", "asn": "Unknown"}"#,
        ),
        (
            "192.168.7.7",
            r#"{"geocountry": "Private", "asn": "Unknown"}"#,
        ),
        ("10.0.0.1", r#"{"geocountry": "Private", "asn": "Unknown"}"#),
        (
            "2001:218::1",
            r#"{"geocountry": "Japan", "asn": "Unknown"}"#,
        ),
        (
            "2001:220::1",
            r#"{"geocountry": "South Korea", "asn": "Unknown"}"#,
        ),
        // Documentation range: private to Python's ipaddress, as Slips saw it.
        (
            "2001:db8::1",
            r#"{"geocountry": "Private", "asn": "Unknown"}"#,
        ),
    ] {
        assert_eq!(info(&mut con, ip).as_deref(), Some(want), "{ip}");
    }
    // The outbound line ends with the peer's entry, as Slips' timeline rendered it.
    let lines: Vec<String> = con
        .lrange("profile_10.0.0.1_timewindow1_timeline", 0, -1)
        .unwrap();
    assert!(
        lines[0].ends_with(
            "asked to 214.78.120.5 443/tcp, Sent: 100, Recv: 200, Tot: 300.00b | geocountry='United States', asn='DoD Network Information Center'\n"
        ),
        "{lines:?}"
    );
}

#[test]
fn a_city_database_gives_the_country_too() {
    let Some(db) = geoip_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &PEERS, 0);
    let server = RedisServer::start();
    let city = db.join("GeoIP2-City-Test.mmdb");
    once_with(
        dir.path(),
        &server,
        &["--geoip-db", &city.to_string_lossy()],
    );
    let mut con = server.connection();
    assert_eq!(
        info(&mut con, "2001:218::1").as_deref(),
        Some(r#"{"geocountry": "Japan"}"#)
    );
}

#[test]
fn a_missing_corrupt_or_wrong_database_is_a_clear_error_at_start() {
    let Some(db) = geoip_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path(), &PEERS[..1], 0);
    let corrupt = dir.path().join("cut.mmdb");
    let bytes = std::fs::read(db.join("GeoIP2-Country-Test.mmdb")).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    let text = dir.path().join("text.mmdb");
    std::fs::write(&text, "not a database\n").unwrap();
    let server = RedisServer::start();
    for (flag, path, says) in [
        ("--geoip-db", dir.path().join("absent.mmdb"), "No such file"),
        ("--geoip-db", corrupt.clone(), "--geoip-db"),
        ("--asn-db", text.clone(), "--asn-db"),
        // An ASN database where a country one is wanted.
        (
            "--geoip-db",
            db.join("GeoLite2-ASN-Test.mmdb"),
            "GeoLite2-ASN",
        ),
    ] {
        for once in [true, false] {
            let mut c = command(dir.path(), &server);
            if once {
                c.args(["--once", "--no-progress"]);
            }
            let out = c.arg(flag).arg(&path).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{flag} {}: {stderr}",
                path.display()
            );
            assert!(
                stderr.contains(says) && stderr.contains(&*path.to_string_lossy()),
                "{stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        }
    }
    // Nothing was written.
    let n: usize = redis::cmd("DBSIZE")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn sighup_reopens_the_databases() {
    let Some(db) = geoip_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    capture(&logs, &PEERS[..1], 0);
    let config = dir.path().join("k.toml");
    let country = db.join("GeoIP2-Country-Test.mmdb");
    std::fs::write(
        &config,
        format!("geoip-db = {:?}\n", country.to_string_lossy()),
    )
    .unwrap();
    let server = RedisServer::start();
    let child = command(&logs, &server)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    settle(&server);
    let mut con = server.connection();
    assert_eq!(
        info(&mut con, "214.78.120.5").as_deref(),
        Some(r#"{"geocountry": "United States"}"#)
    );
    // The config file becomes `text`, SIGHUP, then the `i`-th peer's conn is written.
    let reload_then = |text: &str, i: usize| {
        std::fs::write(&config, text).unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(700));
        capture(&logs, &PEERS[i..i + 1], i);
    };
    // A broken file on reload keeps what is in use.
    reload_then("asn-db = \"/nonexistent.mmdb\"\n", 1);
    settle(&server);
    assert_eq!(
        info(&mut con, "1.128.0.1").as_deref(),
        Some(r#"{"geocountry": "Unknown"}"#)
    );
    let asn = db.join("GeoLite2-ASN-Test.mmdb");
    reload_then(
        &format!(
            "geoip-db = {:?}\nasn-db = {:?}\n",
            country.to_string_lossy(),
            asn.to_string_lossy()
        ),
        4,
    );
    settle(&server);
    assert_eq!(
        info(&mut con, "1.0.0.1").as_deref(),
        Some(r#"{"geocountry": "Unknown", "asn": "Google Inc."}"#)
    );
    assert_eq!(terminate(child).0, Some(0));
}
