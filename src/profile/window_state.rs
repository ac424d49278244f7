//! One profile's timewindow in memory: the records not yet written, a compact summary of those
//! already written, and what changed since the last write.
//!
//! Everything stored for the window is a function of the *set* of records it holds. The
//! aggregate is order-independent by construction ([`WindowAggregate`]). Timeline entries are
//! kept in the contract's order (ts, uid, position): a complete entry after the last written
//! one is appended; a late one is inserted at its place ([`TimelineWrite`] inserts). Once a
//! conn's entry is written, its records leave memory; only its key and line count stay (the
//! [`LineIndex`]). A record that would change a written entry (a repeated uid, a dns/http/ssl
//! record for a written conn) sends the window back to Redis: it is reloaded whole, exactly
//! as a window reopened after eviction.

use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::aggregate::WindowAggregate;
use super::evidence::Judge;
use crate::model::alt::AltRecord;
use crate::model::flow::{Flow, Role, Roles};
use crate::model::layout::Layout;
pub use crate::model::order::{FlowKey, Position, TotalF64};
use crate::model::records::{self, frame};
use crate::pyjson::PyValue;
use crate::timeline::{TimelineStyle, entries, lines};
use crate::zeek::LogKind;

/// The order of one uid's alt records: (ts, log kind, position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AltKey {
    ts: TotalF64,
    kind: LogKind,
    pos: Position,
}

/// The copies of one uid in memory (their keys without the uid, which is the map key), and
/// whether Redis's `_flows` already holds the uid.
#[derive(Debug, Default)]
struct UidFlows {
    keys: Vec<(TotalF64, Position)>,
    stored: bool,
}

fn flow_key(uid: &str, k: &(TotalF64, Position)) -> FlowKey {
    FlowKey {
        ts: k.0,
        uid: CompactString::new(uid),
        pos: k.1,
    }
}

/// A flow, the side(s) this window's profile is on, and whether it is in Redis already.
#[derive(Clone, Debug)]
struct FlowEntry {
    /// Its index in the window's flow table.
    id: u32,
    flow: Flow,
    roles: Roles,
    written: bool,
}

/// An alt record and whether it is in Redis already.
#[derive(Clone, Debug)]
struct AltEntry {
    alt: AltRecord,
    written: bool,
}

/// How the `_timeline` list grows or is replaced.
#[derive(Clone, Debug, PartialEq)]
pub enum TimelineWrite {
    /// Push these lines at the end (the list so far is a prefix of the new one).
    Append(Vec<String>),
    /// Replace the whole list (the window was reloaded).
    Replace(Vec<String>),
}

/// Lines to insert into the written `_timeline` list: `(offset, lines)`, the offset counted in
/// the list as it was before any of these inserts, offsets ascending. Applied before an append.
pub type TimelineInserts = Vec<(usize, Vec<String>)>;

/// What a flush must write for one window. Every value is complete (an overwrite).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowWrite {
    /// Hash fields whose value changed since the last write.
    pub fields: Vec<(String, String)>,
    /// `_flows`: uid → flow JSON, for uids whose value changed.
    pub flows: Vec<(String, String)>,
    /// Our own record of repeated uids: uid → JSON list of every copy's flow JSON, in order
    /// (written only for uids seen more than once).
    pub copies: Vec<(String, String)>,
    /// `_altflows`: uid → the last alt record's JSON, for uids that changed.
    pub altflows: Vec<(String, String)>,
    /// Our own record of every alt record of a uid: uid → JSON list of
    /// `[ts, kind, saddr, daddr, value]`, the last without its value (it is the `_altflows`
    /// one; see `AltRecord::list_from_json`).
    pub alts: Vec<(String, String)>,
    /// `--no-flows`: the records of the uids that changed, in our compact form
    /// (`model::records`) instead of `flows`, `copies`, `altflows` and `alts`.
    pub records: Vec<u8>,
    /// Whether `records` holds every record of the window (the first write after a reload):
    /// it replaces what is stored instead of adding to it.
    pub records_whole: bool,
    /// Uids whose flows are new in Redis (for the `labels` counter).
    pub new_flow_uids: usize,
    /// Late entries inserted into the `_timeline` list (before `timeline` is applied).
    pub timeline_inserts: TimelineInserts,
    /// Change of the `_timeline` list, if any.
    pub timeline: Option<TimelineWrite>,
    /// Whether the window holds conn data (listed in `ModifiedTWForLogs`).
    pub has_conn: bool,
    /// Whether the window holds any data (listed in `twsprofile_<ip>`).
    pub has_data: bool,
    /// Hash fields to remove (an `Evidence` or `BlockRequest` no longer right).
    pub removed_fields: Vec<&'static str>,
    /// Whether its evidence reached the detection threshold (it joins `BlockedProfTW`), or no
    /// longer does (it leaves it); `None`: unchanged.
    pub detected: Option<bool>,
}

