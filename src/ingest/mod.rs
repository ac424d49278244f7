//! The `--once` run: read a finished log directory to its end, profile every record, write the
//! Redis layout, and report.
//!
//! Steps: find the logs; fix the grid (the stored anchor, or the window of the earliest profiled
//! conn when the database is new); merge the four logs by time into the profiler; every
//! [`IngestOptions::flush_every`] records, merge what Redis holds for reopened windows, write
//! what changed, and drop windows that are done; at the end store the orphans and write the rest.

pub mod follow;
pub mod merge;
pub mod service;
pub mod summary;
pub mod writer;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::enrich::IpInfo;
use crate::model::window::Grid;
use crate::model::window::WinId;
use crate::profile::profiler::{FieldsEvery, Profiler, ProfilerConfig};
use crate::profile::schedule::ConnSchedule;
use crate::profile::window_state::WindowWrite;
use crate::source::checkpoint::{Checkpoint, CheckpointError, FileId};
use crate::source::find_logs;
use crate::source::reader::Resume;
use crate::store::redis_store::{RedisStore, StoreError};
use crate::zeek::LogKind;
use crate::zeek::ParserState;
use crate::zeek::TimeBound;
use merge::{Event, FileToRead, KindStream, Merged};
pub use summary::Summary;
use writer::{CommitWorker, Job};

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The log directory cannot be read.
    #[error("cannot read directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored checkpoint cannot be used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The stored join state cannot be used.
    #[error(transparent)]
    JoinState(#[from] crate::join::JoinStateError),
    /// A country or ASN database or a blocklist cannot be used.
    #[error(transparent)]
    Enrich(#[from] crate::enrich::EnrichError),
}

/// Open the country and ASN databases and the blocklists of `settings` (before Redis: a bad
/// file is an error at start, not after a wait), saying what was loaded.
pub fn open_ipinfo(settings: &Settings) -> Result<Arc<IpInfo>, IngestError> {
    let info = IpInfo::open(&settings.enrich)?;
    for (path, stats) in &info.stats {
        tracing::info!(
            file = %path.display(),
            entries = stats.entries,
            malformed = stats.malformed,
            "blocklist loaded"
        );
    }
    Ok(Arc::new(info))
}

/// The profiler's settings common to `--once` and follow mode.
fn profiler_config(settings: &Settings, ipinfo: Arc<IpInfo>) -> ProfilerConfig {
    let mut cfg = ProfilerConfig::new(settings.routing.clone(), settings.tw_width);
    cfg.label = settings.label.clone();
    cfg.style.clock = settings.clock.clone();
    cfg.style.ipinfo = ipinfo;
    cfg.style.layout = settings.layout;
    cfg.retain = settings.retain;
    cfg.no_flows = settings.redis.no_flows;
    cfg.detection = settings.detection_threshold * settings.tw_width / 60.0;
    cfg
}

/// Knobs of a run that are not user settings (tests use them to force every code path).
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Records between flushes.
    pub flush_every: u64,
    /// Seconds of log time a window stays in memory after its end (default: one width).
    pub hold: Option<f64>,
    /// Remove this tool's keys first.
    pub reset: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Most dns/http/ssl records waiting for their conn at once (default
    /// [`crate::join::DEFAULT_PENDING_CAP`]).
    pub join_cap: Option<usize>,
    /// Stop after this many flushes, without the end-of-input flush, as a killed run would
    /// (tests: the next run must finish the job exactly).
    pub stop_after_flushes: Option<u64>,
    /// Bytes of rendered windows sent to Redis as one part of the open flush transaction
    /// (tests: 0 sends each window as its own part).
    pub part_bytes: usize,
    /// Conn files with at least this many bytes left to read are pre-scanned (the pass that
    /// finds `timewindow1` and each window's last conn) in two halves on two threads (tests:
    /// 0 cuts every conn file).
    pub scan_split_bytes: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            flush_every: 25_000,
            hold: None,
            reset: false,
            progress: false,
            join_cap: None,
            stop_after_flushes: None,
            part_bytes: PART_BYTES,
            scan_split_bytes: SCAN_SPLIT_BYTES,
        }
    }
}

/// One file of the run: where it is, what it is, and how far it is stored.
#[derive(Clone, Debug)]
pub struct RunFile {
    /// Path.
    pub path: PathBuf,
    /// Log kind (from its name).
    pub kind: LogKind,
    /// Identity (device, inode, header fingerprint).
    pub id: FileId,
    /// Offset and line stored so far (from the checkpoint, then advanced by the run).
    pub offset: u64,
    /// Lines stored so far.
    pub line: u64,
    /// The parser's state at `offset` (`None`: not known, from a version 1 checkpoint).
    pub state: Option<Arc<ParserState>>,
    /// Whether the checkpoint must be written at the next flush.
    pub changed: bool,
}

