//! The texts of timeline lines (reference §6.2, §6.4, §6.5), without the timestamp prefix.
//!
//! Outbound lines (the profile is the Client) use the FEB wording, `asked to <daddr>`, with the
//! `| <ipinfo>` suffix (empty: no enrichment); inbound copies in `all` mode use the MAR wording,
//! `asked from <saddr>`, with Sent/Recv seen from the profile. Deviations from Slips: sizes are
//! right at the exact unit boundaries (1024 bytes is `1.00Kb`, bug 12), and the MAR "unknown
//! ICMP type" inbound line ends with a newline like every other line.

use std::fmt::{self, Write};

use super::services::PortNames;
use crate::profile::aggregate::{Flow, Role};
use crate::profile::alt::AltRecord;
use crate::store::pyjson::{IpText, PyValue};
use crate::zeek::LogKind;

/// `Tot`/`Size`: bytes with two decimals and the unit, as Slips printed them.
pub fn human_size(bytes: u64) -> String {
    HumanSize(bytes).to_string()
}

/// [`human_size`] written in place.
struct HumanSize(u64);

impl fmt::Display for HumanSize {
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

/// `Sent: <sent>, Recv: <received>, Tot: <size>`, then `end`.
struct Sizes {
    sent: u64,
    recv: u64,
    tot: u64,
    end: &'static str,
}

impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Sizes {
            sent,
            recv,
            tot,
            end,
        } = self;
        write!(
            f,
            "Sent: {sent}, Recv: {recv}, Tot: {}{end}",
            HumanSize(*tot)
        )
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
    write_main_line(&mut line, flow, role, names).then_some(line)
}

/// [`main_line`] appended to `out` (after the timestamp prefix, without a temporary string per
/// piece); `false`, with nothing written, for protocols the timeline does not show.
// The trailing `\n` is part of Slips' text, kept visible next to the spaces before it.
#[allow(clippy::write_with_newline)]
pub fn write_main_line(out: &mut String, flow: &Flow, role: Role, names: &PortNames) -> bool {
    let proto = flow.proto.as_str();
    let tot = flow.allbytes();
    let snt = flow.sbytes;
    let rcv = tot.saturating_sub(snt);
    let size = HumanSize(tot);
    let (saddr, daddr, dport) = (IpText(flow.saddr), IpText(flow.daddr), flow.dport);
    if is_icmp(proto) {
        let sport = flow.sport;
        let what = match sport {
            8 => "PING echo",
            11 => "ICMP Time Excedded in Transit",
            3 => "ICMP Destination Net Unreachable",
            _ => "",
        };
        let _ = match (role, what.is_empty()) {
            (Role::Client, false) => write!(out, "- {what} sent to {daddr}, Size: {size} | \n"),
            (Role::Client, true) => write!(
                out,
                "- ICMP Unknown type sent to {daddr}, Type: 0x{sport}, Size: {size} | \n"
            ),
            (Role::Server, false) if sport == 11 => {
                write!(out, "- {what} sent from {saddr}, Size: {size} \n")
            }
            (Role::Server, false) => write!(out, "- {what} sent from {saddr}, Size: {size}\n"),
            (Role::Server, true) => write!(
                out,
                "- ICMP Unknown type sent from {saddr}, Type: 0x{sport}, Size: {size}\n"
            ),
        };
        return true;
    }
    if !is_tcp_or_udp(proto) {
        return false;
    }
    let established = flow.state().as_str() == "Established";
    let name = names.name(dport, proto);
    let _ = match role {
        Role::Client => {
            let tail = Sizes {
                sent: snt,
                recv: rcv,
                tot,
                end: " |",
            };
            match name {
                Some(n) if established && tot != 0 => {
                    write!(out, "- {n} asked to {daddr} {dport}/{proto}, {tail} \n")
                }
                Some(n) if established => write!(
                    out,
                    "- {n} asked to {daddr} {dport}/{proto}, Be careful! Established but empty! {tail} \n"
                ),
                Some(n) if proto == "udp" && tot == snt => write!(
                    out,
                    "- Not answered {n} asked to {daddr} {dport}/{proto}, {tail}  \n"
                ),
                Some(n) => write!(
                    out,
                    "- NOT Established {n} asked to {daddr} {dport}/{proto}, {tail} \n"
                ),
                None => write!(
                    out,
                    "[!] - Not recognized {} flow from {saddr} to {daddr} dport {dport}/{proto}, {tail} \n",
                    state_word(established)
                ),
            }
        }
        Role::Server => {
            // Seen from the receiving profile: it sent what the originator received.
            let tail = Sizes {
                sent: rcv,
                recv: snt,
                tot,
                end: "\n",
            };
            match name {
                Some(n) if established && tot != 0 => {
                    write!(out, "- {n}/{proto} asked from {saddr}, {tail}")
                }
                Some(n) if established => write!(
                    out,
                    "- {n}/{proto} asked from {saddr}, Be careful! Established but empty! {tail}"
                ),
                Some(n) if proto == "udp" && tot == snt => {
                    write!(out, "- Not answered {n}/{proto} asked from {saddr}, {tail}")
                }
                Some(n) => write!(
                    out,
                    "- NOT Established {n}/{proto} asked from {saddr}, {tail}"
                ),
                None => write!(
                    out,
                    "[!] - Not recognized {} flow from {saddr} to {dport}/{proto}, {tail}",
                    state_word(established)
                ),
            }
        }
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

/// The sub-line of a dns, http or ssl record of `kind` whose `_altflows` value is `v`.
pub fn sub_line_of(kind: LogKind, v: &PyValue) -> String {
    let f = |k: &str| v.get(k).map(PyValue::py_str).unwrap_or_default();
    match kind {
        LogKind::Dns => format!(
            "\t- Query: {}, Query Class: {}, Type: {}, Response Code: {}, Answers: {}\n",
            f("query"),
            f("qclass_name"),
            f("qtype_name"),
            f("rcode_name"),
            f("answers")
        ),
        LogKind::Http => format!(
            "\t- {} http://{}{} HTTP/{} {}/{}  MIME:{} Sent:{}b, Recv:{}b UA:{} \n",
            f("method"),
            f("host"),
            f("uri"),
            f("version"),
            f("status_code"),
            f("status_msg"),
            f("resp_mime_types"),
            f("request_body_len"),
            f("response_body_len"),
            f("user_agent")
        ),
        _ => {
            let status = f("validation_status");
            let resumed = v.get("resumed") == Some(&PyValue::Bool(true));
            let trust = if status == "ok" {
                "Yes"
            } else if status.is_empty() && resumed {
                "?? (Resumed)"
            } else {
                "No"
            };
            format!(
                "\t- {}. Issuer: {}. Trust Cert: {trust}. Subject: {}. Version: {}. Resumed: {} \n",
                f("server_name"),
                f("issuer"),
                f("subject"),
                f("version"),
                f("resumed")
            )
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
}
