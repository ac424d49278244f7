//! The per-profile, per-timewindow hash (`profile_<ip>_timewindow<N>`), reference §4 with the
//! spec's fixes: `…PortsServer…` inner `srcips` hold the source IP (bug 14) and `InTuples` are
//! keyed `<saddr>:<dport>:<proto>` (bug 15).
//!
//! A window is a function of the set of its flows: they may be added in any order, and every
//! JSON object keeps the key order a Python dict filled in the contract's flow order (ts, uid,
//! position) would have.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use compact_str::CompactString;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashSet as HashSet};
use smallvec::SmallVec;

use super::evidence::{self, Judge, ScanFlow, Scans};
use super::letters::{TupleClock, add_symbol_classes, symbol_classes};
use crate::model::flow::{Flow, Role};
use crate::model::layout::Layout;
use crate::model::order::{FlowKey, TotalF64};
use crate::model::state::ConnSummary;
use crate::pyjson::json_key;
use crate::pyjson::{ObjectWriter, push_ip, write_json_float};

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

fn hash_of<K: Hash>(key: &K) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Room for more entries in a growing vector: half as much again (not twice), so a full
/// window wastes less memory; still geometric, so pushing stays amortized O(1).
fn grow<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(4));
    }
}

/// One key of a [`FirstSeen`] dict.
#[derive(Clone, Debug)]
struct Slot<K, V> {
    key: K,
    rank: Rank,
    value: V,
}

/// A dict whose keys iterate in the order they were first seen in the contract's flow order
/// (as a Python dict filled flow by flow), whatever order the flows are added in: each key
/// keeps its rank (lowered when an earlier flow has it), and is iterated by rank.
///
/// Kept compact, since an open window holds one per family field and these hold most of its
/// memory: the entries in a vector in the order they were added, a table of their indices (no
/// stored hashes), and a flag for the usual case where adding order is rank order already.
#[derive(Clone, Debug)]
struct FirstSeen<K, V> {
    entries: Vec<Slot<K, V>>,
    index: HashTable<u32>,
    /// Whether `entries` are in rank order.
    sorted: bool,
}