impl WindowWrite {
    /// Whether nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.removed_fields.is_empty()
            && self.flows.is_empty()
            && self.copies.is_empty()
            && self.altflows.is_empty()
            && self.alts.is_empty()
            && self.records.is_empty()
            && !self.records_whole
            && self.timeline_inserts.is_empty()
            && self.timeline.is_none()
    }

    /// About how many bytes of values it holds.
    pub fn size(&self) -> usize {
        let pairs = [
            &self.fields,
            &self.flows,
            &self.copies,
            &self.altflows,
            &self.alts,
        ]
        .into_iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
            + self.records.len();
        let inserted: usize = self
            .timeline_inserts
            .iter()
            .flat_map(|(_, l)| l)
            .map(String::len)
            .sum();
        let lines = match &self.timeline {
            Some(TimelineWrite::Append(l) | TimelineWrite::Replace(l)) => {
                l.iter().map(String::len).sum()
            }
            None => 0,
        };
        pairs + inserted + lines
    }

    /// Whether the timeline list changes.
    pub fn timeline_changed(&self) -> bool {
        self.timeline.is_some() || !self.timeline_inserts.is_empty()
    }
}

/// The written timeline entries in order with their line counts, in blocks, so a late entry
/// finds its offset in the list without walking every entry. An entry is its flow's id in the
/// window's flow table (`WindowAggregate::table`): 8 bytes instead of a copy of its key.
#[derive(Debug, Default)]
pub struct LineIndex {
    blocks: Vec<IndexBlock>,
}

#[derive(Debug, Default)]
struct IndexBlock {
    /// (flow id, line count), ordered by the flows' keys.
    entries: Vec<(u32, u32)>,
    lines: usize,
}

const BLOCK: usize = 512;

/// Whether flow `id` of `table` comes before `key` (an unknown id sorts last).
fn id_before(table: &[FlowKey], id: u32, key: &FlowKey) -> bool {
    table.get(id as usize).is_some_and(|k| k < key)
}

impl LineIndex {
    /// The list offset where an entry with `key` goes: the lines of every entry before it.
    pub fn offset(&self, key: &FlowKey, table: &[FlowKey]) -> usize {
        let mut off = 0;
        for b in &self.blocks {
            match b.entries.last() {
                Some((last, _)) if id_before(table, *last, key) => off += b.lines,
                _ => {
                    let n = b
                        .entries
                        .partition_point(|(id, _)| id_before(table, *id, key));
                    return off + b.entries[..n].iter().map(|e| e.1 as usize).sum::<usize>();
                }
            }
        }
        off
    }

    /// Record a written entry: flow `id` of `table`, with its line count.
    pub fn insert(&mut self, id: u32, lines: u32, table: &[FlowKey]) {
        let Some(key) = table.get(id as usize) else {
            return;
        };
        let at = self
            .blocks
            .iter()
            .position(|b| {
                b.entries
                    .last()
                    .is_some_and(|(last, _)| !id_before(table, *last, key))
            })
            .unwrap_or(self.blocks.len().saturating_sub(1));
        if self.blocks.is_empty() {
            self.blocks.push(IndexBlock::default());
        }
        let b = &mut self.blocks[at];
        let n = b
            .entries
            .partition_point(|(i, _)| id_before(table, *i, key));
        b.entries.insert(n, (id, lines));
        b.lines += lines as usize;
        if b.entries.len() > 2 * BLOCK {
            let rest = b.entries.split_off(BLOCK);
            let moved: usize = rest.iter().map(|e| e.1 as usize).sum();
            b.lines -= moved;
            self.blocks.insert(
                at + 1,
                IndexBlock {
                    entries: rest,
                    lines: moved,
                },
            );
        }
    }

    /// Written entries.
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.entries.len()).sum()
    }

    /// Whether no entry is written.
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(|b| b.entries.is_empty())
    }
}

/// A uid's 64-bit hash, for the set of uids that left memory.
fn uid_hash(uid: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(uid)
}

