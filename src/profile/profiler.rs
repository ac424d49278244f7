//! The profiler: places every conn and alt record into profiles and timewindows, keeps the open
//! windows in memory, and hands the store complete values to write.
//!
//! No I/O here. The driver feeds records, asks which windows and profiles must first be merged
//! with what Redis already holds ([`Profiler::load_request`]), merges them, then takes the
//! writes ([`Profiler::take_writes`]) and lets old windows go ([`Profiler::evict`]). A record
//! that arrives for a window already written and evicted reopens it; the reload merges the
//! stored records back, so the result does not depend on when windows were evicted.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;

use super::evidence::Judge;
use super::routing::Routing;
use super::schedule::ConnSchedule;
use super::window_state::{WindowState, WindowWrite};
use crate::join::{JoinChanges, UidJoin};
use crate::model::alt::AltRecord;
use crate::model::flow::{Flow, Role, Roles};
use crate::model::order::Position;
use crate::model::window::WinId;
use crate::timeline::TimelineStyle;
use crate::zeek::LogKind;

/// When the hash fields of a window that is still filling are written (a closing window's
/// always are); timeline lines and flows go at every flush either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldsEvery {
    /// At every flush that changes them.
    Flush,
    /// At the window's first flush, then again once this long (wall time) has passed: the
    /// daemon, so that a new window shows at once and rendering large fields does not limit
    /// how fast it follows.
    Interval(std::time::Duration),
    /// Never before the window closes: batch runs, whose fields are then rendered once.
    Close,
}

/// The settings the profiler works with.
#[derive(Clone, Debug)]
pub struct ProfilerConfig {
    /// Home networks and direction.
    pub routing: Routing,
    /// Window width in seconds.
    pub width: f64,
    /// The `label` of every stored flow.
    pub label: String,
    /// How long (log time) a window stays in memory after its end before it is written for the
    /// last time and dropped. Records arriving later reopen it from Redis.
    pub hold: f64,
    /// How long a window the conn schedule says still expects a conn stays after its end
    /// (batch runs, [`Profiler::set_conn_schedule`]); `None`: `hold`.
    pub hold_for_late_conn: Option<f64>,
    /// How long after a conn's end (log time) an alt record can still join it.
    pub join_grace: f64,
    /// Port names and clock of the timeline.
    pub style: TimelineStyle,
    /// When a window's hash fields are written while it fills; always when it closes.
    /// Windows whose fields wait are persisted: a restart reopens and rewrites them.
    pub fields_every: FieldsEvery,
    /// Most time a flush spends rendering window fields (`None`: no limit). Windows past it
    /// wait for the next flush (closing ones stay in memory until then), so that the windows
    /// whose fields fell due together — or closed together — are spread over several flushes
    /// instead of delaying one.
    pub fields_budget: Option<std::time::Duration>,
    /// Retention in seconds of data time (`--retain`): a window whose end is older than the
    /// newest record time minus this is removed, and records for it are not stored.
    pub retain: Option<f64>,
    /// Keep the index retention needs (on with `retain`, and on a database kept with it even
    /// in a run without: its index must not go stale).
    pub index: bool,
    /// Evidence (Σ threat level × confidence) at which a window is detected: the detection
    /// threshold × width / 60.
    pub detection: f64,
    /// `--no-flows`: windows write their records in our compact form (`model::records`),
    /// not as `_flows`/`_altflows` and our copies and alt lists.
    pub no_flows: bool,
}

impl ProfilerConfig {
    /// The end time of absolute window `g`.
    pub fn window_end(&self, g: i64) -> f64 {
        (g + 1) as f64 * self.width
    }

    /// Defaults: one window of hold, 60 s join grace, label `unknown`.
    pub fn new(routing: Routing, width: f64) -> ProfilerConfig {
        ProfilerConfig {
            routing,
            width,
            label: "unknown".into(),
            hold: width,
            hold_for_late_conn: None,
            join_grace: 60.0,
            style: TimelineStyle::default(),
            detection: 0.1 * width / 60.0,
            fields_every: FieldsEvery::Flush,
            fields_budget: None,
            retain: None,
            index: false,
            no_flows: false,
        }
    }
}

/// Counters of what the profiler did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilerStats {
    /// Conn flows placed in at least one profile window.
    pub flows: u64,
    /// Conn flows that touched no profile window (outside the home net, or `out` mode inbound).
    pub flows_unprofiled: u64,
    /// Alt records joined to their conn.
    pub alts_joined: u64,
    /// Alt records whose conn never came, stored under their own source profile.
    pub alts_orphaned: u64,
    /// Alt records neither joined nor storable (no conn, source outside the home net).
    pub alts_unplaced: u64,
    /// Alt records that stopped waiting for their conn because too many were waiting
    /// (included in `alts_orphaned`/`alts_unplaced`).
    pub alts_gave_up: u64,
    /// Windows reopened after eviction.
    pub reopened: u64,
    /// Records (conns and dns/http/ssl) for a window already past the retention: counted,
    /// not stored.
    pub older_than_retention: u64,
    /// Records more than a day ahead of the wall clock (they do not move retention's clock).
    pub ahead_of_the_clock: u64,
}

