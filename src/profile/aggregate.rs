//! The per-profile, per-timewindow hash (`profile_<ip>_timewindow<N>`), reference §4 with the
//! spec's fixes: `…PortsServer…` inner `srcips` hold the source IP (bug 14) and `InTuples` are
//! keyed `<saddr>:<dport>:<proto>` (bug 15).
//!
//! A window is a function of the set of its flows: they may be added in any order, and every
//! JSON object keeps the key order a Python dict filled in the contract's flow order (ts, uid,
//! position) would have.

use std::hash::Hash;
use std::net::IpAddr;

use compact_str::CompactString;
use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHashSet as HashSet};
use smallvec::SmallVec;

use super::letters::{TupleClock, add_symbol_classes, symbol_classes};
use super::order::FlowKey;
use super::state::ConnSummary;
use crate::store::pyjson::{ObjectWriter, write_json_float};
use crate::zeek::ConnRecord;

/// Which side of a flow the profile is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The profile sent the flow (its source): `Client`, counted in `Dst…`/`OutTuples`.
    Client,
    /// The profile received it (its destination): `Server`, counted in `Src…`/`InTuples`.
    Server,
}

/// A conn record as the profiler needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// Start time.
    pub ts: f64,
    /// Zeek uid.
    pub uid: CompactString,
    /// Originator address.
    pub saddr: IpAddr,
    /// Originator port (ICMP type).
    pub sport: u16,
    /// Responder address.
    pub daddr: IpAddr,
    /// Responder port (ICMP code).
    pub dport: u16,
    /// Lowercase transport protocol.
    pub proto: CompactString,
    /// Zeek `service`, `""` when unset.
    pub appproto: CompactString,
    /// Duration; `None` when Zeek left it unset (stored as int `0`).
    pub dur: Option<f64>,
    /// Raw Zeek `conn_state`, `""` when unset.
    pub origstate: CompactString,
    /// Packets from the originator.
    pub spkts: u64,
    /// Packets from the responder.
    pub dpkts: u64,
    /// Payload bytes from the originator.
    pub sbytes: u64,
    /// Payload bytes from the responder.
    pub dbytes: u64,
}

impl Flow {
    /// The flow of a conn record, or `None` when the spec says to drop it: no valid `ts`,
    /// addresses missing or of mixed families, or no `proto`.
    pub fn from_conn(c: &ConnRecord<'_>) -> Option<Flow> {
        let ts = c.ts.filter(|t| t.is_finite())?;
        let (saddr, daddr) = (c.id.orig_h?, c.id.resp_h?);
        if saddr.is_ipv4() != daddr.is_ipv4() {
            return None;
        }
        Some(Flow {
            ts,
            uid: CompactString::new(c.uid.as_deref().unwrap_or("")),
            saddr,
            sport: c.id.orig_p.unwrap_or(0),
            daddr,
            dport: c.id.resp_p.unwrap_or(0),
            proto: CompactString::from_str_to_lowercase(c.proto.as_deref()?),
            appproto: CompactString::new(c.service.as_deref().unwrap_or("")),
            dur: c.duration,
            origstate: CompactString::new(c.conn_state.as_deref().unwrap_or("")),
            spkts: c.orig_pkts.unwrap_or(0),
            dpkts: c.resp_pkts.unwrap_or(0),
            sbytes: c.orig_bytes.unwrap_or(0),
            dbytes: c.resp_bytes.unwrap_or(0),
        })
    }

