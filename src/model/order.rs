//! The contract's order of the records in a window: flows by (ts, uid, position). Everything
//! order-dependent in a window (dict key order, letters, the timeline) follows this order,
//! whatever order the records arrived in.

use compact_str::CompactString;

/// An `f64` ordered by `total_cmp`, for sort keys.
#[derive(Clone, Copy, Debug)]
pub struct TotalF64(pub f64);

impl PartialEq for TotalF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for TotalF64 {}
impl PartialOrd for TotalF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TotalF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Where a record came from: its line number in its log (0 when reloaded from Redis), then an
/// arrival counter that only separates otherwise identical keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// Line number in its file.
    pub line: u64,
    /// Arrival counter (tie-break of last resort).
    pub seq: u64,
}

/// The order of flows in a window: (ts, uid, position). The uid is stored inline (Zeek uids
/// are 18 characters), so keys are cheap to copy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// Start time.
    pub ts: TotalF64,
    /// Zeek uid.
    pub uid: CompactString,
    /// Where the record came from.
    pub pos: Position,
}

impl FlowKey {
    /// The key of a flow.
    pub fn new(ts: f64, uid: &str, pos: Position) -> FlowKey {
        FlowKey {
            ts: TotalF64(ts),
            uid: CompactString::new(uid),
            pos,
        }
    }
}
