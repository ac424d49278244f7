//! Which file is which, and how far it has been read.
//!
//! A file is identified by device and inode **plus** a fingerprint of its header block (a TSV
//! log's header lines through `#types`, which carry the `#open` time; a JSON log's first
//! record), so a file renamed by rotation keeps its identity and a new file that reuses an old
//! inode does not inherit it. A [`Checkpoint`] says how far a file has been read and what the
//! parser knew there (the header in force), so reading resumes with one seek; checkpoints are
//! written to Redis in the same transaction as the data their lines produced.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::reader::Resume;
use crate::zeek::{LogKind, ParserState};

/// The format of the stored checkpoints: 2 adds the parser's state (1, without it, is still
/// read: such a file resumes by replaying its header lines).
pub const CHECKPOINT_VERSION: u32 = 2;

/// Bytes of the first line used for the fingerprint, at most.
const FINGERPRINT_LEN: usize = 4096;

/// The identity of a log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// FNV-1a of the first line (newline included).
    pub fingerprint: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bytes that identify a file: a TSV log's whole header block (through `#types`, which
/// carries the `#open` time), a JSON log's first record; a gzip file's first bytes. `None`
/// while they are not all written yet.
fn fingerprint_bytes(buf: &[u8], full: bool) -> Option<&[u8]> {
    if buf.starts_with(&[0x1f, 0x8b]) {
        return Some(buf);
    }
    let mut end = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[end..]) {
        let line = &buf[end..end + i];
        let is_meta = line.trim_ascii_start().starts_with(b"#");
        if end == 0 && !is_meta {
            return Some(&buf[..=i]); // JSON (or headerless) log: its first record
        }
        if !is_meta {
            return Some(&buf[..end]); // the header block ended
        }
        end += i + 1;
        if line.trim_ascii_start().starts_with(b"#types") {
            return Some(&buf[..end]);
        }
    }
    (full && end > 0).then_some(&buf[..end])
}

impl FileId {
    /// The identity of the file at `path`; `Ok(None)` while its first line is not complete
    /// (a file just created: wait until Zeek has written its header).
    pub fn of(path: &Path) -> io::Result<Option<FileId>> {
        let file = File::open(path)?;
        FileId::of_file(&file)
    }

    /// The identity of an open file (reads its first bytes with `pread`, keeping the position).
    pub fn of_file(file: &File) -> io::Result<Option<FileId>> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let meta = file.metadata()?;
        let mut buf = vec![0u8; FINGERPRINT_LEN];
        let mut got = 0;
        while got < buf.len() {
            let n = file.read_at(&mut buf[got..], got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        let Some(first) = fingerprint_bytes(&buf, got == FINGERPRINT_LEN) else {
            return Ok(None);
        };
        Ok(Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: fnv1a(first),
        }))
    }

    /// The Redis hash field of this file's checkpoint.
    pub fn key(&self) -> String {
        format!("{}:{}:{:016x}", self.dev, self.ino, self.fingerprint)
    }
}

/// How far one file has been read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version ([`CHECKPOINT_VERSION`]; absent in version 1).
    #[serde(default = "version_1")]
    pub v: u32,
    /// Where the file was last seen.
    pub path: String,
    /// Its log.
    pub kind: String,
    /// Bytes consumed: the end of the last line whose effects are stored (decompressed bytes
    /// for gzip).
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    /// Whether the file is finished (read to its end after Zeek stopped writing it).
    pub done: bool,
    /// The parser's state at `offset` (the header in force).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ParserState>,
}

fn version_1() -> u32 {
    1
}

/// A stored checkpoint this build cannot use.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stored checkpoint of file {key} cannot be read ({reason}); run once with --reset to rebuild this tool's keys from the logs"
)]
pub struct CheckpointError {
    /// The file's identity key.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Checkpoint {
    /// A checkpoint of `path` (of log `kind`) at `offset`/`line`, with the parser's `state`
    /// there.
    pub fn new(
        path: &Path,
        kind: LogKind,
        offset: u64,
        line: u64,
        done: bool,
        state: Option<ParserState>,
    ) -> Checkpoint {
        Checkpoint {
            v: CHECKPOINT_VERSION,
            path: path.to_string_lossy().into_owned(),
            kind: kind.as_str().to_string(),
            offset,
            line,
            done,
            state,
        }
    }