    /// The flow back from its `_flows` value (uid = the hash field), or `None` when the value
    /// is not one this tool writes. The exact inverse of [`Flow::to_flow_json`]: `dur` int `0`
    /// means unset, and the responder's packets/bytes are the totals minus the originator's.
    pub fn from_flow_json(uid: &str, json: &str) -> Option<Flow> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let o = v.as_object()?;
        let text = |k: &str| o.get(k).and_then(|x| x.as_str()).map(CompactString::new);
        let uint = |k: &str| o.get(k).and_then(|x| x.as_u64());
        let dur = match o.get("dur")? {
            d if d.is_f64() => d.as_f64(),
            d if d.as_i64() == Some(0) => None,
            d => Some(d.as_f64()?),
        };
        let (pkts, spkts) = (uint("pkts")?, uint("spkts")?);
        let (allbytes, sbytes) = (uint("allbytes")?, uint("sbytes")?);
        Some(Flow {
            ts: o.get("ts")?.as_f64()?,
            uid: CompactString::new(uid),
            saddr: text("saddr")?.parse().ok()?,
            sport: u16::try_from(uint("sport")?).ok()?,
            daddr: text("daddr")?.parse().ok()?,
            dport: u16::try_from(uint("dport")?).ok()?,
            proto: text("proto")?,
            appproto: text("appproto")?,
            dur,
            origstate: text("origstate")?,
            spkts,
            dpkts: pkts.checked_sub(spkts)?,
            sbytes,
            dbytes: allbytes.checked_sub(sbytes)?,
        })
    }

    /// Total packets.
    pub fn pkts(&self) -> u64 {
        self.spkts + self.dpkts
    }

    /// Total payload bytes.
    pub fn allbytes(&self) -> u64 {
        self.sbytes + self.dbytes
    }

    /// The Established/NotEstablished summary.
    pub fn state(&self) -> ConnSummary {
        ConnSummary::from_state(&self.origstate, self.pkts())
    }

    /// The `_flows` value (reference §5.1 key order).
    pub fn to_flow_json(&self, label: &str) -> String {
        let mut w = ObjectWriter::new();
        w.float("ts", self.ts);
        match self.dur {
            Some(d) => w.float("dur", d),
            None => w.int("dur", 0),
        };
        w.ip("saddr", self.saddr)
            .int("sport", self.sport.into())
            .ip("daddr", self.daddr)
            .int("dport", self.dport.into())
            .str("proto", &self.proto)
            .str("origstate", &self.origstate)
            .str("state", self.state().as_str())
            .int("pkts", self.pkts() as i64)
            .int("allbytes", self.allbytes() as i64)
            .int("spkts", self.spkts as i64)
            .int("sbytes", self.sbytes as i64)
            .str("appproto", &self.appproto)
            .str("label", label);
        w.finish()
    }
}

/// Where a dict key sits: the flow that first had it (an index into the window's table of
/// flow keys, [`WindowAggregate`]), then which of that flow's entries (role and field) put it
/// there. Ordered through the table: by the flow's key in the contract's order, then the entry.
type Rank = (u32, u8);

/// Whether rank `a` comes before rank `b`.
fn before(table: &[FlowKey], a: Rank, b: Rank) -> bool {
    if a.0 == b.0 {
        return a.1 < b.1;
    }
    match (table.get(a.0 as usize), table.get(b.0 as usize)) {
        (Some(x), Some(y)) => (x, a.1) < (y, b.1),
        _ => a < b,
    }
}

/// A dict whose keys iterate in the order they were first seen in the contract's flow order
/// (as a Python dict filled flow by flow), whatever order the flows are added in: each key
/// keeps its rank, and a key first seen earlier than others moves before them.
#[derive(Clone, Debug)]
struct FirstSeen<K, V> {
    map: IndexMap<K, (Rank, V), FxBuildHasher>,
}

impl<K, V> Default for FirstSeen<K, V> {
    fn default() -> Self {
        FirstSeen {
            map: IndexMap::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> FirstSeen<K, V> {
    /// The first index in `0..upto` whose rank is not before `rank`.
    fn position(&self, table: &[FlowKey], upto: usize, rank: Rank) -> usize {
        let (mut lo, mut hi) = (0, upto);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if before(table, self.map[mid].0, rank) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The value of `key`, created if new, with `rank` taken into account.
    fn slot(&mut self, table: &[FlowKey], key: &K, rank: Rank) -> &mut V {
        self.slot_ranked(table, key, rank).0
    }

    /// [`FirstSeen::slot`], with the key's rank before this call (`rank` for a new key).
    fn slot_ranked(&mut self, table: &[FlowKey], key: &K, rank: Rank) -> (&mut V, Rank) {
        let mut was = rank;
        let at = match self.map.get_index_of(key) {
            Some(i) => {
                was = self.map[i].0;
                if before(table, rank, self.map[i].0) {
                    let j = self.position(table, i, rank);
                    self.map[i].0 = rank;
                    self.map.move_index(i, j);
                    j
                } else {
                    i
                }
            }
            None => {
                let len = self.map.len();
                let j = match self.map.last() {
                    Some((_, (last, _))) if before(table, rank, *last) => {
                        self.position(table, len, rank)
                    }
                    _ => len,
                };
                self.map.shift_insert(j, key.clone(), (rank, V::default()));
                j
            }
        };
        (&mut self.map[at].1, was)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (_, v))| (k, v))
    }
}

/// A dict key of the window hash: an address or a port (written as their text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Atom {
    Ip(IpAddr),
    Port(u16),
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::Ip(ip) => ip.fmt(f),
            Atom::Port(p) => p.fmt(f),
        }
    }
}

