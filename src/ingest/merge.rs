//! Reading a finished log directory: one stream per log kind (its files one after another),
//! merged by record time so that dns/http/ssl records meet their conns while both are in
//! memory. The merge only decides *when* records reach the profiler; what ends up in Redis does
//! not depend on it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::model::alt::AltRecord;
use crate::model::flow::Flow;
use crate::source::checkpoint::FileId;
use crate::source::reader::{self, FileReader, Resume};
use crate::timeline::lines::push_sub_line;
use crate::zeek::{LogKind, ParserState, ReadError, Record, TimeBound};

/// Where a record came from: the file (its index in the run's file list), its line number,
/// and the byte offset just after its line (where to resume once it is stored), with the
/// parser's state there when it changed since the file's previous record (the checkpoint
/// carries it, so a resume needs no header replay).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// Index of the file in the run's list.
    pub file: usize,
    /// 1-based line number.
    pub line: u64,
    /// Offset after the line.
    pub end: u64,
    /// The parser's state after the line, when it changed since the file's previous record.
    pub state: Option<Arc<ParserState>>,
}

/// A file read to its end: its index in the run's list, where it ended, and the parser's
/// state there.
#[derive(Clone, Debug)]
pub struct Ended {
    /// Index of the file in the run's list.
    pub index: usize,
    /// Its end (decompressed bytes for gzip).
    pub end: u64,
    /// Its lines.
    pub line: u64,
    /// The parser's state at its end.
    pub state: ParserState,
}

/// A record converted for the profiler, with where it came from.
#[derive(Debug)]
pub enum Event {
    /// A conn flow.
    Conn(Flow, Source),
    /// A dns/http/ssl record, with its responder's port for an ssl record (its `SNI` entry,
    /// `--layout kalipso`; not part of the record, which is kept and compared without it).
    Alt(AltRecord, Option<u16>, Source),
}

impl Event {
    /// The record time.
    pub fn ts(&self) -> f64 {
        match self {
            Event::Conn(f, _) => f.ts,
            Event::Alt(a, _, _) => a.ts,
        }
    }

    /// Where it came from.
    pub fn source(&self) -> &Source {
        match self {
            Event::Conn(_, s) | Event::Alt(_, _, s) => s,
        }
    }
}

/// A file to read: its index in the run's list, its path, and the offset to resume at.
#[derive(Clone, Debug)]
pub struct FileToRead {
    /// Index in the run's file list.
    pub index: usize,
    /// Path.
    pub path: PathBuf,
    /// Where to resume (the default: from the start).
    pub resume: Resume,
    /// The identity the file had when the run listed it (its checkpoint's key): a file found
    /// at the name with another identity was rotated meanwhile and is left to the next run.
    pub id: Option<FileId>,
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
    files: VecDeque<FileToRead>,
    reader: Option<FileReader>,
    current: usize,
    /// Files read to their end.
    pub ended: Vec<Ended>,
    errors_logged: u64,
    bytes: Arc<AtomicU64>,
    /// Counters so far.
    pub counts: KindCounts,
    /// Only these fields of TSV lines are converted, every field in lines whose `ts` is below
    /// the bound ([`KindStream::only_fields`]).
    only: Option<(&'static [&'static str], Arc<TimeBound>)>,
}

impl KindStream {
    /// A stream over `files` (read in the given order) of `kind`; `bytes` counts the file
    /// bytes consumed, for progress reports.
    pub fn new(kind: LogKind, files: Vec<FileToRead>, bytes: Arc<AtomicU64>) -> KindStream {
        KindStream {
            kind,
            files: files.into(),
            reader: None,
            current: 0,
            ended: Vec::new(),
            errors_logged: 0,
            bytes,
            counts: KindCounts::default(),
            only: None,
        }
    }

