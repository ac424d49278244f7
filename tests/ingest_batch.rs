//! `--once` ingest into a real Redis: golden dumps for several captures and all four
//! home-net × direction cases, order independence, and what a second run does.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::dump::{assert_golden, dump, without_run_state};
use common::ingest::{churn, ingest, ingest_width, ingest_with};
use common::redis_server::RedisServer;
use common::*;
use kalipso_ingest::ingest::IngestOptions;
use kalipso_ingest::profile::routing::Direction;
use serde_json::Value;

/// Captures with golden dumps, and the home net used for them.
const CAPTURES: &[(&str, &str)] = &[
    ("slips/input_zeek1", "192.168.1.0/24"),
    ("slips/input_zeek2", "192.168.1.0/24"),
    ("corpus/slips-test10-tsv", "2001:718:2:1663::/64"),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn run_dump(dir: &Path, home: &[&str], direction: Direction, opts: &IngestOptions) -> Value {
    run_dump_width(dir, home, direction, 3600.0, opts)
}

fn run_dump_width(
    dir: &Path,
    home: &[&str],
    direction: Direction,
    width: f64,
    opts: &IngestOptions,
) -> Value {
    let server = RedisServer::start();
    ingest_width(&server, dir, home, direction, width, opts);
    without_run_state(dump(&mut server.connection()))
}

#[test]
fn golden_dumps_for_every_capture_and_case() {
    for (capture, net) in CAPTURES {
        for (home, direction) in [
            (None, Direction::Out),
            (None, Direction::All),
            (Some(*net), Direction::Out),
            (Some(*net), Direction::All),
        ] {
            let homes: Vec<&str> = home.into_iter().collect();
            let mut got = run_dump(
                &fixtures().join(capture),
                &homes,
                direction,
                &IngestOptions::default(),
            );
            // Our bookkeeping keys (every alt record, repeated uids) are not part of the
            // layout Kalipso reads; the reload tests below check them. Checkpoints hold paths.
            // `portinfo` is the constant port table (unit-tested in timeline::services).
            got.as_object_mut().unwrap().retain(|k, _| {
                !k.starts_with("kalipso-ingest:alts:")
                    && !k.starts_with("kalipso-ingest:copies:")
                    && k != "portinfo"
            });
            let name = format!(
                "{}-{}-{}.json",
                capture.replace('/', "_"),
                if home.is_some() { "home" } else { "nohome" },
                match direction {
                    Direction::Out => "out",
                    Direction::All => "all",
                }
            );
            assert_golden(&got, &golden_dir().join(name));
        }
    }
}

/// How [`reordered_copy`] changes the arrival order.
#[derive(Clone, Copy, Debug)]
enum Reorder {
    /// conn.log fully shuffled (Zeek writes conns when they end, so any order can happen);
    /// the alt logs in their order.
    ShuffleConn,
    /// Every log's lines reordered within 30 s of log time (inside the 60 s join grace).
    Jitter,
}

/// The `ts` of a data line (JSON `ts` or the first TSV column).
fn line_ts(line: &str) -> f64 {
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).unwrap();
        v["ts"].as_f64().unwrap()
    } else {
        line.split('\t').next().unwrap().parse().unwrap_or(0.0)
    }
}

/// Copy `src`'s conn/dns/http/ssl logs into a temp dir with their data lines in another order
/// (TSV headers stay first), each split into a rotated file and the current one.
fn reordered_copy(src: &Path, how: Reorder, seed: u64) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    for name in ["conn", "dns", "http", "ssl"] {
        let path = src.join(format!("{name}.log"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8(bytes).unwrap();
        let (header, mut data): (Vec<&str>, Vec<&str>) = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("#close"))
            .partition(|l| l.trim_start().starts_with('#'));
        match how {
            Reorder::ShuffleConn if name == "conn" => {
                // Fisher–Yates with a fixed generator: repeatable.
                for i in (1..data.len()).rev() {
                    let j = (next() as usize) % (i + 1);
                    data.swap(i, j);
                }
            }
            Reorder::ShuffleConn => {}
            Reorder::Jitter => {
                let mut keyed: Vec<(f64, &str)> = data
                    .iter()
                    .map(|l| (line_ts(l) + (next() % 30_000) as f64 / 1000.0, *l))
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                data = keyed.into_iter().map(|(_, l)| l).collect();
            }
        }
        let half = data.len() / 2;
        for (file, part) in [
            (format!("{name}.2020-01-01-00-00-00.log"), &data[..half]),
            (format!("{name}.log"), &data[half..]),
        ] {
            let mut body = header.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            for l in part {
                body.push_str(l);
                body.push('\n');
            }
            std::fs::write(out.path().join(file), body).unwrap();
        }
    }
    out
}