/// One profile's window.
#[derive(Debug, Default)]
pub struct WindowState {
    /// Flows in memory (not yet written, or the whole window after a reload).
    flows: BTreeMap<FlowKey, FlowEntry>,
    by_uid: HashMap<CompactString, UidFlows>,
    /// uid → its alt records in order (usually one or two: a vector, not a tree).
    alts: HashMap<CompactString, Vec<(AltKey, AltEntry)>>,
    /// Uids whose records are written and left memory, as 64-bit hashes ([`uid_hash`]): a
    /// collision only costs a needless reload, never a wrong result.
    spilled: HashSet<u64>,
    /// The written timeline entries that left memory.
    index: LineIndex,
    agg: WindowAggregate,
    dirty_flows: HashSet<CompactString>,
    dirty_alts: HashSet<CompactString>,
    /// Whether the Redis list is known to be exactly the entries of `index` (else the next
    /// write replaces it whole).
    timeline_known: bool,
    /// The last entry written in order (new entries after it are appended).
    timeline_upto: Option<FlowKey>,
    /// Whether some conn's timeline entry still waits for its join to complete.
    pub timeline_pending: bool,
    has_conn: bool,
    has_alts: bool,
    /// When the hash fields were last written (by this process).
    pub fields_written_at: Option<std::time::Instant>,
    /// Whether this window's Redis content has been merged in (or is known not to exist).
    pub loaded: bool,
    /// Whether the window has records not yet written.
    pub dirty: bool,
    /// `--no-flows`: records are written in our compact form (`model::records`).
    pub compact: bool,
    /// Whether every record is in memory and marked for writing (after a reload): the next
    /// compact write replaces the stored records.
    rewrite_all: bool,
    /// How many frames of records Redis holds for the window (as far as this process wrote
    /// them), and, read back when the window closes, those frames and the payloads written
    /// since: the closing write replaces them by one frame (a payload of a few records
    /// compresses to a quarter more than one of a whole window).
    records_frames: usize,
    records_log: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    /// Set while the window closes: a compact write then replaces the stored frames by one.
    pub closing: bool,
    /// Largest payload its frames are made one of ([`frame::MAX_WHOLE`]; tests lower it).
    pub records_whole_limit: usize,
    /// Its records outgrew `records_whole_limit`: its frames stay as written.
    records_whole_given_up: bool,
}

impl WindowState {
    /// An empty window; `loaded`: Redis is known to hold nothing for it (or it was merged).
    pub fn new(loaded: bool) -> WindowState {
        WindowState {
            loaded,
            timeline_known: loaded,
            records_whole_limit: frame::MAX_WHOLE,
            ..WindowState::default()
        }
    }

    /// Records that change what was written and left memory: the window must be merged with
    /// Redis again. Keeps only the records not written yet; everything else comes back with
    /// the reload.
    fn start_reload(&mut self) {
        let flows = std::mem::take(&mut self.flows);
        let alts = std::mem::take(&mut self.alts);
        let old = std::mem::replace(self, WindowState::new(false));
        self.has_conn = old.has_conn;
        self.has_alts = old.has_alts;
        self.timeline_pending = old.timeline_pending;
        self.compact = old.compact;
        self.closing = old.closing;
        self.records_whole_limit = old.records_whole_limit;
        for (key, e) in flows {
            if !e.written {
                self.insert_flow(key, e.flow, e.roles);
            }
        }
        for (_, records) in alts {
            for (key, a) in records {
                if !a.written {
                    self.insert_alt(key, a.alt);
                }
            }
        }
    }

    /// Add a conn flow on the given sides of this window's profile.
    pub fn add_flow(&mut self, flow: Flow, roles: Roles, pos: Position) {
        if self.spilled.contains(&uid_hash(&flow.uid)) {
            self.start_reload();
        }
        let key = FlowKey::new(flow.ts, &flow.uid, pos);
        self.insert_flow(key, flow, roles);
    }

    fn insert_flow(&mut self, key: FlowKey, flow: Flow, roles: Roles) {
        let id = self.agg.add(&flow, &roles, key.clone());
        let copies = self.by_uid.entry(key.uid.clone()).or_default();
        copies.keys.push((key.ts, key.pos));
        copies.keys.sort();
        self.dirty_flows.insert(key.uid.clone());
        self.flows.insert(
            key,
            FlowEntry {
                id,
                flow,
                roles,
                written: false,
            },
        );
        self.has_conn = true;
        self.dirty = true;
    }

    /// Add an alt record joined to a conn of this window (or an orphan stored here). The same
    /// record twice (same time, log and content — e.g. a directory ingested again) is kept once:
    /// alt records are not counted anywhere, and a sub-line must not appear twice.
    pub fn add_alt(&mut self, alt: AltRecord, pos: Position) {
        if self.spilled.contains(&uid_hash(&alt.uid)) {
            self.start_reload();
        }
        let key = AltKey {
            ts: TotalF64(alt.ts),
            kind: alt.kind,
            pos,
        };
        self.insert_alt(key, alt);
    }

    fn insert_alt(&mut self, key: AltKey, alt: AltRecord) {
        let uid = CompactString::new(&alt.uid);
        let records = self.alts.entry(uid.clone()).or_default();
        if records.iter().any(|(_, a)| a.alt == alt) {
            return;
        }
        let at = records.partition_point(|(k, _)| *k < key);
        records.insert(
            at,
            (
                key,
                AltEntry {
                    alt,
                    written: false,
                },
            ),
        );
        self.dirty_alts.insert(uid);
        self.has_alts = true;
        self.dirty = true;
    }

    /// Mark uids as already present in Redis's `_flows` (merged from a load).
    pub fn mark_stored(&mut self, uids: impl IntoIterator<Item = CompactString>) {
        for uid in uids {
            if let Some(u) = self.by_uid.get_mut(&uid) {
                u.stored = true;
            }
        }
    }

