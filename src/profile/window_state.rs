//! One profile's timewindow in memory: its flows and joined alt records in the contract's order,
//! and what changed since the last write.
//!
//! Everything stored for the window is a function of the *set* of records it holds: flows are
//! kept sorted by (ts, uid, position), alt records per uid by (ts, log kind, position), and the
//! aggregate is rebuilt from the sorted flows whenever a record lands before the last one
//! counted. A late record therefore takes its place instead of being appended.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use super::aggregate::{Flow, Role, WindowAggregate};
use super::alt::AltRecord;
use crate::store::pyjson::PyValue;
use crate::timeline::{TimelineStyle, lines};
use crate::zeek::LogKind;

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

/// The order of flows in a window: (ts, uid, position).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    ts: TotalF64,
    uid: String,
    pos: Position,
}

/// The order of one uid's alt records: (ts, log kind, position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AltKey {
    ts: TotalF64,
    kind: LogKind,
    pos: Position,
}

/// The copies of one uid in a window (their keys without the uid, which is the map key), and
/// whether Redis's `_flows` already holds the uid.
#[derive(Debug, Default)]
struct UidFlows {
    keys: Vec<(TotalF64, Position)>,
    stored: bool,
}

fn flow_key(uid: &str, k: &(TotalF64, Position)) -> FlowKey {
    FlowKey {
        ts: k.0,
        uid: uid.to_string(),
        pos: k.1,
    }
}

/// A flow and the side(s) this window's profile is on.
#[derive(Clone, Debug)]
struct FlowEntry {
    flow: Flow,
    roles: Vec<Role>,
}

/// How the `_timeline` list changes.
#[derive(Clone, Debug, PartialEq)]
pub enum TimelineWrite {
    /// Push these lines at the end (the list so far is a prefix of the new one).
    Append(Vec<String>),
    /// Replace the whole list (a line landed before lines already written).
    Replace(Vec<String>),
}

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
    /// `[ts, kind, saddr, daddr, value]` (see `AltRecord::list_from_json`).
    pub alts: Vec<(String, String)>,
    /// Uids whose flows are new in Redis (for the `labels` counter).
    pub new_flow_uids: usize,
    /// Change of the `_timeline` list, if any.
    pub timeline: Option<TimelineWrite>,
    /// Whether the window holds conn data (listed in `ModifiedTWForLogs`).
    pub has_conn: bool,
    /// Whether the window holds any data (listed in `twsprofile_<ip>`).
    pub has_data: bool,
}

impl WindowWrite {
    /// Whether nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.flows.is_empty()
            && self.copies.is_empty()
            && self.altflows.is_empty()
            && self.alts.is_empty()
            && self.timeline.is_none()
    }
}

/// One profile's window.
#[derive(Debug, Default)]
pub struct WindowState {
    flows: BTreeMap<FlowKey, FlowEntry>,
    by_uid: HashMap<String, UidFlows>,
    alts: HashMap<String, BTreeMap<AltKey, AltRecord>>,
    agg: WindowAggregate,
    agg_last: Option<FlowKey>,
    agg_stale: bool,
    dirty_flows: HashSet<String>,
    dirty_alts: HashSet<String>,
    /// Field → hash of the value last written.
    written: HashMap<String, u64>,
    /// Hashes of the timeline lines last written, in order (`None`: unknown, rewrite whole).
    timeline_written: Option<Vec<u64>>,
    /// Whether some conn's timeline entry still waits for its join to complete.
    pub timeline_pending: bool,
    /// The written timeline is exactly the entries up to `timeline_upto` (None: before the
    /// first), and nothing changed them since: new entries after it can simply be appended.
    timeline_clean: bool,
    timeline_upto: Option<FlowKey>,
    /// Whether this window's Redis content has been merged in (or is known not to exist).
    pub loaded: bool,
    /// Whether the window has records not yet written.
    pub dirty: bool,
}

