//! The texts of timeline lines (reference §6.2, §6.4, §6.5), without the timestamp prefix.
//!
//! Outbound lines (the profile is the Client) use the FEB wording, `asked to <daddr>`, with the
//! `| <ipinfo>` suffix (empty: no enrichment); inbound copies in `all` mode use the MAR wording,
//! `asked from <saddr>`, with Sent/Recv seen from the profile. Deviations from Slips: sizes are
//! right at the exact unit boundaries (1024 bytes is `1.00Kb`, bug 12), and the MAR "unknown
//! ICMP type" inbound line ends with a newline like every other line.

use std::fmt::{self, Write};

use super::services::PortNames;
use crate::model::alt::AltRecord;
use crate::model::flow::{Flow, Role};
use crate::pyjson::{PyValue, push_ip};
use crate::zeek::LogKind;
use std::net::IpAddr;

/// `Tot`/`Size`: bytes with two decimals and the unit, as Slips printed them.
pub fn human_size(bytes: u64) -> String {
    let mut out = String::new();
    push_human_size(&mut out, bytes);
    out
}

/// [`human_size`] appended to `out`: Python's `'%.2f'` of the exact quotient (round half to
/// even), computed in integers.
fn push_human_size(out: &mut String, bytes: u64) {
    if bytes >= 1 << 53 {
        // Slips divided the float; from 2^53 on it is not the integer any more.
        let _ = write!(out, "{}", HumanSizeFloat(bytes));
        return;
    }
    let (shift, unit) = match bytes {
        0..1024 => (0, "b"),
        1024..1_048_576 => (10, "Kb"),
        1_048_576..1_073_741_824 => (20, "Mb"),
        _ => (30, "Gb"),
    };
    let hundredths = u128::from(bytes) * 100;
    let mut q = hundredths >> shift;
    if shift > 0 {
        let rem = hundredths & ((1 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
    }
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(q / 100));
    out.push('.');
    let cents = (q % 100) as u8;
    out.push(char::from(b'0' + cents / 10));
    out.push(char::from(b'0' + cents % 10));
    out.push_str(unit);
}

/// The size as Slips computed it, through a float (for sizes of 2^53 bytes and more).
struct HumanSizeFloat(u64);

impl fmt::Display for HumanSizeFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0 as f64;
        if x < 1024.0 {
            write!(f, "{x:.2}b")
        } else if x < 1_048_576.0 {
            write!(f, "{:.2}Kb", x / 1024.0)
        } else if x < 1_073_741_824.0 {
            write!(f, "{:.2}Mb", x / 1_048_576.0)
        } else {
            write!(f, "{:.2}Gb", x / 1_073_741_824.0)
        }
    }
}

/// A line being appended to, piece by piece (no formatting machinery on the hot path).
struct Text<'a>(&'a mut String);

impl Text<'_> {
    fn s(&mut self, piece: &str) -> &mut Self {
        self.0.push_str(piece);
        self
    }

    fn ip(&mut self, ip: IpAddr) -> &mut Self {
        push_ip(self.0, ip);
        self
    }

    fn n(&mut self, n: u64) -> &mut Self {
        self.0.push_str(itoa::Buffer::new().format(n));
        self
    }

    fn size(&mut self, bytes: u64) -> &mut Self {
        push_human_size(self.0, bytes);
        self
    }

    /// `Sent: <sent>, Recv: <recv>, Tot: <size>`.
    fn sizes(&mut self, sent: u64, recv: u64, tot: u64) -> &mut Self {
        self.s("Sent: ")
            .n(sent)
            .s(", Recv: ")
            .n(recv)
            .s(", Tot: ")
            .size(tot)
    }

    /// An outbound line's end: ` | <ipinfo>`, one space more when `space`, the newline.
    fn info_end(&mut self, info: &str, space: bool) -> &mut Self {
        self.s(" | ").s(info).s(if space { " \n" } else { "\n" })
    }

    /// `<port>/<proto>`.
    fn port_proto(&mut self, port: u16, proto: &str) -> &mut Self {
        self.n(u64::from(port)).s("/").s(proto)
    }
}

fn is_icmp(proto: &str) -> bool {
    proto.contains("icmp")
}

fn is_tcp_or_udp(proto: &str) -> bool {
    proto.contains("tcp") || proto.contains("udp")
}

/// The main line of a flow seen from the profile on side `role`; `None` for protocols the
/// timeline does not show (neither tcp, udp nor icmp).
pub fn main_line(flow: &Flow, role: Role, names: &PortNames) -> Option<String> {
    let mut line = String::new();
    write_main_line(&mut line, flow, role, names, "").then_some(line)
}

