//! The daemon's fields budget: when the fields of many filling windows fall due together, a
//! flush renders them until its budget is spent and leaves the rest for the next flushes, so
//! every window still gets its fields, spread over flushes.

mod common;

use common::dns_conn;

use std::time::Duration;

use kalipso_ingest::model::flow::Flow;
use kalipso_ingest::profile::profiler::{FieldsEvery, Profiler, ProfilerConfig, Writes};
use kalipso_ingest::profile::routing::{Direction, Routing};

fn conn(i: u8) -> Flow {
    dns_conn(
        &format!("C{i}"),
        1000.0 + f64::from(i),
        &format!("10.0.0.{i}"),
    )
}

fn profiler(budget: Option<Duration>) -> Profiler {
    let routing = Routing {
        home: Vec::new(),
        direction: Direction::Out,
    };
    let mut cfg = ProfilerConfig::new(routing, 3600.0);
    cfg.fields_every = FieldsEvery::Interval(Duration::ZERO);
    cfg.fields_budget = budget;
    let mut p = Profiler::new(cfg, false);
    for i in 1..=3 {
        p.add_conn(conn(i), u64::from(i));
    }
    p
}

fn with_fields(w: &Writes) -> usize {
    w.windows
        .iter()
        .filter(|(_, w)| !w.fields.is_empty())
        .count()
}

#[test]
fn without_a_budget_every_due_window_gets_its_fields_at_once() {
    let mut p = profiler(None);
    assert_eq!(with_fields(&p.take_writes()), 3);
    assert_eq!(with_fields(&p.take_writes()), 0);
}

#[test]
fn a_spent_budget_leaves_the_other_windows_for_the_next_flushes() {
    // A budget shorter than any render: one window's fields per flush.
    let mut p = profiler(Some(Duration::from_nanos(1)));
    let first = p.take_writes();
    assert_eq!(with_fields(&first), 1);
    // Lines and flows of every window still go at once.
    assert_eq!(
        first
            .windows
            .iter()
            .filter(|(_, w)| !w.flows.is_empty())
            .count(),
        3
    );
    assert_eq!(with_fields(&p.take_writes()), 1);
    assert_eq!(with_fields(&p.take_writes()), 1);
    assert_eq!(with_fields(&p.take_writes()), 0);
}

#[test]
fn closing_windows_are_spread_too_and_stay_until_their_fields_are_written() {
    use kalipso_ingest::zeek::LogKind;
    let mut p = profiler(Some(Duration::from_nanos(1)));
    for kind in [LogKind::Conn, LogKind::Dns, LogKind::Http, LogKind::Ssl] {
        p.finish_log(kind); // every log at its end: all three windows close
    }
    let mut written = 0;
    for _ in 0..3 {
        written += with_fields(&p.take_writes());
        p.evict();
        assert_eq!(p.open_windows(), 3 - written);
    }
    assert_eq!(written, 3);
}
