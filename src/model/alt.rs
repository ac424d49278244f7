//! The dns/http/ssl records ("alt flows") as the profiler keeps them: the fields the join needs
//! (time, uid, addresses) and the `_altflows` value (reference §5.2), built once from the record,
//! with its timeline sub-line. The sub-line's text is the timeline's
//! (`timeline::lines::push_sub_line`), handed in as a [`SubLine`] so that this noun, shared by
//! every stage, depends on none of them.

use compact_str::CompactString;
use std::net::IpAddr;

use std::borrow::Cow;

use crate::pyjson::PyValue;
use crate::zeek::{DnsRecord, HttpRecord, LogKind, SslRecord};

/// Writes the timeline sub-line of a record of `kind` whose `_altflows` value is the
/// [`PyValue`] (`timeline::lines::push_sub_line`).
pub type SubLine = fn(&mut String, LogKind, &PyValue);

/// One dns, http or ssl record.
#[derive(Clone, Debug, PartialEq)]
pub struct AltRecord {
    /// Its own `ts`.
    pub ts: f64,
    /// Which log it came from (never `Conn`).
    pub kind: LogKind,
    /// Zeek uid of the connection it belongs to.
    pub uid: CompactString,
    /// Originator address.
    pub saddr: IpAddr,
    /// Responder address.
    pub daddr: IpAddr,
    /// The `_altflows` value (Python-JSON: `uid`, `type`, then the kind's fields, §5.2).
    pub json: String,
    /// Its timeline sub-line, rendered once from the same values.
    pub sub: String,
    /// The domain name it names (dns `query`, http `host`, ssl `server_name`; empty if none),
    /// which domain blocklists are matched against.
    pub name: CompactString,
}

fn s<'a>(v: &'a Option<Cow<'_, str>>) -> &'a str {
    v.as_deref().unwrap_or("")
}

/// The fields of an alt record in order, as Python values: one source for its JSON and its
/// sub-line.
struct Fields(Vec<(CompactString, PyValue)>);

impl Fields {
    fn put(&mut self, k: &str, v: PyValue) -> &mut Self {
        self.0.push((CompactString::new(k), v));
        self
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.put(k, PyValue::Str(CompactString::new(v)))
    }

    fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.put(k, PyValue::Int(v))
    }

    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.put(k, PyValue::Bool(v))
    }
}

/// A list field: the list, or `""` when Zeek left it unset.
fn list(w: &mut Fields, k: &str, v: &Option<Vec<Cow<'_, str>>>) {
    match v {
        Some(items) => w.put(
            k,
            PyValue::List(
                items
                    .iter()
                    .map(|i| PyValue::Str(CompactString::new(i)))
                    .collect(),
            ),
        ),
        None => w.str(k, ""),
    };
}

/// The common checks: a finite `ts` and two addresses of one family (spec README "Fine points").
fn header(
    ts: Option<f64>,
    orig: Option<IpAddr>,
    resp: Option<IpAddr>,
) -> Option<(f64, IpAddr, IpAddr)> {
    let ts = ts.filter(|t| t.is_finite())?;
    let (saddr, daddr) = (orig?, resp?);
    (saddr.is_ipv4() == daddr.is_ipv4()).then_some((ts, saddr, daddr))
}

fn start(uid: &str, kind: LogKind) -> Fields {
    let mut w = Fields(Vec::with_capacity(14));
    w.str("uid", uid).str("type", kind.as_str());
    w
}

