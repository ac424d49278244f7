//! Fuzz the Zeek reader: any bytes, read as any log kind, must never panic.
#![no_main]

use kalipso_ingest::source::reader::from_reader;
use kalipso_ingest::zeek::LogKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the kind the file name would suggest.
    let (kind, body) = match data.split_first() {
        Some((k, rest)) => (
            match k % 5 {
                0 => Some(LogKind::Conn),
                1 => Some(LogKind::Dns),
                2 => Some(LogKind::Http),
                3 => Some(LogKind::Ssl),
                _ => None,
            },
            rest,
        ),
        None => (None, data),
    };
    let mut reader = from_reader("fuzz.log", body, kind);
    while let Some(item) = reader.next() {
        if let Ok(record) = item {
            let _ = record.into_owned();
        }
    }
});
