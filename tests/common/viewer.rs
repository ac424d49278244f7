//! A real terminal viewer (a Kalipso) driven in tmux: its copy with its npm dependencies,
//! installed once per content under the target directory; the viewer's tmux session, driven
//! with `send-keys` and read with `capture-pane -e`; the captured screen as cells with their
//! colours.

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::missing;

/// Written in an installed copy once `npm ci` succeeded.
const MARKER: &str = ".kalipso-ingest-installed";

// ---------------------------------------------------------------------------------------------
// What a viewer test needs.

/// `../shared/viewers/<name>` when its file `entry` is there; else `None`, after [`missing`]
/// (`what` says what the viewer is).
pub fn shared_viewer(name: &str, entry: &str, what: &str) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/viewers")
        .join(name);
    if src.join(entry).is_file() {
        return Some(src);
    }
    missing(&format!("../shared/viewers/{name} ({what})"));
    None
}

/// Whether `program` runs (`tmux -V`, `<program> --version`).
pub fn found(program: &str) -> bool {
    Command::new(program)
        .arg(if program == "tmux" { "-V" } else { "--version" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether every one of `programs` runs; else [`missing`] for the first that does not.
pub fn all_found(programs: &[&str]) -> bool {
    match programs.iter().find(|p| !found(p)) {
        Some(program) => {
            missing(program);
            false
        }
        None => true,
    }
}

/// What `f` gives, tried every `every` for up to `timeout` (at least once); `None` if nothing.
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(x) = f() {
            return Some(x);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------------------------
// The viewer's copy with its npm dependencies, installed once per content.

/// The cargo target directory: the test binary's ancestor with `CACHEDIR.TAG`.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|d| d.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A copy of viewer `name` made of `files` (path in the copy, content) with `npm ci` done, in
/// `target/viewers/<name>/`, named by the hash of `key` (what the copy is made of): made once
/// per key. Concurrent runs install in directories of their own and publish by renaming; a run
/// that finds the copy already published keeps that one. `None`, after [`missing`], when
/// `npm ci` fails.
pub fn npm_installed(name: &str, key: impl Hash, files: &[(PathBuf, Vec<u8>)]) -> Option<PathBuf> {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    let base = target_dir().join("viewers").join(name);
    let dest = base.join(format!("{:016x}", h.finish()));
    loop {
        if dest.join(MARKER).is_file() {
            return Some(dest);
        }
        std::fs::create_dir_all(&base).expect("create the viewer cache directory");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let work = base.join(format!("tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&work).expect("create the install directory");
        for (path, bytes) in files {
            let path = work.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).expect("create the install directory");
            std::fs::write(path, bytes).expect("copy a viewer file");
        }
        let started = Instant::now();
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .expect("run npm ci");
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&work);
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(8).collect();
            missing(&format!(
                "the {name} viewer's npm dependencies (npm ci failed: {})",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
            return None;
        }
        eprintln!(
            "{name}: npm ci in {:.1} s, kept in {}",
            started.elapsed().as_secs_f64(),
            dest.display()
        );
        std::fs::write(work.join(MARKER), "").expect("write the install marker");
        if std::fs::rename(&work, &dest).is_ok() {
            return Some(dest);
        }
        let _ = std::fs::remove_dir_all(&work);
        if dest.join(MARKER).is_file() {
            return Some(dest);
        }
        // a copy left half-made (no marker) by a killed run: replace it
        let _ = std::fs::remove_dir_all(&dest);
    }
}

// ---------------------------------------------------------------------------------------------
// The screen: one `capture-pane -p -e`, as cells with their colours.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colour {
    #[default]
    Default,
    Index(u8),
    Rgb(u8, u8, u8),
}

pub const RED: Colour = Colour::Index(1);
pub const GREEN: Colour = Colour::Index(2);
pub const BLUE: Colour = Colour::Index(4);

#[derive(Clone, Copy, Debug)]
pub struct Cell {
    pub ch: char,
    pub fg: Colour,
    pub bg: Colour,
}

pub struct Screen {
    /// The capture as tmux gave it (escapes included).
    pub ansi: String,
    pub lines: Vec<Vec<Cell>>,
}

/// Whether `c` is a box-drawing character (`─`, `│`, `┬`, `└`, ...).
pub fn is_drawing(c: char) -> bool {
    ('\u{2500}'..='\u{257f}').contains(&c)
}

/// Apply the parameters of one SGR sequence (`ESC[...m`).
fn apply_sgr(params: &str, fg: &mut Colour, bg: &mut Colour) {
    let p: Vec<u16> = params
        .split([';', ':'])
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            0 => (*fg, *bg) = (Colour::Default, Colour::Default),
            n @ 30..=37 => *fg = Colour::Index((n - 30) as u8),
            n @ 90..=97 => *fg = Colour::Index((n - 90 + 8) as u8),
            39 => *fg = Colour::Default,
            n @ 40..=47 => *bg = Colour::Index((n - 40) as u8),
            n @ 100..=107 => *bg = Colour::Index((n - 100 + 8) as u8),
            49 => *bg = Colour::Default,
            n @ (38 | 48) => {
                let target = if n == 38 { &mut *fg } else { &mut *bg };
                match p.get(i + 1) {
                    Some(5) => {
                        *target = Colour::Index(p.get(i + 2).copied().unwrap_or(0) as u8);
                        i += 2;
                    }
                    Some(2) => {
                        let c = |k: usize| p.get(i + k).copied().unwrap_or(0) as u8;
                        *target = Colour::Rgb(c(2), c(3), c(4));
                        i += 4;
                    }
                    _ => {}
                }
            }
            _ => {} // bold, underline, reverse...: not looked at
        }
        i += 1;
    }
}

impl Screen {
    /// Parse a capture; colours carry over line ends, as tmux only writes changes. The shifts
    /// to and from the line-drawing set (SO, SI) are no cells.
    pub fn parse(ansi: String) -> Screen {
        let (mut fg, mut bg) = (Colour::Default, Colour::Default);
        let mut lines = vec![Vec::new()];
        let mut it = ansi.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\x1b' => match it.next() {
                    Some('[') => {
                        let mut params = String::new();
                        for d in it.by_ref() {
                            if ('\x40'..='\x7e').contains(&d) {
                                if d == 'm' {
                                    apply_sgr(&params, &mut fg, &mut bg);
                                }
                                break;
                            }
                            params.push(d);
                        }
                    }
                    Some(']') => {
                        // OSC: up to BEL or ESC \
                        while let Some(d) = it.next() {
                            if d == '\x07' || (d == '\x1b' && it.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                '\n' => lines.push(Vec::new()),
                '\r' | '\x0e' | '\x0f' => {}
                ch => lines.last_mut().unwrap().push(Cell { ch, fg, bg }),
            }
        }
        while lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        Screen { ansi, lines }
    }

    pub fn line(&self, row: usize) -> String {
        self.lines
            .get(row)
            .map_or(String::new(), |l| l.iter().map(|c| c.ch).collect())
    }

    pub fn text(&self) -> String {
        (0..self.lines.len())
            .map(|r| self.line(r))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        (0..self.lines.len()).any(|r| self.line(r).contains(needle))
    }

    /// The first of `rows` with a blue background inside a box of `width` columns at the left
    /// edge, borders excluded: the selected row of a tree there.
    pub fn blue_row(&self, rows: impl IntoIterator<Item = usize>, width: usize) -> Option<usize> {
        rows.into_iter().find(|&r| {
            self.lines.get(r).is_some_and(|l| {
                l.iter()
                    .take(width.saturating_sub(1))
                    .skip(1)
                    .any(|c| c.bg == BLUE)
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The viewer in tmux (a guard: its tmux server goes away on drop, also on a failure).

/// The viewer's tmux session: its server's socket is `tmux.sock` in a temporary folder of its
/// own, which also holds the viewer's stderr and exit status (files the viewer's command
/// writes) and whatever else the test keeps there.
pub struct Viewer {
    dir: tempfile::TempDir,
    /// The tmux session of the viewer.
    pub session: String,
    /// The viewer's stderr, a file in the folder.
    pub stderr: PathBuf,
    /// The viewer's exit status, a file in the folder written when it exits.
    pub exit: PathBuf,
    /// How long a screen may take to show what [`Viewer::wait`] waits for.
    patience: Duration,
    /// Whether [`Viewer::wait`] fails at once when the viewer exited.
    fail_on_exit: bool,
    /// The text of the last screen read (for failures).
    last: RefCell<String>,
}

/// How often [`Viewer::wait`] reads the screen.
const POLL: Duration = Duration::from_millis(250);

impl Viewer {
    /// A viewer (not started yet) in tmux session `session`, in a new temporary folder named
    /// `prefix…`, with its stderr and exit status in the files `stderr` and `exit` there;
    /// [`Viewer::wait`] waits up to `patience`.
    pub fn new(prefix: &str, session: &str, stderr: &str, exit: &str, patience: Duration) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temp dir");
        Viewer {
            session: session.to_string(),
            stderr: dir.path().join(stderr),
            exit: dir.path().join(exit),
            dir,
            patience,
            fail_on_exit: false,
            last: Default::default(),
        }
    }

    /// [`Viewer::wait`] fails at once when the viewer exited.
    pub fn failing_on_exit(mut self) -> Self {
        self.fail_on_exit = true;
        self
    }

    /// The temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file `name` in the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `tmux args` on the viewer's tmux server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(self.path("tmux.sock"))
            .args(args)
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    pub fn capture(&self) -> Screen {
        let out = self.tmux(&["capture-pane", "-p", "-e", "-t", &self.session]);
        let screen = Screen::parse(String::from_utf8_lossy(&out.stdout).into_owned());
        if out.status.success() {
            *self.last.borrow_mut() = screen.text();
        }
        screen
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        if !out.status.success() {
            self.fail(&format!(
                "tmux send-keys {keys:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }

    /// What the viewer wrote on stderr (nothing while the file is not there).
    pub fn viewer_stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The viewer's exit status, once it exited.
    pub fn viewer_exit(&self) -> Option<String> {
        let s = std::fs::read_to_string(&self.exit).unwrap_or_default();
        (!s.trim().is_empty()).then(|| s.trim().to_string())
    }

    /// Fail with `what`, the last screen read, the viewer's stderr and its exit status.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- last screen ---\n{}\n--- viewer stderr ---\n{}\n--- viewer exit status \
             ---\n{}",
            self.last.borrow(),
            std::fs::read_to_string(&self.stderr).unwrap_or_else(|e| format!("(unreadable: {e})")),
            self.viewer_exit()
                .unwrap_or_else(|| "(still running)".into()),
        )
    }

    /// The first screen for which `ok` holds, read every [`POLL`] for up to the patience given
    /// to [`Viewer::new`]; when [`Viewer::failing_on_exit`], fails at once when the viewer
    /// exited.
    pub fn wait(&self, what: &str, ok: impl Fn(&Screen) -> bool) -> Screen {
        let screen = poll(self.patience, POLL, || {
            let s = self.capture();
            if ok(&s) {
                return Some(s);
            }
            if self.fail_on_exit && self.viewer_exit().is_some() {
                self.fail(&format!("the viewer exited while waiting for: {what}"));
            }
            None
        });
        screen.unwrap_or_else(|| {
            self.fail(&format!(
                "timed out ({:?}) waiting for: {what}",
                self.patience
            ))
        })
    }

    /// Move a tree's selection with Up/Down to the row `row_of` finds: `selected` reads the
    /// selected row, and after each move `settle(screen before, row wanted)` waits for the screen
    /// to follow. Fails when the selection is not there after 5 moves.
    pub fn select(
        &self,
        what: &str,
        row_of: impl Fn(&Screen) -> Option<usize>,
        selected: impl Fn(&Screen) -> Option<usize>,
        settle: impl Fn(&Screen, usize),
    ) {
        for _ in 0..5 {
            let s = self.wait(&format!("{what} in the tree, and a selected row"), |s| {
                row_of(s).is_some() && selected(s).is_some()
            });
            let (want, at) = (row_of(&s).unwrap(), selected(&s).unwrap());
            if want == at {
                return;
            }
            let key = if want > at { "Down" } else { "Up" };
            self.keys(&vec![key; want.abs_diff(at)]);
            settle(&s, want);
        }
        self.fail(&format!("could not select {what} in the tree"));
    }

    /// Press q and wait (as long as [`Viewer::wait`]) for the viewer to exit: its exit status.
    pub fn quit(&self) -> String {
        self.keys(&["q"]);
        poll(self.patience, Duration::from_millis(100), || {
            self.viewer_exit()
        })
        .unwrap_or_else(|| {
            self.capture();
            self.fail("the viewer did not exit after q")
        })
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
