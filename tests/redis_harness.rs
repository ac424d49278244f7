//! The test harness's own Redis: started on a free port, isolated, gone after the test.

mod common;

use common::redis_server::RedisServer;

#[test]
fn private_redis_starts_answers_and_is_isolated() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.url(), b.url());
    assert!(!a.url().contains(":6379/"));
    let mut ca = a.connection();
    let mut cb = b.connection();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut ca).unwrap();
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut cb).unwrap();
    assert_eq!(got, None);
    let pong: String = redis::cmd("PING").query(&mut ca).unwrap();
    assert_eq!(pong, "PONG");
}