    /// The stored JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From the JSON stored for the file `key`: an error when it does not parse or is of a
    /// newer format (never a silent fallback, which would read the file again and double it).
    pub fn from_json(key: &str, s: &str) -> Result<Checkpoint, CheckpointError> {
        let cp: Checkpoint = serde_json::from_str(s).map_err(|e| CheckpointError {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        if cp.v == 0 || cp.v > CHECKPOINT_VERSION {
            return Err(CheckpointError {
                key: key.to_string(),
                reason: format!(
                    "format version {} (this build reads 1 to {CHECKPOINT_VERSION})",
                    cp.v
                ),
            });
        }
        Ok(cp)
    }

    /// Every stored checkpoint (identity key → JSON) parsed, or the first that does not.
    pub fn parse_all(
        stored: Vec<(String, String)>,
    ) -> Result<std::collections::HashMap<String, Checkpoint>, CheckpointError> {
        stored
            .into_iter()
            .map(|(k, v)| Checkpoint::from_json(&k, &v).map(|c| (k, c)))
            .collect()
    }

    /// Where reading resumes.
    pub fn resume(&self) -> Resume {
        Resume {
            offset: self.offset,
            line: self.line,
            state: self.state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn identity_follows_renames_not_reused_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("conn.log");
        std::fs::write(
            &a,
            "#separator \\x09\n#open\t2026-11-23-10-00-00\n#fields\tts\n#types\ttime\n",
        )
        .unwrap();
        let id = FileId::of(&a).unwrap().unwrap();
        // Rotation by rename keeps the identity; appending keeps it too.
        let b = dir.path().join("conn.10:00:00-11:00:00.log");
        std::fs::rename(&a, &b).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&b)
            .unwrap()
            .write_all(b"1.0\n")
            .unwrap();
        assert_eq!(FileId::of(&b).unwrap(), Some(id));
        // A new file at the old name is another file (Zeek's header has its #open time).
        std::fs::write(
            &a,
            "#separator \\x09\n#open\t2026-11-23-11-00-00\n#fields\tts\n#types\ttime\n",
        )
        .unwrap();
        assert_ne!(FileId::of(&a).unwrap(), Some(id));
        // A file without its complete header has no identity yet.
        let d = dir.path().join("dns.log");
        std::fs::write(&d, "#separator \\x09\n#open\t2026").unwrap();
        assert_eq!(FileId::of(&d).unwrap(), None);
        std::fs::write(
            &d,
            "#separator \\x09\n#open\t2026-11-23\n#fields\tts\n#types\ttime\n",
        )
        .unwrap();
        let header_only = FileId::of(&d).unwrap().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&d)
            .unwrap()
            .write_all(b"1.0\n")
            .unwrap();
        assert_eq!(FileId::of(&d).unwrap(), Some(header_only));
        // JSON logs: the first record.
        let j = dir.path().join("ssl.log");
        std::fs::write(&j, "{\"ts\":1.0,\"uid\":\"C1\"}\n").unwrap();
        let first = FileId::of(&j).unwrap().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&j)
            .unwrap()
            .write_all(b"{}\n")
            .unwrap();
        assert_eq!(FileId::of(&j).unwrap(), Some(first));
    }

    #[test]
    fn checkpoint_round_trips() {
        let mut parser = crate::zeek::LineParser::new(Some(LogKind::Conn));
        parser.meta_line(b"#separator \\x09");
        parser.meta_line(b"#fields\tts\tuid");
        let c = Checkpoint::new(
            Path::new("/x/conn.log"),
            LogKind::Conn,
            120,
            3,
            false,
            Some(parser.state()),
        );
        assert_eq!(Checkpoint::from_json("k", &c.to_json()).ok(), Some(c));
    }

    #[test]
    fn stored_checkpoints_that_cannot_be_used_are_errors_that_say_what_to_do() {
        // Version 1 (no version, no state) is still read.
        let v1 = r#"{"path":"/x/conn.log","kind":"conn","offset":120,"line":3,"done":false}"#;
        let c = Checkpoint::from_json("k", v1).unwrap();
        assert_eq!((c.v, c.offset, c.state), (1, 120, None));
        for bad in [
            "not json",
            r#"{"path":"/x/conn.log","kind":"conn","offset":"x","line":3,"done":false}"#,
            r#"{"v":3,"path":"/x/conn.log","kind":"conn","offset":1,"line":3,"done":false}"#,
        ] {
            let e = Checkpoint::from_json("1:2:ab", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("1:2:ab") && e.contains("--reset"), "{e}");
        }
    }
}
