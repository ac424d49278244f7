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
use super::service::{Repeats, Service, clock_now};
use super::writer::{CommitWorker, Job};
use super::{IngestError, Timings, open_ipinfo, prepare, profiler_config};
use crate::config::Settings;
use crate::enrich::IpInfo;
use crate::model::window::Grid;
use crate::profile::profiler::{FieldsEvery, Profiler};
use crate::source::checkpoint::{Checkpoint, FileId};
use crate::source::tail::{TailItem, Tailer};
use crate::store::redis_store::{Memory, RedisStore, StoreError, Target};
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
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opening and reading a file is an event too (inotify's IN_OPEN, IN_ACCESS,
            // IN_CLOSE_NOWRITE): our own scans and reads would wake the loop at once, again
            // and again — an idle daemon spent most of a core so.
            if let Ok(ev) = &res {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
            }
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
        // A directory that is not there yet is watched once it is (said by the scan).
        if !w.resume() && w.dir.exists() {
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

/// Connect, retrying with backoff (200 ms doubling to 5 s) while Redis is down, saying so once
/// and in `STATUS=`, pinging the watchdog. `None` when stopped meanwhile.
fn connect_with_retry(
    target: &Target,
    control: &Control,
    service: &mut Service,
) -> Option<RedisStore> {
    let mut delay = FIRST_BACKOFF;
    let mut since: Option<String> = None;
    let before = service.current_status().to_string();
    loop {
        match RedisStore::connect(target) {
            Ok(s) => {
                if since.is_some() {
                    tracing::info!(url = %target.shown(), "Redis is reachable again");
                    service.status(&before);
                }
                return Some(s);
            }
            Err(e) => {
                if since.is_none() {
                    tracing::warn!("{e}; retrying");
                    let t = clock_now();
                    service.status(&format!(
                        "waiting for Redis at {} since {t}",
                        target.shown()
                    ));
                    since = Some(t);
                }
            }
        }
        if !service.sleep(delay, &control.stop) {
            return None;
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

fn start_engine(
    settings: &Settings,
    store: &mut RedisStore,
    ipinfo: Arc<IpInfo>,
) -> Result<Engine, IngestError> {
    let grid = store.grid(settings.tw_width)?;
    let mut cfg = profiler_config(settings, ipinfo);
    cfg.fields_every = FieldsEvery::Interval(Duration::from_millis(settings.fields_interval_ms));
    cfg.index = store.retention_index(settings.retain.is_some(), grid.is_some())?;
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
    match Follower::start(settings, opts, control)? {
        Some(follower) => follower.run(reload),
        None => Ok(FollowStats::default()), // stopped before Redis was reachable
    }
}

/// Where the commit of what was read stands.
enum Commit {
    /// Nothing sent that is not confirmed.
    Idle,
    /// A transaction on the commit worker, its result not collected.
    InFlight,
    /// A transaction to send on this thread: the last one at a stop, one the worker could not
    /// take, or one that failed there (with its error, to recover from before retrying).
    Held(Box<Job>, Option<StoreError>),
}

/// Whether the daemon runs on or is stopping (SIGTERM/SIGINT).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Reading and committing.
    Running,
    /// Nothing more is read; `last_built` once the flush of everything read exists.
    Stopping { last_built: bool },
}

/// What the loop does after a step.
enum Next {
    /// Go on with this round.
    Proceed,
    /// Start the next round at once (the store was replaced or the state rebuilt).
    Again,
    /// Return: stopped while Redis was down (nothing committed is lost).
    Exit,
}

/// When things last happened (what the loop's intervals are measured from).
struct Clocks {
    flush: Instant,
    metrics: Instant,
    /// Last check, while idle, that Redis still holds what was committed.
    seq_check: Instant,
    /// Last scan of the directory for new and rotated files.
    scan: Instant,
}

/// The follow loop's state: one round reads what was appended, collects the commit in flight,
/// builds and hands over the next flush when it is due, sends a held one here, and sleeps
/// when nothing came.
struct Follower<'a> {
    settings: Settings,
    opts: &'a FollowOptions,
    control: &'a Control,
    /// This thread's connection: loads, the grid, checks, the stop's commit and recoveries.
    store: RedisStore,
    engine: Engine,
    worker: CommitWorker,
    /// systemd: status and watchdog.
    service: Service,
    /// The log directory was missing at the last scan (said once; a quiet wait).
    dir_missing: bool,
    /// Warnings that repeat, said once a minute with their count.
    repeats: Repeats,
    commit: Commit,
    phase: Phase,
    stats: FollowStats,
    timings: Timings,
    wake: Wakeup,
    woken: mpsc::Receiver<()>,
    clocks: Clocks,
    /// Wait before the next retry of a failed commit.
    backoff: Duration,
    /// Commits are failing (said once, and once when they work again).
    failing: bool,
    /// The last read got records: the directory is scanned every `SCAN_EVERY`, not each round.
    busy: bool,
    /// Records at the last metrics line.
    records_at_metrics: u64,
}

/// The first wait before a retry, doubling to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl<'a> Follower<'a> {
    /// Connect (waiting for Redis), rebuild the state Redis holds, and watch the directory.
    /// `None` when stopped before Redis was reachable.
    fn start(
        settings: &Settings,
        opts: &'a FollowOptions,
        control: &'a Control,
    ) -> Result<Option<Follower<'a>>, IngestError> {
        let settings = settings.clone();
        let ipinfo = open_ipinfo(&settings)?;
        // Up at once: waiting for Redis is part of the service's work (said in STATUS=, with
        // the watchdog fed), not a start that systemd would time out.
        let mut service = Service::from_env();
        service.ready();
        service.status("connecting to Redis");
        let Some(mut store) = connect_with_retry(&settings.redis, control, &mut service) else {
            return Ok(None);
        };
        service.status("reading the stored state");
        store.check_memory_policy()?;
        let engine = start_engine(&settings, &mut store, ipinfo)?;
        let worker = CommitWorker::start(&settings.redis)?;
        // inotify wakes the loop early; the poll interval is the safety net. While records keep
        // coming the loop never sleeps, and the watch is dropped: every append would otherwise
        // cost an event (a sixth of the daemon's CPU at 50,000 lines/s).
        let (tx, woken) = mpsc::channel::<()>();
        let wake = Wakeup::new(&settings, tx);
        tracing::info!(dir = %settings.zeek_dir.display(), "following");
        let now = Instant::now();
        Ok(Some(Follower {
            settings,
            opts,
            control,
            store,
            engine,
            worker,
            service,
            dir_missing: false,
            repeats: Repeats::default(),
            commit: Commit::Idle,
            phase: Phase::Running,
            stats: FollowStats::default(),
            timings: Timings::default(),
            wake,
            woken,
            clocks: Clocks {
                flush: now,
                metrics: now,
                seq_check: now,
                scan: now,
            },
            backoff: FIRST_BACKOFF,
            failing: false,
            busy: false,
            records_at_metrics: 0,
        }))
    }

    /// The loop, until stopped with everything read committed (or while Redis is down).
    fn run(mut self, reload: &dyn Fn() -> Option<Settings>) -> Result<FollowStats, IngestError> {
        loop {
            self.service.ping();
            if self.phase == Phase::Running && self.control.stop.load(Ordering::Relaxed) {
                self.phase = Phase::Stopping { last_built: false };
            }
            if self.control.reload.swap(false, Ordering::Relaxed) {
                self.reload(reload);
            }
            let read = self.read();
            let due = self.clocks.flush.elapsed() >= self.opts.flush_interval;
            let stopping = self.phase != Phase::Running;
            self.collect(due || stopping)?;
            if due || stopping {
                match self.flush()? {
                    Next::Proceed => {}
                    Next::Again => continue,
                    Next::Exit => return Ok(self.stats),
                }
            }
            match self.commit_held()? {
                Next::Proceed => {}
                Next::Again => continue,
                Next::Exit => return Ok(self.stats),
            }
            if self.phase == (Phase::Stopping { last_built: true })
                && matches!(self.commit, Commit::Idle)
            {
                self.service.stopping();
                tracing::info!(
                    flushes = self.stats.flushes,
                    "stopped; checkpoints committed"
                );
                return Ok(self.stats);
            }
            self.metrics();
            self.sleep(read);
        }
    }

    /// SIGHUP: the configuration file again; what can change applies to records from now on
    /// (the directory, Redis and the window width stay).
    fn reload(&mut self, reload: &dyn Fn() -> Option<Settings>) {
        let Some(new) = reload() else {
            return;
        };
        tracing::info!("configuration reloaded (applies to records from now on)");
        self.engine.profiler.set_routing(new.routing.clone());
        // The databases and blocklists are read again (a monthly update, a new list); if one
        // cannot be used, the ones in use stay.
        match open_ipinfo(&new) {
            Ok(info) => self.engine.profiler.set_ipinfo(info),
            Err(e) => tracing::warn!("reload: {e}; keeping the databases and lists in use"),
        }
        self.engine
            .profiler
            .set_detection(new.detection_threshold * self.settings.tw_width / 60.0);
        self.settings = Settings {
            zeek_dir: self.settings.zeek_dir.clone(),
            redis: self.settings.redis.clone(),
            tw_width: self.settings.tw_width,
            ..new
        };
    }

    /// Read what was appended, unless a commit is held (memory stays bounded while Redis
    /// fails) or the daemon is stopping. Returns the lines read.
    fn read(&mut self) -> u64 {
        if matches!(self.commit, Commit::Held(..)) || self.phase != Phase::Running {
            return 0;
        }
        // New and rotated files: looked for after every pause, and every `SCAN_EVERY` while
        // lines keep coming (not at every read).
        if !self.busy || self.clocks.scan.elapsed() >= SCAN_EVERY {
            self.clocks.scan = Instant::now();
            self.scan();
        }
        let read = poll_files(&mut self.engine, &mut self.stats);
        self.busy = read > 0;
        update_log_states(&mut self.engine, self.opts.idle_after);
        self.engine.profiler.expire_waiting_alts();
        read
    }

    /// Look for new and rotated files. A missing directory is said once, then waited for
    /// quietly (Zeek creates `logs/current` when it starts); other errors once a minute.
    fn scan(&mut self) {
        match self.engine.tailer.scan() {
            Ok(()) => {
                if self.dir_missing {
                    self.dir_missing = false;
                    tracing::info!(dir = %self.settings.zeek_dir.display(), "the log directory is there: following it");
                }
                if !self.failing {
                    let n = self.engine.tailer.files.len();
                    let behind = seconds_behind(&self.engine)
                        .map(|s| format!(", behind Zeek by {s} s"))
                        .unwrap_or_default();
                    self.service.status(&format!(
                        "following {n} file{} in {}{behind}",
                        if n == 1 { "" } else { "s" },
                        self.settings.zeek_dir.display()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !self.dir_missing {
                    self.dir_missing = true;
                    tracing::warn!(
                        "the log directory {} does not exist (yet): waiting for it (Zeek creates it when it starts)",
                        self.settings.zeek_dir.display()
                    );
                    self.service.status(&format!(
                        "waiting for the log directory {} since {}",
                        self.settings.zeek_dir.display(),
                        clock_now()
                    ));
                }
            }
            Err(e) => self.repeats.warn(
                "scan",
                format!(
                    "cannot read the log directory {}: {e}",
                    self.settings.zeek_dir.display()
                ),
            ),
        }
    }

    /// The result of the commit in flight, if it is in (waiting for it when `wait`, with the
    /// watchdog fed: a long commit must not get the daemon killed).
    fn collect(&mut self, wait: bool) -> Result<(), IngestError> {
        if !matches!(self.commit, Commit::InFlight) {
            return Ok(());
        }
        loop {
            let slice = wait.then(|| self.service.slice());
            // The worker gone (a panic) took the transaction with it: stop (exit 1, systemd
            // restarts; the checkpoints in Redis say where to resume).
            if let Some((job, result)) = self.worker.result(slice)? {
                self.commit = match result {
                    Ok(took) => {
                        self.committed(job.seq, took);
                        Commit::Idle
                    }
                    Err(e) => Commit::Held(job, Some(e)),
                };
                return Ok(());
            }
            if !self.worker.in_flight() {
                // Came back without its transaction (not one handed over whole).
                self.commit = Commit::Idle;
                return Ok(());
            }
            if !wait {
                return Ok(());
            }
            self.service.ping();
        }
    }

    /// Build the next flush and hand it to the worker (at a stop: hold it, to send here).
    /// Idle, check now and then that Redis still holds what was committed.
    fn flush(&mut self) -> Result<Next, IngestError> {
        if !matches!(self.commit, Commit::Idle) {
            return Ok(Next::Proceed);
        }
        self.clocks.flush = Instant::now();
        let built = build_flush(&mut self.engine, &mut self.store, &mut self.timings);
        if let (Phase::Stopping { .. }, Ok(_)) = (self.phase, &built) {
            self.phase = Phase::Stopping { last_built: true };
        }
        match built {
            Ok(Some(job)) if self.phase != Phase::Running => self.commit = Commit::Held(job, None),
            Ok(Some(job)) => {
                self.commit = match self.worker.hand_over(job) {
                    Ok(()) => Commit::InFlight,
                    Err(job) => Commit::Held(job, None),
                }
            }
            Ok(None) if self.clocks.seq_check.elapsed() >= Duration::from_secs(2) => {
                // Idle: make sure Redis still holds what we committed (a restart without
                // persistence empties it; then everything is read again).
                self.clocks.seq_check = Instant::now();
                match self.store.flush_seq() {
                    Ok(now) if now < self.engine.seq => {
                        self.lost_writes(self.engine.seq, now)?;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.repeats.warn("redis", e.to_string());
                        if let Some(s) = connect_with_retry(
                            &self.settings.redis,
                            self.control,
                            &mut self.service,
                        ) {
                            self.store = s;
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                // Redis went away, or refuses writes (full) while the grid is set up.
                self.trouble(&e);
                return Ok(
                    match connect_with_retry(&self.settings.redis, self.control, &mut self.service)
                    {
                        Some(s) => {
                            self.store = s;
                            Next::Again
                        }
                        None => Next::Exit,
                    },
                );
            }
        }
        Ok(Next::Proceed)
    }

    /// Send a held commit on this thread; when it (or its worker attempt) failed, back off,
    /// reconnect, and learn from the flush counter whether it went through.
    fn commit_held(&mut self) -> Result<Next, IngestError> {
        let (job, failed) = match std::mem::replace(&mut self.commit, Commit::Idle) {
            Commit::Held(job, failed) => (job, failed),
            other => {
                self.commit = other;
                return Ok(Next::Proceed);
            }
        };
        let seq = job.seq;
        let start = Instant::now();
        let result = match failed {
            Some(e) => Err(e),
            None => self
                .store
                .write(&job.writes, job.grid, &job.label, &job.checkpoints, seq),
        };
        let Err(e) = result else {
            self.committed(seq, start.elapsed());
            return Ok(Next::Proceed);
        };
        if self.phase != Phase::Running {
            // Stopping, and Redis refuses: out now (nothing committed is lost; the files are
            // read again from the checkpoints at the next start), not retries until SIGKILL.
            tracing::warn!(
                "stopped with the last commit not made ({e}); it is read again at the next start"
            );
            return Ok(Next::Exit);
        }
        self.trouble(&e);
        let Some(s) = connect_with_retry(&self.settings.redis, self.control, &mut self.service)
        else {
            return Ok(Next::Exit);
        };
        self.store = s;
        match self.store.flush_seq() {
            Ok(now) if now == seq => {
                // The commit went through; only its reply was lost.
                self.engine.seq = seq;
                self.engine.profiler.evict();
            }
            Ok(now) if now + 1 == seq => {
                if e.is_full() {
                    self.make_room(&job);
                }
                self.commit = Commit::Held(job, None)
            }
            Ok(now) => self.lost_writes(seq - 1, now)?,
            Err(e) => {
                self.repeats.warn("redis", e.to_string());
                self.commit = Commit::Held(job, None);
            }
        }
        Ok(Next::Again)
    }

    /// A write to Redis failed (it is down, frozen past the timeout, or full): say so once and
    /// in `STATUS=`, and wait before the retry (cut short by a stop: the next attempt is then
    /// the last; nothing committed is lost). [`Follower::committed`] says when it works again.
    fn trouble(&mut self, e: &StoreError) {
        if !self.failing {
            tracing::warn!("commit to Redis failed, holding the data and retrying: {e}");
            self.failing = true;
            self.service.status(&format!(
                "{} since {}: holding what was read, retrying",
                if e.is_full() {
                    "Redis is full (maxmemory) and refuses writes"
                } else {
                    "commits to Redis fail"
                },
                clock_now()
            ));
        }
        self.service.sleep(self.backoff, &self.control.stop);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Redis is full and refused `job`: with `--retain`, remove what its records put past the
    /// retention before it is sent again (inside it, the removal could not free memory).
    fn make_room(&mut self, job: &Job) {
        let Some(r) = &job.writes.retention else {
            return;
        };
        if r.expire_below == i64::MIN {
            return;
        }
        match self.store.make_room(job.grid, r.expire_below) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                windows = n,
                "Redis is full: removed the windows past the retention ahead of the commit (maxmemory is too small for what --retain keeps)"
            ),
            Err(e) => self.repeats.warn("redis", e.to_string()),
        }
    }

    /// Redis came back without writes we committed (restarted without persistence): drop
    /// what is in memory and rebuild from what it holds, reading the files from there.
    fn lost_writes(&mut self, expected: u64, found: u64) -> Result<(), IngestError> {
        tracing::warn!(
            expected,
            found,
            "Redis lost committed writes: rebuilding from what it holds"
        );
        let ipinfo = self.engine.profiler.ipinfo();
        self.engine = start_engine(&self.settings, &mut self.store, ipinfo)?;
        Ok(())
    }

    /// A commit is in Redis: count it, and let the windows it finished leave memory.
    fn committed(&mut self, seq: u64, took: Duration) {
        if self.failing {
            tracing::info!("commits to Redis work again");
            self.failing = false;
        }
        self.backoff = FIRST_BACKOFF;
        self.stats.flushes += 1;
        self.stats.last_commit = took;
        self.engine.seq = seq;
        self.engine.profiler.evict();
    }

    /// A metrics line every `metrics_every`.
    fn metrics(&mut self) {
        if self.clocks.metrics.elapsed() < self.opts.metrics_every {
            return;
        }
        self.clocks.metrics = Instant::now();
        let total: u64 = self.stats.records.values().sum();
        let rate = (total - self.records_at_metrics) as f64 / self.opts.metrics_every.as_secs_f64();
        self.records_at_metrics = total;
        let memory = match self.store.memory() {
            Ok(m) => m,
            Err(e) => {
                self.repeats.warn("redis", e.to_string());
                Default::default()
            }
        };
        log_metrics(&self.engine, &self.stats, rate, &memory);
    }

    /// Sleep until inotify or the poll interval, unless records are coming.
    fn sleep(&mut self, read: u64) {
        if read > 0 {
            self.wake.pause();
        } else if self.wake.resume() {
            // Watching again: anything appended before the watch was set is read first.
            while self.woken.try_recv().is_ok() {}
        } else {
            let _ = self.woken.recv_timeout(self.opts.poll_interval);
            while self.woken.try_recv().is_ok() {}
        }
    }
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
                // A new database's grid starts at the earliest conn that lands in a profile
                // window, as in `--once` (whose scan of the conn logs finds it): a dns record
                // or a conn outside every profile before it does not move it.
                if let (false, Event::Conn(f, _)) = (grid_known, &event) {
                    let profiled = profiler
                        .config()
                        .routing
                        .route(f.saddr, f.daddr)
                        .iter()
                        .any(|(_, role)| role.is_some());
                    if profiled && first_ts.is_none_or(|t| f.ts < t) {
                        *first_ts = Some(f.ts);
                    }
                }
                match event {
                    Event::Conn(f, _) => profiler.add_conn(f, 0),
                    Event::Alt(a, port, _) => profiler.add_alt(a, port, 0),
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

/// Seconds between now and the latest conn read (how far behind Zeek the daemon is).
fn seconds_behind(engine: &Engine) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .ok()?;
    engine
        .profiler
        .latest(LogKind::Conn)
        .map(|t| (now - t).max(0.0) as u64)
}

fn log_metrics(engine: &Engine, stats: &FollowStats, records_per_sec: f64, memory: &Memory) {
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
    tracing::info!(
        records_per_sec = records_per_sec as u64,
        records = ?stats.records,
        seconds_behind_zeek = ?seconds_behind(engine),
        malformed = stats.malformed,
        flushes = stats.flushes,
        bytes_behind = lag,
        pending_joins = engine.profiler.pending_alts(),
        windows_held = engine.profiler.open_windows(),
        redis_used_memory = ?memory.used,
        redis_commit_ms = stats.last_commit.as_millis() as u64,
        "metrics"
    );
}
