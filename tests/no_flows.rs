//! `--no-flows` (issue 18): no `_flows`/`_altflows`; windows read back from our compact
//! records give exactly what the default mode gives, in either layout, through eviction and
//! reload, reordered input and follow mode; a database keeps its mode; retention removes the
//! records; a damaged record frame is skipped, never fatal.

mod common;

use std::path::Path;

use common::daemon::{command, once_with, settle, terminate};
use common::dump::{dump, dump_diff, without_run_state};
use common::fixtures;
use common::ingest::{churn, settings};
use common::redis_server::RedisServer;
use kalipso_ingest::ingest::{IngestOptions, run_once};
use kalipso_ingest::model::layout::Layout;
use kalipso_ingest::profile::routing::Direction;
use redis::Commands;
use serde_json::Value;

fn run(
    dir: &Path,
    direction: Direction,
    width: f64,
    layout: Layout,
    no_flows: bool,
    opts: &IngestOptions,
) -> Value {
    let server = RedisServer::start();
    let mut s = settings(&server, dir, &[], direction);
    s.tw_width = width;
    s.layout = layout;
    s.redis.layout = layout;
    s.redis.no_flows = no_flows;
    run_once(&s, opts).expect("ingest");
    without_run_state(dump(&mut server.connection()))
}

/// A dump without the keys that hold records (`_flows`, `_altflows`, our copies, alt lists and
/// compact records, the `labels` counts of `_flows`, the records marker): what both modes
/// must write identically.
fn without_records(mut d: Value) -> Value {
    if let Some(m) = d.as_object_mut() {
        m.retain(|k, _| {
            !(k.ends_with("_flows")
                || k.ends_with("_altflows")
                || k.starts_with("kalipso-ingest:copies:")
                || k.starts_with("kalipso-ingest:alts:")
                || k.starts_with("kalipso-ingest:recs:")
                || k == "labels"
                || k == "kalipso-ingest:records")
        });
    }
    d
}

fn keys_like(d: &Value, f: impl Fn(&str) -> bool) -> Vec<String> {
    d.as_object()
        .unwrap()
        .keys()
        .filter(|k| f(k))
        .cloned()
        .collect()
}

#[test]
fn no_flows_writes_the_same_layout_without_the_flows_and_reloads_from_its_records() {
    for (capture, width) in [
        ("slips/test9", 30.0),
        ("corpus/rita-proxy", 3600.0),
        ("corpus/slips-test10-tsv", 300.0),
    ] {
        let src = fixtures().join(capture);
        for layout in [Layout::Kalipso2020, Layout::Kalipso] {
            let direction = Direction::All;
            let flows = run(
                &src,
                direction,
                width,
                layout,
                false,
                &IngestOptions::default(),
            );
            let want = without_records(flows.clone());
            let compact = run(
                &src,
                direction,
                width,
                layout,
                true,
                &IngestOptions::default(),
            );
            assert!(
                keys_like(&compact, |k| k.ends_with("_flows")
                    || k.ends_with("_altflows")
                    || k == "labels"
                    || k.starts_with("kalipso-ingest:alts:")
                    || k.starts_with("kalipso-ingest:copies:"))
                .is_empty(),
                "{capture}: --no-flows wrote flows"
            );
            let recs = keys_like(&compact, |k| k.starts_with("kalipso-ingest:recs:"));
            assert!(!recs.is_empty(), "{capture}: no compact records");
            // Each window's records end as one frame (the closing write compacts them).
            for k in &recs {
                assert_eq!(
                    compact[k]["value"].as_array().map(Vec::len),
                    Some(1),
                    "{capture} {k}"
                );
            }
            assert_eq!(compact["kalipso-ingest:records"]["value"], "compact");
            let got = without_records(compact);
            assert!(
                got == want,
                "{capture} {layout}:\n{}",
                dump_diff(&got, &want)
            );
            // Every window evicted and read back from its compact records at every flush.
            let churned = without_records(run(&src, direction, width, layout, true, &churn()));
            assert!(
                churned == want,
                "{capture} {layout} reloaded:\n{}",
                dump_diff(&churned, &want)
            );
            // Written in many small flushes: the frames still end compacted and equal.
            let small = IngestOptions {
                flush_every: 3,
                ..IngestOptions::default()
            };
            let got = run(&src, direction, width, layout, true, &small);
            assert!(
                without_records(got.clone()) == want,
                "{capture} {layout} small flushes"
            );
            for k in keys_like(&got, |k| k.starts_with("kalipso-ingest:recs:")) {
                assert_eq!(got[&k]["value"].as_array().map(Vec::len), Some(1), "{k}");
            }
        }
    }
}

