//! The conn as the profiler takes it ([`Flow`]), and which side of it a profile is on
//! ([`Role`]).

use std::net::IpAddr;

use compact_str::CompactString;
use smallvec::SmallVec;

use super::state::ConnSummary;
use crate::pyjson::ObjectWriter;
use crate::pyjson::json_key;
use crate::zeek::ConnRecord;

/// Which side of a flow the profile is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The profile sent the flow (its source): `Client`, counted in `Dst…`/`OutTuples`.
    Client,
    /// The profile received it (its destination): `Server`, counted in `Src…`/`InTuples`.
    Server,
}

/// The side(s) a window's profile is on for one flow: one, or both for a flow from a profile
/// to itself (inline: no allocation per flow).
pub type Roles = SmallVec<[Role; 2]>;

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
            proto: lowercase(c.proto.as_deref()?),
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
        let mut w = ObjectWriter::with_capacity(384);
        w.float(json_key!("ts"), self.ts);
        match self.dur {
            Some(d) => w.float(json_key!("dur"), d),
            None => w.int(json_key!("dur"), 0),
        };
        w.ip(json_key!("saddr"), self.saddr)
            .int(json_key!("sport"), self.sport.into())
            .ip(json_key!("daddr"), self.daddr)
            .int(json_key!("dport"), self.dport.into())
            .str(json_key!("proto"), &self.proto)
            .str(json_key!("origstate"), &self.origstate)
            .str(json_key!("state"), self.state().as_str())
            .int(json_key!("pkts"), self.pkts() as i64)
            .int(json_key!("allbytes"), self.allbytes() as i64)
            .int(json_key!("spkts"), self.spkts as i64)
            .int(json_key!("sbytes"), self.sbytes as i64)
            .str(json_key!("appproto"), &self.appproto)
            .str(json_key!("label"), label);
        w.finish()
    }
}

/// `s` in lower case, as `str::to_lowercase`; the usual ASCII text (`tcp`, `udp`) without the
/// general Unicode machinery, which costs some 500 instructions for three letters.
fn lowercase(s: &str) -> CompactString {
    if !s.is_ascii() {
        return CompactString::from_str_to_lowercase(s);
    }
    let mut out = CompactString::new(s);
    out.make_ascii_lowercase();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The same text as the general lower-casing, for any text.
        #[test]
        fn lowercase_is_the_general_one(s in "\\PC{0,8}|[A-Za-z]{0,6}") {
            proptest::prop_assert_eq!(lowercase(&s), CompactString::from_str_to_lowercase(&s));
        }
    }
}
