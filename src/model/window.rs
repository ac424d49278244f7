//! The one global, clock-aligned timewindow grid (spec README "Profiles and timewindows") and
//! the id of one window of one profile on it.

use std::net::IpAddr;

/// Where a record is stored: a profile IP and an absolute window number on the grid
/// (`floor(ts / width)`, the same in every run; [`Grid::n`] gives its `timewindow<N>`).
/// Ordered by address, then window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WinId {
    /// The profile's address.
    pub ip: IpAddr,
    /// The absolute window number.
    pub abs: i64,
}

impl WinId {
    /// The window `abs` of the profile `ip`.
    pub fn new(ip: IpAddr, abs: i64) -> WinId {
        WinId { ip, abs }
    }
}

/// The absolute number of the window holding `ts`: `floor(ts / width)`, the same for every
/// profile and every run.
pub fn number(ts: f64, width: f64) -> i64 {
    (ts / width).floor() as i64
}

/// The grid a database uses: windows of `width` seconds on multiples of `width` since the
/// epoch, numbered from the window of the first flow the database ever received.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Window width in seconds.
    pub width: f64,
    /// Absolute number of `timewindow1` (its start is `first × width`).
    pub first: i64,
}

impl Grid {
    /// The grid whose `timewindow1` holds `first_ts`.
    pub fn anchored_at(first_ts: f64, width: f64) -> Grid {
        Grid {
            width,
            first: number(first_ts, width),
        }
    }

    /// The window number N (as in `timewindow<N>`) of an absolute window number.
    pub fn n(&self, g: i64) -> i64 {
        g - self.first + 1
    }

    /// The window number N of a timestamp: floor((ts − anchor) / width) + 1.
    pub fn index(&self, ts: f64) -> i64 {
        self.n(number(ts, self.width))
    }

    /// The start of absolute window `g`.
    pub fn start(&self, g: i64) -> f64 {
        g as f64 * self.width
    }

    /// The start of `timewindow1` (stored as `kalipso-ingest:anchor`).
    pub fn anchor(&self) -> f64 {
        self.start(self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_aligned_windows() {
        let g = Grid::anchored_at(1582810000.123456, 3600.0);
        assert_eq!(g.anchor(), 1582808400.0);
        assert_eq!(g.index(1582810000.123456), 1);
        assert_eq!(g.index(1582808400.0), 1);
        assert_eq!(g.index(1582811999.999999), 1);
        assert_eq!(g.index(1582812000.0), 2);
        assert_eq!(g.index(1582806000.0), 0);
        assert_eq!(g.index(1582804799.0), -1);
        assert_eq!(g.start(g.first - 1), 1582804800.0);
        assert_eq!(g.start(g.first + 1), 1582812000.0);
        assert_eq!(number(-0.5, 3600.0), -1);
    }
}
