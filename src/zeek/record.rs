//! Typed records of the four logs kalipso-ingest uses, and how they are built from field values.
//!
//! Both readers (TSV and JSON) fill a slot per wanted field with a [`Val`]; the `from_slots`
//! constructors here convert and check them, so both formats give identical records.
//! A field the log does not have (or an unset one) is `None`, never an error.

use std::borrow::Cow;
use std::net::IpAddr;

use super::error::LineErrorKind;
use super::logname::LogKind;
use super::time::parse_timestamp_text;

/// A decoded field value, as the JSON writer would give it (strings borrow from the line).
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    /// A string (TSV: every non-container value arrives as text and is converted on use).
    Str(Cow<'a, str>),
    /// A JSON floating-point number.
    Float(f64),
    /// A JSON non-negative integer.
    Uint(u64),
    /// A JSON negative integer.
    Int(i64),
    /// A JSON boolean.
    Bool(bool),
    /// A set or vector.
    List(Vec<Val<'a>>),
    /// A JSON object (not used by any field we read).
    Object,
}

/// Most slots any record kind uses.
pub const MAX_SLOTS: usize = 20;

/// The fixed-size slot array both parsers fill.
pub type Slots<'a> = [Option<Val<'a>>; MAX_SLOTS];

/// An empty slot array.
pub fn empty_slots<'a>() -> Slots<'a> {
    std::array::from_fn(|_| None)
}

/// The Zeek field names each record kind reads, in slot order. Slot 0 is always `ts`, 1 `uid`,
/// 2..=5 the connection endpoints.
pub fn wanted_fields(kind: Option<LogKind>) -> &'static [&'static str] {
    match kind {
        Some(LogKind::Conn) => CONN_FIELDS,
        Some(LogKind::Dns) => DNS_FIELDS,
        Some(LogKind::Http) => HTTP_FIELDS,
        Some(LogKind::Ssl) => SSL_FIELDS,
        None => OTHER_FIELDS,
    }
}

/// Fields whose values are lists (used when a TSV header has no `#types`).
pub fn is_list_field(name: &str) -> bool {
    matches!(
        name,
        "answers"
            | "TTLs"
            | "resp_mime_types"
            | "resp_fuids"
            | "cert_chain_fuids"
            | "client_cert_chain_fuids"
    )
}

const OTHER_FIELDS: &[&str] = &["ts"];
const CONN_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "history",
];
const DNS_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "query",
    "qclass_name",
    "qtype_name",
    "rcode_name",
    "answers",
    "TTLs",
];
const HTTP_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "method",
    "host",
    "uri",
    "version",
    "user_agent",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
    "resp_mime_types",
    "resp_fuids",
];
const SSL_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "version",
    "cipher",
    "curve",
    "server_name",
    "resumed",
    "established",
    "subject",
    "issuer",
    "validation_status",
    "cert_chain_fuids",
    "client_cert_chain_fuids",
];

/// The slot of a field name for a kind, accepting the `_` scope separator (`id_orig_h`).
pub fn slot_of(kind: Option<LogKind>, name: &str) -> Option<usize> {
    let fields = wanted_fields(kind);
    if let Some(i) = fields.iter().position(|f| *f == name) {
        return Some(i);
    }
    let rest = name.strip_prefix("id_")?;
    fields
        .iter()
        .position(|f| f.strip_prefix("id.") == Some(rest))
}

/// The two ends of a connection (`id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoints {
    /// Originator address.
    pub orig_h: Option<IpAddr>,
    /// Originator port (ICMP: type).
    pub orig_p: Option<u16>,
    /// Responder address.
    pub resp_h: Option<IpAddr>,
    /// Responder port (ICMP: code).
    pub resp_p: Option<u16>,
}

/// A `conn.log` record.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnRecord<'a> {
    /// Start time, epoch seconds.
    pub ts: Option<f64>,
    /// Zeek connection uid.
    pub uid: Option<Cow<'a, str>>,
    /// Endpoints.
    pub id: Endpoints,
    /// Transport protocol (`tcp`, `udp`, `icmp`, `unknown_transport`).
    pub proto: Option<Cow<'a, str>>,
    /// Detected services, e.g. `ssl,http`.
    pub service: Option<Cow<'a, str>>,
    /// Duration in seconds.
    pub duration: Option<f64>,
    /// Payload bytes sent by the originator.
    pub orig_bytes: Option<u64>,
    /// Payload bytes sent by the responder.
    pub resp_bytes: Option<u64>,
    /// Zeek connection state (`SF`, `S0`, `REJ`, ...).
    pub conn_state: Option<Cow<'a, str>>,
    /// Packets sent by the originator.
    pub orig_pkts: Option<u64>,
    /// IP-level bytes sent by the originator.
    pub orig_ip_bytes: Option<u64>,
    /// Packets sent by the responder.
    pub resp_pkts: Option<u64>,
    /// IP-level bytes sent by the responder.
    pub resp_ip_bytes: Option<u64>,
    /// Connection history letters.
    pub history: Option<Cow<'a, str>>,
}