    /// Forget what was written, so the next write sends every field and the whole timeline
    /// (after a reload).
    pub fn mark_all_dirty(&mut self) {
        self.agg.mark_all_changed();
        self.timeline_known = false;
        self.timeline_upto = None;
        self.index = LineIndex::default();
        self.dirty_flows.extend(self.by_uid.keys().cloned());
        self.dirty_alts.extend(self.alts.keys().cloned());
        self.rewrite_all = true;
        self.dirty = true;
    }

    /// Whether hash fields changed since they were last written.
    pub fn fields_waiting(&self) -> bool {
        self.agg.has_changes()
    }

    /// Whether the window holds conn flows.
    pub fn has_conn(&self) -> bool {
        self.has_conn
    }

    /// Flows and alt records held in memory (not yet written, or waiting for their join).
    pub fn records_in_memory(&self) -> usize {
        self.flows.len() + self.alts.values().map(|a| a.len()).sum::<usize>()
    }

    /// Timeline entries written whose records left memory.
    pub fn written_entries(&self) -> usize {
        self.index.len()
    }

    /// The alt records of a uid in memory, in order.
    fn alts_of(&self, uid: &str) -> impl Iterator<Item = &AltRecord> {
        self.alts
            .get(uid)
            .into_iter()
            .flat_map(|m| m.iter().map(|(_, a)| &a.alt))
    }

    /// Every hash field with its current value.
    pub fn fields(&self, judge: &Judge<'_>) -> Vec<(String, String)> {
        self.agg.fields(judge)
    }

    /// Whether the flow at `key` carries its uid's timeline entry (only the first copy does).
    fn is_entry(&self, key: &FlowKey) -> bool {
        self.by_uid
            .get(&key.uid)
            .and_then(|u| u.keys.first())
            .is_some_and(|first| *first == (key.ts, key.pos))
    }

    /// The lines of one entry: its main line, followed by the uid's sub-lines or the Attention
    /// line. A conn of a host with itself in `all` mode is both client and server of one
    /// profile: still one main line (the contract: one per uid of the window), the outbound one.
    fn entry_lines(&self, e: &FlowEntry, style: &TimelineStyle) -> Vec<String> {
        let f = &e.flow;
        let role = if e.roles.contains(&Role::Client) {
            Role::Client
        } else {
            match e.roles.first() {
                Some(r) => *r,
                None => return Vec::new(),
            }
        };
        let prefix = style.clock.format(f.ts);
        if style.layout == Layout::Kalipso {
            // One JSON entry per flow, its last dns/http/ssl record as its `info`.
            let alt = self.alts_of(&f.uid).last();
            return entries::entry(f, role, &style.names, &prefix, alt)
                .into_iter()
                .collect();
        }
        // Each line is the prefix, a space and its text, built in one string.
        let start = |room: usize| {
            let mut line = String::with_capacity(prefix.len() + 1 + room);
            line.push_str(&prefix);
            line.push(' ');
            line
        };
        let mut out = Vec::new();
        let mut main = start(128);
        let mut info = String::new();
        if role == Role::Client {
            style.ipinfo.push_suffix(&mut info, f.daddr);
        }
        if !lines::write_main_line(&mut main, f, role, &style.names, &info) {
            return out;
        }
        out.push(main);
        let mut any = false;
        for alt in self.alts_of(&f.uid) {
            any = true;
            let mut line = start(alt.sub.len());
            line.push_str(&alt.sub);
            out.push(line);
        }
        if !any {
            if let Some(text) = lines::attention_line(f, &style.names) {
                let mut line = start(text.len());
                line.push_str(&text);
                out.push(line);
            }
        }
        out
    }

    /// The complete entries in memory after `after` (all when `None`), in order, stopping at
    /// the first whose join is not complete (`ts + duration >= horizon`): a line is never
    /// written before one that precedes it. Returns them and whether one had to wait.
    fn complete_entries(
        &self,
        after: Option<&FlowKey>,
        style: &TimelineStyle,
        horizon: f64,
    ) -> (Vec<(FlowKey, u32, Vec<String>)>, bool) {
        use std::ops::Bound;
        let lower = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for (key, e) in self.flows.range((lower, Bound::Unbounded)) {
            if !self.is_entry(key) {
                continue;
            }
            let f = &e.flow;
            if f.ts + f.dur.unwrap_or(0.0) >= horizon {
                return (out, true);
            }
            out.push((key.clone(), e.id, self.entry_lines(e, style)));
        }
        (out, false)
    }

    /// The timeline lines of every conn in memory whose join is complete, in order (see
    /// `complete_entries`), and whether some conn had to wait. The whole window when nothing
    /// of it has been written yet.
    pub fn timeline(&self, style: &TimelineStyle, horizon: f64) -> (Vec<String>, bool) {
        let (entries, waiting) = self.complete_entries(None, style, horizon);
        (
            entries.into_iter().flat_map(|(_, _, l)| l).collect(),
            waiting,
        )
    }

