//! The real Kalipso viewer of 2026 (`../shared/viewers/kalipso-2026`, Slips' `modules/kalipso`)
//! on what one `--once --layout kalipso` pass wrote, as in docs/kalipso-2026-layout-facts.md.
//! The viewer always opens a second client on 127.0.0.1:6379 (its IPsInfo cache), so everything
//! runs in a private network (and user and pid) namespace of its own, `unshare -rn --pid`: two
//! redis-servers there (6379 and the data port), the binary, and the viewer in a detached tmux
//! of 220x60. The test drives tmux from outside through its socket and reads the data server
//! through a unix socket (both are files, which the namespace does not hide). Its npm
//! dependencies are installed once under the target directory, in a copy without the `fs`
//! placeholder package that makes `npm ci` fail. Skipped (common::missing) without the viewer,
//! tmux, node, npm, redis-server, or a working `unshare -rn`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::viewer::{self, Screen, Viewer, is_drawing};

/// How long a screen may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(30);
/// How long the namespace may take to be up (servers, one `--once` pass, the viewer started).
const SETUP: Duration = Duration::from_secs(120);
/// The data port inside the namespace (any: nothing else listens there).
const DATA_PORT: u16 = 6390;
/// What is changed in the copy of the viewer (part of the cache key).
const PATCH: &str = "drop the fs placeholder from package.json and package-lock.json";
/// tmux session of the viewer.
const SESSION: &str = "kalipso2026";

/// Runs as pid 1 of the namespace: both servers, the binary, the viewer in tmux; then waits for
/// its stdin to close (the test's end, also a killed test) and so takes everything with it.
const NAMESPACE_SCRIPT: &str = r#"
set -u
fail() { printf '%s\n' "$1" > "$D/failed"; exit 1; }
ip link set lo up || fail "ip link set lo up failed"
for p in 6379 "$PORT"; do
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --protected-mode yes \
    --dir "$D" --unixsocket "$D/redis-$p.sock" --unixsocketperm 700 \
    --logfile "$D/redis-$p.log" </dev/null &
done
n=0
until [ -S "$D/redis-6379.sock" ] && [ -S "$D/redis-$PORT.sock" ]; do
  n=$((n + 1)); [ "$n" -le 400 ] || fail "redis-server did not start (redis-*.log)"; sleep 0.05
done
"$BIN" --zeek-dir "$ZEEK" --once --no-progress --redis-url "redis://127.0.0.1:$PORT/0" \
  --layout kalipso --timezone UTC --blocklist "$BLOCKLIST" \
  </dev/null >"$D/ingest.out" 2>"$D/ingest.err" || fail "kalipso-ingest exited with $?"
pane='cd "$VIEWER" && node kalipso.js -p "$PORT" 2>"$D/viewer.err"; echo $? >"$D/viewer.rc"'
tmux -f /dev/null -S "$D/tmux.sock" new-session -d -s "$SESSION" -x 220 -y 60 \
  "$pane; exec sleep 3600" </dev/null || fail "tmux new-session failed"
: > "$D/ready"
read -r _ || true
"#;

// ---------------------------------------------------------------------------------------------
// The 2026 viewer's screen: a tree box at the left ("IPs"), boxes right of it.

impl Screen {
    /// Columns of the tree box ("IPs"), borders included: up to its first `┐`.
    fn tree_width(&self) -> usize {
        self.line(0)
            .chars()
            .position(|c| c == '┐')
            .map_or(36, |p| p + 1)
    }

    /// The rows inside the tree box (below its top border, above its bottom one).
    fn tree_rows(&self) -> Vec<usize> {
        (1..self.lines.len())
            .take_while(|&r| self.line(r).starts_with('│'))
            .collect()
    }

    /// The label of the tree node in `row` (without ` [+]`/` [-]`), and whether the box cut it.
    fn node_label(&self, row: usize) -> Option<(String, bool)> {
        let w = self.tree_width();
        let t: Vec<char> = self.line(row).chars().take(w).collect();
        if t.len() < w || t[0] != '│' {
            return None;
        }
        let inner = &t[1..w - 1];
        let start =
            (1..inner.len()).find(|&i| is_drawing(inner[i - 1]) && !is_drawing(inner[i]))?;
        if inner[start] == ' ' {
            return None;
        }
        let cut = inner.last() != Some(&' ');
        let label: String = inner[start..].iter().collect();
        let label = label.trim_end();
        let label = label
            .strip_suffix(" [+]")
            .or_else(|| label.strip_suffix(" [-]"))
            .unwrap_or(label);
        Some((label.to_string(), cut))
    }

