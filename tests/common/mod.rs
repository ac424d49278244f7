//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use kalipso_ingest::zeek::{LineError, LogKind, ReadError, Record};

/// The project's fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The shared corpus beside the project, when present (CI and developer machines have it).
/// Absent, the test is skipped on a developer machine and fails in CI ([`missing`]).
pub fn shared_corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/zeek-corpus");
    if p.is_dir() {
        return Some(p);
    }
    missing("../shared/zeek-corpus");
    None
}

/// Something a test needs is not there: a skip on a developer machine, a failure in CI
/// (`CI` set, and not to `false` or `0`), which has everything, so that a test never passes
/// there without testing. Every test that can skip goes through here.
pub fn missing(what: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{what} is missing: CI must have it (the test would not test)"
    );
    eprintln!("{what} not present: skipped");
}

/// Run the binary with `args`, its stdout a pipe whose reader goes away after `keep` bytes
/// (`0`: before anything is written), as `kalipso-ingest … | head -c keep` does.
pub fn run_with_stdout_closed_after(args: &[&str], keep: usize) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"))
        .args(args)
        .env_remove("KALIPSO_REDIS_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kalipso-ingest");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut kept = vec![0; keep];
    stdout
        .read_exact(&mut kept)
        .expect("the first bytes of the output");
    drop(stdout); // from now on every write to stdout is a broken pipe
    child.wait_with_output().expect("wait for kalipso-ingest")
}

/// Everything a file yields.
#[derive(Debug, Default)]
pub struct ReadAll {
    pub records: Vec<Record<'static>>,
    pub errors: Vec<LineError>,
    pub io_error: Option<String>,
}

/// Read a log file through the public reader.
pub fn read_file(path: &Path) -> ReadAll {
    let mut reader = kalipso_ingest::source::open(path).expect("open fixture");
    drain(&mut reader)
}

/// Read bytes as a log of `kind` (named `name` in errors).
pub fn read_bytes(name: &str, bytes: &[u8], kind: Option<LogKind>) -> ReadAll {
    let mut reader = kalipso_ingest::source::reader::from_reader(name, bytes, kind);
    drain(&mut reader)
}

fn drain<R: std::io::BufRead>(reader: &mut kalipso_ingest::source::LogReader<R>) -> ReadAll {
    let mut out = ReadAll::default();
    while let Some(item) = reader.next() {
        match item {
            Ok(r) => out.records.push(r.into_owned()),
            Err(ReadError::Line(e)) => out.errors.push(e),
            Err(e @ ReadError::Io { .. }) => out.io_error = Some(e.to_string()),
        }
    }
    out
}

/// The decompressed bytes of a file (as much as decompresses, for a cut gzip stream).
pub fn file_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).expect("read fixture");
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out);
        out
    } else {
        raw
    }
}

/// Every file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub mod daemon;
pub mod dump;
pub mod ingest;
pub mod redis_server;
pub mod viewer;

/// The records of a log as field → text maps, with a minimal parser of its own (JSON lines, or
/// TSV by `#fields`; plain or gzip): independent of the crate's reader, for cross-checks.
pub fn simple_records(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    use std::collections::BTreeMap;
    let text = String::from_utf8_lossy(&file_bytes(path)).into_owned();
    let mut fields: Vec<String> = Vec::new();
    let mut sep = '\t';
    let mut out = Vec::new();
    for l in text.lines() {
        let t = l.trim_start();
        if let Some(s) = t.strip_prefix("#separator ") {
            if s == "\\x2c" {
                sep = ',';
            }
            continue;
        }
        if let Some(f) = t.strip_prefix("#fields") {
            fields = f
                .trim_start_matches(sep)
                .split(sep)
                .map(str::to_string)
                .collect();
            continue;
        }
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        let mut rec = BTreeMap::new();
        if t.starts_with('{') {
            let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(t)
            else {
                continue;
            };
            for (k, v) in m {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                rec.insert(k, text);
            }
        } else {
            for (k, v) in fields.iter().zip(t.split(sep)) {
                if v != "-" && v != "(empty)" {
                    rec.insert(k.clone(), v.to_string());
                }
            }
        }
        out.push(rec);
    }
    out
}

/// A small answered dns conn (udp to 8.8.8.8:53, one packet each way) from `saddr` at `ts`.
pub fn dns_conn(uid: &str, ts: f64, saddr: &str) -> kalipso_ingest::model::flow::Flow {
    kalipso_ingest::model::flow::Flow {
        ts,
        uid: uid.into(),
        saddr: saddr.parse().expect("test address"),
        sport: 40000,
        daddr: "8.8.8.8".parse().expect("test address"),
        dport: 53,
        proto: "udp".into(),
        appproto: "dns".into(),
        dur: Some(0.1),
        origstate: "SF".into(),
        spkts: 1,
        dpkts: 1,
        sbytes: 40,
        dbytes: 60,
    }
}
