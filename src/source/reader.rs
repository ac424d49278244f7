//! The one reader of Zeek log files (plain or gzip), for `--once` and follow mode alike:
//! bytes in, complete lines split with a length limit, records and typed errors out.
//!
//! Memory is bounded by the longest accepted line ([`MAX_LINE`] unless set otherwise); longer
//! lines are skipped as they stream past. Read to its end (`--once`), a final line without a
//! newline is still parsed (a finished file may lack one; if it does not parse, its error says
//! the file may have been cut mid-line). Followed ([`LogReader::follow`]), a partial last line
//! waits for its newline across reads.
//!
//! Resuming ([`open_at`]): a checkpoint carries the parser's state at its line
//! ([`ParserState`]), so a plain file resumes with one seek, reading nothing before its line;
//! a gzip'd file (no seeking in a deflate stream) and a checkpoint without that state are
//! streamed to the line, replaying the header lines on the way.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use crate::zeek::parser::ParserState;
use crate::zeek::{Format, LineError, LineErrorKind, LineParser, LogKind, ReadError, Record};

/// Longest line accepted, in bytes (1 MiB).
pub const MAX_LINE: usize = 1 << 20;

/// One line as read from the file.
#[derive(Debug)]
pub enum RawLine<'a> {
    /// A line within the limit, without its newline.
    Line {
        /// The bytes.
        bytes: &'a [u8],
        /// Whether it ended with a newline.
        terminated: bool,
    },
    /// A line over the limit (its bytes were discarded).
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Splits a byte stream into lines with a length limit, reusing one buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    limit: usize,
    line_no: u64,
    terminated: bool,
    /// End of the last complete line returned.
    offset: u64,
    /// Bytes taken from the stream past `offset`: the line being read.
    pending: u64,
    /// Length of the line being read (also past the limit, where `buf` stops holding it).
    len: usize,
    /// The line being read is over the limit.
    over: bool,
    /// A partial line was left at the end of the stream, to be completed by the next read.
    carrying: bool,
    /// Followed: a partial line at the end of the stream waits for its newline.
    follow: bool,
}

impl<R: BufRead> LineReader<R> {
    /// A line reader with the given length limit.
    pub fn new(inner: R, limit: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::with_capacity(4096),
            limit,
            line_no: 0,
            terminated: false,
            offset: 0,
            pending: 0,
            len: 0,
            over: false,
            carrying: false,
            follow: false,
        }
    }

    /// Bytes of the stream consumed so far: the end of the last line returned, newline
    /// included (decompressed bytes for gzip), counted from where the stream was positioned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes taken from the stream past [`LineReader::offset`]: a partial line waiting for its
    /// newline (follow mode).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Number of lines returned so far (the 1-based number of the last one).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// The next line, `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        Ok(self.advance()?.then(|| self.current()))
    }

    /// Read the next line into the buffer; `false` at the end of the stream (followed: at the
    /// end of what is written so far, a partial line kept for the next call).
    pub fn advance(&mut self) -> io::Result<bool> {
        if !self.carrying {
            self.buf.clear();
            self.len = 0;
            self.over = false;
        }
        self.carrying = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The line read so far stays: a retry (follow mode) goes on with it.
                    self.carrying = true;
                    return Err(e);
                }
            };
            if avail.is_empty() {
                if self.pending == 0 {
                    return Ok(false);
                }
                if self.follow {
                    self.carrying = true;
                    return Ok(false);
                }
                self.finish(false);
                return Ok(true);
            }
            let (take, found) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if !self.over {
                if self.buf.len() + take > self.limit {
                    self.over = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..take]);
                }
            }
            self.len += take;
            let used = take + usize::from(found);
            self.inner.consume(used);
            self.pending += used as u64;
            if found {
                self.finish(true);
                return Ok(true);
            }
        }
    }

    /// The line read by the last successful [`LineReader::advance`].
    pub fn current(&self) -> RawLine<'_> {
        if self.over {
            return RawLine::TooLong { len: self.len };
        }
        RawLine::Line {
            bytes: &self.buf,
            terminated: self.terminated,
        }
    }

    fn finish(&mut self, terminated: bool) {
        self.line_no += 1;
        self.terminated = terminated;
        self.offset += self.pending;
        self.pending = 0;
    }
}

