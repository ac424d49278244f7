//! Reading a finished log directory: one stream per log kind (its files one after another),
//! merged by record time so that dns/http/ssl records meet their conns while both are in
//! memory. The merge only decides *when* records reach the profiler; what ends up in Redis does
//! not depend on it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::profile::aggregate::Flow;
use crate::profile::alt::AltRecord;
use crate::zeek::{self, FileReader, LogKind, ReadError, Record};

/// A record converted for the profiler, with its line number.
#[derive(Debug)]
pub enum Event {
    /// A conn flow.
    Conn(Flow, u64),
    /// A dns/http/ssl record.
    Alt(AltRecord, u64),
}

impl Event {
    /// The record time.
    pub fn ts(&self) -> f64 {
        match self {
            Event::Conn(f, _) => f.ts,
            Event::Alt(a, _) => a.ts,
        }
    }
}

/// Counters of one log kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Files opened.
    pub files: u64,
    /// Well-formed records read.
    pub records: u64,
    /// Malformed lines skipped.
    pub malformed: u64,
    /// Records dropped by the spec's rules (bad ts or addresses, conn without proto).
    pub dropped: u64,
    /// Records of another log (`#path` says so) ignored.
    pub ignored: u64,
    /// Files that could not be opened or stopped with a read error.
    pub read_errors: u64,
}

/// Malformed lines logged per file before going quiet (the rest are counted).
const LOG_PER_FILE: u64 = 5;

/// The records of one log kind, file after file.
pub struct KindStream {
    kind: LogKind,
    files: VecDeque<PathBuf>,
    reader: Option<FileReader>,
    errors_logged: u64,
    bytes: Arc<AtomicU64>,
    /// Counters so far.
    pub counts: KindCounts,
}

impl KindStream {
    /// A stream over `files` (read in the given order) of `kind`; `bytes` counts the file
    /// bytes consumed, for progress reports.
    pub fn new(kind: LogKind, files: Vec<PathBuf>, bytes: Arc<AtomicU64>) -> KindStream {
        KindStream {
            kind,
            files: files.into(),
            reader: None,
            errors_logged: 0,
            bytes,
            counts: KindCounts::default(),
        }
    }

    /// The log kind.
    pub fn kind(&self) -> LogKind {
        self.kind
    }

    /// The next record the profiler takes, or `None` when every file is read.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.reader.is_none() {
                let path = self.files.pop_front()?;
                match zeek::reader::open_counted(&path, self.bytes.clone()) {
                    Ok(r) => {
                        self.counts.files += 1;
                        self.errors_logged = 0;
                        self.reader = Some(r);
                    }
                    Err(e) => {
                        self.counts.read_errors += 1;
                        tracing::warn!(file = %path.display(), error = %e, "cannot open log");
                        continue;
                    }
                }
            }
            let reader = self.reader.as_mut()?;
            let item = reader.next();
            let got = match item {
                None => {
                    self.reader = None;
                    continue;
                }
                Some(Err(ReadError::Line(e))) => {
                    self.counts.malformed += 1;
                    if self.errors_logged < LOG_PER_FILE {
                        self.errors_logged += 1;
                        tracing::warn!("{e}");
                        if self.errors_logged == LOG_PER_FILE {
                            tracing::warn!(
                                file = %e.file.display(),
                                "further malformed lines of this file are counted, not logged"
                            );
                        }
                    }
                    continue;
                }
                Some(Err(e)) => {
                    self.counts.read_errors += 1;
                    tracing::warn!("{e}");
                    continue;
                }
                Some(Ok(rec)) => to_event(&rec),
            };
            let line = reader.line_no();
            match got {
                Converted::Event(mut event) => {
                    self.counts.records += 1;
                    match &mut event {
                        Event::Conn(_, l) | Event::Alt(_, l) => *l = line,
                    }
                    return Some(event);
                }
                Converted::Dropped => {
                    self.counts.records += 1;
                    self.counts.dropped += 1;
                }
                Converted::Ignored => self.counts.ignored += 1,
            }
        }
    }
}

enum Converted {
    Event(Event),
    Dropped,
    Ignored,
}

fn to_event(rec: &Record<'_>) -> Converted {
    let event = match rec {
        Record::Conn(c) => Flow::from_conn(c).map(|f| Event::Conn(f, 0)),
        Record::Dns(d) => AltRecord::from_dns(d).map(|a| Event::Alt(a, 0)),
        Record::Http(h) => AltRecord::from_http(h).map(|a| Event::Alt(a, 0)),
        Record::Ssl(s) => AltRecord::from_ssl(s).map(|a| Event::Alt(a, 0)),
        Record::Other { .. } => return Converted::Ignored,
    };
    event.map_or(Converted::Dropped, Converted::Event)
}

/// The four streams merged by time (ties: conn < dns < http < ssl).
pub struct Merged {
    streams: Vec<(KindStream, Option<Event>)>,
}

impl Merged {
    /// Merge `streams`; each one's first record is read now.
    pub fn new(streams: Vec<KindStream>) -> Merged {
        let mut streams: Vec<(KindStream, Option<Event>)> =
            streams.into_iter().map(|s| (s, None)).collect();
        streams.sort_by_key(|(s, _)| s.kind());
        for (s, head) in &mut streams {
            *head = s.next_event();
        }
        Merged { streams }
    }

    /// The next record by time, with its kind; `None` when all are read. Also says which
    /// kinds ran out since the last call.
    pub fn next(&mut self, finished: &mut Vec<LogKind>) -> Option<(LogKind, Event)> {
        let mut best: Option<usize> = None;
        for (i, (_, head)) in self.streams.iter().enumerate() {
            if let Some(e) = head {
                let better = match best.and_then(|b| self.streams[b].1.as_ref()) {
                    None => true,
                    Some(b) => e.ts().total_cmp(&b.ts()).is_lt(),
                };
                if better {
                    best = Some(i);
                }
            }
        }
        let i = best?;
        let (stream, head) = &mut self.streams[i];
        let next = stream.next_event();
        if next.is_none() {
            finished.push(stream.kind());
        }
        let event = std::mem::replace(head, next)?;
        Some((stream.kind(), event))
    }

    /// Per-kind counters.
    pub fn counts(&self) -> Vec<(LogKind, KindCounts)> {
        self.streams
            .iter()
            .map(|(s, _)| (s.kind(), s.counts.clone()))
            .collect()
    }
}