    /// Whether the node in `row` is `name` (a long address is cut by the box: its start).
    fn node_is(&self, row: usize, name: &str) -> bool {
        self.node_label(row).is_some_and(|(label, cut)| {
            label == name || (cut && label.chars().count() >= 16 && name.starts_with(&label))
        })
    }

    /// Whether the node in `row` shows `[+]` (it has children and is folded).
    fn node_has_plus(&self, row: usize) -> bool {
        self.line(row)
            .chars()
            .take(self.tree_width())
            .collect::<String>()
            .contains(" [+]")
    }

    /// The rows of the tree's top nodes, the profiles (`│ ├─` / `│ └─` / `│ ├┬`).
    fn profile_rows(&self) -> Vec<usize> {
        self.tree_rows()
            .into_iter()
            .filter(|&r| matches!(self.line(r).chars().nth(2), Some('├' | '└')))
            .filter(|&r| self.node_label(r).is_some())
            .collect()
    }

    fn node_row(&self, name: &str) -> Option<usize> {
        self.profile_rows()
            .into_iter()
            .find(|&r| self.node_is(r, name))
    }

    /// The tree's selected row: blue background inside the tree box.
    fn selected_row(&self) -> Option<usize> {
        self.blue_row(self.tree_rows(), self.tree_width())
    }

    /// The text of `row` right of the tree box, inside the box there (borders cut off).
    fn right(&self, row: usize) -> String {
        let s: String = self.line(row).chars().skip(self.tree_width() + 1).collect();
        s.trim_end().trim_end_matches('│').trim_end().to_string()
    }

    /// The first row after `start` whose part right of the tree is a bottom border.
    fn bottom_after(&self, start: usize) -> Option<usize> {
        let w = self.tree_width();
        (start + 1..self.lines.len()).find(|&r| self.line(r).chars().skip(w).any(|c| c == '└'))
    }

    /// The rows right of the tree box after `start`, up to the bottom border of that box.
    fn box_below(&self, start: usize) -> Vec<String> {
        let end = self.bottom_after(start).unwrap_or(self.lines.len());
        (start + 1..end).map(|r| self.right(r)).collect()
    }

    /// The row of the Timeline box's header `<ip> <tw> <date>`.
    fn timeline_header(&self, ip: &str, tw: &str) -> Option<usize> {
        let head = format!("{ip} {tw} ");
        (0..self.lines.len()).find(|&r| self.right(r).trim_start().starts_with(&head))
    }

    /// The Timeline box of `ip` `tw`: its non-empty rows, and how many rows the box has.
    fn timeline(&self, ip: &str, tw: &str) -> Option<(Vec<String>, usize)> {
        let start = self.timeline_header(ip, tw)?;
        let all = self.box_below(start);
        let room = all.len().saturating_sub(1); // a blank row under the header
        let rows = all.into_iter().filter(|s| !s.trim().is_empty()).collect();
        Some((rows, room))
    }