/// Equal dumps, or a panic naming the first keys and fields that differ.
fn assert_same(want: &Value, got: &Value, what: &str) {
    if want == got {
        return;
    }
    let (w, g) = (want.as_object().unwrap(), got.as_object().unwrap());
    let mut diffs = Vec::new();
    for k in w.keys().chain(g.keys()) {
        if w.get(k) != g.get(k) && !diffs.iter().any(|(d, _): &(String, String)| d == k) {
            let detail = match (w.get(k).map(|v| &v["value"]), g.get(k).map(|v| &v["value"])) {
                (Some(Value::Object(a)), Some(Value::Object(b))) => a
                    .keys()
                    .chain(b.keys())
                    .filter(|f| a.get(*f) != b.get(*f))
                    .take(2)
                    .map(|f| format!("{f}: {:?} vs {:?}", a.get(f), b.get(f)))
                    .collect::<Vec<_>>()
                    .join("; "),
                (Some(Value::Array(a)), Some(Value::Array(b))) => {
                    let first = a.iter().zip(b.iter()).position(|(x, y)| x != y);
                    format!(
                        "lists of {} vs {} items, first difference at {first:?}: {:?} vs {:?}",
                        a.len(),
                        b.len(),
                        first.map(|i| &a[i]),
                        first.map(|i| &b[i])
                    )
                }
                (a, b) => format!("{a:?} vs {b:?}"),
            };
            diffs.push((k.clone(), detail.chars().take(400).collect()));
        }
    }
    diffs.truncate(5);
    panic!("{what} changed the result: {diffs:#?}");
}

#[test]
fn result_does_not_depend_on_line_order_files_or_eviction() {
    // Narrow windows (test9 spans 4.5 minutes) so that windows are written, evicted and
    // reopened from Redis while the run goes on.
    for (capture, home, width) in [
        ("slips/test9", None, 30.0),
        ("slips/test9", Some("10.0.2.0/24"), 60.0),
        ("corpus/rita-proxy", None, 3600.0),
    ] {
        let src = fixtures().join(capture);
        let homes: Vec<&str> = home.into_iter().collect();
        for direction in [Direction::Out, Direction::All] {
            let want = run_dump_width(&src, &homes, direction, width, &IngestOptions::default());
            let churned = run_dump_width(&src, &homes, direction, width, &churn());
            assert_same(
                &want,
                &churned,
                &format!("{capture} {direction:?}: eviction and reload"),
            );
            for how in [Reorder::ShuffleConn, Reorder::Jitter] {
                let copy = reordered_copy(&src, how, 7);
                for opts in [IngestOptions::default(), churn()] {
                    let got = run_dump_width(copy.path(), &homes, direction, width, &opts);
                    assert_same(
                        &want,
                        &got,
                        &format!(
                            "{capture} {direction:?} {how:?} flush_every={}",
                            opts.flush_every
                        ),
                    );
                }
            }
        }
    }
}

/// test9 with every 7th conn, dns and ssl line twice: the copy right after its original, or
/// at the end of its log. (Not http: a copy at the end of an http record far past its conn,
/// beyond the join's grace, is an orphan placed by its own time, a different result by
/// design.)
fn with_repeats(src: &Path, at_end: bool) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    for name in ["conn", "dns", "http", "ssl"] {
        let text = std::fs::read_to_string(src.join(format!("{name}.log"))).unwrap();
        let (mut body, mut tail) = (String::new(), String::new());
        for (i, line) in text.lines().enumerate() {
            body.push_str(line);
            body.push('\n');
            if i % 7 == 3 && matches!(name, "conn" | "dns" | "ssl") {
                let copy = if at_end { &mut tail } else { &mut body };
                copy.push_str(line);
                copy.push('\n');
            }
        }
        body.push_str(&tail);
        std::fs::write(out.path().join(format!("{name}.log")), body).unwrap();
    }
    out
}

