//! Which windows still expect a conn, in a batch run: a scan of the conn logs before the run
//! records, in the order the run reads them, the last conn of each window — and, for the few
//! conns that come late (Zeek writes a conn when it ends: a long connection comes long after
//! its start), the last one of each profile's window. As the run reads on, a window whose
//! conns are all in can close soon after its end; a window still expecting a late conn is
//! kept open for it instead of being written, dropped and reopened from Redis.
//!
//! A daemon cannot know what is still to come, and has no schedule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap as HashMap;

use crate::model::window::{self, WinId};

/// The index of each window's last conn.
#[derive(Clone, Debug, Default)]
pub struct ConnSchedule {
    /// Absolute window number → the index of its last conn that came in time.
    last: BTreeMap<i64, u64>,
    /// Profile window → the index of its last conn that came late.
    late: HashMap<WinId, u64>,
    /// The latest conn time scanned so far.
    newest: f64,
    scanned: u64,
}

impl ConnSchedule {
    /// Count the next conn of the scan (in the order the run will read them): its `ts`, the
    /// window width, and the profiles it is counted in. A conn is late when a conn `late_after`
    /// seconds past the end of its window came before it.
    pub fn conn(
        &mut self,
        ts: f64,
        width: f64,
        late_after: f64,
        profiles: impl IntoIterator<Item = IpAddr>,
    ) {
        let index = self.scanned;
        self.scanned += 1;
        let g = window::number(ts, width);
        let end = (g + 1) as f64 * width;
        if self.scanned > 1 && self.newest >= end + late_after {
            for ip in profiles {
                let last = self.late.entry(WinId::new(ip, g)).or_default();
                *last = (*last).max(index);
            }
        } else {
            let last = self.last.entry(g).or_default();
            *last = (*last).max(index);
        }
        if self.scanned == 1 || ts > self.newest {
            self.newest = ts;
        }
    }

    /// Whether every conn of window `id` is in once `read` conns are (a window with no conn
    /// in the scan has them all).
    pub fn all_in(&self, id: WinId, read: u64) -> bool {
        self.last.get(&id.abs).is_none_or(|last| *last < read)
            && self.late.get(&id).is_none_or(|last| *last < read)
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

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_window_has_its_conns_once_its_last_one_is_read() {
        let mut s = ConnSchedule::default();
        // Windows of 10 s: conn 0 in [0,10), 1 in [10,20), 2 in [0,10) but not late (the
        // newest conn is only 2 s past its end), 3 and 4 in [20,30).
        for ts in [1.0, 12.0, 9.5, 21.0, 25.0] {
            s.conn(ts, 10.0, 5.0, [ip(1)]);
        }
        assert_eq!(s.len(), 5);
        assert!(!s.all_in(WinId::new(ip(1), 0), 2));
        assert!(s.all_in(WinId::new(ip(1), 0), 3));
        assert!(s.all_in(WinId::new(ip(1), 1), 2));
        assert!(!s.all_in(WinId::new(ip(1), 2), 4));
        assert!(s.all_in(WinId::new(ip(1), 2), 5));
        // No conn there.
        assert!(s.all_in(WinId::new(ip(1), 7), 0));
    }

    #[test]
    fn a_late_conn_holds_only_its_own_profiles_window() {
        let mut s = ConnSchedule::default();
        // Conns of two hosts in [0,10) and [10,20), then one of host 2 from [0,10) written
        // when the newest conn is 15 s past that window: late.
        for (ts, host) in [(1.0, 1), (2.0, 2), (12.0, 1), (25.0, 2), (3.0, 2)] {
            s.conn(ts, 10.0, 5.0, [ip(host)]);
        }
        assert!(s.all_in(WinId::new(ip(1), 0), 2));
        assert!(!s.all_in(WinId::new(ip(2), 0), 4));
        assert!(s.all_in(WinId::new(ip(2), 0), 5));
    }
}
