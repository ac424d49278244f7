//! Generate a large, realistic Zeek log directory, deterministically (seeded), for the
//! end-to-end benchmark: TSV conn/dns/ssl/http logs as Zeek's ASCII writer lays them out.
//!
//! `cargo run --release --example generate -- OUT_DIR [CONNS] [SEED] [HOURS]`
//!
//! Traffic: 2,000 home hosts (10.0.0.0/16) talking to 20,000 external servers over HOURS hours
//! (default four):
//! DNS queries with answers, HTTPS with TLS records, HTTP with one or two requests per
//! connection, other TCP/UDP, a few hosts beaconing every 60 s (periodic letters), and one port
//! scan (thousands of rejected connections).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn header(path: &str, fields: &str, types: &str) -> String {
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#open\t2026-11-23-10-00-00\n#fields\t{fields}\n#types\t{types}\n"
    )
}

const CONN_F: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";
const CONN_T: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]";
const DNS_F: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected";
const DNS_T: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool";
const SSL_F: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tcipher\tcurve\tserver_name\tresumed\tlast_alert\tnext_protocol\testablished\tcert_chain_fuids\tclient_cert_chain_fuids\tsubject\tissuer\tclient_subject\tclient_issuer\tvalidation_status";
const SSL_T: &str = "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tbool\tstring\tstring\tbool\tvector[string]\tvector[string]\tstring\tstring\tstring\tstring\tstring";
const HTTP_F: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\tinfo_code\tinfo_msg\ttags\tusername\tpassword\tproxied\torig_fuids\torig_filenames\torig_mime_types\tresp_fuids\tresp_filenames\tresp_mime_types";
const HTTP_T: &str = "time\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring\tcount\tstring\tset[enum]\tstring\tstring\tset[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]";

const UID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn uid(rng: &mut Rng) -> String {
    let mut s = String::from("C");
    for _ in 0..17 {
        s.push(UID_ALPHABET[rng.below(UID_ALPHABET.len() as u64) as usize] as char);
    }
    s
}

fn home(i: u64) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 1)
}

