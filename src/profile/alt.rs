//! The dns/http/ssl records ("alt flows") as the profiler keeps them: the fields the join needs
//! (time, uid, addresses) and the `_altflows` value (reference §5.2), built once from the record.

use std::net::IpAddr;

use crate::store::pyjson::PyValue;
use crate::zeek::{DnsRecord, HttpRecord, LogKind, SslRecord};

/// One dns, http or ssl record.
#[derive(Clone, Debug, PartialEq)]
pub struct AltRecord {
    /// Its own `ts`.
    pub ts: f64,
    /// Which log it came from (never `Conn`).
    pub kind: LogKind,
    /// Zeek uid of the connection it belongs to.
    pub uid: String,
    /// Originator address.
    pub saddr: IpAddr,
    /// Responder address.
    pub daddr: IpAddr,
    /// The `_altflows` value as an ordered object (`uid`, `type`, then the kind's fields).
    pub value: PyValue,
}

fn s(v: &Option<std::borrow::Cow<'_, str>>) -> PyValue {
    PyValue::Str(v.as_deref().unwrap_or("").to_string())
}

fn list(v: &Option<Vec<std::borrow::Cow<'_, str>>>) -> PyValue {
    match v {
        Some(items) => PyValue::List(items.iter().map(|i| PyValue::Str(i.to_string())).collect()),
        None => PyValue::Str(String::new()),
    }
}

fn int_or_empty(v: Option<u64>) -> PyValue {
    v.map_or(PyValue::Str(String::new()), |n| PyValue::Int(n as i64))
}

fn bool_or_empty(v: Option<bool>) -> PyValue {
    v.map_or(PyValue::Str(String::new()), PyValue::Bool)
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

fn object(uid: &str, kind: LogKind, fields: Vec<(&str, PyValue)>) -> PyValue {
    let mut entries = Vec::with_capacity(fields.len() + 2);
    entries.push(("uid".to_string(), PyValue::Str(uid.to_string())));
    entries.push(("type".to_string(), PyValue::Str(kind.as_str().to_string())));
    entries.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    PyValue::Object(entries)
}

impl AltRecord {
    /// A dns record, or `None` when it must be dropped (bad ts or addresses).
    pub fn from_dns(r: &DnsRecord<'_>) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = r.uid.as_deref().unwrap_or("").to_string();
        let ttls = match &r.ttls {
            Some(t) => PyValue::List(t.iter().map(|f| PyValue::Float(*f)).collect()),
            None => PyValue::Str(String::new()),
        };
        let value = object(
            &uid,
            LogKind::Dns,
            vec![
                ("query", s(&r.query)),
                ("qclass_name", s(&r.qclass_name)),
                ("qtype_name", s(&r.qtype_name)),
                ("rcode_name", s(&r.rcode_name)),
                ("answers", list(&r.answers)),
                ("ttls", ttls),
            ],
        );
        Some(AltRecord {
            ts,
            kind: LogKind::Dns,
            uid,
            saddr,
            daddr,
            value,
        })
    }

    /// An http record, or `None` when it must be dropped.
    pub fn from_http(r: &HttpRecord<'_>) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = r.uid.as_deref().unwrap_or("").to_string();
        let value = object(
            &uid,
            LogKind::Http,
            vec![
                ("method", s(&r.method)),
                ("host", s(&r.host)),
                ("uri", s(&r.uri)),
                ("version", s(&r.version)),
                ("user_agent", s(&r.user_agent)),
                (
                    "request_body_len",
                    PyValue::Int(r.request_body_len.unwrap_or(0) as i64),
                ),
                (
                    "response_body_len",
                    PyValue::Int(r.response_body_len.unwrap_or(0) as i64),
                ),
                ("status_code", int_or_empty(r.status_code)),
                ("status_msg", s(&r.status_msg)),
                ("resp_mime_types", list(&r.resp_mime_types)),
                ("resp_fuids", list(&r.resp_fuids)),
            ],
        );
        Some(AltRecord {
            ts,
            kind: LogKind::Http,
            uid,
            saddr,
            daddr,
            value,
        })
    }

    /// An ssl record, or `None` when it must be dropped.
    pub fn from_ssl(r: &SslRecord<'_>) -> Option<AltRecord> {
        let (ts, saddr, daddr) = header(r.ts, r.id.orig_h, r.id.resp_h)?;
        let uid = r.uid.as_deref().unwrap_or("").to_string();
        let value = object(
            &uid,
            LogKind::Ssl,
            vec![
                ("version", s(&r.version)),
                ("cipher", s(&r.cipher)),
                ("resumed", bool_or_empty(r.resumed)),
                ("established", bool_or_empty(r.established)),
                ("cert_chain_fuids", list(&r.cert_chain_fuids)),
                ("client_cert_chain_fuids", list(&r.client_cert_chain_fuids)),
                ("subject", s(&r.subject)),
                ("issuer", s(&r.issuer)),
                ("validation_status", s(&r.validation_status)),
                ("curve", s(&r.curve)),
                ("server_name", s(&r.server_name)),
            ],
        );
        Some(AltRecord {
            ts,
            kind: LogKind::Ssl,
            uid,
            saddr,
            daddr,
            value,
        })
    }

    /// The `_altflows` value (Python-JSON).
    pub fn to_json(&self) -> String {
        self.value.to_json()
    }

    /// A field of the value (`None` when the kind has no such field).
    pub fn field(&self, name: &str) -> Option<&PyValue> {
        match &self.value {
            PyValue::Object(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl AltRecord {
    /// The alt records of one uid back from our own `kalipso-ingest:alts:` list
    /// (`[[ts, kind, saddr, daddr, value], …]`); `None` when the text is not such a list.
    pub fn list_from_json(uid: &str, json: &str) -> Option<Vec<AltRecord>> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        v.as_array()?
            .iter()
            .map(|item| {
                let a = item.as_array()?;
                let [ts, kind, saddr, daddr, value] = a.as_slice() else {
                    return None;
                };
                let kind = LogKind::from_path(kind.as_str()?)?;
                (kind != LogKind::Conn).then_some(())?;
                Some(AltRecord {
                    ts: ts.as_f64()?,
                    kind,
                    uid: uid.to_string(),
                    saddr: saddr.as_str()?.parse().ok()?,
                    daddr: daddr.as_str()?.parse().ok()?,
                    value: PyValue::from_serde(value),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeek::Record;

    fn records(text: &str) -> Vec<Record<'static>> {
        let mut r = crate::zeek::reader::from_reader("t.log", text.as_bytes(), None);
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
                Record::Dns(d) => AltRecord::from_dns(d).unwrap(),
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
        let list = PyValue::List(
            alts.iter()
                .map(|a| {
                    PyValue::List(vec![
                        PyValue::Float(a.ts),
                        PyValue::Str("dns".into()),
                        PyValue::Str(a.saddr.to_string()),
                        PyValue::Str(a.daddr.to_string()),
                        a.value.clone(),
                    ])
                })
                .collect(),
        );
        let back = AltRecord::list_from_json("C1", &list.to_json()).unwrap();
        assert_eq!(back[0], alts[0]);
        assert_eq!(back[1].to_json(), alts[1].to_json());
    }

    #[test]
    fn bad_addresses_drop_the_record() {
        let recs = records(
            r#"{"_path":"ssl","ts":1.0,"uid":"C1","id.orig_h":"192.168.1.10","id.orig_p":1,"id.resp_h":"2001:db8::1","id.resp_p":443}
"#,
        );
        let Record::Ssl(s) = &recs[0] else { panic!() };
        assert!(AltRecord::from_ssl(s).is_none());
    }
}
