//! Stage 3 of the pipeline: the uid join. A dns/http/ssl record belongs to the conn with the
//! same Zeek uid, whichever arrives first and whichever file it is in.
//!
//! Two maps, both bounded: conns that may still receive alt records (until every alt log has
//! moved past the conn's end plus a grace), and alt records still waiting for their conn (until
//! the end of input in `--once` mode, when the rest become orphans).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use compact_str::CompactString;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::alt::AltRecord;
use crate::model::order::{Position, TotalF64};
use crate::model::window::WinId;
use crate::pyjson::json_key;
use crate::pyjson::{ObjectWriter, PyValue};
use crate::timeline::lines::push_sub_line;

/// An alt record waiting for its conn, with its position in its log.
pub type PendingAlt = (AltRecord, Position);

/// Alt records that may wait for their conn at once, by default. Beyond it the longest-waiting
/// ones give up (become orphans early, counted and logged): memory stays bounded whatever the
/// input.
pub const DEFAULT_PENDING_CAP: usize = 2_000_000;

/// The join state.
#[derive(Debug)]
pub struct UidJoin {
    /// Joinable conns: where they are stored, and until when (log time) they can be joined.
    conns: HashMap<CompactString, (Vec<WinId>, f64)>,
    /// Uids whose joinable entry or waiting records changed since the last
    /// [`UidJoin::take_changes`] (what must be persisted).
    changed_conns: HashSet<CompactString>,
    changed_pending: HashSet<CompactString>,
    expiry: BinaryHeap<Reverse<(TotalF64, CompactString)>>,
    pending: HashMap<CompactString, Vec<PendingAlt>>,
    /// Uids in the order their first pending record arrived (may hold uids already joined).
    waiting_order: VecDeque<CompactString>,
    pending_count: usize,
    cap: usize,
    /// Alt records that gave up waiting because of the cap.
    pub gave_up: u64,
}

impl Default for UidJoin {
    fn default() -> Self {
        UidJoin::with_cap(DEFAULT_PENDING_CAP)
    }
}

impl UidJoin {
    /// A join holding at most `cap` waiting alt records.
    pub fn with_cap(cap: usize) -> UidJoin {
        UidJoin {
            conns: HashMap::default(),
            changed_conns: HashSet::default(),
            changed_pending: HashSet::default(),
            expiry: BinaryHeap::new(),
            pending: HashMap::default(),
            waiting_order: VecDeque::new(),
            pending_count: 0,
            cap: cap.max(1),
            gave_up: 0,
        }
    }

    /// A conn with `uid` is stored in `windows` and can receive alt records until the alt logs
    /// pass `expires` (log time). Returns the alt records that were waiting for it.
    pub fn on_conn(&mut self, uid: &str, windows: &[WinId], expires: f64) -> Vec<PendingAlt> {
        let uid = CompactString::new(uid);
        let (places, e) = self
            .conns
            .entry(uid.clone())
            .or_insert_with(|| (Vec::new(), expires));
        for w in windows {
            if !places.contains(w) {
                places.push(*w);
            }
        }
        *e = e.max(expires);
        self.expiry.push(Reverse((TotalF64(expires), uid.clone())));
        let waiting = self.pending.remove(&uid).unwrap_or_default();
        if !waiting.is_empty() {
            self.changed_pending.insert(uid.clone());
        }
        self.changed_conns.insert(uid);
        self.pending_count -= waiting.len();
        waiting
    }

    /// An alt record arrived: the windows of its conn when known; otherwise it waits.
    pub fn on_alt(&mut self, alt: AltRecord, pos: Position) -> Option<(AltRecord, Vec<WinId>)> {
        match self.conns.get(&alt.uid) {
            Some((places, _)) => Some((alt, places.clone())),
            None => {
                self.changed_pending.insert(alt.uid.clone());
                let waiting = self.pending.entry(alt.uid.clone()).or_default();
                if waiting.is_empty() {
                    self.waiting_order.push_back(alt.uid.clone());
                }
                waiting.push((alt, pos));
                self.pending_count += 1;
                None
            }
        }
    }

    /// Alt records that must stop waiting because more than the cap wait: the longest-waiting
    /// uids first. The caller stores them as orphans.
    pub fn over_cap(&mut self) -> Vec<PendingAlt> {
        let mut out = Vec::new();
        while self.pending_count > self.cap {
            let Some(uid) = self.waiting_order.pop_front() else {
                break;
            };
            if let Some(records) = self.pending.remove(&uid) {
                self.changed_pending.insert(uid.clone());
                self.pending_count -= records.len();
                self.gave_up += records.len() as u64;
                out.extend(records);
            }
        }
        if self.waiting_order.len() > 2 * self.pending.len() + 1024 {
            let pending = &self.pending;
            self.waiting_order.retain(|u| pending.contains_key(u));
        }
        out
    }

