//! Every Redis key name of the layout, in one place (spec README, reference §5).

use std::net::IpAddr;

use crate::pyjson::push_ip;

/// SET of every profile id.
pub const PROFILES: &str = "profiles";
/// HASH ip → what is known of it (`{}`, or `geocountry`, `asn`, `Malicious`).
pub const IPS_INFO: &str = "IPsInfo";
/// SET of every `profile_<ip>_timewindow<N>` that received conn data.
pub const MODIFIED_TW: &str = "ModifiedTWForLogs";
/// `--layout kalipso`: HASH address → the names dns answers gave it.
pub const DNS_RESOLUTION: &str = "DNSresolution";
/// SET of every detected `profile_<ip>_timewindow<N>` (Kalipso colours them red).
pub const BLOCKED_TW: &str = "BlockedProfTW";
/// ZSET label → number of stored flow entries.
pub const LABELS: &str = "labels";
/// HASH `<port>/<proto>` → service name (the timeline's port names, as Slips wrote them).
pub const PORTINFO: &str = "portinfo";
/// Our own keys' prefix; Kalipso only reads keys containing `timeline`.
pub const OWN_PREFIX: &str = "kalipso-ingest:";
/// The start of `timewindow1` (epoch seconds, a multiple of the width).
pub const ANCHOR: &str = "kalipso-ingest:anchor";
/// The layout the database holds (`kalipso-2020`, `kalipso`); absent: `kalipso-2020`.
pub const LAYOUT: &str = "kalipso-ingest:layout";
/// With the current Kalipso's layout: the database of the server that holds `IPsInfo`.
pub const IPINFO_DB: &str = "kalipso-ingest:ipinfo-db";
/// The window width the database was built with (seconds).
pub const WIDTH: &str = "kalipso-ingest:tw-width";

/// `profile_<ip>`: the profile id and its hash.
pub fn profile(ip: IpAddr) -> String {
    with_ip("profile_", ip)
}

/// `evidenceprofile_<ip>`: the current Kalipso's HASH window name → its `Evidence`.
pub fn evidence_profile(ip: IpAddr) -> String {
    with_ip("evidenceprofile_", ip)
}

/// `twsprofile_<ip>`: ZSET of the profile's windows (no separator, as Slips).
pub fn tws(ip: IpAddr) -> String {
    with_ip("twsprofile_", ip)
}

/// `timewindow<N>`.
pub fn tw_name(n: i64) -> String {
    format!("timewindow{n}")
}

/// `profile_<ip>_timewindow<N>`: the window hash (and the prefix of its companions).
pub fn window(ip: IpAddr, n: i64) -> String {
    let mut key = with_ip("profile_", ip);
    key.push_str("_timewindow");
    key.push_str(itoa::Buffer::new().format(n));
    key
}

/// `…_flows`: uid → flow JSON.
pub fn flows(window: &str) -> String {
    [window, "_flows"].concat()
}

/// `…_timeline`: the window's timeline lines (LIST).
pub fn timeline(window: &str) -> String {
    [window, "_timeline"].concat()
}

/// `…_altflows`: uid → last dns/http/ssl JSON.
pub fn altflows(window: &str) -> String {
    [window, "_altflows"].concat()
}

/// Our record of repeated uids in a window: uid → JSON list of every copy's flow JSON.
pub fn copies(window: &str) -> String {
    [OWN_PREFIX, "copies:", window].concat()
}

/// Our record of every alt record of a window: uid → JSON list of `[ts, kind, saddr, daddr, value]`.
pub fn alts(window: &str) -> String {
    [OWN_PREFIX, "alts:", window].concat()
}

/// `--no-flows`: a window's records in our compact form (LIST of frames, `store::records`).
pub fn records(window: &str) -> String {
    [OWN_PREFIX, "recs:", window].concat()
}

/// With `--layout kalipso`: the form of our `DNSresolution` and `IPsInfo` state
/// ([`KALIPSO_STATE_VERSION`]), set with the anchor; a database of the layout without it (or
/// with another) was written by an earlier build and is refused.
pub const KALIPSO_STATE: &str = "kalipso-ingest:kalipso-state";
/// The form written now: answers and facts kept per window (session 13).
pub const KALIPSO_STATE_VERSION: &str = "2";

