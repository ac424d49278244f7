//! What kalipso-ingest knows about an address or a name besides the traffic: its country and
//! ASN (MaxMind DB files, `--geoip-db`, `--asn-db`) and whether a blocklist names it
//! (`--blocklist`, `--domain-blocklist`). Opened once at start (and again on SIGHUP), then read
//! only; no I/O after opening.
//!
//! The `IPsInfo` value of an address is a Python-JSON object with its keys in a fixed order,
//! `geocountry`, `asn`, `Malicious` (the order Slips' modules usually ran in; theirs raced),
//! each present only when its source is configured (`Malicious` only for a listed address, as
//! Slips' threat-intelligence module wrote it). The timeline's `| <ipinfo>` suffix is the same
//! value as Slips rendered it (`key='value'`, Python `repr`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use maxminddb::{Reader, geoip2};

use crate::pyjson::{ObjectWriter, push_py_str_repr};

/// The files to open (`None` / empty: that source is not used).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnrichFiles {
    /// A MaxMind-format Country or City database (`--geoip-db`).
    pub geoip_db: Option<PathBuf>,
    /// A MaxMind-format ASN database (`--asn-db`).
    pub asn_db: Option<PathBuf>,
    /// Lists of addresses and networks (`--blocklist`).
    pub blocklists: Vec<PathBuf>,
    /// Lists of domains (`--domain-blocklist`).
    pub domain_blocklists: Vec<PathBuf>,
}

/// A file that cannot be used, said in one line naming the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {reason}", path.display())]
pub struct EnrichError {
    /// The flag that named the file.
    pub flag: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be used.
    pub reason: String,
}

/// How many lines of a list file were not understood (each reported, the first few by line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Entries loaded.
    pub entries: u64,
    /// Lines skipped as malformed.
    pub malformed: u64,
}

/// The first malformed lines of a list file reported one by one; the rest as a count.
pub const MALFORMED_REPORTED: u64 = 10;

/// The opened sources.
#[derive(Default)]
pub struct IpInfo {
    country: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
    ips: NetList,
    domains: HashMap<String, u32>,
    /// Descriptions, by index.
    texts: Vec<String>,
    /// Per list file: what was loaded and skipped.
    pub stats: Vec<(PathBuf, ListStats)>,
}

impl std::fmt::Debug for IpInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpInfo")
            .field("country", &self.country.is_some())
            .field("asn", &self.asn.is_some())
            .field("ips", &self.ips.len())
            .field("domains", &self.domains.len())
            .finish()
    }
}

/// Networks by prefix length, most specific first: a lookup masks the address once per length
/// present (a handful in real lists).
#[derive(Default)]
struct NetList {
    v4: Vec<(u8, HashMap<u32, u32>)>,
    v6: Vec<(u8, HashMap<u128, u32>)>,
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

impl NetList {
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn len(&self) -> usize {
        self.v4.iter().map(|(_, m)| m.len()).sum::<usize>()
            + self.v6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }

    /// Add a network (the first entry of a network wins); whether it was new.
    fn insert(&mut self, net: IpNetwork, text: u32) -> bool {
        fn table<K>(v: &mut Vec<(u8, HashMap<K, u32>)>, len: u8) -> &mut HashMap<K, u32> {
            let at = match v.iter().position(|(l, _)| *l <= len) {
                Some(i) if v[i].0 == len => i,
                Some(i) => {
                    v.insert(i, (len, HashMap::new()));
                    i
                }
                None => {
                    v.push((len, HashMap::new()));
                    v.len() - 1
                }
            };
            &mut v[at].1
        }
        let len = net.prefix();
        let fresh = match net.network() {
            IpAddr::V4(a) => table(&mut self.v4, len).entry(mask4(a.into(), len)),
            IpAddr::V6(a) => {
                return match table(&mut self.v6, len).entry(mask6(a.into(), len)) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(text);
                        true
                    }
                    std::collections::hash_map::Entry::Occupied(_) => false,
                };
            }
        };
        match fresh {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(text);
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        }
    }

    /// The most specific entry holding `ip`.
    fn get(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(a, *len)).copied())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(a, *len)).copied())
            }
        }
    }
}

