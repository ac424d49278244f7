//! Stage 2 of the pipeline: Zeek logs (TSV or JSON lines, plain or gzip) into typed records.
//!
//! [`logname`] says which log a file is, [`parser`] turns a line into a [`Record`] (keeping the
//! header state), [`reader`] streams a file through the parser. [`escape`] and [`time`] hold the
//! value rules shared by both formats.

pub mod error;
pub mod escape;
pub mod logname;
pub mod parser;
pub mod reader;
pub mod record;
pub mod time;

pub use error::{LineError, LineErrorKind, ReadError};
pub use logname::LogKind;
pub use parser::{Format, LineParser, Parsed};
pub use reader::{FileReader, LogReader, open};
pub use record::{ConnRecord, DnsRecord, Endpoints, HttpRecord, Record, SslRecord};
