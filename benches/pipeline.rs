//! Criterion benchmarks of the stages after parsing: the per-window aggregate update, timeline
//! line formatting, and the Python-JSON encoding of a large field.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kalipso_ingest::model::alt::AltRecord;
use kalipso_ingest::model::flow::{Flow, Role};
use kalipso_ingest::model::order::{FlowKey, Position};
use kalipso_ingest::profile::aggregate::WindowAggregate;
use kalipso_ingest::profile::evidence::Judge;
use kalipso_ingest::source::reader;
use kalipso_ingest::timeline::lines::push_sub_line;
use kalipso_ingest::timeline::{Clock, PortNames, lines};
use kalipso_ingest::zeek::Record;

fn flows(n: u64) -> Vec<Flow> {
    (0..n)
        .map(|i| Flow {
            ts: 1_700_000_000.0 + i as f64 * 0.5,
            uid: format!("C{i:017}").into(),
            saddr: "10.0.0.7".parse().unwrap(),
            sport: (1024 + i % 60000) as u16,
            daddr: format!("23.{}.{}.{}", i % 200, (i / 7) % 256, i % 250 + 1)
                .parse()
                .unwrap(),
            dport: [53, 443, 80, 8080][(i % 4) as usize],
            proto: if i % 4 == 0 { "udp" } else { "tcp" }.into(),
            appproto: Default::default(),
            dur: Some(0.25),
            origstate: "SF".into(),
            spkts: 3,
            dpkts: 4,
            sbytes: 300,
            dbytes: 4000,
        })
        .collect()
}

fn key(f: &Flow, i: usize) -> FlowKey {
    FlowKey::new(
        f.ts,
        &f.uid,
        Position {
            line: i as u64,
            seq: i as u64,
        },
    )
}

fn aggregate(c: &mut Criterion) {
    let fs = flows(10_000);
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(fs.len() as u64));
    g.bench_function("add 10k flows (client side)", |b| {
        b.iter(|| {
            let mut agg = WindowAggregate::default();
            for (i, f) in fs.iter().enumerate() {
                agg.add(black_box(f), &[Role::Client], key(f, i));
            }
            agg
        })
    });
    let mut agg = WindowAggregate::default();
    for (i, f) in fs.iter().enumerate() {
        agg.add(f, &[Role::Client], key(f, i));
    }
    g.throughput(Throughput::Elements(1));
    let judge = Judge::plain(std::net::IpAddr::from([10, 0, 0, 1]));
    g.bench_function("fields of a 10k-flow window (Python-JSON)", |b| {
        b.iter(|| black_box(&agg).fields(&judge))
    });
    g.finish();
}

fn timeline(c: &mut Criterion) {
    let fs = flows(1_000);
    let names = PortNames::builtin();
    let clock = Clock::Utc;
    let dns = r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.7","id.orig_p":5,"id.resp_h":"8.8.8.8","id.resp_p":53,"query":"mtalk.google.com","qclass_name":"C_INTERNET","qtype_name":"A","rcode_name":"NOERROR","answers":["mobile-gtalk.l.google.com","74.125.71.188"],"TTLs":[53.0,53.0]}
"#;
    let mut r = reader::from_reader("dns.log", dns.as_bytes(), None);
    let record = match r.next() {
        Some(Ok(r)) => r.into_owned(),
        _ => panic!("dns fixture"),
    };
    let Record::Dns(record) = record else {
        panic!("dns fixture")
    };
    let mut g = c.benchmark_group("timeline");
    g.throughput(Throughput::Elements(fs.len() as u64));
    g.bench_function("main line + timestamp, 1k flows", |b| {
        b.iter(|| {
            fs.iter()
                .map(|f| {
                    let main = lines::main_line(f, Role::Client, &names).unwrap_or_default();
                    clock.format(f.ts).len() + main.len()
                })
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("dns record: _altflows JSON + sub-line", |b| {
        b.iter(|| AltRecord::from_dns(black_box(&record), push_sub_line))
    });
    g.finish();
}

fn flow_json(c: &mut Criterion) {
    let fs = flows(1_000);
    let mut g = c.benchmark_group("pyjson");
    g.throughput(Throughput::Elements(fs.len() as u64));
    g.bench_function("flow JSON, 1k flows", |b| {
        b.iter(|| {
            fs.iter()
                .map(|f| f.to_flow_json("malicious").len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, aggregate, timeline, flow_json);
criterion_main!(benches);
