//! `kalipso-ingest inspect` end to end: the real binary over fixture directories.

mod common;

use std::process::Command;

use common::*;

fn inspect(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run kalipso-ingest");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_report_per_file_with_the_contract_keys() {
    let dir = fixtures().join("corpus/rita-proxy-rolling");
    let (code, stdout, _) = inspect(&["--json", "--zeek-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        reports.len(),
        8,
        "conn, dns, http, ssl x 2 hours; look-alikes skipped"
    );
    for r in &reports {
        for key in [
            "file",
            "path",
            "format",
            "records",
            "malformed",
            "first_ts",
            "last_ts",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert_eq!(r["format"], "tsv");
        assert_eq!(r["malformed"], 0);
        assert!(r["first_ts"].as_f64().unwrap() <= r["last_ts"].as_f64().unwrap());
    }
    let conn: u64 = reports
        .iter()
        .filter(|r| r["path"] == "conn")
        .map(|r| r["records"].as_u64().unwrap())
        .sum();
    assert_eq!(conn, 7550);
}

#[test]
fn text_report_shows_malformed_lines_with_file_and_line() {
    let file = fixtures().join("corpus/rita-truncated/conn.log");
    let (code, stdout, _) = inspect(&[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("58 records, 1 malformed"), "{stdout}");
    assert!(stdout.contains("conn.log:67:"), "{stdout}");
}

#[test]
fn json_format_detection_and_gzip() {
    let f = fixtures().join("corpus/zed-wrccdc-zeek620/zeek-json/ssl.json.gz");
    let (code, stdout, _) = inspect(&["--json", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (r["format"].as_str(), r["path"].as_str()),
        (Some("json"), Some("ssl"))
    );
    assert_eq!(r["records"], 49474);
}

#[test]
fn usage_and_runtime_errors_have_exit_codes() {
    let (code, _, stderr) = inspect(&[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = inspect(&["--zeek-dir", "/nonexistent/dir"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/dir"), "{stderr}");
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    // `kalipso-ingest inspect ... | head`: the reader goes away before the reports are written
    // (0 bytes kept), or after the first bytes of them, with most of the ~40 KB of reports on
    // every fixture still to come. Either way: exit 0 and no message, as in ripgrep.
    let dir = fixtures();
    let dir = dir.to_str().unwrap();
    for json in [false, true] {
        for keep in [0, 64] {
            let mut args = vec!["inspect", "-r", "--zeek-dir", dir];
            if json {
                args.push("--json");
            }
            let out = run_with_stdout_closed_after(&args, keep);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?} {keep}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?} {keep}: {stderr}");
            assert!(stderr.is_empty(), "{args:?} {keep}: {stderr}");
        }
    }
}
