//! Settings: a TOML file (`--config`) with every key optional, overridden by command-line flags;
//! both are one struct ([`FileSettings`]). `config/kalipso-ingest.toml` documents every key.

use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::enrich::EnrichFiles;
use crate::model::layout::Layout;
use crate::profile::routing::{Direction, Routing};
use crate::store::redis_store::{DEFAULT_IPINFO_DB, DEFAULT_TIMEOUT, Target};
use crate::timeline::Clock;

/// The settings, defined once: the same struct is the command-line flags (clap) and the
/// `--config` file's keys (TOML, kebab-case as the flags). Every field is optional; flags win
/// over the file, which wins over the defaults ([`Settings::merge`]).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    /// Directory of Zeek logs (conn/dns/http/ssl, any rotation name, plain or .gz).
    #[arg(long, value_name = "DIR")]
    pub zeek_dir: Option<PathBuf>,
    /// Also read subdirectories of --zeek-dir (zeekctl's dated archive folders).
    #[arg(long, short = 'r', num_args = 0, default_missing_value = "true")]
    pub recursive: Option<bool>,
    /// Redis to write to [default: redis://127.0.0.1:6379/0].
    #[arg(long, value_name = "URL", env = "KALIPSO_REDIS_URL")]
    pub redis_url: Option<String>,
    /// CA certificates (PEM) for a `rediss://` (TLS) Redis [default: the system's].
    #[arg(long, value_name = "FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Keep this much data time: a window whose end is older than the newest record time
    /// minus DURATION is removed (`90m`, `48h`, `7d`, `1h30m`) [default: keep everything].
    #[arg(long, value_name = "DURATION")]
    pub retain: Option<String>,
    /// Milliseconds to wait for Redis to connect, answer or take a write before it counts as
    /// down [default: 10000].
    #[arg(long, value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,
    /// Home network(s): CIDRs or IPs, IPv4 or IPv6; repeat the flag or separate with commas.
    /// Without one every IP gets a profile.
    #[arg(long, value_name = "CIDR")]
    pub home_net: Option<Vec<String>>,
    /// Analysis direction: `out` (traffic leaving each profile) or `all` (also arriving)
    /// [default: out].
    #[arg(long, value_name = "out|all")]
    pub direction: Option<String>,
    /// Timewindow width in seconds [default: 3600].
    #[arg(long, value_name = "SECONDS")]
    pub tw_width: Option<f64>,
    /// Label stored in every flow [default: unknown].
    #[arg(long)]
    pub label: Option<String>,
    /// Log filter (`info`, `debug`, `warn`, ...) [default: info]; RUST_LOG overrides it.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Zone of the timeline timestamps: `local`, `UTC` or an IANA name (`Europe/Prague`)
    /// [default: local].
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Follow mode: milliseconds between directory checks without an inotify event [default: 250].
    #[arg(long, value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
    /// Follow mode: milliseconds between commits to Redis [default: 500].
    #[arg(long, value_name = "MS")]
    pub flush_interval_ms: Option<u64>,
    /// Follow mode: milliseconds between rewrites of a filling window's hash fields (timeline
    /// lines and flows go at every commit) [default: 5000].
    #[arg(long, value_name = "MS")]
    pub fields_interval_ms: Option<u64>,
    /// MaxMind-format Country or City database (GeoLite2, DB-IP lite, ...): each address's
    /// `geocountry` in `IPsInfo` [default: none].
    #[arg(long, value_name = "FILE")]
    pub geoip_db: Option<PathBuf>,
    /// MaxMind-format ASN database (GeoLite2-ASN, ...): each address's `asn` [default: none].
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<PathBuf>,
    /// Blocklist of IPs or CIDRs, one per line with an optional description (or Slips' CSV
    /// form); a conn with a listed peer is evidence. Repeat the flag for more files.
    #[arg(long = "blocklist", value_name = "FILE")]
    pub blocklists: Option<Vec<PathBuf>>,
    /// Blocklist of domains (dns queries, http hosts and ssl server names under a listed
    /// name are evidence). Repeat the flag for more files.
    #[arg(long = "domain-blocklist", value_name = "FILE")]
    pub domain_blocklists: Option<Vec<PathBuf>>,
    /// Redis layout: `kalipso-2020` (Kalipso of Slips early 2020) or `kalipso` (the Kalipso
    /// installed today); fixed per database [default: kalipso-2020].
    #[arg(long, value_name = "kalipso-2020|kalipso")]
    pub layout: Option<String>,
    /// With `--layout kalipso`: the database of the same Redis that gets `IPsInfo` (the
    /// current Kalipso reads it from database 1 of 127.0.0.1:6379) [default: 1].
    #[arg(long, value_name = "N")]
    pub ipinfo_db: Option<i64>,
    /// Write no `_flows`/`_altflows` (which only Slips' own modules read): the records are
    /// kept in a compact form of our own, a third of the memory; fixed per database.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    pub no_flows: Option<bool>,
    /// A window is detected (red in Kalipso) when its evidence, summed as threat level ×
    /// confidence, reaches THRESHOLD × width / 60 [default: 0.1].
    #[arg(long, value_name = "THRESHOLD")]
    pub detection_threshold: Option<f64>,
}

