//! The Redis side: connecting (with one clear error line when it fails), the grid anchor,
//! reading back windows and profiles the profiler must merge, and writing each flush in
//! pipelined batches of complete values (overwrites, so a repeated flush is harmless).

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{Connection, ConnectionLike, RedisWrite, ToRedisArgs};

use super::keys;
use crate::model::alt::AltRecord;
use crate::model::flow::Flow;
use crate::model::layout::Layout;
use crate::model::records::{self, frame};
use crate::model::window::Grid;
use crate::model::window::WinId;
use crate::profile::profiler::{
    FactKind, LoadRequest, PersistedState, RetentionWrite, StoredWindow, Writes,
};
use crate::profile::window_state::{TimelineWrite, WindowWrite};
use crate::pyjson::float_repr;
use crate::timeline::lines::push_sub_line;
use crate::zeek::LogKind;

/// Commands per pipeline round trip.
const BATCH: usize = 2000;

/// Payload bytes after which a pipeline is sent.
const BATCH_BYTES: usize = 4 << 20;

/// A Redis failure, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL does not parse.
    #[error("invalid Redis URL {url}: {source}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// Nothing answers at the URL.
    #[error(
        "cannot reach Redis at {url}: {reason}. Start one (e.g. `redis-server --port 6379 --daemonize yes`) or pass --redis-url"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A command failed.
    #[error("Redis at {url}: {source}")]
    Command {
        /// The URL.
        url: String,
        /// The error.
        source: redis::RedisError,
    },
    /// The database holds data this tool cannot continue.
    #[error("{0}")]
    Conflict(String),
    /// The thread sending `--once` transactions stopped.
    #[error("the Redis writer thread stopped: {0}")]
    Writer(String),
}

impl StoreError {
    /// Redis refused a write because it is at `maxmemory` (`OOM command not allowed`, also as
    /// the reason a transaction was discarded).
    pub fn is_full(&self) -> bool {
        self.to_string().contains("OOM")
    }
}

/// Redis' memory as `INFO memory` tells it (a field it did not give is `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    /// `used_memory`, bytes.
    pub used: Option<u64>,
    /// `maxmemory`, bytes (0: no limit).
    pub max: Option<u64>,
    /// `maxmemory_policy`.
    pub policy: Option<String>,
}

/// What [`RedisStore::load`] read: stored windows, each profile's stored `Starttime`, and
/// (`--no-flows`) the frames of closing windows.
pub type Loaded = (
    Vec<(WinId, StoredWindow)>,
    Vec<(IpAddr, Option<f64>)>,
    WindowFrames,
);

/// `--no-flows`: windows with their stored frames of records, in order.
pub type WindowFrames = Vec<(WinId, Vec<Vec<u8>>)>;

/// Counters of one or more writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Commands sent.
    pub commands: u64,
    /// Round trips.
    pub round_trips: u64,
}

/// Where Redis is and how long to wait for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `redis://[user:password@]host:port/db` or `unix:///path`.
    pub url: String,
    /// Connect, read and write timeout of every command: a Redis that stops answering
    /// (paused, partitioned) is treated as one that is down once it passes.
    pub timeout: Duration,
    /// `rediss://`: the CA certificates (PEM) the server's certificate must chain to, instead
    /// of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// The layout written there (fixed per database: `kalipso-ingest:layout`).
    pub layout: Layout,
    /// With `--layout kalipso`: the database of the same server that gets `IPsInfo` (the
    /// current Kalipso reads it from database 1).
    pub ipinfo_db: i64,
    /// `--no-flows`: no `_flows`/`_altflows`; the records kept in our compact form (fixed per
    /// database: `kalipso-ingest:records`).
    pub no_flows: bool,
}

/// The database the current Kalipso reads `IPsInfo` from.
pub const DEFAULT_IPINFO_DB: i64 = 1;

/// The default [`Target::timeout`]: longer than a large transaction takes to execute, shorter
/// than half the service's watchdog interval (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Target {
    /// `url` with the default timeout.
    pub fn new(url: &str) -> Target {
        Target {
            url: url.to_string(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            layout: Layout::default(),
            ipinfo_db: DEFAULT_IPINFO_DB,
            no_flows: false,
        }
    }

    /// Whether the URL holds a password (`scheme://[user]:password@host`, or
    /// `unix:///path?pass=…`).
    pub fn has_password(&self) -> bool {
        shown_url(&self.url) != self.url
    }

    /// The client for the URL: with TLS for `rediss://` (rustls; the CA file when given,
    /// else the system's roots).
    fn client(&self) -> Result<redis::Client, StoreError> {
        let bad = |source| StoreError::BadUrl {
            url: self.shown(),
            source,
        };
        match &self.ca_file {
            Some(path) if self.url.starts_with("rediss://") => {
                install_crypto_provider();
                let pem = std::fs::read(path).map_err(|e| {
                    StoreError::Conflict(format!(
                        "cannot read the Redis CA file {}: {e}",
                        path.display()
                    ))
                })?;
                redis::Client::build_with_tls(
                    self.url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
                .map_err(bad)
            }
            _ => {
                if self.url.starts_with("rediss://") {
                    install_crypto_provider();
                }
                redis::Client::open(self.url.as_str()).map_err(bad)
            }
        }
    }

    /// The URL as it may be shown (logs, status, errors): a password replaced by `***`.
    pub fn shown(&self) -> String {
        shown_url(&self.url)
    }

    /// Check the URL (and the CA file) without connecting: a bad one is a settings error at
    /// start.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.ca_file.is_some() && !self.url.starts_with("rediss://") {
            return Err(StoreError::Conflict(format!(
                "redis-ca-file is for TLS: the URL {} is not rediss://",
                self.shown()
            )));
        }
        self.client().map(|_| ())
    }
}

/// rustls needs one crypto provider for the process (ring; set once).
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `url` with its password (`scheme://user:password@host`, or `?pass=` in the query) replaced
/// by `***`.
pub fn shown_url(url: &str) -> String {
    // `unix:///path?pass=SECRET` (redis-rs reads the password from the query too).
    let (url, query) = match url.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (url, None),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let shown = shown_authority(url);
    match query {
        Some(q) => format!("{shown}?{q}"),
        None => shown,
    }
}

fn shown_authority(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            match user_info.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                // `redis://name@host`: a user name without a password (nothing secret).
                None => format!("{scheme}://{user_info}@{host}{path}"),
            }
        }
        None => url.to_string(),
    }
}

/// A connection to the Redis database the layout lives in.
pub struct RedisStore {
    url: String,
    con: Connection,
    layout: Layout,
    /// `--no-flows`.
    no_flows: bool,
    /// The URL's database, and where `IPsInfo` goes (the same unless `--layout kalipso`).
    dbs: Dbs,
    /// The flush encoder, kept with its buffers from one flush to the next.
    encoder: Encoder,
    /// What was written so far.
    pub stats: WriteStats,
}

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        float_repr(x)
    }
}

impl RedisStore {
    /// Connect and check the server answers (`PING`), within the target's timeout, which
    /// then bounds every read and write on the connection.
    pub fn connect(target: &Target) -> Result<RedisStore, StoreError> {
        // Errors and logs show the URL without its password.
        let url = target.shown();
        let client = target.client()?;
        let unreachable = |e: redis::RedisError| StoreError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let timeout = target.timeout.max(Duration::from_millis(1));
        let mut con = client
            .get_connection_with_timeout(timeout)
            .map_err(unreachable)?;
        con.set_read_timeout(Some(timeout)).map_err(unreachable)?;
        con.set_write_timeout(Some(timeout)).map_err(unreachable)?;
        redis::cmd("PING")
            .query::<String>(&mut con)
            .map_err(unreachable)?;
        let db = client.get_connection_info().redis_settings().db();
        if target.layout == Layout::Kalipso && target.ipinfo_db != db {
            // A database the server does not have fails here, not inside a flush.
            redis::pipe()
                .cmd("SELECT")
                .arg(target.ipinfo_db)
                .cmd("SELECT")
                .arg(db)
                .exec(&mut con)
                .map_err(|e| {
                    StoreError::Conflict(format!("--ipinfo-db {}: {e}", target.ipinfo_db))
                })?;
        }
        Ok(RedisStore {
            url,
            con,
            layout: target.layout,
            no_flows: target.no_flows,
            dbs: Dbs {
                own: db,
                ipinfo: match target.layout {
                    Layout::Kalipso2020 => db,
                    Layout::Kalipso => target.ipinfo_db,
                },
            },
            encoder: Encoder::default(),
            stats: WriteStats::default(),
        })
    }

    fn err(&self, source: redis::RedisError) -> StoreError {
        StoreError::Command {
            url: self.url.clone(),
            source,
        }
    }

    /// The grid stored by an earlier run, if any. Fails when it was built with another width.
    pub fn grid(&mut self, width: f64) -> Result<Option<Grid>, StoreError> {
        let (anchor, stored_width, format, layout, ipinfo_db, records, kalipso_state): StoredMarkers =
            redis::pipe()
                .get(keys::ANCHOR)
                .get(keys::WIDTH)
                .get(keys::STATE_FORMAT)
                .get(keys::LAYOUT)
                .get(keys::IPINFO_DB)
                .get(keys::RECORDS)
                .get(keys::KALIPSO_STATE)
                .query(&mut self.con)
                .map_err(|e| self.err(e))?;
        let Some(anchor) = anchor else {
            return Ok(None);
        };
        check_state_format(format.as_deref())?;
        // A database from before the marker holds the 2020 layout.
        let stored = layout.as_deref().unwrap_or(Layout::Kalipso2020.as_str());
        if stored != self.layout.as_str() {
            return Err(StoreError::Conflict(format!(
                "this database holds the {stored} layout; --layout {} would mix two layouts. Use the same layout, another database, or --reset",
                self.layout
            )));
        }
        if self.layout == Layout::Kalipso
            && kalipso_state.as_deref() != Some(keys::KALIPSO_STATE_VERSION)
        {
            return Err(StoreError::Conflict(
                "this --layout kalipso database was written by an earlier build, whose DNSresolution and IPsInfo state has another form. Rebuild it with --reset"
                    .to_string(),
            ));
        }
        // A database from before the marker keeps its records in `_flows`.
        let compact = records.as_deref() == Some(COMPACT);
        if compact != self.no_flows {
            return Err(StoreError::Conflict(
                if compact {
                "this database was written with --no-flows (no _flows/_altflows); without it, windows read back would miss their records. Use --no-flows, another database, or --reset"
            } else {
                "this database keeps its flows in _flows/_altflows; --no-flows would leave them half-written. Run without --no-flows, use another database, or --reset"
                }
                .to_string(),
            ));
        }
        if let Some(db) = ipinfo_db.filter(|db| *db != self.dbs.ipinfo) {
            return Err(StoreError::Conflict(format!(
                "this database keeps IPsInfo in database {db}; --ipinfo-db {} would split it. Use the same, or --reset",
                self.dbs.ipinfo
            )));
        }
        let parse = |s: &str, what: &str| {
            s.trim().parse::<f64>().map_err(|_| {
                StoreError::Conflict(format!("{what} in Redis is not a number: {s:?}"))
            })
        };
        let anchor = parse(&anchor, keys::ANCHOR)?;
        if let Some(w) = stored_width {
            let w = parse(&w, keys::WIDTH)?;
            if w != width {
                return Err(StoreError::Conflict(format!(
                    "this database was built with --tw-width {}; the windows of --tw-width {} would not line up. Use the same width, another database, or --reset",
                    number_text(w),
                    number_text(width)
                )));
            }
        }
        Ok(Some(Grid::anchored_at(anchor, width)))
    }

