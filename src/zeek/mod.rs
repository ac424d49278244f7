//! Stage 2 of the pipeline: Zeek logs (TSV or JSON lines, plain or gzip) into typed records.
//!
//! [`logname`] says which log a file is, [`parser`] turns a line into a [`Record`] (keeping the
//! header state). [`escape`] and [`time`] hold the value rules shared by both formats. No I/O:
//! files are read by `source::reader`, the one reader of `--once` and follow mode.

pub mod error;
pub mod escape;
pub mod logname;
pub mod parser;
pub mod record;
pub mod time;

pub use error::{LineError, LineErrorKind, ReadError};
pub use logname::LogKind;
pub use parser::{Format, LineParser, Parsed, ParserState, TimeBound};
pub use record::{ConnRecord, DnsRecord, Endpoints, HttpRecord, Record, SslRecord};