/// [`main_line`] appended to `out` (after the timestamp prefix, without a temporary string per
/// piece), with `info` (the peer's `IPsInfo` as Slips rendered it, empty without enrichment)
/// after the outbound line's `|`; `false`, with nothing written, for protocols the timeline
/// does not show.
pub fn write_main_line(
    out: &mut String,
    flow: &Flow,
    role: Role,
    names: &PortNames,
    info: &str,
) -> bool {
    let proto = flow.proto.as_str();
    let tot = flow.allbytes();
    let snt = flow.sbytes;
    let rcv = tot.saturating_sub(snt);
    let (saddr, daddr, dport) = (flow.saddr, flow.daddr, flow.dport);
    let mut t = Text(out);
    if is_icmp(proto) {
        let sport = flow.sport;
        let what = match sport {
            8 => "PING echo",
            11 => "ICMP Time Excedded in Transit",
            3 => "ICMP Destination Net Unreachable",
            _ => "",
        };
        match role {
            Role::Client if what.is_empty() => t
                .s("- ICMP Unknown type sent to ")
                .ip(daddr)
                .s(", Type: 0x")
                .n(u64::from(sport))
                .s(", Size: ")
                .size(tot)
                .info_end(info, false),
            Role::Client => t
                .s("- ")
                .s(what)
                .s(" sent to ")
                .ip(daddr)
                .s(", Size: ")
                .size(tot)
                .info_end(info, false),
            Role::Server if what.is_empty() => t
                .s("- ICMP Unknown type sent from ")
                .ip(saddr)
                .s(", Type: 0x")
                .n(u64::from(sport))
                .s(", Size: ")
                .size(tot)
                .s("\n"),
            Role::Server => t
                .s("- ")
                .s(what)
                .s(" sent from ")
                .ip(saddr)
                .s(", Size: ")
                .size(tot)
                .s(if sport == 11 { " \n" } else { "\n" }),
        };
        return true;
    }
    if !is_tcp_or_udp(proto) {
        return false;
    }
    let established = flow.state().as_str() == "Established";
    let name = names.name(dport, proto);
    // By the flow's state: the line's start, what comes before the sizes, and the outbound
    // line's end (one space more when not answered, as Slips wrote it).
    let (before, after, client_space) = match name {
        Some(_) if established && tot != 0 => ("- ", "", false),
        Some(_) if established => ("- ", "Be careful! Established but empty! ", false),
        Some(_) if proto == "udp" && tot == snt => ("- Not answered ", "", true),
        Some(_) => ("- NOT Established ", "", false),
        None => ("[!] - Not recognized ", "", false),
    };
    match (role, name) {
        (Role::Client, Some(n)) => t
            .s(before)
            .s(n)
            .s(" asked to ")
            .ip(daddr)
            .s(" ")
            .port_proto(dport, proto)
            .s(", ")
            .s(after)
            .sizes(snt, rcv, tot)
            .info_end(info, client_space),
        (Role::Client, None) => t
            .s(before)
            .s(state_word(established))
            .s(" flow from ")
            .ip(saddr)
            .s(" to ")
            .ip(daddr)
            .s(" dport ")
            .port_proto(dport, proto)
            .s(", ")
            .sizes(snt, rcv, tot)
            .info_end(info, client_space),
        // Seen from the receiving profile: it sent what the originator received.
        (Role::Server, Some(n)) => t
            .s(before)
            .s(n)
            .s("/")
            .s(proto)
            .s(" asked from ")
            .ip(saddr)
            .s(", ")
            .s(after)
            .sizes(rcv, snt, tot)
            .s("\n"),
        (Role::Server, None) => t
            .s(before)
            .s(state_word(established))
            .s(" flow from ")
            .ip(saddr)
            .s(" to ")
            .port_proto(dport, proto)
            .s(", ")
            .sizes(rcv, snt, tot)
            .s("\n"),
    };
    true
}

fn state_word(established: bool) -> &'static str {
    if established {
        "established"
    } else {
        "notestablished"
    }
}

/// The `[!] Attention` sub-line for a flow that no dns/ssl/http record joined, when Slips
/// printed it: tcp/udp, established, a known port, some bytes, and not udp 67, udp 123, tcp 23
/// or tcp 5222.
pub fn attention_line(flow: &Flow, names: &PortNames) -> Option<String> {
    let proto = flow.proto.as_str();
    let exempt = matches!(
        (proto, flow.dport),
        ("udp", 67) | ("udp", 123) | ("tcp", 23) | ("tcp", 5222)
    );
    let shown = is_tcp_or_udp(proto)
        && !is_icmp(proto)
        && flow.state().as_str() == "Established"
        && names.name(flow.dport, proto).is_some()
        && flow.allbytes() != 0
        && !exempt;
    shown.then(|| {
        format!(
            "\t[!] Attention. We know this port number, but we couldn't identify the protocol. Check UID {}\n",
            flow.uid
        )
    })
}