#[derive(Debug)]
struct ProfileInfo {
    /// The earliest record time seen for this profile.
    starttime: f64,
    /// What Redis holds (after a load or our write); `None`: nothing yet.
    stored: Option<f64>,
    /// Whether Redis's value has been merged in (or is known not to exist).
    loaded: bool,
    /// The latest absolute window the profile was touched in (retention forgets profiles
    /// whose windows are all past it, so memory stays bounded however many addresses come).
    last: i64,
}

/// What the store must read before the next write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadRequest {
    /// Windows whose stored records must be merged in.
    pub windows: Vec<WinId>,
    /// Profiles whose stored `Starttime` must be merged in.
    pub profiles: Vec<IpAddr>,
    /// `--no-flows`: closing windows whose stored frames of records are read back to be
    /// written again as one.
    pub records_logs: Vec<WinId>,
}

impl LoadRequest {
    /// Whether nothing needs loading.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.profiles.is_empty() && self.records_logs.is_empty()
    }
}

/// A window's stored content, read back from Redis.
#[derive(Clone, Debug, Default)]
pub struct StoredWindow {
    /// Every flow copy.
    pub flows: Vec<Flow>,
    /// Every alt record.
    pub alts: Vec<AltRecord>,
}

/// What a previous run left in Redis besides the layout (see [`Profiler::restore`]).
#[derive(Clone, Debug, Default)]
pub struct PersistedState {
    /// uid → joinable conn JSON.
    pub joinable: Vec<(String, String)>,
    /// uid → waiting alt records JSON.
    pub pending: Vec<(String, String)>,
    /// Windows whose timeline waited for a join.
    pub timeline_waiting: Vec<WinId>,
    /// Each log's latest record time.
    pub watermarks: Vec<(LogKind, f64)>,
    /// Retention's stored bound ([`crate::store::keys::RETAINED_FROM`]), if any.
    pub retained_from: Option<i64>,
}

/// Everything one flush writes.
#[derive(Debug, Default)]
pub struct Writes {
    /// Profiles whose hash (`Starttime`, `duration`) must be (re)written, with the start.
    pub profiles: Vec<(IpAddr, f64)>,
    /// IPs to register in `IPsInfo`, with what is known of them (`{}`: nothing; written only
    /// where the entry is absent or `{}`).
    pub ips: Vec<(IpAddr, String)>,
    /// Changed windows.
    pub windows: Vec<(WinId, WindowWrite)>,
    /// With `--retain`: what the store's index of windows needs, and what to remove.
    pub retention: Option<RetentionWrite>,
    /// `portinfo` fields (the first flush of a run only).
    pub portinfo: Vec<(String, String)>,
    /// Join state to persist (so a restart joins exactly as an uninterrupted run).
    pub join: JoinChanges,
    /// Windows whose timeline waits for a join (`true`) or no longer does (`false`).
    pub timeline_waiting: Vec<(WinId, bool)>,
    /// Each log's latest record time.
    pub watermarks: Vec<(LogKind, f64)>,
    /// `--layout kalipso`: dns answers for `DNSresolution`.
    pub dns: Vec<DnsAnswer>,
    /// `--layout kalipso`: what records say of an address for its `IPsInfo` entry (`SNI`,
    /// `reverse_dns`), each with the address's `IPsInfo` value from the enrichment.
    pub facts: Vec<(IpFact, String)>,
}

/// What one record says of an address for its `IPsInfo` entry (`--layout kalipso`).
#[derive(Clone, Debug, PartialEq)]
pub struct IpFact {
    /// The address.
    pub ip: IpAddr,
    /// An ssl record's server name to this port (`SNI`), or a PTR answer (`reverse_dns`).
    pub kind: FactKind,
    /// The name.
    pub name: String,
    /// The record's time.
    pub ts: f64,
    /// Its uid.
    pub uid: String,
    /// The absolute window of the record's time (retention removes the fact with it).
    pub abs: i64,
}

/// Which part of `IPsInfo` an [`IpFact`] feeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FactKind {
    /// `SNI`: the server name of an ssl record to the address, with the record's port.
    Sni(u16),
    /// `reverse_dns`: the first name a PTR record for the address's reverse name answers.
    Ptr,
}

