//! Every Redis key name of the layout, in one place (spec README, reference §5).

use std::net::IpAddr;

/// SET of every profile id.
pub const PROFILES: &str = "profiles";
/// HASH ip → enrichment JSON (`{}` until enrichment exists).
pub const IPS_INFO: &str = "IPsInfo";
/// SET of every `profile_<ip>_timewindow<N>` that received conn data.
pub const MODIFIED_TW: &str = "ModifiedTWForLogs";
/// ZSET label → number of stored flow entries.
pub const LABELS: &str = "labels";
/// HASH `<port>/<proto>` → service name (the timeline's port names, as Slips wrote them).
pub const PORTINFO: &str = "portinfo";
/// Our own keys' prefix; Kalipso only reads keys containing `timeline`.
pub const OWN_PREFIX: &str = "kalipso-ingest:";
/// The start of `timewindow1` (epoch seconds, a multiple of the width).
pub const ANCHOR: &str = "kalipso-ingest:anchor";
/// The window width the database was built with (seconds).
pub const WIDTH: &str = "kalipso-ingest:tw-width";

/// `profile_<ip>`: the profile id and its hash.
pub fn profile(ip: IpAddr) -> String {
    format!("profile_{ip}")
}

/// `twsprofile_<ip>`: ZSET of the profile's windows (no separator, as Slips).
pub fn tws(ip: IpAddr) -> String {
    format!("twsprofile_{ip}")
}

/// `timewindow<N>`.
pub fn tw_name(n: i64) -> String {
    format!("timewindow{n}")
}

/// `profile_<ip>_timewindow<N>`: the window hash (and the prefix of its companions).
pub fn window(ip: IpAddr, n: i64) -> String {
    format!("profile_{ip}_timewindow{n}")
}

/// `…_flows`: uid → flow JSON.
pub fn flows(window: &str) -> String {
    format!("{window}_flows")
}

/// `…_timeline`: the window's timeline lines (LIST).
pub fn timeline(window: &str) -> String {
    format!("{window}_timeline")
}

/// `…_altflows`: uid → last dns/http/ssl JSON.
pub fn altflows(window: &str) -> String {
    format!("{window}_altflows")
}

/// Our record of repeated uids in a window: uid → JSON list of every copy's flow JSON.
pub fn copies(window: &str) -> String {
    format!("{OWN_PREFIX}copies:{window}")
}

/// Our record of every alt record of a window: uid → JSON list of `[ts, kind, saddr, daddr, value]`.
pub fn alts(window: &str) -> String {
    format!("{OWN_PREFIX}alts:{window}")
}

/// HASH file identity → checkpoint JSON (how far each file is read).
pub const CHECKPOINTS: &str = "kalipso-ingest:checkpoints";
/// HASH uid → conn that alt records can still join (`{"w": [[ip, window], …], "e": expiry}`).
pub const JOINABLE: &str = "kalipso-ingest:joinable";
/// HASH uid → alt records waiting for their conn (`[[ts, kind, saddr, daddr, value], …]`).
pub const PENDING: &str = "kalipso-ingest:pending";
/// SET of `<ip>|<absolute window>` not finished: a timeline entry waits for its join, or (batch
/// runs) hash fields wait for the window to close. A restart reopens them.
pub const WINDOWS_WAITING: &str = "kalipso-ingest:windows-waiting";
/// HASH log kind → its latest record time.
pub const WATERMARKS: &str = "kalipso-ingest:watermarks";
/// STRING: number of flushes committed (detects a Redis that lost writes, and replies lost).
pub const FLUSH_SEQ: &str = "kalipso-ingest:flush-seq";

/// `<ip>|<absolute window>`: a window in our own sets.
pub fn win_member(ip: IpAddr, g: i64) -> String {
    format!("{ip}|{g}")
}

/// Patterns of every key this tool writes (what `--reset` removes).
pub const OWN_PATTERNS: &[&str] = &[
    "profile_*",
    "twsprofile_*",
    "kalipso-ingest:*",
    PROFILES,
    IPS_INFO,
    MODIFIED_TW,
    LABELS,
    PORTINFO,
];