/// Entries of a small inner dict kept in a vector before it becomes a map.
const SMALL: usize = 12;

/// The inner packet-count dict of a family key (`dstports`, `dstips`, `srcips`): most hold one
/// or a few keys, so they start as a short vector in first-seen order.
#[derive(Clone, Debug, Default)]
enum Inner {
    #[default]
    Empty,
    /// The usual case: one key, no allocation. Every flow of the family key had it, so its
    /// count is the family key's packets and its rank the family key's rank.
    One(Atom),
    Small(Vec<(Atom, Rank, u64)>),
    Large(Box<FirstSeen<Atom, u64>>),
}

impl Inner {
    /// Count `n` packets of a flow of rank `rank` for `key`. `own` is the family key's rank and
    /// packets before this flow (what a `One` stands for).
    fn add(&mut self, table: &[FlowKey], key: Atom, rank: Rank, n: u64, own: (Rank, u64)) {
        match self {
            Inner::Empty => *self = Inner::One(key),
            Inner::One(k) if *k == key => {}
            Inner::One(k) => {
                let mut v = Vec::with_capacity(2);
                v.push((*k, own.0, own.1));
                *self = Inner::Small(v);
                self.add(table, key, rank, n, own);
            }
            Inner::Large(m) => *m.slot(table, &key, rank) += n,
            Inner::Small(v) => {
                let mut count = n;
                if let Some(i) = v.iter().position(|e| e.0 == key) {
                    if !before(table, rank, v[i].1) {
                        v[i].2 += n;
                        return;
                    }
                    count += v.remove(i).2;
                }
                let at = v
                    .iter()
                    .rposition(|e| before(table, e.1, rank))
                    .map_or(0, |i| i + 1);
                if v.capacity() == v.len() {
                    v.reserve_exact(if v.is_empty() { 1 } else { v.len() });
                }
                v.insert(at, (key, rank, count));
                if v.len() > SMALL {
                    let mut m = FirstSeen::default();
                    for (k, r, c) in v.drain(..) {
                        m.map.insert(k, (r, c));
                    }
                    *self = Inner::Large(Box::new(m));
                }
            }
        }
    }

    /// Its entries, in order, into the object `w`; `pkts` is the family key's packets.
    fn write(&self, w: &mut ObjectWriter, pkts: u64) {
        let mut put = |k: &Atom, c: u64| {
            w.int(&k.to_string(), c as i64);
        };
        match self {
            Inner::Empty => {}
            Inner::One(k) => put(k, pkts),
            Inner::Small(v) => v.iter().for_each(|e| put(&e.0, e.2)),
            Inner::Large(m) => m.iter().for_each(|(k, c)| put(k, *c)),
        }
    }
}

/// The six families of per-key totals (reference §4), by the profile's side.
const FAMILIES: [&str; 6] = [
    "DstIPsClient",
    "DstPortsClient",
    "SrcPortsClient",
    "SrcIPsServer",
    "DstPortsServer",
    "SrcPortsServer",
];

/// A family field: `<family><PROTO><Established|NotEstablished>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FamilyField {
    family: u8,
    /// Index into the window's protocol names.
    proto: u16,
    established: bool,
}

impl FamilyField {
    fn name(&self, protos: &[CompactString]) -> String {
        let state = if self.established {
            "Established"
        } else {
            "NotEstablished"
        };
        let proto = protos.get(self.proto as usize).map_or("", |p| p.as_str());
        format!(
            "{}{}{state}",
            FAMILIES[self.family as usize],
            proto.to_uppercase()
        )
    }

    /// The name of the inner dict of each key.
    fn inner_name(&self) -> &'static str {
        match self.family {
            0 | 3 => "dstports",
            4 | 5 => "srcips",
            _ => "dstips",
        }
    }
}