    /// The text of the Evidence box: the box under the Timeline box (it has no top border of its
    /// own, the timeline's bottom border covers it).
    fn evidence(&self) -> String {
        let Some(start) = (0..self.lines.len()).find(|&r| self.line(r).contains("─Timeline─"))
        else {
            return String::new();
        };
        match self.bottom_after(start) {
            Some(bottom) => self.box_below(bottom).join("\n"),
            None => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The namespace with its servers and the viewer (a guard: everything in it goes on drop).

struct Namespace {
    unshare: Child,
    /// Its closing ends the namespace's pid 1, so the namespace (also when the test is killed).
    stdin: Option<ChildStdin>,
    /// The viewer; its folder holds the namespace's files too (logs, sockets, `ready`).
    viewer: Viewer,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Namespace {
    fn start(viewer: &Path) -> Namespace {
        let v = Viewer::new("kv2026-", SESSION, "viewer.err", "viewer.rc", WAIT).failing_on_exit();
        let fixtures = common::fixtures();
        let stderr = std::fs::File::create(v.path("namespace.err")).expect("log file");
        let mut unshare = Command::new("unshare")
            .args(["-rn", "--pid", "--fork", "--kill-child", "sh", "-c"])
            .arg(NAMESPACE_SCRIPT)
            .env("D", v.dir())
            .env("PORT", DATA_PORT.to_string())
            .env("BIN", env!("CARGO_BIN_EXE_kalipso-ingest"))
            .env("ZEEK", fixtures.join("corpus/slips-test10-tsv"))
            .env("BLOCKLIST", fixtures.join("demo/blocklist.txt"))
            .env("VIEWER", viewer)
            .env("SESSION", SESSION)
            .env("LANG", "C.UTF-8")
            .env("NCURSES_NO_UTF8_ACS", "1")
            .env("TZ", "UTC")
            .env_remove("TMUX")
            .env_remove("KALIPSO_REDIS_URL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("run unshare");
        let stdin = unshare.stdin.take();
        let ns = Namespace {
            unshare,
            stdin,
            viewer: v,
        };
        ns.wait_ready();
        ns
    }

    fn path(&self, name: &str) -> PathBuf {
        self.viewer.path(name)
    }

    fn wait_ready(&self) {
        let ready = viewer::poll(SETUP, Duration::from_millis(50), || {
            if self.path("ready").exists() {
                return Some(());
            }
            if self.path("failed").exists() {
                self.fail_setup("failed");
            }
            None
        });
        if ready.is_none() {
            self.fail_setup("timed out");
        }
    }

    fn fail_setup(&self, what: &str) -> ! {
        panic!(
            "the namespace setup {what}: {}\n--- unshare/sh stderr ---\n{}\n--- kalipso-ingest \
             stderr ---\n{}\n--- redis logs ---\n{}{}",
            read(&self.path("failed")).trim(),
            read(&self.path("namespace.err")),
            read(&self.path("ingest.err")),
            read(&self.path("redis-6379.log")),
            read(&self.path(&format!("redis-{DATA_PORT}.log"))),
        )
    }

    /// A connection to the data server, through its unix socket.
    fn data(&self) -> redis::Connection {
        let url = format!(
            "redis+unix://{}",
            self.path(&format!("redis-{DATA_PORT}.sock")).display()
        );
        redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect to the data redis-server through its unix socket")
    }
}

// ---------------------------------------------------------------------------------------------
// Moving in the viewer's tree.

impl Viewer {
    /// Move the tree's selection (Up/Down) to the row `row_of` finds on the screen.
    fn select_visible(&self, what: &str, row_of: impl Fn(&Screen) -> Option<usize>) {
        self.select(what, row_of, Screen::selected_row, |s, _| {
            self.settle_selection(&Self::selection(s));
        });
    }

    /// The selected row and its text (a scrolled tree keeps the row and changes the text).
    fn selection(s: &Screen) -> Option<(usize, String)> {
        s.selected_row().map(|r| (r, s.line(r)))
    }

    /// Wait (a little) until the selection moved from `from`; whether it did.
    fn settle_selection(&self, from: &Option<(usize, String)>) -> bool {
        viewer::poll(Duration::from_secs(3), Duration::from_millis(60), || {
            let now = Self::selection(&self.capture());
            (now.is_some() && now != *from).then_some(())
        })
        .is_some()
    }

    /// Select profile `ip` in the tree, scrolling it into view: the tree has the `profiles` set
    /// in SMEMBERS order (`order`), so the direction is known; a stuck selection turns back.
    fn select_profile(&self, ip: &str, order: &[String]) {
        let target = order.iter().position(|p| p == ip);
        let mut backwards = false;
        for _ in 0..100 {
            let s = self.wait("a selected row in the tree", |s| s.selected_row().is_some());
            let at = s.selected_row().unwrap();
            if s.node_is(at, ip) {
                return;
            }
            if s.node_row(ip).is_some() {
                self.select_visible(ip, |s| s.node_row(ip));
                continue;
            }
            // the profile of the selected row (a window row: its profile above it)
            let current = s
                .profile_rows()
                .into_iter()
                .rev()
                .find(|&r| r <= at)
                .and_then(|r| order.iter().position(|p| s.node_is(r, p)));
            let down = match (target, current) {
                (Some(t), Some(c)) => (t > c) != backwards,
                _ => !backwards,
            };
            self.keys(&[if down { "Down" } else { "Up" }; 8]);
            if !self.settle_selection(&Self::selection(&s)) {
                backwards = !backwards;
            }
        }
        self.fail(&format!("could not scroll to profile {ip} in the tree"));
    }

    /// Open `ip`'s window `tw`, its first: Enter on the profile (it unfolds: `├┬`), Down to the
    /// window below it (the tree scrolls if needed), Enter.
    fn open_window(&self, ip: &str, tw: &str, order: &[String]) {
        self.select_profile(ip, order);
        self.keys(&["Enter"]);
        self.wait(&format!("{ip} unfolded in the tree"), |s| {
            s.node_row(ip)
                .is_some_and(|r| s.line(r).chars().nth(3) == Some('┬'))
        });
        self.keys(&["Down"]);
        self.wait(&format!("{ip}'s {tw} selected in the tree"), |s| {
            s.selected_row().is_some_and(|r| {
                s.node_is(r, tw)
                    && s.profile_rows()
                        .into_iter()
                        .rev()
                        .find(|&p| p < r)
                        .is_some_and(|p| s.node_is(p, ip))
            })
        });
        self.keys(&["Enter"]);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.viewer.tmux(&["kill-server"]);
        drop(self.stdin.take()); // pid 1 reads EOF and ends: the kernel kills the rest
        let ended = viewer::poll(Duration::from_secs(5), Duration::from_millis(20), || {
            self.unshare.try_wait().ok().flatten()
        });
        if ended.is_none() {
            let _ = self.unshare.kill(); // SIGKILL; --kill-child takes pid 1, and so the rest, along
            let _ = self.unshare.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The viewer's copy with its npm dependencies, installed once per content.

/// The viewer's files (path below `src`, content), sorted; no `node_modules`, no dot files.
fn viewer_files(src: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(src.join(&rel)).expect("read the viewer directory") {
            let e = e.expect("viewer directory entry");
            let name = e.file_name();
            if name == "node_modules" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            let t = e.file_type().expect("viewer file type");
            if t.is_dir() {
                stack.push(rel.join(&name));
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).expect("read viewer file");
                files.push((rel.join(&name), bytes));
            }
        }
    }
    files.sort();
    files
}

/// `package.json` / `package-lock.json` without the `fs` placeholder package (npm's registry
/// only has a 404 for its tarball; `require("fs")` is Node's own module anyway).
fn drop_fs_dependency(name: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", name.display()));
    fn remove_fs(deps: Option<&mut Value>) {
        if let Some(Value::Object(m)) = deps {
            m.shift_remove("fs");
        }
    }
    if name == Path::new("package-lock.json") {
        if let Some(Value::Object(p)) = v.get_mut("packages") {
            p.shift_remove("node_modules/fs");
            remove_fs(p.get_mut("").and_then(|root| root.get_mut("dependencies")));
        }
    }
    remove_fs(v.get_mut("dependencies"));
    let mut out = serde_json::to_vec_pretty(&v).expect("serialize package JSON");
    out.push(b'\n');
    out
}

/// A copy of `src` (patched) with `npm ci` done, under the target directory; made once per
/// content ([`viewer::npm_installed`]).
fn installed_viewer(src: &Path) -> Option<PathBuf> {
    let files: Vec<(PathBuf, Vec<u8>)> = viewer_files(src)
        .into_iter()
        .map(|(name, bytes)| {
            if name == Path::new("package.json") || name == Path::new("package-lock.json") {
                let patched = drop_fs_dependency(&name, &bytes);
                (name, patched)
            } else {
                (name, bytes)
            }
        })
        .collect();
    viewer::npm_installed("kalipso-2026", (&files, PATCH), &files)
}

/// Whether `unshare -rn --pid --fork --kill-child` works here (and `ip` inside it); else why.
fn namespace_problem() -> Option<String> {
    let out = Command::new("unshare")
        .args(["-rn", "--pid", "--fork", "--kill-child", "sh", "-c"])
        .arg("ip link set lo up")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "a private network namespace (`unshare -rn --pid --fork --kill-child sh -c 'ip \
             link set lo up'`: {}, {})",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("unshare ({e})")),
    }
}

// ---------------------------------------------------------------------------------------------
// What the viewer should show, from what the data server holds.

/// One row of the Timeline box: a flow, or one `info` entry under it.
#[derive(Debug)]
enum Row {
    Flow {
        timestamp: String,
        peer: Option<String>,
        dport_proto: String,
    },
    Info(String),
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The rows the viewer makes of a timeline's members (timeline.js: the address in brackets is
/// `daddr` on "to" rows and `saddr` on "from" rows; every `info` entry is a `Key:value` row).
fn expected_rows(members: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    for m in members {
        let e: Value = serde_json::from_str(m)
            .unwrap_or_else(|err| panic!("timeline member is not JSON ({err}): {m}"));
        let field = |k: &str| e.get(k).map(text_of).unwrap_or_default();
        let peer = match e.get("preposition").and_then(Value::as_str) {
            Some("to") => Some(field("daddr")),
            Some("from") => Some(field("saddr")),
            _ => None,
        };
        rows.push(Row::Flow {
            timestamp: field("timestamp"),
            peer,
            dport_proto: field("dport/proto"),
        });
        if let Some(Value::Object(info)) = e.get("info") {
            for (k, v) in info {
                let mut key = k.clone();
                if let Some(first) = key.get(0..1) {
                    key.replace_range(0..1, &first.to_uppercase());
                }
                rows.push(Row::Info(format!("{key}:{}", text_of(v))));
            }
        }
    }
    rows
}

/// Why the row `got` is not `want`, if it is not.
fn row_mismatch(want: &Row, got: &str) -> Option<String> {
    let g = got.trim();
    let ok = match want {
        Row::Flow {
            timestamp,
            peer,
            dport_proto,
        } => {
            g.starts_with(timestamp.as_str())
                && peer.as_ref().is_none_or(|p| g.contains(&format!("[{p}]")))
                && g.contains(dport_proto.as_str())
        }
        // long values are cut at the box's edge
        Row::Info(text) => g == text || (g.chars().count() >= 60 && text.starts_with(g)),
    };
    (!ok).then(|| format!("want {want:?}, got {g:?}"))
}

fn timeline_members(con: &mut redis::Connection, ip: &str, tw: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(format!("profile_{ip}_{tw}_timeline"))
        .arg(0)
        .arg(-1)
        .query(con)
        .unwrap()
}

/// Open `ip` `tw` and check its Timeline box against the data; returns the screen.
fn check_timeline(v: &Viewer, con: &mut redis::Connection, ip: &str, order: &[String]) -> Screen {
    let tw = "timewindow1";
    let members = timeline_members(con, ip, tw);
    assert!(!members.is_empty(), "no timeline for {ip} {tw} in Redis");
    let want = expected_rows(&members);
    v.open_window(ip, tw, order);
    let s = v.wait(&format!("the Timeline box of {ip} {tw}"), |s| {
        s.timeline(ip, tw)
            .is_some_and(|(rows, room)| rows.len() >= want.len().min(room) && !rows.is_empty())
    });
    let (rows, _) = s.timeline(ip, tw).unwrap();
    if rows.len() > want.len() {
        v.fail(&format!(
            "{ip} {tw}: {} rows shown, {} expected: {rows:#?}",
            rows.len(),
            want.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(&rows).enumerate() {
        if let Some(why) = row_mismatch(w, g) {
            v.fail(&format!("{ip} {tw}, timeline row {i}: {why}"));
        }
    }
    eprintln!(
        "kalipso-2026: {ip} {tw}: {} of {} rows shown and checked ({} flows)",
        rows.len(),
        want.len(),
        members.len()
    );
    s
}

// ---------------------------------------------------------------------------------------------

#[test]
fn kalipso_2026_shows_profiles_timeline_and_evidence() {
    let Some(src) =
        viewer::shared_viewer("kalipso-2026", "kalipso.js", "the Kalipso viewer of 2026")
    else {
        return;
    };
    if !viewer::all_found(&["tmux", "node", "npm", "redis-server", "unshare"]) {
        return;
    }
    if let Some(why) = namespace_problem() {
        common::missing(&why);
        return;
    }
    let Some(viewer_dir) = installed_viewer(&src) else {
        return;
    };
    let started = Instant::now();
    let ns = Namespace::start(&viewer_dir);
    let v = &ns.viewer;
    eprintln!(
        "kalipso-2026: namespace, servers, --once and the viewer up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut con = ns.data();
    let order: Vec<String> = redis::cmd("SMEMBERS")
        .arg("profiles")
        .query::<Vec<String>>(&mut con)
        .unwrap()
        .into_iter()
        .map(|p| p.strip_prefix("profile_").unwrap_or(&p).to_string())
        .collect();
    let with_windows: BTreeMap<String, bool> = order
        .iter()
        .map(|ip| {
            let n: usize = redis::cmd("ZCARD")
                .arg(format!("twsprofile_{ip}"))
                .query(&mut con)
                .unwrap();
            (ip.clone(), n > 0)
        })
        .collect();
    for ip in [
        "192.0.2.10",
        "192.0.2.44",
        "2001:718:2:1663:dc58:6d9:ef13:51a5",
    ] {
        assert!(
            with_windows.get(ip) == Some(&true),
            "profile {ip} with windows missing from `profiles`/`twsprofile_*`"
        );
    }

    // (a) The tree lists the profiles: as many as the box has room for, each one once, `[+]`
    // on those with windows.
    let s = v.wait("the tree with the profiles", |s| {
        let room = s.tree_rows().len().saturating_sub(2);
        !s.profile_rows().is_empty() && s.profile_rows().len() >= order.len().min(room)
    });
    let mut seen = Vec::new();
    for r in s.profile_rows() {
        let hits: Vec<&String> = order.iter().filter(|ip| s.node_is(r, ip)).collect();
        let [ip] = hits[..] else {
            v.fail(&format!(
                "tree row {r} {:?} is not exactly one profile: {hits:?}",
                s.node_label(r)
            ));
        };
        if seen.contains(ip) {
            v.fail(&format!("profile {ip} twice in the tree"));
        }
        seen.push(ip.clone());
        let (_, cut) = s.node_label(r).unwrap();
        if !cut && s.node_has_plus(r) != with_windows[ip] {
            v.fail(&format!(
                "tree row {r} ({ip}): `[+]` shown {}, windows {}",
                s.node_has_plus(r),
                with_windows[ip]
            ));
        }
    }

    // (b) 192.0.2.10 / timewindow1: the port scan's rows; (c) its evidence.
    let s = check_timeline(v, &mut con, "192.0.2.10", &order);
    let evidence: String = redis::cmd("HGET")
        .arg("profile_192.0.2.10_timewindow1")
        .arg("Evidence")
        .query(&mut con)
        .unwrap();
    let evidence: serde_json::Map<String, Value> =
        serde_json::from_str(&evidence).expect("Evidence is a JSON object");
    let mut lines = Vec::new();
    for v in evidence.values() {
        let e: Value = serde_json::from_str(v.as_str().expect("an Evidence value is a string"))
            .expect("an Evidence value is JSON");
        let f = |k: &str| e.get(k).map(text_of).unwrap_or_default();
        lines.push(format!(
            "Detected {} {}. {}",
            f("type_detection"),
            f("detection_info"),
            f("description")
        ));
    }
    let box_text = |s: &Screen| {
        s.evidence()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let wanted = |s: &Screen| {
        let t = box_text(s);
        lines.iter().all(|l| t.contains(l.as_str()))
    };
    let s = if wanted(&s) {
        s
    } else {
        v.wait("the Evidence box of 192.0.2.10 timewindow1", wanted)
    };
    if !box_text(&s).contains("Detected dport 1337. New horizontal port scan detected to port 1337")
    {
        v.fail(&format!(
            "Evidence box of 192.0.2.10 without its port scan: {}",
            s.evidence()
        ));
    }

    // (d) An IPv6 profile (cut in the tree) whose window has dns flows: `Query:` sub-rows.
    let ip6 = "2001:718:2:1663:dc58:6d9:ef13:51a5";
    let s = check_timeline(v, &mut con, ip6, &order);
    let (rows, _) = s.timeline(ip6, "timewindow1").unwrap();
    let query = rows
        .windows(2)
        .any(|w| w[0].contains(" 53/UDP ") && w[1].trim_start().starts_with("Query:"));
    if !query {
        v.fail(&format!(
            "{ip6}: no `Query:` row under a dns flow: {rows:#?}"
        ));
    }

    // (e) Nothing on stderr, nothing printed over the screen; q ends the viewer with 0.
    let s = v.capture();
    if s.text().contains("Error") || !v.viewer_stderr().trim().is_empty() {
        v.fail("the viewer wrote an error");
    }
    let status = v.quit();
    let err = v.viewer_stderr();
    if status != "0" || !err.trim().is_empty() {
        v.fail(&format!("viewer exit status {status}, stderr {err:?}"));
    }
    eprintln!(
        "kalipso-2026: checks done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
