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

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

use compact_str::CompactString;

use crate::enrich::IpInfo;
use crate::model::layout::Layout;
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

/// What the evidence of a window is judged with.
pub struct Judge<'a> {
    /// The profile's address.
    pub profile: IpAddr,
    /// Blocklists.
    pub ipinfo: &'a IpInfo,
    /// Evidence at which the window is detected.
    pub detection: f64,
    /// The layout the fields are written in.
    pub layout: Layout,
}

impl Judge<'static> {
    /// No blocklists and Slips' shipped threshold for one-hour windows (tests, benchmarks).
    pub fn plain(profile: IpAddr) -> Judge<'static> {
        static NONE: std::sync::LazyLock<IpInfo> = std::sync::LazyLock::new(IpInfo::default);
        Judge {
            profile,
            ipinfo: &NONE,
            detection: 6.0,
            layout: Layout::Kalipso2020,
        }
    }
}

/// One entry of `Evidence` with where it sorts.
struct Item {
    ts: TotalF64,
    uid: CompactString,
    kind: u8,
    key: String,
    /// The 2020 value, `[confidence, threat level, "description"]`.
    value: String,
    score: f64,
    /// What the current Kalipso shows: what was detected (`dport`, `dstip`, `domain`), which
    /// one, the evidence's type and its description.
    detected: (&'static str, String),
    type_evidence: &'static str,
    description: String,
}

impl Item {
    /// A port scan's entry, first fired by the flow of key `k`.
    fn scan(
        k: &FlowKey,
        kind: u8,
        detected: (&'static str, String),
        pkts: u64,
        description: String,
    ) -> Item {
        let type_evidence = if kind == 0 {
            "PortScanType2"
        } else {
            "PortScanType1"
        };
        let (value, score) = scan_value(pkts, &description);
        Item {
            ts: k.ts,
            uid: k.uid.clone(),
            kind,
            key: format!("{}:{}:{type_evidence}", detected.0, detected.1),
            value,
            score,
            detected,
            type_evidence,
            description,
        }
    }

    /// The value as `layout` writes it: the 2020 array, or for the current Kalipso a JSON
    /// string of `{"type_detection", "detection_info", "type_evidence", "description"}`.
    fn value_in(&self, layout: Layout) -> String {
        match layout {
            Layout::Kalipso2020 => self.value.clone(),
            Layout::Kalipso => {
                let mut o = ObjectWriter::new();
                o.str("type_detection", self.detected.0)
                    .str("detection_info", &self.detected.1)
                    .str("type_evidence", self.type_evidence)
                    .str("description", &self.description);
                let mut v = String::new();
                write_json_str(&mut v, &o.finish());
                v
            }
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
#[derive(Clone, Debug)]
struct Tally<K> {
    seen: rustc_hash::FxHashSet<K>,
    pkts: u64,
    /// The flow of the first firing, and the count and packets of the last.
    first: Option<u32>,
    n: u32,
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
            self.n = self.seen.len() as u32;
            self.fired_pkts = self.pkts;
        }
    }
}

/// A window's port-scan flows and their tallies as evaluated after each flow in the
/// contract's order. Flows usually come in that order and are tallied as they come; one that
/// comes before the last tallied makes the tallies stale, and they are replayed from the
/// flows, sorted, when next needed.
#[derive(Clone, Debug, Default)]
pub struct Scans {
    flows: Vec<ScanFlow>,
    ports: HashMap<u16, Tally<IpAddr>>,
    dsts: HashMap<IpAddr, Tally<u16>>,
    /// The last flow tallied; `None` with flows: the tallies are stale.
    last: Option<u32>,
}

impl Scans {
    /// Add a flow (`table`: the window's flow keys by id, this flow's included).
    pub fn add(&mut self, table: &[FlowKey], f: ScanFlow) {
        let in_order = match self.last {
            Some(last) => table.get(last as usize) <= table.get(f.id as usize),
            None => self.flows.is_empty(),
        };
        self.flows.push(f);
        if in_order {
            self.tally(f);
        } else {
            self.last = None;
        }
    }

    fn tally(&mut self, f: ScanFlow) {
        self.ports
            .entry(f.dport)
            .or_default()
            .add(f.id, f.dst, f.pkts);
        self.dsts
            .entry(f.dst)
            .or_default()
            .add(f.id, f.dport, f.pkts);
        self.last = Some(f.id);
    }

    /// Replay the flows in order if a late one made the tallies stale.
    pub fn settle(&mut self, table: &[FlowKey]) {
        if self.last.is_some() || self.flows.is_empty() {
            return;
        }
        let mut flows = std::mem::take(&mut self.flows);
        flows.sort_by(|a, b| table.get(a.id as usize).cmp(&table.get(b.id as usize)));
        self.ports.clear();
        self.dsts.clear();
        for f in &flows {
            self.tally(*f);
        }
        self.flows = flows;
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// The `Evidence` value (`None`: no evidence) and whether the window is detected. `table` is
/// the window's flow keys by id; `scans` settled ([`Scans::settle`]; a stale one is settled
/// on a copy); `peers` every peer with the flow that first had it; `domains` every listed
/// name with the earliest record naming it.
pub fn judge(
    judge: &Judge<'_>,
    table: &[FlowKey],
    scans: &Scans,
    peers: &[(IpAddr, u32)],
    domains: &HashMap<CompactString, (f64, CompactString)>,
) -> Option<(String, bool)> {
    let mut items = Vec::new();
    let mut profile = String::new();
    push_ip(&mut profile, judge.profile);
    let key_of = |id: u32| table.get(id as usize);
    let settled;
    let scans = if scans.last.is_none() && !scans.flows.is_empty() {
        let mut copy = scans.clone();
        copy.settle(table);
        settled = copy;
        &settled
    } else {
        scans
    };
    for (dport, t) in &scans.ports {
        let Some(k) = t.first.and_then(key_of) else {
            continue;
        };
        let description = format!(
            "New horizontal port scan detected to port {dport}. Not Estab TCP from IP: {profile}. Tot pkts sent all IPs: {}",
            t.fired_pkts
        );
        let detected = ("dport", dport.to_string());
        items.push(Item::scan(k, 0, detected, t.fired_pkts, description));
    }
    for (dst, t) in &scans.dsts {
        let Some(k) = t.first.and_then(key_of) else {
            continue;
        };
        let mut ip = String::new();
        push_ip(&mut ip, *dst);
        let description = format!(
            "New vertical port scan detected to IP {ip} from {profile}. Total {} dst ports. Not Estab TCP. Tot pkts sent all ports: {}",
            t.n, t.fired_pkts
        );
        items.push(Item::scan(k, 1, ("dstip", ip), t.fired_pkts, description));
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
            detected: ("dstip", text),
            type_evidence: "ThreatIntelligenceBlacklistIP",
            description: description.to_string(),
        });
    }
    for (name, (ts, uid)) in domains {
        let Some(description) = judge.ipinfo.listed_domain(name) else {
            continue;
        };
        items.push(Item {
            ts: TotalF64(*ts),
            uid: uid.clone(),
            kind: 3,
            key: format!("domain:{name}:ThreatIntelligenceBlacklistDomain"),
            value: listed(description),
            score: THREAT_LEVEL as f64,
            detected: ("domain", name.to_string()),
            type_evidence: "ThreatIntelligenceBlacklistDomain",
            description: description.to_string(),
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
            w.raw(&item.key, &item.value_in(judge.layout));
            total += item.score;
        }
    }
    Some((w.finish(), total >= judge.detection))
}