    /// Store the grid of a fresh database (`SET NX`); returns the grid in force (another
    /// writer's, if one got there first).
    pub fn init_grid(&mut self, grid: Grid) -> Result<Grid, StoreError> {
        // The anchor and the markers together (one script): a crash in between would leave a
        // database that a next run misreads (no layout marker: the 2020 layout).
        let mut markers = vec![
            (keys::WIDTH, number_text(grid.width)),
            (keys::STATE_FORMAT, keys::STATE_FORMAT_VERSION.to_string()),
        ];
        // No marker means the 2020 layout: its databases stay as they were.
        if self.layout != Layout::Kalipso2020 {
            markers.push((keys::LAYOUT, self.layout.as_str().to_string()));
            markers.push((keys::IPINFO_DB, self.dbs.ipinfo.to_string()));
            markers.push((keys::KALIPSO_STATE, keys::KALIPSO_STATE_VERSION.to_string()));
        }
        if self.no_flows {
            markers.push((keys::RECORDS, COMPACT.to_string()));
        }
        let set: i64 = redis::cmd("EVAL")
            .arg(INIT_MARKERS)
            .arg(0)
            .arg(keys::ANCHOR)
            .arg(number_text(grid.anchor()))
            .arg(&markers[..])
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        if set == 1 {
            return Ok(grid);
        }
        self.grid(grid.width)?
            .ok_or_else(|| StoreError::Conflict(format!("{} vanished", keys::ANCHOR)))
    }

    /// Remove every key this tool writes. Refuses when the layout keys exist but were not
    /// written by kalipso-ingest (no anchor): that data belongs to someone else.
    pub fn reset(&mut self) -> Result<u64, StoreError> {
        let anchor: Option<String> = redis::cmd("GET")
            .arg(keys::ANCHOR)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let (stored_layout, stored_ipinfo): (Option<String>, Option<i64>) = redis::pipe()
            .get(keys::LAYOUT)
            .get(keys::IPINFO_DB)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let kalipso = stored_layout.as_deref() == Some(Layout::Kalipso.as_str());
        let mut found = Vec::new();
        let patterns =
            keys::OWN_PATTERNS
                .iter()
                .chain(if kalipso { keys::KALIPSO_PATTERNS } else { &[] });
        for pattern in patterns {
            let iter: redis::Iter<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(*pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(&mut self.con)
                .map_err(|source| StoreError::Command {
                    url: self.url.clone(),
                    source,
                })?;
            for key in iter {
                found.push(key.map_err(|source| StoreError::Command {
                    url: self.url.clone(),
                    source,
                })?);
            }
        }
        found.sort();
        found.dedup();
        if anchor.is_none() && !found.is_empty() {
            return Err(StoreError::Conflict(format!(
                "--reset: this database holds {} Slips-layout keys that kalipso-ingest did not write (no {}); not deleting them. Use another database (--redis-url .../N)",
                found.len(),
                keys::ANCHOR
            )));
        }
        let mut deleted = 0u64;
        let ipinfo_db = stored_ipinfo.filter(|db| kalipso && *db != self.dbs.own);
        if let (Some(db), Some(_)) = (ipinfo_db, &anchor) {
            // `--layout kalipso`'s `IPsInfo` in the database the layout marker names.
            let (n, _): (u64, ()) = redis::pipe()
                .cmd("SELECT")
                .arg(db)
                .ignore()
                .cmd("UNLINK")
                .arg(keys::IPS_INFO)
                .cmd("SELECT")
                .arg(self.dbs.own)
                .query(&mut self.con)
                .map_err(|e| self.err(e))?;
            deleted += n;
        }
        for chunk in found.chunks(BATCH) {
            deleted += redis::cmd("UNLINK")
                .arg(chunk)
                .query::<u64>(&mut self.con)
                .map_err(|e| self.err(e))?;
        }
        Ok(deleted)
    }

    /// `--no-flows`: the stored frames of these windows' records.
    fn frames(&mut self, ids: &[WinId], grid: Grid) -> Result<WindowFrames, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH / 4) {
            let mut pipe = redis::pipe();
            for &WinId { ip, abs: g } in chunk {
                pipe.lrange(keys::records(&keys::window(ip, grid.n(g))), 0, -1);
            }
            let got: Vec<Vec<Vec<u8>>> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
            self.stats.round_trips += 1;
            out.extend(chunk.iter().copied().zip(got));
        }
        Ok(out)
    }

    /// Read what the profiler must merge before writing.
    pub fn load(&mut self, req: &LoadRequest, grid: Grid) -> Result<Loaded, StoreError> {
        let mut windows = Vec::with_capacity(req.windows.len());
        if self.no_flows {
            for (id, frames) in self.frames(&req.windows, grid)? {
                windows.push((id, compact_window(&frames)));
            }
        } else {
            for chunk in req.windows.chunks(BATCH / 4) {
                let mut pipe = redis::pipe();
                for &WinId { ip, abs: g } in chunk {
                    let w = keys::window(ip, grid.n(g));
                    pipe.hgetall(keys::flows(&w))
                        .hgetall(keys::copies(&w))
                        .hgetall(keys::alts(&w))
                        .hgetall(keys::altflows(&w));
                }
                type Map = Vec<(String, String)>;
                let got: Vec<Map> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
                self.stats.round_trips += 1;
                for (id, parts) in chunk.iter().zip(got.chunks(4)) {
                    let [flows, copies, alts, altflows] = parts else {
                        continue;
                    };
                    windows.push((*id, stored_window(flows, copies, alts, altflows)));
                }
            }
        }
        let logs = self.frames(&req.records_logs, grid)?;
        let mut profiles = Vec::with_capacity(req.profiles.len());
        for chunk in req.profiles.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for ip in chunk {
                pipe.hget(keys::profile(*ip), "Starttime");
            }
            let got: Vec<Option<String>> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
            self.stats.round_trips += 1;
            for (ip, start) in chunk.iter().zip(got) {
                profiles.push((*ip, start.and_then(|s| s.parse::<f64>().ok())));
            }
        }
        Ok((windows, profiles, logs))
    }

    /// Write one flush as one transaction (`MULTI`/`EXEC`): the data, our join state, the
    /// checkpoints of the lines it covers, and the flush counter `seq` — all or nothing.
    pub fn write(
        &mut self,
        writes: &Writes,
        grid: Grid,
        label: &str,
        checkpoints: &[(String, String)],
        seq: u64,
    ) -> Result<(), StoreError> {
        self.begin()?.commit(writes, grid, label, checkpoints, seq)
    }

    /// Open a flush transaction whose windows are sent in parts as they are rendered
    /// ([`Transaction::windows`]) and which [`Transaction::commit`] ends: Redis queues the
    /// parts, so the flush never sits whole in this process's memory, and stays atomic.
    pub fn begin(&mut self) -> Result<Transaction<'_>, StoreError> {
        let mut batch = Batch::new(&mut self.con, &mut self.encoder);
        let opened = batch.add(|c| {
            c.arg("MULTI");
        });
        let mut tx = Transaction {
            batch,
            stats: &mut self.stats,
            url: &self.url,
            layout: self.layout,
            no_flows: self.no_flows,
            dbs: self.dbs,
            new_flows: 0,
            open: true,
        };
        opened.map_err(|e| tx.fail(e))?;
        Ok(tx)
    }

    /// Redis is full and refused a flush that removes windows (`--retain`): remove them alone
    /// first, with what the flush's records say is past the retention (the script may run at
    /// `maxmemory`: it frees memory), so that the flush can then fit. The bound is stored
    /// ([`keys::RETAINED_FROM`]): a restart before the flush commits holds to it, and drops
    /// records of the removed windows as the flush would have. Returns the windows removed.
    pub fn make_room(&mut self, grid: Grid, expire_below: i64) -> Result<u64, StoreError> {
        let script = format!("#!lua flags=allow-oom\n{}", &*RETAIN);
        redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .arg(grid.first)
            .arg(expire_below)
            .arg(float_repr(grid.width))
            .arg(self.dbs.ipinfo)
            .arg(self.dbs.own)
            .query(&mut self.con)
            .map_err(|e| self.err(e))
    }

    /// Whether the database keeps retention's index ([`keys::RETENTION_INDEXED`]), and
    /// whether a run with or without `retain` may go on with it: `--retain` on a database
    /// that has windows but no index would never remove them, and could remove a profile
    /// whose other windows it does not know. Returns whether to keep the index.
    pub fn retention_index(&mut self, retain: bool, has_history: bool) -> Result<bool, StoreError> {
        let indexed: Option<String> = redis::cmd("GET")
            .arg(keys::RETENTION_INDEXED)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let indexed = indexed.is_some();
        if retain && has_history && !indexed {
            return Err(StoreError::Conflict(
                "this database was built without --retain: its windows are not indexed for removal. Use --reset (or another database) to keep it with --retain".into(),
            ));
        }
        Ok(indexed || retain)
    }

    /// Redis' memory: `used_memory` and `maxmemory_policy` (`INFO memory`).
    pub fn memory(&mut self) -> Result<Memory, StoreError> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        Ok(Memory {
            used: field("used_memory").and_then(|v| v.parse().ok()),
            max: field("maxmemory").and_then(|v| v.parse().ok()),
            policy: field("maxmemory_policy"),
        })
    }

    /// Refuse a Redis that may evict keys without a TTL (`allkeys-*`): it could evict our
    /// checkpoints or join state and break exactly-once without a word.
    pub fn check_memory_policy(&mut self) -> Result<(), StoreError> {
        let m = match self.memory() {
            Ok(m) => m,
            Err(e) => {
                // An ACL user without INFO (`-@dangerous`): say so, and go on.
                tracing::warn!(
                    "cannot check Redis' maxmemory-policy ({e}); make sure it is noeviction or volatile-*"
                );
                return Ok(());
            }
        };
        match m.policy.as_deref() {
            Some(p) if p.starts_with("allkeys-") => Err(StoreError::Conflict(format!(
                "Redis at {} has maxmemory-policy {p}: it may evict this tool's checkpoints and lose or double lines. Set `maxmemory-policy noeviction` (or a volatile-* policy) in redis.conf or with CONFIG SET",
                self.url
            ))),
            _ => Ok(()),
        }
    }

    /// The detected windows (`BlockedProfTW`): how many, and the `top` of those among the
    /// first `read` (by name; the summary reads [`DETECTIONS_READ`]) with the most evidence,
    /// each with its total (Σ threat level × confidence) and its weightiest description.
    pub fn detections(&mut self, top: usize, read: usize) -> Result<Detections, StoreError> {
        let mut names: Vec<String> = match self.layout {
            Layout::Kalipso2020 => redis::cmd("SMEMBERS")
                .arg(keys::BLOCKED_TW)
                .query(&mut self.con)
                .map_err(|e| self.err(e))?,
            // `profile_<ip>` → `["timewindowN", …]`
            Layout::Kalipso => {
                let fields: Vec<(String, String)> = redis::cmd("HGETALL")
                    .arg(keys::BLOCKED_TW)
                    .query(&mut self.con)
                    .map_err(|e| self.err(e))?;
                fields
                    .into_iter()
                    .flat_map(|(profile, tws)| {
                        serde_json::from_str::<Vec<String>>(&tws)
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |tw| format!("{profile}_{tw}"))
                    })
                    .collect()
            }
        };
        names.sort();
        let count = names.len() as u64;
        names.truncate(read);
        let mut pipe = redis::pipe();
        for n in &names {
            pipe.cmd("HGET").arg(n).arg("Evidence");
        }
        let values: Vec<Option<String>> = if names.is_empty() {
            Vec::new()
        } else {
            pipe.query(&mut self.con).map_err(|e| self.err(e))?
        };
        let mut windows = Vec::new();
        for (name, value) in names.into_iter().zip(values) {
            // Written by us or by Slips' modules: `{"key": [confidence, threat, "text"]}`;
            // the current Kalipso's values are JSON strings of
            // `{…, "description"}`, whose totals are not written (counted 50 each).
            let Some(map) = value.and_then(|v| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&v).ok()
            }) else {
                continue;
            };
            let mut total = 0.0;
            let mut best: Option<(f64, String)> = None;
            for v in map.values() {
                let inner = v
                    .as_str()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
                let (score, text) = match &inner {
                    Some(o) => (
                        50.0,
                        o.get("description").and_then(|d| d.as_str()).unwrap_or(""),
                    ),
                    None => (
                        v.get(0).and_then(|c| c.as_f64()).unwrap_or(0.0)
                            * v.get(1).and_then(|t| t.as_f64()).unwrap_or(0.0),
                        v.get(2).and_then(|d| d.as_str()).unwrap_or(""),
                    ),
                };
                let text = text.to_string();
                total += score;
                if best.as_ref().is_none_or(|(b, _)| score > *b) {
                    best = Some((score, text));
                }
            }
            windows.push((name, total, best.map(|b| b.1).unwrap_or_default()));
        }
        windows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        windows.truncate(top);
        Ok(Detections {
            count,
            top: windows,
        })
    }

    /// The number of flushes committed so far (0 for a new database).
    pub fn flush_seq(&mut self) -> Result<u64, StoreError> {
        let v: Option<u64> = redis::cmd("GET")
            .arg(keys::FLUSH_SEQ)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        Ok(v.unwrap_or(0))
    }

    /// Every stored checkpoint: file identity key → checkpoint JSON.
    pub fn checkpoints(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        redis::cmd("HGETALL")
            .arg(keys::CHECKPOINTS)
            .query(&mut self.con)
            .map_err(|e| self.err(e))
    }

    /// What a previous run persisted besides the layout (join state, waiting timelines,
    /// watermarks).
    pub fn persisted_state(&mut self) -> Result<PersistedState, StoreError> {
        type Pairs = Vec<(String, String)>;
        type Read = (Pairs, Pairs, Vec<String>, Pairs, Option<String>);
        let (joinable, pending, waiting, marks, retained): Read = redis::pipe()
            .hgetall(keys::JOINABLE)
            .hgetall(keys::PENDING)
            .smembers(keys::WINDOWS_WAITING)
            .hgetall(keys::WATERMARKS)
            .get(keys::RETAINED_FROM)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let retained_from = retained
            .map(|v| {
                v.parse()
                    .map_err(|_| unreadable(keys::RETAINED_FROM, &v, "not a window number"))
            })
            .transpose()?;
        let timeline_waiting = waiting
            .iter()
            .map(|m| {
                m.rsplit_once('|')
                    .and_then(|(ip, g)| Some(WinId::new(ip.parse().ok()?, g.parse().ok()?)))
                    .ok_or_else(|| unreadable(keys::WINDOWS_WAITING, m, "not <address>|<window>"))
            })
            .collect::<Result<_, _>>()?;
        let watermarks = marks
            .iter()
            .map(|(k, v)| {
                LogKind::from_path(k)
                    .zip(v.parse().ok())
                    .ok_or_else(|| unreadable(keys::WATERMARKS, k, "not <log kind> → <time>"))
            })
            .collect::<Result<_, _>>()?;
        Ok(PersistedState {
            joinable,
            pending,
            timeline_waiting,
            watermarks,
            retained_from,
        })
    }
}

