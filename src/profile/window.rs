//! The one global, clock-aligned timewindow grid (spec README "Profiles and timewindows").

/// The grid: windows of `width` seconds on multiples of `width` since the epoch, numbered from
/// the window of the first flow the database ever received (`anchor`, that window's start).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Window width in seconds.
    pub width: f64,
    /// Start of `timewindow1` (a multiple of `width`).
    pub anchor: f64,
}

impl Grid {
    /// The grid whose `timewindow1` holds `first_ts`.
    pub fn anchored_at(first_ts: f64, width: f64) -> Grid {
        Grid {
            width,
            anchor: (first_ts / width).floor() * width,
        }
    }

    /// The window number of a timestamp: floor((ts − anchor) / width) + 1.
    pub fn index(&self, ts: f64) -> i64 {
        ((ts - self.anchor) / self.width).floor() as i64 + 1
    }

    /// The start of window `n`.
    pub fn start(&self, n: i64) -> f64 {
        self.anchor + (n - 1) as f64 * self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_aligned_windows() {
        let g = Grid::anchored_at(1582810000.123456, 3600.0);
        assert_eq!(g.anchor, 1582808400.0);
        assert_eq!(g.index(1582810000.123456), 1);
        assert_eq!(g.index(1582808400.0), 1);
        assert_eq!(g.index(1582811999.999999), 1);
        assert_eq!(g.index(1582812000.0), 2);
        assert_eq!(g.index(1582806000.0), 0);
        assert_eq!(g.index(1582804799.0), -1);
        assert_eq!(g.start(0), 1582804800.0);
        assert_eq!(g.start(2), 1582812000.0);
    }
}
