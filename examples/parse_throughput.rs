//! Throughput of the Zeek reader on real files: prints records, lines/s and MB/s per file.
//!
//! `cargo run --release --example parse_throughput -- FILE [FILE...] [--repeat N]`
//! Each file is read into memory (gunzipped) first and parsed N times (default 20), so the
//! figure is the parser's, not the disk's.

use std::io::Read;
use std::time::Instant;

use kalipso_ingest::source::reader::from_reader;
use kalipso_ingest::zeek::LogKind;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 20usize;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args.get(i + 1).ok_or("--repeat needs a number")?.parse()?;
        args.drain(i..=i + 1);
    }
    for file in &args {
        let raw = std::fs::read(file)?;
        let mut bytes = Vec::new();
        if raw.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut bytes)?;
        } else {
            bytes = raw;
        }
        let kind = LogKind::from_file_name(std::path::Path::new(file));
        let start = Instant::now();
        let (mut records, mut bad) = (0u64, 0u64);
        for _ in 0..repeat {
            let mut reader = from_reader(file, &bytes[..], kind);
            while let Some(item) = reader.next() {
                match item {
                    Ok(_) => records += 1,
                    Err(_) => bad += 1,
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{file}: {} records/pass, {bad} malformed, {:.0} lines/s, {:.1} MB/s",
            records / repeat as u64,
            (records + bad) as f64 / secs,
            (bytes.len() * repeat) as f64 / secs / 1e6
        );
    }
    Ok(())
}