/// A stored value of our own state that this build cannot read: stop, and say how to rebuild
/// (never continue without it: the joins or windows it describes would be lost or doubled).
fn unreadable(key: &str, entry: &str, reason: &str) -> StoreError {
    StoreError::Conflict(format!(
        "the stored state {entry:?} in {key} cannot be read ({reason}); run once with --reset to rebuild this tool's keys from the logs"
    ))
}

/// Refuse our own state in a format this build does not know (missing: written before the
/// format key existed, which is format 1).
fn check_state_format(stored: Option<&str>) -> Result<(), StoreError> {
    let Some(text) = stored else {
        return Ok(());
    };
    match text.trim().parse::<u32>() {
        Ok(v) if v == keys::STATE_FORMAT_VERSION => Ok(()),
        Ok(v) => Err(StoreError::Conflict(format!(
            "this database's kalipso-ingest state is format {v} ({}); this build reads format {}. Use the build that wrote it, another database, or --reset",
            keys::STATE_FORMAT,
            keys::STATE_FORMAT_VERSION
        ))),
        Err(_) => Err(unreadable(keys::STATE_FORMAT, text, "not a format number")),
    }
}

/// A flush transaction being sent ([`RedisStore::begin`]). Dropped without
/// [`Transaction::commit`], it is discarded: nothing of it reaches the database.
pub struct Transaction<'a> {
    batch: Batch<'a>,
    stats: &'a mut WriteStats,
    url: &'a str,
    layout: Layout,
    no_flows: bool,
    dbs: Dbs,
    new_flows: usize,
    open: bool,
}

impl Transaction<'_> {
    /// Queue these windows' writes.
    pub fn windows(
        &mut self,
        windows: &[(WinId, WindowWrite)],
        grid: Grid,
    ) -> Result<(), StoreError> {
        let mut marks = Marks::default();
        for (id, w) in windows {
            write_window(&mut self.batch, &mut marks, id, w, grid, self.layout)
                .map_err(|e| self.fail(e))?;
            // `labels` counts `_flows` entries: none with --no-flows.
            if !self.no_flows {
                self.new_flows += w.new_flow_uids;
            }
        }
        marks.send(&mut self.batch).map_err(|e| self.fail(e))
    }

    /// Queue the rest of the flush (`writes`, its windows included), the checkpoints of the
    /// lines it covers and the flush counter `seq`, and commit it all (`EXEC`).
    pub fn commit(
        mut self,
        writes: &Writes,
        grid: Grid,
        label: &str,
        checkpoints: &[(String, String)],
        seq: u64,
    ) -> Result<(), StoreError> {
        self.windows(&writes.windows, grid)?;
        let result = (|| {
            write_profiles(&mut self.batch, writes, grid, self.dbs, self.layout)?;
            write_state(&mut self.batch, writes, label, self.new_flows)?;
            if let Some(r) = &writes.retention {
                write_retention(&mut self.batch, r, grid, self.dbs)?;
            }
            for chunk in checkpoints.chunks(256) {
                self.batch.add(|c| {
                    c.arg("HSET").arg(keys::CHECKPOINTS).arg(chunk);
                })?;
            }
            self.batch.add(|c| {
                c.arg("SET").arg(keys::FLUSH_SEQ).arg(seq);
            })?;
            self.batch.add(|c| {
                c.arg("EXEC");
            })?;
            self.batch.send()
        })();
        match result {
            Ok(()) => {
                self.open = false;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, source: redis::RedisError) -> StoreError {
        StoreError::Command {
            url: self.url.to_string(),
            source,
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.stats.commands += self.batch.commands;
        self.stats.round_trips += self.batch.round_trips;
        if self.open && self.batch.commands > self.batch.in_pipe as u64 {
            // Part of it reached Redis: drop what it queued (best effort: the connection may
            // be gone, and then so is the transaction).
            let _ = redis::cmd("DISCARD").exec(self.batch.con);
        }
    }
}

/// Commands of a flush encoded as they are queued, into a buffer kept from one flush to the
/// next (with the arguments of the command being built): a flush's bytes are copied once on
/// their way to the socket, with no per-command allocation.
#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    cmd: Command,
}

/// The command being built, encoded as RESP as its arguments come (`$<len>\r\n<bytes>\r\n`
/// each); its header, which needs their count, goes first when it is queued
/// ([`Command::queue`]). Any [`ToRedisArgs`] is an argument, as with redis-rs' `Cmd`, whose
/// encoding this is (without its per-argument offsets and small writes).
#[derive(Default)]
struct Command {
    args: Vec<u8>,
    count: usize,
}

impl Command {
    /// Add `arg` (one argument, or several: a slice, a tuple).
    fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Command {
        arg.write_redis_args(self);
        self
    }

    /// Append the command to `out` and start the next one.
    fn queue(&mut self, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        let count = n.format(self.count);
        out.reserve(1 + count.len() + 2 + self.args.len());
        out.push(b'*');
        out.extend_from_slice(count.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.args);
        self.args.clear();
        self.count = 0;
    }
}

impl RedisWrite for Command {
    fn write_arg(&mut self, arg: &[u8]) {
        let mut n = itoa::Buffer::new();
        let len = n.format(arg.len());
        self.args.reserve(1 + len.len() + 2 + arg.len() + 2);
        self.args.push(b'$');
        self.args.extend_from_slice(len.as_bytes());
        self.args.extend_from_slice(b"\r\n");
        self.args.extend_from_slice(arg);
        self.args.extend_from_slice(b"\r\n");
        self.count += 1;
    }

    fn writer_for_next_arg(&mut self) -> impl std::io::Write + '_ {
        /// The argument's bytes, gathered until it is complete (its length comes first).
        struct NextArg<'a> {
            cmd: &'a mut Command,
            buf: Vec<u8>,
        }
        impl std::io::Write for NextArg<'_> {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.buf.extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl Drop for NextArg<'_> {
            fn drop(&mut self) {
                let buf = std::mem::take(&mut self.buf);
                self.cmd.write_arg(&buf);
            }
        }
        NextArg {
            cmd: self,
            buf: Vec::new(),
        }
    }
}

