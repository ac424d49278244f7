//! A model-based test of the tailer alone (in the spirit of Vector's file-source experiments):
//! random sequences of writing whole and partial lines, rotating by rename, polling, committing
//! checkpoints and crashing. Whatever the sequence, the lines delivered and committed equal
//! exactly the lines completely written: none lost, none twice.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use kalipso_ingest::source::checkpoint::Checkpoint;
use kalipso_ingest::source::tail::{TailItem, Tailer};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Write this many whole lines.
    Lines(u8),
    /// Write the first part of the next line (at most once in a row).
    Partial,
    /// Rotate: rename the current file away and start a new one with a fresh header.
    Rotate,
    /// The tailer reads what is there.
    Poll,
    /// The checkpoints (and the lines delivered so far) become durable.
    Commit,
    /// The tailer dies: everything not committed is forgotten; it restarts from checkpoints.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..5).prop_map(Op::Lines),
        1 => Just(Op::Partial),
        1 => Just(Op::Rotate),
        3 => Just(Op::Poll),
        2 => Just(Op::Commit),
        1 => Just(Op::Crash),
    ]
}

fn header(n: u32) -> String {
    format!(
        "#separator \\x09\n#path\tconn\n#open\t2026-11-23-10-00-{n:02}\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n"
    )
}

fn line(i: u32) -> String {
    format!("{i}.0\tC{i}\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n")
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn poll(t: &mut Tailer, delivered: &mut Vec<String>) {
    t.scan().unwrap();
    t.poll(|_, item, _, _| {
        if let TailItem::Record(r) = item {
            delivered.push(r.uid().unwrap_or("?").to_string());
        }
    });
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("conn.log");
    let mut headers = 0u32;
    std::fs::write(&current, header(headers)).unwrap();
    let mut written: Vec<String> = Vec::new(); // lines completely written
    let mut next = 0u32;
    let mut partial: Option<String> = None; // the rest of a half-written line
    let mut durable: HashMap<String, Checkpoint> = HashMap::new();
    let mut committed: Vec<String> = Vec::new();
    let mut delivered: Vec<String> = Vec::new(); // since the last commit
    let mut tailer = Tailer::new(dir.path(), false, HashMap::new());
    let mut rotations = 0;
    for op in ops {
        match op {
            Op::Lines(n) => {
                if let Some(rest) = partial.take() {
                    append(&current, &rest);
                    next += 1;
                    written.push(format!("C{}", next - 1));
                }
                for _ in 0..*n {
                    append(&current, &line(next));
                    written.push(format!("C{next}"));
                    next += 1;
                }
            }
            Op::Partial => {
                if partial.is_none() {
                    let l = line(next);
                    let cut = l.len() / 2;
                    append(&current, &l[..cut]);
                    partial = Some(l[cut..].to_string());
                }
            }
            Op::Rotate => {
                if let Some(rest) = partial.take() {
                    append(&current, &rest);
                    written.push(format!("C{next}"));
                    next += 1;
                }
                rotations += 1;
                std::fs::rename(
                    &current,
                    dir.path()
                        .join(format!("conn.2026-11-23-10-00-{rotations:02}.log")),
                )
                .unwrap();
                headers += 1;
                std::fs::write(&current, header(headers)).unwrap();
            }
            Op::Poll => poll(&mut tailer, &mut delivered),
            Op::Commit => {
                for (k, v) in tailer.take_checkpoints() {
                    let cp = Checkpoint::from_json(&k, &v).unwrap();
                    durable.insert(k, cp);
                }
                committed.append(&mut delivered);
            }
            Op::Crash => {
                delivered.clear();
                tailer = Tailer::new(dir.path(), false, durable.clone());
            }
        }
    }
    // Finish: complete the partial line, read everything, commit.
    if let Some(rest) = partial.take() {
        append(&current, &rest);
        written.push(format!("C{next}"));
    }
    for _ in 0..3 {
        poll(&mut tailer, &mut delivered);
    }
    committed.append(&mut delivered);
    let mut got = committed.clone();
    got.sort();
    let mut want = written.clone();
    want.sort();
    prop_assert_eq!(got, want, "ops: {:?}", ops);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn the_tailer_delivers_every_complete_line_exactly_once(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