/// Whether Python 3.8's `ipaddress` calls the address private (`is_private`), which is what
/// Slips' geoip module tested before looking an address up.
pub fn is_private(ip: IpAddr) -> bool {
    const V4: &[(u32, u8)] = &[
        (0x0000_0000, 8),
        (0x0a00_0000, 8),
        (0x7f00_0000, 8),
        (0xa9fe_0000, 16),
        (0xac10_0000, 12),
        (0xc000_0000, 29),
        (0xc000_00aa, 31),
        (0xc000_0200, 24),
        (0xc0a8_0000, 16),
        (0xc612_0000, 15),
        (0xc633_6400, 24),
        (0xcb00_7100, 24),
        (0xf000_0000, 4),
        (0xffff_ffff, 32),
    ];
    const V6: &[(u128, u8)] = &[
        (1, 128),
        (0, 128),
        (0xffff_0000_0000, 96),
        (0x0100_u128 << 112, 64),
        (0x2001_u128 << 112, 23),
        ((0x2001_u128 << 112) | (0x0002_u128 << 96), 48),
        ((0x2001_u128 << 112) | (0x0db8_u128 << 96), 32),
        ((0x2001_u128 << 112) | (0x0010_u128 << 96), 28),
        (0xfc00_u128 << 112, 7),
        (0xfe80_u128 << 112, 10),
    ];
    match ip {
        IpAddr::V4(a) => {
            let a = u32::from(a);
            V4.iter().any(|&(net, len)| mask4(a, len) == net)
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            V6.iter().any(|&(net, len)| mask6(a, len) == net)
        }
    }
}

fn open_db(flag: &'static str, path: &Path, want: &[&str]) -> Result<Reader<Vec<u8>>, EnrichError> {
    let err = |reason: String| EnrichError {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let reader = Reader::open_readfile(path).map_err(|e| err(e.to_string()))?;
    let kind = reader.metadata().database_type.clone();
    if !want.iter().any(|w| kind.contains(w)) {
        return Err(err(format!(
            "a {kind} database, not one of {}",
            want.join(", ")
        )));
    }
    // Fail now, not at the first record, on a file whose tree is cut short (a full
    // `verify` reads the whole file: seconds for a City database).
    for probe in [
        IpAddr::from([1, 1, 1, 1]),
        IpAddr::from([0x2a00, 0x1450, 0, 0, 0, 0, 0, 1]),
    ] {
        if let Err(e) = reader.lookup(probe) {
            return Err(err(format!("corrupt database: {e}")));
        }
    }
    Ok(reader)
}

/// The address (or network) of a list line, `None` if it is not one.
fn parse_net(s: &str) -> Option<IpNetwork> {
    s.parse::<IpNetwork>().ok()
}

/// The name of a domain list line, lowercased without a trailing dot; `None` if it is not a
/// domain name (at least two labels of letters, digits, `-` and `_`, not an address).
fn parse_domain(s: &str) -> Option<String> {
    let name = s.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    (labels_ok && name.parse::<IpAddr>().is_err()).then_some(name)
}

/// One line of a list: `None` for a blank line or a `#` comment; else the entry and its
/// description (empty if none), or `Err` for a malformed line. Forms: `<entry>`,
/// `<entry> <description>`, `<entry>,<description>`, and Slips' CSV
/// (`"n","<entry>","rating","<description>"`).
fn parse_list_line<T>(
    line: &str,
    entry: impl Fn(&str) -> Option<T>,
) -> Option<Result<(T, String), ()>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let unquote = |s: &str| s.trim().trim_matches('"').trim().to_string();
    if line.contains(',') {
        let fields: Vec<String> = line.split(',').map(unquote).collect();
        if let Some(e) = fields.first().and_then(|f| entry(f)) {
            let rest = line.split_once(',').map_or("", |(_, r)| r);
            return Some(Ok((e, unquote(rest))));
        }
        if let Some(e) = fields.get(1).and_then(|f| entry(f)) {
            return Some(Ok((e, fields.get(3).cloned().unwrap_or_default())));
        }
        // Else the whitespace form, whose description may hold a comma.
    }
    let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    Some(match entry(first.trim_matches('"')) {
        Some(e) => Ok((e, unquote(rest))),
        None => Err(()),
    })
}

