//! The daemon as a service under faults, against a real `redis-server`: the watchdog is fed in
//! every state (Redis frozen past the timeouts, Redis down), a full Redis (`maxmemory`,
//! `noeviction`) holds the data until it takes writes again (or, with `--retain`, gets room
//! from the retention), an evicting Redis is refused, and
//! settings and files that are wrong are said once, clearly. Each case that follows a capture
//! ends with the database one `--once` pass gives. `make chaos` runs this file alone with a
//! longer outage (`KALIPSO_OUTAGE_SECS`, 60 there; 12 in `make test`).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::daemon::*;
use common::dump::{dump, dump_diff, without_run_state};
use common::redis_server::RedisServer;
use common::*;
use kalipso_ingest::replay::{ReplayOptions, replay};

fn outage() -> Duration {
    let secs = std::env::var("KALIPSO_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    Duration::from_secs(secs)
}

/// What the daemon sent to its notify socket, with when it arrived.
type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

/// A notify socket the test reads, as systemd's would be.
fn notify_socket(dir: &Path) -> (std::path::PathBuf, Notes) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let notes: Notes = Arc::default();
    let sink = notes.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            sink.lock().unwrap().push((Instant::now(), text));
        }
    });
    (path, notes)
}

fn copy_capture(to: &Path) {
    replay(&ReplayOptions {
        from: fixtures().join("slips/test9"),
        to: to.to_path_buf(),
        speed: None,
        rotate_every: None,
    })
    .unwrap();
}

#[test]
fn the_watchdog_is_fed_while_redis_is_frozen_or_down() {
    let want = batch_dump(&fixtures().join("slips/test9"));
    let mut server = RedisServer::start_persistent();
    let logs = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    copy_capture(logs.path());
    let (socket, notes) = notify_socket(run.path());
    // A 4 s watchdog: pings must never be more than 2 s apart.
    let interval = Duration::from_secs(4);
    let mut child = command(logs.path(), &server)
        .args(["--redis-timeout-ms", "500"])
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", interval.as_micros().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    settle(&server);
    // Frozen past the timeouts: it must be treated as down, not hang the daemon.
    server.freeze();
    std::thread::sleep(Duration::from_secs(4));
    server.thaw();
    settle(&server);
    // Down for a while, then back with its data (AOF).
    server.kill();
    std::thread::sleep(outage());
    server.start_again();
    settle(&server);
    let alive = child.try_wait().unwrap().is_none();
    let (code, _) = terminate(child);
    assert!(alive && code == Some(0), "the daemon died: {code:?}");
    let notes = notes.lock().unwrap().clone();
    assert!(
        notes.first().is_some_and(|(_, n)| n.contains("READY=1")),
        "{notes:?}"
    );
    let pings: Vec<Instant> = notes
        .iter()
        .filter(|(_, n)| n.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    let worst = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(pings.len() > 10, "{} pings", pings.len());
    assert!(
        worst <= interval / 2,
        "the pings stopped for {worst:?} (watchdog {interval:?})"
    );
    let said: Vec<&str> = notes.iter().map(|(_, n)| n.as_str()).collect();
    assert!(
        said.iter().any(|n| n.contains("STATUS=waiting for Redis")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|n| n.contains("STATUS=following")),
        "{said:?}"
    );
    once(logs.path(), &server);
    let got = without_run_state(dump(&mut server.connection()));
    assert!(got == want, "{}", dump_diff(&got, &want));
}

fn used_memory(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn set_maxmemory(con: &mut redis::Connection, bytes: u64) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(bytes)
        .query(con)
        .unwrap();
}

#[test]
fn a_full_redis_holds_the_data_until_it_takes_writes_again() {
    // Redis reaches `maxmemory` (noeviction) in the middle of a capture: every commit is
    // refused whole (OOM), the daemon holds what it read, says so once and in STATUS=, and
    // goes on when the limit is raised — ending as one `--once` pass.
    let capture = fixtures().join("slips/test9");
    let want = batch_dump(&capture);
    let server = RedisServer::start_with_args(false, &["--maxmemory-policy", "noeviction"]);
    let mut con = server.connection();
    let logs = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let (socket, notes) = notify_socket(run.path());
    let log = run.path().join("daemon.log");
    let to = logs.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        replay(&ReplayOptions {
            from: capture,
            to,
            speed: Some(60.0),
            rotate_every: None,
        })
        .unwrap()
    });
    let mut child = command(logs.path(), &server)
        .env("NOTIFY_SOCKET", &socket)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Full once the first lines are in.
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis::cmd("GET")
        .arg("kalipso-ingest:flush-seq")
        .query::<Option<u64>>(&mut con)
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "nothing committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = used_memory(&mut con);
    set_maxmemory(&mut con, used);
    std::thread::sleep(Duration::from_secs(3));
    set_maxmemory(&mut con, 0);
    writer.join().unwrap();
    settle(&server);
    assert!(child.try_wait().unwrap().is_none(), "the daemon stopped");
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        said.matches("commit to Redis failed").count(),
        1,
        "refused, and said once: {said}"
    );
    assert!(said.contains("OOM"), "{said}");
    let notes = notes.lock().unwrap().clone();
    let full = notes
        .iter()
        .position(|(_, n)| n.contains("STATUS=Redis is full"))
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        notes[full..]
            .iter()
            .any(|(_, n)| n.contains("STATUS=following")),
        "back to following: {notes:?}"
    );
    once(logs.path(), &server);
    let got = without_run_state(dump(&mut con));
    assert!(got == want, "{}", dump_diff(&got, &want));
}

