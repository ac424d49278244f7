//! Following growing log files: only complete lines are consumed, a partial last line waits for
//! its newline; a file renamed by rotation keeps being read through its open handle to its end;
//! a file that shrinks (copy-truncate) is read again from its start; a new file at the log's
//! name is a new file (identity: device, inode and header fingerprint).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoint, FileId};
use crate::zeek::reader::MAX_LINE;
use crate::zeek::{LineError, LineErrorKind, LineParser, LogKind, Record};

/// Bytes read from one file per call, at most (keeps memory bounded and files fair).
const READ_CHUNK: usize = 1 << 20;

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
    file: File,
    /// Offset after the last complete line consumed.
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    parser: LineParser,
    buf: Vec<u8>,
    /// Skipping an over-long line until its newline.
    skipping: bool,
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
    /// the name, which Zeek may give to a new file at any moment — from `resume` bytes,
    /// replaying the header lines before it so the schema is known.
    pub fn open(
        mut file: File,
        path: &Path,
        id: FileId,
        kind: LogKind,
        resume: u64,
        line: u64,
    ) -> io::Result<TailFile> {
        let mut parser = LineParser::new(Some(kind));
        let mut offset = 0;
        if resume > 0 {
            // Replay the header lines before the resume point (a header may change mid-file).
            let mut head = vec![0u8; resume.min(64 << 20) as usize];
            let n = read_full(&mut file, &mut head)?;
            head.truncate(n);
            for l in head.split(|b| *b == b'\n') {
                parser.meta_line(l);
            }
            offset = resume.min(n as u64);
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(TailFile {
            id,
            kind,
            path: path.to_path_buf(),
            file,
            offset,
            line,
            parser,
            buf: Vec::new(),
            skipping: false,
            gone_since: None,
            done: false,
            changed: false,
        })
    }

    /// The checkpoint of what has been consumed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(&self.path, self.kind, self.offset, self.line, self.done)
    }

    /// Read what was appended and hand on every complete line. Returns the bytes read.
    pub fn poll(&mut self, mut sink: impl FnMut(LogKind, TailItem<'_>, u64)) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let len = self.file.metadata()?.len();
        let read_to = self.offset + self.buf.len() as u64;
        if len < read_to {
            // Copy-truncate: the file was emptied and written again.
            tracing::warn!(file = %self.path.display(), "file shrank (truncated): reading it again from its start");
            self.file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
            self.line = 0;
            self.buf.clear();
            self.skipping = false;
            self.parser = LineParser::new(Some(self.kind));
            self.changed = true;
        }
        // Only what was appended (up to a chunk), read into the buffer's spare room: zeroing a
        // whole chunk per poll and file cost a tenth of the daemon's time.
        let read_to = self.offset + self.buf.len() as u64;
        let want = len.saturating_sub(read_to).min(READ_CHUNK as u64);
        let n = if want > 0 {
            (&mut self.file).take(want).read_to_end(&mut self.buf)?
        } else {
            0
        };
        let mut consumed = 0usize;
        while let Some(i) = memchr::memchr(b'\n', &self.buf[consumed..]) {
            let line = &self.buf[consumed..consumed + i];
            let end = consumed + i + 1;
            self.line += 1;
            let line_no = self.line;
            if self.skipping {
                self.skipping = false;
            } else if line.len() > MAX_LINE {
                let e = LineError {
                    file: self.path.as_path().into(),
                    line: line_no,
                    unterminated: false,
                    kind: LineErrorKind::TooLong {
                        len: line.len(),
                        limit: MAX_LINE,
                    },
                };
                sink(self.kind, TailItem::Malformed(e), self.offset + end as u64);
            } else {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() && !self.parser.meta_line(line) {
                    let at = self.offset + end as u64;
                    match self.parser.data_line(line) {
                        Ok(rec) => sink(self.kind, TailItem::Record(rec), at),
                        Err(kind) => {
                            let e = LineError {
                                file: self.path.as_path().into(),
                                line: line_no,
                                unterminated: false,
                                kind,
                            };
                            sink(self.kind, TailItem::Malformed(e), at);
                        }
                    }
                }
            }
            consumed = end;
        }
        if consumed > 0 {
            self.offset += consumed as u64;
            self.buf.drain(..consumed);
            self.changed = true;
        }
        if self.buf.len() > MAX_LINE {
            // An over-long partial line: drop what we have and skip to its newline.
            self.offset += self.buf.len() as u64;
            self.buf.clear();
            self.skipping = true;
            self.changed = true;
        }
        Ok(n)
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

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Every followed file of a directory.
pub struct Tailer {
    dir: PathBuf,
    recursive: bool,
    /// Followed files by identity.
    pub files: HashMap<FileId, TailFile>,
    /// Stored checkpoints by identity key (resume points of files not opened yet).
    checkpoints: HashMap<String, Checkpoint>,
}

impl Tailer {
    /// A tailer of `dir` resuming from `checkpoints` (identity key → checkpoint).
    pub fn new(dir: &Path, recursive: bool, checkpoints: HashMap<String, Checkpoint>) -> Tailer {
        Tailer {
            dir: dir.to_path_buf(),
            recursive,
            files: HashMap::new(),
            checkpoints,
        }
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
            let Ok(file) = File::open(&path) else {
                continue; // vanished
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
            let (resume, line) = cp.map_or((0, 0), |c| (c.offset, c.line));
            match TailFile::open(file, &path, id, kind, resume, line) {
                Ok(t) => {
                    tracing::info!(file = %path.display(), offset = resume, "following");
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
                    let at_end = t.file.metadata().map(|m| m.len()).unwrap_or(0)
                        <= t.offset + t.buf.len() as u64;
                    t.update_presence(false, at_end);
                }
            }
        }
        Ok(())
    }

    /// Read what every file appended. Returns the bytes read.
    pub fn poll(&mut self, mut sink: impl FnMut(LogKind, TailItem<'_>, u64, FileId)) -> usize {
        let mut total = 0;
        let mut ids: Vec<FileId> = self.files.keys().copied().collect();
        ids.sort();
        for id in ids {
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            match t.poll(|k, item, at| sink(k, item, at, id)) {
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
        let resume = (HEADER.len() + line("C1").len()) as u64;
        let mut t = TailFile::open(file, &p, id, LogKind::Conn, resume, 9).unwrap();
        let mut got = Vec::new();
        t.poll(|_, item, _| {
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
            .map(|(k, v)| (k, Checkpoint::from_json(&v).unwrap()))
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
}