    /// Convert only the fields `names` of TSV lines, for a pass that needs only a few values
    /// of each record, except in lines whose `ts` is below `whole_below` (the conn scan;
    /// [`crate::zeek::LineParser::only_fields`]).
    pub fn only_fields(
        mut self,
        names: &'static [&'static str],
        whole_below: Arc<TimeBound>,
    ) -> KindStream {
        self.only = Some((names, whole_below));
        self
    }

    /// The log kind.
    pub fn kind(&self) -> LogKind {
        self.kind
    }

    /// The next record the profiler takes, or `None` when every file is read.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.reader.is_none() {
                let f = self.files.pop_front()?;
                let opened = std::fs::File::open(&f.path)
                    .and_then(|file| {
                        let now = f.id.map(|_| FileId::of_file(&file)).transpose()?;
                        if now.is_some_and(|now| now != f.id) {
                            return Err(std::io::Error::other(
                                "rotated since the run began (another file has its name now): left to the next run",
                            ));
                        }
                        let kind = LogKind::from_file_name(&f.path);
                        reader::open_at(&f.path, file, kind, &f.resume, self.bytes.clone())
                    });
                match opened {
                    Ok((mut r, reached)) => {
                        if let Some((names, bound)) = &self.only {
                            r.only_fields(names, bound.clone());
                        }
                        if !reached {
                            tracing::warn!(
                                file = %f.path.display(),
                                offset = f.resume.offset,
                                "file is shorter than its checkpoint (truncated?): its new content is skipped"
                            );
                        }
                        self.counts.files += 1;
                        self.errors_logged = 0;
                        self.current = f.index;
                        self.reader = Some(r);
                    }
                    Err(e) => {
                        self.counts.read_errors += 1;
                        tracing::warn!(file = %f.path.display(), error = %e, "cannot open log");
                        continue;
                    }
                }
            }
            let reader = self.reader.as_mut()?;
            let item = reader.next();
            let got = match item {
                None => {
                    self.ended.push(Ended {
                        index: self.current,
                        end: reader.offset(),
                        line: reader.line_no(),
                        state: reader.state(),
                    });
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
            match got {
                Converted::Event(mut event) => {
                    self.counts.records += 1;
                    let src = Source {
                        file: self.current,
                        line: reader.line_no(),
                        end: reader.offset(),
                        state: reader.state_if_changed().map(Arc::new),
                    };
                    match &mut event {
                        Event::Conn(_, s) | Event::Alt(_, _, s) => *s = src,
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

/// A record as the profiler takes it, or why it does not.
// The record is moved out right away; boxing it would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub enum Converted {
    /// A conn flow or alt record (its `Source` still to fill in).
    Event(Event),
    /// Dropped by the spec's rules (bad ts or addresses, conn without proto).
    Dropped,
    /// A record of another log.
    Ignored,
}

/// Convert a parsed record for the profiler (dropped by the spec's rules, or ignored: another
/// log). The one place both `--once` and follow mode do it.
pub fn to_event(rec: &Record<'_>) -> Converted {
    let event = match rec {
        Record::Conn(c) => Flow::from_conn(c).map(|f| Event::Conn(f, Source::default())),
        Record::Dns(d) => {
            AltRecord::from_dns(d, push_sub_line).map(|a| Event::Alt(a, None, Source::default()))
        }
        Record::Http(h) => {
            AltRecord::from_http(h, push_sub_line).map(|a| Event::Alt(a, None, Source::default()))
        }
        Record::Ssl(s) => {
            let port = s.id.resp_p;
            AltRecord::from_ssl(s, push_sub_line).map(|a| Event::Alt(a, port, Source::default()))
        }
        Record::Other { .. } => return Converted::Ignored,
    };
    event.map_or(Converted::Dropped, Converted::Event)
}

/// What a reading thread sends: records in order, files that ended, and its counters.
enum Msg {
    Event(Event),
    Ended(Ended),
}

/// Records per message batch of a reading thread.
const BATCH: usize = 1024;

/// A [`KindStream`] read ahead by its own thread (parsing is a large part of a run, and the
/// profiler need not wait for it), delivering the same records, file ends and counters in the
/// same order.
pub struct Prefetched {
    kind: LogKind,
    rx: Option<std::sync::mpsc::Receiver<(Vec<Msg>, KindCounts)>>,
    buf: std::collections::VecDeque<Msg>,
    /// Files read to their end.
    ended: Vec<Ended>,
    counts: KindCounts,
}

impl Prefetched {
    /// Start reading `stream` in a thread.
    pub fn start(mut stream: KindStream) -> Prefetched {
        let kind = stream.kind();
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let spawned = std::thread::Builder::new()
            .name(format!("read-{}", kind.as_str()))
            .spawn(move || {
                loop {
                    let mut batch = Vec::with_capacity(BATCH);
                    let mut done = false;
                    while batch.len() < BATCH {
                        match stream.next_event() {
                            Some(e) => {
                                batch.extend(stream.ended.drain(..).map(Msg::Ended));
                                batch.push(Msg::Event(e));
                            }
                            None => {
                                batch.extend(stream.ended.drain(..).map(Msg::Ended));
                                done = true;
                                break;
                            }
                        }
                    }
                    if tx.send((batch, stream.counts.clone())).is_err() || done {
                        break;
                    }
                }
            });
        if let Err(e) = &spawned {
            tracing::error!(error = %e, "cannot start a reading thread");
        }
        Prefetched {
            kind,
            rx: spawned.ok().map(|_| rx),
            buf: Default::default(),
            ended: Vec::new(),
            counts: KindCounts::default(),
        }
    }

    /// The next record, or `None` at the end.
    fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.buf.pop_front() {
                Some(Msg::Event(e)) => return Some(e),
                Some(Msg::Ended(e)) => self.ended.push(e),
                None => {
                    let (batch, counts) = self.rx.as_ref()?.recv().ok()?;
                    self.counts = counts;
                    self.buf.extend(batch);
                }
            }
        }
    }
}

/// The four streams merged by time (ties: conn < dns < http < ssl).
pub struct Merged {
    streams: Vec<(Prefetched, Option<Event>)>,
}

impl Merged {
    /// Merge `streams`, each read ahead by its own thread; each one's first record is read now.
    pub fn new(streams: Vec<KindStream>) -> Merged {
        let mut streams: Vec<(Prefetched, Option<Event>)> = streams
            .into_iter()
            .map(|s| (Prefetched::start(s), None))
            .collect();
        streams.sort_by_key(|(s, _)| s.kind);
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
            finished.push(stream.kind);
        }
        let event = std::mem::replace(head, next)?;
        Some((stream.kind, event))
    }

    /// Files read to their end since the last call, whose records have all been taken (none
    /// is waiting as a stream's next record): (index, end offset, lines).
    pub fn take_ended(&mut self) -> Vec<Ended> {
        let mut out = Vec::new();
        let heads: Vec<usize> = self
            .streams
            .iter()
            .filter_map(|(_, h)| h.as_ref().map(|e| e.source().file))
            .collect();
        for (s, _) in &mut self.streams {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                s.ended.drain(..).partition(|e| !heads.contains(&e.index));
            out.extend(ready);
            s.ended = waiting;
        }
        out
    }

    /// Per-kind counters.
    pub fn counts(&self) -> Vec<(LogKind, KindCounts)> {
        self.streams
            .iter()
            .map(|(s, _)| (s.kind, s.counts.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "#separator \\x09\n#path\tconn\n#open\t2026-11-23-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n";

    fn conns(uids: &[&str]) -> String {
        let mut text = HEADER.to_string();
        for (i, uid) in uids.iter().enumerate() {
            text.push_str(&format!("{i}.5\t{uid}\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n"));
        }
        text
    }

    fn uids(stream: &mut KindStream) -> Vec<String> {
        std::iter::from_fn(|| stream.next_event())
            .filter_map(|e| match e {
                Event::Conn(f, _) => Some(f.uid.to_string()),
                Event::Alt(..) => None,
            })
            .collect()
    }

    #[test]
    fn a_file_rotated_after_the_run_listed_it_is_left_to_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conn.log");
        std::fs::write(&path, conns(&["C1", "C2"])).unwrap();
        let listed = FileId::of(&path).unwrap();
        let file = |id| FileToRead {
            index: 0,
            path: path.clone(),
            resume: Resume::default(),
            id,
        };
        let bytes = Arc::new(AtomicU64::new(0));
        let mut same = KindStream::new(LogKind::Conn, vec![file(listed)], bytes.clone());
        assert_eq!(uids(&mut same), ["C1", "C2"]);
        // Rotated: the old file renamed, a new one (another `#open`) at the name.
        std::fs::rename(&path, dir.path().join("conn.10:00:00-11:00:00.log")).unwrap();
        std::fs::write(&path, conns(&["C9"]).replace("10-00-00", "11-00-00")).unwrap();
        let mut swapped = KindStream::new(LogKind::Conn, vec![file(listed)], bytes.clone());
        assert!(uids(&mut swapped).is_empty());
        assert_eq!(swapped.counts.read_errors, 1);
        // Without an identity to check (not a run's file list), the name is read.
        let mut by_name = KindStream::new(LogKind::Conn, vec![file(None)], bytes);
        assert_eq!(uids(&mut by_name), ["C9"]);
    }
}
