//! The per-profile, per-timewindow hash (`profile_<ip>_timewindow<N>`), reference §4 with the
//! spec's fixes: `…PortsServer…` inner `srcips` hold the source IP (bug 14) and `InTuples` are
//! keyed `<saddr>:<dport>:<proto>` (bug 15).
//!
//! A window is a function of its flows: callers add them in the contract's order (ts, log kind,
//! uid, position), and every JSON object keeps first-seen key order, as Python dicts did.

use std::net::IpAddr;

use indexmap::IndexMap;

use super::letters::{TupleClock, add_symbol};
use super::state::ConnSummary;
use crate::store::pyjson::{ObjectWriter, PyValue, write_json_float};
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
    pub uid: String,
    /// Originator address.
    pub saddr: IpAddr,
    /// Originator port (ICMP type).
    pub sport: u16,
    /// Responder address.
    pub daddr: IpAddr,
    /// Responder port (ICMP code).
    pub dport: u16,
    /// Lowercase transport protocol.
    pub proto: String,
    /// Zeek `service`, `""` when unset.
    pub appproto: String,
    /// Duration; `None` when Zeek left it unset (stored as int `0`).
    pub dur: Option<f64>,
    /// Raw Zeek `conn_state`, `""` when unset.
    pub origstate: String,
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
            uid: c.uid.as_deref().unwrap_or("").to_string(),
            saddr,
            sport: c.id.orig_p.unwrap_or(0),
            daddr,
            dport: c.id.resp_p.unwrap_or(0),
            proto: c.proto.as_deref()?.to_lowercase(),
            appproto: c.service.as_deref().unwrap_or("").to_string(),
            dur: c.duration,
            origstate: c.conn_state.as_deref().unwrap_or("").to_string(),
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
        let text = |k: &str| o.get(k).and_then(|x| x.as_str()).map(str::to_string);
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
            uid: uid.to_string(),
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
        w.str("saddr", &self.saddr.to_string())
            .int("sport", self.sport.into())
            .str("daddr", &self.daddr.to_string())
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

/// Totals of one key of a family, with its inner per-IP or per-port packet map.
#[derive(Clone, Debug, Default)]
struct Totals {
    flows: u64,
    pkts: u64,
    bytes: u64,
    inner: IndexMap<String, u64>,
}

/// One tuple's letters and clock.
#[derive(Clone, Debug, Default)]
struct Tuple {
    letters: String,
    clock: TupleClock,
}

/// Everything the per-window hash holds, built flow by flow.
#[derive(Clone, Debug, Default)]
pub struct WindowAggregate {
    /// Field name → (key → totals); the four families.
    families: IndexMap<String, IndexMap<String, Totals>>,
    dst_ips: IndexMap<String, u64>,
    src_ips: IndexMap<String, u64>,
    out_tuples: IndexMap<String, Tuple>,
    in_tuples: IndexMap<String, Tuple>,
}

impl WindowAggregate {
    /// Count one conn flow for the profile on side `role`.
    pub fn add(&mut self, flow: &Flow, role: Role) {
        let proto = flow.proto.to_uppercase();
        let state = flow.state().as_str();
        let (pkts, bytes) = (flow.pkts(), flow.allbytes());
        let (saddr, daddr) = (flow.saddr.to_string(), flow.daddr.to_string());
        let (sport, dport) = (flow.sport.to_string(), flow.dport.to_string());
        // The peer is the other end; the families are named from the profile's side.
        let (peer, tuples, peer_counts, [ips, dst_ports, src_ports]) = match role {
            Role::Client => (
                &daddr,
                &mut self.out_tuples,
                &mut self.dst_ips,
                ["DstIPsClient", "DstPortsClient", "SrcPortsClient"],
            ),
            Role::Server => (
                &saddr,
                &mut self.in_tuples,
                &mut self.src_ips,
                ["SrcIPsServer", "DstPortsServer", "SrcPortsServer"],
            ),
        };
        let t = tuples
            .entry(format!("{peer}:{dport}:{}", flow.proto))
            .or_default();
        let dur = flow.dur.unwrap_or(0.0);
        t.clock = add_symbol(&mut t.letters, t.clock, flow.ts, dur, bytes);
        *peer_counts.entry(peer.clone()).or_insert(0) += 1;
        let peer = peer.clone();
        self.count(format!("{ips}{proto}{state}"), &peer, &dport, pkts, bytes);
        self.count(
            format!("{dst_ports}{proto}{state}"),
            &dport,
            &peer,
            pkts,
            bytes,
        );
        self.count(
            format!("{src_ports}{proto}{state}"),
            &sport,
            &peer,
            pkts,
            bytes,
        );
    }

    fn count(&mut self, field: String, key: &str, inner: &str, pkts: u64, bytes: u64) {
        let t = self
            .families
            .entry(field)
            .or_default()
            .entry(key.to_string())
            .or_default();
        t.flows += 1;
        t.pkts += pkts;
        t.bytes += bytes;
        *t.inner.entry(inner.to_string()).or_insert(0) += pkts;
    }

    /// Every hash field with its Python-JSON value.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let counts = |m: &IndexMap<String, u64>| {
            PyValue::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), PyValue::Int(*v as i64)))
                    .collect(),
            )
        };
        if !self.dst_ips.is_empty() {
            out.push(("DstIPs".to_string(), counts(&self.dst_ips).to_json()));
        }
        if !self.src_ips.is_empty() {
            out.push(("SrcIPs".to_string(), counts(&self.src_ips).to_json()));
        }
        for (field, keys) in &self.families {
            let inner_name = if field.starts_with("DstIPs") || field.starts_with("SrcIPsServer") {
                "dstports"
            } else if field.contains("Server") {
                "srcips"
            } else {
                "dstips"
            };
            let value = PyValue::Object(
                keys.iter()
                    .map(|(k, t)| {
                        (
                            k.clone(),
                            PyValue::Object(vec![
                                ("totalflows".into(), PyValue::Int(t.flows as i64)),
                                ("totalpkt".into(), PyValue::Int(t.pkts as i64)),
                                ("totalbytes".into(), PyValue::Int(t.bytes as i64)),
                                (inner_name.into(), counts(&t.inner)),
                            ]),
                        )
                    })
                    .collect(),
            );
            out.push((field.clone(), value.to_json()));
        }
        for (name, tuples) in [
            ("OutTuples", &self.out_tuples),
            ("InTuples", &self.in_tuples),
        ] {
            if !tuples.is_empty() {
                out.push((name.to_string(), tuples_json(tuples)));
            }
        }
        out
    }
}

/// `{"<ip>:<port>:<proto>": ["<letters>", [<prev or false>, <cur>]], …}`
fn tuples_json(tuples: &IndexMap<String, Tuple>) -> String {
    let mut out = String::from("{");
    for (i, (key, t)) in tuples.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        crate::store::pyjson::write_json_str(&mut out, key);
        out.push_str(": [");
        crate::store::pyjson::write_json_str(&mut out, &t.letters);
        out.push_str(", [");
        match t.clock.prev {
            Some(p) => write_json_float(&mut out, p),
            None => out.push_str("false"),
        }
        out.push_str(", ");
        match t.clock.last {
            Some(l) => write_json_float(&mut out, l),
            None => out.push_str("false"),
        }
        out.push_str("]]");
    }
    out.push('}');
    out
}
