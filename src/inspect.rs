//! `kalipso-ingest inspect`: a per-file summary of a log directory (format, `#path`, fields,
//! records, timestamps, malformed lines) — the analyst's first look, and the tests' count oracle.

use std::path::Path;

use chrono::DateTime;
use serde::Serialize;

use crate::zeek::ReadError;

/// How many errors a report keeps verbatim.
pub const KEPT_ERRORS: usize = 5;

/// What `inspect` found in one file.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// `#path` / `_path`, else the log named by the file name, else null.
    pub path: Option<String>,
    /// `tsv` or `json` (null for a file with no records and no header).
    pub format: Option<&'static str>,
    /// Fields per record (TSV: `#fields`; JSON: keys of the last record).
    pub fields: usize,
    /// Records read.
    pub records: u64,
    /// Malformed lines skipped.
    pub malformed: u64,
    /// Earliest record `ts`, epoch seconds.
    pub first_ts: Option<f64>,
    /// Latest record `ts`, epoch seconds.
    pub last_ts: Option<f64>,
    /// Lines read.
    pub lines: u64,
    /// The first few malformed-line errors.
    pub errors: Vec<String>,
    /// An error that stopped reading early (e.g. a corrupt gzip stream).
    pub read_error: Option<String>,
}

/// Read one file to its end and summarise it.
pub fn inspect_file(path: &Path) -> FileReport {
    let mut report = FileReport {
        file: path.display().to_string(),
        path: None,
        format: None,
        fields: 0,
        records: 0,
        malformed: 0,
        first_ts: None,
        last_ts: None,
        lines: 0,
        errors: Vec::new(),
        read_error: None,
    };
    let mut reader = match crate::source::open(path) {
        Ok(r) => r,
        Err(e) => {
            report.read_error = Some(format!("{}: {e}", path.display()));
            return report;
        }
    };
    while let Some(item) = reader.next() {
        match item {
            Ok(record) => {
                report.records += 1;
                if let Some(ts) = record.ts() {
                    report.first_ts = Some(report.first_ts.map_or(ts, |t| t.min(ts)));
                    report.last_ts = Some(report.last_ts.map_or(ts, |t| t.max(ts)));
                }
            }
            Err(ReadError::Line(e)) => {
                report.malformed += 1;
                if report.errors.len() < KEPT_ERRORS {
                    report.errors.push(e.to_string());
                }
            }
            Err(e @ ReadError::Io { .. }) => report.read_error = Some(e.to_string()),
        }
    }
    report.lines = reader.line_no();
    report.format = reader.format().map(|f| f.as_str());
    report.fields = reader.field_count();
    report.path = reader
        .path()
        .map(str::to_owned)
        .or_else(|| reader.kind().map(|k| k.as_str().to_owned()));
    report
}

/// The human-readable text of a report (several lines, no trailing newline).
pub fn render_text(r: &FileReport) -> String {
    let mut out = format!(
        "{}\n  format {}, path {}, {} fields, {} records, {} malformed, {} lines",
        r.file,
        r.format.unwrap_or("-"),
        r.path.as_deref().unwrap_or("-"),
        r.fields,
        r.records,
        r.malformed,
        r.lines
    );
    if let (Some(a), Some(b)) = (r.first_ts, r.last_ts) {
        out.push_str(&format!(
            "\n  ts {a:.6} .. {b:.6}  ({} .. {} UTC)",
            utc(a),
            utc(b)
        ));
    }
    for e in &r.errors {
        out.push_str(&format!("\n  malformed: {e}"));
    }
    if r.malformed > r.errors.len() as u64 {
        out.push_str(&format!(
            "\n  ... and {} more malformed lines",
            r.malformed - r.errors.len() as u64
        ));
    }
    if let Some(e) = &r.read_error {
        out.push_str(&format!("\n  READ ERROR: {e}"));
    }
    out
}

fn utc(ts: f64) -> String {
    let secs = ts.floor();
    let micros = ((ts - secs) * 1e6).round() as u32;
    DateTime::from_timestamp(secs as i64, micros.min(999_999) * 1000)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_else(|| "out of range".to_string())
}