/// A `dns.log` record.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsRecord<'a> {
    /// Time of the request, epoch seconds.
    pub ts: Option<f64>,
    /// Uid of the connection carrying it.
    pub uid: Option<Cow<'a, str>>,
    /// Endpoints.
    pub id: Endpoints,
    /// Queried name.
    pub query: Option<Cow<'a, str>>,
    /// Query class name (`C_INTERNET`).
    pub qclass_name: Option<Cow<'a, str>>,
    /// Query type name (`A`, `AAAA`, ...).
    pub qtype_name: Option<Cow<'a, str>>,
    /// Response code name (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode_name: Option<Cow<'a, str>>,
    /// Answers.
    pub answers: Option<Vec<Cow<'a, str>>>,
    /// TTLs of the answers, seconds.
    pub ttls: Option<Vec<f64>>,
}

/// An `http.log` record.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRecord<'a> {
    /// Time of the request, epoch seconds.
    pub ts: Option<f64>,
    /// Uid of the connection carrying it.
    pub uid: Option<Cow<'a, str>>,
    /// Endpoints.
    pub id: Endpoints,
    /// Request method.
    pub method: Option<Cow<'a, str>>,
    /// `Host` header.
    pub host: Option<Cow<'a, str>>,
    /// Request URI.
    pub uri: Option<Cow<'a, str>>,
    /// HTTP version.
    pub version: Option<Cow<'a, str>>,
    /// `User-Agent` header.
    pub user_agent: Option<Cow<'a, str>>,
    /// Request body length.
    pub request_body_len: Option<u64>,
    /// Response body length.
    pub response_body_len: Option<u64>,
    /// Response status code.
    pub status_code: Option<u64>,
    /// Response status message.
    pub status_msg: Option<Cow<'a, str>>,
    /// MIME types of the response bodies.
    pub resp_mime_types: Option<Vec<Cow<'a, str>>>,
    /// File ids of the response bodies.
    pub resp_fuids: Option<Vec<Cow<'a, str>>>,
}

/// An `ssl.log` record.
#[derive(Clone, Debug, PartialEq)]
pub struct SslRecord<'a> {
    /// Time of the handshake, epoch seconds.
    pub ts: Option<f64>,
    /// Uid of the connection carrying it.
    pub uid: Option<Cow<'a, str>>,
    /// Endpoints.
    pub id: Endpoints,
    /// TLS version (`TLSv12`).
    pub version: Option<Cow<'a, str>>,
    /// Cipher suite.
    pub cipher: Option<Cow<'a, str>>,
    /// Elliptic curve.
    pub curve: Option<Cow<'a, str>>,
    /// SNI server name.
    pub server_name: Option<Cow<'a, str>>,
    /// Whether the session was resumed.
    pub resumed: Option<bool>,
    /// Whether the handshake completed.
    pub established: Option<bool>,
    /// Certificate subject.
    pub subject: Option<Cow<'a, str>>,
    /// Certificate issuer.
    pub issuer: Option<Cow<'a, str>>,
    /// Certificate validation result (`ok`, ...).
    pub validation_status: Option<Cow<'a, str>>,
    /// File ids of the server certificate chain.
    pub cert_chain_fuids: Option<Vec<Cow<'a, str>>>,
    /// File ids of the client certificate chain.
    pub client_cert_chain_fuids: Option<Vec<Cow<'a, str>>>,
}