/// Room for a full batch and the command that fills it.
const ENCODER_ROOM: usize = BATCH_BYTES + (BATCH_BYTES >> 2);

/// Queued commands, sent as soon as they are [`BATCH`] or [`BATCH_BYTES`] of payload, so
/// memory stays bounded by one batch whatever the size of the flush.
struct Batch<'a> {
    con: &'a mut Connection,
    enc: &'a mut Encoder,
    in_pipe: usize,
    /// Payload bytes queued (values and lines; small commands count 0).
    bytes: usize,
    commands: u64,
    round_trips: u64,
}

impl<'a> Batch<'a> {
    fn new(con: &'a mut Connection, enc: &'a mut Encoder) -> Batch<'a> {
        enc.out.clear();
        // Allocated by the first flush (a connection that never writes has none).
        enc.out.reserve(ENCODER_ROOM);
        Batch {
            con,
            enc,
            in_pipe: 0,
            bytes: 0,
            commands: 0,
            round_trips: 0,
        }
    }

    fn add(&mut self, f: impl FnOnce(&mut Command)) -> redis::RedisResult<()> {
        self.add_sized(0, f)
    }

    /// Queue the command `f` builds (its name, then its arguments), carrying about `bytes` of
    /// payload; the batch is sent once it holds [`BATCH`] commands or [`BATCH_BYTES`] of
    /// payload, so a large flush never sits in memory twice.
    fn add_sized(&mut self, bytes: usize, f: impl FnOnce(&mut Command)) -> redis::RedisResult<()> {
        let cmd = &mut self.enc.cmd;
        f(cmd);
        cmd.queue(&mut self.enc.out);
        if bytes > BATCH_BYTES {
            // Do not keep an outsized command's buffer for the rest of the run.
            cmd.args = Vec::new();
        }
        self.in_pipe += 1;
        self.bytes += bytes;
        self.commands += 1;
        if self.in_pipe >= BATCH || self.bytes >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    /// Send what is queued and check every reply (a command refused inside `MULTI` makes
    /// `EXEC` fail too, but is reported here first).
    fn send(&mut self) -> redis::RedisResult<()> {
        if self.in_pipe > 0 {
            let count = std::mem::take(&mut self.in_pipe);
            self.bytes = 0;
            let replies = self.con.req_packed_commands(&self.enc.out, 0, count);
            self.enc.out.clear();
            if self.enc.out.capacity() > 4 * BATCH_BYTES {
                self.enc.out.shrink_to(ENCODER_ROOM);
            }
            self.round_trips += 1;
            for reply in replies? {
                match reply {
                    redis::Value::ServerError(e) => return Err(e.into()),
                    // EXEC's replies: a command that failed while the transaction ran (a
                    // wrong type, a script error) does not undo the others, but the flush
                    // must not count as committed.
                    redis::Value::Array(items) => {
                        if let Some(redis::Value::ServerError(e)) = items
                            .into_iter()
                            .find(|v| matches!(v, redis::Value::ServerError(_)))
                        {
                            return Err(e.into());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Lua: `key(v)` parses a `<ts> <uid>` value, `earlier(a, b)` orders two of them (time, then
/// uid): the order that makes a merged value independent of the records' arrival.
macro_rules! lua_earliest {
    () => {
        r#"
local function key(v)
  local ts, uid = string.match(v, '^(%S+) (.*)$')
  return tonumber(ts) or 0, uid or ''
end
local function earlier(a, b)
  local ta, ua = key(a)
  local tb, ub = key(b)
  if ta ~= tb then return ta < tb end
  return ua < ub
end
"#
    };
}

/// Lua: `str(s)`, a string as Python's `json.dumps` writes it (`ensure_ascii`).
macro_rules! lua_json_str {
    () => {
        r#"
local function str(s)
  local out = {}
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local cp, len = c, 1
    if c >= 0xF0 and i + 3 <= n then
      cp = (c % 8) * 262144 + (string.byte(s, i + 1) % 64) * 4096 + (string.byte(s, i + 2) % 64) * 64 + string.byte(s, i + 3) % 64
      len = 4
    elseif c >= 0xE0 and i + 2 <= n then
      cp = (c % 16) * 4096 + (string.byte(s, i + 1) % 64) * 64 + string.byte(s, i + 2) % 64
      len = 3
    elseif c >= 0xC0 and i + 1 <= n then
      cp = (c % 32) * 64 + string.byte(s, i + 1) % 64
      len = 2
    end
    if cp == 34 then out[#out + 1] = '\\"'
    elseif cp == 92 then out[#out + 1] = '\\\\'
    elseif cp == 10 then out[#out + 1] = '\\n'
    elseif cp == 13 then out[#out + 1] = '\\r'
    elseif cp == 9 then out[#out + 1] = '\\t'
    elseif cp == 8 then out[#out + 1] = '\\b'
    elseif cp == 12 then out[#out + 1] = '\\f'
    elseif cp < 32 or (cp > 126 and cp < 65536) then out[#out + 1] = string.format('\\u%04x', cp)
    elseif cp >= 65536 then
      local v = cp - 65536
      out[#out + 1] = string.format('\\u%04x\\u%04x', 55296 + math.floor(v / 1024), 56320 + v % 1024)
    else out[#out + 1] = string.char(cp) end
    i = i + len
  end
  return '"' .. table.concat(out) .. '"'
end
"#
    };
}

/// Lua: values kept as their earliest (`keep_earliest`) or latest (`keep_latest`) record over
/// the windows kept, in an address's hash `own`, and, with retention's index, per window in
/// `wkey`; `drop_windows(own, wkey_of, gs)` removes windows `gs` (`g` → true) — their hashes,
/// their `t|g` fields — and recomputes from the windows left each value that came from one
/// of them (`last` as the latest, every other field as the earliest). Needs
/// [`lua_earliest`].
macro_rules! lua_windowed {
    () => {
        r#"
local function keep(own, wkey, f, at, later)
  local function better(a, b)
    if later then return earlier(b, a) end
    return earlier(a, b)
  end
  if wkey then
    local w = redis.call('HGET', wkey, f)
    if w and not better(at, w) then return false end
    redis.call('HSET', wkey, f, at)
  end
  local was = redis.call('HGET', own, f)
  if was and not better(at, was) then return false end
  redis.call('HSET', own, f, at)
  return true
end
local function keep_earliest(own, wkey, f, at) return keep(own, wkey, f, at, false) end
local function keep_latest(own, wkey, f, at) return keep(own, wkey, f, at, true) end
local function drop_windows(own, wkey_of, gs)
  local all = redis.call('HGETALL', own)
  local cur, left = {}, {}
  for i = 1, #all, 2 do
    local g = string.match(all[i], '^t|(-?%d+)$')
    if g then
      if not gs[g] then left[#left + 1] = g end
    else
      cur[all[i]] = all[i + 1]
    end
  end
  -- A record's window is the one of its time: the earliest value left is in the lowest
  -- window holding the field, the latest in the highest.
  table.sort(left, function(a, b) return tonumber(a) < tonumber(b) end)
  for g, _ in pairs(gs) do
    redis.call('HDEL', own, 't|' .. g)
    local wk = wkey_of(g)
    local e = redis.call('HGETALL', wk)
    redis.call('DEL', wk)
    for i = 1, #e, 2 do
      local f, v = e[i], e[i + 1]
      if cur[f] == v then
        local best = nil
        local from, to, step = 1, #left, 1
        if f == 'last' then from, to, step = #left, 1, -1 end
        for j = from, to, step do
          best = redis.call('HGET', wkey_of(left[j]), f)
          if best then break end
        end
        if best then redis.call('HSET', own, f, best) else redis.call('HDEL', own, f) end
        cur[f] = best
      end
    end
  end
end
"#
    };
}

/// Lua: `dns_value(ip, first)` rebuilds `DNSresolution`'s value of an address from
/// `kalipso-ingest:dns:<address>` — `d|<name>`, `r|<asker>`: each name's and asker's earliest
/// record over the windows kept; `t|g`: the earliest record in absolute window g; `last`: the
/// latest record — or removes the entry when no record is left. Keeps `body` (the value after
/// `ts`/`uid`) for answers that change only the latest record (`dns_prefix`). Shared by
/// [`DNS_RESOLUTION`] and [`RETAIN`]; needs [`lua_earliest`] and [`lua_json_str`].
macro_rules! lua_dns_value {
    () => {
        r#"
local function dns_prefix(last)
  local ts, uid = string.match(last, '^(%S+) (.*)$')
  return '"ts": ' .. (ts or '0') .. ', "uid": ' .. str(uid or '')
end
local function dns_value(ip, first)
  local own = 'kalipso-ingest:dns:' .. ip
  local all = redis.call('HGETALL', own)
  local lists = {d = {}, r = {}, t = {}}
  local last = nil
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if f == 'last' then last = v
    else
      local kind, name = string.match(f, '^([drt])|(.*)$')
      if kind == 't' then
        local g = tonumber(name)
        name = g and ('timewindow' .. string.format('%d', g - first + 1))
      end
      if kind and name then
        -- Parsed once here, not in every comparison of the sort.
        local t, u = key(v)
        table.insert(lists[kind], {name, t, u})
      end
    end
  end
  if not last then
    redis.call('DEL', own)
    redis.call('HDEL', 'DNSresolution', ip)
    return
  end
  local parts, names = {}, {}
  for _, kind in ipairs({'d', 'r', 't'}) do
    local l = lists[kind]
    table.sort(l, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      if a[3] ~= b[3] then return a[3] < b[3] end
      return a[1] < b[1]
    end)
    local items = {}
    for j, e in ipairs(l) do items[j] = str(e[1]) end
    if kind == 'd' then names = items end
    local label = ({d = 'domains', r = 'resolved-by', t = 'timewindows'})[kind]
    parts[#parts + 1] = '"' .. label .. '": [' .. table.concat(items, ', ') .. ']'
  end
  for j, n in ipairs(names) do
    parts[#parts + 1] = '"' .. (j - 1) .. '": ' .. n
  end
  parts[#parts + 1] = '"length": ' .. #names
  local body = table.concat(parts, ', ')
  redis.call('HSET', own, 'body', body)
  redis.call('HSET', 'DNSresolution', ip, '{' .. dns_prefix(last) .. ', ' .. body .. '}')
end
"#
    };
}

/// `--layout kalipso`'s `DNSresolution`: ARGV[1] the absolute number of `timewindow1`,
/// ARGV[2] `1` with retention's index; then groups of (address, name, ts `repr`, uid, asker,
/// absolute window). Each address keeps, in `kalipso-ingest:dns:<address>`
/// ([`lua_dns_value`]), the earliest record (`<ts> <uid>`) of each name, asker and window and
/// its latest record — and, with the index, the same per window in
/// `kalipso-ingest:dnsw:<g>:<address>` ([`lua_windowed`]), so that retention can remove a
/// window's answers — so that its value is a function of the records whatever their order:
/// names, askers and windows in the order of their first record, `ts`/`uid` of the latest;
/// plus `"0".."N-1"` and `"length"`, the names again, the one shape both of the viewer's tuple
/// panels read without crashing (`docs/kalipso-2026-layout-facts.md` §6). The value is rebuilt
/// when a name, asker or window is new or has an earlier record; an answer that only moves the
/// latest record rewrites it from the kept `body`.
const DNS_RESOLUTION: &str = concat!(
    lua_earliest!(),
    lua_json_str!(),
    lua_windowed!(),
    lua_dns_value!(),
    r#"
local first, index = tonumber(ARGV[1]), ARGV[2] == '1'
local full, moved = {}, {}
for i = 3, #ARGV, 6 do
  local ip, at, g = ARGV[i], ARGV[i + 2] .. ' ' .. ARGV[i + 3], ARGV[i + 5]
  local own = 'kalipso-ingest:dns:' .. ip
  local wk = nil
  if index then wk = 'kalipso-ingest:dnsw:' .. g .. ':' .. ip end
  if keep_earliest(own, wk, 'd|' .. ARGV[i + 1], at) then full[ip] = true end
  if keep_earliest(own, wk, 'r|' .. ARGV[i + 4], at) then full[ip] = true end
  local tf = 't|' .. g
  local was = redis.call('HGET', own, tf)
  if (not was) or earlier(at, was) then
    redis.call('HSET', own, tf, at)
    full[ip] = true
    if index and not was then
      redis.call('ZADD', 'kalipso-ingest:dns-windows', g, ip .. '|' .. g)
    end
  end
  if keep_latest(own, wk, 'last', at) then moved[ip] = true end
end
for ip, _ in pairs(moved) do
  if not full[ip] then
    local own = 'kalipso-ingest:dns:' .. ip
    local kept = redis.call('HMGET', own, 'body', 'last')
    if kept[1] and kept[2] then
      redis.call('HSET', 'DNSresolution', ip, '{' .. dns_prefix(kept[2]) .. ', ' .. kept[1] .. '}')
    else
      full[ip] = true
    end
  end
end
for ip, _ in pairs(full) do dns_value(ip, first) end
return 0
"#
);

/// Lua, `--layout kalipso`'s `IPsInfo` (shared by [`IPS_INFO_FACTS`] and [`RETAIN`]):
/// `ip_info(ip)` reads what is kept of an address into `{b, ext}`: the enrichment's value it
/// was registered with (`b`, from `kalipso-ingest:ipinfo-base`; `{}` when absent) and the keys
/// its facts add (`ext`), from `kalipso-ingest:ipinfo:<address>`: `s|<port>|<name>` an ssl
/// server name to the port, `p|<name>` a PTR answer, each its earliest record (`<ts> <uid>`)
/// over the windows kept (`t|g`: the windows holding facts, with the index); `reverse_dns` is
/// the earliest PTR name, `SNI` the server names in the order of their first record.
/// `ip_info_value(info)` is the entry they make. Needs [`lua_earliest`] and [`lua_json_str`].
macro_rules! lua_ip_info {
    () => {
        r#"
local function ip_info(ip)
  local own = 'kalipso-ingest:ipinfo:' .. ip
  local base = redis.call('HGET', 'kalipso-ingest:ipinfo-base', ip) or '{}'
  if redis.call('EXISTS', own) == 0 then return {b = base, ext = ''} end
  local all = redis.call('HGETALL', own)
  local sni, ptr = {}, nil
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    local t, u = key(v)
    local port, name = string.match(f, '^s|(%d+)|(.*)$')
    if port then
      sni[#sni + 1] = {t, u, tonumber(port), name}
    else
      local n = string.match(f, '^p|(.*)$')
      if n and ((not ptr) or t < ptr[1] or (t == ptr[1] and (u < ptr[2] or (u == ptr[2] and n < ptr[3])))) then
        ptr = {t, u, n}
      end
    end
  end
  table.sort(sni, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[4] < b[4]
  end)
  local parts = {}
  if ptr then parts[#parts + 1] = '"reverse_dns": ' .. str(ptr[3]) end
  if #sni > 0 then
    local items = {}
    for j, e in ipairs(sni) do
      items[j] = '{"server_name": ' .. str(e[4]) .. ', "dport": ' .. string.format('%d', e[3]) .. '}'
    end
    parts[#parts + 1] = '"SNI": [' .. table.concat(items, ', ') .. ']'
  end
  return {b = base, ext = table.concat(parts, ', ')}
end
local function ip_info_value(info)
  if info.ext == '' then return info.b end
  if info.b == '{}' then return '{' .. info.ext .. '}' end
  return string.sub(info.b, 1, -2) .. ', ' .. info.ext .. '}'
end
"#
    };
}

/// `--layout kalipso`'s `IPsInfo` entries: ARGV[1] the database of `IPsInfo`, ARGV[2] this
/// one, ARGV[3] `1` with retention's index, then groups of (op, address, its value from the
/// enrichment, name, port, `<ts> <uid>`, absolute window): op `R` registers the address (a
/// profile or a flow's peer: its entry is written where it is absent), `S` is an ssl record's
/// server name to the port, `P` a PTR answer for the address. Each address keeps
/// ([`lua_ip_info`]) each fact's earliest record — per window too with the index, in
/// `kalipso-ingest:ipinfow:<g>:<address>` ([`lua_windowed`]), so that retention can remove a
/// window's facts — and the first enrichment value that said something (not `{}`), as the
/// 2020 layout keeps it; its entry is a function of the records whatever their order: that
/// value followed by `"reverse_dns"` and `"SNI"` (`[{"server_name", "dport"}]`). An entry is
/// rewritten only while it is ours — absent (on registration), `{}`, or what was kept made of
/// it before this call — so an entry another program enriched is kept.
const IPS_INFO_FACTS: &str = concat!(
    lua_earliest!(),
    lua_json_str!(),
    lua_windowed!(),
    lua_ip_info!(),
    r#"
local ipinfo_db, own_db, index = ARGV[1], ARGV[2], ARGV[3] == '1'
local seen, order = {}, {}
for i = 4, #ARGV, 7 do
  local op, ip = ARGV[i], ARGV[i + 1]
  local a = seen[ip]
  if not a then
    a = {reg = false, before = ip_info(ip)}
    seen[ip] = a
    order[#order + 1] = ip
  end
  if op == 'R' then
    a.reg = true
    if ARGV[i + 2] ~= '{}' then redis.call('HSETNX', 'kalipso-ingest:ipinfo-base', ip, ARGV[i + 2]) end
  else
    local own, g = 'kalipso-ingest:ipinfo:' .. ip, ARGV[i + 6]
    local wk = nil
    if index then wk = 'kalipso-ingest:ipinfow:' .. g .. ':' .. ip end
    local f
    if op == 'S' then f = 's|' .. ARGV[i + 4] .. '|' .. ARGV[i + 3] else f = 'p|' .. ARGV[i + 3] end
    keep_earliest(own, wk, f, ARGV[i + 5])
    if index and redis.call('HSETNX', own, 't|' .. g, '1') == 1 then
      redis.call('ZADD', 'kalipso-ingest:ipinfo-windows', g, ip .. '|' .. g)
    end
  end
end
for _, ip in ipairs(order) do
  local a = seen[ip]
  a.after = ip_info(ip)
end
if ipinfo_db ~= own_db then redis.call('SELECT', ipinfo_db) end
for _, ip in ipairs(order) do
  local a = seen[ip]
  local v = redis.call('HGET', 'IPsInfo', ip)
  local new = ip_info_value(a.after)
  if (a.reg and not v) or v == '{}' or (v and v == ip_info_value(a.before)) then
    if v ~= new then redis.call('HSET', 'IPsInfo', ip, new) end
  end
end
if ipinfo_db ~= own_db then redis.call('SELECT', own_db) end
return 0
"#
);

/// A fresh database's anchor (`ARGV[1]` = `ARGV[2]`, `SET NX`) and, only if it was set, its
/// markers (the key, value pairs after): 1 if set, 0 if another writer's anchor was there.
const INIT_MARKERS: &str = r#"
if not redis.call('SET', ARGV[1], ARGV[2], 'NX') then return 0 end
for i = 3, #ARGV, 2 do redis.call('SET', ARGV[i], ARGV[i + 1]) end
return 1
"#;

/// What a database says of itself: anchor, width, state format, layout, `IPsInfo` database,
/// records form, the form of `--layout kalipso`'s own state.
type StoredMarkers = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The value of [`keys::RECORDS`] on a `--no-flows` database.
const COMPACT: &str = "compact";

/// The URL's database and the one `IPsInfo` goes to.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dbs {
    own: i64,
    ipinfo: i64,
}

/// The current Kalipso's timeline: a ZSET, each entry travelling as `<score> <member>`
/// (`timeline::entries::entry`). Late entries need no offsets (the score places them); a
/// reloaded window's timeline is replaced inside the transaction.
fn write_timeline_entries(
    batch: &mut Batch<'_>,
    k: &str,
    w: &WindowWrite,
) -> redis::RedisResult<()> {
    let (replace, lines): (bool, Vec<&String>) = match &w.timeline {
        Some(TimelineWrite::Replace(l)) => (true, l.iter().collect()),
        Some(TimelineWrite::Append(l)) => (false, l.iter().collect()),
        None => (false, Vec::new()),
    };
    if replace {
        batch.add(|c| {
            c.arg("DEL").arg(k);
        })?;
    }
    let entries: Vec<(&str, &str)> = w
        .timeline_inserts
        .iter()
        .flat_map(|(_, l)| l)
        .chain(lines)
        .filter_map(|e| e.split_once(' '))
        .collect();
    for chunk in entries.chunks(1000) {
        let bytes = chunk.iter().map(|(s, m)| s.len() + m.len()).sum();
        batch.add_sized(bytes, |c| {
            // Identical members are one entry (as in Slips): the earliest time, in any order.
            c.arg("ZADD").arg(k).arg("LT");
            for (score, member) in chunk {
                c.arg(*score).arg(*member);
            }
        })?;
    }
    Ok(())
}

/// The current Kalipso's `BlockedProfTW`: HASH `profile_<ip>` → JSON list of its detected
/// windows (`["timewindow2", "timewindow10"]`, by number). ARGV: the profile, the window,
/// 1 to add it or 0 to remove it; the field goes when its list is empty.
/// Lua: `set_tw(profile, tw, on)` adds (`on`) or removes a window in the profile's list of
/// the current Kalipso's `BlockedProfTW` (`["timewindow2", "timewindow10"]`, by number; the
/// field goes when the list is empty). Shared by [`BLOCK_TW`] and [`RETAIN`].
const SET_TW_LUA: &str = r#"
local function set_tw(profile, tw, on)
  local v = redis.call('HGET', 'BlockedProfTW', profile)
  local tws = {}
  if v then
    local ok, list = pcall(cjson.decode, v)
    if ok and type(list) == 'table' then
      for _, t in ipairs(list) do
        if t ~= tw then tws[#tws + 1] = t end
      end
    end
  end
  if on then tws[#tws + 1] = tw end
  local function num(t) return tonumber(string.match(t, '(-?%d+)$')) or 0 end
  table.sort(tws, function(a, b) return num(a) < num(b) end)
  if #tws == 0 then
    redis.call('HDEL', 'BlockedProfTW', profile)
  else
    local parts = {}
    for i, t in ipairs(tws) do parts[i] = '"' .. t .. '"' end
    redis.call('HSET', 'BlockedProfTW', profile, '[' .. table.concat(parts, ', ') .. ']')
  end
  return #tws
end
"#;

/// The current Kalipso's `BlockedProfTW`: HASH `profile_<ip>` → JSON list of its detected
/// windows. ARGV: the profile, the window, 1 to add it or 0 to remove it.
static BLOCK_TW: LazyLock<String> =
    LazyLock::new(|| format!("{SET_TW_LUA}return set_tw(ARGV[1], ARGV[2], ARGV[3] == '1')\n"));

/// How many detected windows [`RedisStore::detections`] reads the evidence of.
pub const DETECTIONS_READ: usize = 1000;

/// The detected windows of a database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detections {
    /// How many windows are in `BlockedProfTW`.
    pub count: u64,
    /// The ones with the most evidence: window, Σ threat level × confidence, the description
    /// of its weightiest entry.
    pub top: Vec<(String, f64, String)>,
}

/// `HSETNX IPsInfo <ip> {}` for every address in `ARGV` (one command, not one per address).
const REGISTER_IPS: &str = r#"
for i = 1, #ARGV do
  redis.call('HSETNX', 'IPsInfo', ARGV[i], '{}')
end
return 0
"#;

/// `IPsInfo` entries with what we know of an address (ARGV: address, value pairs), written
/// where the entry is absent or still `{}`: an entry another program enriched is kept.
const FILL_IPS_INFO: &str = r#"
for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', 'IPsInfo', ARGV[i])
  if (not v) or v == '{}' then
    redis.call('HSET', 'IPsInfo', ARGV[i], ARGV[i + 1])
  end
end
return 0
"#;

/// Inserts groups of lines into a list at offsets counted in the list as it was (ascending):
/// `KEYS[1]` the list, `ARGV`: the number of groups, then per group its offset, its line
/// count and its lines. The list is rewritten from the first offset on, inside the flush's
/// transaction.
const INSERT_LINES: &str = r#"
local key = KEYS[1]
local groups, i = {}, 2
for _ = 1, tonumber(ARGV[1]) do
  local off, cnt = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  groups[#groups + 1] = {off, i + 2, cnt}
  i = i + 2 + cnt
end
local start = groups[1][1]
local tail = redis.call('LRANGE', key, start, -1)
if start == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, 0, start - 1) end
local out, t = {}, 1
for _, g in ipairs(groups) do
  while t <= #tail and start + t - 1 < g[1] do out[#out + 1] = tail[t]; t = t + 1 end
  for j = g[2], g[2] + g[3] - 1 do out[#out + 1] = ARGV[j] end
end
while t <= #tail do out[#out + 1] = tail[t]; t = t + 1 end
for s = 1, #out, 1000 do
  redis.call('RPUSH', key, unpack(out, s, math.min(s + 999, #out)))
end
return #out
"#;

/// Retention (`--retain`), server-side and last in the flush's transaction, so a crash
/// leaves no half-removed window: every window numbered below `ARGV[2]` in the index goes
/// with its hash, `_flows`, `_altflows`, `_timeline`, our copies, alts and compact records, its `twsprofile`
/// and `ModifiedTWForLogs` members, its waiting mark and its `labels` counts; addresses whose
/// latest window went lose their `IPsInfo` entry (in database `ARGV[4]`; `ARGV[5]` is the
/// connection's); with `--layout kalipso`, the dns answers and `IPsInfo` facts of the
/// removed windows go (`kalipso-ingest:dns-windows`, `kalipso-ingest:ipinfo-windows`) and
/// what is left is rebuilt; then each profile in `ARGV[6..]` (touched
/// by the flush or by the removal) gets `Starttime` = its earliest record time over the
/// windows it keeps, or, keeping none, leaves `profiles` with its hash. The bound applied is
/// the greater of `ARGV[2]` and the stored [`keys::RETAINED_FROM`], which it raises.
const RETAIN_BODY: &str = r#"
local first = tonumber(ARGV[1])
-- Never below a bound already applied (a removal made ahead of its commit, Redis being full);
-- none without --retain (ARGV[2] is then the least integer): the index is kept, nothing goes.
local below = tonumber(ARGV[2])
local limit = nil
if below > -1e15 then
  local kept = tonumber(redis.call('GET', 'kalipso-ingest:retained-from') or '')
  if kept and kept > below then below = kept end
  below = string.format('%d', below)
  redis.call('SET', 'kalipso-ingest:retained-from', below)
  limit = '(' .. below
end
local function repr(x)
  if x == math.floor(x) and math.abs(x) < 1e16 then return string.format('%.1f', x) end
  for p = 1, 17 do
    local s = string.format('%.' .. p .. 'g', x)
    if tonumber(s) == x then return s end
  end
  return string.format('%.17g', x)
end
local width = ARGV[3]
-- `IPsInfo` may live in another database of the server (ARGV[4]; ARGV[5] is this one).
local ipinfo_db, own_db = ARGV[4], ARGV[5]
local settle = {}
for i = 6, #ARGV do settle[ARGV[i]] = true end
local gone, ips = {}, {}
if limit then
  gone = redis.call('ZRANGEBYSCORE', 'kalipso-ingest:windows', '-inf', limit)
  ips = redis.call('ZRANGEBYSCORE', 'kalipso-ingest:ip-last', '-inf', limit)
end
for _, m in ipairs(gone) do
  local ip, g = string.match(m, '^(.*)|(-?%d+)$')
  local tw = 'timewindow' .. (tonumber(g) - first + 1)
  local w = 'profile_' .. ip .. '_' .. tw
  for _, f in ipairs(redis.call('HVALS', w .. '_flows')) do
    local ok, v = pcall(cjson.decode, f)
    if ok and type(v) == 'table' and type(v.label) == 'string' then
      if tonumber(redis.call('ZINCRBY', 'labels', -1, v.label)) <= 0 then
        redis.call('ZREM', 'labels', v.label)
      end
    end
  end
  redis.call('DEL', w, w .. '_flows', w .. '_altflows', w .. '_timeline',
    'kalipso-ingest:copies:' .. w, 'kalipso-ingest:alts:' .. w, 'kalipso-ingest:recs:' .. w)
  redis.call('ZREM', 'twsprofile_' .. ip, tw)
  redis.call('SREM', 'ModifiedTWForLogs', w)
  local blocked = redis.call('TYPE', 'BlockedProfTW')['ok']
  if blocked == 'set' then
    redis.call('SREM', 'BlockedProfTW', w)
  elseif blocked == 'hash' then
    set_tw('profile_' .. ip, tw, false)
  end
  redis.call('HDEL', 'evidenceprofile_' .. ip, tw)
  redis.call('SREM', 'kalipso-ingest:windows-waiting', m)
  redis.call('ZREM', 'kalipso-ingest:first:' .. ip, g)
  redis.call('ZREM', 'kalipso-ingest:windows', m)
  settle[ip] = true
end
-- `--layout kalipso`: the dns answers and `IPsInfo` facts of the removed windows (each kept
-- with the window of its record), and what is left rebuilt.
if limit then
  local function below_bound(index_key)
    local byip = {}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', index_key, '-inf', limit)) do
      local ip, g = string.match(m, '^(.*)|(-?%d+)$')
      if ip then
        byip[ip] = byip[ip] or {}
        byip[ip][g] = true
      end
      redis.call('ZREM', index_key, m)
    end
    return byip
  end
  for ip, gs in pairs(below_bound('kalipso-ingest:dns-windows')) do
    drop_windows('kalipso-ingest:dns:' .. ip, function(g) return 'kalipso-ingest:dnsw:' .. g .. ':' .. ip end, gs)
    dns_value(ip, first)
  end
  local redo = {}
  for ip, gs in pairs(below_bound('kalipso-ingest:ipinfo-windows')) do
    local before = ip_info(ip)
    drop_windows('kalipso-ingest:ipinfo:' .. ip, function(g) return 'kalipso-ingest:ipinfow:' .. g .. ':' .. ip end, gs)
    redo[#redo + 1] = {ip, before, ip_info(ip)}
  end
  if #redo > 0 then
    if ipinfo_db ~= own_db then redis.call('SELECT', ipinfo_db) end
    for _, r in ipairs(redo) do
      local v = redis.call('HGET', 'IPsInfo', r[1])
      if v and (v == '{}' or v == ip_info_value(r[2])) then
        local new = ip_info_value(r[3])
        if v ~= new then redis.call('HSET', 'IPsInfo', r[1], new) end
      end
    end
    if ipinfo_db ~= own_db then redis.call('SELECT', own_db) end
  end
end
for _, ip in ipairs(ips) do
  redis.call('ZREM', 'kalipso-ingest:ip-last', ip)
  -- Registered again, it takes the enrichment's value of then (its facts go by window).
  redis.call('HDEL', 'kalipso-ingest:ipinfo-base', ip)
end
if #ips > 0 then
  if ipinfo_db ~= own_db then redis.call('SELECT', ipinfo_db) end
  for _, ip in ipairs(ips) do redis.call('HDEL', 'IPsInfo', ip) end
  if ipinfo_db ~= own_db then redis.call('SELECT', own_db) end
end
for ip, _ in pairs(settle) do
  local p = 'profile_' .. ip
  local lo = redis.call('ZRANGE', 'kalipso-ingest:first:' .. ip, 0, 0, 'WITHSCORES')
  if #lo == 0 then
    redis.call('DEL', p, 'twsprofile_' .. ip, 'kalipso-ingest:first:' .. ip)
    redis.call('SREM', 'profiles', p)
  else
    redis.call('HSET', p, 'Starttime', repr(tonumber(lo[2])), 'duration', width)
    redis.call('SADD', 'profiles', p)
  end
end
return #gone
"#;

/// [`RETAIN_BODY`] with the functions it uses.
static RETAIN: LazyLock<String> = LazyLock::new(|| {
    let kalipso = concat!(
        lua_earliest!(),
        lua_json_str!(),
        lua_windowed!(),
        lua_dns_value!(),
        lua_ip_info!()
    );
    format!("{kalipso}{SET_TW_LUA}{RETAIN_BODY}")
});

/// Queue retention's index entries for what the flush touched, then the removal
/// ([`RETAIN`]).
fn write_retention(
    batch: &mut Batch<'_>,
    r: &RetentionWrite,
    grid: Grid,
    dbs: Dbs,
) -> redis::RedisResult<()> {
    // The earliest record time per profile window (ZADD LT keeps the least of every flush's).
    let mut at = 0;
    while at < r.touched.len() {
        let ip = r.touched[at].0.ip;
        let end = r.touched[at..]
            .iter()
            .position(|(id, _)| id.ip != ip)
            .map_or(r.touched.len(), |n| at + n);
        for chunk in r.touched[at..end].chunks(256) {
            batch.add(|c| {
                c.arg("ZADD").arg(keys::first_seen(ip)).arg("LT");
                for (id, t) in chunk {
                    c.arg(*t).arg(id.abs);
                }
            })?;
        }
        at = end;
    }
    for chunk in r.touched.chunks(256) {
        batch.add(|c| {
            c.arg("ZADD").arg(keys::WINDOWS_INDEX);
            for (id, _) in chunk {
                c.arg(id.abs).arg(keys::win_member(id.ip, id.abs));
            }
        })?;
    }
    for chunk in r.ips.chunks(256) {
        batch.add(|c| {
            c.arg("ZADD").arg(keys::IP_LAST).arg("GT");
            for (ip, g) in chunk {
                c.arg(*g).arg(ip.to_string());
            }
        })?;
    }
    batch.add(|c| {
        c.arg("SET").arg(keys::RETENTION_INDEXED).arg(1);
    })?;
    batch.add(|c| {
        c.arg("EVAL")
            .arg(&*RETAIN)
            .arg(0)
            .arg(grid.first)
            .arg(r.expire_below)
            .arg(float_repr(grid.width))
            .arg(dbs.ipinfo)
            .arg(dbs.own);
        for ip in &r.profiles {
            c.arg(ip.to_string());
        }
    })
}

/// Queue the flush's profile commands: the port table, profiles and `IPsInfo`.
fn write_profiles(
    batch: &mut Batch<'_>,
    writes: &Writes,
    grid: Grid,
    dbs: Dbs,
    layout: Layout,
) -> redis::RedisResult<()> {
    let width = float_repr(grid.width);
    if !writes.portinfo.is_empty() {
        batch.add(|c| {
            c.arg("HSET").arg(keys::PORTINFO).arg(&writes.portinfo[..]);
        })?;
    }
    let names: Vec<String> = writes
        .profiles
        .iter()
        .map(|(ip, _)| keys::profile(*ip))
        .collect();
    for chunk in names.chunks(1000) {
        batch.add(|c| {
            c.arg("SADD").arg(keys::PROFILES).arg(chunk);
        })?;
    }
    for (p, (_, start)) in names.iter().zip(&writes.profiles) {
        batch.add(|c| {
            c.arg("HSET")
                .arg(p)
                .arg("Starttime")
                .arg(float_repr(*start))
                .arg("duration")
                .arg(&width);
        })?;
    }
    // Few calls: each rebuilds the addresses it touches.
    let indexed = if writes.retention.is_some() { 1 } else { 0 };
    for chunk in writes.dns.chunks(5000) {
        batch.add(|c| {
            c.arg("EVAL")
                .arg(DNS_RESOLUTION)
                .arg(0)
                .arg(grid.first)
                .arg(indexed);
            for a in chunk {
                c.arg(a.ip.to_string())
                    .arg(&a.query)
                    .arg(float_repr(a.ts))
                    .arg(&a.uid)
                    .arg(a.by.to_string())
                    .arg(a.abs);
            }
        })?;
    }
    if layout == Layout::Kalipso {
        return write_ips_info_facts(batch, writes, dbs);
    }
    // Inside the transaction, `SELECT` switches only for these commands.
    let other_db = dbs.ipinfo != dbs.own && !writes.ips.is_empty();
    if other_db {
        batch.add(|c| {
            c.arg("SELECT").arg(dbs.ipinfo);
        })?;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for (ip, value) in &writes.ips {
        if value == "{}" {
            unknown.push(ip.to_string());
        } else {
            known.push((ip.to_string(), value.as_str()));
        }
    }
    // `HSETNX <ip> {}` for each, a thousand to a command.
    for part in unknown.chunks(1000) {
        batch.add(|c| {
            c.arg("EVAL").arg(REGISTER_IPS).arg(0).arg(part);
        })?;
    }
    for part in known.chunks(1000) {
        batch.add(|c| {
            c.arg("EVAL").arg(FILL_IPS_INFO).arg(0).arg(part);
        })?;
    }
    if other_db {
        batch.add(|c| {
            c.arg("SELECT").arg(dbs.own);
        })?;
    }
    Ok(())
}

/// `--layout kalipso`'s `IPsInfo`: the flush's registrations and facts, merged by
/// [`IPS_INFO_FACTS`] (which selects the `IPsInfo` database itself).
fn write_ips_info_facts(
    batch: &mut Batch<'_>,
    writes: &Writes,
    dbs: Dbs,
) -> redis::RedisResult<()> {
    let mut groups: Vec<[String; 7]> = Vec::with_capacity(writes.ips.len() + writes.facts.len());
    for (f, base) in &writes.facts {
        let (op, port) = match f.kind {
            FactKind::Sni(port) => ("S", port.to_string()),
            FactKind::Ptr => ("P", String::new()),
        };
        groups.push([
            op.to_string(),
            f.ip.to_string(),
            base.clone(),
            f.name.clone(),
            port,
            format!("{} {}", float_repr(f.ts), f.uid),
            f.abs.to_string(),
        ]);
    }
    for (ip, base) in &writes.ips {
        groups.push([
            "R".to_string(),
            ip.to_string(),
            base.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let indexed = if writes.retention.is_some() { 1 } else { 0 };
    // Few calls: each rebuilds the addresses it touches.
    for chunk in groups.chunks(1000) {
        batch.add(|c| {
            c.arg("EVAL")
                .arg(IPS_INFO_FACTS)
                .arg(0)
                .arg(dbs.ipinfo)
                .arg(dbs.own)
                .arg(indexed);
            for g in chunk {
                c.arg(&g[..]);
            }
        })?;
    }
    Ok(())
}

/// The windows written by one [`Transaction::windows`] call that go into `ModifiedTWForLogs`,
/// sent as one `SADD` (not one per window: a command costs a reply to parse on our side and a
/// call on Redis', whatever its size). Nothing in the transaction reads the set before
/// `RETAIN`, which comes after every window.
#[derive(Default)]
struct Marks {
    modified: Vec<String>,
}

impl Marks {
    fn send(self, batch: &mut Batch<'_>) -> redis::RedisResult<()> {
        for chunk in self.modified.chunks(1000) {
            batch.add(|c| {
                c.arg("SADD").arg(keys::MODIFIED_TW).arg(chunk);
            })?;
        }
        Ok(())
    }
}

/// Queue the commands of one window's write (the number of its uids new in `_flows` is
/// counted by the caller for the `labels` counter); its set members go to `marks`.
fn write_window(
    batch: &mut Batch<'_>,
    marks: &mut Marks,
    &WinId { ip, abs: g }: &WinId,
    w: &WindowWrite,
    grid: Grid,
    layout: Layout,
) -> redis::RedisResult<()> {
    let n = grid.n(g);
    let key = keys::window(ip, n);
    for (target, pairs) in [
        (key.clone(), &w.fields),
        (keys::flows(&key), &w.flows),
        (keys::copies(&key), &w.copies),
        (keys::altflows(&key), &w.altflows),
        (keys::alts(&key), &w.alts),
    ] {
        for chunk in pairs.chunks(256) {
            let bytes = chunk.iter().map(|(k, v)| k.len() + v.len()).sum();
            batch.add_sized(bytes, |c| {
                c.arg("HSET").arg(&target).arg(chunk);
            })?;
        }
    }
    if w.records_whole {
        // Also when nothing is left: no stale frame may come back.
        batch.add(|c| {
            c.arg("DEL").arg(keys::records(&key));
        })?;
    }
    if !w.records.is_empty() {
        let frame = frame::frame(&w.records)
            .map_err(|e| redis::RedisError::from((redis::ErrorKind::Io, "zstd", e.to_string())))?;
        batch.add_sized(frame.len(), |c| {
            c.arg("RPUSH").arg(keys::records(&key)).arg(&frame);
        })?;
    }
    if layout == Layout::Kalipso {
        write_timeline_entries(batch, &keys::timeline(&key), w)?;
    } else {
        if !w.timeline_inserts.is_empty() {
            let k = keys::timeline(&key);
            let bytes = w
                .timeline_inserts
                .iter()
                .flat_map(|(_, l)| l)
                .map(String::len)
                .sum();
            batch.add_sized(bytes, |c| {
                c.arg("EVAL").arg(INSERT_LINES).arg(1).arg(&k);
                c.arg(w.timeline_inserts.len());
                for (off, lines) in &w.timeline_inserts {
                    c.arg(off).arg(lines.len()).arg(lines);
                }
            })?;
        }
        match &w.timeline {
            Some(TimelineWrite::Append(lines)) => {
                let k = keys::timeline(&key);
                for chunk in lines.chunks(1000) {
                    let bytes = chunk.iter().map(String::len).sum();
                    batch.add_sized(bytes, |c| {
                        c.arg("RPUSH").arg(&k).arg(chunk);
                    })?;
                }
            }
            Some(TimelineWrite::Replace(lines)) => {
                // Inside the flush's transaction: a viewer never sees a half-written list.
                let k = keys::timeline(&key);
                batch.add(|c| {
                    c.arg("DEL").arg(&k);
                })?;
                for chunk in lines.chunks(1000) {
                    let bytes = chunk.iter().map(String::len).sum();
                    batch.add_sized(bytes, |c| {
                        c.arg("RPUSH").arg(&k).arg(chunk);
                    })?;
                }
            }
            None => {}
        }
    }
    if w.has_data {
        batch.add(|c| {
            c.arg("ZADD")
                .arg(keys::tws(ip))
                .arg(grid.start(g))
                .arg(keys::tw_name(n));
        })?;
    }
    if w.has_conn && !(w.fields.is_empty() && w.flows.is_empty() && !w.timeline_changed()) {
        marks.modified.push(key.clone());
    }
    if !w.removed_fields.is_empty() {
        batch.add(|c| {
            c.arg("HDEL").arg(&key).arg(&w.removed_fields[..]);
        })?;
    }
    match (layout, w.detected) {
        (Layout::Kalipso2020, Some(true)) => batch.add(|c| {
            c.arg("SADD").arg(keys::BLOCKED_TW).arg(&key);
        })?,
        (Layout::Kalipso2020, Some(false)) => batch.add(|c| {
            c.arg("SREM").arg(keys::BLOCKED_TW).arg(&key);
        })?,
        // Slips' shape (profile → its detected windows): the current Kalipso crashes on any
        // other field of it (docs/kalipso-2026-layout-facts.md).
        (Layout::Kalipso, Some(detected)) => batch.add(|c| {
            c.arg("EVAL")
                .arg(&*BLOCK_TW)
                .arg(0)
                .arg(keys::profile(ip))
                .arg(keys::tw_name(n))
                .arg(i64::from(detected));
        })?,
        (_, None) => {}
    }
    if layout == Layout::Kalipso {
        // Every window's evidence in one hash per profile, as the `z` hotkey reads it.
        let tw = keys::tw_name(n);
        if let Some((_, e)) = w.fields.iter().find(|(f, _)| f == "Evidence") {
            batch.add(|c| {
                c.arg("HSET")
                    .arg(keys::evidence_profile(ip))
                    .arg(&tw)
                    .arg(e);
            })?;
        } else if w.removed_fields.contains(&"Evidence") {
            batch.add(|c| {
                c.arg("HDEL").arg(keys::evidence_profile(ip)).arg(&tw);
            })?;
        }
    }
    Ok(())
}

/// Queue the end of a flush: the `labels` counter and our own state (join, waiting windows,
/// watermarks), in the same transaction as the data it describes.
fn write_state(
    batch: &mut Batch<'_>,
    writes: &Writes,
    label: &str,
    new_flows: usize,
) -> redis::RedisResult<()> {
    if new_flows > 0 {
        batch.add(|c| {
            c.arg("ZINCRBY").arg(keys::LABELS).arg(new_flows).arg(label);
        })?;
    }
    // Our own state, in the same transaction as the data it describes.
    for (target, changes) in [
        (keys::JOINABLE, &writes.join.conns),
        (keys::PENDING, &writes.join.pending),
    ] {
        let (set, del): (Vec<_>, Vec<_>) = changes.iter().partition(|(_, v)| v.is_some());
        let set: Vec<(&str, &str)> = set
            .iter()
            .filter_map(|(u, v)| Some((u.as_str(), v.as_deref()?)))
            .collect();
        for chunk in set.chunks(256) {
            batch.add(|c| {
                c.arg("HSET").arg(target).arg(chunk);
            })?;
        }
        let del: Vec<&str> = del.iter().map(|(u, _)| u.as_str()).collect();
        for chunk in del.chunks(256) {
            batch.add(|c| {
                c.arg("HDEL").arg(target).arg(chunk);
            })?;
        }
    }
    // One SADD and one SREM for all (a member's last change is its state, as when applied
    // one by one).
    let mut last: rustc_hash::FxHashMap<&WinId, bool> = Default::default();
    for (id, waiting) in &writes.timeline_waiting {
        last.insert(id, *waiting);
    }
    for (op, state) in [("SADD", true), ("SREM", false)] {
        let members: Vec<String> = writes
            .timeline_waiting
            .iter()
            .filter(|(id, _)| last.get(id) == Some(&state) && last.remove(id).is_some())
            .map(|(id, _)| keys::win_member(id.ip, id.abs))
            .collect();
        for chunk in members.chunks(1000) {
            batch.add(|c| {
                c.arg(op).arg(keys::WINDOWS_WAITING).arg(chunk);
            })?;
        }
    }
    if !writes.watermarks.is_empty() {
        let marks: Vec<(&str, String)> = writes
            .watermarks
            .iter()
            .map(|(k, t)| (k.as_str(), float_repr(*t)))
            .collect();
        batch.add(|c| {
            c.arg("HSET").arg(keys::WATERMARKS).arg(&marks[..]);
        })?;
    }
    Ok(())
}

/// `--no-flows`: a window's records from its frames (`model::records`). A frame that cannot
/// be read is skipped, and so is an entry that cannot (logged).
fn compact_window(frames: &[Vec<u8>]) -> StoredWindow {
    let (payloads, bad_frames) = frame::payloads(frames, frame::MAX_PAYLOAD);
    let (flows, alts, bad) = records::read(&payloads, push_sub_line);
    if bad_frames > 0 || bad > 0 {
        tracing::warn!(
            bad_entries = bad,
            bad_frames,
            "part of a window's stored records could not be read and was skipped"
        );
    }
    StoredWindow { flows, alts }
}

/// Rebuild a window's records from `_flows`, our copies, our alt lists and `_altflows` (the value of each uid's last alt record). Values this tool
/// did not write are skipped (logged once per window).
fn stored_window(
    flows: &[(String, String)],
    copies: &[(String, String)],
    alts: &[(String, String)],
    altflows: &[(String, String)],
) -> StoredWindow {
    let mut out = StoredWindow::default();
    let mut skipped = 0usize;
    let copied: std::collections::HashMap<&str, &str> = copies
        .iter()
        .map(|(u, v)| (u.as_str(), v.as_str()))
        .collect();
    for (uid, json) in flows {
        match copied.get(uid.as_str()) {
            Some(list) => {
                let parsed: Option<Vec<Flow>> = serde_json::from_str::<Vec<String>>(list)
                    .ok()
                    .and_then(|l| l.iter().map(|j| Flow::from_flow_json(uid, j)).collect());
                match parsed {
                    Some(fs) => out.flows.extend(fs),
                    None => skipped += 1,
                }
            }
            None => match Flow::from_flow_json(uid, json) {
                Some(f) => out.flows.push(f),
                None => skipped += 1,
            },
        }
    }
    let last_values: std::collections::HashMap<&str, &str> = altflows
        .iter()
        .map(|(u, v)| (u.as_str(), v.as_str()))
        .collect();
    for (uid, json) in alts {
        match AltRecord::list_from_json(
            uid,
            json,
            last_values.get(uid.as_str()).copied(),
            push_sub_line,
        ) {
            Some(list) => out.alts.extend(list),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "stored window values not written by kalipso-ingest were left as they are"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same arguments given to our [`Command`] and to redis-rs' `Cmd` give the same bytes
    /// (after what the buffer held), and the next command starts empty.
    macro_rules! same_as_redis_rs {
        ($($arg:expr),+) => {{
            let mut cmd = Command::default();
            let mut got = b"before".to_vec();
            cmd$(.arg($arg))+;
            cmd.queue(&mut got);
            let mut want = b"before".to_vec();
            redis::Cmd::new()$(.arg($arg))+.write_packed_command(&mut want);
            assert!(got == want, "{}", String::from_utf8_lossy(&got));
            assert_eq!((cmd.args.len(), cmd.count), (0, 0));
        }};
    }

    #[test]
    fn commands_are_encoded_as_redis_rs_encodes_them() {
        same_as_redis_rs!("EXEC");
        same_as_redis_rs!("HSET", "k", "", "é\r\n\0x");
        let pairs = [
            ("a".to_string(), "1".to_string()),
            ("b".into(), "22".into()),
        ];
        same_as_redis_rs!("HSET", "h", &pairs[..]);
        same_as_redis_rs!("ZADD", "z", 1.5f64, -3i64, u64::MAX, 0.1f64);
        let members: Vec<String> = (0..1200).map(|i| format!("m{i}")).collect();
        same_as_redis_rs!("SADD", "s", &members);
        let big = vec![b'x'; 3 << 20];
        same_as_redis_rs!("SET", "b", &big[..]);
        let empty: Vec<String> = Vec::new();
        same_as_redis_rs!("DEL", &empty);
    }

    #[test]
    fn an_argument_written_through_its_writer_is_one_argument() {
        use std::io::Write;
        let mut cmd = Command::default();
        cmd.arg("SET");
        {
            let mut w = cmd.writer_for_next_arg();
            w.write_all(b"ab").unwrap();
            w.write_all(b"cd").unwrap();
        }
        cmd.writer_for_next_arg();
        let mut out = Vec::new();
        cmd.queue(&mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$4\r\nabcd\r\n$0\r\n\r\n");
    }

    #[test]
    fn a_shown_url_hides_the_password() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            (
                "redis://kalipso:s3cr:et@db.example:6380/2",
                "redis://kalipso:***@db.example:6380/2",
            ),
            ("rediss://:pw@h/0", "rediss://:***@h/0"),
            ("redis://name@h", "redis://name@h"),
            ("unix:///run/redis.sock", "unix:///run/redis.sock"),
            (
                "unix:///run/redis.sock?db=1&pass=secret",
                "unix:///run/redis.sock?db=1&pass=***",
            ),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
    }
}