/// The files of the directory with their checkpoints; files already read to their end are
/// left out (nothing new in them).
fn run_files(
    found: Vec<(PathBuf, LogKind)>,
    stored: Vec<(String, String)>,
) -> Result<Vec<RunFile>, CheckpointError> {
    let stored = Checkpoint::parse_all(stored)?;
    let mut out = Vec::new();
    for (path, kind) in found {
        let id = match FileId::of(&path) {
            Ok(Some(id)) => id,
            Ok(None) => {
                if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                    tracing::warn!(file = %path.display(), "no complete header yet: skipped");
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot open log");
                continue;
            }
        };
        let cp = stored.get(id.key().as_str());
        let (offset, line) = cp.map_or((0, 0), |c| (c.offset, c.line));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let plain = !path.to_string_lossy().ends_with(".gz");
        if cp.is_some() && plain && offset == size {
            continue; // read to its end already
        }
        out.push(RunFile {
            path,
            kind,
            id,
            offset,
            line,
            state: cp.and_then(|c| c.state.clone()).map(Arc::new),
            changed: false,
        });
    }
    Ok(out)
}

impl RunFile {
    /// Where reading resumes.
    fn resume(&self) -> Resume {
        Resume {
            offset: self.offset,
            line: self.line,
            state: self.state.as_deref().cloned(),
        }
    }
}

fn streams(files: &[RunFile], bytes: &Arc<AtomicU64>) -> Vec<KindStream> {
    [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl]
        .into_iter()
        .map(|k| {
            let of_kind = files
                .iter()
                .enumerate()
                .filter(|(_, f)| f.kind == k)
                .map(|(index, f)| FileToRead {
                    index,
                    path: f.path.clone(),
                    resume: f.resume(),
                    id: Some(f.id),
                })
                .collect();
            KindStream::new(k, of_kind, bytes.clone())
        })
        .collect()
}

/// The checkpoints to write: every file that advanced since the last flush.
fn checkpoints(files: &mut [RunFile]) -> Vec<(String, String)> {
    files
        .iter_mut()
        .filter(|f| f.changed)
        .map(|f| {
            f.changed = false;
            let state = f.state.as_deref().cloned();
            let cp = Checkpoint::new(&f.path, f.kind, f.offset, f.line, false, state);
            (f.id.key(), cp.to_json())
        })
        .collect()
}