/// One record of any log.
#[derive(Clone, Debug, PartialEq)]
pub enum Record<'a> {
    /// From `conn.log`.
    Conn(ConnRecord<'a>),
    /// From `dns.log`.
    Dns(DnsRecord<'a>),
    /// From `http.log`.
    Http(HttpRecord<'a>),
    /// From `ssl.log`.
    Ssl(SslRecord<'a>),
    /// A well-formed record of a log we do not use (only its `ts` is read).
    Other {
        /// Its `ts`, when it has one.
        ts: Option<f64>,
    },
}

impl<'a> Record<'a> {
    /// The record's `ts`.
    pub fn ts(&self) -> Option<f64> {
        match self {
            Record::Conn(r) => r.ts,
            Record::Dns(r) => r.ts,
            Record::Http(r) => r.ts,
            Record::Ssl(r) => r.ts,
            Record::Other { ts } => *ts,
        }
    }

    /// The record's log kind (`None` for other logs).
    pub fn kind(&self) -> Option<LogKind> {
        match self {
            Record::Conn(_) => Some(LogKind::Conn),
            Record::Dns(_) => Some(LogKind::Dns),
            Record::Http(_) => Some(LogKind::Http),
            Record::Ssl(_) => Some(LogKind::Ssl),
            Record::Other { .. } => None,
        }
    }

    /// The record's uid, for the four logs that have one.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Record::Conn(r) => r.uid.as_deref(),
            Record::Dns(r) => r.uid.as_deref(),
            Record::Http(r) => r.uid.as_deref(),
            Record::Ssl(r) => r.uid.as_deref(),
            Record::Other { .. } => None,
        }
    }

    /// Build the record of `kind` from filled slots (see [`wanted_fields`] for the slot order).
    pub fn from_slots(
        kind: Option<LogKind>,
        slots: &mut Slots<'a>,
    ) -> Result<Record<'a>, LineErrorKind> {
        let fields = wanted_fields(kind);
        let mut s = Taker { slots, fields };
        let ts = s.time(0)?;
        let Some(kind) = kind else {
            return Ok(Record::Other { ts });
        };
        let uid = s.string(1)?;
        let id = Endpoints {
            orig_h: s.addr(2)?,
            orig_p: s.port(3)?,
            resp_h: s.addr(4)?,
            resp_p: s.port(5)?,
        };
        Ok(match kind {
            LogKind::Conn => Record::Conn(ConnRecord {
                ts,
                uid,
                id,
                proto: s.string(6)?,
                service: s.string(7)?,
                duration: s.float(8)?,
                orig_bytes: s.count(9)?,
                resp_bytes: s.count(10)?,
                conn_state: s.string(11)?,
                orig_pkts: s.count(12)?,
                orig_ip_bytes: s.count(13)?,
                resp_pkts: s.count(14)?,
                resp_ip_bytes: s.count(15)?,
                history: s.string(16)?,
            }),
            LogKind::Dns => Record::Dns(DnsRecord {
                ts,
                uid,
                id,
                query: s.string(6)?,
                qclass_name: s.string(7)?,
                qtype_name: s.string(8)?,
                rcode_name: s.string(9)?,
                answers: s.strings(10)?,
                ttls: s.floats(11)?,
            }),
            LogKind::Http => Record::Http(HttpRecord {
                ts,
                uid,
                id,
                method: s.string(6)?,
                host: s.string(7)?,
                uri: s.string(8)?,
                version: s.string(9)?,
                user_agent: s.string(10)?,
                request_body_len: s.count(11)?,
                response_body_len: s.count(12)?,
                status_code: s.count(13)?,
                status_msg: s.string(14)?,
                resp_mime_types: s.strings(15)?,
                resp_fuids: s.strings(16)?,
            }),
            LogKind::Ssl => Record::Ssl(SslRecord {
                ts,
                uid,
                id,
                version: s.string(6)?,
                cipher: s.string(7)?,
                curve: s.string(8)?,
                server_name: s.string(9)?,
                resumed: s.boolean(10)?,
                established: s.boolean(11)?,
                subject: s.string(12)?,
                issuer: s.string(13)?,
                validation_status: s.string(14)?,
                cert_chain_fuids: s.strings(15)?,
                client_cert_chain_fuids: s.strings(16)?,
            }),
        })
    }
}

/// Takes values out of the slots, converting them to the field's type.
struct Taker<'s, 'a> {
    slots: &'s mut Slots<'a>,
    fields: &'static [&'static str],
}