/// The address a reverse name stands for (`4.3.2.1.in-addr.arpa`, the 32 nibbles of an
/// `ip6.arpa` name), if it is one.
pub fn reverse_name_address(query: &str) -> Option<IpAddr> {
    let q = query
        .strip_suffix('.')
        .unwrap_or(query)
        .to_ascii_lowercase();
    if let Some(v4) = q.strip_suffix(".in-addr.arpa") {
        let parts: Vec<&str> = v4.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (o, p) in octets.iter_mut().zip(parts.iter().rev()) {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        return Some(IpAddr::from(octets));
    }
    let v6 = q.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = v6.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut bits: u128 = 0;
    for n in nibbles.iter().rev() {
        if n.len() != 1 {
            return None;
        }
        bits = (bits << 4) | u128::from(u8::from_str_radix(n, 16).ok()?);
    }
    Some(IpAddr::from(bits.to_be_bytes()))
}

/// A dns record's answer, as `DNSresolution` keeps it (`--layout kalipso`).
#[derive(Clone, Debug, PartialEq)]
pub struct DnsAnswer {
    /// The address answered.
    pub ip: IpAddr,
    /// The name asked.
    pub query: String,
    /// The record's time and uid.
    pub ts: f64,
    /// Its uid.
    pub uid: String,
    /// Who asked.
    pub by: IpAddr,
    /// The absolute window of the record's time.
    pub abs: i64,
}

/// What a dns record gives `--layout kalipso`: the answers Slips kept in `DNSresolution`
/// (type A or AAAA, an address, not for a reverse (`arpa`) name, and not a loopback or
/// unspecified answer unless the name is `localhost`), and, for a PTR record of an address's
/// reverse name, the first name it answers that is not itself a reverse name (an RFC 2317
/// delegation answers a CNAME into another `in-addr.arpa` zone first): `reverse_dns`.
fn dns_facts(alt: &AltRecord, abs: i64) -> (Vec<DnsAnswer>, Option<IpFact>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&alt.json) else {
        return (Vec::new(), None);
    };
    let qtype = v.get("qtype_name").and_then(|q| q.as_str()).unwrap_or("");
    let query = alt.name.as_str();
    let answers = v.get("answers").and_then(|a| a.as_array());
    if qtype == "PTR" {
        let fact = reverse_name_address(query).and_then(|ip| {
            let name = answers?.iter().filter_map(|a| a.as_str()).find(|a| {
                let a = a.strip_suffix('.').unwrap_or(a).to_ascii_lowercase();
                !a.is_empty() && a != "-" && !a.ends_with(".arpa")
            })?;
            Some(IpFact {
                ip,
                kind: FactKind::Ptr,
                name: name.to_string(),
                ts: alt.ts,
                uid: alt.uid.to_string(),
                abs,
            })
        });
        return (Vec::new(), fact);
    }
    if !(qtype == "A" || qtype == "AAAA") || query.is_empty() || query.ends_with("arpa") {
        return (Vec::new(), None);
    }
    let found = answers
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.parse::<IpAddr>().ok())
        .filter(|ip| (!ip.is_loopback() && !ip.is_unspecified()) || query.contains("localhost"))
        .map(|ip| DnsAnswer {
            ip,
            query: query.to_string(),
            ts: alt.ts,
            uid: alt.uid.to_string(),
            by: alt.saddr,
            abs,
        })
        .collect();
    (found, None)
}

impl Writes {
    /// Whether the flush changes nothing in the layout or our state (the port table and the
    /// watermarks are rewritten with anything else).
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
            && self.ips.is_empty()
            && self.dns.is_empty()
            && self.facts.is_empty()
            && self.windows.is_empty()
            && self.join.conns.is_empty()
            && self.join.pending.is_empty()
            && self.timeline_waiting.is_empty()
    }
}

/// A flush's part of retention (`--retain`): the index entries of what it touched, and the
/// windows it removes — every window numbered below `expire_below`, with what belongs to it
/// (see `docs/decisions.md`, "Retention").
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RetentionWrite {
    /// Absolute windows below this number are removed.
    pub expire_below: i64,
    /// Each profile window touched since the last flush, with its earliest record time (a
    /// profile's `Starttime` is the least of these over its windows that are kept).
    pub touched: Vec<(WinId, f64)>,
    /// Each address seen since the last flush (as a profile or a flow's peer), with the latest
    /// window it was seen in (its `IPsInfo` entry goes with the last such window).
    pub ips: Vec<(IpAddr, i64)>,
    /// Profiles whose `Starttime` (or existence) must be settled after the removal.
    pub profiles: Vec<IpAddr>,
}

/// How far ahead of the wall clock a record time may be and still move retention's clock.
pub const FUTURE_SLACK: f64 = 86_400.0;

/// The profiler.
#[derive(Debug)]
pub struct Profiler {
    cfg: ProfilerConfig,
    profiles: HashMap<IpAddr, ProfileInfo>,
    windows: HashMap<WinId, WindowState>,
    evicted: HashSet<WinId>,
    /// Whether Redis may hold windows and profiles this process has not seen (the database
    /// already had data when we started).
    store_has_history: bool,
    ips_known: HashSet<IpAddr>,
    ips_new: Vec<IpAddr>,
    /// `--layout kalipso`: dns answers since the last flush.
    dns_new: Vec<DnsAnswer>,
    /// `--layout kalipso`: `IPsInfo` facts since the last flush.
    facts_new: Vec<IpFact>,
    join: UidJoin,
    watermarks: HashMap<LogKind, f64>,
    finished: HashSet<LogKind>,
    seq: u64,
    portinfo_written: bool,
    /// Windows whose timeline was waiting at the last write (persisted).
    timeline_waiting: HashSet<WinId>,
    /// Which windows still expect a conn (a batch run's scan of its conn logs), and how many
    /// conns are read: see [`Profiler::set_conn_schedule`].
    schedule: Option<(ConnSchedule, u64)>,
    /// Retention: profile windows touched since the last flush (earliest record time), and
    /// addresses seen (latest window).
    touched: HashMap<WinId, f64>,
    ips_seen: HashMap<IpAddr, i64>,
    /// Retention's clock: the newest record time not too far ahead of the wall clock.
    retain_clock: f64,
    /// Retention's bound as stored (windows below it are gone from Redis), which can be ahead
    /// of the committed records' clock when a removal ran before its commit (Redis full).
    retained_from: i64,
    /// What happened so far.
    pub stats: ProfilerStats,
}