/// Reads one log file, yielding records and typed errors.
pub struct LogReader<R> {
    file: Arc<Path>,
    lines: LineReader<R>,
    parser: LineParser,
    failed: bool,
    /// [`LineParser::changes`] when the state was last handed on.
    handed: Option<u64>,
}

/// A reader over a boxed byte stream (what [`open`] returns).
pub type FileReader = LogReader<Box<dyn BufRead + Send>>;

/// Open a log file (gzip detected by its magic bytes) with the log kind its name suggests.
pub fn open(path: &Path) -> io::Result<FileReader> {
    open_counted(path, Arc::new(AtomicU64::new(0)))
}

/// A reader that adds the bytes it reads to a shared counter (progress reports).
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// [`open`], adding the file bytes consumed (compressed size for gzip) to `bytes`.
pub fn open_counted(path: &Path, bytes: Arc<AtomicU64>) -> io::Result<FileReader> {
    let kind = LogKind::from_file_name(path);
    open_at(path, File::open(path)?, kind, &Resume::default(), bytes).map(|(r, _)| r)
}

/// Where to resume reading a file: a line boundary, its line number, and the parser's state
/// there (`None`: unknown, the header lines before it are replayed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Bytes before the line (decompressed bytes for gzip); 0: from the start.
    pub offset: u64,
    /// Lines before it.
    pub line: u64,
    /// The parser's state at `offset`.
    pub state: Option<ParserState>,
}

/// A reader of `file` (found at `path`, holding log `kind`) from `resume`, adding the file
/// bytes it covers to `bytes`. The flag is `false` when the file does not reach `resume`, or
/// `resume.offset` is no line boundary of it (truncated, rewritten): a plain file's reader is
/// then left at `resume.offset`, a gzip'd one at its end.
pub fn open_at(
    path: &Path,
    mut file: File,
    kind: Option<LogKind>,
    resume: &Resume,
    bytes: Arc<AtomicU64>,
) -> io::Result<(FileReader, bool)> {
    let mut magic = [0u8; 2];
    let plain = file.read_at(&mut magic, 0)? < 2 || magic != [0x1f, 0x8b];
    match &resume.state {
        Some(state) if plain && resume.offset > 0 => {
            // One seek: nothing before the line is read.
            let len = file.metadata()?.len();
            let mut last = [0u8; 1];
            let reached = resume.offset <= len
                && file.read_at(&mut last, resume.offset - 1)? == 1
                && last[0] == b'\n';
            file.seek(SeekFrom::Start(resume.offset))?;
            bytes.fetch_add(resume.offset, Ordering::Relaxed);
            let mut r = reader_over(path, file, bytes, kind, false);
            r.parser = LineParser::from_state(state.clone());
            r.lines.offset = resume.offset;
            r.lines.line_no = resume.line;
            Ok((r, reached))
        }
        _ => {
            file.seek(SeekFrom::Start(0))?;
            let mut r = reader_over(path, file, bytes, kind, !plain);
            let reached = r.skip_to(resume.offset)?;
            Ok((r, reached))
        }
    }
}

fn reader_over(
    path: &Path,
    inner: impl Read + Send + 'static,
    bytes: Arc<AtomicU64>,
    kind: Option<LogKind>,
    gzip: bool,
) -> FileReader {
    let file = Counting { inner, bytes };
    let buffered = BufReader::with_capacity(1 << 16, file);
    let stream: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    LogReader::new(Arc::from(path), stream, kind)
}

/// Read a whole byte stream as a log (tests, fuzzing): records are parsed as `kind`.
pub fn from_reader<R: Read>(
    name: &str,
    inner: R,
    kind: Option<LogKind>,
) -> LogReader<BufReader<R>> {
    LogReader::new(Arc::from(Path::new(name)), BufReader::new(inner), kind)
}

impl<R: BufRead> LogReader<R> {
    /// A reader over `inner`, named `file` in errors, parsing records as `kind` until
    /// `#path`/`_path` says otherwise.
    pub fn new(file: Arc<Path>, inner: R, kind: Option<LogKind>) -> LogReader<R> {
        LogReader {
            file,
            lines: LineReader::new(inner, MAX_LINE),
            parser: LineParser::new(kind),
            failed: false,
            handed: None,
        }
    }

