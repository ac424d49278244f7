//! Which Zeek log a file holds, judged from its name (and later confirmed by `#path`/`_path`).
//!
//! Recognised names for a log `<kind>` (`conn`, `dns`, `http`, `ssl`), each optionally ending `.gz`:
//! `<kind>.log`; zeekctl archives `<kind>.10:00:00-11:00:00.log`; Zeek's own rotation
//! `<kind>.2026-11-23-10-00-00.log`; zeek-archiver `<kind>__<open>__<close>__[log_suffix=...__].log`.
//! Look-alikes such as `conn-summary.*.log.gz` or `open_conn.*` are not matched.

use std::fmt;
use std::path::Path;

/// The Zeek logs kalipso-ingest understands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// `conn.log`: one line per connection, written when the connection ends.
    Conn,
    /// `dns.log`: DNS requests and answers.
    Dns,
    /// `http.log`: HTTP requests.
    Http,
    /// `ssl.log`: TLS handshakes.
    Ssl,
}

impl LogKind {
    /// All kinds in the canonical tie-break order (conn < dns < http < ssl).
    pub const ALL: [LogKind; 4] = [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl];

    /// The Zeek `#path` / `_path` name of this log.
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Conn => "conn",
            LogKind::Dns => "dns",
            LogKind::Http => "http",
            LogKind::Ssl => "ssl",
        }
    }

    /// The kind named by a Zeek `#path`/`_path` value, if it is one we read.
    pub fn from_path(path: &str) -> Option<LogKind> {
        match path {
            "conn" => Some(LogKind::Conn),
            "dns" => Some(LogKind::Dns),
            "http" => Some(LogKind::Http),
            "ssl" => Some(LogKind::Ssl),
            _ => None,
        }
    }

    /// The kind of a file, judged from its base name only (see the module doc).
    ///
    /// ```
    /// use kalipso_ingest::zeek::LogKind;
    /// use std::path::Path;
    /// assert_eq!(LogKind::from_file_name(Path::new("conn.10:00:00-11:00:00.log.gz")), Some(LogKind::Conn));
    /// assert_eq!(LogKind::from_file_name(Path::new("conn-summary.log")), None);
    /// ```
    pub fn from_file_name(path: &Path) -> Option<LogKind> {
        let name = path.file_name()?.to_str()?;
        let name = name.strip_suffix(".gz").unwrap_or(name);
        let stem = name.strip_suffix(".log")?;
        LogKind::ALL
            .into_iter()
            .find(|kind| stem_matches(stem, kind.as_str()))
    }
}

impl fmt::Display for LogKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a file stem (name without `.log[.gz]`) is `kind` or one of its rotation names.
fn stem_matches(stem: &str, kind: &str) -> bool {
    let Some(rest) = stem.strip_prefix(kind) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if let Some(stamp) = rest.strip_prefix('.') {
        // zeekctl `10:00:00-11:00:00`, Zeek's `2026-11-23-10-00-00`, RITA-style `17_32_32-18_00_00`.
        return !stamp.is_empty()
            && stamp
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'-' | b'_' | b'T' | b'.'));
    }
    // zeek-archiver log-queue: `conn__<open>__<close>__` or `..__log_suffix=logger-1__`.
    rest.len() > 4 && rest.starts_with("__") && rest.ends_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> Option<LogKind> {
        LogKind::from_file_name(Path::new(name))
    }

    #[test]
    fn plain_and_rotated_names() {
        assert_eq!(kind("conn.log"), Some(LogKind::Conn));
        assert_eq!(kind("/x/y/dns.log.gz"), Some(LogKind::Dns));
        assert_eq!(kind("conn.10:00:00-11:00:00.log.gz"), Some(LogKind::Conn));
        assert_eq!(kind("http.2026-11-23-10-00-00.log"), Some(LogKind::Http));
        assert_eq!(
            kind("ssl__2026-11-23-10-00-00__2026-11-23-11-00-00__.log"),
            Some(LogKind::Ssl)
        );
        assert_eq!(
            kind("conn__2026-11-23-10-00-00__2026-11-23-11-00-00__log_suffix=logger-1__.log.gz"),
            Some(LogKind::Conn)
        );
    }

    #[test]
    fn look_alikes_are_rejected() {
        for name in [
            "conn-summary.10:00:00-11:00:00.log.gz",
            "open_conn.17_32_32-18_00_00.log.gz",
            "conn_top.log",
            "dns.log.labeled",
            "http_empty.log",
            "tor_ssl.log",
            "x509.log",
            "conn.log.corrupt.gz",
            "conn.summary.log",
            "conn",
            "conn.",
        ] {
            assert_eq!(kind(name), None, "{name}");
        }
    }

    #[test]
    fn path_names() {
        assert_eq!(LogKind::from_path("ssl"), Some(LogKind::Ssl));
        assert_eq!(LogKind::from_path("x509"), None);
    }
}
