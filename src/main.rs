//! The `kalipso-ingest` command line. Exit codes: 0 success; 1 a runtime failure (unreadable
//! directory, Redis unreachable, ...); 2 a usage error (bad flag or value).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use kalipso_ingest::inspect::{inspect_file, render_text};
use kalipso_ingest::source::find_logs;

/// kalipso-ingest: reads Zeek logs (conn, dns, http, ssl; TSV or JSON; plain or gzip) and feeds
/// the Redis layout that the Kalipso viewer of Slips reads.
///
/// Exit codes: 0 success, 1 runtime failure, 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "kalipso-ingest", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise Zeek log files: format, #path, fields, records, timestamps, malformed lines.
    ///
    /// Reads every supported log (conn/dns/http/ssl under any Zeek rotation name, plain or .gz)
    /// in --zeek-dir, and any FILE given explicitly (whatever its name). Malformed lines are
    /// counted and shown, never fatal.
    Inspect(InspectArgs),
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
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => run_inspect(args),
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
        if args.json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("kalipso-ingest: cannot encode report: {e}");
                    return ExitCode::from(1);
                }
            }
        } else {
            println!("{}", render_text(&report));
        }
    }
    ExitCode::SUCCESS
}
