//! Which Redis layout a database holds: the one Kalipso of Slips early 2020 reads (the
//! contract of `../shared/spec/`, the default), or the one the Kalipso users install today
//! reads (`docs/kalipso-2026-layout-facts.md`). Fixed per database, like the window width.

use std::fmt;
use std::str::FromStr;

/// A Redis layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Slips early 2020 (`modules/blessed`): timeline LIST of text lines, `ip:port:proto`
    /// tuples, evidence as `[confidence, threat, description]`.
    #[default]
    Kalipso2020,
    /// Kalipso as installed today: timeline ZSET of JSON entries, `ip-port-proto` tuples,
    /// evidence as JSON strings, `DNSresolution`, `IPsInfo` in database 1.
    Kalipso,
}

impl Layout {
    /// Its name, as the flag and `kalipso-ingest:layout` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Kalipso2020 => "kalipso-2020",
            Layout::Kalipso => "kalipso",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Layout, String> {
        match s.trim() {
            "kalipso-2020" => Ok(Layout::Kalipso2020),
            "kalipso" => Ok(Layout::Kalipso),
            other => Err(format!(
                "invalid layout {other:?}: kalipso-2020 (Kalipso of Slips early 2020) or kalipso (the current Kalipso)"
            )),
        }
    }
}