/// A settings error, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl FileSettings {
    /// Read a TOML settings file. One that holds a Redis password must not be readable by
    /// every user (mode `o+r`): the password would be anyone's.
    pub fn load(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let settings: FileSettings = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(url) = &settings.redis_url {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if Target::new(url).has_password() && mode & 0o004 != 0 {
                return Err(ConfigError::Invalid(format!(
                    "config file {} holds a Redis password and every user can read it: chmod o-r it (e.g. 0640), or pass the URL in KALIPSO_REDIS_URL or a systemd credential (redis-url)",
                    path.display()
                )));
            }
        }
        Ok(settings)
    }
}

/// The name of the systemd credential holding the Redis URL (`LoadCredential=redis-url:FILE`,
/// read from `$CREDENTIALS_DIRECTORY/redis-url`).
pub const URL_CREDENTIAL: &str = "redis-url";

/// The Redis URL from the service's credential, if it has one.
fn credential_url() -> Option<String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let text = std::fs::read_to_string(Path::new(&dir).join(URL_CREDENTIAL)).ok()?;
    Some(text.trim().to_string()).filter(|s| !s.is_empty())
}

/// Default Redis URL.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// Default label.
pub const DEFAULT_LABEL: &str = "unknown";
/// Default timewindow width.
pub const DEFAULT_TW_WIDTH: f64 = 3600.0;
/// Default detection threshold (Slips' shipped `evidence_detection_threshold`).
pub const DEFAULT_DETECTION_THRESHOLD: f64 = 0.1;

/// Everything an ingest run needs, after merging file and flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Directory of Zeek logs.
    pub zeek_dir: PathBuf,
    /// Also read subdirectories.
    pub recursive: bool,
    /// Where Redis is, and its timeout.
    pub redis: Target,
    /// Retention in seconds of data time (`None`: keep everything).
    pub retain: Option<f64>,
    /// Home networks and direction.
    pub routing: Routing,
    /// Timewindow width in seconds.
    pub tw_width: f64,
    /// Label stored with every flow.
    pub label: String,
    /// tracing filter.
    pub log_level: String,
    /// Zone of the timeline timestamps.
    pub clock: Clock,
    /// Follow mode: milliseconds between directory checks (default 250).
    pub poll_interval_ms: u64,
    /// Follow mode: milliseconds between commits (default 500).
    pub flush_interval_ms: u64,
    /// Follow mode: milliseconds between rewrites of a filling window's hash fields (default
    /// 5000; timeline lines and flows go at every commit).
    pub fields_interval_ms: u64,
    /// Country and ASN databases and blocklists.
    pub enrich: EnrichFiles,
    /// Evidence needed for a detection, per minute of window width (default 0.1).
    pub detection_threshold: f64,
    /// The Redis layout written.
    pub layout: Layout,
}

/// Parse a duration: numbers each followed by a unit, `s`, `m`, `h`, `d` or `w` (`90m`,
/// `48h`, `7d`, `1h30m`); in seconds, more than zero.
pub fn parse_duration(text: &str) -> Result<f64, ConfigError> {
    let bad = |why: &str| {
        ConfigError::Invalid(format!(
            "invalid duration {text:?} ({why}): write it as e.g. 90m, 48h, 7d or 1h30m"
        ))
    };
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            'w' => 604800.0,
            _ => return Err(bad("unknown unit")),
        };
        let n: f64 = number.parse().map_err(|_| bad("a unit without a number"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad("a number without a unit"));
    }
    if !(total.is_finite() && total > 0.0) {
        return Err(bad("not more than zero"));
    }
    Ok(total)
}

/// Parse a home-net entry: a CIDR, or a single IP (a /32 or /128).
pub fn parse_net(s: &str) -> Result<IpNetwork, ConfigError> {
    s.trim()
        .parse::<IpNetwork>()
        .map_err(|e| ConfigError::Invalid(format!("invalid home network {s:?}: {e}")))
}