#[test]
fn repeated_uids_after_their_first_copy_was_written_give_the_same_result() {
    // Flushing every 3 records, the first copy of a repeated uid (and its dns record) is
    // written and has left memory when the copy at the end of the log comes: the window is
    // merged with Redis again. Same database as when the copies come together.
    let src = fixtures().join("slips/test9");
    let together = with_repeats(&src, false);
    let apart = with_repeats(&src, true);
    for direction in [Direction::Out, Direction::All] {
        for width in [30.0, 3600.0] {
            let want = run_dump_width(
                together.path(),
                &[],
                direction,
                width,
                &IngestOptions::default(),
            );
            let got = run_dump_width(apart.path(), &[], direction, width, &churn());
            assert_same(&want, &got, &format!("{direction:?} width {width}"));
        }
    }
}

#[test]
fn a_batch_run_stopped_midway_is_finished_exactly_by_the_next_run() {
    // Stopped after some flushes as if killed — window fields not written yet (a batch run
    // writes them when a window closes), joins and timelines waiting — the next run resumes
    // from the checkpoints and the database equals one uninterrupted run.
    let src = fixtures().join("slips/test9");
    for direction in [Direction::Out, Direction::All] {
        for width in [30.0, 3600.0] {
            let want = run_dump_width(&src, &[], direction, width, &IngestOptions::default());
            for stop in [1, 40, 150] {
                let server = RedisServer::start();
                let first = IngestOptions {
                    flush_every: 3,
                    part_bytes: 0,
                    stop_after_flushes: Some(stop),
                    ..IngestOptions::default()
                };
                ingest_width(&server, &src, &[], direction, width, &first);
                let rest = IngestOptions::default();
                ingest_width(&server, &src, &[], direction, width, &rest);
                let got = without_run_state(dump(&mut server.connection()));
                assert_same(
                    &want,
                    &got,
                    &format!("{direction:?} width {width}, stopped after {stop} flushes"),
                );
            }
        }
    }
}

#[test]
fn a_batch_run_writes_no_window_fields_before_the_window_closes() {
    // Its hash fields are rendered once, at the close; the flushes before write its flows and
    // timeline lines only (the fields wait, persisted as waiting).
    let src = fixtures().join("slips/test9");
    let server = RedisServer::start();
    let first = IngestOptions {
        flush_every: 3,
        stop_after_flushes: Some(40),
        ..IngestOptions::default()
    };
    ingest_width(&server, &src, &[], Direction::All, 3600.0, &first);
    let mut con = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("profile_*").query(&mut con).unwrap();
    let windows: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.strip_suffix("_flows"))
        .collect();
    assert!(!windows.is_empty(), "the flushes wrote no flows");
    for window in &windows {
        let fields: u64 = redis::cmd("HLEN").arg(window).query(&mut con).unwrap();
        assert_eq!(fields, 0, "{window} has fields before it closed");
    }
    // Every window waits for its fields (a restart reopens and writes them).
    let waiting: usize = redis::cmd("SCARD")
        .arg("kalipso-ingest:windows-waiting")
        .query(&mut con)
        .unwrap();
    assert_eq!(waiting, windows.len());
}

#[test]
fn a_second_run_over_the_same_directory_changes_nothing() {
    // The checkpoints stored with the data say every file was read to its end.
    let server = RedisServer::start();
    let dir = fixtures().join("slips/test9");
    ingest(&server, &dir, &[], Direction::All);
    let first = dump(&mut server.connection());
    let summary = ingest(&server, &dir, &[], Direction::All);
    assert_eq!(summary.stats.flows, 0);
    assert_eq!(summary.logs.iter().map(|(_, c)| c.records).sum::<u64>(), 0);
    let second = dump(&mut server.connection());
    assert!(first == second, "a second run changed the database");
}

