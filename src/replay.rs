//! `kalipso-ingest replay`: write a captured log directory into another one the way Zeek does —
//! header first, lines appended in time order (at `--speed` times real time, or as fast as
//! possible), in chunks that may split a line, and rotation by rename with a `#close` footer and
//! a new file with a fresh header. For tests, demos and users' reproductions.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::source::find_logs;
use crate::zeek::{LineParser, LogKind};

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The captured logs.
    pub from: PathBuf,
    /// Where to write them.
    pub to: PathBuf,
    /// Times real speed; `None`: as fast as possible.
    pub speed: Option<f64>,
    /// Rotate every this many seconds of wall time; `None`: never.
    pub rotate_every: Option<f64>,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Data lines written.
    pub lines: u64,
    /// Rotations done.
    pub rotations: u64,
}

/// One log being written.
struct Output {
    kind: LogKind,
    /// Header lines of the source (TSV), without `#open`/`#close`.
    header: Vec<String>,
    file: File,
    path: PathBuf,
}

fn read_text(path: &Path) -> io::Result<String> {
    let mut raw = Vec::new();
    File::open(path)?.read_to_end(&mut raw)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        raw = out;
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// A Zeek-style `#open`/`#close` time, unique per call (so every file's header differs).
fn stamp(n: u64) -> String {
    let t = chrono::DateTime::from_timestamp(1_767_225_600 + n as i64, 0).unwrap_or_default();
    t.format("%Y-%m-%d-%H-%M-%S").to_string()
}

impl Output {
    fn create(to: &Path, kind: LogKind, header: Vec<String>, n: u64) -> io::Result<Output> {
        let path = to.join(format!("{}.log", kind.as_str()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        if !header.is_empty() {
            let mut text = String::new();
            let has_path = header.iter().any(|h| h.starts_with("#path"));
            for (i, h) in header.iter().enumerate() {
                text.push_str(h);
                text.push('\n');
                // `#open` (unique per file) goes after `#path`, as Zeek writes it.
                if h.starts_with("#path") || (!has_path && i == 0) {
                    text.push_str(&format!("#open\t{}\n", stamp(n)));
                }
            }
            file.write_all(text.as_bytes())?;
        }
        Ok(Output {
            kind,
            header,
            file,
            path,
        })
    }

    fn rotate(&mut self, to: &Path, n: u64) -> io::Result<()> {
        if !self.header.is_empty() {
            self.file
                .write_all(format!("#close\t{}\n", stamp(n)).as_bytes())?;
        }
        let rotated = to.join(format!("{}.{}.log", self.kind.as_str(), stamp(n)));
        std::fs::rename(&self.path, rotated)?;
        *self = Output::create(to, self.kind, self.header.clone(), n + 1)?;
        Ok(())
    }
}

/// Replay `opts.from` into `opts.to`.
pub fn replay(opts: &ReplayOptions) -> io::Result<ReplayStats> {
    std::fs::create_dir_all(&opts.to)?;
    let mut lines: Vec<(f64, usize, usize, String)> = Vec::new(); // (ts, kind, order, line)
    let mut outputs: Vec<Output> = Vec::new();
    let mut stamp_n = 0u64;
    for (path, kind) in find_logs(&opts.from, false)? {
        let text = read_text(&path)?;
        let k = match outputs.iter().position(|o| o.kind == kind) {
            Some(k) => k,
            None => {
                let header: Vec<String> = text
                    .lines()
                    .take_while(|l| l.starts_with('#'))
                    .filter(|l| !l.starts_with("#open") && !l.starts_with("#close"))
                    .map(str::to_string)
                    .collect();
                stamp_n += 2;
                outputs.push(Output::create(&opts.to, kind, header, stamp_n)?);
                outputs.len() - 1
            }
        };
        let mut parser = LineParser::new(Some(kind));
        for l in text.lines() {
            if parser.meta_line(l.as_bytes()) || l.is_empty() {
                continue;
            }
            let ts = parser
                .data_line(l.as_bytes())
                .ok()
                .and_then(|r| r.ts())
                .unwrap_or(f64::NEG_INFINITY);
            let order = lines.len();
            lines.push((ts, k, order, l.to_string()));
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    let first = lines
        .iter()
        .map(|l| l.0)
        .find(|t| t.is_finite())
        .unwrap_or(0.0);
    let started = Instant::now();
    let mut last_rotation = Instant::now();
    let mut stats = ReplayStats::default();
    let mut split = 7usize;
    for (ts, k, _, line) in &lines {
        if let (Some(speed), true) = (opts.speed, ts.is_finite()) {
            let due = Duration::from_secs_f64(((ts - first) / speed).max(0.0));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if let Some(every) = opts.rotate_every {
            if last_rotation.elapsed().as_secs_f64() >= every {
                last_rotation = Instant::now();
                for o in &mut outputs {
                    stamp_n += 2;
                    o.rotate(&opts.to, stamp_n)?;
                }
                stats.rotations += 1;
            }
        }
        let o = &mut outputs[*k];
        // Written in two pieces, so a reader may see the first half of a line.
        let bytes = format!("{line}\n").into_bytes();
        split = (split * 31 + 17) % bytes.len().max(1);
        o.file.write_all(&bytes[..split])?;
        o.file.flush()?;
        o.file.write_all(&bytes[split..])?;
        stats.lines += 1;
    }
    for o in &mut outputs {
        o.file.flush()?;
    }
    Ok(stats)
}