/// The sub-line of a dns, http or ssl record (rendered once, when the record is built).
pub fn sub_line(alt: &AltRecord) -> &str {
    &alt.sub
}

/// Append the sub-line of a dns, http or ssl record of `kind` whose `_altflows` value is `v`.
pub fn push_sub_line(out: &mut String, kind: LogKind, v: &PyValue) {
    // `piece`, then the field `key` as Python's `str()` (nothing when missing; "" for none).
    let mut put = |piece: &str, key: &str| {
        out.push_str(piece);
        if let Some(value) = (!key.is_empty()).then(|| v.get(key)).flatten() {
            value.push_py_str(out);
        }
    };
    match kind {
        LogKind::Dns => {
            put("\t- Query: ", "query");
            put(", Query Class: ", "qclass_name");
            put(", Type: ", "qtype_name");
            put(", Response Code: ", "rcode_name");
            put(", Answers: ", "answers");
            put("\n", "");
        }
        LogKind::Http => {
            put("\t- ", "method");
            put(" http://", "host");
            put("", "uri");
            put(" HTTP/", "version");
            put(" ", "status_code");
            put("/", "status_msg");
            put("  MIME:", "resp_mime_types");
            put(" Sent:", "request_body_len");
            put("b, Recv:", "response_body_len");
            put("b UA:", "user_agent");
            put(" \n", "");
        }
        _ => {
            let resumed = v.get("resumed") == Some(&PyValue::Bool(true));
            let trust = match v.get("validation_status") {
                Some(PyValue::Str(s)) if s == "ok" => "Yes",
                Some(PyValue::Str(s)) if s.is_empty() && resumed => "?? (Resumed)",
                None if resumed => "?? (Resumed)",
                _ => "No",
            };
            put("\t- ", "server_name");
            put(". Issuer: ", "issuer");
            put(". Trust Cert: ", "");
            put(trust, "");
            put(". Subject: ", "subject");
            put(". Version: ", "version");
            put(". Resumed: ", "resumed");
            put(" \n", "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(proto: &str, sport: u16, dport: u16, state: &str, sent: u64, recv: u64) -> Flow {
        Flow {
            ts: 1582810000.0,
            uid: "CX".into(),
            saddr: "192.168.1.10".parse().unwrap(),
            sport,
            daddr: "8.8.8.8".parse().unwrap(),
            dport,
            proto: proto.into(),
            appproto: Default::default(),
            dur: Some(1.0),
            origstate: state.into(),
            spkts: 1,
            dpkts: u64::from(recv > 0),
            sbytes: sent,
            dbytes: recv,
        }
    }

    #[test]
    fn every_main_line_variant_in_both_directions() {
        let n = PortNames::builtin();
        let cases: [(Flow, &str, &str); 10] = [
            (
                flow("tcp", 40000, 443, "SF", 100, 200),
                "- https asked to 8.8.8.8 443/tcp, Sent: 100, Recv: 200, Tot: 300.00b | \n",
                "- https/tcp asked from 192.168.1.10, Sent: 200, Recv: 100, Tot: 300.00b\n",
            ),
            (
                flow("tcp", 40000, 443, "SF", 0, 0),
                "- https asked to 8.8.8.8 443/tcp, Be careful! Established but empty! Sent: 0, Recv: 0, Tot: 0.00b | \n",
                "- https/tcp asked from 192.168.1.10, Be careful! Established but empty! Sent: 0, Recv: 0, Tot: 0.00b\n",
            ),
            (
                flow("udp", 40000, 53, "S0", 40, 0),
                "- Not answered DNS asked to 8.8.8.8 53/udp, Sent: 40, Recv: 0, Tot: 40.00b |  \n",
                "- Not answered DNS/udp asked from 192.168.1.10, Sent: 0, Recv: 40, Tot: 40.00b\n",
            ),
            (
                flow("tcp", 40000, 22, "REJ", 0, 0),
                "- NOT Established ssh asked to 8.8.8.8 22/tcp, Sent: 0, Recv: 0, Tot: 0.00b | \n",
                "- NOT Established ssh/tcp asked from 192.168.1.10, Sent: 0, Recv: 0, Tot: 0.00b\n",
            ),
            (
                flow("tcp", 40000, 4444, "SF", 10, 20),
                "[!] - Not recognized established flow from 192.168.1.10 to 8.8.8.8 dport 4444/tcp, Sent: 10, Recv: 20, Tot: 30.00b | \n",
                "[!] - Not recognized established flow from 192.168.1.10 to 4444/tcp, Sent: 20, Recv: 10, Tot: 30.00b\n",
            ),
            (
                flow("udp", 40000, 4444, "S0", 10, 0),
                "[!] - Not recognized notestablished flow from 192.168.1.10 to 8.8.8.8 dport 4444/udp, Sent: 10, Recv: 0, Tot: 10.00b | \n",
                "[!] - Not recognized notestablished flow from 192.168.1.10 to 4444/udp, Sent: 0, Recv: 10, Tot: 10.00b\n",
            ),
            (
                flow("icmp", 8, 0, "OTH", 64, 64),
                "- PING echo sent to 8.8.8.8, Size: 128.00b | \n",
                "- PING echo sent from 192.168.1.10, Size: 128.00b\n",
            ),
            (
                flow("icmp", 11, 0, "OTH", 56, 0),
                "- ICMP Time Excedded in Transit sent to 8.8.8.8, Size: 56.00b | \n",
                "- ICMP Time Excedded in Transit sent from 192.168.1.10, Size: 56.00b \n",
            ),
            (
                flow("icmp", 3, 1, "OTH", 56, 0),
                "- ICMP Destination Net Unreachable sent to 8.8.8.8, Size: 56.00b | \n",
                "- ICMP Destination Net Unreachable sent from 192.168.1.10, Size: 56.00b\n",
            ),
            (
                flow("icmp", 135, 136, "OTH", 0, 0),
                "- ICMP Unknown type sent to 8.8.8.8, Type: 0x135, Size: 0.00b | \n",
                "- ICMP Unknown type sent from 192.168.1.10, Type: 0x135, Size: 0.00b\n",
            ),
        ];
        for (f, out, inbound) in &cases {
            assert_eq!(main_line(f, Role::Client, &n).as_deref(), Some(*out));
            assert_eq!(main_line(f, Role::Server, &n).as_deref(), Some(*inbound));
        }
        assert_eq!(
            main_line(
                &flow("unknown_transport", 0, 0, "OTH", 1, 1),
                Role::Client,
                &n
            ),
            None
        );
    }

    #[test]
    fn attention_only_where_slips_printed_it() {
        let n = PortNames::builtin();
        let line = "\t[!] Attention. We know this port number, but we couldn't identify the protocol. Check UID CX\n";
        assert_eq!(
            attention_line(&flow("tcp", 1, 443, "SF", 1, 1), &n).as_deref(),
            Some(line)
        );
        for f in [
            flow("udp", 68, 67, "SF", 300, 300), // dhcp
            flow("udp", 123, 123, "SF", 48, 48), // ntp
            flow("tcp", 1, 23, "SF", 10, 10),    // telnet
            flow("tcp", 1, 5222, "SF", 10, 10),  // xmpp
            flow("tcp", 1, 4444, "SF", 10, 10),  // unknown port
            flow("tcp", 1, 443, "REJ", 0, 0),    // not established
            flow("tcp", 1, 443, "SF", 0, 0),     // empty
            flow("icmp", 8, 0, "OTH", 64, 64),   // icmp
        ] {
            assert_eq!(attention_line(&f, &n), None, "{f:?}");
        }
    }

    #[test]
    fn sizes_with_the_boundaries_fixed() {
        assert_eq!(human_size(0), "0.00b");
        assert_eq!(human_size(124), "124.00b");
        assert_eq!(human_size(1023), "1023.00b");
        assert_eq!(human_size(1024), "1.00Kb");
        assert_eq!(human_size(1600), "1.56Kb");
        assert_eq!(human_size(6000), "5.86Kb");
        assert_eq!(human_size(1_048_576), "1.00Mb");
        assert_eq!(human_size(1_073_741_824), "1.00Gb");
        // '{:.2f}' rounds half-to-even on the binary value (reference §0.4).
        assert_eq!(human_size(1152), "1.12Kb");
    }

    #[test]
    fn sizes_in_integers_are_the_float_formatting() {
        let float = |b: u64| HumanSizeFloat(b).to_string();
        let mut sizes: Vec<u64> = (0..70_000).collect();
        for unit in [1u64 << 10, 1 << 20, 1 << 30] {
            for q in [1, 2, 3, 7, 100, 1023, 1024, 5000] {
                // Exact halves of a hundredth (ties: odd eighths of the unit), and neighbours.
                for eighths in [1, 3, 5, 7] {
                    let b = q * unit + eighths * unit / 8;
                    sizes.extend([b - 1, b, b + 1]);
                }
                sizes.extend([q * unit - 1, q * unit, q * unit + 1]);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sizes.push(x >> (11 + x % 40));
        }
        sizes.extend([(1 << 53) - 1, 1 << 53, u64::MAX]);
        for b in sizes {
            assert_eq!(human_size(b), float(b), "{b}");
        }
    }
}
