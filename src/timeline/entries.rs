//! The current Kalipso's timeline entries (`--layout kalipso`): one JSON object per flow, its
//! dns/http/ssl interpretation in `info`, as Slips' timeline module built them
//! (`../shared/viewers/reference-slips-2026/timeline.py`; facts and key orders in
//! `docs/kalipso-2026-layout-facts.md` §5). The viewer prints the keys in their order; it
//! shows `daddr` on `to` rows and `saddr` on `from` rows.

use super::services::PortNames;
use crate::model::alt::AltRecord;
use crate::model::flow::{Flow, Role};
use crate::model::state::ConnSummary;
use crate::pyjson::json_key;
use crate::pyjson::{ObjectWriter, PyValue, float_repr};
use crate::zeek::LogKind;

/// Python's `round(x, 3)`: the correctly rounded 3-decimal text, read back.
fn round3(x: f64) -> f64 {
    format!("{x:.3}").parse().unwrap_or(x)
}

/// The entry of `flow` seen from the profile on side `role`, with `alt` the uid's last
/// dns/http/ssl record (its `info`), as `<score> <member>`: the ZSET score (the flow's start,
/// Python `repr`), a space, the JSON member. `None` for protocols the timeline does not show.
pub fn entry(
    flow: &Flow,
    role: Role,
    names: &PortNames,
    timestamp: &str,
    alt: Option<&AltRecord>,
) -> Option<String> {
    let proto = flow.proto.as_str();
    let mut w = ObjectWriter::with_capacity(384);
    let dur = round3(flow.dur.unwrap_or(0.0));
    if proto.contains("icmp") {
        let sport = flow.sport;
        let name = match sport {
            11 => "ICMP Time Exceeded in Transit",
            3 => "ICMP Destination Net Unreachable",
            8 => "PING echo",
            _ => "ICMP Unknown type",
        };
        w.str(json_key!("timestamp"), timestamp)
            .str(json_key!("dport_name"), name)
            .str(json_key!("preposition"), "from")
            .ip(json_key!("saddr"), flow.saddr)
            .int(json_key!("size"), flow.allbytes() as i64)
            .float(json_key!("duration"), dur);
        if !matches!(sport, 3 | 8 | 11) {
            w.str(json_key!("type"), &format!("0x{sport}"));
        }
        w.str(json_key!("dns_resolution"), "")
            .ip(json_key!("daddr"), flow.daddr)
            .str("dport/proto", &format!("{sport}/ICMP"))
            .str(json_key!("state"), "")
            .str(json_key!("warning"), "")
            .str(json_key!("sent"), "")
            .str(json_key!("recv"), "")
            .str(json_key!("tot"), "")
            .str("critical warning", "");
        put_info(&mut w, alt);
    } else if proto.contains("tcp") || proto.contains("udp") {
        let service = flow.appproto.as_str();
        let service = if service.is_empty() || service == "-" || service == "failed" {
            names.name(flow.dport, proto).unwrap_or("")
        } else {
            service
        };
        let (name, critical) = if service.is_empty() {
            (
                "????".to_string(),
                "Protocol not recognized by Slips nor Zeek.",
            )
        } else {
            (service.to_uppercase(), "")
        };
        let inbound = role == Role::Server;
        let tot = flow.allbytes();
        w.str(json_key!("timestamp"), timestamp)
            .str(json_key!("dport_name"), &name)
            .str(
                json_key!("preposition"),
                if inbound { "from" } else { "to" },
            )
            .str(json_key!("dns_resolution"), resolution(alt));
        if inbound {
            w.ip(json_key!("saddr"), flow.saddr);
        }
        w.ip(json_key!("daddr"), flow.daddr)
            .str(
                "dport/proto",
                &format!("{}/{}", flow.dport, proto.to_uppercase()),
            )
            .str(
                "state",
                match flow.state() {
                    ConnSummary::Established => "Established",
                    ConnSummary::NotEstablished => "Not Established",
                },
            )
            .str(
                json_key!("warning"),
                if tot == 0 { "No data exchange!" } else { "" },
            );
        // `info` and, for a dns record, `critical warning` ("") come from the record; the
        // keys keep their places (a Python dict update).
        let (info, dns) = info_of(alt);
        match info {
            Some(i) => w.raw(json_key!("info"), &i),
            None => w.str(json_key!("info"), ""),
        };
        w.int(json_key!("sent"), flow.sbytes as i64)
            .int(json_key!("recv"), flow.dbytes as i64)
            .int(json_key!("tot"), tot as i64)
            .float(json_key!("duration"), dur)
            .str("critical warning", if dns { "" } else { critical });
    } else {
        return None;
    }
    let mut out = float_repr(flow.ts);
    out.push(' ');
    out.push_str(&w.finish());
    Some(out)
}

