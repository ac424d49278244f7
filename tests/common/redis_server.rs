//! A real `redis-server` per test: a free loopback port, no persistence, stopped on drop.
//! No test depends on a Redis already running, and none touches port 6379.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private redis-server for one test.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    persistent: bool,
    /// More `redis-server` arguments (`--maxmemory`, ...), kept across restarts.
    extra: Vec<String>,
}

impl RedisServer {
    /// Start one and wait until it answers. Tests run in parallel, so a port found free can be
    /// taken by another test's server before ours binds it: the server is checked to be ours
    /// (its working directory) and started again on another port otherwise.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// One with an append-only file synced on every write, so [`RedisServer::restart`] keeps
    /// every committed write.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    /// One started with more `redis-server` arguments (e.g. `["--maxmemory", "2mb"]`).
    pub fn start_with_args(persistent: bool, extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..20 {
            if let Some(server) = RedisServer::try_start(persistent, &extra) {
                return server;
            }
        }
        panic!("could not start a private redis-server");
    }

    fn start_with(persistent: bool) -> RedisServer {
        for _ in 0..20 {
            if let Some(server) = RedisServer::try_start(persistent, &[]) {
                return server;
            }
        }
        panic!("could not start a private redis-server");
    }

    fn spawn(port: u16, dir: &std::path::Path, persistent: bool, extra: &[String]) -> Child {
        let aof: &[&str] = if persistent {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(aof)
            .args(["--protected-mode", "yes"])
            .args(extra)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)")
    }

    /// Kill the server (SIGKILL) and start it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Kill the server (SIGKILL); [`RedisServer::start_again`] brings it back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freeze the server (SIGSTOP): it keeps its connections and answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Let a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{name} redis-server");
    }

    /// Start the killed server again on the same port and directory.
    pub fn start_again(&mut self) {
        self.child = Self::spawn(self.port, self._dir.path(), self.persistent, &self.extra);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_start(persistent: bool, extra: &[String]) -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut child = Self::spawn(port, dir.path(), persistent, extra);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return None; // could not bind: someone else has the port
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let server = RedisServer {
            child,
            port,
            _dir: dir,
            persistent,
            extra: extra.to_vec(),
        };
        let want = server._dir.path().canonicalize().ok()?;
        let ours = redis::Client::open(server.url_with_password())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("dir")
                    .query::<Vec<String>>(&mut c)
            })
            .ok()
            .and_then(|v| v.get(1).map(std::path::PathBuf::from))
            .and_then(|p| p.canonicalize().ok());
        (ours.as_deref() == Some(want.as_path())).then_some(server)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its password, when started with `--requirepass`.
    pub fn password(&self) -> Option<&str> {
        let at = self.extra.iter().position(|a| a == "--requirepass")?;
        self.extra.get(at + 1).map(String::as_str)
    }

    /// Its URL with the password, if it has one.
    pub fn url_with_password(&self) -> String {
        match self.password() {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        }
    }

    /// A connection to it.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url_with_password())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}
