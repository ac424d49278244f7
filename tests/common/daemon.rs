//! The daemon binary run by the tests: on a directory and a private Redis, stopped with
//! SIGTERM, compared with one `--once` pass.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dump::{dump, without_run_state};
use super::redis_server::RedisServer;

/// The binary on `dir` and `server`, UTC timestamps, label `malicious`, warnings only.
pub fn command(dir: &Path, server: &RedisServer) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kalipso-ingest"));
    c.arg("--zeek-dir").arg(dir).args([
        "--redis-url",
        &server.url(),
        "--timezone",
        "UTC",
        "--label",
        "malicious",
        "--log-level",
        "warn",
    ]);
    c
}

pub fn daemon(dir: &Path, server: &RedisServer) -> Child {
    command(dir, server)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon")
}

/// [`daemon`] with its warnings appended to `log` (kept across restarts, shown on a failure).
pub fn daemon_logged(dir: &Path, server: &RedisServer, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("daemon log");
    command(dir, server)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start the daemon")
}

pub fn once(dir: &Path, server: &RedisServer) {
    once_with(dir, server, &[]);
}

/// [`once`] with more flags.
pub fn once_with(dir: &Path, server: &RedisServer, extra: &[&str]) {
    let out = command(dir, server)
        .args(["--once", "--no-progress"])
        .args(extra)
        .output()
        .expect("run --once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGTERM, then wait for the exit; returns (exit code, seconds it took).
pub fn terminate(mut child: Child) -> (Option<i32>, f64) {
    let start = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return (status.code(), start.elapsed().as_secs_f64());
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return (None, start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The batch result: one `--once` over the capture itself.
pub fn batch_dump(capture: &Path) -> Value {
    batch_dump_with(capture, &[])
}

/// [`batch_dump`] with more flags.
pub fn batch_dump_with(capture: &Path, extra: &[&str]) -> Value {
    let server = RedisServer::start();
    once_with(capture, &server, extra);
    without_run_state(dump(&mut server.connection()))
}

/// Wait until the daemon has committed everything (its flush counter stops moving).
pub fn settle(server: &RedisServer) {
    let mut con = server.connection();
    let mut last: Option<String> = None;
    let mut stable = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(300));
        let now: Option<String> = redis::cmd("GET")
            .arg("kalipso-ingest:flush-seq")
            .query(&mut con)
            .unwrap();
        if now.is_some() && now == last {
            stable += 1;
            if stable >= 5 {
                return;
            }
        } else {
            stable = 0;
        }
        last = now;
    }
}