impl Settings {
    /// Merge: `flags` win over `file`, which wins over the defaults.
    pub fn merge(flags: FileSettings, file: FileSettings) -> Result<Settings, ConfigError> {
        let zeek_dir = flags.zeek_dir.or(file.zeek_dir).ok_or_else(|| {
            ConfigError::Invalid(
                "no Zeek log directory: pass --zeek-dir DIR (or set zeek-dir in the config file)"
                    .into(),
            )
        })?;
        let home = flags
            .home_net
            .or(file.home_net)
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.trim().is_empty())
            .map(parse_net)
            .collect::<Result<Vec<_>, _>>()?;
        let direction = match flags.direction.or(file.direction) {
            Some(d) => d.parse::<Direction>().map_err(ConfigError::Invalid)?,
            None => Direction::Out,
        };
        let tw_width = flags.tw_width.or(file.tw_width).unwrap_or(DEFAULT_TW_WIDTH);
        if !(tw_width.is_finite() && tw_width > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "--tw-width must be a positive number of seconds, not {tw_width}"
            )));
        }
        let clock = match flags.timezone.or(file.timezone) {
            Some(z) => z.parse::<Clock>().map_err(ConfigError::Invalid)?,
            None => Clock::Local,
        };
        let poll_interval_ms = flags
            .poll_interval_ms
            .or(file.poll_interval_ms)
            .unwrap_or(250);
        let flush_interval_ms = flags
            .flush_interval_ms
            .or(file.flush_interval_ms)
            .unwrap_or(500);
        if poll_interval_ms == 0 || flush_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "poll-interval-ms and flush-interval-ms must be at least 1".into(),
            ));
        }
        let fields_interval_ms = flags
            .fields_interval_ms
            .or(file.fields_interval_ms)
            .unwrap_or(5000);
        let layout = match flags.layout.or(file.layout) {
            Some(l) => l.parse::<Layout>().map_err(ConfigError::Invalid)?,
            None => Layout::default(),
        };
        let ipinfo_db = flags
            .ipinfo_db
            .or(file.ipinfo_db)
            .unwrap_or(DEFAULT_IPINFO_DB);
        if !(0..=15).contains(&ipinfo_db) {
            return Err(ConfigError::Invalid(format!(
                "--ipinfo-db must be a Redis database number (0 to 15), not {ipinfo_db}"
            )));
        }
        let redis = Target {
            layout,
            ipinfo_db,
            no_flows: flags.no_flows.or(file.no_flows).unwrap_or(false),
            url: flags
                .redis_url
                .or_else(credential_url)
                .or(file.redis_url)
                .unwrap_or_else(|| DEFAULT_REDIS_URL.into()),
            ca_file: flags.redis_ca_file.or(file.redis_ca_file),
            timeout: match flags.redis_timeout_ms.or(file.redis_timeout_ms) {
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "redis-timeout-ms must be at least 1".into(),
                    ));
                }
                Some(ms) => std::time::Duration::from_millis(ms),
                None => DEFAULT_TIMEOUT,
            },
        };
        redis
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let log_level = flags
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| ConfigError::Invalid(format!("invalid log level {log_level:?}: {e}")))?;
        let retain = match flags.retain.or(file.retain) {
            Some(text) => Some(parse_duration(&text)?),
            None => None,
        };
        let detection_threshold = flags
            .detection_threshold
            .or(file.detection_threshold)
            .unwrap_or(DEFAULT_DETECTION_THRESHOLD);
        if !(detection_threshold.is_finite() && detection_threshold > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "--detection-threshold must be a positive number, not {detection_threshold}"
            )));
        }
        let enrich = EnrichFiles {
            geoip_db: flags.geoip_db.or(file.geoip_db),
            asn_db: flags.asn_db.or(file.asn_db),
            blocklists: flags.blocklists.or(file.blocklists).unwrap_or_default(),
            domain_blocklists: flags
                .domain_blocklists
                .or(file.domain_blocklists)
                .unwrap_or_default(),
        };
        Ok(Settings {
            layout,
            enrich,
            detection_threshold,
            retain,
            clock,
            poll_interval_ms,
            flush_interval_ms,
            fields_interval_ms,
            zeek_dir,
            recursive: flags.recursive.or(file.recursive).unwrap_or(false),
            redis,
            routing: Routing { home, direction },
            tw_width,
            label: flags
                .label
                .or(file.label)
                .unwrap_or_else(|| DEFAULT_LABEL.into()),
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: FileSettings = toml::from_str(
            r#"
zeek-dir = "/opt/zeek/logs/current"
home-net = ["192.168.0.0/16", "2001:db8::/32"]
direction = "all"
tw-width = 300
label = "malicious"
"#,
        )
        .unwrap();
        let flags = FileSettings {
            direction: Some("out".into()),
            ..FileSettings::default()
        };
        let s = Settings::merge(flags, file).unwrap();
        assert_eq!(s.zeek_dir, PathBuf::from("/opt/zeek/logs/current"));
        assert_eq!(s.routing.direction, Direction::Out);
        assert_eq!(s.routing.home.len(), 2);
        assert_eq!(s.tw_width, 300.0);
        assert_eq!(s.label, "malicious");
        assert_eq!(s.redis.url, DEFAULT_REDIS_URL);
    }

    #[test]
    fn config_example_is_complete() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/kalipso-ingest.toml");
        let f = FileSettings::load(Path::new(path)).unwrap();
        // Every key is set in the example (a new key must be documented there too).
        let FileSettings {
            zeek_dir,
            recursive,
            redis_url,
            redis_ca_file,
            redis_timeout_ms,
            retain,
            home_net,
            direction,
            tw_width,
            label,
            log_level,
            timezone,
            poll_interval_ms,
            flush_interval_ms,
            fields_interval_ms,
            geoip_db,
            asn_db,
            blocklists,
            domain_blocklists,
            detection_threshold,
            layout,
            ipinfo_db,
            no_flows,
        } = f.clone();
        assert!(zeek_dir.is_some() && recursive.is_some() && redis_url.is_some());
        assert!(home_net.is_some() && direction.is_some() && tw_width.is_some());
        assert!(label.is_some() && log_level.is_some() && timezone.is_some());
        assert!(poll_interval_ms.is_some() && flush_interval_ms.is_some());
        assert!(fields_interval_ms.is_some() && redis_timeout_ms.is_some());
        assert!(
            redis_ca_file.is_none(),
            "commented out: the default is the system's roots"
        );
        assert!(retain.is_some(), "the service keeps a bounded Redis");
        assert!(
            geoip_db.is_none() && asn_db.is_none(),
            "commented out: no database ships with the project"
        );
        assert!(
            blocklists.is_none() && domain_blocklists.is_none(),
            "commented out"
        );
        assert!(detection_threshold.is_some() && layout.is_some() && ipinfo_db.is_some());
        assert!(no_flows.is_some());
        let s = Settings::merge(FileSettings::default(), f).unwrap();
        assert_eq!(s.redis.url, DEFAULT_REDIS_URL);
        assert_eq!(s.tw_width, DEFAULT_TW_WIDTH);
        assert_eq!(s.label, DEFAULT_LABEL);
    }

    #[test]
    fn every_flag_is_a_file_key_and_every_file_key_a_flag() {
        use clap::Args;
        let cmd = FileSettings::augment_args(clap::Command::new("t"));
        let flags: std::collections::BTreeSet<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            // A repeatable flag names one file (`--blocklist F`), its key the list.
            .map(|f| if f.ends_with("blocklist") { f + "s" } else { f })
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/kalipso-ingest.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut keys: std::collections::BTreeSet<String> = table.keys().cloned().collect();
        // Keys without a default value are shown commented out (`# key = example`).
        let commented = text.lines().filter_map(|l| {
            let (key, _) = l.strip_prefix("# ")?.split_once(" = ")?;
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
                .then(|| key.to_string())
        });
        keys.extend(commented);
        assert_eq!(flags, keys);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), 5400.0);
        assert_eq!(parse_duration("48h").unwrap(), 172800.0);
        assert_eq!(parse_duration("7d").unwrap(), 604800.0);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400.0);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400.0);
        for bad in ["", "10", "h", "5x", "0h", "-1h"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let dir = FileSettings {
            zeek_dir: Some("x".into()),
            ..FileSettings::default()
        };
        let e = Settings::merge(
            FileSettings {
                home_net: Some(vec!["10.0.0.0/33".into()]),
                ..FileSettings::default()
            },
            dir.clone(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/33"), "{e}");
        let e = Settings::merge(
            FileSettings {
                tw_width: Some(0.0),
                ..FileSettings::default()
            },
            dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("tw-width"), "{e}");
        assert!(toml::from_str::<FileSettings>("colour = 1").is_err());
    }
}