impl Profiler {
    /// A profiler; `store_has_history` says whether Redis already held data of this tool.
    pub fn new(cfg: ProfilerConfig, store_has_history: bool) -> Profiler {
        Profiler {
            cfg,
            profiles: HashMap::default(),
            windows: HashMap::default(),
            evicted: HashSet::default(),
            store_has_history,
            ips_known: HashSet::default(),
            ips_new: Vec::new(),
            dns_new: Vec::new(),
            facts_new: Vec::new(),
            join: UidJoin::default(),
            watermarks: HashMap::default(),
            finished: HashSet::default(),
            seq: 0,
            portinfo_written: false,
            timeline_waiting: HashSet::default(),
            schedule: None,
            touched: HashMap::default(),
            ips_seen: HashMap::default(),
            retain_clock: f64::NEG_INFINITY,
            retained_from: i64::MIN,
            stats: ProfilerStats::default(),
        }
    }

    /// With `--retain`: absolute windows numbered below this are past the retention (their
    /// end is older than the newest record time minus the retention). `None` without one.
    pub fn expire_below(&self) -> Option<i64> {
        let retain = self.cfg.retain?;
        let newest = self.retain_clock;
        if !newest.is_finite() {
            return Some(self.retained_from);
        }
        // end(g) = (g + 1) × width < newest − retain  ⟺  g < (newest − retain) / width − 1
        let below = ((newest - retain) / self.cfg.width - 1.0).ceil() as i64;
        Some(below.max(self.retained_from))
    }

    fn is_expired(&self, g: i64) -> bool {
        self.expire_below().is_some_and(|below| g < below)
    }

    /// Give the profiler the schedule of the conns to come (a batch run's scan of its conn
    /// logs, in the order it reads them). A window whose conns are all in then closes as soon
    /// as every log is the join grace past its end (or `hold`, if shorter); one still
    /// expecting a conn stays `hold_for_late_conn` past its end. Without a schedule every
    /// window stays `hold`.
    pub fn set_conn_schedule(&mut self, schedule: ConnSchedule) {
        self.schedule = Some((schedule, 0));
    }