    /// Record entries written after the last one (in order): their keys and line counts in the
    /// index, their uids in `written`; returns their lines.
    fn enter_in_order(
        &mut self,
        entries: Vec<(FlowKey, u32, Vec<String>)>,
        written: &mut Vec<CompactString>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for (key, id, l) in entries {
            self.index.insert(id, l.len() as u32, self.agg.table());
            lines.extend(l);
            written.push(key.uid.clone());
            self.timeline_upto = Some(key);
        }
        lines
    }

    /// The change of the `_timeline` list, and the uids whose entries it writes.
    fn timeline_change(
        &mut self,
        style: &TimelineStyle,
        horizon: f64,
    ) -> (TimelineInserts, Option<TimelineWrite>, Vec<CompactString>) {
        let mut written = Vec::new();
        if !self.timeline_known {
            // Lines already written are never taken back: after a reload the list is
            // rewritten once every entry up to the last one is complete.
            let (entries, pending) = self.complete_entries(None, style, horizon);
            self.timeline_pending = pending;
            if pending {
                return (Vec::new(), None, written);
            }
            let all = self.enter_in_order(entries, &mut written);
            self.timeline_known = true;
            return (Vec::new(), Some(TimelineWrite::Replace(all)), written);
        }
        let mut pending = false;
        // Late entries: before the last one written, not written yet (each inserted at its
        // place once complete).
        let mut inserts: TimelineInserts = Vec::new();
        let mut late = Vec::new();
        if let Some(upto) = &self.timeline_upto {
            for (key, e) in self.flows.range(..upto.clone()) {
                if !self.is_entry(key) {
                    continue;
                }
                let f = &e.flow;
                if f.ts + f.dur.unwrap_or(0.0) >= horizon {
                    pending = true;
                    continue;
                }
                let l = self.entry_lines(e, style);
                let off = self.index.offset(key, self.agg.table());
                late.push((e.id, l.len() as u32));
                written.push(key.uid.clone());
                match inserts.last_mut() {
                    Some((o, lines)) if *o == off => lines.extend(l),
                    _ => inserts.push((off, l)),
                }
            }
        }
        for (id, n) in late {
            self.index.insert(id, n, self.agg.table());
        }
        inserts.retain(|(_, l)| !l.is_empty());
        let (entries, waiting) = self.complete_entries(self.timeline_upto.as_ref(), style, horizon);
        self.timeline_pending = pending || waiting;
        let lines = self.enter_in_order(entries, &mut written);
        let append = (!lines.is_empty()).then_some(TimelineWrite::Append(lines));
        (inserts, append, written)
    }

    /// What changed since the last call, with complete values; marks it written, and lets the
    /// records of written entries leave memory. Timeline entries are included up to `horizon`
    /// (see [`WindowState::timeline`]).
    /// The hash fields are included only when `with_fields` (else they wait, see
    /// [`WindowState::fields_waiting`]).
    pub fn take_write(
        &mut self,
        label: &str,
        style: &TimelineStyle,
        judge: &Judge<'_>,
        horizon: f64,
        with_fields: bool,
    ) -> WindowWrite {
        // Names under a listed domain, from the alt records not yet written (every record
        // passes here once, and again after a reload).
        if judge.ipinfo.has_domains() {
            for uid in &self.dirty_alts {
                for (_, a) in self.alts.get(uid).into_iter().flatten() {
                    if !a.alt.name.is_empty() && judge.ipinfo.listed_domain(&a.alt.name).is_some() {
                        self.agg.add_domain_hit(a.alt.ts, &a.alt.uid, &a.alt.name);
                    }
                }
            }
        }
        let (inserts, change, entered) = self.timeline_change(style, horizon);
        let mut w = WindowWrite {
            timeline_inserts: inserts,
            timeline: change,
            has_conn: self.has_conn,
            has_data: self.has_conn || self.has_alts,
            ..WindowWrite::default()
        };
        if with_fields {
            let changed = self.agg.take_changed(judge);
            w.fields = changed.fields;
            w.removed_fields = changed.removed;
            w.detected = changed.detected;
            self.fields_written_at = Some(std::time::Instant::now());
        }
        if self.compact {
            self.take_records(&mut w);
            self.spill(entered);
            self.dirty = false;
            return w;
        }
        let mut uids: Vec<CompactString> = self.dirty_flows.drain().collect();
        uids.sort();
        for uid in uids {
            let Some(u) = self.by_uid.get_mut(&uid) else {
                continue;
            };
            if !u.stored {
                u.stored = true;
                w.new_flow_uids += 1;
            }
            let keys: Vec<FlowKey> = u.keys.iter().map(|k| flow_key(&uid, k)).collect();
            let mut jsons = Vec::with_capacity(keys.len());
            for k in &keys {
                if let Some(e) = self.flows.get_mut(k) {
                    e.written = true;
                    jsons.push(e.flow.to_flow_json(label));
                }
            }
            let last = if jsons.len() > 1 {
                let last = jsons.last().cloned();
                let list =
                    PyValue::List(jsons.into_iter().map(|j| PyValue::Str(j.into())).collect());
                w.copies.push((uid.to_string(), list.to_json()));
                last
            } else {
                jsons.pop()
            };
            let Some(last) = last else {
                continue;
            };
            w.flows.push((uid.to_string(), last));
        }
        let mut uids: Vec<CompactString> = self.dirty_alts.drain().collect();
        uids.sort();
        for uid in uids {
            let Some(records) = self.alts.get_mut(&uid) else {
                continue;
            };
            let mut list = String::from("[");
            let n = records.len();
            for (i, (_, a)) in records.iter_mut().enumerate() {
                a.written = true;
                if i > 0 {
                    list.push_str(", ");
                }
                // The last record's value is the `_altflows` value: not stored twice.
                if i + 1 == n {
                    list.push_str(&a.alt.list_entry_short());
                } else {
                    list.push_str(&a.alt.list_entry());
                }
            }
            list.push(']');
            let Some((_, last)) = records.last() else {
                continue;
            };
            w.altflows
                .push((uid.to_string(), last.alt.to_json().to_string()));
            w.alts.push((uid.to_string(), list));
        }
        self.spill(entered);
        self.dirty = false;
        w
    }