#[test]
fn appended_lines_are_read_on_the_next_run_and_nothing_twice() {
    // Run on the first half of each log, append the second half, run again: the database
    // equals one run over the whole logs.
    let src = fixtures().join("slips/test9");
    let want = run_dump(&src, &[], Direction::All, &IngestOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let names = ["conn", "dns", "http", "ssl"];
    let texts: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(src.join(format!("{n}.log"))).unwrap())
        .collect();
    for (n, text) in names.iter().zip(&texts) {
        let lines: Vec<&str> = text.lines().collect();
        let half = lines[..lines.len() / 2].join("\n") + "\n";
        std::fs::write(dir.path().join(format!("{n}.log")), half).unwrap();
    }
    ingest(&server, dir.path(), &[], Direction::All);
    for (n, text) in names.iter().zip(&texts) {
        std::fs::write(dir.path().join(format!("{n}.log")), text).unwrap();
    }
    ingest(&server, dir.path(), &[], Direction::All);
    let got = without_run_state(dump(&mut server.connection()));
    // The first run stored the records still waiting for their conn as orphans (its input had
    // ended); a growing directory is the daemon's job. Compare what does not depend on that.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().retain(|k, _| {
            !k.contains("altflows")
                && !k.contains("timeline")
                && !k.starts_with("kalipso-ingest:alts")
        });
        v
    };
    assert_same(&strip(want), &strip(got), "a run in two halves");
}

#[test]
fn nothing_outside_the_tool_is_touched_and_reset_removes_only_its_keys() {
    let server = RedisServer::start();
    let mut con = server.connection();
    let _: () = redis::cmd("SET")
        .arg("someone-else")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let dir = fixtures().join("slips/input_zeek1");
    ingest(&server, &dir, &[], Direction::Out);
    let opts = IngestOptions {
        reset: true,
        ..IngestOptions::default()
    };
    // A reset run gives exactly what a run into an empty database gives.
    let fresh = run_dump(&dir, &[], Direction::Out, &IngestOptions::default());
    ingest_with(&server, &dir, &[], Direction::Out, &opts);
    let mut got = without_run_state(dump(&mut con));
    let other = got.as_object_mut().unwrap().shift_remove("someone-else");
    assert_eq!(other.unwrap()["value"], "x");
    assert!(got == fresh);
}