    /// How many conns of the schedule are read (added) so far.
    pub fn set_conns_read(&mut self, read: u64) {
        if let Some((_, n)) = &mut self.schedule {
            *n = read;
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProfilerConfig {
        &self.cfg
    }

    /// The absolute window number of a time (`floor(ts / width)`).
    pub fn grid_number(&self, ts: f64) -> i64 {
        crate::model::window::number(ts, self.cfg.width)
    }

    fn position(&mut self, line: u64) -> Position {
        self.seq += 1;
        Position {
            line,
            seq: self.seq,
        }
    }

    fn touch_profile(&mut self, ip: IpAddr, ts: f64) {
        if self.cfg.index {
            let g = self.grid_number(ts);
            if self.is_expired(g) {
                return; // a record of a removed window: no profile
            }
            let t = self.touched.entry(WinId::new(ip, g)).or_insert(ts);
            *t = t.min(ts);
            self.see_ip(ip, g);
        }
        let loaded = !self.store_has_history;
        let g = self.grid_number(ts);
        let p = self.profiles.entry(ip).or_insert(ProfileInfo {
            starttime: ts,
            stored: None,
            loaded,
            last: g,
        });
        if ts < p.starttime {
            p.starttime = ts;
        }
        p.last = p.last.max(g);
        self.register_ip(ip);
    }

    /// Retention: `ip` is in window `g` (its `IPsInfo` entry lives while such a window does).
    fn see_ip(&mut self, ip: IpAddr, g: i64) {
        let last = self.ips_seen.entry(ip).or_insert(g);
        *last = (*last).max(g);
    }

    /// An address with its `IPsInfo` value.
    fn ip_value(&self, ip: IpAddr) -> (IpAddr, String) {
        let asn_object = self.cfg.style.layout == crate::model::layout::Layout::Kalipso;
        (ip, self.cfg.style.ipinfo.value(ip, asn_object))
    }

    fn register_ip(&mut self, ip: IpAddr) {
        if self.cfg.index {
            return; // registered per flush from `ips_seen`, with the window that keeps it
        }
        if self.ips_known.insert(ip) {
            self.ips_new.push(ip);
        }
    }

    fn window(&mut self, id: WinId) -> &mut WindowState {
        let store_has_history = self.store_has_history;
        let evicted = &self.evicted;
        let stats = &mut self.stats;
        let compact = self.cfg.no_flows;
        self.windows.entry(id).or_insert_with(|| {
            let reopened = evicted.contains(&id);
            if reopened {
                stats.reopened += 1;
            }
            let mut w = WindowState::new(!(store_has_history || reopened));
            w.compact = compact;
            w
        })
    }

    fn see(&mut self, kind: LogKind, ts: f64) {
        let w = self.watermarks.entry(kind).or_insert(ts);
        if ts > *w {
            *w = ts;
        }
        // Retention's clock: the newest record time, but not one more than a day ahead of the
        // wall clock (a sensor with a wrong clock would otherwise remove every window).
        if self.cfg.retain.is_some() && ts > self.retain_clock {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(f64::INFINITY, |d| d.as_secs_f64());
            if ts <= now + FUTURE_SLACK {
                self.retain_clock = ts;
            } else {
                self.stats.ahead_of_the_clock += 1;
            }
        }
    }

    /// Add one conn flow, `line` being its line number in its log.
    pub fn add_conn(&mut self, flow: Flow, line: u64) {
        self.see(LogKind::Conn, flow.ts);
        let touches = self.cfg.routing.route(flow.saddr, flow.daddr);
        let g = self.grid_number(flow.ts);
        let expired = self.is_expired(g);
        let mut places: Vec<(WinId, Roles)> = Vec::new();
        for (ip, role) in touches {
            if !expired {
                self.touch_profile(ip, flow.ts);
            }
            if let Some(role) = role {
                match places.iter_mut().find(|(w, _)| w.ip == ip) {
                    Some((_, roles)) => roles.push(role),
                    None => places.push((WinId::new(ip, g), smallvec::smallvec![role])),
                }
            }
        }
        if places.is_empty() {
            self.stats.flows_unprofiled += 1;
            return;
        }
        let expires = flow.ts + flow.dur.unwrap_or(0.0) + self.cfg.join_grace;
        let ids: Vec<WinId> = places.iter().map(|(w, _)| *w).collect();
        if expired {
            // Past the retention: not stored, but still the conn its dns/http/ssl records
            // join (they go with it), as in a run that stored it and removed its window.
            self.stats.older_than_retention += 1;
            let waiting = self.join.on_conn(&flow.uid, &ids, expires);
            self.stats.older_than_retention += waiting.len() as u64;
            return;
        }
        self.stats.flows += 1;
        self.register_ip(flow.saddr);
        self.register_ip(flow.daddr);
        if self.cfg.index {
            self.see_ip(flow.saddr, g);
            self.see_ip(flow.daddr, g);
        }
        let pos = self.position(line);
        let waiting = self.join.on_conn(&flow.uid, &ids, expires);
        let n = places.len();
        for ((id, roles), flow) in places.into_iter().zip(copies(flow, n)) {
            self.window(id).add_flow(flow, roles, pos);
        }
        for (alt, pos) in waiting {
            self.stats.alts_joined += 1;
            for (id, alt) in ids.iter().zip(copies(alt, ids.len())) {
                self.window(*id).add_alt(alt, pos);
            }
        }
    }

    /// Add one dns/http/ssl record, `line` being its line number in its log, `resp_port` its
    /// responder's port (read for an ssl record's `SNI` entry).
    pub fn add_alt(&mut self, alt: AltRecord, resp_port: Option<u16>, line: u64) {
        self.see(alt.kind, alt.ts);
        // Every answer and server name, past the retention or not: each is kept with the
        // window of its own time, and retention removes it with that window (in the same
        // transaction for one already past), so the values are a function of the records.
        if self.cfg.style.layout == crate::model::layout::Layout::Kalipso {
            let abs = self.grid_number(alt.ts);
            match (alt.kind, resp_port) {
                (LogKind::Dns, _) => {
                    let (answers, ptr) = dns_facts(&alt, abs);
                    self.dns_new.extend(answers);
                    self.facts_new.extend(ptr);
                }
                (LogKind::Ssl, Some(port)) if !alt.name.is_empty() && alt.name != "-" => {
                    self.facts_new.push(IpFact {
                        ip: alt.daddr,
                        kind: FactKind::Sni(port),
                        name: alt.name.to_string(),
                        ts: alt.ts,
                        uid: alt.uid.to_string(),
                        abs,
                    });
                }
                _ => {}
            }
        }
        for (ip, _) in self.cfg.routing.route(alt.saddr, alt.daddr) {
            self.touch_profile(ip, alt.ts);
        }
        let pos = self.position(line);
        if let Some((alt, ids)) = self.join.on_alt(alt, pos) {
            self.stats.alts_joined += 1;
            // Joined to a conn whose windows are past the retention: gone with them.
            let ids: Vec<WinId> = ids
                .into_iter()
                .filter(|id| !self.is_expired(id.abs))
                .collect();
            if ids.is_empty() {
                self.stats.older_than_retention += 1;
                return;
            }
            let n = ids.len();
            for (id, alt) in ids.into_iter().zip(copies(alt, n)) {
                self.window(id).add_alt(alt, pos);
            }
        } else {
            self.enforce_join_cap();
        }
    }

    /// Limit the alt records waiting for their conn to `cap` (default
    /// [`crate::join::DEFAULT_PENDING_CAP`]).
    pub fn set_join_cap(&mut self, cap: usize) {
        self.join = UidJoin::with_cap(cap);
    }

    /// No more records of `kind` will come (its files are read to the end).
    pub fn finish_log(&mut self, kind: LogKind) {
        self.finished.insert(kind);
    }

    /// Follow mode: whether `kind` may hold back joins and eviction. A log with no file, or
    /// whose files have been idle for a while, does not: records of an idle log are not
    /// delayed behind the others (it has nothing to say).
    pub fn set_log_waiting(&mut self, kind: LogKind, waiting: bool) {
        if waiting {
            self.finished.remove(&kind);
        } else {
            self.finished.insert(kind);
        }
    }

    /// The latest record time seen in `kind`.
    pub fn latest(&self, kind: LogKind) -> Option<f64> {
        self.watermarks.get(&kind).copied()
    }

    /// Replace the home networks and direction (config reload): applies to records that
    /// arrive from now on.
    pub fn set_routing(&mut self, routing: Routing) {
        self.cfg.routing = routing;
    }

    /// The country and ASN databases and blocklists in use.
    pub fn ipinfo(&self) -> std::sync::Arc<crate::enrich::IpInfo> {
        self.cfg.style.ipinfo.clone()
    }

    /// Use other databases and blocklists (SIGHUP), for records from now on; `IPsInfo`
    /// entries already written stay.
    pub fn set_ipinfo(&mut self, ipinfo: std::sync::Arc<crate::enrich::IpInfo>) {
        self.cfg.style.ipinfo = ipinfo;
    }

    /// Change the evidence at which a window is detected (SIGHUP).
    pub fn set_detection(&mut self, detection: f64) {
        self.cfg.detection = detection;
    }

    /// The log time every log still being read has reached (the minimum of their latest
    /// times; logs never seen count as not started).
    fn low_watermark(&self) -> f64 {
        let mut low = f64::INFINITY;
        for kind in [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl] {
            if self.finished.contains(&kind) {
                continue;
            }
            match self.watermarks.get(&kind) {
                Some(w) => low = low.min(*w),
                None => return f64::NEG_INFINITY,
            }
        }
        low
    }

    /// The time before which every conn's join is complete: every dns/http/ssl log still being
    /// read is `join_grace` past it.
    fn join_horizon(&self) -> f64 {
        let mut low = f64::INFINITY;
        for kind in [LogKind::Dns, LogKind::Http, LogKind::Ssl] {
            if self.finished.contains(&kind) {
                continue;
            }
            match self.watermarks.get(&kind) {
                Some(w) => low = low.min(*w),
                None => return f64::NEG_INFINITY,
            }
        }
        low - self.cfg.join_grace
    }

    /// End of input: every alt record still waiting is stored under its own source profile,
    /// in the window of its own time.
    pub fn finish(&mut self) {
        let orphans = self.join.drain_orphans();
        self.store_orphans(orphans);
    }

    /// Follow mode: dns/http/ssl records whose conn has not come although the conn log is
    /// `hold` (one window width) past them are stored as orphans now, so a live view shows
    /// them; their conn can no longer claim them.
    pub fn expire_waiting_alts(&mut self) {
        let Some(conn) = self.watermarks.get(&LogKind::Conn).copied() else {
            return;
        };
        let expired = self.join.expire_pending(conn - self.cfg.hold);
        if !expired.is_empty() {
            self.store_orphans(expired);
        }
    }

    /// Alt records beyond the join's cap stop waiting now (stored as orphans, counted).
    fn enforce_join_cap(&mut self) {
        let released = self.join.over_cap();
        if !released.is_empty() {
            tracing::warn!(
                records = released.len(),
                total = self.join.gave_up,
                "too many dns/http/ssl records waiting for their conn: the oldest are stored without one"
            );
            self.stats.alts_gave_up += released.len() as u64;
            self.store_orphans(released);
        }
    }

    fn store_orphans(&mut self, orphans: Vec<crate::join::PendingAlt>) {
        for (alt, pos) in orphans {
            let src = self
                .cfg
                .routing
                .route(alt.saddr, alt.daddr)
                .into_iter()
                .find(|(ip, role)| *ip == alt.saddr && *role == Some(Role::Client));
            match src {
                Some((ip, _)) => {
                    let g = self.grid_number(alt.ts);
                    if self.is_expired(g) {
                        self.stats.older_than_retention += 1;
                        continue;
                    }
                    self.stats.alts_orphaned += 1;
                    self.window(WinId::new(ip, g)).add_alt(alt, pos);
                }
                None => self.stats.alts_unplaced += 1,
            }
        }
    }

    /// Alt records waiting for their conn.
    pub fn pending_alts(&self) -> usize {
        self.join.pending_count()
    }

    /// What the open windows hold: (windows, records in memory, written entries summarised).
    pub fn memory_summary(&self) -> (usize, usize, usize) {
        let mut out = (self.windows.len(), 0, 0);
        for w in self.windows.values() {
            out.1 += w.records_in_memory();
            out.2 += w.written_entries();
        }
        out
    }

    /// Windows in memory.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Profiles seen by this process.
    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// What must be read from Redis before the next write.
    pub fn load_request(&self) -> LoadRequest {
        let mut req = LoadRequest::default();
        let low = self.low_watermark();
        for (id, w) in &self.windows {
            if !w.loaded {
                req.windows.push(*id);
            } else if w.wants_records_log()
                && is_closed(&self.cfg, *id, low, self.schedule.as_ref())
            {
                req.records_logs.push(*id);
            }
        }
        req.records_logs.sort();
        for (ip, p) in &self.profiles {
            if !p.loaded {
                req.profiles.push(*ip);
            }
        }
        req.windows.sort();
        req.profiles.sort();
        req
    }

    /// Merge a window's stored content (from [`Profiler::load_request`]).
    pub fn merge_window(&mut self, id: WinId, stored: StoredWindow) {
        let routing = self.cfg.routing.clone();
        let mut uids = Vec::new();
        let mut flows = Vec::new();
        for flow in stored.flows {
            let roles: Roles = routing
                .route(flow.saddr, flow.daddr)
                .into_iter()
                .filter(|(ip, _)| *ip == id.ip)
                .filter_map(|(_, r)| r)
                .collect();
            if !roles.is_empty() {
                uids.push(flow.uid.clone());
                flows.push((flow, roles));
            }
        }
        let mut placed = Vec::new();
        // Conns no alt record can join any more stay out of the join (as if never evicted).
        let joinable_after = self.join_horizon() + self.cfg.join_grace;
        for (flow, roles) in flows {
            let pos = self.position(0);
            let expires = flow.ts + flow.dur.unwrap_or(0.0) + self.cfg.join_grace;
            if expires >= joinable_after {
                for (alt, apos) in self.join.on_conn(&flow.uid, &[id], expires) {
                    self.stats.alts_joined += 1;
                    placed.push((alt, apos));
                }
            }
            self.window(id).add_flow(flow, roles, pos);
        }
        for alt in stored.alts {
            let pos = self.position(0);
            self.window(id).add_alt(alt, pos);
        }
        for (alt, pos) in placed {
            self.window(id).add_alt(alt, pos);
        }
        let w = self.window(id);
        w.mark_stored(uids);
        w.mark_all_dirty();
        w.loaded = true;
    }

    /// A closing window's stored frames (from [`Profiler::load_request`]).
    pub fn merge_records_log(&mut self, id: WinId, frames: Vec<Vec<u8>>) {
        if let Some(w) = self.windows.get_mut(&id) {
            w.set_records_log(frames);
        }
    }

    /// Merge a profile's stored `Starttime` (`None`: the profile is not in Redis).
    pub fn merge_profile(&mut self, ip: IpAddr, stored: Option<f64>) {
        if let Some(p) = self.profiles.get_mut(&ip) {
            p.stored = stored;
            p.loaded = true;
        }
    }

    /// Everything changed since the last call, as complete values. Call after the loads.
    pub fn take_writes(&mut self) -> Writes {
        let mut windows = Vec::new();
        let mut out = self
            .take_writes_with(false, |id, w| {
                windows.push((id, w));
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap_or_else(|e| match e {});
        out.windows = windows;
        out
    }

    /// [`Profiler::take_writes`], each window's write handed to `sink` as soon as it is
    /// rendered (in window order) instead of being kept in the result. With `evict_done`, a
    /// window that [`Profiler::evict`] would drop after this flush leaves memory right after
    /// its write is rendered, so a flush that closes many windows never holds both their
    /// aggregates and their rendered values.
    pub fn take_writes_with<E>(
        &mut self,
        evict_done: bool,
        mut sink: impl FnMut(WinId, WindowWrite) -> Result<(), E>,
    ) -> Result<Writes, E> {
        let ips = std::mem::take(&mut self.ips_new);
        let facts = std::mem::take(&mut self.facts_new);
        let mut out = Writes {
            dns: std::mem::take(&mut self.dns_new),
            facts: facts
                .into_iter()
                .map(|f| {
                    let (_, base) = self.ip_value(f.ip);
                    (f, base)
                })
                .collect(),
            ips: ips.into_iter().map(|ip| self.ip_value(ip)).collect(),
            ..Writes::default()
        };
        if self.cfg.index {
            // Without --retain on an indexed database: the index is kept, nothing removed.
            let below = self.expire_below().unwrap_or(i64::MIN);
            // Windows past the retention leave memory unwritten; the store removes what of
            // them it holds, in this flush's transaction.
            self.windows.retain(|id, _| id.abs >= below);
            // A profile whose windows are all past the retention is gone from Redis too (the
            // store's script): forget it, and read it back if it comes again.
            self.profiles.retain(|_, p| p.last >= below);
            self.evicted.retain(|id| id.abs >= below);
            self.timeline_waiting.retain(|id| id.abs >= below);
            let mut touched: Vec<(WinId, f64)> = self.touched.drain().collect();
            touched.sort_by_key(|t| t.0);
            let mut ips: Vec<(IpAddr, i64)> = self.ips_seen.drain().collect();
            ips.sort_unstable();
            out.ips = ips.iter().map(|(ip, _)| self.ip_value(*ip)).collect();
            let mut profiles: Vec<IpAddr> = touched.iter().map(|(id, _)| id.ip).collect();
            profiles.dedup();
            out.retention = Some(RetentionWrite {
                expire_below: below,
                touched,
                ips,
                profiles,
            });
        }
        if !self.portinfo_written {
            self.portinfo_written = true;
            out.portinfo = self.cfg.style.names.fields();
        }
        for (ip, p) in &mut self.profiles {
            if p.loaded && p.stored.is_none_or(|s| p.starttime < s) {
                p.stored = Some(p.starttime);
                out.profiles.push((*ip, p.starttime));
            }
        }
        out.profiles.sort_by_key(|p| p.0);
        if let Some(r) = &mut out.retention {
            r.profiles.extend(out.profiles.iter().map(|(ip, _)| *ip));
            r.profiles.sort_unstable();
            r.profiles.dedup();
        }
        let label = self.cfg.label.clone();
        let horizon = self.join_horizon();
        let low = self.low_watermark();
        let mut ids: Vec<WinId> = self
            .windows
            .iter()
            .filter(|(_, w)| w.loaded)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let mut fields_spent = std::time::Duration::ZERO;
        for id in ids {
            let Some(w) = self.windows.get_mut(&id) else {
                continue;
            };
            let closing = is_closed(&self.cfg, id, low, self.schedule.as_ref());
            let within_budget = self.cfg.fields_budget.is_none_or(|b| fields_spent < b);
            let with_fields = within_budget
                && (closing
                    || match self.cfg.fields_every {
                        FieldsEvery::Flush => true,
                        FieldsEvery::Interval(every) => {
                            w.fields_written_at.is_none_or(|t| t.elapsed() >= every)
                        }
                        FieldsEvery::Close => false,
                    });
            w.closing = closing;
            if w.dirty
                || w.timeline_pending
                || (with_fields && w.fields_waiting())
                || w.records_compaction_due()
            {
                let started = (with_fields && w.fields_waiting()).then(std::time::Instant::now);
                let judge = Judge {
                    profile: id.ip,
                    ipinfo: &self.cfg.style.ipinfo,
                    detection: self.cfg.detection,
                    layout: self.cfg.style.layout,
                };
                let write = w.take_write(&label, &self.cfg.style, &judge, horizon, with_fields);
                if let Some(t) = started {
                    fields_spent += t.elapsed();
                }
                // Persisted, so that a restart finishes the window (reopened and rewritten).
                let waiting = w.timeline_pending || w.fields_waiting();
                if waiting != self.timeline_waiting.contains(&id) {
                    out.timeline_waiting.push((id, waiting));
                    if waiting {
                        self.timeline_waiting.insert(id);
                    } else {
                        self.timeline_waiting.remove(&id);
                    }
                }
                if evict_done && is_done(&self.cfg, id, w, low, self.schedule.as_ref()) {
                    self.windows.remove(&id);
                    self.evicted.insert(id);
                }
                if !write.is_empty() {
                    sink(id, write)?;
                }
            }
        }
        out.join = self.join.take_changes();
        let mut marks: Vec<(LogKind, f64)> =
            self.watermarks.iter().map(|(k, v)| (*k, *v)).collect();
        marks.sort_by_key(|m| m.0);
        out.watermarks = marks;
        Ok(out)
    }

    /// Put back what a previous run persisted: join state, windows whose timeline waits (they
    /// are reopened so their lines get written), and each log's latest time.
    pub fn restore(&mut self, state: PersistedState) -> Result<(), crate::join::JoinStateError> {
        for (uid, json) in &state.joinable {
            self.join.restore_conn(uid, json)?;
        }
        for (uid, json) in &state.pending {
            self.join.restore_pending(uid, json)?;
        }
        for (kind, ts) in state.watermarks {
            self.see(kind, ts);
        }
        if let Some(g) = state.retained_from {
            self.retained_from = self.retained_from.max(g);
        }
        for id in state.timeline_waiting {
            self.timeline_waiting.insert(id);
            let w = self.window(id);
            w.timeline_pending = true;
        }
        Ok(())
    }

    /// Forget conns no alt record can join any more (every alt log is past their end plus the
    /// grace).
    pub fn expire_joins(&mut self) {
        self.join.expire(self.join_horizon() + self.cfg.join_grace);
    }

    /// Drop written windows that ended more than `hold` before every log's current time, and
    /// conns no alt record can join any more.
    pub fn evict(&mut self) {
        self.expire_joins();
        let low = self.low_watermark();
        let cfg = &self.cfg;
        let schedule = self.schedule.as_ref();
        let mut gone = Vec::new();
        self.windows.retain(|id, w| {
            let keep = !is_done(cfg, *id, w, low, schedule);
            if !keep {
                gone.push(*id);
            }
            keep
        });
        self.evicted.extend(gone);
    }
}

/// `item` `n` times: clones, then `item` itself last (a record placed in one window, the usual
/// case, is moved there, not copied).
fn copies<T: Clone>(item: T, n: usize) -> impl Iterator<Item = T> {
    let mut item = Some(item);
    (0..n).filter_map(move |i| {
        if i + 1 == n {
            item.take()
        } else {
            item.clone()
        }
    })
}

/// Whether window `id` is closed, `low` being the lowest log time: every log is `hold` past
/// its end. With a conn schedule: only the join grace past it (if shorter) when every conn of
/// the window is in, `hold_for_late_conn` when one is still to come.
fn is_closed(
    cfg: &ProfilerConfig,
    id: WinId,
    low: f64,
    schedule: Option<&(ConnSchedule, u64)>,
) -> bool {
    let hold = match schedule {
        None => cfg.hold,
        Some((s, read)) if s.all_in(id, *read) => cfg.hold.min(cfg.join_grace),
        Some(_) => cfg.hold_for_late_conn.unwrap_or(cfg.hold).max(cfg.hold),
    };
    cfg.window_end(id.abs) + hold <= low
}

/// Whether window `id` may leave memory: closed ([`is_closed`]), merged with Redis, and with
/// nothing left to write (`--no-flows`: its frames made one).
fn is_done(
    cfg: &ProfilerConfig,
    id: WinId,
    w: &WindowState,
    low: f64,
    schedule: Option<&(ConnSchedule, u64)>,
) -> bool {
    !(w.dirty
        || w.timeline_pending
        || w.fields_waiting()
        || w.records_compaction_pending()
        || !w.loaded
        || !is_closed(cfg, id, low, schedule))
}

#[cfg(test)]
mod tests {
    use super::reverse_name_address;

    #[test]
    fn reverse_names_give_their_address() {
        let ok = [
            ("35.216.184.93.in-addr.arpa", "93.184.216.35"),
            ("1.0.0.127.IN-ADDR.ARPA.", "127.0.0.1"),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                "2001:db8::1",
            ),
        ];
        for (q, ip) in ok {
            assert_eq!(reverse_name_address(q), ip.parse().ok(), "{q}");
        }
        for q in [
            "x.in-addr.arpa",
            "256.0.0.1.in-addr.arpa",
            "0.0.1.in-addr.arpa",
            "1.2.3.4.5.in-addr.arpa",
            "+1.2.3.4.in-addr.arpa",
            "1.0.ip6.arpa",
            "example.com",
            "",
        ] {
            assert_eq!(reverse_name_address(q), None, "{q}");
        }
    }
}
