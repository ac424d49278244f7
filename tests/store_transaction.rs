//! A flush transaction sent in parts (windows queued as they are rendered, then the commit) is
//! all or nothing: parts queued in Redis are invisible until the commit, and a transaction
//! dropped before it leaves the database untouched.

mod common;

use common::redis_server::RedisServer;
use kalipso_ingest::model::window::{Grid, WinId};
use kalipso_ingest::profile::profiler::Writes;
use kalipso_ingest::profile::window_state::WindowWrite;
use kalipso_ingest::store::redis_store::{RedisStore, Target};

fn window(field: &str) -> WindowWrite {
    WindowWrite {
        fields: vec![(field.to_string(), "{}".to_string())],
        has_conn: true,
        has_data: true,
        ..WindowWrite::default()
    }
}

fn keys(server: &RedisServer) -> Vec<String> {
    let mut con = server.connection();
    let mut k: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    k.sort();
    k
}

#[test]
fn parts_are_invisible_until_the_commit_and_a_dropped_transaction_leaves_nothing() {
    let server = RedisServer::start();
    let mut store = RedisStore::connect(&Target::new(&server.url())).unwrap();
    let grid = Grid::anchored_at(1000.0, 3600.0);
    let a = WinId::new("10.0.0.1".parse().unwrap(), 0);
    let b = WinId::new("10.0.0.2".parse().unwrap(), 0);

    // Dropped after two parts, the second big enough to be sent (queued in Redis): nothing
    // reaches the database, and the connection is usable again.
    {
        let mut tx = store.begin().unwrap();
        tx.windows(&[(a, window("DstIPs"))], grid).unwrap();
        let mut big = window("SrcIPs");
        big.flows = vec![("uid".to_string(), "x".repeat(5 << 20))];
        tx.windows(&[(b, big)], grid).unwrap();
        assert_eq!(keys(&server), Vec::<String>::new());
    }
    assert_eq!(keys(&server), Vec::<String>::new());

    // Committed: the parts and the rest land together.
    let mut tx = store.begin().unwrap();
    tx.windows(&[(a, window("DstIPs"))], grid).unwrap();
    assert_eq!(keys(&server), Vec::<String>::new());
    let rest = Writes {
        windows: vec![(b, window("SrcIPs"))],
        ..Writes::default()
    };
    let cps = vec![("file".to_string(), "{}".to_string())];
    tx.commit(&rest, grid, "normal", &cps, 7).unwrap();
    let mut con = server.connection();
    let da: Option<String> = redis::cmd("HGET")
        .arg("profile_10.0.0.1_timewindow1")
        .arg("DstIPs")
        .query(&mut con)
        .unwrap();
    let db: Option<String> = redis::cmd("HGET")
        .arg("profile_10.0.0.2_timewindow1")
        .arg("SrcIPs")
        .query(&mut con)
        .unwrap();
    assert_eq!((da.as_deref(), db.as_deref()), (Some("{}"), Some("{}")));
    assert_eq!(store.flush_seq().unwrap(), 7);
}

#[test]
fn a_flush_redis_refuses_fails_whole_and_the_next_one_lands() {
    let server = RedisServer::start();
    let mut store = RedisStore::connect(&Target::new(&server.url())).unwrap();
    let grid = Grid::anchored_at(1000.0, 3600.0);
    let a = WinId::new("10.0.0.1".parse().unwrap(), 0);
    let writes = Writes {
        windows: vec![(a, window("DstIPs"))],
        ..Writes::default()
    };
    let mut con = server.connection();
    // Redis out of memory refuses every write while it is queued in the transaction.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let refused = store.write(&writes, grid, "normal", &[], 1);
    assert!(refused.is_err(), "{refused:?}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(keys(&server), Vec::<String>::new());
    // The same connection takes the next flush.
    store.write(&writes, grid, "normal", &[], 1).unwrap();
    assert_eq!(store.flush_seq().unwrap(), 1);
}
