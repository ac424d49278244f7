//! The live daemon against real files and a real Redis: following a directory that `replay`
//! writes the way Zeek does (rotation by rename, lines split across writes) ends in the same
//! database as one `--once` pass over the same logs — also when the daemon is killed with
//! SIGKILL again and again — and SIGTERM stops it cleanly.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::*;
use common::dump::{dump, dump_diff, without_run_state};
use common::redis_server::RedisServer;
use common::*;
use kalipso_ingest::replay::{ReplayOptions, replay};
use serde_json::Value;

#[test]
fn follow_with_rotation_equals_batch() {
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let child = daemon(dir.path(), &server);
    let stats = replay(&ReplayOptions {
        from: capture.clone(),
        to: dir.path().to_path_buf(),
        speed: Some(300.0),
        rotate_every: Some(0.2),
    })
    .unwrap();
    assert!(stats.rotations >= 3, "{stats:?}");
    settle(&server);
    let (code, secs) = terminate(child);
    assert_eq!(code, Some(0));
    assert!(secs < 5.0, "SIGTERM took {secs} s");
    // The capture is over: `--once` over the same directory reads nothing new (checkpoints)
    // and stores what still waited for a conn, as the batch run did.
    once(dir.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "following differs from the batch result:\n{}",
        dump_diff(&got, &want)
    );
}

