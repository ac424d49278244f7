//! Follow mode: `kalipso-ingest --zeek-dir DIR` (no `--once`) follows a live Zeek directory
//! until SIGTERM/SIGINT.
//!
//! The loop: look for new and rotated files (inotify wakes it early; a poll every
//! `poll_interval` makes sure nothing is missed), read what was appended, hand every record to
//! the profiler, and every `flush_interval` commit one transaction with the data, the join
//! state and the checkpoints of exactly the lines read. After any stop the next start resumes
//! from those checkpoints: no line lost, none counted twice.
//!
//! Redis failures: the transaction that failed is kept and retried with backoff, and nothing
//! more is read meanwhile (memory stays bounded); if Redis comes back having lost writes (its
//! flush counter went backwards), the in-memory state is dropped and rebuilt from what Redis
//! holds, re-reading the files from their checkpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::merge::{Converted, Event, to_event};
use super::writer::{CommitWorker, Job};
use super::{IngestError, Timings, prepare};
use crate::config::Settings;
use crate::model::window::Grid;
use crate::profile::profiler::{Profiler, ProfilerConfig};
use crate::source::checkpoint::{Checkpoint, FileId};
use crate::source::tail::{TailItem, Tailer};
use crate::store::redis_store::{RedisStore, StoreError};
use crate::zeek::LogKind;

/// inotify on the log directory, sending a wake-up for every change while it watches.
struct Wakeup {
    watcher: Option<notify::RecommendedWatcher>,
    dir: std::path::PathBuf,
    mode: notify::RecursiveMode,
    watching: bool,
}

impl Wakeup {
    fn new(settings: &Settings, tx: mpsc::Sender<()>) -> Wakeup {
        let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .ok();
        let mode = if settings.recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        let mut w = Wakeup {
            watcher,
            dir: settings.zeek_dir.clone(),
            mode,
            watching: false,
        };
        if !w.resume() {
            tracing::warn!("no inotify on the log directory: polling only");
        }
        w
    }

    /// Stop watching (records are coming: the loop reads without sleeping). A recursive watch
    /// stays (setting it again walks the whole tree).
    fn pause(&mut self) {
        use notify::Watcher;
        if self.mode == notify::RecursiveMode::Recursive {
            return;
        }
        if let (true, Some(w)) = (self.watching, self.watcher.as_mut()) {
            let _ = w.unwatch(&self.dir);
            self.watching = false;
        }
    }

    /// Watch again; `true` when the watch was just set (the caller reads once more before
    /// sleeping, so nothing appended meanwhile waits for the poll).
    fn resume(&mut self) -> bool {
        use notify::Watcher;
        if self.watching {
            return false;
        }
        match self.watcher.as_mut() {
            Some(w) => match w.watch(&self.dir, self.mode) {
                Ok(()) => {
                    self.watching = true;
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot watch the log directory");
                    false
                }
            },
            None => false,
        }
    }
}

/// How often the directory is looked at while lines keep coming.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Most time one flush spends rendering window fields.
const FIELDS_BUDGET: Duration = Duration::from_millis(100);

/// Knobs of follow mode.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// How often the directory is checked even without an inotify event.
    pub poll_interval: Duration,
    /// How often what was read is committed to Redis.
    pub flush_interval: Duration,
    /// A log whose files got nothing for this long does not hold back joins and timelines.
    pub idle_after: Duration,
    /// Seconds between metrics log lines.
    pub metrics_every: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll_interval: Duration::from_millis(250),
            flush_interval: Duration::from_millis(500),
            idle_after: Duration::from_secs(10),
            metrics_every: Duration::from_secs(60),
        }
    }
}

/// Signals the loop reacts to.
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// Set by SIGTERM/SIGINT: commit and exit.
    pub stop: Arc<AtomicBool>,
    /// Set by SIGHUP: reload the configuration file.
    pub reload: Arc<AtomicBool>,
}

/// Counters of a follow run (logged as metrics).
#[derive(Debug, Default, Clone)]
pub struct FollowStats {
    /// Records per log.
    pub records: HashMap<LogKind, u64>,
    /// Malformed lines.
    pub malformed: u64,
    /// Flushes committed.
    pub flushes: u64,
    /// Last Redis round trip of a commit.
    pub last_commit: Duration,
}