/// Read a list file, calling `add` for each entry with its description; returns what was
/// loaded and skipped (malformed lines are reported with file and line, the first
/// [`MALFORMED_REPORTED`] one by one).
fn read_list<T>(
    flag: &'static str,
    path: &Path,
    entry: impl Fn(&str) -> Option<T>,
    mut add: impl FnMut(T, String),
) -> Result<ListStats, EnrichError> {
    let bytes = std::fs::read(path).map_err(|e| EnrichError {
        flag,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut stats = ListStats::default();
    for (i, line) in text.lines().enumerate() {
        match parse_list_line(line, &entry) {
            None => {}
            Some(Ok((e, desc))) => {
                stats.entries += 1;
                let desc = if desc.is_empty() {
                    format!("listed in {name}")
                } else {
                    desc
                };
                add(e, desc);
            }
            Some(Err(())) => {
                stats.malformed += 1;
                if stats.malformed <= MALFORMED_REPORTED {
                    tracing::warn!(
                        "{flag} {}:{}: not an entry, skipped: {:?}",
                        path.display(),
                        i + 1,
                        line.chars().take(120).collect::<String>()
                    );
                }
            }
        }
    }
    if stats.malformed > MALFORMED_REPORTED {
        tracing::warn!(
            "{flag} {}: {} malformed lines skipped in all",
            path.display(),
            stats.malformed
        );
    }
    Ok(stats)
}

impl IpInfo {
    /// Open every configured source; a file that cannot be read or is not of the right kind is
    /// an error naming its flag.
    pub fn open(files: &EnrichFiles) -> Result<IpInfo, EnrichError> {
        let mut info = IpInfo::default();
        if let Some(p) = &files.geoip_db {
            info.country = Some(open_db("--geoip-db", p, &["Country", "City"])?);
        }
        if let Some(p) = &files.asn_db {
            info.asn = Some(open_db("--asn-db", p, &["ASN", "ISP"])?);
        }
        for p in &files.blocklists {
            let (ips, texts) = (&mut info.ips, &mut info.texts);
            let stats = read_list("--blocklist", p, parse_net, |net, desc| {
                if ips.insert(net, texts.len() as u32) {
                    texts.push(desc);
                }
            })?;
            info.stats.push((p.clone(), stats));
        }
        for p in &files.domain_blocklists {
            let (domains, texts) = (&mut info.domains, &mut info.texts);
            let stats = read_list("--domain-blocklist", p, parse_domain, |name, desc| {
                if let std::collections::hash_map::Entry::Vacant(e) = domains.entry(name) {
                    e.insert(texts.len() as u32);
                    texts.push(desc);
                }
            })?;
            info.stats.push((p.clone(), stats));
        }
        Ok(info)
    }

    /// Whether some source of `IPsInfo` values is configured (otherwise every value is `{}`).
    pub fn is_empty(&self) -> bool {
        self.country.is_none() && self.asn.is_none() && self.ips.is_empty()
    }

    /// Whether an address list is configured.
    pub fn has_ips(&self) -> bool {
        !self.ips.is_empty()
    }

    /// Whether a domain list is configured.
    pub fn has_domains(&self) -> bool {
        !self.domains.is_empty()
    }

    /// The description of the most specific blocklist entry holding `ip`.
    pub fn listed(&self, ip: IpAddr) -> Option<&str> {
        let i = self.ips.get(ip)?;
        self.texts.get(i as usize).map(String::as_str)
    }

    /// The description of the listed domain `name` is, or is under (`evil.example` lists
    /// `www.evil.example`); the closest listed parent wins.
    pub fn listed_domain(&self, name: &str) -> Option<&str> {
        if self.domains.is_empty() {
            return None;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut at = name.as_str();
        loop {
            if let Some(&i) = self.domains.get(at) {
                return self.texts.get(i as usize).map(String::as_str);
            }
            at = at.split_once('.')?.1;
        }
    }

    /// `geocountry`: the country's English name, `Private`, or `Unknown`.
    fn country(&self, reader: &Reader<Vec<u8>>, ip: IpAddr) -> String {
        if is_private(ip) {
            return "Private".to_string();
        }
        let name = reader
            .lookup(ip)
            .ok()
            .and_then(|r| r.decode::<geoip2::Country>().ok().flatten())
            .and_then(|c| c.country.names.english.map(str::to_string));
        name.unwrap_or_else(|| "Unknown".to_string())
    }

    /// `asn`: the organisation's name, or `Unknown`.
    fn asn(&self, reader: &Reader<Vec<u8>>, ip: IpAddr) -> String {
        let name = reader
            .lookup(ip)
            .ok()
            .and_then(|r| r.decode::<geoip2::Asn>().ok().flatten())
            .and_then(|a| a.autonomous_system_organization.map(str::to_string));
        name.unwrap_or_else(|| "Unknown".to_string())
    }

    /// What is known of `ip`, in `IPsInfo`'s key order.
    pub fn facts(&self, ip: IpAddr) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(r) = &self.country {
            out.push(("geocountry", self.country(r, ip)));
        }
        if let Some(r) = &self.asn {
            out.push(("asn", self.asn(r, ip)));
        }
        if let Some(d) = self.listed(ip) {
            out.push(("Malicious", d.to_string()));
        }
        out
    }

    /// The `IPsInfo` value of `ip`: a Python-JSON object (`{}` when nothing is known).
    /// `asn_object`: the current Kalipso's shape, `"asn": {"asnorg": "<org>"}`, first (the
    /// order Slips' modules of 2022 wrote).
    pub fn value(&self, ip: IpAddr, asn_object: bool) -> String {
        if self.is_empty() {
            return "{}".to_string();
        }
        let mut w = ObjectWriter::new();
        let mut facts = self.facts(ip);
        if asn_object {
            facts.sort_by_key(|(k, _)| *k != "asn");
        }
        for (k, v) in facts {
            if asn_object && k == "asn" {
                w.object("asn", |o| {
                    o.str("asnorg", &v);
                });
            } else {
                w.str(k, &v);
            }
        }
        w.finish()
    }

    /// The timeline's `<ipinfo>` of `ip`, as Slips rendered its `IPsInfo` entry:
    /// `geocountry='United States', asn='GOOGLE'` (empty when nothing is known).
    pub fn push_suffix(&self, out: &mut String, ip: IpAddr) {
        if self.is_empty() {
            return;
        }
        for (i, (k, v)) in self.facts(ip).into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            push_py_str_repr(out, &v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_pythons() {
        for (ip, private) in [
            ("10.1.2.3", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.0.1", true),
            ("100.64.0.1", false),
            ("169.254.1.1", true),
            ("8.8.8.8", false),
            ("255.255.255.255", true),
            ("fe80::1", true),
            ("fd00::1", true),
            ("2001:db8::1", true),
            ("2a00:1450::1", false),
            ("::1", true),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_private(ip), private, "{ip}");
        }
    }

    #[test]
    fn list_lines_in_every_form() {
        let p = |l: &str| parse_list_line(l, parse_net);
        let net = |s: &str| s.parse::<IpNetwork>().unwrap();
        assert!(p("# comment").is_none());
        assert!(p("   ").is_none());
        assert_eq!(
            p("1.2.3.4").unwrap().unwrap(),
            (net("1.2.3.4"), String::new())
        );
        assert_eq!(
            p("10.0.0.0/8   internal scanner").unwrap().unwrap(),
            (net("10.0.0.0/8"), "internal scanner".to_string())
        );
        assert_eq!(
            p("1.2.3.4,bad, very").unwrap().unwrap(),
            (net("1.2.3.4"), "bad, very".to_string())
        );
        assert_eq!(
            p(r#""0", "103.15.53.231","90", "Karel from our village. He is bad guy.""#)
                .unwrap()
                .unwrap(),
            (
                net("103.15.53.231"),
                "Karel from our village. He is bad guy.".to_string()
            )
        );
        assert_eq!(
            p("2001:db8::/32 docs").unwrap().unwrap(),
            (net("2001:db8::/32"), "docs".to_string())
        );
        assert!(p("not-an-ip here").unwrap().is_err());
        assert!(p("1.2.3.400").unwrap().is_err());
        assert!(p("a,b,c,d").unwrap().is_err());
        assert_eq!(
            p("203.0.113.5 known C2, seen in 2020").unwrap().unwrap(),
            (net("203.0.113.5"), "known C2, seen in 2020".to_string())
        );
        let d = |l: &str| parse_list_line(l, parse_domain);
        assert_eq!(
            d("Evil.Example.  c2").unwrap().unwrap(),
            ("evil.example".to_string(), "c2".to_string())
        );
        assert!(d("localhost").unwrap().is_err());
        assert!(d("1.2.3.4").unwrap().is_err());
    }

    #[test]
    fn malformed_lines_past_the_reported_ones_are_still_counted() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.txt");
        let bad = MALFORMED_REPORTED as usize + 3;
        let text = "not an address\n".repeat(bad) + "192.0.2.1 ok\n";
        std::fs::write(&list, text).unwrap();
        let info = IpInfo::open(&EnrichFiles {
            blocklists: vec![list.clone()],
            ..EnrichFiles::default()
        })
        .unwrap();
        let want = ListStats {
            entries: 1,
            malformed: bad as u64,
        };
        assert_eq!(info.stats, vec![(list, want)]);
        assert_eq!(info.listed("192.0.2.1".parse().unwrap()), Some("ok"));
    }

    #[test]
    fn the_most_specific_network_wins() {
        let mut l = NetList::default();
        assert!(l.insert("10.0.0.0/8".parse().unwrap(), 0));
        assert!(l.insert("10.1.0.0/16".parse().unwrap(), 1));
        assert!(!l.insert("10.1.2.3/16".parse().unwrap(), 2));
        assert!(l.insert("::/0".parse().unwrap(), 3));
        assert_eq!(l.get("10.1.9.9".parse().unwrap()), Some(1));
        assert_eq!(l.get("10.2.9.9".parse().unwrap()), Some(0));
        assert_eq!(l.get("11.2.9.9".parse().unwrap()), None);
        assert_eq!(l.get("2001::1".parse().unwrap()), Some(3));
    }
}