    /// Convert only the fields `names` of TSV lines, every field in lines whose `ts` is below
    /// `whole_below` ([`LineParser::only_fields`]).
    pub fn only_fields(
        &mut self,
        names: &'static [&'static str],
        whole_below: Arc<crate::zeek::TimeBound>,
    ) {
        self.parser.only_fields(names, whole_below);
    }

    /// Lines longer than `limit` bytes are skipped (default [`MAX_LINE`]).
    pub fn with_line_limit(mut self, limit: usize) -> Self {
        self.lines.limit = limit;
        self
    }

    /// Follow a growing file: at the end of what is written, a partial last line waits for its
    /// newline instead of being parsed, and [`LogReader::next`] can be called again for what
    /// comes next; an I/O error does not end the reader.
    pub fn follow(mut self) -> Self {
        self.lines.follow = true;
        self
    }

    /// The parser's state after the last line read: with [`LogReader::offset`], where to
    /// resume ([`Resume`]).
    pub fn state(&self) -> ParserState {
        self.parser.state()
    }

    /// [`LogReader::state`] when it may have changed since the last call (the first call:
    /// always), else `None`.
    pub fn state_if_changed(&mut self) -> Option<ParserState> {
        let changes = self.parser.changes();
        if self.handed == Some(changes) {
            return None;
        }
        self.handed = Some(changes);
        Some(self.parser.state())
    }

    /// Bytes read past [`LogReader::offset`]: a partial line waiting for its newline.
    pub fn pending(&self) -> u64 {
        self.lines.pending()
    }

    /// The file being read.
    pub fn file(&self) -> &Arc<Path> {
        &self.file
    }

    /// The log kind records are parsed as.
    pub fn kind(&self) -> Option<LogKind> {
        self.parser.kind()
    }

    /// The format of the current header block, once known.
    pub fn format(&self) -> Option<Format> {
        self.parser.format()
    }

    /// `#path` / `_path`, when seen.
    pub fn path(&self) -> Option<&str> {
        self.parser.path()
    }

    /// Fields per record in the current schema.
    pub fn field_count(&self) -> usize {
        self.parser.field_count()
    }

    /// Lines read so far.
    pub fn line_no(&self) -> u64 {
        self.lines.line_no()
    }

    /// Bytes consumed so far (the end of the last line read, newline included; decompressed
    /// bytes for gzip): where to resume after it.
    pub fn offset(&self) -> u64 {
        self.lines.offset()
    }

    /// Resume at `offset` (a line boundary returned by [`LogReader::offset`] earlier): the lines
    /// before it are read again but only their header lines are parsed, so the schema in force
    /// at `offset` is known. Returns `false` when the stream ends before `offset`.
    pub fn skip_to(&mut self, offset: u64) -> io::Result<bool> {
        while self.lines.offset() < offset {
            if !self.lines.advance()? {
                return Ok(false);
            }
            if let RawLine::Line { bytes, .. } = self.lines.current() {
                self.parser.meta_line(bytes);
            }
        }
        Ok(self.lines.offset() == offset)
    }

    /// The next record or error; `None` at the end of the file (or after an I/O error; followed:
    /// at the end of what is written so far).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Record<'_>, ReadError>> {
        self.next_placed().map(|(item, _)| item)
    }

    /// [`LogReader::next`] with where its line is in the file.
    pub fn next_placed(&mut self) -> Option<(Result<Record<'_>, ReadError>, Place)> {
        if self.failed {
            return None;
        }
        // Skip header and comment lines first, so the record returned below borrows the
        // line buffer only once.
        loop {
            match self.lines.advance() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(source) => {
                    self.failed = !self.lines.follow;
                    let place = self.place();
                    return Some((
                        Err(ReadError::Io {
                            file: self.file.clone(),
                            line: self.lines.line_no(),
                            source,
                        }),
                        place,
                    ));
                }
            }
            match self.lines.current() {
                RawLine::Line { bytes, .. } if self.parser.meta_line(bytes) => continue,
                _ => break,
            }
        }
        let place = self.place();
        let (result, terminated) = match self.lines.current() {
            RawLine::Line { bytes, terminated } => (self.parser.data_line(bytes), terminated),
            RawLine::TooLong { len } => (
                Err(LineErrorKind::TooLong {
                    len,
                    limit: self.lines.limit,
                }),
                true,
            ),
        };
        let result = result.map_err(|kind| {
            ReadError::Line(LineError {
                file: self.file.clone(),
                line: place.line,
                unterminated: !terminated,
                kind,
            })
        });
        Some((result, place))
    }

    fn place(&self) -> Place {
        Place {
            line: self.lines.line_no(),
            end: self.lines.offset(),
        }
    }
}