/// Present (`compact`) on a database written with `--no-flows`: its windows' records are in
/// [`records`] keys, not in `_flows`/`_altflows` and our copies and alt lists.
pub const RECORDS: &str = "kalipso-ingest:records";

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
/// STRING: the format of this tool's own state (`kalipso-ingest:*` besides checkpoints, which
/// carry their own `v`); written with the grid. A database with an anchor and no format key
/// was written before the key existed, in format 1.
pub const STATE_FORMAT: &str = "kalipso-ingest:state-format";
/// The format of our own state this build reads and writes.
pub const STATE_FORMAT_VERSION: u32 = 1;
/// With `--retain`: ZSET `<ip>|<absolute window>` → absolute window, every profile window
/// held (what retention removes, oldest first).
pub const WINDOWS_INDEX: &str = "kalipso-ingest:windows";
/// STRING set by the first flush with retention's index: the database is kept with it (a run
/// without `--retain` keeps the index; `--retain` on a database without it is refused).
pub const RETENTION_INDEXED: &str = "kalipso-ingest:retention-indexed";
/// With `--retain`: ZSET address → the latest absolute window it is seen in (its `IPsInfo`
/// entry is removed with that window).
pub const IP_LAST: &str = "kalipso-ingest:ip-last";
/// With `--retain`: STRING, the lowest absolute window retention keeps (every window below it
/// is removed): what a restart holds to, also when a removal ran ahead of its commit (Redis
/// full, [`crate::store::redis_store::RedisStore::make_room`]).
pub const RETAINED_FROM: &str = "kalipso-ingest:retained-from";

/// With `--retain`: ZSET absolute window → earliest record time of the profile in it (its
/// `Starttime` is the least of those kept).
pub fn first_seen(ip: IpAddr) -> String {
    with_ip("kalipso-ingest:first:", ip)
}

/// STRING: number of flushes committed (detects a Redis that lost writes, and replies lost).
pub const FLUSH_SEQ: &str = "kalipso-ingest:flush-seq";

/// `<ip>|<absolute window>`: a window in our own sets.
pub fn win_member(ip: IpAddr, g: i64) -> String {
    let mut member = with_ip("", ip);
    member.push('|');
    member.push_str(itoa::Buffer::new().format(g));
    member
}

/// `prefix` then the address, with room for a window suffix (no formatting machinery: these
/// are built for every window of every flush).
fn with_ip(prefix: &str, ip: IpAddr) -> String {
    let mut key = String::with_capacity(prefix.len() + 64);
    key.push_str(prefix);
    push_ip(&mut key, ip);
    key
}

/// Patterns of every key this tool writes (what `--reset` removes).
pub const OWN_PATTERNS: &[&str] = &[
    "profile_*",
    "twsprofile_*",
    "kalipso-ingest:*",
    PROFILES,
    IPS_INFO,
    MODIFIED_TW,
    BLOCKED_TW,
    LABELS,
    PORTINFO,
];

/// More keys of a database with the current Kalipso's layout (`--reset` removes them there
/// only: Slips wrote keys of these names too).
pub const KALIPSO_PATTERNS: &[&str] = &["evidenceprofile_*", DNS_RESOLUTION];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_as_slips_wrote_them() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(profile(v4), "profile_10.0.0.1");
        assert_eq!(tws(v6), "twsprofile_2001:db8::1");
        assert_eq!(tw_name(3), "timewindow3");
        let w = window(v6, -2);
        assert_eq!(w, "profile_2001:db8::1_timewindow-2");
        assert_eq!(flows(&w), "profile_2001:db8::1_timewindow-2_flows");
        assert_eq!(timeline(&w), "profile_2001:db8::1_timewindow-2_timeline");
        assert_eq!(altflows(&w), "profile_2001:db8::1_timewindow-2_altflows");
        assert_eq!(
            copies(&w),
            "kalipso-ingest:copies:profile_2001:db8::1_timewindow-2"
        );
        assert_eq!(
            alts(&w),
            "kalipso-ingest:alts:profile_2001:db8::1_timewindow-2"
        );
        assert_eq!(win_member(v4, 123), "10.0.0.1|123");
    }
}