/// A tuple: `<peer>:<dport>:<proto>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TupleKey {
    peer: IpAddr,
    dport: u16,
    /// Index into the window's protocol names.
    proto: u16,
}

/// Which field of the hash changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Field {
    DstIps,
    SrcIps,
    OutTuples,
    InTuples,
    Family(FamilyField),
}

/// Totals of one key of a family, with its inner per-IP or per-port packet dict.
#[derive(Clone, Debug, Default)]
struct Totals {
    flows: u64,
    pkts: u64,
    bytes: u64,
    inner: Inner,
}

/// One flow of a tuple: its index in the window's flow table and its size and duration
/// classes (all its letter needs besides the times).
#[derive(Clone, Copy, Debug)]
struct TupleFlow {
    id: u32,
    classes: (u8, u8),
}

/// A tuple's flows in the contract's order.
type TupleFlows = SmallVec<[TupleFlow; 2]>;

/// Everything the per-window hash holds. A function of the set of flows added: counts are
/// sums, dict key order and letters follow the contract's flow order (see [`FirstSeen`]).
#[derive(Clone, Debug, Default)]
pub struct WindowAggregate {
    /// Every flow added, by id (the ranks point here).
    table: Vec<FlowKey>,
    /// The protocol names seen (lowercase), by index.
    protos: Vec<CompactString>,
    /// Family field → (key → totals).
    families: FirstSeen<FamilyField, FirstSeen<Atom, Totals>>,
    dst_ips: FirstSeen<Atom, u64>,
    src_ips: FirstSeen<Atom, u64>,
    /// Tuple → its flows in order (letters are computed when rendered); most tuples have one
    /// or two flows, kept inline.
    out_tuples: FirstSeen<TupleKey, TupleFlows>,
    in_tuples: FirstSeen<TupleKey, TupleFlows>,
    /// Fields changed since the last [`WindowAggregate::take_changed`].
    changed: HashSet<Field>,
}

impl WindowAggregate {
    /// Count one conn flow for the profile on each side in `roles` (a flow from a profile to
    /// itself counts on both); `key` is the flow's place in the contract's order. Returns the
    /// flow's id: its index in [`WindowAggregate::table`].
    pub fn add(&mut self, flow: &Flow, roles: &[Role], key: FlowKey) -> u32 {
        let proto = match self.protos.iter().position(|p| *p == flow.proto) {
            Some(i) => i as u16,
            None => {
                self.protos.push(flow.proto.clone());
                (self.protos.len() - 1) as u16
            }
        };
        let id = self.table.len() as u32;
        self.table.push(key);
        let table = &self.table;
        let established = matches!(flow.state(), ConnSummary::Established);
        let (pkts, bytes) = (flow.pkts(), flow.allbytes());
        let (sport, dport) = (Atom::Port(flow.sport), Atom::Port(flow.dport));
        let classes = symbol_classes(flow.dur.unwrap_or(0.0), bytes);
        for (role_index, role) in roles.iter().enumerate() {
            let base = role_index as u8 * 4;
            let rank = (id, base);
            // The peer is the other end; the families are named from the profile's side.
            let (peer, tuples, peer_counts, fields, first_family) = match role {
                Role::Client => (
                    flow.daddr,
                    &mut self.out_tuples,
                    &mut self.dst_ips,
                    (Field::OutTuples, Field::DstIps),
                    0u8,
                ),
                Role::Server => (
                    flow.saddr,
                    &mut self.in_tuples,
                    &mut self.src_ips,
                    (Field::InTuples, Field::SrcIps),
                    3u8,
                ),
            };
            let tuple = TupleKey {
                peer,
                dport: flow.dport,
                proto,
            };
            let flows = tuples.slot(table, &tuple, rank);
            let f = TupleFlow { id, classes };
            let at = flows
                .iter()
                .rposition(|x| table[x.id as usize] < table[id as usize])
                .map_or(0, |i| i + 1);
            if at == flows.len() {
                flows.push(f);
            } else {
                flows.insert(at, f);
            }
            let peer = Atom::Ip(peer);
            *peer_counts.slot(table, &peer, rank) += 1;
            self.changed.insert(fields.0);
            self.changed.insert(fields.1);
            let entries = [(peer, dport), (dport, peer), (sport, peer)];
            for (i, (k, inner)) in entries.into_iter().enumerate() {
                let field = FamilyField {
                    family: first_family + i as u8,
                    proto,
                    established,
                };
                let field_rank = (id, base + i as u8 + 1);
                let (t, was) = self
                    .families
                    .slot(table, &field, field_rank)
                    .slot_ranked(table, &k, rank);
                let own = (was, t.pkts);
                t.flows += 1;
                t.pkts += pkts;
                t.bytes += bytes;
                t.inner.add(table, inner, rank, pkts, own);
                self.changed.insert(Field::Family(field));
            }
        }
        id
    }

