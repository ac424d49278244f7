//! `--no-flows`: the frames a window's payloads are stored in — the store keeps one LIST per
//! window (`store::keys::records`), one element (a frame) per flush that changed the window's
//! records, replaced whole when a write holds all of them:
//!
//! ```text
//! frame := version:u8  zstd frame of one payload
//! ```
//!
//! Version 1: zstd at [`LEVEL`] with the dictionary `v1.dict` (32 KiB, trained on the
//! payloads of the real captures in `../shared/zeek-corpus/` by
//! `scripts/train-records-dict.py`; a payload of a few records compresses to about a quarter
//! of its size with it, 40 % without). Version 0: no dictionary (read only). A frame of an
//! unknown version, or one that does not decompress, is skipped (counted) with the ones after
//! it. A LIST, not a string grown by `APPEND`: Redis doubles an appended string's allocation,
//! which cost a third more memory than the frames.

use std::cell::RefCell;

/// The frame version written.
const VERSION: u8 = 1;

/// The zstd level (level 1 for the frames the closing write replaces was measured: no
/// difference in the run's CPU beyond the machine's noise, 6 % more bytes sent).
pub const LEVEL: i32 = 3;

/// The dictionary of version 1 frames. Never change it: frames written with it must stay
/// readable; a new dictionary is a new version.
static DICT_V1: &[u8] = include_bytes!("v1.dict");

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// One frame holding `payload`.
pub fn frame(payload: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => {
                let mut new = zstd::bulk::Compressor::with_dictionary(LEVEL, DICT_V1)?;
                // Every frame is read with the dictionary of its version: no need to name it.
                new.set_parameter(zstd::stream::raw::CParameter::DictIdFlag(false))?;
                new.include_checksum(false)?;
                c.insert(new)
            }
        };
        let mut out = Vec::with_capacity(1 + payload.len() / 2);
        out.push(VERSION);
        out.extend_from_slice(&c.compress(payload)?);
        Ok(out)
    })
}

/// The payload of a stored frame, or `None` when it cannot be read.
pub fn payload(frame: &[u8]) -> Option<Vec<u8>> {
    let (&version, packed) = frame.split_first()?;
    let dict: &[u8] = match version {
        0 => &[],
        1 => DICT_V1,
        _ => return None,
    };
    let mut out = Vec::new();
    let mut d = zstd::stream::read::Decoder::with_dictionary(packed, dict).ok()?;
    std::io::copy(&mut d, &mut out).ok()?;
    Some(out)
}

/// The payloads of a window's stored frames, in order, and whether some could not be read
/// (those and the ones after them are left out: a later entry may replace an earlier one, so
/// reading past a gap could keep a stale value).
pub fn payloads(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        match payload(f) {
            Some(p) => out.push(p),
            None => return (out, true),
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_bad_one_ends_the_reading() {
        let a = frame(b"first payload").unwrap();
        let b = frame(&[7u8; 100_000]).unwrap();
        assert_eq!(a[0], VERSION);
        assert!(b.len() < 1000, "compressed: {}", b.len());
        let frames = vec![a.clone(), b.clone()];
        assert_eq!(
            payloads(&frames),
            (vec![b"first payload".to_vec(), vec![7u8; 100_000]], false)
        );
        for bad in [
            vec![],
            vec![9, 1, 2],
            b[..b.len() / 2].to_vec(),
            vec![1, 0x28, 0xb5],
        ] {
            let frames = vec![a.clone(), bad, b.clone()];
            assert_eq!(payloads(&frames), (vec![b"first payload".to_vec()], true));
        }
        // Version 0: no dictionary.
        let mut v0 = vec![0];
        v0.extend(zstd::bulk::compress(b"plain", 1).unwrap());
        assert_eq!(payload(&v0).as_deref(), Some(&b"plain"[..]));
    }
}
