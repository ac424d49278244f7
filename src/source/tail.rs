//! Following growing log files: only complete lines are consumed, a partial last line waits for
//! its newline; a file renamed by rotation keeps being read through its open handle to its end;
//! a file that shrinks (copy-truncate) is read again from its start; a new file at the log's
//! name is a new file (identity: device, inode and header fingerprint).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoint, FileId};
use super::reader::{self, FileReader, MAX_LINE, Resume};
use crate::zeek::{LineError, LogKind, ReadError, Record};

/// Bytes read from one file per poll, at most (keeps every file's turn short; default of
/// [`Tailer::with_limits`]).
pub const READ_CHUNK: u64 = 1 << 20;

/// How long a file that left its name (rotated, deleted) is still read before it is done.
const GONE_GRACE: Duration = Duration::from_secs(2);

/// One followed file.
pub struct TailFile {
    /// Identity.
    pub id: FileId,
    /// Log kind.
    pub kind: LogKind,
    /// Where it was last seen.
    pub path: PathBuf,
    /// A handle of the file (its size; reading it again after a truncation).
    file: File,
    /// The reader, followed: complete lines only.
    reader: FileReader,
    /// Lines longer than this are skipped.
    line_limit: usize,
    /// Since when the file is no longer at its name (rotated away or deleted).
    gone_since: Option<Instant>,
    /// Read to its end after leaving its name: nothing more will come.
    pub done: bool,
    /// Whether the checkpoint changed since it was last taken.
    pub changed: bool,
}

/// What the tailer hands on for one line.
#[allow(clippy::large_enum_variant)] // handed on by value, never stored
pub enum TailItem<'a> {
    /// A record.
    Record(Record<'a>),
    /// A malformed line (already counted by the caller).
    Malformed(LineError),
}

impl TailFile {
    /// Follow `file` — found at `path`, identity `id` taken from this very handle, not from
    /// the name, which Zeek may give to a new file at any moment — from `resume`, with the
    /// one reader of the crate ([`reader::open_at`]: a seek to the line, the header in force
    /// from the checkpoint). Lines over `line_limit` bytes are skipped.
    pub fn open(
        file: File,
        path: &Path,
        id: FileId,
        kind: LogKind,
        resume: &Resume,
        line_limit: usize,
    ) -> io::Result<TailFile> {
        let reader = follow_reader(&file, path, kind, resume, line_limit)?;
        Ok(TailFile {
            id,
            kind,
            path: path.to_path_buf(),
            file,
            reader,
            line_limit,
            gone_since: None,
            done: false,
            changed: false,
        })
    }

    /// Offset after the last complete line consumed.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// The checkpoint of what has been consumed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(
            &self.path,
            self.kind,
            self.reader.offset(),
            self.reader.line_no(),
            self.done,
            Some(self.reader.state()),
        )
    }

    /// Read what was appended (up to `chunk` bytes) and hand on every complete line with the
    /// offset after it. Returns the bytes read.
    pub fn poll(
        &mut self,
        chunk: u64,
        mut sink: impl FnMut(LogKind, TailItem<'_>, u64),
    ) -> io::Result<u64> {
        if self.done {
            return Ok(0);
        }
        let len = self.file.metadata()?.len();
        if len < self.read_to() {
            // Copy-truncate: the file was emptied and written again.
            tracing::warn!(file = %self.path.display(), "file shrank (truncated): reading it again from its start");
            self.reader = follow_reader(
                &self.file,
                &self.path,
                self.kind,
                &Resume::default(),
                self.line_limit,
            )?;
            self.changed = true;
        }
        let start = self.read_to();
        let offset = self.reader.offset();
        while self.read_to() - start < chunk {
            let Some((item, place)) = self.reader.next_placed() else {
                break;
            };
            match item {
                Ok(rec) => sink(self.kind, TailItem::Record(rec), place.end),
                Err(ReadError::Line(e)) => sink(self.kind, TailItem::Malformed(e), place.end),
                Err(e @ ReadError::Io { .. }) => return Err(io::Error::other(e.to_string())),
            }
        }
        if self.reader.offset() != offset {
            self.changed = true;
        }
        Ok(self.read_to() - start)
    }

    /// Bytes taken from the file: complete lines and a partial one waiting for its newline.
    fn read_to(&self) -> u64 {
        self.reader.offset() + self.reader.pending()
    }

    /// Note whether the file is still at a log name; a file gone for a while and read to its
    /// end is done.
    fn update_presence(&mut self, present: bool, at_end: bool) {
        if present {
            self.gone_since = None;
            return;
        }
        let since = *self.gone_since.get_or_insert_with(Instant::now);
        if at_end && since.elapsed() >= GONE_GRACE {
            self.done = true;
            self.changed = true;
        }
    }
}

