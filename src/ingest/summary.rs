//! The report printed at the end of a run.

use std::fmt;
use std::time::Duration;

use super::merge::KindCounts;
use crate::profile::profiler::ProfilerStats;
use crate::store::redis_store::Detections;
use crate::zeek::LogKind;

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Per log kind: files, records, malformed lines, ...
    pub logs: Vec<(LogKind, KindCounts)>,
    /// What the profiler did.
    pub stats: ProfilerStats,
    /// Profiles touched.
    pub profiles: u64,
    /// Timewindows written.
    pub windows: u64,
    /// Redis commands sent.
    pub commands: u64,
    /// Redis round trips.
    pub round_trips: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Start of `timewindow1` (epoch seconds), when any record was profiled.
    pub anchor: Option<f64>,
    /// The detected windows of the database (after the run).
    pub detections: Detections,
}

impl Summary {
    /// Malformed lines over all logs.
    pub fn malformed(&self) -> u64 {
        self.logs.iter().map(|(_, c)| c.malformed).sum()
    }

    /// Flows profiled per second of wall time.
    pub fn flows_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.flows as f64 / secs
        } else {
            0.0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kalipso-ingest summary")?;
        for (kind, c) in &self.logs {
            writeln!(
                f,
                "  {:<5} {:>10} records in {} file(s), {} malformed line(s) skipped, {} dropped (bad ts/addresses/proto){}",
                kind.as_str(),
                c.records,
                c.files,
                c.malformed,
                c.dropped,
                if c.read_errors > 0 {
                    format!(", {} read error(s)", c.read_errors)
                } else {
                    String::new()
                }
            )?;
        }
        let s = &self.stats;
        writeln!(
            f,
            "  flows profiled: {} ({} outside every profile)",
            s.flows, s.flows_unprofiled
        )?;
        writeln!(
            f,
            "  dns/http/ssl: {} joined to their conn, {} stored without one, {} without a profile{}",
            s.alts_joined,
            s.alts_orphaned,
            s.alts_unplaced,
            if s.alts_gave_up > 0 {
                format!(" ({} stopped waiting: too many pending)", s.alts_gave_up)
            } else {
                String::new()
            }
        )?;
        if s.ahead_of_the_clock > 0 {
            writeln!(
                f,
                "  more than a day ahead of the clock: {} record(s), not counted for the retention",
                s.ahead_of_the_clock
            )?;
        }
        if s.older_than_retention > 0 {
            writeln!(
                f,
                "  older than the retention: {} record(s), not stored",
                s.older_than_retention
            )?;
        }
        writeln!(
            f,
            "  profiles: {}, timewindows written: {}",
            self.profiles, self.windows
        )?;
        let d = &self.detections;
        writeln!(f, "  detected timewindows (BlockedProfTW): {}", d.count)?;
        for (window, total, text) in &d.top {
            writeln!(f, "    {window} (evidence {total}): {text}")?;
        }
        if let Some(a) = self.anchor {
            writeln!(f, "  timewindow1 starts at {a} (epoch seconds)")?;
        }
        writeln!(
            f,
            "  redis: {} commands in {} round trips",
            self.commands, self.round_trips
        )?;
        write!(
            f,
            "  elapsed: {:.2} s, {:.0} flows/s",
            self.elapsed.as_secs_f64(),
            self.flows_per_sec()
        )
    }
}
