//! The `kalipso-ingest` command line. Exit codes: 0 success; 1 a runtime failure (unreadable
//! directory, Redis unreachable, ...); 2 a usage error (bad flag or value).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// mimalloc: the ingest allocates many small strings and maps; glibc's malloc spent a third of
/// the time in its free lists (perf). Built without transparent huge pages (feature `no_thp`)
/// and told to return freed memory within 10 ms ([`return_memory_promptly`]): together they
/// lower the peak RSS of the 2 M benchmark by 11 % for 4 % more CPU (`docs/performance.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kalipso_ingest::config::{FileSettings, Settings};
use kalipso_ingest::ingest::follow::{Control, FollowOptions, run_follow};
use kalipso_ingest::ingest::{IngestError, IngestOptions, run_once};
use kalipso_ingest::inspect::{inspect_file, render_text};
use kalipso_ingest::source::find_logs;
use kalipso_ingest::store::redis_store::{StoreError, Target};

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc 3.x).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's purge delay to 10 ms: pages freed are given back to the system almost at
/// once instead of after a second, so memory freed by windows that closed is not still held
/// when the next ones fill. (0 saves another 3 % of RSS but doubles the system time spent
/// unmapping and faulting pages back in.)
#[allow(unsafe_code)]
fn return_memory_promptly() {
    // SAFETY: `mi_option_set` only stores a number in mimalloc's option table; the purge delay
    // is read each time a purge is scheduled, so changing it at any time is allowed.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}

/// kalipso-ingest: reads Zeek logs (conn, dns, http, ssl; TSV or JSON; plain or gzip) and feeds
/// the Redis layout that the Kalipso viewer of Slips reads.
///
/// `kalipso-ingest --zeek-dir DIR --once` reads DIR to its end, writes profiles, timewindows
/// and flows to Redis, prints a summary and exits.
///
/// Exit codes: 0 success, 1 runtime failure (Redis unreachable, unreadable directory, ...),
/// 2 usage error.
#[derive(Debug, Parser)]
#[command(
    name = "kalipso-ingest",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// The ingest run's flags: the settings (each one can also come from the `--config` file; flags
/// win) and what only a command line says.
#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    settings: FileSettings,
    /// Read the directory to its end, write everything, print a summary and exit. Without
    /// it the directory is followed until SIGTERM/SIGINT (SIGHUP reloads --config).
    #[arg(long)]
    once: bool,
    /// Remove this tool's Redis keys (profiles, timewindows, flows, kalipso-ingest:*) first
    /// (with --once only: a daemon that resets at every restart would rebuild from scratch).
    #[arg(long, requires = "once")]
    reset: bool,
    /// TOML settings file (see config/kalipso-ingest.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise Zeek log files: format, #path, fields, records, timestamps, malformed lines.
    ///
    /// Reads every supported log (conn/dns/http/ssl under any Zeek rotation name, plain or .gz)
    /// in --zeek-dir, and any FILE given explicitly (whatever its name). Malformed lines are
    /// counted and shown, never fatal.
    Inspect(InspectArgs),
    /// Write a captured log directory into another one the way Zeek does: headers first, lines
    /// appended in time order (at --speed times real time, or as fast as possible) in chunks
    /// that may split a line, rotated by rename with a #close footer and a fresh file.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The captured logs (conn/dns/http/ssl, any rotation name, plain or .gz).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// Where to write them (created if missing).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Times real speed (e.g. 10); without it, as fast as possible.
    #[arg(long)]
    speed: Option<f64>,
    /// Rotate every this many seconds of wall time.
    #[arg(long, value_name = "SECONDS")]
    rotate_every: Option<f64>,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Directory of Zeek logs to inspect.
    #[arg(long, value_name = "DIR")]
    zeek_dir: Option<PathBuf>,
    /// Also look in subdirectories of --zeek-dir (zeekctl's dated archive folders).
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Print one JSON object per file (keys: file, path, format, fields, records, malformed,
    /// first_ts, last_ts, lines, errors, read_error).
    #[arg(long)]
    json: bool,
    /// Log files to inspect, whatever their names.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    return_memory_promptly();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // A password in an argument is visible to every user (`ps`): only the config file, the
    // environment or a systemd credential may carry one.
    if matches.value_source("redis_url") == Some(clap::parser::ValueSource::CommandLine)
        && cli
            .run
            .settings
            .redis_url
            .as_deref()
            .is_some_and(|u| Target::new(u).has_password())
    {
        eprintln!(
            "kalipso-ingest: a Redis password on the command line is visible to every user (ps); put the URL in KALIPSO_REDIS_URL, the config file (not world-readable) or the systemd credential redis-url"
        );
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::Inspect(args)) => run_inspect(args),
        Some(Command::Replay(args)) => {
            let opts = kalipso_ingest::replay::ReplayOptions {
                from: args.from,
                to: args.to,
                speed: args.speed.filter(|s| *s > 0.0),
                rotate_every: args.rotate_every.filter(|s| *s > 0.0),
            };
            match kalipso_ingest::replay::replay(&opts) {
                Ok(s) => say(format_args!(
                    "replayed {} lines, {} rotations",
                    s.lines, s.rotations
                ))
                .err()
                .unwrap_or(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("kalipso-ingest: replay: {e}");
                    ExitCode::from(1)
                }
            }
        }
        None => run_ingest(cli.run),
    }
}

