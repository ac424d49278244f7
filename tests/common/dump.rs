//! A normalized dump of a Redis database: every key (sorted) with its type and value; hash
//! and list values that are JSON are parsed, so golden files read like data.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

/// The stored grid anchor (`kalipso-ingest:anchor`, start of `timewindow1`).
pub fn stored_anchor(con: &mut redis::Connection) -> f64 {
    redis::cmd("GET")
        .arg("kalipso-ingest:anchor")
        .query::<String>(con)
        .unwrap()
        .parse()
        .unwrap()
}

/// Every key of the database as `{key: {"type": t, "value": v}}`, keys sorted.
pub fn dump(con: &mut redis::Connection) -> Value {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    keys.sort();
    let mut out = Map::new();
    for key in keys {
        let t: String = redis::cmd("TYPE").arg(&key).query(con).unwrap();
        let value = match t.as_str() {
            "string" => {
                let v: String = redis::cmd("GET").arg(&key).query(con).unwrap();
                Value::String(v)
            }
            "hash" => {
                let m: BTreeMap<String, String> =
                    redis::cmd("HGETALL").arg(&key).query(con).unwrap();
                Value::Object(m.into_iter().map(|(k, v)| (k, parse(&v))).collect())
            }
            "set" => {
                let mut m: Vec<String> = redis::cmd("SMEMBERS").arg(&key).query(con).unwrap();
                m.sort();
                json!(m)
            }
            "zset" => {
                let m: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(con)
                    .unwrap();
                json!(m)
            }
            "list" => {
                // `--no-flows`' frames are binary: shown lossily (tests compare them apart).
                let m: Vec<Vec<u8>> = redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(con)
                    .unwrap();
                let m: Vec<String> = m
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect();
                json!(m)
            }
            other => panic!("unexpected type {other} of {key}"),
        };
        out.insert(key, json!({"type": t, "value": value}));
    }
    Value::Object(out)
}

/// The dump without the keys that depend on how a run went rather than on the data: file
/// checkpoints (paths, inodes) and the flush counter.
pub fn without_run_state(mut dump: Value) -> Value {
    if let Some(m) = dump.as_object_mut() {
        m.shift_remove("kalipso-ingest:checkpoints");
        m.shift_remove("kalipso-ingest:flush-seq");
    }
    dump
}

/// A value parsed as JSON when it is a JSON object or list, else the string.
fn parse(v: &str) -> Value {
    if v.starts_with('{') || v.starts_with('[') {
        if let Ok(x) = serde_json::from_str(v) {
            return x;
        }
    }
    Value::String(v.to_string())
}

/// Raw hash fields (no parsing), for byte-exact comparisons.
pub fn hash(con: &mut redis::Connection, key: &str) -> BTreeMap<String, String> {
    redis::cmd("HGETALL").arg(key).query(con).unwrap()
}

/// Compare with a golden file; `BLESS=1` (re)writes it instead.
pub fn assert_golden(got: &Value, path: &Path) {
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (run the test with BLESS=1 and review it)",
            path.display()
        )
    });
    if want != text {
        let fresh = path.with_extension("actual.json");
        std::fs::write(&fresh, &text).unwrap();
        panic!(
            "{} differs from the golden file; the new dump is in {} (diff them; BLESS=1 accepts it)",
            path.display(),
            fresh.display()
        );
    }
}

/// Where two dumps differ, for a failure message: the keys only one has, and for the first
/// keys whose values differ, the fields (hash) or positions (list) that differ.
pub fn dump_diff(got: &Value, want: &Value) -> String {
    let empty = Map::new();
    let (g, w) = (
        got.as_object().unwrap_or(&empty),
        want.as_object().unwrap_or(&empty),
    );
    let mut out = Vec::new();
    for k in w.keys().filter(|k| !g.contains_key(*k)) {
        out.push(format!("missing: {k}"));
    }
    for k in g.keys().filter(|k| !w.contains_key(*k)) {
        out.push(format!("extra: {k}"));
    }
    for (k, gv) in g.iter() {
        let Some(wv) = w.get(k) else { continue };
        if gv == wv {
            continue;
        }
        let (gv, wv) = (&gv["value"], &wv["value"]);
        let detail = match (gv, wv) {
            (Value::Object(a), Value::Object(b)) => {
                let fields: Vec<String> = a
                    .keys()
                    .chain(b.keys())
                    .filter(|f| a.get(*f) != b.get(*f))
                    .take(5)
                    .map(|f| {
                        format!(
                            "{f}: got {:.200} want {:.200}",
                            show(a.get(f)),
                            show(b.get(f))
                        )
                    })
                    .collect();
                fields.join("; ")
            }
            (Value::Array(a), Value::Array(b)) => {
                let at = (0..a.len().max(b.len())).find(|i| a.get(*i) != b.get(*i));
                format!(
                    "lengths {} vs {}, first difference at {at:?}: got {:.200} want {:.200}",
                    a.len(),
                    b.len(),
                    show(at.and_then(|i| a.get(i))),
                    show(at.and_then(|i| b.get(i)))
                )
            }
            _ => format!("got {:.200} want {:.200}", gv.to_string(), wv.to_string()),
        };
        out.push(format!("differs: {k}: {detail}"));
        if out.len() > 12 {
            break;
        }
    }
    out.join("\n")
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(none)".to_string(), Value::to_string)
}
