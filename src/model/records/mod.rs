//! `--no-flows`: a window's records in our own compact form, instead of the `_flows`,
//! `_altflows` and our copies and alt lists, so that a window can still be read back (a late
//! record, an eviction) without keys no viewer reads.
//!
//! A payload is a sequence of entries, one per uid whose records changed, each complete (a
//! later entry for a uid replaces an earlier one, as `HSET` of the same field did):
//!
//! ```text
//! entry := len:varint  body (len bytes: a damaged entry is skipped alone)
//! body  := uid:str  n:varint flow × n  m:varint alt × m
//!   flow := ts:f64  dur:(0 | 1 f64)  saddr:ip  sport:u16  daddr:ip  dport:u16
//!           proto:str  appproto:str  origstate:str  spkts dpkts sbytes dbytes:varint
//!   alt  := ts:f64  kind:u8  saddr:ip  daddr:ip  rest:str
//!           (rest: the record's `_altflows` JSON — the one encoder of alt values — after its
//!           leading `{"uid": …, "type": …`, which the uid and kind give back)
//! str := len:varint bytes     ip := 4 a.b.c.d | 6 sixteen bytes     f64, u16: little-endian
//! varint := LEB128
//! ```
//!
//! Every copy of a repeated uid is one of its flows, every alt record of the uid one of its
//! alts, in the window's order. [`frame`] compresses payloads into the frames the store
//! keeps; this module knows nothing of Redis.

pub mod frame;

use std::net::IpAddr;

use compact_str::CompactString;

use super::alt::{AltRecord, SubLine};
use super::flow::Flow;
use crate::pyjson::PyValue;
use crate::zeek::LogKind;