/// Changes the log filter of the running process (SIGHUP).
type LogReload =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

fn filter_of(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Messages go to stderr: coloured only on a terminal; under journald (`JOURNAL_STREAM` set,
/// as systemd does for a unit's stderr) with its `<N>` priority prefix and no time of our own
/// (the journal stamps every line).
fn init_logging(level: &str) -> Option<LogReload> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter_of(level));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let plain = (!journal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
    });
    let journald = journal.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .event_format(JournalPriority(
                tracing_subscriber::fmt::format().without_time(),
            ))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(plain)
        .with(journald)
        .try_init()
        .ok()?;
    Some(handle)
}

/// Prefixes each message with its syslog priority (`<3>` error, `<4>` warning, `<6>` info,
/// `<7>` debug), which journald reads from a unit's stderr (`SyslogLevelPrefix=`, on by
/// default).
struct JournalPriority<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalPriority<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

fn run_ingest(args: RunArgs) -> ExitCode {
    let file = match &args.config {
        Some(path) => match FileSettings::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("kalipso-ingest: {e}");
                return ExitCode::from(2);
            }
        },
        None => FileSettings::default(),
    };
    let flags = args.settings;
    let flags_for_reload = flags.clone();
    let settings = match Settings::merge(flags, file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kalipso-ingest: {e}");
            return ExitCode::from(2);
        }
    };
    let log_reload = init_logging(&settings.log_level);
    if !args.once {
        return run_follow_mode(&settings, args.config.clone(), flags_for_reload, log_reload);
    }
    let opts = IngestOptions {
        reset: args.reset,
        progress: !args.no_progress,
        ..IngestOptions::default()
    };
    match run_once(&settings, &opts) {
        Ok(summary) => say(summary).err().unwrap_or(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("kalipso-ingest: {e}");
            let usage = matches!(e, IngestError::Store(StoreError::BadUrl { .. }));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Follow the directory until SIGTERM/SIGINT; SIGHUP re-reads the config file.
fn run_follow_mode(
    settings: &Settings,
    config: Option<PathBuf>,
    flags: FileSettings,
    log_reload: Option<LogReload>,
) -> ExitCode {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let control = Control::default();
    for sig in [SIGTERM, SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, control.stop.clone()) {
            eprintln!("kalipso-ingest: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = signal_hook::flag::register(SIGHUP, control.reload.clone()) {
        eprintln!("kalipso-ingest: cannot handle SIGHUP: {e}");
        return ExitCode::from(1);
    }
    let reload = move || -> Option<Settings> {
        let file = match &config {
            Some(path) => match FileSettings::load(path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("reload: {e}; keeping the current settings");
                    return None;
                }
            },
            None => FileSettings::default(),
        };
        match Settings::merge(flags.clone(), file) {
            Ok(s) => {
                if let Some(h) = &log_reload {
                    let _ = h.reload(filter_of(&s.log_level));
                }
                Some(s)
            }
            Err(e) => {
                tracing::warn!("reload: {e}; keeping the current settings");
                None
            }
        }
    };
    let opts = FollowOptions {
        poll_interval: std::time::Duration::from_millis(settings.poll_interval_ms),
        flush_interval: std::time::Duration::from_millis(settings.flush_interval_ms),
        ..FollowOptions::default()
    };
    match run_follow(settings, &opts, &control, &reload) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kalipso-ingest: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_inspect(args: InspectArgs) -> ExitCode {
    let mut files = args.files.clone();
    if let Some(dir) = &args.zeek_dir {
        match find_logs(dir, args.recursive) {
            Ok(found) => files.extend(found.into_iter().map(|(path, _)| path)),
            Err(e) => {
                eprintln!(
                    "kalipso-ingest: cannot read directory {}: {e}",
                    dir.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    if files.is_empty() {
        if args.zeek_dir.is_none() {
            eprintln!("kalipso-ingest: inspect needs --zeek-dir DIR or FILE arguments");
            return ExitCode::from(2);
        }
        eprintln!("kalipso-ingest: no conn/dns/http/ssl logs found");
    }
    for file in &files {
        let report = inspect_file(file);
        let printed = if args.json {
            match serde_json::to_string(&report) {
                Ok(line) => say(line),
                Err(e) => {
                    eprintln!("kalipso-ingest: cannot encode report: {e}");
                    return ExitCode::from(1);
                }
            }
        } else {
            say(render_text(&report))
        };
        if let Err(code) = printed {
            return code;
        }
    }
    ExitCode::SUCCESS
}

/// Print a line on stdout. A closed stdout (`inspect … | head`) ends the program cleanly, as
/// in ripgrep: `Err(SUCCESS)`; another write error is reported: `Err(1)`.
fn say(text: impl std::fmt::Display) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("kalipso-ingest: cannot write to stdout: {e}");
            Err(ExitCode::from(1))
        }
    }
}
