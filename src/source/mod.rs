//! Stage 1 of the pipeline: finding the Zeek log files and reading them — `reader.rs`, the one
//! reader (plain and gzip, bounded lines, resuming at a checkpoint) of `--once` and follow
//! mode; `tail.rs`, following growing files through rotation; `checkpoint.rs`, which file is
//! which and how far it is read.

pub mod checkpoint;
pub mod reader;
pub mod tail;

pub use reader::{FileReader, LogReader, Resume, open};

use std::io;
use std::path::{Path, PathBuf};

use crate::zeek::LogKind;

/// The supported logs in `dir` (conn, dns, http, ssl under any Zeek rotation name, plain or
/// `.gz`), optionally descending into subdirectories (zeekctl's dated archive folders), sorted
/// by path so that runs are repeatable.
pub fn find_logs(dir: &Path, recursive: bool) -> io::Result<Vec<(PathBuf, LogKind)>> {
    let mut out = Vec::new();
    walk(dir, recursive, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<(PathBuf, LogKind)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => continue, // dangling symlink or vanished file
        };
        if meta.is_dir() {
            if recursive {
                walk(&path, recursive, out)?;
            }
        } else if let Some(kind) = LogKind::from_file_name(&path) {
            out.push((path, kind));
        }
    }
    Ok(())
}