    /// `--no-flows`: the changed uids' records in our compact form, into `w.records` (every
    /// copy of a uid's flow, every alt record of a uid: each entry complete).
    fn take_records(&mut self, w: &mut WindowWrite) {
        let whole = std::mem::take(&mut self.rewrite_all);
        let mut uids: Vec<CompactString> = self.dirty_flows.drain().collect();
        uids.extend(self.dirty_alts.drain());
        uids.sort();
        uids.dedup();
        for uid in uids {
            let mut keys = Vec::new();
            if let Some(u) = self.by_uid.get_mut(&uid) {
                if !u.stored {
                    u.stored = true;
                    w.new_flow_uids += 1;
                }
                keys.extend(u.keys.iter().map(|k| flow_key(&uid, k)));
            }
            for k in &keys {
                if let Some(e) = self.flows.get_mut(k) {
                    e.written = true;
                }
            }
            let alts = self.alts.get_mut(&uid);
            for (_, a) in alts.into_iter().flatten() {
                a.written = true;
            }
            let flows: Vec<&Flow> = keys
                .iter()
                .filter_map(|k| self.flows.get(k).map(|e| &e.flow))
                .collect();
            let alts: Vec<&AltRecord> = self
                .alts
                .get(&uid)
                .into_iter()
                .flatten()
                .map(|(_, a)| &a.alt)
                .collect();
            if !(flows.is_empty() && alts.is_empty()) {
                records::push_entry(&mut w.records, &uid, flows.into_iter(), alts.into_iter());
            }
        }
        if whole {
            // Everything is in this write: it replaces the stored frames.
            w.records_whole = true;
            self.records_frames = usize::from(!w.records.is_empty());
            self.records_log = None;
            return;
        }
        if self.closing
            && self.records_frames + usize::from(!w.records.is_empty()) > 1
            && let Some((frames, since)) = self.records_log.take()
        {
            // Later entries replace earlier ones: the frames' payloads read in order, then
            // the ones written since and this write's, are the window. A frame that cannot
            // be read is left out (as a reload would): its records are lost either way.
            let (payloads, bad) = frame::payloads(&frames, frame::MAX_PAYLOAD);
            if bad > 0 {
                tracing::warn!(
                    bad_frames = bad,
                    "frames of a window's stored records could not be read and were dropped"
                );
            }
            let size = payloads.iter().map(Vec::len).sum::<usize>() + since.len() + w.records.len();
            if size <= self.records_whole_limit {
                let mut all = payloads.concat();
                all.extend_from_slice(&since);
                all.append(&mut w.records);
                w.records = all;
                w.records_whole = true;
                self.records_frames = 1;
                return;
            }
            // Too large for one frame: the window keeps its frames.
            self.records_whole_given_up = true;
        }
        if !w.records.is_empty() {
            self.records_frames += 1;
            if let Some((_, since)) = &mut self.records_log {
                since.extend_from_slice(&w.records);
            }
        }
    }

    /// Whether the window's stored frames should be read back so that its closing write
    /// makes them one (call with it closing: [`WindowState::closing`] is set at the write).
    pub fn wants_records_log(&self) -> bool {
        // More than one frame, or one and records to add to it.
        self.compact
            && self.loaded
            && !self.records_whole_given_up
            && self.records_log.is_none()
            && (self.records_frames > 1 || (self.records_frames == 1 && self.dirty))
    }