/// Append the entry of a uid: every copy of its flow and every alt record, in order.
pub fn push_entry<'a>(
    out: &mut Vec<u8>,
    uid: &str,
    flows: impl ExactSizeIterator<Item = &'a Flow>,
    alts: impl ExactSizeIterator<Item = &'a AltRecord>,
) {
    let mut body = Vec::with_capacity(128);
    push_body(&mut body, uid, flows, alts);
    push_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

fn push_body<'a>(
    out: &mut Vec<u8>,
    uid: &str,
    flows: impl ExactSizeIterator<Item = &'a Flow>,
    alts: impl ExactSizeIterator<Item = &'a AltRecord>,
) {
    push_str(out, uid);
    push_varint(out, flows.len() as u64);
    for f in flows {
        out.extend_from_slice(&f.ts.to_le_bytes());
        match f.dur {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
        push_ip(out, f.saddr);
        out.extend_from_slice(&f.sport.to_le_bytes());
        push_ip(out, f.daddr);
        out.extend_from_slice(&f.dport.to_le_bytes());
        push_str(out, &f.proto);
        push_str(out, &f.appproto);
        push_str(out, &f.origstate);
        for n in [f.spkts, f.dpkts, f.sbytes, f.dbytes] {
            push_varint(out, n);
        }
    }
    push_varint(out, alts.len() as u64);
    for a in alts {
        out.extend_from_slice(&a.ts.to_le_bytes());
        out.push(kind_code(a.kind));
        push_ip(out, a.saddr);
        push_ip(out, a.daddr);
        let json = a.to_json();
        let head = json_head(&a.uid, a.kind);
        // Always so (`AltRecord`'s value starts with them); kept whole otherwise.
        match json.strip_prefix(head.as_str()) {
            Some(rest) => {
                out.push(1);
                push_str(out, rest);
            }
            None => {
                out.push(0);
                push_str(out, json);
            }
        }
    }
}

/// `{"uid": <uid>, "type": "<kind>"`: how an alt record's JSON starts.
fn json_head(uid: &str, kind: LogKind) -> String {
    let mut head = String::from("{\"uid\": ");
    crate::pyjson::write_json_str(&mut head, uid);
    head.push_str(", \"type\": ");
    crate::pyjson::write_json_str(&mut head, kind.as_str());
    head
}

/// A window's records from its payloads in the order they were written (a later entry of a
/// uid replaces an earlier one). Returns the flows, the alt records and how many entries could
/// not be read (the rest of a damaged payload is skipped with it).
pub fn read(payloads: &[Vec<u8>], sub_line: SubLine) -> (Vec<Flow>, Vec<AltRecord>, usize) {
    let mut flows: rustc_hash::FxHashMap<CompactString, Vec<Flow>> = Default::default();
    let mut alts: rustc_hash::FxHashMap<CompactString, Vec<AltRecord>> = Default::default();
    let mut bad = 0;
    for p in payloads {
        let mut r = Reader { b: p };
        while !r.b.is_empty() {
            // A cut length ends the payload; a damaged body only its entry.
            let Some(body) = r
                .varint()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| r.bytes(n))
            else {
                bad += 1;
                break;
            };
            match (Reader { b: body }).entry(sub_line) {
                Some((uid, f, a)) => {
                    flows.insert(uid.clone(), f);
                    alts.insert(uid, a);
                }
                None => bad += 1,
            }
        }
    }
    (
        flows.into_values().flatten().collect(),
        alts.into_values().flatten().collect(),
        bad,
    )
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.b.split_at_checked(n)?;
        self.b = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }

    fn ip(&mut self) -> Option<IpAddr> {
        match self.u8()? {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(self.bytes(4)?).ok()?)),
            6 => Some(IpAddr::from(<[u8; 16]>::try_from(self.bytes(16)?).ok()?)),
            _ => None,
        }
    }

    #[allow(clippy::type_complexity)]
    fn entry(&mut self, sub_line: SubLine) -> Option<(CompactString, Vec<Flow>, Vec<AltRecord>)> {
        let uid = CompactString::new(self.str()?);
        let mut flows = Vec::new();
        for _ in 0..self.varint()? {
            flows.push(self.flow(&uid)?);
        }
        let mut alts = Vec::new();
        for _ in 0..self.varint()? {
            alts.push(self.alt(&uid, sub_line)?);
        }
        Some((uid, flows, alts))
    }

    fn flow(&mut self, uid: &CompactString) -> Option<Flow> {
        let ts = self.f64()?;
        let dur = match self.u8()? {
            0 => None,
            1 => Some(self.f64()?),
            _ => return None,
        };
        let (saddr, sport, daddr, dport) = (self.ip()?, self.u16()?, self.ip()?, self.u16()?);
        let proto = CompactString::new(self.str()?);
        let appproto = CompactString::new(self.str()?);
        let origstate = CompactString::new(self.str()?);
        Some(Flow {
            ts,
            uid: uid.clone(),
            saddr,
            sport,
            daddr,
            dport,
            proto,
            appproto,
            dur,
            origstate,
            spkts: self.varint()?,
            dpkts: self.varint()?,
            sbytes: self.varint()?,
            dbytes: self.varint()?,
        })
    }

    fn alt(&mut self, uid: &CompactString, sub_line: SubLine) -> Option<AltRecord> {
        let ts = self.f64()?;
        let kind = kind_from_code(self.u8()?)?;
        let (saddr, daddr) = (self.ip()?, self.ip()?);
        let stripped = self.u8()?;
        let text = self.str()?;
        let value: serde_json::Value = match stripped {
            1 => serde_json::from_str(&(json_head(uid, kind) + text)).ok()?,
            0 => serde_json::from_str(text).ok()?,
            _ => return None,
        };
        Some(AltRecord::new(
            ts,
            kind,
            uid.clone(),
            saddr,
            daddr,
            PyValue::from_serde(&value),
            sub_line,
        ))
    }
}

fn kind_code(k: LogKind) -> u8 {
    match k {
        LogKind::Conn => 0,
        LogKind::Dns => 1,
        LogKind::Http => 2,
        LogKind::Ssl => 3,
    }
}

