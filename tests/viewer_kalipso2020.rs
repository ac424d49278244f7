//! The real Kalipso viewer of 2020 (Slips `b8d89a5d1` `modules/blessed/ips_timewindows.js`,
//! kept in `../shared/viewers/kalipso-2020`) on what one `--once` pass wrote: the viewer runs in
//! a detached tmux of its own (private socket, 200x60), is driven with `send-keys` and read with
//! `capture-pane -e`, as in docs/kalipso-2020/README.md. Its npm dependencies are installed once
//! under the target directory, in a copy whose 8 `redis.createClient()` calls take the port from
//! `KALIPSO_TEST_PORT`. Skipped (common::missing) without the viewer, tmux, node or npm.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::viewer::{self, Colour, GREEN, RED, Screen, Viewer, is_drawing};

/// How long a screen may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(20);
/// The only change made to the copy of the viewer (part of the cache key).
const CREATE_CLIENT: &str = "redis.createClient()";
const CREATE_CLIENT_TEST: &str =
    "redis.createClient(process.env.KALIPSO_TEST_PORT||6379,\"127.0.0.1\")";

// ---------------------------------------------------------------------------------------------
// The 2020 viewer's screen: a tree box at the left ("Ips from slips"), boxes right of it.

impl Screen {
    /// Columns of the tree box ("Ips from slips"), borders included: up to its first `┐`.
    fn tree_width(&self) -> usize {
        self.line(0)
            .chars()
            .position(|c| c == '┐')
            .map_or(33, |p| p + 1)
    }

    /// The text of `row` inside the tree box.
    fn tree_text(&self, row: usize) -> String {
        self.line(row).chars().take(self.tree_width()).collect()
    }

    /// The column where `label` starts as a tree node of `row`: after the tree's line drawing
    /// (`─`, `┬`, and `┐` too when the sibling above is expanded), followed by a space or the
    /// end of the label cell.
    fn node_col(&self, row: usize, label: &str) -> Option<usize> {
        let t: Vec<char> = self.tree_text(row).chars().collect();
        let l: Vec<char> = label.chars().collect();
        (1..t.len().saturating_sub(l.len())).find(|&i| {
            is_drawing(t[i - 1])
                && t[i..i + l.len()] == l[..]
                && matches!(t.get(i + l.len()), Some(' ' | '│') | None)
        })
    }

    /// The row of the tree node `label` (a profile's address).
    fn node_row(&self, label: &str) -> Option<usize> {
        (0..self.lines.len()).find(|&r| self.node_col(r, label).is_some())
    }

    /// The row of the first window of profile `ip`, once it is expanded (the row below it).
    fn window_row(&self, ip: &str) -> Option<usize> {
        let r = self.node_row(ip)? + 1;
        self.node_col(r, "timewindow1").map(|_| r)
    }

    /// The rows of the tree's top nodes, the profiles (`│ ├─` / `│ └─`).
    fn profile_rows(&self) -> Vec<usize> {
        (1..self.lines.len())
            .filter(|&r| matches!(self.tree_text(r).chars().nth(2), Some('├' | '└')))
            .collect()
    }

    /// The tree's selected row: blue background inside the tree box.
    fn selected_row(&self) -> Option<usize> {
        self.blue_row(1..self.lines.len(), self.tree_width())
    }

    /// The colour of the first letter of tree node `label` in `row`.
    fn node_fg(&self, row: usize, label: &str) -> Option<Colour> {
        let col = self.node_col(row, label)?;
        Some(self.lines[row][col].fg)
    }

    /// The text of `row` right of the tree box, inside the box there (borders cut off).
    fn right(&self, row: usize) -> String {
        let s: String = self.line(row).chars().skip(self.tree_width() + 1).collect();
        s.trim_end().trim_end_matches('│').trim_end().to_string()
    }

    /// The rows right of the tree box after `start`, up to the bottom border of that box.
    fn box_below(&self, start: usize) -> Vec<String> {
        let w = self.tree_width();
        (start + 1..self.lines.len())
            .take_while(|&r| !self.line(r).chars().skip(w).any(|c| c == '└'))
            .map(|r| self.right(r))
            .collect()
    }