impl<K, V> Default for FirstSeen<K, V> {
    fn default() -> Self {
        FirstSeen {
            entries: Vec::new(),
            index: HashTable::new(),
            sorted: true,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> FirstSeen<K, V> {
    /// The value of `key`, created if new, with `rank` taken into account.
    fn slot(&mut self, table: &[FlowKey], key: &K, rank: Rank) -> &mut V {
        self.slot_ranked(table, key, rank).0
    }

    /// [`FirstSeen::slot`], with the key's rank before this call (`rank` for a new key).
    fn slot_ranked(&mut self, table: &[FlowKey], key: &K, rank: Rank) -> (&mut V, Rank) {
        let hash = hash_of(key);
        let FirstSeen {
            entries,
            index,
            sorted,
        } = self;
        let found = index
            .find(hash, |&i| entries[i as usize].key == *key)
            .map(|&i| i as usize);
        let at = match found {
            Some(i) => {
                let was = entries[i].rank;
                if before(table, rank, was) {
                    entries[i].rank = rank;
                    if *sorted && i > 0 && !before(table, entries[i - 1].rank, rank) {
                        *sorted = false;
                    }
                }
                return (&mut entries[i].value, was);
            }
            None => entries.len(),
        };
        if *sorted && at > 0 && !before(table, entries[at - 1].rank, rank) {
            *sorted = false;
        }
        grow(entries);
        entries.push(Slot {
            key: key.clone(),
            rank,
            value: V::default(),
        });
        index.insert_unique(hash, at as u32, |&i| hash_of(&entries[i as usize].key));
        (&mut entries[at].value, rank)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key and value, in rank order.
    fn for_each(&self, table: &[FlowKey], mut f: impl FnMut(&K, &V)) {
        if self.sorted {
            self.entries.iter().for_each(|s| f(&s.key, &s.value));
            return;
        }
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        let rank = |i: &u32| self.entries[*i as usize].rank;
        order.sort_unstable_by(|a, b| {
            let (a, b) = (rank(a), rank(b));
            if before(table, a, b) {
                std::cmp::Ordering::Less
            } else if before(table, b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        for i in order {
            let s = &self.entries[i as usize];
            f(&s.key, &s.value);
        }
    }
}

/// The addresses of a window's peers, each stored once: dict keys refer to them by a 4-byte
/// id (an address takes 17 bytes, and most keys of a window hold one).
#[derive(Clone, Debug, Default)]
struct Peers {
    ips: Vec<IpAddr>,
    index: HashTable<u32>,
}

impl Peers {
    /// The id of `ip`, added if new.
    fn id(&mut self, ip: IpAddr) -> u32 {
        let hash = hash_of(&ip);
        let Peers { ips, index } = self;
        if let Some(&i) = index.find(hash, |&i| ips[i as usize] == ip) {
            return i;
        }
        let id = ips.len() as u32;
        grow(ips);
        ips.push(ip);
        index.insert_unique(hash, id, |&i| hash_of(&ips[i as usize]));
        id
    }

    /// The address of an id.
    fn ip(&self, id: u32) -> Option<IpAddr> {
        self.ips.get(id as usize).copied()
    }
}

/// A dict key of the window hash: a peer's id ([`Peers`]) or a port, as the dict's field says.
type Atom = u32;

/// What a dict's keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtomKind {
    Peer,
    Port,
}

/// Writes dict keys as their text.
struct KeyText<'a> {
    peers: &'a Peers,
    buf: String,
}

impl<'a> KeyText<'a> {
    fn new(peers: &'a Peers) -> Self {
        KeyText {
            peers,
            buf: String::with_capacity(48),
        }
    }

    /// The text of `atom` read as `kind`.
    fn text(&mut self, kind: AtomKind, atom: Atom) -> &str {
        self.buf.clear();
        match kind {
            AtomKind::Port => {
                self.buf.push_str(itoa::Buffer::new().format(atom));
            }
            AtomKind::Peer => {
                if let Some(ip) = self.peers.ip(atom) {
                    push_ip(&mut self.buf, ip);
                }
            }
        }
        &self.buf
    }
}

/// Entries of a small inner dict kept in a vector before it becomes a map.
const SMALL: usize = 12;

/// An inner dict with more than one key.
#[derive(Clone, Debug)]
enum Many {
    /// Up to [`SMALL`] keys in rank order, with their rank and packets.
    Small(Vec<(Atom, Rank, u64)>),
    Large(FirstSeen<Atom, u64>),
}

/// The inner packet-count dict of a family key (`dstports`, `dstips`, `srcips`): most hold one
/// key, so that one is stored inline; more go to the heap, as a short vector in rank order
/// first.
#[derive(Clone, Debug, Default)]
enum Inner {
    #[default]
    Empty,
    /// The usual case: one key, no allocation. Every flow of the family key had it, so its
    /// count is the family key's packets and its rank the family key's rank.
    One(Atom),
    Many(Box<Many>),
}

impl Inner {
    /// Count `n` packets of a flow of rank `rank` for `key`. `own` is the family key's rank and
    /// packets before this flow (what a `One` stands for).
    fn add(&mut self, table: &[FlowKey], key: Atom, rank: Rank, n: u64, own: (Rank, u64)) {
        let many = match self {
            Inner::Empty => {
                *self = Inner::One(key);
                return;
            }
            Inner::One(k) if *k == key => return,
            Inner::One(k) => {
                let mut v = Vec::with_capacity(2);
                v.push((*k, own.0, own.1));
                *self = Inner::Many(Box::new(Many::Small(v)));
                match self {
                    Inner::Many(m) => m,
                    _ => return,
                }
            }
            Inner::Many(m) => m,
        };
        match &mut **many {
            Many::Large(m) => *m.slot(table, &key, rank) += n,
            Many::Small(v) => {
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
                        *m.slot(table, &k, r) += c;
                    }
                    **many = Many::Large(m);
                }
            }
        }
    }

    /// Its entries, in order, into the object `w`; `pkts` is the family key's packets, `kind`
    /// what its keys are. `boxed`: each count as `{"pkts": N}` (the current Kalipso's
    /// `dstips`/`srcips`), else the bare number.
    fn write(
        &self,
        table: &[FlowKey],
        keys: &mut KeyText<'_>,
        kind: AtomKind,
        w: &mut ObjectWriter,
        pkts: u64,
        boxed: bool,
    ) {
        let mut put = |k: &str, n: u64| {
            if boxed {
                w.object(k, |o| {
                    o.int(json_key!("pkts"), n as i64);
                });
            } else {
                w.int(k, n as i64);
            }
        };
        match self {
            Inner::Empty => {}
            Inner::One(k) => put(keys.text(kind, *k), pkts),
            Inner::Many(m) => match &**m {
                Many::Small(v) => v.iter().for_each(|e| put(keys.text(kind, e.0), e.2)),
                Many::Large(m) => m.for_each(table, |k, c| put(keys.text(kind, *k), *c)),
            },
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
        let family = FAMILIES[self.family as usize];
        let mut name = String::with_capacity(family.len() + proto.len() + state.len());
        name.push_str(family);
        if proto.is_ascii() {
            name.extend(proto.chars().map(|c| c.to_ascii_uppercase()));
        } else {
            name.push_str(&proto.to_uppercase());
        }
        name.push_str(state);
        name
    }

    /// The name of the inner dict of each key.
    fn inner_name(&self) -> &'static str {
        match self.family {
            0 | 3 => "dstports",
            4 | 5 => "srcips",
            _ => "dstips",
        }
    }

    /// What the keys of the family's dict are, and what the keys of their inner dicts are.
    fn kinds(&self) -> (AtomKind, AtomKind) {
        match self.family {
            0 | 3 => (AtomKind::Peer, AtomKind::Port),
            _ => (AtomKind::Port, AtomKind::Peer),
        }
    }
}

/// A tuple: `<peer>:<dport>:<proto>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TupleKey {
    /// The peer's id ([`Peers`]).
    peer: u32,
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
    Evidence,
    Family(FamilyField),
}

/// Totals of one key of a family, with its inner per-IP or per-port packet dict. `flows`
/// counts flows of one window, so it fits the window's 32-bit flow ids.
#[derive(Clone, Debug, Default)]
struct Totals {
    flows: u32,
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
/// sums, dict key order and letters follow the contract's flow order (see `FirstSeen`).
#[derive(Clone, Debug, Default)]
pub struct WindowAggregate {
    /// Every flow added, by id (the ranks point here).
    table: Vec<FlowKey>,
    /// The protocol names seen (lowercase), by index.
    protos: Vec<CompactString>,
    /// The peers' addresses, by id.
    peers: Peers,
    /// Family field → (key → totals).
    families: FirstSeen<FamilyField, FirstSeen<Atom, Totals>>,
    /// Peer → flows (a flow count fits 32 bits, as the flow ids do).
    dst_ips: FirstSeen<Atom, u32>,
    src_ips: FirstSeen<Atom, u32>,
    /// Tuple → its flows in order (letters are computed when rendered); most tuples have one
    /// or two flows, kept inline.
    out_tuples: FirstSeen<TupleKey, TupleFlows>,
    in_tuples: FirstSeen<TupleKey, TupleFlows>,
    /// The profile's not-established TCP flows (the port-scan evidence).
    scans: Scans,
    /// Names under a listed domain (the blocklist evidence), with the earliest record (ts,
    /// uid) naming each.
    domains: rustc_hash::FxHashMap<CompactString, (f64, CompactString)>,
    /// Whether Redis may hold an `Evidence` field of this window, and a `BlockRequest` (so
    /// that one no longer right is removed).
    evidence_sent: bool,
    blocked_sent: bool,
    /// Fields changed since the last [`WindowAggregate::take_changed`].
    changed: HashSet<Field>,
}

/// What [`WindowAggregate::take_changed`] gives: fields to set, fields to remove, and whether
/// the window is (or is no longer) detected.
#[derive(Debug, Default)]
pub struct Changed {
    /// Fields and their values.
    pub fields: Vec<(String, String)>,
    /// Fields to remove (an `Evidence` or `BlockRequest` no longer right).
    pub removed: Vec<&'static str>,
    /// `Some(true)`: the window is detected; `Some(false)`: no longer; `None`: as it was.
    pub detected: Option<bool>,
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
        grow(&mut self.table);
        self.table.push(key);
        let table = &self.table;
        let established = matches!(flow.state(), ConnSummary::Established);
        let (pkts, bytes) = (flow.pkts(), flow.allbytes());
        let (sport, dport) = (Atom::from(flow.sport), Atom::from(flow.dport));
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
            if *role == Role::Client && !established && flow.proto == "tcp" {
                self.scans.add(
                    table,
                    ScanFlow {
                        id,
                        dst: peer,
                        dport: flow.dport,
                        pkts,
                    },
                );
                self.changed.insert(Field::Evidence);
            }
            let peer = self.peers.id(peer);
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

    /// A dns query, http host or ssl server name under a listed domain, named by a record of
    /// time `ts` and uid `uid` (the earliest record naming it decides its place).
    pub fn add_domain_hit(&mut self, ts: f64, uid: &str, name: &str) {
        let name = CompactString::new(name.trim_end_matches('.').to_ascii_lowercase());
        let at = (ts, CompactString::new(uid));
        match self.domains.entry(name) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let was = e.get();
                if (TotalF64(at.0), &at.1) >= (TotalF64(was.0), &was.1) {
                    return;
                }
                e.insert(at);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(at);
            }
        }
        self.changed.insert(Field::Evidence);
    }

    /// Every hash field with its Python-JSON value, `Evidence` and `BlockRequest` included.
    pub fn fields(&self, judge: &Judge<'_>) -> Vec<(String, String)> {
        let mut out = self.render(judge.layout, |_| true);
        if let Some((evidence, detected)) = self.evidence(judge) {
            out.push(("Evidence".to_string(), evidence));
            if detected {
                out.push(("BlockRequest".to_string(), "True".to_string()));
            }
        }
        out
    }

    /// The fields changed since the last call (all of them the first time), with their values;
    /// `Evidence` and `BlockRequest` when the records they depend on changed, removed when no
    /// longer right (a late flow can lower a scan's packets; a list can shrink on SIGHUP).
    pub fn take_changed(&mut self, judge: &Judge<'_>) -> Changed {
        let changed = std::mem::take(&mut self.changed);
        let mut out = Changed {
            fields: self.render(judge.layout, |f| changed.contains(f)),
            ..Changed::default()
        };
        // A listed peer can come with any flow (DstIPs/SrcIPs change with every one).
        if !(changed.contains(&Field::Evidence)
            || changed.contains(&Field::DstIps)
            || changed.contains(&Field::SrcIps))
        {
            return out;
        }
        self.scans.settle(&self.table);
        let (evidence, detected) = match self.evidence(judge) {
            Some((e, d)) => (Some(e), d),
            None => (None, false),
        };
        match evidence {
            Some(e) => {
                out.fields.push(("Evidence".to_string(), e));
                self.evidence_sent = true;
            }
            None if self.evidence_sent => {
                out.removed.push("Evidence");
                self.evidence_sent = false;
            }
            None => {}
        }
        if detected {
            out.fields
                .push(("BlockRequest".to_string(), "True".to_string()));
            out.detected = Some(true);
            self.blocked_sent = true;
        } else if self.blocked_sent {
            out.removed.push("BlockRequest");
            out.detected = Some(false);
            self.blocked_sent = false;
        }
        out
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
            Field::Evidence,
        ]);
        for s in &self.families.entries {
            self.changed.insert(Field::Family(s.key.clone()));
        }
        // What Redis holds of the evidence is not known after a reload.
        self.evidence_sent = true;
        self.blocked_sent = true;
    }

    /// The `Evidence` value and whether the window is detected, if it has evidence.
    fn evidence(&self, judge: &Judge<'_>) -> Option<(String, bool)> {
        let mut peers = Vec::new();
        if judge.ipinfo.has_ips() {
            for counts in [&self.dst_ips, &self.src_ips] {
                for s in &counts.entries {
                    if let Some(ip) = self.peers.ip(s.key) {
                        peers.push((ip, s.rank.0));
                    }
                }
            }
        }
        evidence::judge(judge, &self.table, &self.scans, &peers, &self.domains)
    }

    fn render(&self, layout: Layout, wanted: impl Fn(&Field) -> bool) -> Vec<(String, String)> {
        let table = &self.table;
        // The current Kalipso reads `{"<ip>": {"pkts": N}}` in the ports families.
        let boxed = layout == Layout::Kalipso;
        let mut keys = KeyText::new(&self.peers);
        let mut out = Vec::new();
        for (name, field, counts) in [
            ("DstIPs", Field::DstIps, &self.dst_ips),
            ("SrcIPs", Field::SrcIps, &self.src_ips),
        ] {
            if !counts.is_empty() && wanted(&field) {
                let mut w = ObjectWriter::with_capacity(counts.len() * 24);
                counts.for_each(table, |k, v| {
                    w.int(keys.text(AtomKind::Peer, *k), i64::from(*v));
                });
                out.push((name.to_string(), w.finish()));
            }
        }
        self.families.for_each(table, |field, dict| {
            if !wanted(&Field::Family(field.clone())) {
                return;
            }
            let inner_name = field.inner_name();
            let (kind, inner_kind) = field.kinds();
            let mut w = ObjectWriter::with_capacity(dict.len() * 96);
            let mut inner_keys = KeyText::new(&self.peers);
            dict.for_each(table, |k, t| {
                w.object(keys.text(kind, *k), |e| {
                    e.int(json_key!("totalflows"), i64::from(t.flows))
                        .int(json_key!("totalpkt"), t.pkts as i64)
                        .int(json_key!("totalbytes"), t.bytes as i64)
                        .object(inner_name, |i| {
                            let boxed = boxed && inner_kind == AtomKind::Peer;
                            t.inner
                                .write(table, &mut inner_keys, inner_kind, i, t.pkts, boxed)
                        });
                });
            });
            out.push((field.name(&self.protos), w.finish()));
        });
        for (name, field, tuples) in [
            ("OutTuples", Field::OutTuples, &self.out_tuples),
            ("InTuples", Field::InTuples, &self.in_tuples),
        ] {
            if !tuples.is_empty() && wanted(&field) {
                out.push((
                    name.to_string(),
                    tuples_json(table, &self.protos, &self.peers, tuples, layout),
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
    peers: &Peers,
    tuples: &FirstSeen<TupleKey, TupleFlows>,
    layout: Layout,
) -> String {
    // `ip:port:proto` (2020); `ip-port-proto` for the current Kalipso, which splits on `-`
    // (unambiguous for IPv6 too).
    let sep = match layout {
        Layout::Kalipso2020 => ':',
        Layout::Kalipso => '-',
    };
    let mut out = String::with_capacity(tuples.len() * 64);
    out.push('{');
    let mut letters = String::new();
    let mut key_text = String::new();
    let mut first = true;
    tuples.for_each(table, |key, flows| {
        if !first {
            out.push_str(", ");
        }
        first = false;
        letters.clear();
        let mut clock = TupleClock::default();
        for f in flows {
            let ts = table.get(f.id as usize).map_or(0.0, |k| k.ts.0);
            clock = add_symbol_classes(&mut letters, clock, ts, f.classes);
        }
        let proto = protos.get(key.proto as usize).map_or("", |p| p.as_str());
        key_text.clear();
        if let Some(ip) = peers.ip(key.peer) {
            push_ip(&mut key_text, ip);
        }
        key_text.push(sep);
        key_text.push_str(itoa::Buffer::new().format(key.dport));
        key_text.push(sep);
        key_text.push_str(proto);
        crate::pyjson::write_json_str(&mut out, &key_text);
        out.push_str(": [");
        crate::pyjson::write_json_str(&mut out, &letters);
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
    });
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::order::Position;
    use proptest::prelude::*;

    /// A flow from small pools of addresses and ports, so that keys repeat, inner dicts grow
    /// past [`SMALL`] and ranks get lowered by earlier flows.
    fn flow(i: usize, (ts, s, d, sp, dp, pk): (u8, u8, u8, u8, u8, u8)) -> (Flow, FlowKey) {
        let ip = |n: u8| -> IpAddr {
            if n % 5 == 0 {
                format!("2001:db8::{n}")
                    .parse()
                    .unwrap_or(IpAddr::from([0; 4]))
            } else {
                IpAddr::from([10, 0, n % 4, n % 16])
            }
        };
        let f = Flow {
            ts: 1000.0 + f64::from(ts),
            uid: CompactString::new(format!("C{i}")),
            saddr: ip(s),
            sport: 1000 + u16::from(sp % 24),
            daddr: ip(d),
            dport: [53, 80, 443, 8080][usize::from(dp % 4)],
            proto: CompactString::new(if dp % 3 == 0 { "udp" } else { "tcp" }),
            appproto: CompactString::default(),
            dur: Some(f64::from(pk) / 7.0),
            origstate: CompactString::new(if pk % 2 == 0 { "SF" } else { "S0" }),
            spkts: u64::from(pk),
            dpkts: 1,
            sbytes: u64::from(pk) * 100,
            dbytes: 7,
        };
        let key = FlowKey::new(
            f.ts,
            &f.uid,
            Position {
                line: i as u64,
                seq: i as u64,
            },
        );
        (f, key)
    }

    fn fields_of(flows: &[(Flow, FlowKey)], order: &[usize]) -> Vec<(String, String)> {
        let mut agg = WindowAggregate::default();
        for &i in order {
            let (f, k) = &flows[i];
            let roles: &[Role] = match i % 3 {
                0 => &[Role::Client],
                1 => &[Role::Server],
                _ => &[Role::Client, Role::Server],
            };
            agg.add(f, roles, k.clone());
        }
        let mut fields = agg.fields(&Judge::plain(IpAddr::from([10, 0, 0, 1])));
        fields.sort();
        fields
    }

    proptest! {
        /// The hash is a function of the set of flows: any adding order gives the same bytes.
        #[test]
        fn fields_do_not_depend_on_adding_order(
            raw in proptest::collection::vec(any::<(u8, u8, u8, u8, u8, u8)>(), 1..300),
            seed in any::<u64>(),
        ) {
            let flows: Vec<_> = raw.into_iter().enumerate().map(|(i, r)| flow(i, r)).collect();
            let mut in_order: Vec<usize> = (0..flows.len()).collect();
            in_order.sort_by(|a, b| flows[*a].1.cmp(&flows[*b].1));
            let mut shuffled = in_order.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let reversed: Vec<usize> = in_order.iter().rev().copied().collect();
            let expected = fields_of(&flows, &in_order);
            prop_assert_eq!(&expected, &fields_of(&flows, &shuffled));
            prop_assert_eq!(&expected, &fields_of(&flows, &reversed));
        }
    }
}