/// A followed reader of `file` from `resume`, through a handle of its own (the file is kept
/// for its size and to be read again after a truncation).
fn follow_reader(
    file: &File,
    path: &Path,
    kind: LogKind,
    resume: &Resume,
    line_limit: usize,
) -> io::Result<FileReader> {
    let (r, reached) = reader::open_at(
        path,
        file.try_clone()?,
        Some(kind),
        resume,
        Arc::new(AtomicU64::new(0)),
    )?;
    if !reached {
        tracing::warn!(file = %path.display(), offset = resume.offset, "file is not what its checkpoint says (shorter, or no line ends there): read as it grows");
    }
    Ok(r.with_line_limit(line_limit).follow())
}

/// Every followed file of a directory.
pub struct Tailer {
    dir: PathBuf,
    recursive: bool,
    /// Followed files by identity.
    pub files: HashMap<FileId, TailFile>,
    /// Stored checkpoints by identity key (resume points of files not opened yet).
    checkpoints: HashMap<String, Checkpoint>,
    /// Bytes read from one file per poll, at most.
    read_chunk: u64,
    /// Lines longer than this are skipped.
    line_limit: usize,
    /// Logs that could not be opened for lack of permission (said once per file).
    unreadable: std::collections::HashSet<PathBuf>,
}

impl Tailer {
    /// A tailer of `dir` resuming from `checkpoints` (identity key → checkpoint).
    pub fn new(dir: &Path, recursive: bool, checkpoints: HashMap<String, Checkpoint>) -> Tailer {
        Tailer {
            dir: dir.to_path_buf(),
            recursive,
            files: HashMap::new(),
            checkpoints,
            read_chunk: READ_CHUNK,
            line_limit: MAX_LINE,
            unreadable: Default::default(),
        }
    }

    /// Read at most `read_chunk` bytes of a file per poll and skip lines over `line_limit`
    /// bytes (defaults [`READ_CHUNK`], [`MAX_LINE`]; tests reach both limits through these).
    pub fn with_limits(mut self, read_chunk: u64, line_limit: usize) -> Tailer {
        self.read_chunk = read_chunk.max(1);
        self.line_limit = line_limit;
        self
    }

