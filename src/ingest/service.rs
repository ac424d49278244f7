//! What the daemon tells systemd (`sd_notify`): `READY=1`, `STATUS=` (what it is doing) and
//! `WATCHDOG=1` at least every half `WATCHDOG_USEC` in every state — reading, waiting for Redis,
//! waiting for the log directory, waiting for a long commit. Every wait of the daemon goes
//! through [`Service::sleep`] or pings between its steps, so no state starves the watchdog.
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The notifier of one daemon run.
#[derive(Debug)]
pub struct Service {
    /// Ping at least this often: half the watchdog interval (`None`: no watchdog).
    every: Option<Duration>,
    last_ping: Instant,
    status: String,
}

impl Service {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID` (for this process only).
    pub fn from_env() -> Service {
        Service {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            // (`every` is half the interval; `ping` sends after half of that.)
            last_ping: Instant::now(),
            status: String::new(),
        }
    }

    /// The longest the daemon may go between pings (half the watchdog interval), if watched.
    pub fn ping_every(&self) -> Option<Duration> {
        self.every
    }

    /// `READY=1`: the daemon is up (it may still be waiting for Redis or the directory; its
    /// status says so).
    pub fn ready(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }

    /// `STOPPING=1`.
    pub fn stopping(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }

    /// `STATUS=<text>`, sent when it changes.
    pub fn status(&mut self, text: &str) {
        if self.status != text {
            self.status = text.to_string();
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(text)]);
        }
    }

    /// The status last sent.
    pub fn current_status(&self) -> &str {
        &self.status
    }

    /// `WATCHDOG=1` when a ping is due (cheap to call often).
    pub fn ping(&mut self) {
        if let Some(every) = self.every {
            // Early (a quarter of the interval): the next step may take a few Redis timeouts
            // before it pings again.
            if self.last_ping.elapsed() >= every / 2 {
                self.last_ping = Instant::now();
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }

    /// The slice a wait is cut into, so that pings keep their pace.
    pub fn slice(&self) -> Duration {
        self.every
            .map(|e| (e / 4).max(Duration::from_millis(10)))
            .unwrap_or(Duration::from_millis(250))
            .min(Duration::from_millis(250))
    }

    /// Sleep `d`, pinging on the way; returns early (false) when `stop` is set.
    pub fn sleep(&mut self, d: Duration, stop: &AtomicBool) -> bool {
        let end = Instant::now() + d;
        loop {
            self.ping();
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(self.slice()));
        }
    }
}

/// The wall-clock time now as `HH:MM:SS` UTC, for status lines ("waiting for Redis since …").
pub fn clock_now() -> String {
    chrono::Utc::now().format("%H:%M:%S UTC").to_string()
}

/// Warnings that can repeat (the directory unreadable, Redis refusing): the first is said at
/// once, the next ones of the same kind at most once a minute, with how many were held back.
#[derive(Debug, Default)]
pub struct Repeats {
    /// Kind → when it was last said, and how many came since.
    seen: std::collections::HashMap<&'static str, (Instant, u64)>,
}

/// How often a repeating warning is said again.
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

impl Repeats {
    /// Say `text` (a warning of `kind`) unless one of its kind was said within a minute.
    pub fn warn(&mut self, kind: &'static str, text: impl std::fmt::Display) {
        let now = Instant::now();
        match self.seen.get_mut(kind) {
            Some((said, held)) if now.duration_since(*said) < REPEAT_EVERY => *held += 1,
            Some((said, held)) => {
                tracing::warn!(
                    "{text} (and {held} more like it in the last {} s)",
                    now.duration_since(*said).as_secs()
                );
                *said = now;
                *held = 0;
            }
            None => {
                tracing::warn!("{text}");
                self.seen.insert(kind, (now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_is_cut_into_slices_and_ends_at_a_stop() {
        let mut s = Service {
            every: Some(Duration::from_millis(40)),
            last_ping: Instant::now(),
            status: String::new(),
        };
        assert!(s.slice() <= Duration::from_millis(10));
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        assert!(s.sleep(Duration::from_millis(50), &stop));
        assert!(start.elapsed() >= Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        let start = Instant::now();
        assert!(!s.sleep(Duration::from_secs(60), &stop));
        assert!(start.elapsed() < Duration::from_secs(1));
        // Unwatched: slices of 250 ms at most.
        let s = Service {
            every: None,
            last_ping: Instant::now(),
            status: String::new(),
        };
        assert_eq!(s.slice(), Duration::from_millis(250));
    }

    #[test]
    fn repeated_warnings_are_counted_not_repeated() {
        let mut r = Repeats::default();
        r.warn("x", "one");
        r.warn("x", "two");
        r.warn("x", "three");
        assert_eq!(r.seen["x"].1, 2);
        r.warn("y", "other kind");
        assert_eq!(r.seen["y"].1, 0);
    }
}