fn kind_from_code(c: u8) -> Option<LogKind> {
    match c {
        1 => Some(LogKind::Dns),
        2 => Some(LogKind::Http),
        3 => Some(LogKind::Ssl),
        _ => None,
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    push_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(out: &mut String, kind: LogKind, _: &PyValue) {
        out.push_str(kind.as_str());
    }

    fn flow(uid: &str, ts: f64, dur: Option<f64>, saddr: &str, daddr: &str) -> Flow {
        Flow {
            ts,
            uid: uid.into(),
            saddr: saddr.parse().unwrap(),
            sport: 65535,
            daddr: daddr.parse().unwrap(),
            dport: 0,
            proto: "tcp".into(),
            appproto: "ssl,http".into(),
            dur,
            origstate: "".into(),
            spkts: 0,
            dpkts: u64::MAX,
            sbytes: 127,
            dbytes: 128,
        }
    }

    #[test]
    fn records_round_trip_and_later_entries_replace_earlier_ones() {
        let a = flow("Ca", 1.5e9 + 0.123456, None, "10.0.0.1", "8.8.8.8");
        let b = flow("Cb", 3e-06, Some(0.0), "2001:db8::1", "::");
        let b2 = flow("Cb", 4.0, Some(1e300), "2001:db8::1", "ff02::fb");
        let v = PyValue::from_serde(
            &serde_json::from_str(
                r#"{"uid": "Cb", "type": "dns", "query": "é\"x", "ttls": [1.5]}"#,
            )
            .unwrap(),
        );
        let alt = AltRecord::new(7.25, LogKind::Dns, "Cb".into(), b.saddr, b.daddr, v, sub);
        let none: [&AltRecord; 0] = [];
        let mut first = Vec::new();
        push_entry(&mut first, "Ca", [&a].into_iter(), none.into_iter());
        push_entry(&mut first, "Cb", [&b].into_iter(), none.into_iter());
        let mut second = Vec::new();
        push_entry(&mut second, "Cb", [&b, &b2].into_iter(), [&alt].into_iter());
        let (mut flows, alts, bad) = read(&[first, second], sub);
        flows.sort_by(|x, y| x.ts.total_cmp(&y.ts));
        assert_eq!(bad, 0);
        assert_eq!(flows, vec![b.clone(), b2, a]);
        assert_eq!(alts.len(), 1);
        assert_eq!(alts[0].to_json(), alt.to_json());
        assert_eq!(
            (alts[0].ts, alts[0].kind, &alts[0].sub),
            (7.25, LogKind::Dns, &alt.sub)
        );
    }

    #[test]
    fn a_damaged_payload_keeps_the_entries_before_the_damage() {
        let a = flow("Ca", 1.0, None, "10.0.0.1", "8.8.8.8");
        let none: [&AltRecord; 0] = [];
        let mut p = Vec::new();
        push_entry(&mut p, "Ca", [&a].into_iter(), none.into_iter());
        let good = p.len();
        push_entry(&mut p, "Cb", [&a].into_iter(), none.into_iter());
        for cut in good + 1..p.len() {
            let (flows, _, bad) = read(&[p[..cut].to_vec()], sub);
            assert_eq!((flows.len(), bad), (1, 1), "cut at {cut}");
        }
        let (flows, _, bad) = read(&[vec![5, b'X', 0]], sub);
        assert_eq!((flows.len(), bad), (0, 1));
        // A count far beyond the bytes there allocates nothing large and fails cleanly.
        let (flows, _, bad) = read(&[vec![6, 1, b'u', 0xff, 0xff, 0xff, 0x0f]], sub);
        assert_eq!((flows.len(), bad), (0, 1));
        // A damaged entry between good ones hides nothing after it.
        let mut q = Vec::new();
        push_entry(&mut q, "Ca", [&a].into_iter(), none.into_iter());
        q.extend_from_slice(&[3, 0xff, 0xff, 0xff]);
        push_entry(&mut q, "Cc", [&a].into_iter(), none.into_iter());
        let (flows, _, bad) = read(&[q], sub);
        assert_eq!((flows.len(), bad), (2, 1));
    }
}