#[test]
fn reset_refuses_to_delete_slips_data_it_did_not_write() {
    let server = RedisServer::start();
    let mut con = server.connection();
    let _: () = redis::cmd("SADD")
        .arg("profiles")
        .arg("profile_10.0.0.1")
        .query(&mut con)
        .unwrap();
    let settings = common::ingest::settings(
        &server,
        &fixtures().join("slips/input_zeek1"),
        &[],
        Direction::Out,
    );
    let opts = IngestOptions {
        reset: true,
        ..IngestOptions::default()
    };
    let err = kalipso_ingest::ingest::run_once(&settings, &opts).unwrap_err();
    assert!(err.to_string().contains("did not write"), "{err}");
    let n: u64 = redis::cmd("SCARD").arg("profiles").query(&mut con).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn another_width_on_the_same_database_is_refused() {
    let server = RedisServer::start();
    let dir = fixtures().join("slips/input_zeek1");
    ingest(&server, &dir, &[], Direction::Out);
    let mut settings = common::ingest::settings(&server, &dir, &[], Direction::Out);
    settings.tw_width = 300.0;
    let err = kalipso_ingest::ingest::run_once(&settings, &IngestOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--tw-width 3600"), "{err}");
}

#[test]
fn summary_counts_records_malformed_lines_flows_and_windows() {
    let server = RedisServer::start();
    let s = ingest(
        &server,
        &fixtures().join("corpus/rita-truncated"),
        &[],
        Direction::Out,
    );
    let counts: BTreeMap<&str, _> = s.logs.iter().map(|(k, c)| (k.as_str(), c)).collect();
    let conn = counts["conn"];
    // conn.log: the last line is cut (malformed); conn_top.log is not a conn.* name.
    assert_eq!(conn.files, 1);
    assert_eq!(conn.malformed, 1);
    assert_eq!(
        conn.records,
        s.stats.flows + s.stats.flows_unprofiled + conn.dropped
    );
    assert!(s.stats.flows > 0);
    assert!(s.windows > 0);
    let text = s.to_string();
    for needle in [
        "conn",
        "malformed",
        "flows profiled",
        "profiles",
        "timewindows",
        "flows/s",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn the_join_cap_bounds_waiting_records_without_losing_data() {
    // test9's dns/http/ssl records mostly arrive before their conn (Zeek writes conns last).
    // With room for only 5 waiting records the rest stop waiting and are stored under their
    // own source; no flow is lost and the run says so.
    let server = RedisServer::start();
    let opts = IngestOptions {
        join_cap: Some(5),
        ..IngestOptions::default()
    };
    let s = ingest_with(
        &server,
        &fixtures().join("slips/test9"),
        &[],
        Direction::Out,
        &opts,
    );
    assert_eq!(s.stats.flows, 576);
    assert!(s.stats.alts_gave_up > 0);
    assert_eq!(
        s.stats.alts_joined + s.stats.alts_orphaned + s.stats.alts_unplaced,
        960
    );
    assert!(s.to_string().contains("stopped waiting"));
}

/// A conn log of one host over 5,000 s (a conn every 10 s from the start of an hour), with
/// a long conn that started in the first second written after the conns of its 4,600th
/// second (Zeek writes a conn when it ends), or in its place by time.
fn with_long_conn(late: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\tresp_pkts\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount\n",
    );
    let start = 3600.0 * 278.0;
    let line = |ts: f64, uid: &str, dur: f64| {
        format!(
            "{ts:.6}\t{uid}\t10.0.0.1\t40000\t8.8.8.8\t443\ttcp\t-\t{dur:.6}\t100\t200\tSF\t3\t4\n"
        )
    };
    let long = line(start + 1.5, "Clong", 4598.0);
    for i in 0..500 {
        text.push_str(&line(start + 10.0 * f64::from(i), &format!("C{i}"), 0.5));
        if (i == 0 && !late) || (i == 460 && late) {
            text.push_str(&long);
        }
    }
    std::fs::write(dir.path().join("conn.log"), text).unwrap();
    dir
}

#[test]
fn a_long_conn_written_late_keeps_its_window_open_instead_of_reopening_it() {
    // A batch run holds a window 10 minutes past its end for conns that come late, but it
    // scans its conn logs first: knowing that a conn of the first hour is still to come 16
    // minutes after it, it keeps the window instead of writing it, dropping it and reopening
    // it from Redis.
    let opts = IngestOptions {
        flush_every: 5,
        ..IngestOptions::default()
    };
    let (late, in_order) = (with_long_conn(true), with_long_conn(false));
    let server = RedisServer::start();
    let summary = ingest_width(&server, late.path(), &[], Direction::Out, 3600.0, &opts);
    assert_eq!(summary.stats.flows, 501);
    assert_eq!(summary.stats.reopened, 0);
    let got = without_run_state(dump(&mut server.connection()));
    let want = run_dump_width(in_order.path(), &[], Direction::Out, 3600.0, &opts);
    assert_same(&want, &got, "a long conn written late");
}

/// A conn log written in two header blocks (as when a writer reopens it): the second block's
/// columns in another order, and holding the earliest conn (the one `timewindow1` starts at).
fn with_two_header_blocks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let start = 3600.0 * 300.0;
    let mut text = String::from(
        "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\tstring\n",
    );
    for i in 0..100 {
        let ts = start + 7.0 * f64::from(i);
        text.push_str(&format!(
            "{ts:.6}\tA{i}\t10.0.0.{}\t40000\t8.8.8.8\t53\tudp\t0.1\t40\t80\tSF\n",
            i % 5 + 1
        ));
    }
    text.push_str("#close\t2026-11-23-10-00-00\n");
    text.push_str(
        "#separator \\x09\n#path\tconn\n#fields\tuid\tid.resp_h\tid.resp_p\tid.orig_h\tid.orig_p\tproto\tts\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\tstring\taddr\tport\taddr\tport\tenum\ttime\tinterval\tcount\tcount\tstring\n",
    );
    for i in 0..300 {
        // The last one began an hour and a half before everything else.
        let ts = if i == 299 {
            start - 5400.0
        } else {
            start + 700.0 + 7.0 * f64::from(i)
        };
        text.push_str(&format!(
            "B{i}\t1.1.1.1\t443\t10.0.1.{}\t50000\ttcp\t{ts:.6}\t2.5\t300\t4000\tSF\n",
            i % 7 + 1
        ));
    }
    std::fs::write(dir.path().join("conn.log"), text).unwrap();
    dir
}

#[test]
fn the_conn_pre_scan_cut_in_two_gives_the_same_database() {
    // The pass over the conn logs that finds `timewindow1` and each window's last conn cuts
    // large plain files in two and scans both halves at once (forced here on small files):
    // the second half must see the header in force where it starts, and the late conn it
    // holds must still keep its window open.
    let split = IngestOptions {
        scan_split_bytes: 0,
        flush_every: 5,
        ..IngestOptions::default()
    };
    let whole = IngestOptions {
        scan_split_bytes: u64::MAX,
        flush_every: 5,
        ..IngestOptions::default()
    };
    let (blocks, late) = (with_two_header_blocks(), with_long_conn(true));
    let dirs = [
        (blocks.path().to_path_buf(), "two header blocks"),
        (late.path().to_path_buf(), "a long conn written late"),
        (fixtures().join("slips/test9"), "slips test9"),
        (fixtures().join("corpus/rita-truncated"), "rita truncated"),
    ];
    for (dir, what) in &dirs {
        for direction in [Direction::Out, Direction::All] {
            let want = run_dump_width(dir, &[], direction, 3600.0, &whole);
            let server = RedisServer::start();
            let summary = ingest_width(&server, dir, &[], direction, 3600.0, &split);
            assert_eq!(summary.stats.reopened, 0, "{what}");
            let got = without_run_state(dump(&mut server.connection()));
            assert_same(&want, &got, what);
        }
    }
    // The earliest conn, in the second block, starts `timewindow1` either way.
    let server = RedisServer::start();
    ingest_width(&server, blocks.path(), &[], Direction::Out, 3600.0, &split);
    let windows: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg("twsprofile_10.0.1.6")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(windows.first().map(|w| w.0.as_str()), Some("timewindow1"));
    // Resumed from a checkpoint: the cut is made in what is left to read.
    for stop in [2, 30] {
        let server = RedisServer::start();
        let first = IngestOptions {
            stop_after_flushes: Some(stop),
            ..split.clone()
        };
        ingest_width(&server, blocks.path(), &[], Direction::All, 3600.0, &first);
        ingest_width(&server, blocks.path(), &[], Direction::All, 3600.0, &split);
        let got = without_run_state(dump(&mut server.connection()));
        let want = run_dump_width(blocks.path(), &[], Direction::All, 3600.0, &whole);
        assert_same(&want, &got, "resumed");
    }
}

#[test]
fn a_bad_line_earlier_than_every_conn_does_not_fix_the_first_window() {
    // The pre-scan converts only a conn's time, addresses and proto, but a line earlier than
    // every conn it has kept is converted whole: one bad in another field (written last, as a
    // long conn is, an hour and a half before the rest) is dropped by the scan as by the main
    // pass, and `timewindow1` is the window of the earliest valid conn, with or without it.
    // A bad line later than that counts in the scan (its windows are then held longer) and
    // changes nothing either.
    #[derive(Clone, Copy, PartialEq)]
    enum Bad {
        None,
        First,
        Middle,
    }
    let write = |bad: Bad| {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from(
            "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\tstring\n",
        );
        let start = 3600.0 * 300.0;
        let bad_line = |ts: f64| {
            format!("{ts:.6}\tBAD\t10.0.0.1\t40000\t8.8.8.8\t53\tudp\t0.1\tforty\t80\tSF\n")
        };
        for i in 0..200 {
            let ts = start + 37.0 * f64::from(i);
            text.push_str(&format!(
                "{ts:.6}\tA{i}\t10.0.0.{}\t40000\t8.8.8.8\t53\tudp\t0.1\t40\t80\tSF\n",
                i % 5 + 1
            ));
            if bad == Bad::Middle && i == 50 {
                text.push_str(&bad_line(ts + 1.0));
            }
        }
        if bad == Bad::First {
            text.push_str(&bad_line(start - 5400.0));
        }
        std::fs::write(dir.path().join("conn.log"), text).unwrap();
        dir
    };
    let clean = write(Bad::None);
    for bad in [Bad::First, Bad::Middle] {
        let with_bad = write(bad);
        for scan_split_bytes in [0, u64::MAX] {
            let opts = IngestOptions {
                scan_split_bytes,
                flush_every: 5,
                ..IngestOptions::default()
            };
            let want = run_dump_width(clean.path(), &[], Direction::Out, 3600.0, &opts);
            let server = RedisServer::start();
            let summary =
                ingest_width(&server, with_bad.path(), &[], Direction::Out, 3600.0, &opts);
            assert_eq!(summary.stats.flows, 200);
            let got = without_run_state(dump(&mut server.connection()));
            assert_same(&want, &got, "a bad line among the conns");
        }
    }
}
