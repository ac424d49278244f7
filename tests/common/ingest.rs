//! Running a `--once` ingest into a test Redis through the library.

use std::path::Path;

use kalipso_ingest::config::Settings;
use kalipso_ingest::ingest::{IngestOptions, Summary, run_once};
use kalipso_ingest::profile::routing::{Direction, Routing};

use super::redis_server::RedisServer;

/// Settings for `dir` with the given home nets and direction (width 3600, label `malicious`
/// as in the Slips oracle runs).
pub fn settings(server: &RedisServer, dir: &Path, home: &[&str], direction: Direction) -> Settings {
    Settings {
        zeek_dir: dir.to_path_buf(),
        recursive: false,
        redis: kalipso_ingest::store::redis_store::Target::new(&server.url()),
        retain: None,
        routing: Routing {
            home: home.iter().map(|h| h.parse().unwrap()).collect(),
            direction,
        },
        tw_width: 3600.0,
        label: "malicious".into(),
        log_level: "warn".into(),
        clock: kalipso_ingest::timeline::Clock::Utc,
        poll_interval_ms: 250,
        flush_interval_ms: 500,
        fields_interval_ms: 5000,
        enrich: Default::default(),
        layout: Default::default(),
        detection_threshold: kalipso_ingest::config::DEFAULT_DETECTION_THRESHOLD,
    }
}

/// Ingest `dir` once with default options.
pub fn ingest(server: &RedisServer, dir: &Path, home: &[&str], direction: Direction) -> Summary {
    ingest_with(server, dir, home, direction, &IngestOptions::default())
}

/// Ingest `dir` once with `opts`.
pub fn ingest_with(
    server: &RedisServer,
    dir: &Path,
    home: &[&str],
    direction: Direction,
    opts: &IngestOptions,
) -> Summary {
    run_once(&settings(server, dir, home, direction), opts).expect("ingest")
}

/// Ingest `dir` once with `opts` and another window width.
pub fn ingest_width(
    server: &RedisServer,
    dir: &Path,
    home: &[&str],
    direction: Direction,
    width: f64,
    opts: &IngestOptions,
) -> Summary {
    let mut s = settings(server, dir, home, direction);
    s.tw_width = width;
    run_once(&s, opts).expect("ingest")
}

/// Options that flush every three records and evict every window as soon as possible, so that
/// every late record goes through the reload-from-Redis path; each window goes to Redis as its
/// own part of the flush transaction.
pub fn churn() -> IngestOptions {
    IngestOptions {
        flush_every: 3,
        hold: Some(0.0),
        part_bytes: 0,
        ..IngestOptions::default()
    }
}
