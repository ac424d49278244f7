//! Port names, from Slips' `services.csv` as extracted in `../shared/spec/services.tsv`
//! (reference §6.3), shipped inside the binary (`services.tsv` beside this file: port, proto,
//! name; file order; the malformed `airport discovery` row fixed to `192/udp`). Later rows win,
//! as Slips' `HSET` in file order did (`63/tcp` → `whois++`).

use std::collections::HashMap;

const SERVICES_TSV: &str = include_str!("services.tsv");

/// `"<port>/<proto>"` → service name.
#[derive(Clone, Debug, PartialEq)]
pub struct PortNames {
    names: HashMap<String, String>,
    /// Distinct fields in first-seen order (for writing `portinfo`).
    order: Vec<String>,
    /// The same names by port number, then protocol: what a timeline line looks up (without
    /// building its `"<port>/<proto>"` text).
    by_port: HashMap<u16, Vec<(String, String)>>,
}

impl PortNames {
    /// The table shipped with kalipso-ingest.
    pub fn builtin() -> PortNames {
        Self::parse(SERVICES_TSV)
    }

    /// A table from `port<TAB>proto<TAB>name` lines (blank lines ignored).
    pub fn parse(text: &str) -> PortNames {
        let mut names = HashMap::new();
        let mut order = Vec::new();
        for line in text.lines() {
            let mut cols = line.splitn(3, '\t');
            let (Some(port), Some(proto), Some(name)) = (cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let field = format!("{}/{}", port.trim(), proto.trim());
            if names.insert(field.clone(), name.to_string()).is_none() {
                order.push(field);
            }
        }
        let mut by_port: HashMap<u16, Vec<(String, String)>> = HashMap::new();
        for field in &order {
            let Some((port, proto)) = field.split_once('/') else {
                continue;
            };
            // Only ports written as `name()` formats them (no sign, no leading zero).
            match port.parse::<u16>() {
                Ok(n) if n.to_string() == port => by_port
                    .entry(n)
                    .or_default()
                    .push((proto.to_string(), names[field].clone())),
                _ => {}
            }
        }
        PortNames {
            names,
            order,
            by_port,
        }
    }

    /// The name of `port`/`proto` (lowercase proto), if known.
    pub fn name(&self, port: u16, proto: &str) -> Option<&str> {
        self.by_port
            .get(&port)?
            .iter()
            .find(|(p, _)| p == proto)
            .map(|(_, name)| name.as_str())
    }

    /// Every `portinfo` field and its name.
    pub fn fields(&self) -> Vec<(String, String)> {
        self.order
            .iter()
            .map(|f| (f.clone(), self.names[f].clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slips_table_with_the_malformed_row_fixed() {
        let n = PortNames::builtin();
        assert_eq!(n.fields().len(), 131);
        assert_eq!(
            n.name(5228, "tcp"),
            Some("Google Playstore or Google Talk or Google Chrome Sync")
        );
        assert_eq!(n.name(53, "udp"), Some("DNS"));
        assert_eq!(n.name(63, "tcp"), Some("whois++"));
        assert_eq!(n.name(113, "tcp"), Some("auth"));
        assert_eq!(n.name(443, "udp"), Some("quick"));
        assert_eq!(n.name(192, "udp"), Some("airport discovery"));
        assert_eq!(n.name(5355, "udp"), Some("llmr"));
        assert!(n.fields().iter().all(|(f, _)| f != "udp/192"));
        assert_eq!(n.name(4444, "tcp"), None);
    }

    #[test]
    fn a_port_is_found_only_as_written_in_the_table() {
        let n =
            PortNames::parse("080\ttcp\tpadded\n81\ttcp\tweb\n81\tudp\tother\n81\ttcp\tlater\n");
        assert_eq!(n.name(80, "tcp"), None);
        assert_eq!(n.name(81, "tcp"), Some("later"));
        assert_eq!(n.name(81, "udp"), Some("other"));
        assert_eq!(n.name(81, "icmp"), None);
    }
}
