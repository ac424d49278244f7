//! Which windows still expect a conn, in a batch run: a scan of the conn logs before the run
//! records, for each window, the index of its last conn in the order the run reads them. As
//! the run reads on, a window whose last conn is in can close soon after its end; a window
//! still expecting one (Zeek writes a conn when it ends: a long connection comes late) is kept
//! open for its `hold` instead of being written, dropped and reopened from Redis.
//!
//! A daemon cannot know what is still to come, and has no schedule.

use std::collections::BTreeMap;

use super::window;

/// The index of each window's last conn.
#[derive(Clone, Debug, Default)]
pub struct ConnSchedule {
    /// Absolute window number → the index of its last conn.
    last: BTreeMap<i64, u64>,
    scanned: u64,
}

impl ConnSchedule {
    /// Count the next conn of the scan (in the order the run will read them) with its `ts`.
    pub fn conn(&mut self, ts: f64, width: f64) {
        let index = self.scanned;
        self.scanned += 1;
        let last = self.last.entry(window::number(ts, width)).or_default();
        *last = (*last).max(index);
    }

    /// Whether every conn of absolute window `g` is in once `read` conns are (a window with
    /// no conn in the scan has them all).
    pub fn all_in(&self, g: i64, read: u64) -> bool {
        self.last.get(&g).is_none_or(|last| *last < read)
    }

    /// Conns scanned.
    pub fn len(&self) -> u64 {
        self.scanned
    }

    /// Whether no conn was scanned.
    pub fn is_empty(&self) -> bool {
        self.scanned == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_has_its_conns_once_its_last_one_is_read() {
        let mut s = ConnSchedule::default();
        // Windows of 10 s: conn 0 in [0,10), 1 in [10,20), 2 a late conn of [0,10), 3 and 4
        // in [20,30).
        for ts in [1.0, 12.0, 9.5, 21.0, 25.0] {
            s.conn(ts, 10.0);
        }
        assert_eq!(s.len(), 5);
        assert!(!s.all_in(0, 2));
        assert!(s.all_in(0, 3));
        assert!(s.all_in(1, 2));
        assert!(!s.all_in(2, 4));
        assert!(s.all_in(2, 5));
        // No conn there.
        assert!(s.all_in(7, 0));
    }
}