    /// Forget conns whose expiry is before `watermark` (no alt record can come for them any more).
    pub fn expire(&mut self, watermark: f64) {
        while let Some(Reverse((t, _))) = self.expiry.peek() {
            if t.0 >= watermark {
                break;
            }
            if let Some(Reverse((_, uid))) = self.expiry.pop() {
                // A later copy of the conn may have pushed its expiry further.
                if self.conns.get(&uid).is_some_and(|(_, e)| *e < watermark) {
                    self.conns.remove(&uid);
                    self.changed_conns.insert(uid);
                }
            }
        }
    }

    /// Follow mode: alt records that waited since before `before` (log time) stop waiting —
    /// the conn log has moved on that far without their conn. Oldest first.
    pub fn expire_pending(&mut self, before: f64) -> Vec<PendingAlt> {
        let mut out = Vec::new();
        while let Some(uid) = self.waiting_order.front() {
            let oldest = self
                .pending
                .get(uid)
                .and_then(|r| r.iter().map(|(a, _)| a.ts).reduce(f64::min));
            match oldest {
                None => {
                    self.waiting_order.pop_front();
                }
                Some(ts) if ts < before => {
                    let uid = self.waiting_order.pop_front().unwrap_or_default();
                    if let Some(records) = self.pending.remove(&uid) {
                        self.changed_pending.insert(uid);
                        self.pending_count -= records.len();
                        out.extend(records);
                    }
                }
                Some(_) => break,
            }
        }
        out
    }

    /// Alt records waiting for a conn.
    pub fn pending_count(&self) -> usize {
        self.pending_count
    }

    /// Conns that can still receive alt records.
    pub fn open_conns(&self) -> usize {
        self.conns.len()
    }

    /// Every alt record still waiting (end of input: their conn never came), in uid order.
    pub fn drain_orphans(&mut self) -> Vec<PendingAlt> {
        let mut uids: Vec<CompactString> = self.pending.keys().cloned().collect();
        uids.sort();
        self.pending_count = 0;
        self.waiting_order.clear();
        self.changed_pending.extend(uids.iter().cloned());
        uids.into_iter()
            .flat_map(|u| self.pending.remove(&u).unwrap_or_default())
            .collect()
    }
}

/// What changed in the join since the last call, as the values to persist (`None`: delete).
#[derive(Debug, Default, PartialEq)]
pub struct JoinChanges {
    /// uid → `{"w": [[ip, window], …], "e": expiry}` of conns that can still be joined.
    pub conns: Vec<(CompactString, Option<String>)>,
    /// uid → `[[ts, kind, saddr, daddr, value], …]` of alt records waiting for their conn.
    pub pending: Vec<(CompactString, Option<String>)>,
}

impl UidJoin {
    /// The changes to persist since the last call.
    pub fn take_changes(&mut self) -> JoinChanges {
        let mut out = JoinChanges::default();
        let mut conns: Vec<CompactString> = self.changed_conns.drain().collect();
        conns.sort();
        for uid in conns {
            let value = match self.conns.get(&uid) {
                Some((places, e)) => {
                    // `{"w": [["<ip>", <window>], …], "e": <expiry>}`
                    let w = places
                        .iter()
                        .map(|w| {
                            PyValue::List(vec![
                                PyValue::Str(w.ip.to_string().into()),
                                PyValue::Int(w.abs),
                            ])
                        })
                        .collect();
                    let mut v = ObjectWriter::with_capacity(48 * places.len() + 32);
                    v.raw(json_key!("w"), &PyValue::List(w).to_json())
                        .float(json_key!("e"), *e);
                    Some(v.finish())
                }
                _ => None,
            };
            out.conns.push((uid, value));
        }
        let mut pending: Vec<CompactString> = self.changed_pending.drain().collect();
        pending.sort();
        for uid in pending {
            let value = self
                .pending
                .get(&uid)
                .filter(|r| !r.is_empty())
                .map(|records| {
                    let items: Vec<String> = records.iter().map(|(a, _)| a.list_entry()).collect();
                    format!("[{}]", items.join(", "))
                });
            out.pending.push((uid, value));
        }
        out
    }

    /// Put back a persisted joinable conn (after a restart).
    pub fn restore_conn(&mut self, uid: &str, json: &str) -> Result<(), JoinStateError> {
        let bad = |reason: &str| JoinStateError {
            key: "kalipso-ingest:joinable",
            uid: uid.to_string(),
            reason: reason.to_string(),
        };
        let v = serde_json::from_str::<serde_json::Value>(json).map_err(|e| bad(&e.to_string()))?;
        let e = v["e"].as_f64().ok_or_else(|| bad("no end time \"e\""))?;
        let places: Vec<WinId> = v["w"]
            .as_array()
            .ok_or_else(|| bad("no windows \"w\""))?
            .iter()
            .map(|w| Some(WinId::new(w[0].as_str()?.parse().ok()?, w[1].as_i64()?)))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a window is not [address, number]"))?;
        self.conns.insert(CompactString::new(uid), (places, e));
        self.expiry
            .push(Reverse((TotalF64(e), CompactString::new(uid))));
        Ok(())
    }