/// A conn log's header (Zeek's TSV writer) and lines of generated traffic: `per_hour` conns
/// an hour for `hours` hours from `from` (each between one of 40 hosts and one of 400 servers).
fn generated_conns(from: f64, hours: u32, per_hour: u32, tag: &str) -> String {
    let mut out = String::new();
    let step = 3600.0 / per_hour as f64;
    for i in 0..hours * per_hour {
        let ts = from + i as f64 * step;
        out.push_str(&format!(
            "{ts:.6}\tC{tag}{i}\t10.0.0.{}\t{}\t93.184.{}.{}\t443\ttcp\tssl\t1.5\t{}\t{}\tSF\t-\t-\t0\tShADadFf\t8\t900\t9\t5000\t-\n",
            i % 40 + 1,
            40000 + i % 20000,
            i % 4,
            i % 100 + 1,
            300 + i % 700,
            4000 + i % 9000,
        ));
    }
    out
}

const CONN_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-23-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";

#[test]
fn a_full_redis_gets_room_from_the_retention_before_the_commit() {
    // With --retain, the flush that moves data time on also removes the windows it puts past
    // the retention — but inside the transaction Redis refuses at maxmemory, that removal
    // cannot free memory. The daemon removes them alone first (a script allowed at OOM) and
    // the flush then fits, without the limit being raised; the end is one --once pass.
    let flags = ["--retain", "6h", "--direction", "all"];
    let server = RedisServer::start_with_args(false, &["--maxmemory-policy", "noeviction"]);
    let mut con = server.connection();
    let logs = tempfile::tempdir().unwrap();
    let run = tempfile::tempdir().unwrap();
    let conn = logs.path().join("conn.log");
    let t0 = 1_763_892_000.0;
    // Eight busy hours, then six quiet ones: the quiet hours put the busy ones past 6 h.
    std::fs::write(
        &conn,
        CONN_HEADER.to_string() + &generated_conns(t0, 8, 1500, "a"),
    )
    .unwrap();
    let log = run.path().join("daemon.log");
    let mut child = command(logs.path(), &server)
        .args(flags)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    settle(&server);
    let used = used_memory(&mut con);
    set_maxmemory(&mut con, used - (1 << 20));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&conn)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        generated_conns(t0 + 8.0 * 3600.0, 6, 30, "b").as_bytes(),
    )
    .unwrap();
    drop(f);
    let seq = |con: &mut redis::Connection| {
        redis::cmd("GET")
            .arg("kalipso-ingest:flush-seq")
            .query::<Option<u64>>(con)
            .unwrap()
    };
    let before = seq(&mut con);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seq(&mut con) == before {
        assert!(
            Instant::now() < deadline,
            "still refused at maxmemory: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    settle(&server);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("OOM"), "refused: {said}");
    assert!(
        said.contains("removed the windows past the retention ahead of the commit"),
        "{said}"
    );
    assert!(child.try_wait().unwrap().is_none(), "the daemon stopped");
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert!(used_memory(&mut con) < used / 2, "the busy hours are gone");
    set_maxmemory(&mut con, 0);
    let want = batch_dump_with(logs.path(), &flags);
    once_with(logs.path(), &server, &flags);
    let got = without_run_state(dump(&mut con));
    assert!(got == want, "{}", dump_diff(&got, &want));
}

#[test]
fn a_redis_that_may_evict_our_keys_is_refused_at_start() {
    let server = RedisServer::start_with_args(false, &["--maxmemory-policy", "allkeys-lru"]);
    let logs = tempfile::tempdir().unwrap();
    copy_capture(logs.path());
    for once_flag in [true, false] {
        let mut c = command(logs.path(), &server);
        if once_flag {
            c.args(["--once", "--no-progress"]);
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("allkeys-lru"))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("noeviction"), "{stderr}");
    }
    let n: u64 = redis::cmd("DBSIZE")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(n, 0, "nothing written");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"))
}