#[test]
fn killed_again_and_again_loses_nothing_and_doubles_nothing() {
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        replay(&ReplayOptions {
            from: capture,
            to,
            speed: Some(50.0),
            rotate_every: Some(0.4),
        })
        .unwrap()
    });
    // SIGKILL at five moments while the logs are being written, restarting each time.
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("daemon.log");
    let mut child = daemon_logged(dir.path(), &server, &log);
    // (five to six seconds of writing; the daemon commits every 500 ms)
    for delay_ms in [700u64, 1100, 450, 900, 1300] {
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no chance to flush
        let _ = child.wait();
        child = daemon_logged(dir.path(), &server, &log);
    }
    writer.join().unwrap();
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    once(dir.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    if got != want {
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        panic!(
            "a killed and restarted daemon differs from the batch result:\n{}\nfiles: {files:?}\ndaemon warnings:\n{}",
            dump_diff(&got, &want),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

#[test]
fn redis_restarted_in_the_middle_loses_nothing() {
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let mut server = RedisServer::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        replay(&ReplayOptions {
            from: capture,
            to,
            speed: Some(60.0),
            rotate_every: Some(0.5),
        })
        .unwrap()
    });
    let child = daemon(dir.path(), &server);
    for pause in [1200u64, 1500] {
        std::thread::sleep(Duration::from_millis(pause));
        server.restart();
    }
    writer.join().unwrap();
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    once(dir.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "a Redis restart changed the result:\n{}",
        dump_diff(&got, &want)
    );
}

#[test]
fn redis_that_forgot_everything_is_rebuilt_from_the_files() {
    // Without persistence a restarted Redis is empty: the daemon sees its flush counter gone
    // backwards, drops its state and reads the files again from the start.
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    replay(&ReplayOptions {
        from: capture,
        to: dir.path().to_path_buf(),
        speed: None,
        rotate_every: None,
    })
    .unwrap();
    let child = daemon(dir.path(), &server);
    settle(&server);
    server.restart();
    settle(&server);
    let profiles: u64 = redis::cmd("SCARD")
        .arg("profiles")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(
        profiles, 125,
        "the daemon did not rebuild the emptied database"
    );
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    once(dir.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "rebuilding after Redis lost everything changed the result:\n{}",
        dump_diff(&got, &want)
    );
}

fn daemon_with_config(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"))
        .arg("--config")
        .arg(config)
        .args(["--timezone", "UTC", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon")
}

fn scard(server: &RedisServer, key: &str) -> u64 {
    redis::cmd("SCARD")
        .arg(key)
        .query(&mut server.connection())
        .unwrap()
}

#[test]
fn sighup_reloads_the_home_network_for_new_data() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("config.toml");
    let write_config = |home: &str| {
        std::fs::write(
            &config,
            format!(
                "zeek-dir = {:?}\nredis-url = {:?}\nhome-net = [{home:?}]\n",
                logs.to_string_lossy(),
                server.url()
            ),
        )
        .unwrap()
    };
    write_config("10.0.0.0/8");
    let text = std::fs::read_to_string(fixtures().join("slips/input_zeek1/conn.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        logs.join("conn.log"),
        format!("{}\n", lines[..3].join("\n")),
    )
    .unwrap();
    let child = daemon_with_config(&config);
    settle(&server);
    // 192.168.1.10 is outside 10.0.0.0/8: only the home destination 10.0.0.99 could be one,
    // and it is not in these lines.
    assert_eq!(scard(&server, "profiles"), 0);
    write_config("192.168.1.0/24");
    let _ = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(800));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("conn.log"))
        .unwrap();
    use std::io::Write;
    writeln!(f, "{}", lines[3]).unwrap();
    drop(f);
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("profiles")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(members, ["profile_192.168.1.10"]);
    // Only the line after the reload was counted.
    let flows: Vec<String> = redis::cmd("KEYS")
        .arg("profile_192.168.1.10_timewindow*_flows")
        .query(&mut server.connection())
        .unwrap();
    let n: u64 = flows
        .iter()
        .map(|k| {
            redis::cmd("HLEN")
                .arg(k)
                .query::<u64>(&mut server.connection())
                .unwrap()
        })
        .sum();
    assert_eq!(n, 1);
}

#[test]
fn a_written_line_reaches_redis_quickly() {
    // Latency is measured and reported, not asserted tightly (timed tests flake); the bound
    // here only says the line arrives at all without waiting for anything else.
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("slips/input_zeek1/conn.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(dir.path().join("conn.log"), format!("{}\n", lines[0])).unwrap();
    let child = daemon(dir.path(), &server);
    settle(&server);
    let start = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("conn.log"))
        .unwrap();
    use std::io::Write;
    writeln!(f, "{}", lines[1]).unwrap();
    drop(f);
    let mut con = server.connection();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(10) {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*_flows").query(&mut con).unwrap();
        let found = keys.iter().any(|k| {
            redis::cmd("HEXISTS")
                .arg(k)
                .arg("C2")
                .query::<bool>(&mut con)
                .unwrap_or(false)
        });
        if found {
            seen = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let seen = seen.expect("the appended line never reached Redis");
    eprintln!("line to Redis: {} ms", seen.as_millis());
    assert!(seen < Duration::from_secs(5));
}

/// A conn log of `lines` lines from line `from` on, each padded by an extra column (Zeek
/// logs may have fields the reader does not use) to about `pad` bytes, so a file passes
/// tens of MiB with few records.
fn padded_conns(from: usize, lines: usize, pad: usize) -> String {
    let filler = "x".repeat(pad);
    let mut out = String::with_capacity(lines * (pad + 120));
    for i in from..from + lines {
        out.push_str(&format!(
            "{}.{:02}\tCp{i:07}\t10.0.{}.{}\t{}\t93.184.216.{}\t443\ttcp\tssl\t0.5\t100\t2000\tSF\t5\t300\t7\t2300\t{filler}\n",
            1_700_000_000 + i / 10,
            (i % 10) * 10,
            (i / 50) % 4,
            i % 50,
            40_000 + (i % 20_000),
            i % 7,
        ));
    }
    out
}

const PADDED_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\tpad\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount\tcount\tcount\tstring\n";

/// The conn checkpoint's offset in Redis (0 before the first commit).
fn committed_offset(server: &RedisServer) -> u64 {
    let cps: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("kalipso-ingest:checkpoints")
        .query(&mut server.connection())
        .unwrap();
    cps.values()
        .filter_map(|v| serde_json::from_str::<Value>(v).ok())
        .filter_map(|v| v["offset"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Wait until the committed offset satisfies `done` (at most two minutes).
fn wait_committed(server: &RedisServer, done: impl Fn(u64) -> bool) -> u64 {
    let start = Instant::now();
    loop {
        let at = committed_offset(server);
        if done(at) || start.elapsed() > Duration::from_secs(120) {
            return at;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// After a daemon's run over `dir`: one more `--once` pass adds nothing, and the database is
/// what one `--once` pass over the files gives (else the diff and the daemon's warnings).
fn assert_ends_as_one_once_pass(dir: &Path, server: &RedisServer, log: &Path, what: &str) {
    once(dir, server);
    let got = without_run_state(dump(&mut server.connection()));
    let want = batch_dump(dir);
    assert!(
        got == want,
        "{what}: follow mode differs from one --once pass:\n{}\ndaemon warnings:\n{}",
        dump_diff(&got, &want),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A conn log (TSV) and a dns log (JSON) of generated traffic from record `from` on: every
/// fifth conn a dns query whose record is in the dns log, the others HTTPS, 40 hosts, 300
/// servers, ten records a second; a conn line is about `pad` + 100 bytes.
fn generated_pair(from: usize, n: usize, pad: usize) -> (String, String) {
    let mut conn = String::with_capacity(n * 320);
    let mut dns = String::new();
    for i in from..from + n {
        let ts = format!("{}.{:02}", 1_700_000_000 + i / 10, (i % 10) * 10);
        let host = format!("10.0.{}.{}", (i / 40) % 2, i % 40 + 1);
        if i % 5 == 0 {
            conn.push_str(&format!(
                "{ts}\tCq{i:08}\t{host}\t{}\t10.0.0.53\t53\tudp\tdns\t0.01\t40\t120\tSF\t1\t68\t1\t148\t{}\n",
                30_000 + i % 30_000,
                "d".repeat(pad),
            ));
            dns.push_str(&format!(
                "{{\"ts\":{ts},\"uid\":\"Cq{i:08}\",\"id.orig_h\":\"{host}\",\"id.orig_p\":{},\"id.resp_h\":\"10.0.0.53\",\"id.resp_p\":53,\"proto\":\"udp\",\"query\":\"host{}.example.org\",\"qtype_name\":\"A\",\"rcode_name\":\"NOERROR\",\"answers\":[\"93.184.{}.{}\"],\"TTLs\":[300.0]}}\n",
                30_000 + i % 30_000,
                i % 300,
                i % 300 / 100,
                i % 100 + 1,
            ));
        } else {
            conn.push_str(&format!(
                "{ts}\tCp{i:08}\t{host}\t{}\t93.184.{}.{}\t443\ttcp\tssl\t2.5\t{}\t{}\tSF\t9\t900\t11\t5000\t{}\n",
                40_000 + i % 20_000,
                i % 300 / 100,
                i % 100 + 1,
                300 + i % 700,
                4_000 + i % 9_000,
                "p".repeat(pad),
            ));
        }
    }
    (conn, dns)
}

/// A small deterministic generator for the kill moments (the seed is printed; set
/// `KALIPSO_CHAOS_SEED` to run the same moments again).
struct Moments(u64);

impl Moments {
    fn new() -> Moments {
        let seed = std::env::var("KALIPSO_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("KALIPSO_CHAOS_SEED={seed}");
        Moments(seed)
    }
    /// A duration in `lo..hi` milliseconds.
    fn between(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo))
    }
}

#[test]
fn kill_9_at_random_moments_over_a_log_past_64_mib() {
    // A conn log that grows past 64 MiB (and its dns log) while the daemon is killed with
    // SIGKILL at random moments and restarted: every line is read once, every dns record
    // joins its conn, and the end is one --once pass over the same files.
    const MIB: u64 = 1 << 20;
    let mut moments = Moments::new();
    let dir = tempfile::tempdir().unwrap();
    let (conn, dns) = (dir.path().join("conn.log"), dir.path().join("dns.log"));
    // Lines of about 900 bytes, 1,150 a MiB (so that a slow debug build gets through too):
    // 40 MiB at the start, then half a MiB every 250 ms up to 72 MiB.
    let (pad, per_mib) = (800, 1_150);
    let (c, d) = generated_pair(0, 40 * per_mib, pad);
    std::fs::write(&conn, PADDED_HEADER.to_string() + &c).unwrap();
    std::fs::write(&dns, d).unwrap();
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let server = RedisServer::start();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("daemon.log");
    let (c2, d2) = (conn.clone(), dns.clone());
    let writer = std::thread::spawn(move || {
        let mut next = 40 * per_mib;
        while size(&c2) < 72 * MIB {
            let (c, d) = generated_pair(next, per_mib / 2, pad);
            next += per_mib / 2;
            append(&c2, &c);
            append(&d2, &d);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let mut child = daemon_logged(dir.path(), &server, &log);
    let mut restarted_at = 0;
    let (mut kills, mut past_64) = (0, 0);
    loop {
        let at_end = |at: u64| writer.is_finished() && at == size(&conn);
        if kills % 3 == 2 {
            // Killed while it starts (or reads its backlog).
            std::thread::sleep(moments.between(0, 300));
        } else {
            // Each of the other restarts commits once (whatever the build's speed: it must get
            // on), then dies at a random moment.
            wait_committed(&server, |at| at > restarted_at || at_end(at));
            if at_end(committed_offset(&server)) && past_64 >= 3 {
                break;
            }
            std::thread::sleep(moments.between(0, 1_500));
        }
        let _ = child.kill();
        let _ = child.wait();
        kills += 1;
        restarted_at = committed_offset(&server);
        if restarted_at > 64 * MIB {
            past_64 += 1;
        }
        child = daemon_logged(dir.path(), &server, &log);
        assert!(kills < 300, "no end in sight");
    }
    writer.join().unwrap();
    let end = size(&conn);
    assert_eq!(wait_committed(&server, |at| at == end), end, "last pass");
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert!(
        past_64 >= 3 && kills >= 6,
        "{kills} kills, {past_64} with the checkpoint past 64 MiB"
    );
    eprintln!("{kills} kills, {past_64} past 64 MiB");
    assert_ends_as_one_once_pass(dir.path(), &server, &log, "killed at random moments");
}

#[test]
fn restarts_deep_in_a_large_file_read_every_line_once() {
    // A checkpoint past 64 MiB (where the tailer's header replay used to stop reading, and a
    // restart re-read the lines between 64 MiB and the checkpoint): stopped with SIGTERM
    // there, restarted, killed with SIGKILL further on while the file grows, restarted.
    const MIB: u64 = 1 << 20;
    let (pad, per_mib) = (4000, 256); // about 1 MiB per 256 lines
    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.log");
    let mut next = 0;
    let mut text = PADDED_HEADER.to_string();
    let first = 68 * per_mib;
    text.push_str(&padded_conns(next, first, pad));
    next += first;
    std::fs::write(&conn, text).unwrap();
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(size(&conn) > 66 * MIB);

    let server = RedisServer::start();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("daemon.log");
    let child = daemon_logged(dir.path(), &server, &log);
    let end = size(&conn);
    assert_eq!(wait_committed(&server, |at| at == end), end, "first pass");
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));

    // Restarted at 68 MiB; the file grows by a MiB at a time; SIGKILL once the checkpoint
    // has moved past 70 MiB, while lines are still being written.
    let mut child = daemon_logged(dir.path(), &server, &log);
    for step in 0..8 {
        append(&conn, &padded_conns(next, per_mib, pad));
        next += per_mib;
        std::thread::sleep(Duration::from_millis(60));
        if step == 4 {
            let at = wait_committed(&server, |at| at > 70 * MIB);
            assert!(at > 70 * MIB, "no commit past 70 MiB: {at}");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    assert!(
        committed_offset(&server) < size(&conn),
        "killed before the end"
    );
    child = daemon_logged(dir.path(), &server, &log);
    append(&conn, &padded_conns(next, per_mib, pad));
    next += per_mib;
    let end = size(&conn);
    assert_eq!(wait_committed(&server, |at| at == end), end, "last pass");
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert_ends_as_one_once_pass(dir.path(), &server, &log, "restarts deep in a large file");
    // Every line counted: the checkpoint's line count is the file's.
    let cps: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("kalipso-ingest:checkpoints")
        .query(&mut server.connection())
        .unwrap();
    let lines: Vec<u64> = cps
        .values()
        .filter_map(|v| serde_json::from_str::<Value>(v).ok())
        .filter_map(|v| v["line"].as_u64())
        .collect();
    let header_lines = PADDED_HEADER.lines().count() as u64;
    assert_eq!(lines, [next as u64 + header_lines]);
}

#[test]
fn with_retention_follow_mode_ends_as_one_once_pass_also_when_killed() {
    // 28 hours of traffic, kept 6: windows are written, then removed as data time moves on,
    // while the daemon is killed and restarted; the result is one `--once --retain` pass.
    // (Its dns log is two years older than its conns: every dns record is past the
    // retention, and follow mode must anchor the grid at the first conn, as `--once` does.)
    let capture = fixtures().join("corpus/rita-proxy");
    let flags = ["--retain", "6h", "--direction", "all"];
    let want = batch_dump_with(&capture, &flags);
    let windows = want
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_flows"))
        .count();
    assert!(
        (20..60).contains(&windows),
        "the retention kept {windows} windows"
    );
    let server = RedisServer::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        replay(&ReplayOptions {
            from: capture,
            to,
            speed: None,
            rotate_every: None,
        })
        .unwrap()
    });
    let start = |server: &RedisServer| command(dir.path(), server).args(flags).spawn().unwrap();
    let mut child = start(&server);
    for pause in [150u64, 250, 400] {
        std::thread::sleep(Duration::from_millis(pause));
        let _ = child.kill();
        let _ = child.wait();
        child = start(&server);
    }
    writer.join().unwrap();
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    once_with(dir.path(), &server, &flags);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "retention in follow mode differs from --once:\n{}",
        dump_diff(&got, &want)
    );
}

#[test]
fn a_removal_made_ahead_of_its_commit_is_held_to_at_the_next_start() {
    // Redis full: the daemon removed windows alone, with the bound of a flush not committed
    // yet (`kalipso-ingest:retained-from`), then died. The next run, whose committed clock is
    // behind that bound, holds to it: records of the windows below it are counted and not
    // stored, and none of those windows comes back.
    let conn = std::fs::read_to_string(fixtures().join("corpus/rita-proxy/conn.log")).unwrap();
    let hour = |l: &str| {
        l.split('\t')
            .next()
            .and_then(|t| t.parse::<f64>().ok())
            .map_or(0, |t| (t / 3600.0) as i64)
    };
    let (header, lines): (Vec<&str>, Vec<&str>) = conn.lines().partition(|l| l.starts_with('#'));
    // The conns span the hours 464678..=464706 since the epoch (6 h keep 464700 on).
    let (early, late): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| hour(l) < 464700);
    let text = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let flags = ["--retain", "6h", "--direction", "all"];
    // Returns the records counted as older than the retention.
    let run = |server: &RedisServer, floor: Option<i64>| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conn.log");
        std::fs::write(&path, text(&header) + &text(&early)).unwrap();
        once_with(dir.path(), server, &flags);
        if let Some(g) = floor {
            let _: () = redis::cmd("SET")
                .arg("kalipso-ingest:retained-from")
                .arg(g)
                .query(&mut server.connection())
                .unwrap();
        }
        std::fs::write(&path, text(&header) + &text(&early) + &text(&late)).unwrap();
        let out = command(dir.path(), server)
            .args(["--once", "--no-progress"])
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success());
        let summary = String::from_utf8_lossy(&out.stdout).to_string();
        summary
            .split_once("older than the retention: ")
            .and_then(|(_, r)| r.split_once(' '))
            .map_or(0, |(n, _)| n.parse::<u64>().unwrap())
    };
    let server = RedisServer::start();
    let held_to = run(&server, Some(464704));
    let plain = run(&RedisServer::start(), None);
    let in_between = late.iter().filter(|l| hour(l) < 464704).count() as u64;
    assert!(in_between > 0);
    assert_eq!(held_to, plain + in_between);
    let mut con = server.connection();
    let index: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg("kalipso-ingest:windows")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert!(!index.is_empty());
    assert!(
        index.iter().all(|(_, g)| (464704..=464706).contains(g)),
        "{index:?}"
    );
    let kept: i64 = redis::cmd("GET")
        .arg("kalipso-ingest:retained-from")
        .query(&mut con)
        .unwrap();
    assert_eq!(kept, 464704);
    let flows: Vec<String> = redis::cmd("KEYS").arg("*_flows").query(&mut con).unwrap();
    assert_eq!(
        flows.len(),
        index.len(),
        "every window kept is indexed: {flows:?}"
    );
}

#[test]
fn retention_removes_only_its_windows_and_never_recreates_one() {
    let capture = fixtures().join("corpus/rita-proxy");
    let flags = ["--retain", "6h", "--direction", "all"];
    let server = RedisServer::start();
    let mut con = server.connection();
    let _: () = redis::cmd("SET")
        .arg("someone-else:key")
        .arg("kept")
        .query(&mut con)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for f in ["conn.log", "dns.log", "http.log", "ssl.log"] {
        std::fs::copy(capture.join(f), dir.path().join(f)).unwrap();
    }
    once_with(dir.path(), &server, &flags);
    let kept: String = redis::cmd("GET")
        .arg("someone-else:key")
        .query(&mut con)
        .unwrap();
    assert_eq!(kept, "kept");
    // The windows kept span the retention (6 h of one-hour windows, and the one in progress).
    let index: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg("kalipso-ingest:windows")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    let (lo, hi) = (index[0].1, index[index.len() - 1].1);
    assert!(hi - lo <= 6, "windows {lo}..{hi} kept");
    // Every profile listed has windows; every window listed has its data.
    let profiles: Vec<String> = redis::cmd("SMEMBERS")
        .arg("profiles")
        .query(&mut con)
        .unwrap();
    assert!(!profiles.is_empty());
    let mut windows = 0;
    for p in &profiles {
        let ip = p.trim_start_matches("profile_");
        let tws: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("twsprofile_{ip}"))
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        for tw in &tws {
            let exists: bool = redis::cmd("EXISTS")
                .arg(format!("{p}_{tw}"))
                .query(&mut con)
                .unwrap();
            assert!(exists, "{p} lists {tw}, which is gone");
        }
        windows += tws.len();
    }
    assert!(windows > 0);
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*timewindow*")
        .query(&mut con)
        .unwrap();
    for k in &all {
        let p = k.trim_start_matches("kalipso-ingest:alts:");
        let p = p.trim_start_matches("kalipso-ingest:copies:");
        let p = p.split("_timewindow").next().unwrap();
        assert!(
            profiles.contains(&p.to_string()),
            "{k} outlived its profile"
        );
    }
    // Old records arriving later (a new file of the first hours, new uids) are counted as
    // older than the retention and recreate nothing.
    let before = without_run_state(dump(&mut con));
    let conn = std::fs::read_to_string(capture.join("conn.log")).unwrap();
    let old: String = conn
        .lines()
        .filter(|l| l.starts_with('#') || l.split('\t').next() < Some("1672910000"))
        .map(|l| l.replacen("\tC", "\tXold", 1) + "\n")
        .collect();
    std::fs::write(dir.path().join("conn.2023-01-05-10-00-00.log"), old).unwrap();
    let out = command(dir.path(), &server)
        .args(["--once", "--no-progress"])
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("older than the retention"), "{summary}");
    let after = without_run_state(dump(&mut con));
    assert!(after == before, "{}", dump_diff(&after, &before));
}

#[test]
fn a_rotation_storm_with_inode_reuse_loses_nothing_and_doubles_nothing() {
    // Rotation every 20 ms, and each rotated file deleted half a second later, so new files
    // get the freed inodes back: identity is the inode *and* the header (a fresh `#open`).
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let server = RedisServer::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let child = daemon(dir.path(), &server);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reaper = {
        let (dir, done) = (dir.path().to_path_buf(), done.clone());
        std::thread::spawn(move || {
            use std::os::unix::fs::MetadataExt;
            let mut seen: std::collections::HashMap<std::path::PathBuf, Instant> =
                Default::default();
            let mut freed = std::collections::HashSet::new();
            let mut reused = 0;
            let mut current = std::collections::HashSet::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Relaxed);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return reused;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    let name = p.file_name().unwrap().to_string_lossy().to_string();
                    let Ok(m) = e.metadata() else { continue };
                    if name.ends_with(".log") && name.matches('.').count() == 1 {
                        if current.insert((name, m.ino())) && freed.contains(&m.ino()) {
                            reused += 1;
                        }
                        continue;
                    }
                    let t = *seen.entry(p.clone()).or_insert_with(Instant::now);
                    if t.elapsed() > Duration::from_millis(500) {
                        freed.insert(m.ino());
                        let _ = std::fs::remove_file(&p);
                    }
                }
                if finished {
                    return reused;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let stats = replay(&ReplayOptions {
        from: capture.clone(),
        to: dir.path().to_path_buf(),
        speed: Some(100.0),
        rotate_every: Some(0.02),
    })
    .unwrap();
    assert!(stats.rotations >= 40, "{stats:?}");
    settle(&server);
    std::thread::sleep(Duration::from_millis(600));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let reused = reaper.join().unwrap();
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert!(reused > 0, "no inode was reused: the case did not happen");
    once(dir.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(
        got == want,
        "a rotation storm changed the result:\n{}",
        dump_diff(&got, &want)
    );
}

#[test]
fn retention_on_a_database_built_without_it_is_refused_and_its_index_is_kept_without_it() {
    let capture = fixtures().join("corpus/rita-proxy");
    // Built without --retain: its windows are not indexed, so --retain would never remove
    // them (and could drop a profile whose other windows it does not know): refused.
    let server = RedisServer::start();
    once(&capture, &server);
    let out = command(&capture, &server)
        .args(["--once", "--no-progress", "--retain", "6h", "--reset"])
        .output()
        .unwrap();
    assert!(out.status.success(), "--reset starts afresh");
    let server2 = RedisServer::start();
    once(&capture, &server2);
    let other = tempfile::tempdir().unwrap();
    let out = command(other.path(), &server2)
        .args(["--once", "--no-progress", "--retain", "6h"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("without --retain") && stderr.contains("--reset"),
        "{stderr}"
    );
    // Kept with --retain, then a run without it (an ad-hoc --once): the index stays whole.
    let server3 = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(capture.join("conn.log"), dir.path().join("conn.log")).unwrap();
    once_with(dir.path(), &server3, &["--retain", "6h"]);
    std::fs::copy(capture.join("dns.log"), dir.path().join("dns.log")).unwrap();
    std::fs::copy(capture.join("http.log"), dir.path().join("http.log")).unwrap();
    once(dir.path(), &server3);
    let got = without_run_state(dump(&mut server3.connection()));
    let want = batch_dump_with(
        &{
            let d = tempfile::tempdir().unwrap().keep();
            for f in ["conn.log", "dns.log", "http.log"] {
                std::fs::copy(capture.join(f), d.join(f)).unwrap();
            }
            d
        },
        &["--retain", "6h"],
    );
    // The same windows are indexed as in a run kept with --retain throughout (the removal
    // itself waits for the next run with --retain).
    for key in ["kalipso-ingest:windows", "kalipso-ingest:retention-indexed"] {
        assert!(got.get(key).is_some() && want.get(key).is_some(), "{key}");
    }
}

#[test]
fn follow_mode_anchors_the_grid_at_the_first_profiled_conn_as_once_does() {
    // The first conn is outside the home network, a second before the hour; the first home
    // conn just after it: `timewindow1` is the hour of the home conn in both modes.
    let line = std::fs::read_to_string(fixtures().join("slips/test9/conn.log"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap()
        .to_string();
    let conn = |ts: f64, uid: &str, from: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["ts"] = ts.into();
        v["uid"] = uid.into();
        v["id.orig_h"] = from.into();
        v["id.resp_h"] = "1.1.1.1".into();
        v.to_string() + "\n"
    };
    let capture = tempfile::tempdir().unwrap();
    let text = conn(1672923599.0, "Cfirst", "8.8.8.8")
        + &conn(1672923601.0, "Chome1", "10.0.0.5")
        + &conn(1672927300.0, "Chome2", "10.0.0.5");
    std::fs::write(capture.path().join("conn.log"), text).unwrap();
    let flags = ["--home-net", "10.0.0.0/8"];
    let want = batch_dump_with(capture.path(), &flags);
    assert!(
        want.get("profile_10.0.0.5_timewindow1").is_some(),
        "{:?}",
        want.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let child = command(dir.path(), &server)
        .args(flags)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::copy(capture.path().join("conn.log"), dir.path().join("conn.log")).unwrap();
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    once_with(dir.path(), &server, &flags);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(got == want, "{}", dump_diff(&got, &want));
}

#[test]
fn a_record_far_in_the_future_does_not_remove_every_window() {
    // A sensor with a wrong clock writes one conn in 2100: it must not move retention's
    // clock (which would remove every window of 2023).
    let capture = fixtures().join("corpus/rita-proxy");
    let flags = ["--retain", "6h", "--direction", "all"];
    let want = batch_dump_with(&capture, &flags);
    let kept = |d: &serde_json::Value| {
        d.as_object()
            .unwrap()
            .keys()
            .filter(|k| k.ends_with("_flows") && k.contains("10.136."))
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    for f in ["conn.log", "dns.log", "http.log", "ssl.log"] {
        std::fs::copy(capture.join(f), dir.path().join(f)).unwrap();
    }
    let conn = std::fs::read_to_string(capture.join("conn.log")).unwrap();
    let future: String = conn
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.to_string() + "\n")
        .chain(
            conn.lines()
                .filter(|l| !l.starts_with('#'))
                .take(1)
                .map(|l| {
                    let rest = l.split_once('\t').unwrap().1.replacen('C', "Cfuture", 1);
                    format!("4102444800.000000\t{rest}\n")
                }),
        )
        .collect();
    std::fs::write(dir.path().join("conn.2100-01-01-00-00-00.log"), future).unwrap();
    let server = RedisServer::start();
    let out = command(dir.path(), &server)
        .args(["--once", "--no-progress"])
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("ahead of the clock: 1 record"),
        "{summary}"
    );
    let got = without_run_state(dump(&mut server.connection()));
    assert!(kept(&want) > 0);
    // Every 2023 window kept without the future record is kept with it (it adds its own).
    for k in want
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_flows"))
    {
        assert!(got.get(k).is_some(), "{k} was removed");
    }
    assert!(kept(&got) > kept(&want));
}
