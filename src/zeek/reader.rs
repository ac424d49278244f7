//! Streaming reader of one Zeek log file (plain or gzip): complete lines in, records out.
//!
//! Memory is bounded by the longest accepted line ([`MAX_LINE`]); longer lines are skipped as
//! they stream past. A final line without a newline is still parsed (a finished file may lack
//! one); if it does not parse, its error says the file may have been cut mid-line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::error::{LineError, LineErrorKind, ReadError};
use super::logname::LogKind;
use super::parser::{Format, LineParser};
use super::record::Record;

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
    too_long: Option<usize>,
    consumed: u64,
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
            too_long: None,
            consumed: 0,
        }
    }

    /// Bytes of the stream consumed so far: the end of the last line returned, newline
    /// included (decompressed bytes for gzip).
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// Number of lines returned so far (the 1-based number of the last one).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// The next line, `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        Ok(self.advance()?.then(|| self.current()))
    }

    /// Read the next line into the buffer; `false` at the end of the stream.
    pub fn advance(&mut self) -> io::Result<bool> {
        self.buf.clear();
        self.too_long = None;
        let mut len = 0usize;
        let mut too_long = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if len == 0 {
                    return Ok(false);
                }
                self.finish(len, too_long, false);
                return Ok(true);
            }
            let (take, found) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > self.limit {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..take]);
                }
            }
            len += take;
            self.inner.consume(take + usize::from(found));
            self.consumed += (take + usize::from(found)) as u64;
            if found {
                self.finish(len, too_long, true);
                return Ok(true);
            }
        }
    }

    /// The line read by the last successful [`LineReader::advance`].
    pub fn current(&self) -> RawLine<'_> {
        match self.too_long {
            Some(len) => RawLine::TooLong { len },
            None => RawLine::Line {
                bytes: &self.buf,
                terminated: self.terminated,
            },
        }
    }

    fn finish(&mut self, len: usize, too_long: bool, terminated: bool) {
        self.line_no += 1;
        self.terminated = terminated;
        self.too_long = too_long.then_some(len);
    }
}

/// Reads one log file to its end, yielding records and typed errors.
pub struct LogReader<R> {
    file: Arc<Path>,
    lines: LineReader<R>,
    parser: LineParser,
    failed: bool,
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
    reader_over(path, File::open(path)?, bytes)
}

/// [`open_counted`] of a file already open as `file` (found at `path`), from its start.
pub fn read_counted(path: &Path, file: File, bytes: Arc<AtomicU64>) -> io::Result<FileReader> {
    reader_over(path, file, bytes)
}

fn reader_over(
    path: &Path,
    inner: impl Read + Send + 'static,
    bytes: Arc<AtomicU64>,
) -> io::Result<FileReader> {
    let file = Counting { inner, bytes };
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok(LogReader::new(
        Arc::from(path),
        stream,
        LogKind::from_file_name(path),
    ))
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
        }
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

    /// The next record or error; `None` at the end of the file (or after an I/O error).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Record<'_>, ReadError>> {
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
                    self.failed = true;
                    return Some(Err(ReadError::Io {
                        file: self.file.clone(),
                        line: self.lines.line_no(),
                        source,
                    }));
                }
            }
            match self.lines.current() {
                RawLine::Line { bytes, .. } if self.parser.meta_line(bytes) => continue,
                _ => break,
            }
        }
        let (result, terminated) = match self.lines.current() {
            RawLine::Line { bytes, terminated } => (self.parser.data_line(bytes), terminated),
            RawLine::TooLong { len } => (
                Err(LineErrorKind::TooLong {
                    len,
                    limit: MAX_LINE,
                }),
                true,
            ),
        };
        Some(result.map_err(|kind| {
            ReadError::Line(LineError {
                file: self.file.clone(),
                line: self.lines.line_no(),
                unterminated: !terminated,
                kind,
            })
        }))
    }
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
}