    /// Whether a write would now replace the window's stored frames by one (closing, and
    /// they were read back).
    pub fn records_compaction_due(&self) -> bool {
        self.closing && self.records_frames > 1 && self.records_log.is_some()
    }

    /// Whether the window's frames still wait to be made one (it must not leave memory
    /// before: its closing write does it).
    pub fn records_compaction_pending(&self) -> bool {
        self.compact && self.loaded && self.records_frames > 1 && !self.records_whole_given_up
    }

    /// The window's stored frames, in order (from [`WindowState::wants_records_log`]).
    pub fn set_records_log(&mut self, frames: Vec<Vec<u8>>) {
        self.records_frames = frames.len();
        self.records_log = Some((frames, Vec::new()));
    }

    /// Let written records leave memory: the uids whose timeline entry was just written, and
    /// alt records stored without a conn in this window.
    fn spill(&mut self, entered: Vec<CompactString>) {
        for uid in entered {
            if let Some(u) = self.by_uid.remove(&uid) {
                for k in &u.keys {
                    self.flows.remove(&flow_key(&uid, k));
                }
            }
            self.alts.remove(&uid);
            self.spilled.insert(uid_hash(&uid));
        }
        if self.timeline_known {
            let by_uid = &self.by_uid;
            let spilled = &mut self.spilled;
            self.alts.retain(|uid, _| {
                let keep = by_uid.contains_key(uid);
                if !keep {
                    spilled.insert(uid_hash(uid));
                }
                keep
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(uid: &str, ts: f64) -> Flow {
        Flow {
            ts,
            uid: uid.into(),
            saddr: "10.0.0.1".parse().unwrap(),
            sport: 5000,
            daddr: "8.8.8.8".parse().unwrap(),
            dport: 53,
            proto: "udp".into(),
            appproto: "dns".into(),
            dur: Some(0.1),
            origstate: "SF".into(),
            spkts: 1,
            dpkts: 1,
            sbytes: 40,
            dbytes: 80,
        }
    }

    fn alt(uid: &str, ts: f64) -> AltRecord {
        let json = format!(
            r#"{{"uid": "{uid}", "type": "dns", "query": "q.example", "qclass_name": "C_INTERNET", "qtype_name": "A", "rcode_name": "NOERROR", "answers": "", "ttls": ""}}"#
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        AltRecord::new(
            ts,
            LogKind::Dns,
            uid.into(),
            "10.0.0.1".parse().unwrap(),
            "8.8.8.8".parse().unwrap(),
            PyValue::from_serde(&value),
            crate::timeline::lines::push_sub_line,
        )
    }

    fn pos(seq: u64) -> Position {
        Position { line: seq, seq }
    }

    /// The profile is the flow's client.
    fn client() -> Roles {
        smallvec::smallvec![Role::Client]
    }

    fn lines(w: &WindowWrite) -> (&'static str, usize) {
        match &w.timeline {
            Some(TimelineWrite::Append(l)) => ("append", l.len()),
            Some(TimelineWrite::Replace(l)) => ("replace", l.len()),
            None => ("none", 0),
        }
    }

    #[test]
    fn a_closing_compact_window_makes_its_frames_one_unless_they_are_too_large() {
        let style = TimelineStyle::default();
        let judge = Judge::plain(std::net::IpAddr::from([0, 0, 0, 0]));
        for (limit, whole) in [(frame::MAX_WHOLE, true), (100, false)] {
            let mut w = WindowState::new(true);
            w.compact = true;
            w.records_whole_limit = limit;
            let mut frames = Vec::new();
            for i in 0..3u32 {
                w.add_flow(
                    flow(&format!("C{i}"), f64::from(i)),
                    client(),
                    pos(u64::from(i)),
                );
                w.add_alt(alt(&format!("C{i}"), f64::from(i)), pos(10 + u64::from(i)));
                let write = w.take_write("unknown", &style, &judge, f64::INFINITY, false);
                assert!(!write.records_whole && write.flows.is_empty() && write.alts.is_empty());
                frames.push(frame::frame(&write.records).unwrap());
            }
            // Three frames: read back when the profiler sees the window closing.
            assert!(w.records_compaction_pending() && w.wants_records_log());
            w.closing = true;
            w.set_records_log(frames.clone());
            assert!(w.records_compaction_due());
            let write = w.take_write("unknown", &style, &judge, f64::INFINITY, true);
            assert_eq!(write.records_whole, whole, "limit {limit}");
            assert!(!w.records_compaction_pending() && !w.wants_records_log());
            if whole {
                // The one frame holds what the three did.
                let (parts, bad) = frame::payloads(&frames, frame::MAX_PAYLOAD);
                assert_eq!((parts.concat(), bad), (write.records.clone(), 0));
                let (flows, alts, bad) = records::read(&[write.records], push);
                assert_eq!((flows.len(), alts.len(), bad), (3, 3, 0));
            }
        }
    }

    fn push(out: &mut String, kind: LogKind, v: &PyValue) {
        crate::timeline::lines::push_sub_line(out, kind, v)
    }

    #[test]
    fn timeline_appends_inserts_late_entries_and_reloads_on_changes_to_written_ones() {
        let style = TimelineStyle::default();
        let mut w = WindowState::new(true);
        w.add_flow(flow("C1", 10.0), client(), pos(1));
        let first = w.take_write(
            "unknown",
            &style,
            &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
            f64::INFINITY,
            true,
        );
        assert_eq!(lines(&first), ("append", 2)); // main line + Attention
        assert_eq!(w.records_in_memory(), 0); // written: left memory
        w.add_flow(flow("C3", 30.0), client(), pos(2));
        assert_eq!(
            lines(&w.take_write(
                "unknown",
                &style,
                &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
                f64::INFINITY,
                true
            )),
            ("append", 2)
        );
        // Late conns before and between the written ones: inserted at their offsets (counted
        // in the list before the inserts), lines of one place together.
        w.add_flow(flow("C0", 5.0), client(), pos(3));
        w.add_flow(flow("C00", 5.0), client(), pos(4));
        w.add_flow(flow("C2", 20.0), client(), pos(5));
        w.add_flow(flow("C4", 40.0), client(), pos(6));
        let late = w.take_write(
            "unknown",
            &style,
            &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
            f64::INFINITY,
            true,
        );
        assert_eq!(lines(&late), ("append", 2));
        let offsets: Vec<(usize, usize)> = late
            .timeline_inserts
            .iter()
            .map(|(o, l)| (*o, l.len()))
            .collect();
        assert_eq!(offsets, vec![(0, 4), (2, 2)]);
        assert_eq!(w.index.len(), 6);
        // A record for a written conn, or its uid again: the window goes back to Redis.
        w.add_alt(alt("C1", 10.5), pos(7));
        assert!(!w.loaded);
        assert_eq!(w.records_in_memory(), 1);
    }

    #[test]
    fn a_late_entry_waits_for_its_join_without_holding_back_appends() {
        let style = TimelineStyle::default();
        let mut w = WindowState::new(true);
        w.add_flow(flow("C2", 20.0), client(), pos(1));
        w.take_write(
            "unknown",
            &style,
            &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
            100.0,
            true,
        );
        let mut long = flow("C1", 10.0);
        long.dur = Some(500.0);
        w.add_flow(long, client(), pos(2));
        w.add_flow(flow("C3", 30.0), client(), pos(3));
        let now = w.take_write(
            "unknown",
            &style,
            &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
            100.0,
            true,
        );
        assert_eq!(lines(&now), ("append", 2));
        assert!(now.timeline_inserts.is_empty());
        assert!(w.timeline_pending);
        let later = w.take_write(
            "unknown",
            &style,
            &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
            1000.0,
            true,
        );
        assert_eq!(later.timeline_inserts.len(), 1);
        assert_eq!(later.timeline_inserts[0].0, 0);
        assert!(!w.timeline_pending);
    }

    #[test]
    fn line_index_offsets_across_blocks() {
        let mut ix = LineIndex::default();
        // 3,000 flows in the table out of order, inserted in yet another order, 2 lines each.
        let mut order: Vec<u64> = (0..3000).collect();
        order.sort_by_key(|i| (i * 7919) % 3001);
        let table: Vec<FlowKey> = order
            .iter()
            .map(|i| FlowKey::new(*i as f64, "C", pos(*i)))
            .collect();
        let mut ids: Vec<u32> = (0..3000).collect();
        ids.sort_by_key(|i| (i * 31) % 3001);
        for id in ids {
            ix.insert(id, 2, &table);
        }
        assert_eq!(ix.len(), 3000);
        for i in [0u64, 1, 511, 1024, 2999] {
            assert_eq!(
                ix.offset(&FlowKey::new(i as f64, "C", pos(i)), &table),
                2 * i as usize
            );
        }
        assert_eq!(ix.offset(&FlowKey::new(1e9, "C", pos(0)), &table), 6000);
    }

    #[test]
    fn an_incomplete_entry_holds_back_the_ones_after_it() {
        let style = TimelineStyle::default();
        let mut w = WindowState::new(true);
        w.add_flow(flow("C1", 10.0), client(), pos(1));
        w.add_flow(flow("C2", 20.0), client(), pos(2));
        // The join horizon is between them: only C1 is written.
        assert_eq!(
            lines(&w.take_write(
                "unknown",
                &style,
                &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
                15.0,
                true
            )),
            ("append", 2)
        );
        assert!(w.timeline_pending);
        assert_eq!(
            lines(&w.take_write(
                "unknown",
                &style,
                &Judge::plain(std::net::IpAddr::from([0, 0, 0, 0])),
                100.0,
                true
            )),
            ("append", 2)
        );
        assert!(!w.timeline_pending);
    }
}