    /// Look for new, rotated and vanished files. Gzip'd files (finished archives) are not
    /// followed here: they are complete and belong to `--once`.
    pub fn scan(&mut self) -> io::Result<()> {
        let found = super::find_logs(&self.dir, self.recursive)?;
        let mut present: HashMap<FileId, PathBuf> = HashMap::new();
        for (path, kind) in found {
            if path.to_string_lossy().ends_with(".gz") {
                continue;
            }
            // One handle for the identity and the reading: opening the name twice could give
            // two files when it is rotated in between (the old one renamed, a new one created).
            let file = match File::open(&path) {
                Ok(f) => {
                    self.unreadable.remove(&path);
                    f
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    if self.unreadable.insert(path.clone()) {
                        tracing::warn!(
                            "cannot read {}: permission denied; the daemon's user needs read permission on the file and search (x) permission on its directories (e.g. add Zeek's group with SupplementaryGroups= in the unit, or make the logs world-readable)",
                            path.display()
                        );
                    }
                    continue;
                }
                Err(_) => continue, // vanished
            };
            let Ok(Some(id)) = FileId::of_file(&file) else {
                continue; // its header is not complete yet
            };
            present.insert(id, path.clone());
            if self.files.contains_key(&id) {
                continue;
            }
            let cp = self.checkpoints.get(&id.key()).cloned();
            if cp.as_ref().is_some_and(|c| c.done) {
                continue;
            }
            let resume = cp.map(|c| c.resume()).unwrap_or_default();
            match TailFile::open(file, &path, id, kind, &resume, self.line_limit) {
                Ok(t) => {
                    tracing::info!(file = %path.display(), offset = resume.offset, "following");
                    self.files.insert(id, t);
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot open log"),
            }
        }
        for (id, t) in self.files.iter_mut() {
            match present.get(id) {
                Some(p) => {
                    if *p != t.path {
                        tracing::info!(from = %t.path.display(), to = %p.display(), "rotated (renamed)");
                        t.path = p.clone();
                        t.changed = true;
                    }
                    t.update_presence(true, false);
                }
                None => {
                    let at_end = t.file.metadata().map(|m| m.len()).unwrap_or(0) <= t.read_to();
                    t.update_presence(false, at_end);
                }
            }
        }
        Ok(())
    }

    /// Read what every file appended. Returns the bytes read.
    pub fn poll(&mut self, mut sink: impl FnMut(LogKind, TailItem<'_>, u64, FileId)) -> u64 {
        let mut total = 0;
        let chunk = self.read_chunk;
        let mut ids: Vec<FileId> = self.files.keys().copied().collect();
        ids.sort();
        for id in ids {
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            match t.poll(chunk, |k, item, at| sink(k, item, at, id)) {
                Ok(n) => total += n,
                Err(e) => tracing::warn!(file = %t.path.display(), error = %e, "read error"),
            }
        }
        total
    }

    /// Checkpoints that changed since the last call; finished files are forgotten after theirs
    /// is taken.
    pub fn take_checkpoints(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in self.files.values_mut() {
            if t.changed {
                t.changed = false;
                let cp = t.checkpoint();
                self.checkpoints.insert(t.id.key(), cp.clone());
                out.push((t.id.key(), cp.to_json()));
            }
        }
        self.files.retain(|_, t| !t.done);
        out.sort();
        out
    }

    /// Kinds that have a followed file.
    pub fn kinds(&self) -> Vec<LogKind> {
        let mut k: Vec<LogKind> = self.files.values().map(|t| t.kind).collect();
        k.sort();
        k.dedup();
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-23-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n";

    fn line(uid: &str) -> String {
        format!("1.0\t{uid}\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n")
    }

    /// Everything the tailer hands on, as uids (or `!` for a malformed line).
    fn drain(t: &mut Tailer) -> Vec<String> {
        let mut out = Vec::new();
        t.scan().unwrap();
        t.poll(|_, item, _, _| {
            out.push(match item {
                TailItem::Record(r) => r.uid().unwrap_or("?").to_string(),
                TailItem::Malformed(_) => "!".to_string(),
            })
        });
        out
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn append(path: &Path, text: &str) {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    use std::fs::OpenOptions;

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        std::fs::write(&p, HEADER).unwrap();
        let mut t = Tailer::new(dir.path(), false, HashMap::new());
        assert!(drain(&mut t).is_empty());
        let l = line("C1");
        append(&p, &l[..10]);
        assert!(drain(&mut t).is_empty());
        append(&p, &l[10..]);
        append(&p, &line("C2"));
        assert_eq!(drain(&mut t), ["C1", "C2"]);
        let cp = t.take_checkpoints();
        assert_eq!(cp.len(), 1);
        assert!(
            cp[0]
                .1
                .contains(&format!("\"offset\":{}", HEADER.len() + 2 * l.len()))
        );
    }

    #[test]
    fn rotation_by_rename_reads_the_old_file_to_its_end_then_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        std::fs::write(&p, format!("{HEADER}{}", line("C1"))).unwrap();
        let mut t = Tailer::new(dir.path(), false, HashMap::new());
        assert_eq!(drain(&mut t), ["C1"]);
        // Zeek writes one more line, then rotates: rename and a fresh file.
        append(&p, &line("C2"));
        let rotated = dir.path().join("conn.2026-11-23-10-00-00.log");
        std::fs::rename(&p, &rotated).unwrap();
        std::fs::write(
            &p,
            format!("{}{}", HEADER.replace("10-00-00", "11-00-00"), line("C3")),
        )
        .unwrap();
        // (two files: their order relative to each other is not defined)
        assert_eq!(sorted(drain(&mut t)), ["C2", "C3"]);
        // The rotated file gets deleted (archived): nothing is read twice.
        std::fs::remove_file(&rotated).unwrap();
        append(&p, &line("C4"));
        assert_eq!(drain(&mut t), ["C4"]);
    }

    #[test]
    fn a_file_renamed_as_it_is_opened_is_read_from_the_handle_its_identity_came_from() {
        // Zeek rotates conn.log between the moment the tailer takes its identity and the
        // moment it starts reading: the resume point belongs to the old file, which must be
        // the one read (opening the name again would read the new file from the old one's
        // checkpoint: lines lost, others read twice).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        std::fs::write(&p, format!("{HEADER}{}{}", line("C1"), line("C2"))).unwrap();
        let file = File::open(&p).unwrap();
        let id = FileId::of_file(&file).unwrap().unwrap();
        std::fs::rename(&p, dir.path().join("conn.2026-11-23-10-00-00.log")).unwrap();
        std::fs::write(
            &p,
            format!("{}{}", HEADER.replace("10-00-00", "11-00-00"), line("C9")),
        )
        .unwrap();
        let resume = Resume {
            offset: (HEADER.len() + line("C1").len()) as u64,
            line: 9,
            state: None,
        };
        let mut t = TailFile::open(file, &p, id, LogKind::Conn, &resume, MAX_LINE).unwrap();
        let mut got = Vec::new();
        t.poll(READ_CHUNK, |_, item, _| {
            if let TailItem::Record(r) = item {
                got.push(r.uid().unwrap_or("?").to_string());
            }
        })
        .unwrap();
        assert_eq!(got, ["C2"]);
    }

    #[test]
    fn resuming_from_checkpoints_reads_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        std::fs::write(&p, format!("{HEADER}{}{}", line("C1"), line("C2"))).unwrap();
        let mut t = Tailer::new(dir.path(), false, HashMap::new());
        assert_eq!(drain(&mut t), ["C1", "C2"]);
        let saved: HashMap<String, Checkpoint> = t
            .take_checkpoints()
            .into_iter()
            .map(|(k, v)| (k.clone(), Checkpoint::from_json(&k, &v).unwrap()))
            .collect();
        append(&p, &line("C3"));
        // A restart: only the new line, with the header known (TSV fields by name).
        let mut t = Tailer::new(dir.path(), false, saved);
        assert_eq!(drain(&mut t), ["C3"]);
    }

    #[test]
    fn truncation_header_changes_and_late_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        std::fs::write(&p, format!("{HEADER}{}{}", line("C1"), line("C2"))).unwrap();
        let mut t = Tailer::new(dir.path(), false, HashMap::new());
        assert_eq!(drain(&mut t), ["C1", "C2"]);
        // Copy-truncate: emptied and written again (same inode): read from the start.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        append(&p, &format!("{HEADER}{}", line("C5")));
        assert_eq!(drain(&mut t), ["C5"]);
        // A header change mid-file (Zeek restarted with other fields): parsed by the new one.
        append(
            &p,
            "#fields\tuid\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\tstring\ttime\taddr\tport\taddr\tport\tenum\nC6\t2.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n",
        );
        assert_eq!(drain(&mut t), ["C6"]);
        // A log that appears later, JSON this time.
        std::fs::write(
            dir.path().join("dns.log"),
            "{\"ts\":1.0,\"uid\":\"D1\",\"id.orig_h\":\"10.0.0.1\",\"id.resp_h\":\"8.8.8.8\"}\n",
        )
        .unwrap();
        assert_eq!(drain(&mut t), ["D1"]);
        // A malformed line is handed on as such, and the next one is read.
        append(&p, "garbage\n");
        append(&p, &line("C7").replace("1.0\tC7", "C7\t1.0"));
        assert_eq!(drain(&mut t), ["!", "C7"]);
    }

    #[test]
    fn a_swapped_current_symlink_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("2026-11-23");
        let b = dir.path().join("2026-11-24");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("conn.log"), format!("{HEADER}{}", line("C1"))).unwrap();
        let current = dir.path().join("current");
        std::os::unix::fs::symlink(&a, &current).unwrap();
        let mut t = Tailer::new(&current, false, HashMap::new());
        assert_eq!(drain(&mut t), ["C1"]);
        append(&a.join("conn.log"), &line("C2"));
        std::fs::write(
            b.join("conn.log"),
            format!("{}{}", HEADER.replace("10-00-00", "00-00-00"), line("C3")),
        )
        .unwrap();
        let tmp = dir.path().join("current.new");
        std::os::unix::fs::symlink(&b, &tmp).unwrap();
        std::fs::rename(&tmp, &current).unwrap();
        assert_eq!(sorted(drain(&mut t)), ["C2", "C3"]);
    }

    #[test]
    fn the_read_chunk_and_the_line_limit_are_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        let long = line("C2").replace("10.0.0.1", &"1".repeat(80));
        std::fs::write(&p, format!("{HEADER}{}{long}{}", line("C1"), line("C3"))).unwrap();
        // Ten bytes a poll: every line still comes, in order, over many polls.
        let mut t = Tailer::new(dir.path(), false, HashMap::new()).with_limits(10, 60);
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(drain(&mut t));
        }
        assert_eq!(got, ["C1", "!", "C3"]);
    }
}