/// A scan of the conn logs before a batch run: the earliest conn that lands in a profile
/// window (`None`: no such conn), and each window's last conn ([`ConnSchedule`]).
/// A conn is late for the schedule when one written before it is `late_after` seconds past
/// the end of its window (the join grace: when the window could close).
fn scan_conns(
    settings: &Settings,
    files: &[RunFile],
    late_after: f64,
    split_bytes: u64,
) -> (Option<f64>, ConnSchedule) {
    let bytes = Arc::new(AtomicU64::new(0));
    let mut earliest: Option<f64> = None;
    // Lines below the earliest so far are converted whole: one bad in a field the scan does
    // not read is then dropped here too, instead of fixing the grid's first window.
    let whole_below = Arc::new(TimeBound::default());
    let mut schedule = ConnSchedule::default();
    let mut place = |ts: f64, profiles: Profiles| {
        if !profiles.is_empty() && earliest.is_none_or(|t| ts < t) {
            earliest = Some(ts);
            whole_below.lower(ts);
        }
        schedule.conn(ts, settings.tw_width, late_after, profiles);
    };
    for (index, f) in files.iter().enumerate() {
        if f.kind != LogKind::Conn {
            continue;
        }
        let whole = FileToRead {
            index,
            path: f.path.clone(),
            resume: f.resume(),
            id: Some(f.id),
        };
        let Some(half) = scan_split(&f.path, f.offset, split_bytes) else {
            scan_part(settings, whole, u64::MAX, &bytes, &whole_below, &mut place);
            continue;
        };
        // A large plain file is parsed in two halves at once; the second half's conns wait
        // in a list and are placed after the first's, so the schedule sees reading order.
        // (its header is not known at the cut: the lines before it are streamed past)
        let second = FileToRead {
            resume: Resume {
                offset: half,
                line: 0,
                state: None,
            },
            ..whole.clone()
        };
        std::thread::scope(|scope| {
            let later = scope.spawn(|| {
                let mut conns = Vec::new();
                scan_part(
                    settings,
                    second,
                    u64::MAX,
                    &bytes,
                    &whole_below,
                    &mut |ts, p| conns.push((ts, p)),
                );
                conns
            });
            scan_part(settings, whole, half, &bytes, &whole_below, &mut place);
            match later.join() {
                Ok(conns) => conns.into_iter().for_each(|(ts, p)| place(ts, p)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
    }
    (earliest, schedule)
}

/// The profiles a conn is counted in (one or two).
type Profiles = smallvec::SmallVec<[IpAddr; 2]>;

/// Conn files with at least this many bytes left to read are scanned in two halves (default
/// of [`IngestOptions::scan_split_bytes`]).
pub const SCAN_SPLIT_BYTES: u64 = 8 << 20;

/// Where to cut a conn file in two for [`scan_conns`]: the start of the first line after the
/// middle of what is left from `from`; `None` for a file with less than `min` bytes left, a
/// compressed one, or one that cannot be read (the single scan reports it).
fn scan_split(path: &std::path::Path, from: u64, min: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len <= from || len - from < min {
        return None;
    }
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).ok()?;
    if magic == [0x1f, 0x8b] {
        return None;
    }
    let middle = from + (len - from) / 2;
    file.seek(SeekFrom::Start(middle)).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let n = file.read(&mut buf).ok()?;
    let newline = memchr::memchr(b'\n', &buf[..n])?;
    Some(middle + newline as u64 + 1).filter(|at| *at < len)
}

/// The fields the conn scan converts: those it uses and those without which a conn is not
/// profiled (`Flow::from_conn`), all of them in a line earlier than every conn kept so far. A
/// later line whose other fields are bad counts in the scan but is dropped by the main pass:
/// the windows after it then wait for one conn more than comes and are held as windows
/// expecting a late conn (the same content, more memory for a while); it cannot become the
/// earliest conn, which fixes the grid (`docs/decisions.md`, "The scan converts only what it
/// needs").
const SCAN_FIELDS: &[&str] = &["ts", "id.orig_h", "id.resp_h", "proto"];

/// Scan the conns of `file` from its resume offset, up to the line ending past `until`,
/// handing each conn's time and profiles to `place`.
fn scan_part(
    settings: &Settings,
    file: FileToRead,
    until: u64,
    bytes: &Arc<AtomicU64>,
    whole_below: &Arc<TimeBound>,
    place: &mut impl FnMut(f64, Profiles),
) {
    let mut stream = KindStream::new(LogKind::Conn, vec![file], bytes.clone())
        .only_fields(SCAN_FIELDS, whole_below.clone());
    while let Some(e) = stream.next_event() {
        if let Event::Conn(f, source) = e {
            if source.end > until {
                break;
            }
            let profiles = settings
                .routing
                .route(f.saddr, f.daddr)
                .into_iter()
                .filter_map(|(ip, r)| r.map(|_| ip))
                .collect();
            place(f.ts, profiles);
        }
    }
}

/// Where the time of a run went (logged at debug level).
#[derive(Debug, Default)]
pub struct Timings {
    anchor_scan: Duration,
    read: Duration,
    profile: Duration,
    load: Duration,
    render: Duration,
    write: Duration,
}

/// Where `--once` commits go: the writer thread, the windows written so far and the flush
/// counter.
struct Committer {
    writer: CommitWorker,
    written: HashSet<WinId>,
    seq: u64,
    part_bytes: usize,
}

/// Rendered window values sent to the writer thread as one part of the open transaction
/// (default of [`IngestOptions::part_bytes`]).
pub const PART_BYTES: usize = 2 << 20;

impl Committer {
    /// One `--once` flush: merge, render, commit with the files' checkpoints, evict. Windows
    /// are sent to the writer as they are rendered (in parts of about
    /// [`IngestOptions::part_bytes`]), and windows that are done leave memory as soon as they
    /// are rendered.
    fn flush(
        &mut self,
        profiler: &mut Profiler,
        store: &mut RedisStore,
        grid: Grid,
        files: &mut [RunFile],
        t: &mut Timings,
    ) -> Result<(), StoreError> {
        if !profiler.load_request().is_empty() {
            // Windows are read back: every earlier write must be in first.
            let start = Instant::now();
            self.writer.wait()?;
            t.write += start.elapsed();
        }
        let mut part = Vec::new();
        let (mut part_size, mut sent) = (0usize, false);
        let writer = &mut self.writer;
        let written = &mut self.written;
        let part_max = self.part_bytes;
        let mut writes = prepare(profiler, store, grid, t, true, |id, w| {
            written.insert(id);
            part_size += w.size();
            part.push((id, w));
            if part_size >= part_max {
                part_size = 0;
                sent = true;
                writer.send_windows(std::mem::take(&mut part), grid)?;
            }
            Ok(())
        })?;
        writes.windows = part;
        let cps = checkpoints(files);
        if !sent && writes.is_empty() && cps.is_empty() {
            return Ok(()); // nothing changed: a re-run leaves the database as it is
        }
        self.seq += 1;
        let start = Instant::now();
        self.writer.send(Job {
            writes,
            checkpoints: cps,
            seq: self.seq,
            grid,
            label: profiler.config().label.clone(),
        })?;
        profiler.evict();
        t.write += start.elapsed();
        Ok(())
    }
}

/// The first half of a flush: merge what Redis holds for windows and profiles that need it,
/// then take every change as complete values, each window's handed to `sink` as soon as it is
/// rendered (with `evict_done`, windows that are done leave memory then). The second half is
/// [`RedisStore::write`].
pub fn prepare(
    profiler: &mut Profiler,
    store: &mut RedisStore,
    grid: Grid,
    t: &mut Timings,
    evict_done: bool,
    sink: impl FnMut(WinId, WindowWrite) -> Result<(), StoreError>,
) -> Result<crate::profile::profiler::Writes, StoreError> {
    let start = Instant::now();
    let req = profiler.load_request();
    if !req.is_empty() {
        let (windows, profiles, logs) = store.load(&req, grid)?;
        for (id, stored) in windows {
            profiler.merge_window(id, stored);
        }
        for (id, payloads) in logs {
            profiler.merge_records_log(id, payloads);
        }
        for (ip, start) in profiles {
            profiler.merge_profile(ip, start);
        }
    }
    let loaded = Instant::now();
    t.load += loaded - start;
    profiler.expire_joins();
    let writes = profiler.take_writes_with(evict_done, sink);
    t.render += loaded.elapsed();
    writes
}

/// Run `--once` over `settings.zeek_dir`.
pub fn run_once(settings: &Settings, opts: &IngestOptions) -> Result<Summary, IngestError> {
    let started = Instant::now();
    let ipinfo = open_ipinfo(settings)?;
    let mut store = RedisStore::connect(&settings.redis)?;
    store.check_memory_policy()?;
    if opts.reset {
        let n = store.reset()?;
        tracing::info!(keys = n, "--reset: removed this tool's keys");
    }
    let found =
        find_logs(&settings.zeek_dir, settings.recursive).map_err(|source| IngestError::Dir {
            dir: settings.zeek_dir.clone(),
            source,
        })?;
    if found.is_empty() {
        tracing::warn!(dir = %settings.zeek_dir.display(), "no conn/dns/http/ssl logs found");
    }
    let stored_checkpoints = store.checkpoints()?;
    let mut files = run_files(found, stored_checkpoints)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();

    let mut t = Timings::default();
    let scan_start = Instant::now();
    let stored = store.grid(settings.tw_width)?;
    let has_history = stored.is_some();
    let mut cfg = profiler_config(settings, ipinfo);
    cfg.index = store.retention_index(settings.retain.is_some(), has_history)?;
    let (earliest, schedule) = scan_conns(settings, &files, cfg.join_grace, opts.scan_split_bytes);
    let grid = match (stored, earliest) {
        (Some(g), _) => Some(g),
        (None, Some(ts)) => Some(store.init_grid(Grid::anchored_at(ts, settings.tw_width))?),
        (None, None) => None,
    };

    t.anchor_scan = scan_start.elapsed();
    // A finished directory is read in time order, and its conns scanned first: a window whose
    // conns are all in is done the join grace after its end; one still expecting a conn (Zeek
    // writes a conn when it ends) stays up to a width past its end; a later conn reopens the
    // window from Redis, exactly. Without the scan's knowledge (alt records waiting for their
    // conn), a few minutes.
    cfg.hold = opts.hold.unwrap_or(settings.tw_width.min(600.0));
    cfg.hold_for_late_conn = Some(opts.hold.unwrap_or(settings.tw_width));
    // Nobody watches a batch run's windows fill up: their hash fields are written once, when
    // they close (persisted as waiting, so a killed run is finished by the next one).
    cfg.fields_every = FieldsEvery::Close;
    let mut profiler = Profiler::new(cfg, has_history);
    profiler.set_conn_schedule(schedule);
    if let Some(cap) = opts.join_cap {
        profiler.set_join_cap(cap);
    }
    if has_history {
        profiler.restore(store.persisted_state()?)?;
    }
    let seq = store.flush_seq()?;
    // A log with no file to read sends nothing: it must not hold back joins and eviction.
    for kind in [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl] {
        if !files.iter().any(|f| f.kind == kind) {
            profiler.finish_log(kind);
        }
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let mut merged = Merged::new(streams(&files, &bytes));
    let mut finished = Vec::new();
    let mut commits = Committer {
        writer: CommitWorker::start(&settings.redis)?,
        written: HashSet::new(),
        seq,
        part_bytes: opts.part_bytes,
    };
    let progress = Progress::new(opts.progress, total_bytes);
    let mut since_flush = 0u64;
    let mut conns_read = 0u64;
    let mut flushes = 0u64;
    // Without a grid (no profiled conn at all) orphan alt records still need one.
    let mut grid = grid;
    let mut clock = Instant::now();
    while let Some((_, event)) = merged.next(&mut finished) {
        let now = Instant::now();
        t.read += now - clock;
        clock = now;
        for kind in finished.drain(..) {
            profiler.finish_log(kind);
        }
        if grid.is_none() {
            grid = Some(store.init_grid(Grid::anchored_at(event.ts(), settings.tw_width))?);
        }
        let src = event.source().clone();
        match event {
            Event::Conn(flow, s) => {
                conns_read += 1;
                profiler.add_conn(flow, s.line)
            }
            Event::Alt(alt, port, s) => profiler.add_alt(alt, port, s.line),
        }
        if let Some(f) = files.get_mut(src.file) {
            f.offset = src.end;
            f.line = src.line;
            if src.state.is_some() {
                f.state = src.state;
            }
            f.changed = true;
        }
        since_flush += 1;
        let now = Instant::now();
        t.profile += now - clock;
        clock = now;
        if since_flush >= opts.flush_every {
            since_flush = 0;
            profiler.set_conns_read(conns_read);
            mark_ended(&mut merged, &mut files);
            if let Some(g) = grid {
                commits.flush(&mut profiler, &mut store, g, &mut files, &mut t)?;
            }
            progress.update(&bytes, &profiler);
            flushes += 1;
            if opts.stop_after_flushes == Some(flushes) {
                break;
            }
            let (windows, records, entries) = profiler.memory_summary();
            tracing::debug!(
                windows,
                records,
                entries,
                pending = profiler.pending_alts(),
                "open windows after the flush"
            );
            clock = Instant::now();
        }
    }
    // A run stopped early (tests) leaves the rest to the next run, as a killed one would.
    if opts.stop_after_flushes.is_none_or(|n| flushes < n) {
        for kind in finished.drain(..) {
            profiler.finish_log(kind);
        }
        for kind in [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl] {
            profiler.finish_log(kind);
        }
        profiler.finish();
        mark_ended(&mut merged, &mut files);
        if let Some(g) = grid {
            commits.flush(&mut profiler, &mut store, g, &mut files, &mut t)?;
        }
    }
    let start = Instant::now();
    let sent = commits.writer.finish()?;
    t.write += start.elapsed();
    progress.done();
    tracing::debug!(timings = ?t, "where the time went");
    let detections = store.detections(5, crate::store::redis_store::DETECTIONS_READ)?;
    Ok(Summary {
        detections,
        logs: merged.counts(),
        stats: profiler.stats.clone(),
        profiles: profiler.profile_count() as u64,
        windows: commits.written.len() as u64,
        commands: store.stats.commands + sent.commands,
        round_trips: store.stats.round_trips + sent.round_trips,
        elapsed: started.elapsed(),
        anchor: grid.map(|g| g.anchor()),
    })
}

/// Files read to their end (all their records taken) are checkpointed at their end, which
/// covers trailing lines that gave no record.
fn mark_ended(merged: &mut Merged, files: &mut [RunFile]) {
    for e in merged.take_ended() {
        if let Some(f) = files.get_mut(e.index) {
            f.offset = e.end;
            f.line = e.line;
            f.state = Some(Arc::new(e.state));
            f.changed = true;
        }
    }
}

/// A progress bar on a terminal, or a log line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(enabled: bool, total: u64) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            last_log: std::cell::Cell::new(Instant::now()),
        }
    }

    fn update(&self, bytes: &AtomicU64, profiler: &Profiler) {
        let read = bytes.load(Ordering::Relaxed);
        let msg = format!(
            "{} flows, {} profiles, {} windows open",
            profiler.stats.flows,
            profiler.profile_count(),
            profiler.open_windows()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                bar.set_message(msg);
            }
            None => {
                if self.last_log.get().elapsed() >= Duration::from_secs(5) {
                    self.last_log.set(Instant::now());
                    tracing::info!(bytes_read = read, "{msg}");
                }
            }
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