    /// The key of every flow added, by id.
    pub fn table(&self) -> &[FlowKey] {
        &self.table
    }

    /// Every hash field with its Python-JSON value.
    pub fn fields(&self) -> Vec<(String, String)> {
        self.render(|_| true)
    }

    /// The fields changed since the last call (all of them the first time), with their values.
    pub fn take_changed(&mut self) -> Vec<(String, String)> {
        let changed = std::mem::take(&mut self.changed);
        self.render(|f| changed.contains(f))
    }

    /// Whether some field changed since the last [`WindowAggregate::take_changed`].
    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Mark every field changed (after a reload, so all are written again).
    pub fn mark_all_changed(&mut self) {
        self.changed.extend([
            Field::DstIps,
            Field::SrcIps,
            Field::OutTuples,
            Field::InTuples,
        ]);
        for (f, _) in self.families.iter() {
            self.changed.insert(Field::Family(f.clone()));
        }
    }

    fn render(&self, wanted: impl Fn(&Field) -> bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, field, counts) in [
            ("DstIPs", Field::DstIps, &self.dst_ips),
            ("SrcIPs", Field::SrcIps, &self.src_ips),
        ] {
            if !counts.is_empty() && wanted(&field) {
                let mut w = ObjectWriter::with_capacity(counts.len() * 24);
                for (k, v) in counts.iter() {
                    w.int(&k.to_string(), *v as i64);
                }
                out.push((name.to_string(), w.finish()));
            }
        }
        for (field, keys) in self.families.iter() {
            if !wanted(&Field::Family(field.clone())) {
                continue;
            }
            let inner_name = field.inner_name();
            let mut w = ObjectWriter::with_capacity(keys.len() * 96);
            for (k, t) in keys.iter() {
                w.object(&k.to_string(), |e| {
                    e.int("totalflows", t.flows as i64)
                        .int("totalpkt", t.pkts as i64)
                        .int("totalbytes", t.bytes as i64)
                        .object(inner_name, |i| t.inner.write(i, t.pkts));
                });
            }
            out.push((field.name(&self.protos), w.finish()));
        }
        for (name, field, tuples) in [
            ("OutTuples", Field::OutTuples, &self.out_tuples),
            ("InTuples", Field::InTuples, &self.in_tuples),
        ] {
            if !tuples.is_empty() && wanted(&field) {
                out.push((
                    name.to_string(),
                    tuples_json(&self.table, &self.protos, tuples),
                ));
            }
        }
        out
    }
}

/// `{"<ip>:<port>:<proto>": ["<letters>", [<prev or false>, <cur>]], …}`
fn tuples_json(
    table: &[FlowKey],
    protos: &[CompactString],
    tuples: &FirstSeen<TupleKey, TupleFlows>,
) -> String {
    let mut out = String::with_capacity(tuples.len() * 64);
    out.push('{');
    let mut letters = String::new();
    for (i, (key, flows)) in tuples.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        letters.clear();
        let mut clock = TupleClock::default();
        for f in flows {
            let ts = table.get(f.id as usize).map_or(0.0, |k| k.ts.0);
            clock = add_symbol_classes(&mut letters, clock, ts, f.classes);
        }
        let proto = protos.get(key.proto as usize).map_or("", |p| p.as_str());
        let key = format!("{}:{}:{proto}", key.peer, key.dport);
        crate::store::pyjson::write_json_str(&mut out, &key);
        out.push_str(": [");
        crate::store::pyjson::write_json_str(&mut out, &letters);
        out.push_str(", [");
        match clock.prev {
            Some(p) => write_json_float(&mut out, p),
            None => out.push_str("false"),
        }
        out.push_str(", ");
        match clock.last {
            Some(l) => write_json_float(&mut out, l),
            None => out.push_str("false"),
        }
        out.push_str("]]");
    }
    out.push('}');
    out
}
