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
//! unknown version, or one that does not decompress, is skipped (counted). A LIST, not a
//! string grown by `APPEND`: Redis doubles an appended string's allocation,
//! which cost a third more memory than the frames.

use std::cell::RefCell;
use std::io::Read;
use std::sync::LazyLock;

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

/// Most bytes a frame may decompress to ([`payloads`]' `limit`): far above any frame this tool
/// writes (a flush's records of one window; a window's whole records only up to
/// [`MAX_WHOLE`]), so that a damaged or foreign frame cannot make the reader allocate without
/// bound.
pub const MAX_PAYLOAD: u64 = 4 << 30;

/// Largest payload the closing write makes one frame of (about 250,000 flows with their
/// dns/http/ssl records); a larger window keeps its frames as written, which compress well
/// enough at that size.
pub const MAX_WHOLE: usize = 64 << 20;

/// Version 1's dictionary, prepared once for every reader.
static DECODER_V1: LazyLock<zstd::dict::DecoderDictionary<'static>> =
    LazyLock::new(|| zstd::dict::DecoderDictionary::copy(DICT_V1));

/// The payload of a stored frame, or `None` when it cannot be read or exceeds `limit` bytes.
pub fn payload(frame: &[u8], limit: u64) -> Option<Vec<u8>> {
    let (&version, packed) = frame.split_first()?;
    let mut out = Vec::new();
    let read = match version {
        0 => {
            let d = zstd::stream::read::Decoder::with_buffer(packed).ok()?;
            std::io::copy(&mut d.take(limit + 1), &mut out)
        }
        1 => {
            let d =
                zstd::stream::read::Decoder::with_prepared_dictionary(packed, &DECODER_V1).ok()?;
            std::io::copy(&mut d.take(limit + 1), &mut out)
        }
        _ => return None,
    };
    (read.ok()? <= limit).then_some(out)
}

/// The payloads of a window's stored frames that can be read, in order, and how many cannot
/// (left out: the later frames hold newer, complete entries of their uids, so reading past a
/// bad frame loses only what it held).
pub fn payloads(frames: &[Vec<u8>], limit: u64) -> (Vec<Vec<u8>>, usize) {
    let mut out = Vec::with_capacity(frames.len());
    let mut bad = 0;
    for f in frames {
        match payload(f, limit) {
            Some(p) => out.push(p),
            None => bad += 1,
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_bad_one_is_left_out() {
        let a = frame(b"first payload").unwrap();
        let b = frame(&[7u8; 100_000]).unwrap();
        assert_eq!(a[0], VERSION);
        assert!(b.len() < 1000, "compressed: {}", b.len());
        let frames = vec![a.clone(), b.clone()];
        let both = vec![b"first payload".to_vec(), vec![7u8; 100_000]];
        assert_eq!(payloads(&frames, MAX_PAYLOAD), (both.clone(), 0));
        for bad in [
            vec![],
            vec![9, 1, 2],
            b[..b.len() / 2].to_vec(),
            vec![1, 0x28, 0xb5],
        ] {
            let frames = vec![a.clone(), bad, b.clone()];
            assert_eq!(payloads(&frames, MAX_PAYLOAD), (both.clone(), 1));
        }
        // A frame larger than the limit is refused without being read whole.
        assert_eq!(payload(&b, 100_000).map(|p| p.len()), Some(100_000));
        assert_eq!(payload(&b, 99_999), None);
        // Version 0: no dictionary.
        let mut v0 = vec![0];
        v0.extend(zstd::bulk::compress(b"plain", 1).unwrap());
        assert_eq!(payload(&v0, MAX_PAYLOAD).as_deref(), Some(&b"plain"[..]));
    }
}
