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
}

impl RedisServer {
    /// Start one and wait until it answers. Tests run in parallel, so a port found free can be
    /// taken by another test's server before ours binds it: the server is checked to be ours
    /// (its working directory) and started again on another port otherwise.
    pub fn start() -> RedisServer {
        for _ in 0..20 {
            if let Some(server) = RedisServer::try_start() {
                return server;
            }
        }
        panic!("could not start a private redis-server");
    }

    fn try_start() -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
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
        };
        let want = server._dir.path().canonicalize().ok()?;
        let ours = redis::Client::open(server.url())
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

    /// A connection to it.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
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

fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}