#[test]
fn follow_mode_and_a_second_pass_give_the_once_database() {
    let src = fixtures().join("slips/test9");
    let flags = ["--no-flows", "--direction", "all", "--tw-width", "60"];
    let want = {
        let server = RedisServer::start();
        once_with(&src, &server, &flags);
        without_run_state(dump(&mut server.connection()))
    };
    let server = RedisServer::start();
    let child = command(&src, &server)
        .args(flags)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    settle(&server);
    assert_eq!(terminate(child).0, Some(0));
    // A second pass over the same files after the daemon: nothing doubles.
    once_with(&src, &server, &flags);
    let got = without_run_state(dump(&mut server.connection()));
    let (got, want) = (without_frames(got), without_frames(want));
    assert!(
        got == want,
        "follow mode differs:\n{}",
        dump_diff(&got, &want)
    );
}

/// Frames compress the same records differently when they were written in other flushes:
/// compare the records they hold, not their bytes.
fn without_frames(mut d: Value) -> Value {
    if let Some(m) = d.as_object_mut() {
        m.retain(|k, _| !k.starts_with("kalipso-ingest:recs:"));
    }
    d
}

#[test]
fn a_database_keeps_its_records_mode() {
    let src = fixtures().join("slips/test9");
    for (first, second, says) in [
        (&["--no-flows"][..], &[][..], "was written with --no-flows"),
        (&[][..], &["--no-flows"][..], "keeps its flows in _flows"),
    ] {
        let server = RedisServer::start();
        once_with(&src, &server, first);
        let out = command(&src, &server)
            .args(["--once", "--no-progress"])
            .args(second)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.lines().count() == 1,
            "{stderr}"
        );
        // --reset clears the mode with the rest.
        let out = command(&src, &server)
            .args(["--once", "--no-progress", "--reset"])
            .args(second)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn retention_removes_the_records_of_the_windows_it_removes() {
    let src = fixtures().join("slips/test9");
    let server = RedisServer::start();
    once_with(
        &src,
        &server,
        &["--no-flows", "--tw-width", "60", "--retain", "2m"],
    );
    let d = dump(&mut server.connection());
    let recs = keys_like(&d, |k| k.starts_with("kalipso-ingest:recs:"));
    assert!(!recs.is_empty());
    for k in &recs {
        let window = k.trim_start_matches("kalipso-ingest:recs:");
        assert!(
            d.get(window).is_some() || d.get(format!("{window}_timeline").as_str()).is_some(),
            "records of a removed window: {k}"
        );
    }
    let windows = keys_like(&d, |k| {
        k.starts_with("profile_") && k.contains("_timewindow") && !k.ends_with("_timeline")
    });
    let all = {
        let server = RedisServer::start();
        once_with(&src, &server, &["--no-flows", "--tw-width", "60"]);
        dump(&mut server.connection())
    };
    let all_windows = keys_like(&all, |k| {
        k.starts_with("profile_") && k.contains("_timewindow") && !k.ends_with("_timeline")
    });
    assert!(
        windows.len() < all_windows.len(),
        "the retention removed nothing"
    );
}

#[test]
fn a_damaged_frame_is_skipped_and_the_run_goes_on() {
    let src = fixtures().join("slips/test9");
    let server = RedisServer::start();
    let flags = ["--no-flows", "--tw-width", "60"];
    once_with(&src, &server, &flags);
    let mut con = server.connection();
    let recs: Vec<String> = con.keys("kalipso-ingest:recs:*").unwrap();
    for k in &recs {
        let _: () = con.rpush(k, &b"\x01not zstd"[..]).unwrap();
        let _: () = con.lpush(k, &b"\x07unknown version"[..]).unwrap();
    }
    // The same logs again in a new directory (new files): every window is read back.
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
    }
    let out = command(copy.path(), &server)
        .args(["--once", "--no-progress"])
        .args(flags)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("could not be read"), "{stderr}");
}

#[test]
fn a_followed_window_leaves_memory_with_its_frames_made_one() {
    // Conns appended in steps while the daemon follows: windows are written over several
    // commits, close, and must be compacted before they are evicted.
    let src = std::fs::read_to_string(fixtures().join("slips/test9/conn.log")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let child = command(dir.path(), &server)
        .args([
            "--no-flows",
            "--tw-width",
            "60",
            "--fields-interval-ms",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join("conn.log");
    let step = lines.len().div_ceil(16);
    for chunk in lines.chunks(step) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        std::io::Write::write_all(&mut f, (chunk.join("\n") + "\n").as_bytes()).unwrap();
        drop(f);
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    settle(&server);
    assert_eq!(terminate(child).0, Some(0));
    let mut con = server.connection();
    let recs: Vec<String> = con.keys("kalipso-ingest:recs:*").unwrap();
    let n = |k: &str| -> i64 { k.rsplit("_timewindow").next().unwrap().parse().unwrap() };
    let last = recs.iter().map(|k| n(k)).max().unwrap();
    let mut closed = 0;
    for k in &recs {
        // Closed: ended one width (the daemon's hold) before the last window began.
        if n(k) < last - 1 {
            closed += 1;
            let frames: usize = con.llen(k).unwrap();
            assert_eq!(frames, 1, "{k}");
        }
    }
    assert!(closed > 0, "no closed window: {recs:?}");
}