/// The state rebuilt from Redis at start (and after Redis lost writes).
struct Engine {
    profiler: Profiler,
    tailer: Tailer,
    grid: Option<Grid>,
    seq: u64,
    /// Earliest profiled conn seen before the grid exists (anchors a new database).
    first_ts: Option<f64>,
    last_bytes: HashMap<LogKind, Instant>,
}

fn connect_with_retry(url: &str, control: &Control) -> Option<RedisStore> {
    let mut delay = Duration::from_millis(200);
    let mut said = false;
    loop {
        match RedisStore::connect(url) {
            Ok(s) => {
                if said {
                    tracing::info!(url, "Redis is reachable again");
                }
                return Some(s);
            }
            Err(e) => {
                if !said {
                    tracing::warn!("{e}; retrying");
                    said = true;
                }
            }
        }
        if control.stop.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn start_engine(settings: &Settings, store: &mut RedisStore) -> Result<Engine, IngestError> {
    let grid = store.grid(settings.tw_width)?;
    let mut cfg = ProfilerConfig::new(settings.routing.clone(), settings.tw_width);
    cfg.label = settings.label.clone();
    cfg.style.clock = settings.clock.clone();
    cfg.fields_every = Some(Duration::from_millis(settings.fields_interval_ms));
    // Fields that fell due (or windows that closed) together are spread over flushes (a fifth
    // of the flush interval each), not rendered in one long flush that holds every line back.
    cfg.fields_budget = Some(FIELDS_BUDGET);
    let mut profiler = Profiler::new(cfg, true);
    if grid.is_some() {
        profiler.restore(store.persisted_state()?)?;
    }
    let checkpoints: HashMap<String, Checkpoint> = Checkpoint::parse_all(store.checkpoints()?)?;
    let tailer = Tailer::new(&settings.zeek_dir, settings.recursive, checkpoints);
    Ok(Engine {
        profiler,
        tailer,
        grid,
        seq: store.flush_seq()?,
        first_ts: None,
        last_bytes: HashMap::new(),
    })
}

/// Follow `settings.zeek_dir` until `control.stop` is set. Returns the counters.
pub fn run_follow(
    settings: &Settings,
    opts: &FollowOptions,
    control: &Control,
    reload: &dyn Fn() -> Option<Settings>,
) -> Result<FollowStats, IngestError> {
    let mut settings = settings.clone();
    let Some(mut store) = connect_with_retry(&settings.redis_url, control) else {
        return Ok(FollowStats::default());
    };
    let mut engine = start_engine(&settings, &mut store)?;
    let mut stats = FollowStats::default();

    // inotify wakes the loop early; the poll interval is the safety net. While records keep
    // coming the loop never sleeps, and the watch is dropped: every append would otherwise
    // cost an event (a sixth of the daemon's CPU at 50,000 lines/s).
    let (tx, rx) = mpsc::channel::<()>();
    let mut wake = Wakeup::new(&settings, tx);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(dir = %settings.zeek_dir.display(), "following");
    let watchdog = sd_notify::watchdog_enabled();
    let mut last_flush = Instant::now();
    let mut last_metrics = Instant::now();
    // A commit that failed, to recover and retry here (with the error from the thread when
    // it failed there), and the one in flight on the commit thread.
    let mut outstanding: Option<(Box<Job>, Option<StoreError>)> = None;
    let mut in_flight = false;
    // At a stop: whether the last flush (of everything read) was built.
    let mut stop_flush_built = false;
    let mut commit_thread = CommitWorker::start(&settings.redis_url)?;
    let mut timings = Timings::default();
    let mut backoff = Duration::from_millis(200);
    let mut last_check = Instant::now();
    let mut failing = false;
    let mut last_records: u64 = 0;
    let (mut busy, mut last_scan) = (false, Instant::now());
    loop {
        let stopping = control.stop.load(Ordering::Relaxed);
        if control.reload.swap(false, Ordering::Relaxed) {
            if let Some(new) = reload() {
                tracing::info!("configuration reloaded (applies to records from now on)");
                engine.profiler.set_routing(new.routing.clone());
                settings = Settings {
                    zeek_dir: settings.zeek_dir.clone(),
                    redis_url: settings.redis_url.clone(),
                    tw_width: settings.tw_width,
                    ..new
                };
            }
        }
        let mut read = 0;
        if outstanding.is_none() && !stopping {
            // New and rotated files: looked for after every pause, and every `SCAN_EVERY`
            // while lines keep coming (not at every read).
            if !busy || last_scan.elapsed() >= SCAN_EVERY {
                last_scan = Instant::now();
                if let Err(e) = engine.tailer.scan() {
                    tracing::warn!(error = %e, "cannot scan the log directory");
                }
            }
            read = poll_files(&mut engine, &mut stats);
            busy = read > 0;
            update_log_states(&mut engine, opts.idle_after);
            engine.profiler.expire_waiting_alts();
        }
        let due = last_flush.elapsed() >= opts.flush_interval;
        if in_flight {
            // Wait for it only when the next flush is due (or at the stop).
            if let Some((commit, result)) = commit_thread.result(due || stopping) {
                in_flight = false;
                match result {
                    Ok(took) => {
                        committed(&mut engine, &mut stats, commit.seq, took, &mut failing);
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => outstanding = Some((commit, Some(e))),
                }
            }
        }
        if (due || stopping) && outstanding.is_none() && !in_flight {
            last_flush = Instant::now();
            let built = build_flush(&mut engine, &mut store, &mut timings);
            stop_flush_built = stopping && built.is_ok();
            match built {
                Ok(Some(f)) if stopping => outstanding = Some((f, None)),
                Ok(Some(f)) => match commit_thread.hand_over(f) {
                    Ok(()) => in_flight = true,
                    Err(f) => outstanding = Some((f, None)),
                },
                Ok(None) if last_check.elapsed() >= Duration::from_secs(2) => {
                    // Idle: make sure Redis still holds what we committed (a restart without
                    // persistence empties it; then everything is read again).
                    last_check = Instant::now();
                    match store.flush_seq() {
                        Ok(now) if now < engine.seq => {
                            tracing::warn!(
                                expected = engine.seq,
                                found = now,
                                "Redis lost committed writes: rebuilding from what it holds"
                            );
                            engine = start_engine(&settings, &mut store)?;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("{e}");
                            if let Some(s) = reconnect(&settings, control) {
                                store = s;
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("{e}");
                    match reconnect(&settings, control) {
                        Some(s) => store = s,
                        // Stopped while Redis is down: nothing committed is lost.
                        None => return Ok(stats),
                    }
                    continue;
                }
            }
        }
        // Here on this thread: the commit at the stop, and the recovery of a failed one.
        if let Some((job, failed)) = outstanding.take() {
            let seq = job.seq;
            let start = Instant::now();
            let result = match failed {
                Some(e) => Err(e),
                None => store.write(&job.writes, job.grid, &job.label, &job.checkpoints, seq),
            };
            match result {
                Ok(()) => {
                    committed(&mut engine, &mut stats, seq, start.elapsed(), &mut failing);
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            "commit to Redis failed, holding the data and retrying: {e}"
                        );
                        failing = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    let Some(s) = reconnect(&settings, control) else {
                        return Ok(stats); // stopped while Redis is down: nothing committed is lost
                    };
                    store = s;
                    match store.flush_seq() {
                        Ok(now) if now == seq => {
                            // The commit went through; only its reply was lost.
                            engine.seq = seq;
                            engine.profiler.evict();
                        }
                        Ok(now) if now + 1 == seq => outstanding = Some((job, None)),
                        Ok(now) => {
                            tracing::warn!(
                                expected = seq - 1,
                                found = now,
                                "Redis lost committed writes: rebuilding from what it holds"
                            );
                            engine = start_engine(&settings, &mut store)?;
                        }
                        Err(e) => {
                            tracing::warn!("{e}");
                            outstanding = Some((job, None));
                        }
                    }
                    continue;
                }
            }
        }
        if stopping && stop_flush_built && outstanding.is_none() && !in_flight {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            tracing::info!(flushes = stats.flushes, "stopped; checkpoints committed");
            return Ok(stats);
        }
        if watchdog.is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
        if last_metrics.elapsed() >= opts.metrics_every {
            last_metrics = Instant::now();
            let total: u64 = stats.records.values().sum();
            let rate = (total - last_records) as f64 / opts.metrics_every.as_secs_f64();
            last_records = total;
            log_metrics(&engine, &stats, rate);
        }
        if read > 0 {
            wake.pause();
        } else if wake.resume() {
            // Watching again: anything appended before the watch was set is read first.
            while rx.try_recv().is_ok() {}
        } else {
            let _ = rx.recv_timeout(opts.poll_interval);
            while rx.try_recv().is_ok() {}
        }
    }
}

/// A commit is in Redis: count it, and let the windows it finished leave memory.
fn committed(
    engine: &mut Engine,
    stats: &mut FollowStats,
    seq: u64,
    took: Duration,
    failing: &mut bool,
) {
    if *failing {
        tracing::info!("commits to Redis work again");
        *failing = false;
    }
    stats.flushes += 1;
    stats.last_commit = took;
    engine.seq = seq;
    engine.profiler.evict();
}

fn reconnect(settings: &Settings, control: &Control) -> Option<RedisStore> {
    connect_with_retry(&settings.redis_url, control)
}

/// Read what every file appended and give it to the profiler.
fn poll_files(engine: &mut Engine, stats: &mut FollowStats) -> u64 {
    let profiler = &mut engine.profiler;
    let first_ts = &mut engine.first_ts;
    let grid_known = engine.grid.is_some();
    let mut per_kind: HashMap<LogKind, u64> = HashMap::new();
    let read = engine.tailer.poll(|kind, item, _at, _id: FileId| {
        *per_kind.entry(kind).or_default() += 1;
        match item {
            TailItem::Malformed(e) => {
                stats.malformed += 1;
                if stats.malformed <= 100 || stats.malformed.is_power_of_two() {
                    tracing::warn!("{e} (malformed lines so far: {})", stats.malformed);
                }
            }
            TailItem::Record(rec) => {
                *stats.records.entry(kind).or_default() += 1;
                let Converted::Event(event) = to_event(&rec) else {
                    return; // dropped by the spec's rules, or another log
                };
                if !grid_known && first_ts.is_none_or(|t| event.ts() < t) {
                    *first_ts = Some(event.ts());
                }
                match event {
                    Event::Conn(f, _) => profiler.add_conn(f, 0),
                    Event::Alt(a, _) => profiler.add_alt(a, 0),
                }
            }
        }
    });
    let now = Instant::now();
    for t in engine.tailer.files.values() {
        if per_kind.contains_key(&t.kind) {
            engine.last_bytes.insert(t.kind, now);
        }
    }
    read
}

/// Logs without a followed file, or idle for `idle_after`, do not hold back joins.
fn update_log_states(engine: &mut Engine, idle_after: Duration) {
    let followed = engine.tailer.kinds();
    for kind in [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl] {
        let active = followed.contains(&kind)
            && engine
                .last_bytes
                .get(&kind)
                .is_some_and(|t| t.elapsed() < idle_after);
        engine.profiler.set_log_waiting(kind, active);
    }
}

/// Prepare a transaction, or `None` when nothing changed.
fn build_flush(
    engine: &mut Engine,
    store: &mut RedisStore,
    timings: &mut Timings,
) -> Result<Option<Box<Job>>, StoreError> {
    if engine.grid.is_none() {
        if let Some(ts) = engine.first_ts {
            let width = engine.profiler.config().width;
            engine.grid = Some(store.init_grid(Grid::anchored_at(ts, width))?);
        }
    }
    let Some(grid) = engine.grid else {
        // Nothing read yet: nothing to store, and no checkpoint moves.
        return Ok(None);
    };
    // Windows stay in memory until the commit is confirmed (a failed one is retried).
    let mut windows = Vec::new();
    let mut writes = prepare(
        &mut engine.profiler,
        store,
        grid,
        timings,
        false,
        |id, w| {
            windows.push((id, w));
            Ok(())
        },
    )?;
    writes.windows = windows;
    let cps = engine.tailer.take_checkpoints();
    if writes.is_empty() && cps.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::new(Job {
        writes,
        checkpoints: cps,
        seq: engine.seq + 1,
        grid,
        label: engine.profiler.config().label.clone(),
    })))
}

fn log_metrics(engine: &Engine, stats: &FollowStats, records_per_sec: f64) {
    let lag: u64 = engine
        .tailer
        .files
        .values()
        .map(|t| {
            std::fs::metadata(&t.path)
                .map(|m| m.len().saturating_sub(t.offset()))
                .unwrap_or(0)
        })
        .sum();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let behind = engine
        .profiler
        .latest(LogKind::Conn)
        .map(|t| (now - t).max(0.0) as u64);
    tracing::info!(
        records_per_sec = records_per_sec as u64,
        records = ?stats.records,
        seconds_behind_zeek = ?behind,
        malformed = stats.malformed,
        flushes = stats.flushes,
        bytes_behind = lag,
        pending_joins = engine.profiler.pending_alts(),
        open_windows = engine.profiler.open_windows(),
        redis_commit_ms = stats.last_commit.as_millis() as u64,
        "metrics"
    );
}
