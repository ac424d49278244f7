//! Decoding of Zeek ASCII-writer values into the text Zeek's JSON writer gives for the same value.
//!
//! The ASCII writer writes a backslash as `\\` and other bytes it must protect as `\xNN`. Decoded
//! bytes are then rendered as the JSON writer renders them: valid UTF-8 stays text, `\b \f \n \r \t`
//! stay characters, every other control byte (and DEL) and every byte of an invalid UTF-8 sequence
//! becomes the four characters `\xNN` (lowercase hex).

use std::borrow::Cow;

/// Whether any value in `raw` (a whole line, or one value) has something to decode: an escape
/// or a control byte the JSON writer would show escaped. One pass without early exit, which
/// the compiler vectorizes: cheaper for a whole line than a test per value.
pub fn needs_decoding(raw: &[u8]) -> bool {
    raw.iter()
        .fold(false, |any, &b| any | (b == b'\\') | is_escaped_control(b))
}

/// Decode one raw ASCII-writer value (not a set: split sets before decoding their elements).
pub fn decode_value(raw: &[u8]) -> Cow<'_, str> {
    if !needs_decoding(raw) {
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
    }
    let bytes = unescape_bytes(raw);
    Cow::Owned(render_like_json_writer(&bytes))
}

/// Decode one raw value already known to be valid UTF-8 (the fast path of [`decode_value`]).
#[inline]
pub fn decode_str(raw: &str) -> Cow<'_, str> {
    if !needs_decoding(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(render_like_json_writer(&unescape_bytes(raw.as_bytes())))
}

/// Undo the ASCII writer's escapes: `\\` → `\`, `\xNN` → byte NN; anything else stays as is.
pub fn unescape_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' {
            if raw.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if raw.get(i + 1) == Some(&b'x') {
                if let (Some(h), Some(l)) = (
                    raw.get(i + 2).and_then(|&c| hex_val(c)),
                    raw.get(i + 3).and_then(|&c| hex_val(c)),
                ) {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Render bytes as Zeek's JSON writer does (see the module doc).
pub fn render_like_json_writer(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (c as u32) < 0x80 && is_escaped_control(c as u8) {
                push_hex_escape(&mut out, c as u8);
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            push_hex_escape(&mut out, b);
        }
    }
    out
}

/// Control bytes the JSON writer shows as `\xNN` (all but `\b \f \n \r \t`), and DEL.
fn is_escaped_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, 0x08 | 0x0c | b'\n' | b'\r' | b'\t')) || b == 0x7f
}

fn push_hex_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 0xf) as usize] as char);
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_needs_decoding_exactly_when_one_of_its_values_does() {
        let tab_separated = b"1582810000.1\tCx\t10.0.0.1\t(empty)\t-\tna\xc3\xafve";
        assert!(!needs_decoding(tab_separated));
        for raw in [&b"a\\\\b"[..], b"\\x41", b"bell\x07", b"del\x7f", b"\x00"] {
            assert!(needs_decoding(raw), "{raw:?}");
            assert!(matches!(decode_value(raw), Cow::Owned(_)) || raw == b"\\x41");
        }
        for raw in [
            &b"back\x08space"[..],
            b"form\x0cfeed",
            b"cr\rlf\n",
            b"tab\t",
        ] {
            assert!(!needs_decoding(raw), "{raw:?}");
            assert!(matches!(decode_value(raw), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn plain_values_are_borrowed() {
        assert!(matches!(
            decode_value(b"example.com"),
            Cow::Borrowed("example.com")
        ));
        assert!(matches!(
            decode_value("caf\u{e9}".as_bytes()),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_follow_the_json_writer() {
        // From zeek-btest-writer ascii-escape-binary and ascii-json-utf8 (ssh.log.hex).
        assert_eq!(decode_value(br"AB\x00CD\x00"), r"AB\x00CD\x00");
        assert_eq!(decode_value(br"abc\\x00def"), r"abc\x00def");
        assert_eq!(
            decode_value(br"foo \xc2\xae bar \\xc2\\xae baz"),
            r"foo ® bar \xc2\xae baz"
        );
        assert_eq!(
            decode_value(br"\x08\x0c\x0a\x0d\x09\x00\x15"),
            "\u{8}\u{c}\n\r\t\\x00\\x15"
        );
        assert_eq!(decode_value(br"\xc3("), r"\xc3(");
        assert_eq!(decode_value(br"\xed\xa0\xa1"), r"\xed\xa0\xa1");
        assert_eq!(decode_value(br"\xf4\x80\x8c"), r"\xf4\x80\x8c");
        assert_eq!(decode_value(br"\xf0\x90\x8c\xbc"), "\u{1033c}");
        assert_eq!(decode_value(br"\x7f"), r"\x7f");
        assert_eq!(decode_value(br"\x2d"), "-");
        assert_eq!(decode_value(br"\x2c"), ",");
        assert_eq!(decode_value(br"fa\x7c\x7cure"), "fa||ure");
        assert_eq!(decode_value(br"\x23Kaputt"), "#Kaputt");
        // A raw control byte or an invalid raw byte is shown the same way.
        assert_eq!(decode_value(b"a\x0eb"), r"a\x0eb");
        assert_eq!(decode_value(b"a\xffb"), r"a\xffb");
        // A backslash not followed by a valid escape stays.
        assert_eq!(decode_value(br"\x"), r"\x");
        assert_eq!(decode_value(br"\xg0"), r"\xg0");
        assert_eq!(decode_value(br"a\b"), r"a\b");
    }
}