#[test]
fn bad_settings_end_every_mode_at_start_with_exit_2() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--redis-url", "http://127.0.0.1:1"], "invalid Redis URL"),
        (&["--home-net", "10.0.0.300/8"], "home network"),
        (&["--redis-timeout-ms", "0"], "redis-timeout-ms"),
        (&["--log-level", "loud=["], "log level"),
        (&["--reset"], "--once"),
    ];
    for (args, says) in cases {
        for mode in [&["--once"][..], &[][..]] {
            if args.contains(&"--reset") && !mode.is_empty() {
                continue; // --reset with --once is allowed
            }
            let start = Instant::now();
            let out = bin()
                .args(["--zeek-dir", dir])
                .args(*args)
                .args(mode)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {mode:?}: {stderr}");
            assert!(stderr.contains(says), "{args:?} {mode:?}: {stderr}");
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{args:?}: retried"
            );
        }
    }
}

#[test]
fn a_missing_directory_is_said_once_then_followed_when_it_appears() {
    let server = RedisServer::start();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("current");
    let log = base.path().join("daemon.log");
    let child = command(&dir, &server)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    copy_capture(&dir);
    settle(&server);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(said.matches("does not exist").count(), 1, "{said}");
    assert_eq!(said.lines().count(), 1, "only that warning: {said}");
    assert!(
        !said.contains('\x1b'),
        "no colour codes off a terminal: {said:?}"
    );
    let profiles: u64 = redis::cmd("SCARD")
        .arg("profiles")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(profiles, 125);
}

#[test]
fn an_unreadable_log_is_said_once_with_the_permission_it_needs() {
    // The file's permissions must apply: as root, the daemon runs as nobody (setpriv).
    let root = is_root();
    if root && !Path::new("/usr/bin/setpriv").exists() {
        missing("setpriv (util-linux), to run the daemon as nobody");
        return;
    }
    let server = RedisServer::start();
    let base = tempfile::tempdir().unwrap();
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
    };
    mode(base.path(), 0o755);
    let dir = base.path().join("logs");
    copy_capture(&dir);
    mode(&dir, 0o755);
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        mode(&f, if f.ends_with("dns.log") { 0o000 } else { 0o644 });
    }
    let log = base.path().join("daemon.log");
    let mut c = if root {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_kalipso-ingest"));
        c
    } else {
        bin()
    };
    c.arg("--zeek-dir")
        .arg(&dir)
        .args(["--redis-url", &server.url(), "--log-level", "warn"]);
    let child = c
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    settle(&server);
    std::thread::sleep(Duration::from_secs(2));
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let said = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = said.lines().filter(|l| l.contains("dns.log")).collect();
    assert_eq!(lines.len(), 1, "{said}");
    assert!(
        lines[0].contains("permission denied") && lines[0].contains("read"),
        "{said}"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn under_journald_messages_carry_their_priority() {
    let server = RedisServer::start();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("not-yet");
    let mut child = command(&dir, &server)
        .env("JOURNAL_STREAM", "8:12345")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut stderr = child.stderr.take().unwrap();
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let warn = said.lines().find(|l| l.contains("does not exist")).unwrap();
    assert!(warn.starts_with("<4>"), "{said}");
    assert!(!said.contains('\x1b'), "{said:?}");
}