fn external(i: u64) -> String {
    format!(
        "{}.{}.{}.{}",
        23 + i % 180,
        (i / 7) % 256,
        (i / 13) % 256,
        i % 254 + 1
    )
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = Path::new(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/kalipso-bench"),
    );
    let conns: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    std::fs::create_dir_all(out)?;
    let open = |name: &str| -> std::io::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(out.join(name))?,
        ))
    };
    let (mut conn, mut dns, mut ssl, mut http) = (
        open("conn.log")?,
        open("dns.log")?,
        open("ssl.log")?,
        open("http.log")?,
    );
    conn.write_all(header("conn", CONN_F, CONN_T).as_bytes())?;
    dns.write_all(header("dns", DNS_F, DNS_T).as_bytes())?;
    ssl.write_all(header("ssl", SSL_F, SSL_T).as_bytes())?;
    http.write_all(header("http", HTTP_F, HTTP_T).as_bytes())?;

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = 1_763_892_000.0; // 2025-11-23 10:00:00 UTC
    let hours: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let span = hours * 3600.0;
    let step = span / conns as f64;
    let resolvers = ["8.8.8.8", "1.1.1.1", "9.9.9.9"];
    let names = [
        "example.com",
        "mtalk.google.com",
        "cdn.example.net",
        "api.service.io",
        "update.vendor.org",
    ];
    let scanner = home(7);
    let scan_target = home(1500);
    let mut alt_lines = 0u64;
    for i in 0..conns {
        let ts = start + i as f64 * step + rng.unit() * step;
        let id = uid(&mut rng);
        let h = rng.below(2000);
        let src = home(h);
        let sport = 1024 + rng.below(60000);
        let kind = rng.below(100);
        // Periodic beacons: host 42..46 every ~60 s to one C2 (overrides the draw).
        let beacon = i % (conns / (span as u64 / 60).max(1)).max(1) == 0;
        let scan = i % 200 == 0;
        let (dst, dport, proto, service, state, ob, rb, dur): (
            String,
            u64,
            &str,
            &str,
            &str,
            u64,
            u64,
            f64,
        ) = if scan {
            (
                scan_target.clone(),
                1 + (i / 200) % 65535,
                "tcp",
                "-",
                "REJ",
                0,
                0,
                0.0,
            )
        } else if beacon {
            (
                "185.100.87.1".into(),
                443,
                "tcp",
                "ssl",
                "SF",
                517,
                4096,
                0.4,
            )
        } else if kind < 50 {
            (
                resolvers[(h % 3) as usize].into(),
                53,
                "udp",
                "dns",
                "SF",
                40 + rng.below(30),
                80 + rng.below(200),
                0.02 + rng.unit() * 0.05,
            )
        } else if kind < 75 {
            (
                external(rng.below(20000)),
                443,
                "tcp",
                "ssl",
                "SF",
                600 + rng.below(3000),
                2000 + rng.below(200_000),
                0.1 + rng.unit() * 30.0,
            )
        } else if kind < 85 {
            (
                external(rng.below(20000)),
                80,
                "tcp",
                "http",
                "SF",
                300 + rng.below(800),
                500 + rng.below(50_000),
                0.05 + rng.unit() * 5.0,
            )
        } else if kind < 95 {
            (
                external(rng.below(20000)),
                1024 + rng.below(30000),
                "tcp",
                "-",
                if rng.below(3) == 0 { "S0" } else { "SF" },
                rng.below(5000),
                rng.below(5000),
                rng.unit() * 10.0,
            )
        } else {
            (
                external(rng.below(20000)),
                123,
                "udp",
                "-",
                "SF",
                48,
                48,
                0.01,
            )
        };
        let src = if scan {
            scanner.clone()
        } else if beacon {
            home(42 + (i % 5))
        } else {
            src
        };
        let (op, rp) = (1 + ob / 500, 1 + rb / 1400);
        writeln!(
            conn,
            "{ts:.6}\t{id}\t{src}\t{sport}\t{dst}\t{dport}\t{proto}\t{service}\t{dur:.6}\t{ob}\t{rb}\t{state}\tT\tF\t0\tShADadfF\t{op}\t{}\t{rp}\t{}\t(empty)",
            ob + op * 40,
            rb + rp * 40
        )?;
        match service {
            "dns" => {
                let q = names[rng.below(names.len() as u64) as usize];
                writeln!(
                    dns,
                    "{ts:.6}\t{id}\t{src}\t{sport}\t{dst}\t53\tudp\t{}\t0.021\t{q}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t{}\t300.000000\tF",
                    rng.below(65535),
                    external(rng.below(20000))
                )?;
                alt_lines += 1;
            }
            "ssl" => {
                let sni = if beacon {
                    "c2.badness.example".to_string()
                } else {
                    format!("host{}.example.org", rng.below(5000))
                };
                writeln!(
                    ssl,
                    "{:.6}\t{id}\t{src}\t{sport}\t{dst}\t{dport}\tTLSv12\tTLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\tx25519\t{sni}\tF\t-\th2\tT\tFa1,Fa2\t(empty)\tCN={sni}\tCN=Example CA,O=Example\t-\t-\tok",
                    ts + 0.05
                )?;
                alt_lines += 1;
            }
            "http" => {
                for depth in 1..=1 + rng.below(2) {
                    writeln!(
                        http,
                        "{:.6}\t{id}\t{src}\t{sport}\t{dst}\t80\t{depth}\tGET\twww.site{}.example\t/page/{}\t-\t1.1\tMozilla/5.0 (X11; Linux x86_64)\t-\t0\t{}\t200\tOK\t-\t-\t(empty)\t-\t-\t-\t-\t-\t-\tFh{i}\t-\ttext/html",
                        ts + 0.01 * depth as f64,
                        rng.below(3000),
                        rng.below(100),
                        rb / 2
                    )?;
                    alt_lines += 1;
                }
            }
            _ => {}
        }
    }
    for f in [&mut conn, &mut dns, &mut ssl, &mut http] {
        f.flush()?;
    }
    eprintln!(
        "generated {conns} conn lines and {alt_lines} dns/ssl/http lines in {}",
        out.display()
    );
    Ok(())
}
