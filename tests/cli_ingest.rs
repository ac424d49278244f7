//! `kalipso-ingest --zeek-dir DIR --once` end to end: the real binary, a real Redis.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::redis_server::RedisServer;
use common::*;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"))
        .args(args)
        .env_remove("KALIPSO_REDIS_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("run kalipso-ingest");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample() -> String {
    fixtures()
        .join("slips/test9")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn once_ingests_and_prints_the_summary() {
    let server = RedisServer::start();
    let (code, stdout, stderr) = run(&[
        "--zeek-dir",
        &sample(),
        "--once",
        "--redis-url",
        &server.url(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "conn         576 records",
        "flows profiled: 576",
        "profiles: 125",
        "flows/s",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in:\n{stdout}");
    }
    let mut con = server.connection();
    let n: u64 = redis::cmd("SCARD").arg("profiles").query(&mut con).unwrap();
    assert_eq!(n, 125);
    let label: String = redis::cmd("HGET")
        .arg("profile_10.0.2.15_timewindow1_flows")
        .arg("CE0FkN2oz9LWuUEXk5")
        .query(&mut con)
        .unwrap();
    assert!(label.ends_with(r#""label": "unknown"}"#), "{label}");
}

#[test]
fn unreachable_redis_is_one_clear_line_and_exit_1() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let (code, stdout, stderr) = run(&["--zeek-dir", &sample(), "--once", "--redis-url", &url]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&url), "{stderr}");
    assert!(lines[0].contains("cannot reach Redis"), "{stderr}");
    assert!(lines[0].contains("redis-server"), "{stderr}");
}

#[test]
fn config_file_supplies_every_setting_and_flags_override_it() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "zeek-dir = {:?}\nredis-url = {:?}\nhome-net = [\"10.0.2.0/24\"]\ndirection = \"all\"\ntw-width = 60\nlabel = \"from-file\"\n",
            sample(),
            server.url()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "--config",
        config.to_str().unwrap(),
        "--once",
        "--label",
        "from-flag",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("profiles: 3"), "{stdout}");
    let mut con = server.connection();
    let width: String = redis::cmd("GET")
        .arg("kalipso-ingest:tw-width")
        .query(&mut con)
        .unwrap();
    assert_eq!(width, "60");
    let flows: Vec<String> = redis::cmd("HVALS")
        .arg("profile_10.0.2.15_timewindow1_flows")
        .query(&mut con)
        .unwrap();
    assert!(!flows.is_empty());
    assert!(flows.iter().all(|f| f.contains(r#""label": "from-flag""#)));
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let (code, _, stderr) = run(&["--zeek-dir", &sample(), "--once", "--direction", "both"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`out` or `all`"), "{stderr}");
    let (code, _, stderr) = run(&["--once"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--zeek-dir"), "{stderr}");
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "colour = \"red\"\n").unwrap();
    let (code, _, stderr) = run(&["--config", bad.path().to_str().unwrap(), "--once"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("colour"), "{stderr}");
}

#[test]
fn stored_state_that_cannot_be_read_stops_the_run_with_what_to_do() {
    // A checkpoint or join entry that does not parse is never skipped silently (a file read
    // again from its start would double it; a dropped join entry would lose sub-lines).
    for (key, field) in [
        ("kalipso-ingest:checkpoints", None),
        ("kalipso-ingest:joinable", Some("Cbroken")),
        ("kalipso-ingest:watermarks", Some("conn")),
    ] {
        let server = RedisServer::start();
        let url = server.url();
        let args = [
            "--zeek-dir",
            &sample(),
            "--once",
            "--no-progress",
            "--redis-url",
            &url,
        ];
        assert_eq!(run(&args).0, 0);
        let mut con = server.connection();
        let field = match field {
            Some(f) => f.to_string(),
            None => {
                let fields: Vec<String> = redis::cmd("HKEYS").arg(key).query(&mut con).unwrap();
                fields[0].clone()
            }
        };
        let _: () = redis::cmd("HSET")
            .arg(key)
            .arg(&field)
            .arg("{not json")
            .query(&mut con)
            .unwrap();
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 1, "{key}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{key}: {stderr}");
        assert!(
            stderr.contains(&field) && stderr.contains("--reset"),
            "{key}: {stderr}"
        );
        // The way out it names works.
        let mut reset = args.to_vec();
        reset.push("--reset");
        let (code, _, stderr) = run(&reset);
        assert_eq!(code, 0, "{key}: {stderr}");
    }
}

#[test]
fn our_state_in_an_unknown_format_or_unreadable_set_stops_the_run() {
    let server = RedisServer::start();
    let url = server.url();
    let args = [
        "--zeek-dir",
        &sample(),
        "--once",
        "--no-progress",
        "--redis-url",
        &url,
    ];
    assert_eq!(run(&args).0, 0);
    let mut con = server.connection();
    let format: String = redis::cmd("GET")
        .arg("kalipso-ingest:state-format")
        .query(&mut con)
        .unwrap();
    assert_eq!(format, "1");
    // Written by a newer build: refused, with the way out.
    let _: () = redis::cmd("SET")
        .arg("kalipso-ingest:state-format")
        .arg("9")
        .query(&mut con)
        .unwrap();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("format 9") && stderr.contains("--reset"),
        "{stderr}"
    );
    // Written before the key existed: format 1, read as before.
    let _: () = redis::cmd("DEL")
        .arg("kalipso-ingest:state-format")
        .query(&mut con)
        .unwrap();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    // A window member that is not `<address>|<window>`.
    let _: () = redis::cmd("SADD")
        .arg("kalipso-ingest:windows-waiting")
        .arg("nonsense")
        .query(&mut con)
        .unwrap();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("nonsense") && stderr.contains("--reset"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_is_a_clean_exit_for_the_summary_and_replay() {
    // `kalipso-ingest --once ... | true`: the summary meets a broken pipe after the data is
    // committed; exit 0 and no panic (as inspect, tests/cli_inspect.rs).
    let server = RedisServer::start();
    let url = server.url();
    let sample = sample();
    let args = [
        "--zeek-dir",
        &sample,
        "--once",
        "--no-progress",
        "--redis-url",
        &url,
    ];
    let out = run_with_stdout_closed_after(&args, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut con = server.connection();
    let n: u64 = redis::cmd("SCARD").arg("profiles").query(&mut con).unwrap();
    assert_eq!(n, 125);

    let to = tempfile::tempdir().unwrap();
    let to_arg = to.path().join("live");
    let to_arg = to_arg.to_str().unwrap();
    let out = run_with_stdout_closed_after(&["replay", "--from", &sample, "--to", to_arg], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(to.path().join("live/conn.log").is_file(), "{stderr}");
}