    /// The non-empty rows of the Timeline box below its header `header`.
    fn timeline_rows(&self, header: &str) -> Vec<String> {
        match (0..self.lines.len()).find(|&r| self.right(r).trim() == header) {
            Some(start) => self
                .box_below(start)
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The text of the Evidence box.
    fn evidence(&self) -> String {
        match (0..self.lines.len()).find(|&r| self.line(r).contains("─Evidence─")) {
            Some(start) => self.box_below(start).join("\n"),
            None => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The viewer in tmux.

/// `s` quoted for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The viewer of the directory `viewer` on the Redis of `port`, started in a tmux of 200x60.
fn start(viewer: &Path, port: u16) -> Viewer {
    let v = Viewer::new(
        "kv2020-",
        &format!("kalipso2020-{}", std::process::id()),
        "stderr.txt",
        "exit.txt",
        WAIT,
    );
    let script = format!(
        "sh -c {}",
        sh_quote(&format!(
            "cd {} && LANG=C.UTF-8 NCURSES_NO_UTF8_ACS=1 KALIPSO_TEST_PORT={port} \
             node ips_timewindows.js 2> {}; echo $? > {}",
            sh_quote(&viewer.to_string_lossy()),
            sh_quote(&v.stderr.to_string_lossy()),
            sh_quote(&v.exit.to_string_lossy()),
        ))
    );
    let out = v.tmux(&[
        "new-session",
        "-d",
        "-s",
        &v.session,
        "-x",
        "200",
        "-y",
        "60",
        &script,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

impl Viewer {
    /// Move the tree's selection to the row `row_of` finds (Up/Down), then press Enter.
    fn choose(&self, what: &str, row_of: impl Fn(&Screen) -> Option<usize>) {
        // after a move, wait (a little) for the selection to get there
        self.select(what, row_of, Screen::selected_row, |_, want| {
            viewer::poll(Duration::from_secs(5), Duration::from_millis(100), || {
                (self.capture().selected_row() == Some(want)).then_some(())
            });
        });
        self.keys(&["Enter"]);
    }
}

// ---------------------------------------------------------------------------------------------
// The viewer's copy with its npm dependencies, installed once per content.

/// The viewer's regular files (name, content), sorted.
fn viewer_files(src: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(src)
        .expect("read the viewer directory")
        .map(|e| e.expect("viewer directory entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name() != "package-lock.json")
        .map(|e| {
            (
                e.file_name(),
                std::fs::read(e.path()).expect("read viewer file"),
            )
        })
        .collect();
    files.sort();
    files
}

/// A copy of `src` (its files, with the npm versions of contrib/kalipso-2020, patched) with
/// `npm ci` done, under the target directory; made once per content ([`viewer::npm_installed`]).
fn installed_viewer(src: &Path) -> Option<PathBuf> {
    let mut files = viewer_files(src);
    // The versions that work, with every transitive one pinned (what the README tells a user).
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/kalipso-2020");
    for name in ["package.json", "package-lock.json"] {
        let bytes = std::fs::read(contrib.join(name)).expect("read contrib/kalipso-2020");
        files.retain(|(n, _)| n != name);
        files.push((name.into(), bytes));
    }
    files.sort();
    let patched: Vec<(PathBuf, Vec<u8>)> = files
        .iter()
        .map(|(name, bytes)| {
            let mut bytes = bytes.clone();
            if name == "ips_timewindows.js" {
                let js = String::from_utf8(bytes).expect("ips_timewindows.js is UTF-8");
                let n = js.matches(CREATE_CLIENT).count();
                assert_eq!(
                    n,
                    8,
                    "{}: expected the 8 `{CREATE_CLIENT}` calls of Slips b8d89a5d1, found {n}",
                    src.display()
                );
                bytes = js.replace(CREATE_CLIENT, CREATE_CLIENT_TEST).into_bytes();
            }
            (PathBuf::from(name), bytes)
        })
        .collect();
    // The key: the files before the patch, and the patch.
    viewer::npm_installed("kalipso-2020", (&files, CREATE_CLIENT_TEST), &patched)
}

// ---------------------------------------------------------------------------------------------

fn port_of(server: &RedisServer) -> u16 {
    let url = server.url();
    url.trim_end_matches("/0")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn kalipso_2020_shows_profiles_timeline_and_evidence() {
    let Some(src) = viewer::shared_viewer(
        "kalipso-2020",
        "ips_timewindows.js",
        "the Kalipso viewer of 2020",
    ) else {
        return;
    };
    if !viewer::all_found(&["tmux", "node", "npm"]) {
        return;
    }
    let Some(viewer_dir) = installed_viewer(&src) else {
        return;
    };
    let started = Instant::now();

    let server = RedisServer::start();
    let fixtures = common::fixtures();
    let blocklist = fixtures.join("demo/blocklist.txt");
    common::daemon::once_with(
        &fixtures.join("corpus/slips-test10-tsv"),
        &server,
        &["--blocklist", blocklist.to_str().unwrap()],
    );
    let mut con = server.connection();
    let blocked: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg("BlockedProfTW")
        .query(&mut con)
        .unwrap();
    let want: BTreeSet<String> = [
        "profile_192.0.2.10_timewindow1",
        "profile_192.0.2.44_timewindow1",
    ]
    .map(String::from)
    .into();
    assert_eq!(blocked, want, "BlockedProfTW");
    // The tree has one node per address with a timeline.
    let timelines: Vec<String> = redis::cmd("KEYS")
        .arg("profile_*_timeline")
        .query(&mut con)
        .unwrap();
    let profiles: BTreeSet<&str> = timelines
        .iter()
        .filter_map(|k| k.split('_').nth(1))
        .collect();
    let mut llen = |ip: &str| -> usize {
        redis::cmd("LLEN")
            .arg(format!("profile_{ip}_timewindow1_timeline"))
            .query(&mut con)
            .unwrap()
    };
    let (rows_10, rows_174, rows_44) = (
        llen("192.0.2.10"),
        llen("147.32.83.174"),
        llen("192.0.2.44"),
    );

    let v = start(&viewer_dir, port_of(&server));

    // (a) The tree lists the profiles, behind the welcome box.
    let s = v.wait(
        "the tree with every profile (192.0.2.10, 192.0.2.44, ...)",
        |s| {
            s.profile_rows().len() == profiles.len()
                && s.node_row("192.0.2.10").is_some()
                && s.node_row("192.0.2.44").is_some()
                && s.contains("Welcome to Kalipso")
        },
    );
    // Every address short enough for the tree box is there by name (IPv6 ones are cut).
    let w = s.tree_width();
    for ip in profiles.iter().filter(|ip| ip.len() + 8 < w) {
        if s.node_row(ip).is_none() {
            v.fail(&format!("profile {ip} is not in the tree"));
        }
    }
    // Tab leaves the welcome box for the tree.
    v.keys(&["Tab"]);
    v.wait("the welcome box to go away after Tab", |s| {
        !s.contains("Welcome to Kalipso") && s.selected_row().is_some()
    });

    // (b) 192.0.2.10 / timewindow1: the port scan's lines; (c) its evidence.
    v.choose("192.0.2.10", |s| s.node_row("192.0.2.10"));
    v.wait("192.0.2.10 expanded (its timewindow1 below it)", |s| {
        s.window_row("192.0.2.10").is_some()
    });
    v.choose("192.0.2.10's timewindow1", |s| s.window_row("192.0.2.10"));
    let s = v.wait(
        "the timeline of 192.0.2.10 timewindow1 and its PortScanType2 evidence",
        |s| {
            s.timeline_rows("192.0.2.10 timewindow1").len() == rows_10
                && s.evidence().contains("PortScanType2")
        },
    );
    let rows = s.timeline_rows("192.0.2.10 timewindow1");
    let scan = rows
        .iter()
        .filter(|r| {
            r.contains("[!] - Not recognized notestablished flow from 192.0.2.10 to 10.0.0.")
                && r.contains(" dport 1337/tcp, Sent: 0, Recv: 0, Tot: 0.00b")
        })
        .count();
    if scan != 10
        || !rows
            .iter()
            .any(|r| r.contains("PING echo sent to 156.87.76.33"))
    {
        v.fail(&format!(
            "192.0.2.10 timewindow1: want 10 port-scan rows and the PING, got {scan}: {rows:#?}"
        ));
    }
    if !rows[0].trim_start().starts_with("2020/10/06 15:33:20 ") {
        v.fail(&format!(
            "first timeline row (UTC time, no fraction): {:?}",
            rows[0]
        ));
    }
    let ev = s.evidence();
    if !ev.contains("dport:1337:PortScanType2")
        || !ev.contains("New horizontal port scan detected to port 1337")
    {
        v.fail(&format!("Evidence box of 192.0.2.10: {ev}"));
    }
    // "Not recognized ..." in red in the timeline (the last such row: the first one is the
    // table's selected row, all white on blue).
    let row = (0..s.lines.len())
        .rfind(|&r| s.line(r).contains("Not recognized notestablished flow"))
        .unwrap();
    let col = s.line(row).chars().collect::<Vec<_>>();
    let at = (0..col.len())
        .find(|&i| col[i..].starts_with(&['N', 'o', 't', ' ', 'r']))
        .unwrap();
    if s.lines[row][at].fg != RED {
        v.fail(&format!(
            "'Not recognized' is not red: {:?}",
            s.ansi.lines().nth(row)
        ));
    }

    // (b) a window with dns: 147.32.83.174, its queries as sub-lines under their flow.
    v.choose("147.32.83.174", |s| s.node_row("147.32.83.174"));
    v.wait("147.32.83.174 expanded", |s| {
        s.window_row("147.32.83.174").is_some()
    });
    v.choose("147.32.83.174's timewindow1", |s| {
        s.window_row("147.32.83.174")
    });
    let s = v.wait("the timeline of 147.32.83.174 timewindow1", |s| {
        s.timeline_rows("147.32.83.174 timewindow1").len() == rows_174
    });
    let rows = s.timeline_rows("147.32.83.174 timewindow1");
    let sub = rows.windows(2).any(|w| {
        w[0].contains("- Not answered mdns asked to 224.0.0.251 5353/udp")
            && w[1].contains("- Query: hp laserjet m1536dnf mfp (236b10)._ipp._tcp.local")
    });
    if !sub {
        v.fail(&format!(
            "147.32.83.174: no `- Query:` sub-line under its mdns flow: {rows:#?}"
        ));
    }
    if s.evidence().trim() != "" {
        v.fail(&format!(
            "147.32.83.174 has no evidence, yet the box shows: {}",
            s.evidence()
        ));
    }

    // 192.0.2.44: the blocklisted peer.
    v.choose("192.0.2.44", |s| s.node_row("192.0.2.44"));
    v.wait("192.0.2.44 expanded", |s| {
        s.window_row("192.0.2.44").is_some()
    });
    v.choose("192.0.2.44's timewindow1", |s| s.window_row("192.0.2.44"));
    let s = v.wait(
        "the timeline of 192.0.2.44 timewindow1 and its blocklist evidence",
        |s| {
            s.timeline_rows("192.0.2.44 timewindow1").len() == rows_44
                && s.evidence()
                    .contains("dstip:185.247.224.89:ThreatIntelligenceBlacklist")
        },
    );
    let rows = s.timeline_rows("192.0.2.44 timewindow1");
    if !rows
        .iter()
        .any(|r| r.contains("https asked to 185.247.224.89 443/tcp"))
        || !rows.iter().any(|r| r.contains("[!] Attention."))
    {
        v.fail(&format!("192.0.2.44 timewindow1: {rows:#?}"));
    }

    // (d) With the selection on 192.0.2.44's window (a selected row is white on blue): the
    // detected profiles and windows are red, the others green.
    let checks = [
        ("192.0.2.10", "192.0.2.10", RED),
        ("192.0.2.44", "192.0.2.44", RED),
        ("192.0.2.33", "192.0.2.33", GREEN),
        ("147.32.83.174", "147.32.83.174", GREEN),
        ("192.0.2.10", "timewindow1", RED),
        ("147.32.83.174", "timewindow1", GREEN),
    ];
    for (ip, node, want) in checks {
        let row = if node == ip {
            s.node_row(ip)
        } else {
            s.window_row(ip)
        };
        let Some(row) = row else {
            v.fail(&format!("tree node {node} of {ip} not found"));
        };
        let got = s.node_fg(row, node);
        if got != Some(want) || s.selected_row() == Some(row) {
            v.fail(&format!(
                "tree node {node} of {ip}: colour {got:?}, want {want:?}; its line: {:?}",
                s.ansi.lines().nth(row)
            ));
        }
    }
    let red_line = |ip: &str| s.node_row(ip).and_then(|r| s.ansi.lines().nth(r));
    if !red_line("192.0.2.10").is_some_and(|l| l.contains("\x1b[31m192.0.2.10")) {
        v.fail("no ESC[31m right before 192.0.2.10 in the capture");
    }

    // (e) q ends the viewer with 0, and it wrote no error.
    let status = v.quit();
    let err = v.viewer_stderr();
    let lower = err.to_lowercase();
    if status != "0" || lower.contains("error") || lower.contains("exception") {
        v.fail(&format!(
            "viewer exit status {status}, stderr with an error"
        ));
    }
    eprintln!(
        "kalipso-2020: checks done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