fn digest(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl WindowState {
    /// An empty window; `loaded`: Redis is known to hold nothing for it (or it was merged).
    pub fn new(loaded: bool) -> WindowState {
        WindowState {
            loaded,
            timeline_written: loaded.then(Vec::new),
            timeline_clean: loaded,
            ..WindowState::default()
        }
    }

    /// Add a conn flow on the given sides of this window's profile.
    pub fn add_flow(&mut self, flow: Flow, roles: Vec<Role>, pos: Position) {
        let key = FlowKey {
            ts: TotalF64(flow.ts),
            uid: flow.uid.clone(),
            pos,
        };
        // A flow before the written timeline, or a repeated uid, changes what is written.
        if self.timeline_upto.as_ref().is_some_and(|u| &key <= u)
            || self.by_uid.contains_key(&flow.uid)
        {
            self.timeline_clean = false;
        }
        if !self.agg_stale && self.agg_last.as_ref().is_none_or(|last| &key > last) {
            for role in &roles {
                self.agg.add(&flow, *role);
            }
            self.agg_last = Some(key.clone());
        } else {
            self.agg_stale = true;
        }
        let copies = self.by_uid.entry(flow.uid.clone()).or_default();
        copies.keys.push((key.ts, key.pos));
        copies.keys.sort();
        self.dirty_flows.insert(flow.uid.clone());
        self.flows.insert(key, FlowEntry { flow, roles });
        self.dirty = true;
    }

    /// Add an alt record joined to a conn of this window (or an orphan stored here). The same
    /// record twice (same time, log and content — e.g. a directory ingested again) is kept once:
    /// alt records are not counted anywhere, and a sub-line must not appear twice.
    pub fn add_alt(&mut self, alt: AltRecord, pos: Position) {
        let records = self.alts.entry(alt.uid.clone()).or_default();
        if records.values().any(|a| a == &alt) {
            return;
        }
        // A sub-line for a conn already on the written timeline changes it.
        let first = self.by_uid.get(&alt.uid).and_then(|u| u.keys.first());
        if let (Some(first), Some(upto)) = (first, &self.timeline_upto) {
            if flow_key(&alt.uid, first) <= *upto {
                self.timeline_clean = false;
            }
        }
        let key = AltKey {
            ts: TotalF64(alt.ts),
            kind: alt.kind,
            pos,
        };
        self.dirty_alts.insert(alt.uid.clone());
        records.insert(key, alt);
        self.dirty = true;
    }

    /// Mark uids as already present in Redis's `_flows` (merged from a load).
    pub fn mark_stored(&mut self, uids: impl IntoIterator<Item = String>) {
        for uid in uids {
            if let Some(u) = self.by_uid.get_mut(&uid) {
                u.stored = true;
            }
        }
    }

    /// Forget what was written, so the next write sends every field (after a reload).
    pub fn mark_all_dirty(&mut self) {
        self.written.clear();
        self.timeline_written = None;
        self.timeline_clean = false;
        self.timeline_upto = None;
        self.dirty_flows.extend(self.by_uid.keys().cloned());
        self.dirty_alts.extend(self.alts.keys().cloned());
        self.dirty = true;
    }

    /// Whether the window holds conn flows.
    pub fn has_conn(&self) -> bool {
        !self.flows.is_empty()
    }

    /// The alt records of a uid, in order.
    pub fn alts_of(&self, uid: &str) -> impl Iterator<Item = &AltRecord> {
        self.alts.get(uid).into_iter().flat_map(|m| m.values())
    }

    /// Every hash field with its current value (the aggregate, rebuilt if needed).
    pub fn fields(&mut self) -> Vec<(String, String)> {
        if self.agg_stale {
            let mut agg = WindowAggregate::default();
            for e in self.flows.values() {
                for role in &e.roles {
                    agg.add(&e.flow, *role);
                }
            }
            self.agg = agg;
            self.agg_last = self.flows.keys().next_back().cloned();
            self.agg_stale = false;
        }
        self.agg.fields()
    }

    /// The timeline lines of every conn whose join is complete (`ts + duration < horizon`),
    /// in flow order, stopping at the first conn that is not (a line is never written before
    /// one that precedes it). Returns the lines and whether some conn had to wait.
    pub fn timeline(&self, style: &TimelineStyle, horizon: f64) -> (Vec<String>, bool) {
        let (lines, waiting, _) = self.timeline_after(None, style, horizon);
        (lines, waiting)
    }

    /// [`WindowState::timeline`] of the entries after `after` only, with the key of the last
    /// entry rendered.
    fn timeline_after(
        &self,
        after: Option<&FlowKey>,
        style: &TimelineStyle,
        horizon: f64,
    ) -> (Vec<String>, bool, Option<FlowKey>) {
        use std::ops::Bound;
        let lower = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut last = after.cloned();
        for (key, e) in self.flows.range((lower, Bound::Unbounded)) {
            // A repeated uid adds no second line: only its first copy has one.
            let first = self.by_uid.get(&e.flow.uid).and_then(|u| u.keys.first());
            if first != Some(&(key.ts, key.pos)) {
                last = Some(key.clone());
                continue;
            }
            let f = &e.flow;
            if f.ts + f.dur.unwrap_or(0.0) >= horizon {
                return (out, true, last);
            }
            let prefix = style.clock.format(f.ts);
            let mut roles = e.roles.clone();
            roles.sort_by_key(|r| matches!(r, Role::Server));
            for role in roles {
                let Some(main) = lines::main_line(f, role, &style.names) else {
                    continue;
                };
                out.push(format!("{prefix} {main}"));
                let mut any = false;
                for alt in self.alts_of(&f.uid) {
                    any = true;
                    out.push(format!("{prefix} {}", lines::sub_line(alt)));
                }
                if !any {
                    if let Some(line) = lines::attention_line(f, &style.names) {
                        out.push(format!("{prefix} {line}"));
                    }
                }
            }
            last = Some(key.clone());
        }
        (out, false, last)
    }

    /// The change of the `_timeline` list: only the new entries when nothing written changed
    /// (the usual case), else the whole list compared with what was written.
    fn timeline_change(&mut self, style: &TimelineStyle, horizon: f64) -> Option<TimelineWrite> {
        if self.timeline_clean && self.timeline_written.is_some() {
            let (lines, waiting, last) =
                self.timeline_after(self.timeline_upto.as_ref(), style, horizon);
            self.timeline_pending = waiting;
            self.timeline_upto = last;
            if lines.is_empty() {
                return None;
            }
            if let Some(written) = self.timeline_written.as_mut() {
                written.extend(lines.iter().map(|l| digest(l)));
            }
            return Some(TimelineWrite::Append(lines));
        }
        let (timeline, pending, last) = self.timeline_after(None, style, horizon);
        self.timeline_pending = pending;
        let hashes: Vec<u64> = timeline.iter().map(|l| digest(l)).collect();
        // Lines already written are never taken back: when a late conn lands before them, the
        // list is rewritten only once that conn's own entry is complete.
        let change = match &self.timeline_written {
            Some(old) if *old == hashes => None,
            Some(old) if hashes.starts_with(old) => {
                Some(TimelineWrite::Append(timeline[old.len()..].to_vec()))
            }
            _ if pending => return None,
            _ => Some(TimelineWrite::Replace(timeline)),
        };
        self.timeline_written = Some(hashes);
        self.timeline_clean = true;
        self.timeline_upto = last;
        change
    }

    /// What changed since the last call, with complete values; marks it written. Timeline
    /// entries are included up to `horizon` (see [`WindowState::timeline`]).
    pub fn take_write(&mut self, label: &str, style: &TimelineStyle, horizon: f64) -> WindowWrite {
        let change = self.timeline_change(style, horizon);
        let mut w = WindowWrite {
            timeline: change,
            has_conn: self.has_conn(),
            has_data: self.has_conn() || !self.alts.is_empty(),
            ..WindowWrite::default()
        };
        for (field, value) in self.fields() {
            let d = digest(&value);
            if self.written.get(&field) != Some(&d) {
                self.written.insert(field.clone(), d);
                w.fields.push((field, value));
            }
        }
        let mut uids: Vec<String> = self.dirty_flows.drain().collect();
        uids.sort();
        for uid in uids {
            let Some(u) = self.by_uid.get(&uid) else {
                continue;
            };
            let entries: Vec<&FlowEntry> = u
                .keys
                .iter()
                .filter_map(|k| self.flows.get(&flow_key(&uid, k)))
                .collect();
            let Some(last) = entries.last() else {
                continue;
            };
            w.flows.push((uid.clone(), last.flow.to_flow_json(label)));
            if entries.len() > 1 {
                let list = PyValue::List(
                    entries
                        .iter()
                        .map(|e| PyValue::Str(e.flow.to_flow_json(label)))
                        .collect(),
                );
                w.copies.push((uid.clone(), list.to_json()));
            }
            if let Some(u) = self.by_uid.get_mut(&uid) {
                if !u.stored {
                    u.stored = true;
                    w.new_flow_uids += 1;
                }
            }
        }
        let mut uids: Vec<String> = self.dirty_alts.drain().collect();
        uids.sort();
        for uid in uids {
            let Some(records) = self.alts.get(&uid) else {
                continue;
            };
            let Some(last) = records.values().next_back() else {
                continue;
            };
            w.altflows.push((uid.clone(), last.to_json().to_string()));
            let mut list = String::from("[");
            for (i, a) in records.values().enumerate() {
                if i > 0 {
                    list.push_str(", ");
                }
                list.push_str(&a.list_entry());
            }
            list.push(']');
            w.alts.push((uid, list));
        }
        self.dirty = false;
        w
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
        AltRecord {
            ts,
            kind: LogKind::Dns,
            uid: uid.into(),
            saddr: "10.0.0.1".parse().unwrap(),
            daddr: "8.8.8.8".parse().unwrap(),
            json: format!(
                r#"{{"uid": "{uid}", "type": "dns", "query": "q.example", "qclass_name": "C_INTERNET", "qtype_name": "A", "rcode_name": "NOERROR", "answers": "", "ttls": ""}}"#
            ),
        }
    }

    fn pos(seq: u64) -> Position {
        Position { line: seq, seq }
    }

    fn lines(w: &WindowWrite) -> (&'static str, usize) {
        match &w.timeline {
            Some(TimelineWrite::Append(l)) => ("append", l.len()),
            Some(TimelineWrite::Replace(l)) => ("replace", l.len()),
            None => ("none", 0),
        }
    }

    #[test]
    fn timeline_appends_new_entries_and_rewrites_when_written_ones_change() {
        let style = TimelineStyle::default();
        let mut w = WindowState::new(true);
        w.add_flow(flow("C1", 10.0), vec![Role::Client], pos(1));
        let first = w.take_write("unknown", &style, f64::INFINITY);
        assert_eq!(lines(&first), ("append", 2)); // main line + Attention
        w.add_flow(flow("C2", 20.0), vec![Role::Client], pos(2));
        assert_eq!(
            lines(&w.take_write("unknown", &style, f64::INFINITY)),
            ("append", 2)
        );
        // A record for C1, already written: the list is rewritten with its sub-line.
        w.add_alt(alt("C1", 10.5), pos(3));
        assert_eq!(
            lines(&w.take_write("unknown", &style, f64::INFINITY)),
            ("replace", 4)
        );
        // A late conn before the written ones: rewritten in its place.
        w.add_flow(flow("C0", 5.0), vec![Role::Client], pos(4));
        let late = w.take_write("unknown", &style, f64::INFINITY);
        assert_eq!(lines(&late), ("replace", 6));
        // A repeated uid adds no line.
        w.add_flow(flow("C2", 20.0), vec![Role::Client], pos(5));
        assert_eq!(
            lines(&w.take_write("unknown", &style, f64::INFINITY)),
            ("none", 0)
        );
        // The incremental path gives the same list as rendering everything.
        let (all, waiting) = w.timeline(&style, f64::INFINITY);
        assert!(!waiting);
        let Some(TimelineWrite::Replace(l)) = late.timeline else {
            panic!()
        };
        assert_eq!(all, l);
    }

    #[test]
    fn an_incomplete_entry_holds_back_the_ones_after_it() {
        let style = TimelineStyle::default();
        let mut w = WindowState::new(true);
        w.add_flow(flow("C1", 10.0), vec![Role::Client], pos(1));
        w.add_flow(flow("C2", 20.0), vec![Role::Client], pos(2));
        // The join horizon is between them: only C1 is written.
        assert_eq!(lines(&w.take_write("unknown", &style, 15.0)), ("append", 2));
        assert!(w.timeline_pending);
        assert_eq!(
            lines(&w.take_write("unknown", &style, 100.0)),
            ("append", 2)
        );
        assert!(!w.timeline_pending);
    }
}