    /// Put back persisted waiting alt records (after a restart).
    pub fn restore_pending(&mut self, uid: &str, json: &str) -> Result<(), JoinStateError> {
        let records =
            AltRecord::list_from_json(uid, json, None, push_sub_line).ok_or_else(|| {
                JoinStateError {
                    key: "kalipso-ingest:pending",
                    uid: uid.to_string(),
                    reason: "not a list of dns/http/ssl records".to_string(),
                }
            })?;
        if records.is_empty() {
            return Ok(());
        }
        self.waiting_order.push_back(CompactString::new(uid));
        self.pending_count += records.len();
        self.pending
            .entry(CompactString::new(uid))
            .or_default()
            .extend(records.into_iter().map(|a| (a, Position::default())));
        Ok(())
    }
}

/// A stored join entry this build cannot read: an error, not a silent loss of the joins
/// that were waiting.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stored join state of uid {uid} in {key} cannot be read ({reason}); run once with --reset to rebuild this tool's keys from the logs"
)]
pub struct JoinStateError {
    /// The Redis hash.
    pub key: &'static str,
    /// The entry.
    pub uid: String,
    /// What is wrong with it.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeek::LogKind;

    fn alt(uid: &str, ts: f64) -> AltRecord {
        AltRecord {
            ts,
            kind: LogKind::Dns,
            uid: uid.into(),
            saddr: "10.0.0.1".parse().unwrap(),
            daddr: "8.8.8.8".parse().unwrap(),
            json: String::new(),
            sub: String::new(),
            name: Default::default(),
        }
    }

    #[test]
    fn joins_in_either_order_until_expiry() {
        let mut j = UidJoin::default();
        let w = WinId::new("10.0.0.1".parse().unwrap(), 5);
        // Alt first: waits, then comes out with its conn.
        assert!(j.on_alt(alt("C1", 10.0), Position::default()).is_none());
        assert_eq!(j.pending_count(), 1);
        let got = j.on_conn("C1", &[w], 100.0);
        assert_eq!(got.len(), 1);
        assert_eq!(j.pending_count(), 0);
        // Conn first: the alt finds it.
        let (_, places) = j.on_alt(alt("C1", 20.0), Position::default()).unwrap();
        assert_eq!(places, vec![w]);
        // After expiry, an alt waits again (and becomes an orphan at the end).
        j.expire(100.5);
        assert_eq!(j.open_conns(), 0);
        assert!(j.on_alt(alt("C1", 30.0), Position::default()).is_none());
        assert_eq!(j.drain_orphans().len(), 1);
        assert_eq!(j.pending_count(), 0);
    }

    #[test]
    fn the_cap_releases_the_longest_waiting_first() {
        let mut j = UidJoin::with_cap(2);
        for (uid, ts) in [("A", 1.0), ("B", 2.0), ("A", 3.0), ("C", 4.0)] {
            assert!(j.on_alt(alt(uid, ts), Position::default()).is_none());
        }
        let released = j.over_cap();
        let uids: Vec<&str> = released.iter().map(|(a, _)| a.uid.as_str()).collect();
        assert_eq!(uids, ["A", "A"]);
        assert_eq!(j.pending_count(), 2);
        assert_eq!(j.gave_up, 2);
        // B joins normally afterwards.
        let _ = j.take_changes();
        let w = WinId::new("10.0.0.1".parse().unwrap(), 0);
        assert_eq!(j.on_conn("B", &[w], 10.0).len(), 1);
        let changes = j.take_changes();
        assert_eq!(changes.pending, vec![("B".into(), None)]);
        assert_eq!(changes.conns.len(), 1);
    }

    #[test]
    fn persisted_state_restores_the_same_join() {
        let mut j = UidJoin::default();
        let w = WinId::new("10.0.0.1".parse().unwrap(), 7);
        j.on_conn("C1", &[w], 100.0);
        let mut a = alt("C2", 5.0);
        a.json = r#"{"uid": "C2", "type": "dns"}"#.into();
        assert!(j.on_alt(a, Position::default()).is_none());
        let changes = j.take_changes();
        let mut k = UidJoin::default();
        for (uid, v) in &changes.conns {
            k.restore_conn(uid, v.as_deref().unwrap()).unwrap();
        }
        for (uid, v) in &changes.pending {
            k.restore_pending(uid, v.as_deref().unwrap()).unwrap();
        }
        assert_eq!(k.pending_count(), 1);
        let (_, places) = k.on_alt(alt("C1", 50.0), Position::default()).unwrap();
        assert_eq!(places, vec![w]);
        assert_eq!(k.on_conn("C2", &[w], 9.0).len(), 1);
        // Expiry is persisted as a deletion.
        j.expire(1000.0);
        let changes = j.take_changes();
        assert_eq!(changes.conns, vec![("C1".into(), None)]);
    }
}