impl<'a> Taker<'_, 'a> {
    fn take(&mut self, i: usize) -> Option<Val<'a>> {
        self.slots[i].take()
    }

    fn bad(&self, i: usize, what: &'static str, val: &Val<'_>) -> LineErrorKind {
        LineErrorKind::BadValue {
            field: self.fields[i],
            expected: what,
            value: preview(val),
        }
    }

    fn time(&mut self, i: usize) -> Result<Option<f64>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        let t = match &v {
            Val::Float(f) => Some(*f),
            // Integer JSON timestamps: seconds when small, else milliseconds
            // (LogAscii::json_timestamps=JSON::TS_MILLIS; its unsigned variant wraps negatives).
            Val::Uint(u) => int_timestamp(*u as i64),
            Val::Int(n) => int_timestamp(*n),
            Val::Str(s) => parse_timestamp_text(s),
            _ => None,
        };
        match t {
            Some(t) if t.is_finite() => Ok(Some(t)),
            _ => Err(self.bad(i, "a timestamp", &v)),
        }
    }

    fn float(&mut self, i: usize) -> Result<Option<f64>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        match to_f64(&v) {
            Some(f) => Ok(Some(f)),
            None => Err(self.bad(i, "a number", &v)),
        }
    }

    fn count(&mut self, i: usize) -> Result<Option<u64>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        let n = match &v {
            Val::Uint(u) => Some(*u),
            Val::Str(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) => Ok(Some(n)),
            None => Err(self.bad(i, "a count", &v)),
        }
    }

    fn port(&mut self, i: usize) -> Result<Option<u16>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        let n = match &v {
            Val::Uint(u) => u16::try_from(*u).ok(),
            Val::Str(s) => s.parse::<u16>().ok(),
            _ => None,
        };
        match n {
            Some(n) => Ok(Some(n)),
            None => Err(self.bad(i, "a port", &v)),
        }
    }

    fn addr(&mut self, i: usize) -> Result<Option<IpAddr>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        let a = match &v {
            Val::Str(s) => parse_ipv4(s.as_bytes())
                .map(IpAddr::V4)
                .or_else(|| s.parse::<IpAddr>().ok()),
            _ => None,
        };
        match a {
            Some(a) => Ok(Some(a)),
            None => Err(self.bad(i, "an IP address", &v)),
        }
    }

    fn boolean(&mut self, i: usize) -> Result<Option<bool>, LineErrorKind> {
        let Some(v) = self.take(i) else {
            return Ok(None);
        };
        let b = match &v {
            Val::Bool(b) => Some(*b),
            Val::Str(s) if s == "T" => Some(true),
            Val::Str(s) if s == "F" => Some(false),
            _ => None,
        };
        match b {
            Some(b) => Ok(Some(b)),
            None => Err(self.bad(i, "T or F", &v)),
        }
    }

    fn string(&mut self, i: usize) -> Result<Option<Cow<'a, str>>, LineErrorKind> {
        match self.take(i) {
            None => Ok(None),
            Some(Val::Str(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(i, "a string", &v)),
        }
    }

    fn strings(&mut self, i: usize) -> Result<Option<Vec<Cow<'a, str>>>, LineErrorKind> {
        match self.take(i) {
            None => Ok(None),
            Some(Val::Str(s)) => Ok(Some(vec![s])),
            Some(Val::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Val::Str(s) => out.push(s),
                        other => return Err(self.bad(i, "a list of strings", &other)),
                    }
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.bad(i, "a list of strings", &v)),
        }
    }

    fn floats(&mut self, i: usize) -> Result<Option<Vec<f64>>, LineErrorKind> {
        match self.take(i) {
            None => Ok(None),
            Some(Val::List(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in &items {
                    match to_f64(item) {
                        Some(f) => out.push(f),
                        None => return Err(self.bad(i, "a list of numbers", item)),
                    }
                }
                Ok(Some(out))
            }
            Some(v) => match to_f64(&v) {
                Some(f) => Ok(Some(vec![f])),
                None => Err(self.bad(i, "a list of numbers", &v)),
            },
        }
    }
}

