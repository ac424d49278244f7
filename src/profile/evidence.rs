//! A window's `Evidence` field and whether it is detected (`BlockRequest`), as Slips' detection
//! modules of early 2020 wrote them (reference §4.3; Slips `b8d89a5d1`), but as a function of
//! the window's records: every value is what evaluating after each flow, in the contract's
//! order, would give (Slips evaluated asynchronously and could skip a firing).
//!
//! - Horizontal port scan (`dport:<port>:PortScanType2`): the profile's not-established TCP
//!   flows to one port reach 3, 6, 9, … distinct destination IPs; the value is the last firing's.
//! - Vertical port scan (`dstip:<ip>:PortScanType1`): to one IP, 3, 6, 9, … distinct ports.
//! - Both: pkts = the packets of those flows up to the firing one; confidence 1 if pkts > 10,
//!   else pkts / 10.0; threat level 50.
//! - Threat intelligence (`dstip:<ip>:ThreatIntelligenceBlacklist`): a peer on a blocklist;
//!   (`domain:<name>:ThreatIntelligenceBlacklistDomain`): a dns query, http host or ssl server
//!   name under a listed domain; confidence 1, threat level 50.
//!
//! Keys are in the order of their first firing (a later firing of a key replaces its value in
//! place, as Slips' dict did): by the firing record's time and uid, then in the order above.
//! A window is detected when Σ threat level × confidence, summed in that order as Slips did,
//! reaches the detection threshold × width / 60.

use std::collections::HashMap;
use std::net::IpAddr;

use compact_str::CompactString;

use crate::enrich::IpInfo;
use crate::model::order::{FlowKey, TotalF64};
use crate::pyjson::{ObjectWriter, push_ip, write_json_float, write_json_str};

/// Slips' threat level of every evidence here.
const THREAT_LEVEL: i64 = 50;

/// A not-established TCP flow the profile started: what the port-scan evidence counts.
#[derive(Clone, Copy, Debug)]
pub struct ScanFlow {
    /// The flow's id in the window's table of flow keys.
    pub id: u32,
    /// Its destination.
    pub dst: IpAddr,
    /// Its destination port.
    pub dport: u16,
    /// Its packets.
    pub pkts: u64,
}

/// A name under a listed domain, with the record that named it first.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainHit {
    /// The record's time.
    pub ts: f64,
    /// Its uid.
    pub uid: CompactString,
    /// The name as seen (lowercased, without a trailing dot).
    pub name: CompactString,
}

/// What the evidence of a window is judged with.
pub struct Judge<'a> {
    /// The profile's address.
    pub profile: IpAddr,
    /// Blocklists.
    pub ipinfo: &'a IpInfo,
    /// Evidence at which the window is detected.
    pub detection: f64,
}

impl Judge<'static> {
    /// No blocklists and Slips' shipped threshold for one-hour windows (tests, benchmarks).
    pub fn plain(profile: IpAddr) -> Judge<'static> {
        static NONE: std::sync::LazyLock<IpInfo> = std::sync::LazyLock::new(IpInfo::default);
        Judge {
            profile,
            ipinfo: &NONE,
            detection: 6.0,
        }
    }
}

/// One entry of `Evidence` with where it sorts.
struct Item {
    ts: TotalF64,
    uid: CompactString,
    kind: u8,
    key: String,
    value: String,
    score: f64,
}

impl Item {
    /// A port scan's entry, first fired by the flow of key `k`.
    fn scan(k: &FlowKey, kind: u8, key: String, pkts: u64, description: &str) -> Item {
        let (value, score) = scan_value(pkts, description);
        Item {
            ts: k.ts,
            uid: k.uid.clone(),
            kind,
            key,
            value,
            score,
        }
    }
}

/// `[confidence, 50, "<description>"]` of a port scan with `pkts` packets, and its score.
fn scan_value(pkts: u64, description: &str) -> (String, f64) {
    let mut v = String::with_capacity(description.len() + 16);
    v.push('[');
    let confidence = if pkts > 10 {
        v.push('1');
        1.0
    } else {
        let c = pkts as f64 / 10.0;
        write_json_float(&mut v, c);
        c
    };
    v.push_str(", 50, ");
    write_json_str(&mut v, description);
    v.push(']');
    (v, THREAT_LEVEL as f64 * confidence)
}