impl AltRecord {
    /// A record from its fields (`value`, a Python object): its JSON and, by `sub_line`, its
    /// sub-line are rendered from them.
    pub fn new(
        ts: f64,
        kind: LogKind,
        uid: CompactString,
        saddr: IpAddr,
        daddr: IpAddr,
        value: PyValue,
        sub_line: SubLine,
    ) -> AltRecord {
        // Both strings wait in memory with the record until its conn's entry is written:
        // rendered into a buffer kept by the thread, then copied at their exact size (no
        // growth on the way, no slack after).
        thread_local! {
            static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let (json, sub) = SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            value.write_json(buf);
            let json = buf.as_str().to_owned();
            buf.clear();
            sub_line(buf, kind, &value);
            (json, buf.as_str().to_owned())
        });
        let name_key = match kind {
            LogKind::Dns => "query",
            LogKind::Http => "host",
            LogKind::Ssl => "server_name",
            LogKind::Conn => "",
        };
        let name = match value.get(name_key) {
            Some(PyValue::Str(n)) => n.clone(),
            _ => CompactString::default(),
        };
        AltRecord {
            ts,
            kind,
            uid,
            saddr,
            daddr,
            json,
            sub,
            name,
        }
    }

    /// A dns record, or `None` when it must be dropped (bad ts or addresses).
    pub fn from_dns(r: &DnsRecord<'_>, sub_line: SubLine) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = CompactString::new(s(&r.uid));
        let mut w = start(&uid, LogKind::Dns);
        w.str("query", s(&r.query))
            .str("qclass_name", s(&r.qclass_name))
            .str("qtype_name", s(&r.qtype_name))
            .str("rcode_name", s(&r.rcode_name));
        list(&mut w, "answers", &r.answers);
        match &r.ttls {
            Some(t) => w.put(
                "ttls",
                PyValue::List(t.iter().map(|x| PyValue::Float(*x)).collect()),
            ),
            None => w.str("ttls", ""),
        };
        Some(AltRecord::new(
            ts,
            LogKind::Dns,
            uid,
            saddr,
            daddr,
            PyValue::Object(w.0),
            sub_line,
        ))
    }

    /// An http record, or `None` when it must be dropped.
    pub fn from_http(r: &HttpRecord<'_>, sub_line: SubLine) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = CompactString::new(s(&r.uid));
        let mut w = start(&uid, LogKind::Http);
        w.str("method", s(&r.method))
            .str("host", s(&r.host))
            .str("uri", s(&r.uri))
            .str("version", s(&r.version))
            .str("user_agent", s(&r.user_agent))
            .int("request_body_len", r.request_body_len.unwrap_or(0) as i64)
            .int("response_body_len", r.response_body_len.unwrap_or(0) as i64);
        match r.status_code {
            Some(c) => w.int("status_code", c as i64),
            None => w.str("status_code", ""),
        };
        w.str("status_msg", s(&r.status_msg));
        list(&mut w, "resp_mime_types", &r.resp_mime_types);
        list(&mut w, "resp_fuids", &r.resp_fuids);
        Some(AltRecord::new(
            ts,
            LogKind::Http,
            uid,
            saddr,
            daddr,
            PyValue::Object(w.0),
            sub_line,
        ))
    }

    /// An ssl record, or `None` when it must be dropped.
    pub fn from_ssl(r: &SslRecord<'_>, sub_line: SubLine) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = CompactString::new(s(&r.uid));
        let mut w = start(&uid, LogKind::Ssl);
        w.str("version", s(&r.version)).str("cipher", s(&r.cipher));
        for (k, v) in [("resumed", r.resumed), ("established", r.established)] {
            match v {
                Some(b) => w.bool(k, b),
                None => w.str(k, ""),
            };
        }
        list(&mut w, "cert_chain_fuids", &r.cert_chain_fuids);
        list(
            &mut w,
            "client_cert_chain_fuids",
            &r.client_cert_chain_fuids,
        );
        w.str("subject", s(&r.subject))
            .str("issuer", s(&r.issuer))
            .str("validation_status", s(&r.validation_status))
            .str("curve", s(&r.curve))
            .str("server_name", s(&r.server_name));
        Some(AltRecord::new(
            ts,
            LogKind::Ssl,
            uid,
            saddr,
            daddr,
            PyValue::Object(w.0),
            sub_line,
        ))
    }

    /// The `_altflows` value (Python-JSON).
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// The value parsed (key order kept), for reading its fields.
    pub fn value(&self) -> PyValue {
        serde_json::from_str::<serde_json::Value>(&self.json)
            .map(|v| PyValue::from_serde(&v))
            .unwrap_or(PyValue::Null)
    }

    /// Our own list entry for this record: `[ts, kind, saddr, daddr, value]`.
    pub fn list_entry(&self) -> String {
        self.entry(true)
    }

    /// The entry without its value, `[ts, kind, saddr, daddr]`: for a uid's last record,
    /// whose value is the `_altflows` value.
    pub fn list_entry_short(&self) -> String {
        self.entry(false)
    }

    fn entry(&self, with_value: bool) -> String {
        let mut out = String::with_capacity(self.json.len() + 64);
        out.push('[');
        crate::pyjson::write_json_float(&mut out, self.ts);
        out.push_str(", ");
        crate::pyjson::write_json_str(&mut out, self.kind.as_str());
        out.push_str(", ");
        crate::pyjson::write_json_ip(&mut out, self.saddr);
        out.push_str(", ");
        crate::pyjson::write_json_ip(&mut out, self.daddr);
        if with_value {
            out.push_str(", ");
            out.push_str(&self.json);
        }
        out.push(']');
        out
    }

    /// The alt records of one uid back from our own `kalipso-ingest:alts:` list
    /// (`[[ts, kind, saddr, daddr, value], …]`, the last entry possibly without its value,
    /// which is then `last_value`: the uid's `_altflows` value); `None` when the text is not
    /// such a list.
    pub fn list_from_json(
        uid: &str,
        json: &str,
        last_value: Option<&str>,
        sub_line: SubLine,
    ) -> Option<Vec<AltRecord>> {
        let last: Option<serde_json::Value> = last_value.and_then(|v| serde_json::from_str(v).ok());
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let items = v.as_array()?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let a = item.as_array()?;
                let (ts, kind, saddr, daddr, value) = match a.as_slice() {
                    [ts, kind, saddr, daddr, value] => (ts, kind, saddr, daddr, value),
                    [ts, kind, saddr, daddr] if i + 1 == items.len() => {
                        (ts, kind, saddr, daddr, last.as_ref()?)
                    }
                    _ => return None,
                };
                let kind = LogKind::from_path(kind.as_str()?)?;
                (kind != LogKind::Conn).then_some(())?;
                Some(AltRecord::new(
                    ts.as_f64()?,
                    kind,
                    CompactString::new(uid),
                    saddr.as_str()?.parse().ok()?,
                    daddr.as_str()?.parse().ok()?,
                    PyValue::from_serde(value),
                    sub_line,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeek::Record;

    /// A sub-line writer standing in for the timeline's.
    fn sub(out: &mut String, kind: LogKind, _: &PyValue) {
        out.push_str(kind.as_str());
    }

    fn records(text: &str) -> Vec<Record<'static>> {
        let mut r = crate::source::reader::from_reader("t.log", text.as_bytes(), None);
        let mut out = Vec::new();
        while let Some(x) = r.next() {
            out.push(x.unwrap().into_owned());
        }
        out
    }

    #[test]
    fn dns_value_matches_the_oracle_and_reloads() {
        let recs = records(
            r#"{"_path":"dns","ts":1582810000.2,"uid":"C1","id.orig_h":"192.168.1.10","id.orig_p":51000,"id.resp_h":"8.8.8.8","id.resp_p":53,"query":"example.com","qclass_name":"C_INTERNET","qtype_name":"A","rcode_name":"NOERROR","answers":["93.184.216.34"],"TTLs":[3600.0]}
{"_path":"dns","ts":1582810000.3,"uid":"C4","id.orig_h":"192.168.1.10","id.orig_p":51000,"id.resp_h":"8.8.8.8","id.resp_p":53,"query":"nx.example","qclass_name":"C_INTERNET","qtype_name":"A","rcode_name":"NXDOMAIN"}
"#,
        );
        let alts: Vec<AltRecord> = recs
            .iter()
            .map(|r| match r {
                Record::Dns(d) => AltRecord::from_dns(d, sub).unwrap(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            alts[0].to_json(),
            r#"{"uid": "C1", "type": "dns", "query": "example.com", "qclass_name": "C_INTERNET", "qtype_name": "A", "rcode_name": "NOERROR", "answers": ["93.184.216.34"], "ttls": [3600.0]}"#
        );
        assert_eq!(
            alts[1].to_json(),
            r#"{"uid": "C4", "type": "dns", "query": "nx.example", "qclass_name": "C_INTERNET", "qtype_name": "A", "rcode_name": "NXDOMAIN", "answers": "", "ttls": ""}"#
        );
        let list = format!("[{}, {}]", alts[0].list_entry(), alts[1].list_entry());
        let back = AltRecord::list_from_json("C1", &list, None, sub).unwrap();
        assert_eq!(back[0], alts[0]);
        assert_eq!(back[1].to_json(), alts[1].to_json());
        // The last entry without its value takes the `_altflows` one.
        let short = format!("[{}, {}]", alts[0].list_entry(), alts[1].list_entry_short());
        let back = AltRecord::list_from_json("C1", &short, Some(alts[1].to_json()), sub).unwrap();
        assert_eq!(back[1].to_json(), alts[1].to_json());
        assert_eq!(back[1].ts, alts[1].ts);
        assert!(AltRecord::list_from_json("C1", &short, None, sub).is_none());
        let short_first = format!("[{}, {}]", alts[0].list_entry_short(), alts[1].list_entry());
        assert!(
            AltRecord::list_from_json("C1", &short_first, Some(alts[1].to_json()), sub).is_none()
        );
    }

    #[test]
    fn bad_addresses_drop_the_record() {
        let recs = records(
            r#"{"_path":"ssl","ts":1.0,"uid":"C1","id.orig_h":"192.168.1.10","id.orig_p":1,"id.resp_h":"2001:db8::1","id.resp_p":443}
"#,
        );
        let Record::Ssl(s) = &recs[0] else { panic!() };
        assert!(AltRecord::from_ssl(s, sub).is_none());
    }
}
