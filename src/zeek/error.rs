//! Typed errors of the reader. A bad line is an error value, counted and skipped, never a panic.

use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

/// Why one line could not be turned into a record.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum LineErrorKind {
    /// A TSV data line whose column count differs from `#fields`.
    #[error("{found} columns where #fields has {expected}")]
    ColumnCount {
        /// Columns in `#fields`.
        expected: usize,
        /// Columns on the line.
        found: usize,
    },
    /// A TSV data line before any `#fields` header.
    #[error("data line before any #fields header")]
    NoHeader,
    /// A field value of the wrong type (unparsable number, address, bool, ...).
    #[error("field {field}: expected {expected}, got {value:?}")]
    BadValue {
        /// Zeek field name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
        /// A preview of the value.
        value: String,
    },
    /// A line that is not a valid JSON object.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A line that is neither a header, a TSV record nor a JSON object.
    #[error("not a Zeek log line")]
    Unrecognised,
    /// A line longer than the limit; it is skipped without being buffered.
    #[error("line of {len} bytes is over the {limit}-byte limit")]
    TooLong {
        /// Bytes seen (at least).
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// A bad line: which file, which line, what was wrong.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{}:{line}: {kind}{}", file.display(), if *unterminated { " (last line has no newline: file cut mid-line?)" } else { "" })]
pub struct LineError {
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line number.
    pub line: u64,
    /// True when the line was the file's last and had no newline.
    pub unterminated: bool,
    /// What was wrong.
    pub kind: LineErrorKind,
}

/// Anything the reader reports instead of a record.
#[derive(Debug, Error)]
pub enum ReadError {
    /// A malformed line; reading goes on with the next line.
    #[error(transparent)]
    Line(#[from] LineError),
    /// The file could not be read any further (e.g. a corrupt gzip stream); reading stops.
    #[error("{}: read error after line {line}: {source}", file.display())]
    Io {
        /// The file.
        file: Arc<Path>,
        /// Last line read completely.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