fn to_f64(v: &Val<'_>) -> Option<f64> {
    let f = match v {
        Val::Float(f) => *f,
        Val::Uint(u) => *u as f64,
        Val::Int(n) => *n as f64,
        Val::Str(s) => s.parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// An integer timestamp: below 1e11 in magnitude it is seconds (before 5138 AD), else millis.
fn int_timestamp(n: i64) -> Option<f64> {
    if n.unsigned_abs() < 100_000_000_000 {
        Some(n as f64)
    } else {
        parse_timestamp_text(&millis_text(n))
    }
}

/// `ms` as the decimal text of seconds, so it parses to exactly the f64 an epoch string would.
fn millis_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// A short, printable preview of a bad value for error messages.
fn preview(v: &Val<'_>) -> String {
    let text = match v {
        Val::Str(s) => s.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Uint(u) => u.to_string(),
        Val::Int(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::List(_) => "[...]".to_string(),
        Val::Object => "{...}".to_string(),
    };
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

impl Record<'_> {
    /// An owned copy that no longer borrows from the line it came from.
    pub fn into_owned(self) -> Record<'static> {
        fn s(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        fn l(c: Option<Vec<Cow<'_, str>>>) -> Option<Vec<Cow<'static, str>>> {
            c.map(|v| v.into_iter().map(|c| Cow::Owned(c.into_owned())).collect())
        }
        match self {
            Record::Conn(r) => Record::Conn(ConnRecord {
                ts: r.ts,
                uid: s(r.uid),
                id: r.id,
                proto: s(r.proto),
                service: s(r.service),
                duration: r.duration,
                orig_bytes: r.orig_bytes,
                resp_bytes: r.resp_bytes,
                conn_state: s(r.conn_state),
                orig_pkts: r.orig_pkts,
                orig_ip_bytes: r.orig_ip_bytes,
                resp_pkts: r.resp_pkts,
                resp_ip_bytes: r.resp_ip_bytes,
                history: s(r.history),
            }),
            Record::Dns(r) => Record::Dns(DnsRecord {
                ts: r.ts,
                uid: s(r.uid),
                id: r.id,
                query: s(r.query),
                qclass_name: s(r.qclass_name),
                qtype_name: s(r.qtype_name),
                rcode_name: s(r.rcode_name),
                answers: l(r.answers),
                ttls: r.ttls,
            }),
            Record::Http(r) => Record::Http(HttpRecord {
                ts: r.ts,
                uid: s(r.uid),
                id: r.id,
                method: s(r.method),
                host: s(r.host),
                uri: s(r.uri),
                version: s(r.version),
                user_agent: s(r.user_agent),
                request_body_len: r.request_body_len,
                response_body_len: r.response_body_len,
                status_code: r.status_code,
                status_msg: s(r.status_msg),
                resp_mime_types: l(r.resp_mime_types),
                resp_fuids: l(r.resp_fuids),
            }),
            Record::Ssl(r) => Record::Ssl(SslRecord {
                ts: r.ts,
                uid: s(r.uid),
                id: r.id,
                version: s(r.version),
                cipher: s(r.cipher),
                curve: s(r.curve),
                server_name: s(r.server_name),
                resumed: r.resumed,
                established: r.established,
                subject: s(r.subject),
                issuer: s(r.issuer),
                validation_status: s(r.validation_status),
                cert_chain_fuids: l(r.cert_chain_fuids),
                client_cert_chain_fuids: l(r.client_cert_chain_fuids),
            }),
            Record::Other { ts } => Record::Other { ts },
        }
    }
}

/// The usual address, dotted-quad IPv4 in its standard text, read without the general parser;
/// `None` for anything else (then read by `str::parse`, which accepts what this does, with the
/// same value: four decimal octets of at most 255 without leading zeros).
fn parse_ipv4(s: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|b| *b == b'.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut n: u16 = 0;
        for d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u16::from(d - b'0');
        }
        *o = u8::try_from(n).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast IPv4 reader agrees with the standard parser wherever it answers, and
        /// answers for every address's standard text.
        #[test]
        fn parse_ipv4_agrees_with_std(text in "[0-9.]{0,17}", a in proptest::prelude::any::<[u8; 4]>()) {
            if let Some(ip) = parse_ipv4(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(ip), text.parse::<std::net::Ipv4Addr>().ok());
            }
            let canonical = std::net::Ipv4Addr::from(a);
            proptest::prop_assert_eq!(parse_ipv4(canonical.to_string().as_bytes()), Some(canonical));
        }
    }

    #[test]
    fn parse_ipv4_declines_what_std_refuses() {
        for t in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "256.1.1.1",
            "1..2.3",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.0x1",
        ] {
            assert_eq!(parse_ipv4(t.as_bytes()), None, "{t}");
        }
        assert_eq!(
            parse_ipv4(b"0.0.0.0"),
            Some(std::net::Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn slots_fit() {
        for kind in [None].into_iter().chain(LogKind::ALL.map(Some)) {
            assert!(wanted_fields(kind).len() <= MAX_SLOTS);
            assert_eq!(wanted_fields(kind)[0], "ts");
        }
    }

    #[test]
    fn scope_separator_alias() {
        assert_eq!(slot_of(Some(LogKind::Conn), "id_orig_h"), Some(2));
        assert_eq!(slot_of(Some(LogKind::Conn), "id.resp_p"), Some(5));
        assert_eq!(slot_of(Some(LogKind::Conn), "missed_bytes"), None);
    }

    #[test]
    fn millis_are_exact() {
        assert_eq!(millis_text(-315619200000), "-315619200.000");
        assert_eq!(millis_text(1582810000123), "1582810000.123");
        assert_eq!(millis_text(-5), "-0.005");
    }
}