/// Where a line is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Its 1-based number.
    pub line: u64,
    /// The offset after it (newline included).
    pub end: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_and_counted() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100));
        data.extend(b"\nb\nlast");
        let mut r = LineReader::new(io::BufReader::with_capacity(7, &data[..]), 50);
        let mut seen = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            seen.push(match line {
                RawLine::Line { bytes, terminated } => {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(bytes),
                        if terminated { "" } else { "<eof>" }
                    )
                }
                RawLine::TooLong { len } => format!("long {len}"),
            });
        }
        assert_eq!(seen, ["a", "long 100", "b", "last<eof>"]);
        assert_eq!(r.line_no(), 4);
    }

    /// Every record (as text), error (`!line`) and the place after it.
    fn all_from(r: &mut FileReader) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        while let Some((item, place)) = r.next_placed() {
            let text = match item {
                Ok(rec) => format!("{:?}", rec.into_owned()),
                Err(ReadError::Line(e)) => format!("!{}", e.line),
                Err(e) => format!("io {e}"),
            };
            out.push((text, place.line, place.end));
        }
        out
    }

    /// A log with everything a resume must carry over: two TSV header blocks with other
    /// columns and separators, a `#close` and a JSON run, a CRLF line, a blank line, an
    /// over-long line and a malformed one.
    fn tricky_log() -> String {
        let mut t = String::new();
        t.push_str("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n");
        t.push_str("1.0\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n");
        t.push_str("2.0\tC2\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\r\n\n");
        t.push_str(&format!(
            "3.0\tC3\t{}\t1\t10.0.0.2\t2\ttcp\n",
            "9".repeat(300)
        ));
        t.push_str("garbage\n");
        t.push_str("#close\t2026-12-01-11-00-00\n");
        t.push_str("#separator |\n#path|conn\n#fields|uid|ts|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto\n#types|string|time|addr|port|addr|port|enum\n");
        t.push_str("C4|4.0|10.0.0.3|1|10.0.0.4|2|udp\n");
        t.push_str("C5|5.0|10.0.0.3|1|10.0.0.4|2|udp\n");
        t.push_str("#close|2026-12-01-12-00-00\n");
        t.push_str("{\"ts\":6.0,\"uid\":\"C6\",\"id.orig_h\":\"10.0.0.5\",\"id.orig_p\":1,\"id.resp_h\":\"10.0.0.6\",\"id.resp_p\":2,\"proto\":\"tcp\"}\n");
        t.push_str("{\"ts\":7.0,\"uid\":\"C7\",\"id.orig_h\":\"10.0.0.5\",\"id.orig_p\":1,\"id.resp_h\":\"10.0.0.6\",\"id.resp_p\":2,\"proto\":\"tcp\"}\n");
        t
    }

    fn open_file(path: &Path, resume: &Resume) -> (FileReader, bool) {
        let file = File::open(path).unwrap();
        let (r, reached) =
            open_at(path, file, Some(LogKind::Conn), resume, Arc::default()).unwrap();
        (r.with_line_limit(200), reached)
    }

    #[test]
    fn a_resume_at_any_line_gives_the_rest_of_a_whole_read_without_reading_what_is_before() {
        let dir = tempfile::tempdir().unwrap();
        let text = tricky_log();
        let plain = dir.path().join("conn.log");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("conn.log.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();

        let whole = all_from(&mut open_file(&plain, &Resume::default()).0);
        assert_eq!(
            whole.iter().filter(|r| !r.0.starts_with('!')).count(),
            6,
            "{whole:?}"
        );
        assert_eq!(whole.iter().filter(|r| r.0.starts_with('!')).count(), 2);
        // Every line boundary, with the state a reader had there (its checkpoint).
        let mut bounds = vec![(0u64, 0u64)];
        let mut at = 0;
        for (n, l) in text.split_inclusive('\n').enumerate() {
            at += l.len() as u64;
            bounds.push((at, n as u64 + 1));
        }
        for (offset, line) in bounds {
            let mut r = open_file(&plain, &Resume::default()).0;
            assert!(r.skip_to(offset).unwrap());
            let cp = crate::source::checkpoint::Checkpoint::new(
                &plain,
                LogKind::Conn,
                offset,
                line,
                false,
                Some(r.state()),
            );
            let cp = crate::source::checkpoint::Checkpoint::from_json("k", &cp.to_json()).unwrap();
            let want: Vec<_> = whole.iter().filter(|r| r.2 > offset).cloned().collect();
            // Plain: one seek. Every byte before the line overwritten: nothing changes.
            let mut blanked = text.clone().into_bytes();
            for b in &mut blanked[..(offset as usize).saturating_sub(1)] {
                *b = b'?';
            }
            let blank = dir.path().join("blank.conn.log");
            std::fs::write(&blank, &blanked).unwrap();
            let (mut r, reached) = open_file(&blank, &cp.resume());
            assert!(reached);
            assert_eq!(all_from(&mut r), want, "plain resume at {offset}");
            // Gzip (no seeking), and a checkpoint without the state (version 1): streamed.
            let (mut r, reached) = open_file(&gz, &cp.resume());
            assert!(reached);
            assert_eq!(all_from(&mut r), want, "gzip resume at {offset}");
            let v1 = Resume {
                state: None,
                ..cp.resume()
            };
            let (mut r, reached) = open_file(&plain, &v1);
            assert!(reached);
            assert_eq!(all_from(&mut r), want, "replayed resume at {offset}");
        }
        // A checkpoint that is no line boundary of the file, or past its end.
        let r = open_file(&plain, &Resume::default()).0;
        let state = Some(r.state());
        for offset in [5, text.len() as u64 + 10] {
            let resume = Resume {
                offset,
                line: 1,
                state: state.clone(),
            };
            assert!(!open_file(&plain, &resume).1, "{offset}");
        }
    }

    #[test]
    fn a_followed_reader_waits_for_the_newline_of_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conn.log");
        let text = tricky_log();
        let cut = text.find("C5|").unwrap() + 4;
        std::fs::write(&p, &text[..cut]).unwrap();
        let (r, _) = open_file(&p, &Resume::default());
        let mut r = r.follow();
        let first = all_from(&mut r);
        assert_eq!(r.pending(), 4);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, &text.as_bytes()[cut..]).unwrap();
        let mut got = first;
        got.extend(all_from(&mut r));
        assert_eq!(got, all_from(&mut open_file(&p, &Resume::default()).0));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.offset(), text.len() as u64);
    }

    /// Gives its bytes in pieces, with one error between two of them.
    struct Flaky {
        parts: Vec<&'static [u8]>,
        fail_at: usize,
    }

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at == 0 {
                self.fail_at = usize::MAX;
                return Err(io::Error::other("flaky"));
            }
            self.fail_at = self.fail_at.saturating_sub(1);
            if self.parts.is_empty() {
                return Ok(0);
            }
            let p = self.parts.remove(0);
            buf[..p.len()].copy_from_slice(p);
            Ok(p.len())
        }
    }

    #[test]
    fn an_io_error_in_the_middle_of_a_line_keeps_what_was_read() {
        let inner = Flaky {
            parts: vec![b"one\ntw", b"o\nthree\n"],
            fail_at: 1,
        };
        let mut r = LineReader::new(io::BufReader::with_capacity(64, inner), 100);
        r.follow = true;
        let mut seen = Vec::new();
        for _ in 0..10 {
            match r.next_line() {
                Ok(Some(RawLine::Line { bytes, .. })) => {
                    seen.push(String::from_utf8_lossy(bytes).into_owned())
                }
                Ok(Some(RawLine::TooLong { .. })) => seen.push("long".into()),
                Ok(None) => {}
                Err(_) => seen.push("err".into()),
            }
        }
        assert_eq!(seen, ["one", "err", "two", "three"]);
        assert_eq!(r.offset(), 14);
    }
}