/// The port-scan tally of one port (or one destination).
struct Tally<K> {
    seen: rustc_hash::FxHashSet<K>,
    pkts: u64,
    /// The flow of the first firing, and the count and packets of the last.
    first: Option<u32>,
    n: usize,
    fired_pkts: u64,
}

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Tally {
            seen: Default::default(),
            pkts: 0,
            first: None,
            n: 0,
            fired_pkts: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq> Tally<K> {
    fn add(&mut self, id: u32, k: K, pkts: u64) {
        self.pkts += pkts;
        if self.seen.insert(k) && self.seen.len() % 3 == 0 {
            self.first.get_or_insert(id);
            self.n = self.seen.len();
            self.fired_pkts = self.pkts;
        }
    }
}

/// The `Evidence` value (`None`: no evidence) and whether the window is detected. `table` is
/// the window's flow keys by id; `peers` every peer with the flow that first had it.
pub fn judge(
    judge: &Judge<'_>,
    table: &[FlowKey],
    scans: &[ScanFlow],
    peers: &[(IpAddr, u32)],
    domains: &[DomainHit],
) -> Option<(String, bool)> {
    let mut items = Vec::new();
    let mut profile = String::new();
    push_ip(&mut profile, judge.profile);
    let key_of = |id: u32| table.get(id as usize);
    if !scans.is_empty() {
        let mut order: Vec<&ScanFlow> = scans.iter().collect();
        order.sort_by(|a, b| key_of(a.id).cmp(&key_of(b.id)));
        let mut ports: HashMap<u16, Tally<IpAddr>> = HashMap::new();
        let mut dsts: HashMap<IpAddr, Tally<u16>> = HashMap::new();
        for f in order {
            ports.entry(f.dport).or_default().add(f.id, f.dst, f.pkts);
            dsts.entry(f.dst).or_default().add(f.id, f.dport, f.pkts);
        }
        for (dport, t) in ports {
            let Some(k) = t.first.and_then(key_of) else {
                continue;
            };
            let description = format!(
                "New horizontal port scan detected to port {dport}. Not Estab TCP from IP: {profile}. Tot pkts sent all IPs: {}",
                t.fired_pkts
            );
            let key = format!("dport:{dport}:PortScanType2");
            items.push(Item::scan(k, 0, key, t.fired_pkts, &description));
        }
        for (dst, t) in dsts {
            let Some(k) = t.first.and_then(key_of) else {
                continue;
            };
            let mut ip = String::new();
            push_ip(&mut ip, dst);
            let description = format!(
                "New vertical port scan detected to IP {ip} from {profile}. Total {} dst ports. Not Estab TCP. Tot pkts sent all ports: {}",
                t.n, t.fired_pkts
            );
            let key = format!("dstip:{ip}:PortScanType1");
            items.push(Item::scan(k, 1, key, t.fired_pkts, &description));
        }
    }
    let listed = |description: &str| {
        let mut v = String::from("[1, 50, ");
        write_json_str(&mut v, &format!("Threat Intelligence. {description}"));
        v.push(']');
        v
    };
    for &(ip, id) in peers {
        let (Some(description), Some(k)) = (judge.ipinfo.listed(ip), key_of(id)) else {
            continue;
        };
        let mut text = String::new();
        push_ip(&mut text, ip);
        items.push(Item {
            ts: k.ts,
            uid: k.uid.clone(),
            kind: 2,
            key: format!("dstip:{text}:ThreatIntelligenceBlacklist"),
            value: listed(description),
            score: THREAT_LEVEL as f64,
        });
    }
    for d in domains {
        let Some(description) = judge.ipinfo.listed_domain(&d.name) else {
            continue;
        };
        items.push(Item {
            ts: TotalF64(d.ts),
            uid: d.uid.clone(),
            kind: 3,
            key: format!("domain:{}:ThreatIntelligenceBlacklistDomain", d.name),
            value: listed(description),
            score: THREAT_LEVEL as f64,
        });
    }
    if items.is_empty() {
        return None;
    }
    items.sort_by(|a, b| (a.ts, &a.uid, a.kind, &a.key).cmp(&(b.ts, &b.uid, b.kind, &b.key)));
    let mut seen = rustc_hash::FxHashSet::default();
    let mut w = ObjectWriter::new();
    let mut total = 0.0;
    for item in &items {
        if seen.insert(item.key.as_str()) {
            w.raw(&item.key, &item.value);
            total += item.score;
        }
    }
    Some((w.finish(), total >= judge.detection))
}