/// The entry's `dns_resolution`: the name the client asked the address for in the uid's
/// http (`host`) or ssl (`server_name`) record, else `????`. Slips showed the address's
/// `DNSresolution` names as its module knew them when it first met the address (arrival
/// order); the uid's own record is a function of the records and needs no rewrite of written
/// entries (Slips' ssl `info` also calls the server name `dns_resolution`).
fn resolution(alt: Option<&AltRecord>) -> &str {
    match alt {
        Some(a)
            if matches!(a.kind, LogKind::Http | LogKind::Ssl)
                && !a.name.is_empty()
                && a.name != "-" =>
        {
            a.name.as_str()
        }
        _ => "????",
    }
}

/// `info` last (ICMP entries: the record's update adds it at the end).
fn put_info(w: &mut ObjectWriter, alt: Option<&AltRecord>) {
    match info_of(alt).0 {
        Some(i) => w.raw(json_key!("info"), &i),
        None => w.str(json_key!("info"), ""),
    };
}

/// The record's `info` object (JSON), and whether it is a dns record (which resets the entry's
/// `critical warning`).
fn info_of(alt: Option<&AltRecord>) -> (Option<String>, bool) {
    let Some(alt) = alt else {
        return (None, false);
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&alt.json) else {
        return (None, false);
    };
    let v = PyValue::from_serde(&v);
    let text = |k: &str| -> String {
        match v.get(k) {
            Some(PyValue::Str(s)) => s.to_string(),
            Some(PyValue::Null) | None => String::new(),
            Some(other) => other.py_str(),
        }
    };
    let mut w = ObjectWriter::new();
    match alt.kind {
        LogKind::Dns => {
            w.str(json_key!("query"), &text("query"));
            if text("rcode_name").contains("NXDOMAIN") {
                w.str(json_key!("answers"), "NXDOMAIN");
            } else {
                match v.get("answers") {
                    Some(a @ PyValue::List(_)) => w.raw(json_key!("answers"), &a.to_json()),
                    _ => w.str(json_key!("answers"), &text("answers")),
                };
            }
            (Some(w.finish()), true)
        }
        LogKind::Http => {
            let request = format!("{} http://{}{}", text("method"), text("host"), text("uri"));
            let status = format!("{}/{}", text("status_code"), text("status_msg"));
            let mime = v
                .get("resp_mime_types")
                .map_or(String::new(), |m| m.py_str());
            for (k, val) in [
                ("Request", request),
                ("Status Code", status),
                ("MIME", mime),
                ("UA", text("user_agent")),
            ] {
                if !val.is_empty() && val != "/" {
                    w.str(k, &val);
                }
            }
            (Some(w.finish()), false)
        }
        LogKind::Ssl => {
            let resumed = matches!(v.get("resumed"), Some(PyValue::Bool(true)));
            let validation = text("validation_status");
            let (trusted, resumed) = if validation == "ok" {
                ("Yes", "False")
            } else if validation.is_empty() && resumed {
                ("??", "True")
            } else {
                ("No", "False")
            };
            let subject = text("subject");
            let subject = subject.split(',').next().unwrap_or("");
            w.str(
                "server_name",
                if subject.is_empty() { "????" } else { subject },
            )
            .str(json_key!("trusted"), trusted)
            .str(json_key!("resumed"), resumed)
            .str(json_key!("version"), &text("version"))
            .str(json_key!("dns_resolution"), &text("server_name"))
            .str("critical warning", "");
            (Some(w.finish()), false)
        }
        LogKind::Conn => (None, false),
    }
}
