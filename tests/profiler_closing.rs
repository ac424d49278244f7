//! When a window closes and leaves memory: `hold` after its end; with a batch run's schedule
//! of its conns, the join grace after it when its conns are all in, longer when one is still
//! to come.

mod common;

use common::dns_conn;

use kalipso_ingest::model::flow::Flow;
use kalipso_ingest::profile::profiler::{Profiler, ProfilerConfig};
use kalipso_ingest::profile::routing::{Direction, Routing};
use kalipso_ingest::profile::schedule::ConnSchedule;
use kalipso_ingest::zeek::LogKind;

fn conn(i: u32, ts: f64) -> Flow {
    dns_conn(&format!("C{i}"), ts, "10.0.0.1")
}

/// A profiler (3600 s windows held `hold` after their end, or 3600 s when a conn is still
/// due) with conns at 1000 s and at `until` (only the conn log is read); with a schedule of
/// those conns, and of `due` (a conn of the first window written after them) when given.
fn profiler(until: f64, schedule: bool, due: Option<f64>) -> Profiler {
    let routing = Routing {
        home: Vec::new(),
        direction: Direction::Out,
    };
    let mut cfg = ProfilerConfig::new(routing, 3600.0);
    cfg.hold = 600.0;
    cfg.hold_for_late_conn = Some(3600.0);
    let mut p = Profiler::new(cfg, false);
    if schedule {
        let mut s = ConnSchedule::default();
        for ts in [1000.0, until].into_iter().chain(due) {
            s.conn(ts, 3600.0, 60.0, ["10.0.0.1".parse().unwrap()]);
        }
        p.set_conn_schedule(s);
    }
    for kind in [LogKind::Dns, LogKind::Http, LogKind::Ssl] {
        p.finish_log(kind);
    }
    p.add_conn(conn(1, 1000.0), 1);
    p.add_conn(conn(2, until), 2);
    p.set_conns_read(2);
    p
}

/// Windows in memory after a flush and an eviction.
fn open_after_flush(mut p: Profiler) -> usize {
    p.take_writes();
    p.evict();
    p.open_windows()
}

#[test]
fn without_a_schedule_a_window_stays_for_the_hold() {
    assert_eq!(open_after_flush(profiler(3600.0 + 599.0, false, None)), 2);
    assert_eq!(open_after_flush(profiler(3600.0 + 600.0, false, None)), 1);
}

#[test]
fn a_window_whose_conns_are_all_in_leaves_after_the_join_grace() {
    assert_eq!(open_after_flush(profiler(3600.0 + 60.0, true, None)), 1);
    // Not before the grace (60 s) is over.
    assert_eq!(open_after_flush(profiler(3600.0 + 30.0, true, None)), 2);
}

#[test]
fn a_window_still_expecting_a_conn_stays_longer_than_the_hold() {
    assert_eq!(
        open_after_flush(profiler(3600.0 + 600.0, true, Some(2000.0))),
        2
    );
    // Up to its own hold: then the late conn will reopen it from Redis.
    assert_eq!(
        open_after_flush(profiler(3600.0 + 3600.0, true, Some(2000.0))),
        1
    );
}
