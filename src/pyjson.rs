//! Python-compatible text: `json.dumps` with default arguments, `repr(float)`, and the
//! `str()`/`repr()` of strings and lists that Slips put inside timeline text.
//!
//! Every value Kalipso or a Slips module parses goes through here, so that bytes match what the
//! original Python wrote (reference §0): `", "` and `": "` separators, insertion-ordered keys,
//! `ensure_ascii` with lowercase `\uXXXX`, floats as Python `repr` (`3e-06`, `3600.0`).

use compact_str::CompactString;
use std::fmt::Write as _;

/// A JSON value with Python's ordering and number semantics.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (written as Python `repr`).
    Float(f64),
    /// A string.
    Str(CompactString),
    /// A list.
    List(Vec<PyValue>),
    /// An object, keys in insertion order.
    Object(Vec<(CompactString, PyValue)>),
}

impl PyValue {
    /// `json.dumps(self)`.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    /// Append `json.dumps(self)` to `out`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            PyValue::Null => out.push_str("null"),
            PyValue::Bool(true) => out.push_str("true"),
            PyValue::Bool(false) => out.push_str("false"),
            PyValue::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
            PyValue::Float(f) => write_json_float(out, *f),
            PyValue::Str(s) => write_json_str(out, s),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            PyValue::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_json_str(out, k);
                    out.push_str(": ");
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

impl PyValue {
    /// The value of parsed JSON, keeping key order (serde_json's `preserve_order`) and the
    /// int/float distinction (`300.0` stays a float).
    pub fn from_serde(v: &serde_json::Value) -> PyValue {
        use serde_json::Value as J;
        match v {
            J::Null => PyValue::Null,
            J::Bool(b) => PyValue::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) if !n.is_f64() => PyValue::Int(i),
                _ => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => PyValue::Str(CompactString::new(s)),
            J::Array(items) => PyValue::List(items.iter().map(PyValue::from_serde).collect()),
            J::Object(m) => PyValue::Object(
                m.iter()
                    .map(|(k, v)| (CompactString::new(k), PyValue::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

/// An object key for [`ObjectWriter`]: any text (escaped where it must be), or a [`Key`].
pub trait JsonKey {
    /// `"k": ` appended to `out`, after `, ` unless it is the object's `first` key.
    fn write(self, out: &mut String, first: bool);
}

impl JsonKey for &str {
    fn write(self, out: &mut String, first: bool) {
        if !first {
            out.push_str(", ");
        }
        if self.bytes().all(|b| JSON_PLAIN[usize::from(b)]) {
            // The usual key, a field name: nothing to escape.
            out.push('"');
            out.push_str(self);
            out.push_str("\": ");
        } else {
            write_json_str(out, self);
            out.push_str(": ");
        }
    }
}

impl JsonKey for &String {
    fn write(self, out: &mut String, first: bool) {
        self.as_str().write(out, first);
    }
}

/// A key fixed when the program is built, its text (with and without the `, ` before it)
/// written then: one copy per use, nothing scanned (`json_key!("ts")`).
#[derive(Clone, Copy, Debug)]
pub struct Key {
    first: &'static str,
    next: &'static str,
}

impl Key {
    /// The key whose texts are `first` (`"k": `) and `next` (`, "k": `), as `json_key!`
    /// makes them; refuses (when building) texts of another form or a key that would need
    /// escaping. Use `json_key!`.
    #[doc(hidden)]
    pub const fn new(first: &'static str, next: &'static str) -> Key {
        let (f, n) = (first.as_bytes(), next.as_bytes());
        assert!(
            f.len() >= 4 && f[0] == b'"' && f[f.len() - 3] == b'"' && f[f.len() - 2] == b':',
            "a Key's first text is \"k\": "
        );
        assert!(f[f.len() - 1] == b' ', "a Key's first text is \"k\": ");
        assert!(
            n.len() == f.len() + 2 && n[0] == b',' && n[1] == b' ',
            "a Key's next text is , \"k\": "
        );
        let mut i = 0;
        while i < f.len() {
            assert!(
                n[i + 2] == f[i],
                "a Key's next text is , and its first text"
            );
            if i > 0 && i + 3 < f.len() {
                assert!(
                    f[i] >= 0x20 && f[i] < 0x7f && f[i] != b'"' && f[i] != b'\\',
                    "a json_key! needs no escaping"
                );
            }
            i += 1;
        }
        Key { first, next }
    }
}

impl JsonKey for Key {
    fn write(self, out: &mut String, first: bool) {
        out.push_str(if first { self.first } else { self.next });
    }
}

/// A [`Key`] for the literal field name, checked and rendered when the program is built.
macro_rules! json_key {
    ($k:literal) => {{
        const KEY: $crate::pyjson::Key =
            $crate::pyjson::Key::new(concat!("\"", $k, "\": "), concat!(", \"", $k, "\": "));
        KEY
    }};
}
pub(crate) use json_key;

/// Writes one Python-JSON object straight into a string, key by key, without building a
/// [`PyValue`] first (the hot path: one per stored flow and alt record).
#[derive(Debug)]
pub struct ObjectWriter {
    out: String,
    first: bool,
}

impl Default for ObjectWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectWriter {
    /// An empty object.
    pub fn new() -> ObjectWriter {
        Self::with_capacity(256)
    }

    /// An empty object, room for `bytes` reserved.
    pub fn with_capacity(bytes: usize) -> ObjectWriter {
        let mut out = String::with_capacity(bytes);
        out.push('{');
        ObjectWriter { out, first: true }
    }

    fn key(&mut self, k: impl JsonKey) -> &mut String {
        k.write(&mut self.out, self.first);
        self.first = false;
        &mut self.out
    }

    /// `"k": "v"`.
    pub fn str(&mut self, k: impl JsonKey, v: &str) -> &mut Self {
        write_json_str(self.key(k), v);
        self
    }

    /// `"k": n`.
    pub fn int(&mut self, k: impl JsonKey, v: i64) -> &mut Self {
        write_int(self.key(k), v);
        self
    }

    /// `"k": "<address>"`.
    pub fn ip(&mut self, k: impl JsonKey, v: std::net::IpAddr) -> &mut Self {
        write_json_ip(self.key(k), v);
        self
    }

    /// `"k": <repr(v)>`.
    pub fn float(&mut self, k: impl JsonKey, v: f64) -> &mut Self {
        write_json_float(self.key(k), v);
        self
    }

    /// `"k": true|false`.
    pub fn bool(&mut self, k: impl JsonKey, v: bool) -> &mut Self {
        self.key(k).push_str(if v { "true" } else { "false" });
        self
    }

    /// `"k": ["a", "b"]`.
    pub fn strs<S: AsRef<str>>(&mut self, k: impl JsonKey, items: &[S]) -> &mut Self {
        let out = self.key(k);
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_json_str(out, item.as_ref());
        }
        out.push(']');
        self
    }

    /// `"k": [1.0, 2.5]`.
    pub fn floats(&mut self, k: impl JsonKey, items: &[f64]) -> &mut Self {
        let out = self.key(k);
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_json_float(out, *item);
        }
        out.push(']');
        self
    }

    /// `"k": {…}`, the nested object written by `f` in place.
    pub fn object(&mut self, k: impl JsonKey, f: impl FnOnce(&mut ObjectWriter)) -> &mut Self {
        let out = std::mem::take(self.key(k));
        let mut inner = ObjectWriter { out, first: true };
        inner.out.push('{');
        f(&mut inner);
        self.out = inner.finish();
        self
    }

    /// `"k": <json>`, `json` being already-encoded JSON.
    pub fn raw(&mut self, k: impl JsonKey, json: &str) -> &mut Self {
        self.key(k).push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.out);
        out.push('}');
        out
    }
}

impl PyValue {
    /// Python's `str(value)` (what `'{}'.format(value)` prints): strings as they are, lists
    /// as their `repr`, `True`/`False`/`None`, floats as `repr`.
    pub fn py_str(&self) -> String {
        let mut out = String::new();
        self.push_py_str(&mut out);
        out
    }

    /// [`PyValue::py_str`] appended to `out`.
    pub fn push_py_str(&self, out: &mut String) {
        match self {
            PyValue::Str(s) => out.push_str(s),
            other => other.push_py_repr(out),
        }
    }

    /// Python's `repr(value)`.
    pub fn py_repr(&self) -> String {
        let mut out = String::new();
        self.push_py_repr(&mut out);
        out
    }

    /// [`PyValue::py_repr`] appended to `out`.
    pub fn push_py_repr(&self, out: &mut String) {
        match self {
            PyValue::Null => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
            PyValue::Float(f) => push_float_repr(out, *f),
            PyValue::Str(s) => push_py_str_repr(out, s),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.push_py_repr(out);
                }
                out.push(']');
            }
            PyValue::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    push_py_str_repr(out, k);
                    out.push_str(": ");
                    v.push_py_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// A field of an object (`None` for other values or a missing key).
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Bytes `json.dumps` (`ensure_ascii`) copies as they are: printable ASCII but `"` and `\`.
static JSON_PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        plain[b as usize] = b != b'"' && b != b'\\';
        b += 1;
    }
    plain
};

/// Append a JSON string literal as Python's `json.dumps` writes it (`ensure_ascii=True`).
pub fn write_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs of printable ASCII are copied whole; anything else is escaped one char at a time.
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if JSON_PLAIN[usize::from(bytes[i])] {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        // `i` is a char boundary: only ASCII bytes were skipped.
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
        i += c.len_utf8();
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Append an address as a JSON string (its text never needs escaping), without a temporary.
pub fn write_json_ip(out: &mut String, ip: std::net::IpAddr) {
    out.push('"');
    push_ip(out, ip);
    out.push('"');
}

/// Append an address as Python's `str()` writes it (the standard text form). IPv4, the usual
/// case, is written digit by digit, without the formatting machinery.
pub fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            out.push_str(ipv4_text(&mut [0u8; 15], a));
        }
        std::net::IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

/// An address shown as [`push_ip`] writes it, for `write!`.
pub struct IpText(pub std::net::IpAddr);

impl std::fmt::Display for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            std::net::IpAddr::V4(a) => f.write_str(ipv4_text(&mut [0u8; 15], a)),
            std::net::IpAddr::V6(a) => std::fmt::Display::fmt(&a, f),
        }
    }
}

/// `a.b.c.d`, written into `buf`.
fn ipv4_text(buf: &mut [u8; 15], a: std::net::Ipv4Addr) -> &str {
    let n = ipv4_bytes(buf, a);
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// The text of every octet: its digits, then their count in the last byte.
static OCTETS: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            [b'0' + h, b'0' + d, b'0' + u, 3]
        } else if o >= 10 {
            [b'0' + d, b'0' + u, 0, 2]
        } else {
            [b'0' + u, 0, 0, 1]
        };
        o += 1;
    }
    t
};

/// `a.b.c.d` written into `buf`; its length.
fn ipv4_bytes(buf: &mut [u8; 15], a: std::net::Ipv4Addr) -> usize {
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        let [d0, d1, d2, len] = OCTETS[usize::from(o)];
        // Room for the three digits of the last octet: 12 + 3.
        if let Some(at) = buf.get_mut(n..n + 3) {
            at.copy_from_slice(&[d0, d1, d2]);
        }
        n += usize::from(len);
        if i < 3 {
            buf[n] = b'.';
            n += 1;
        }
    }
    n
}

/// Append an integer (`itoa`: no formatting machinery on the hot path).
pub fn write_int(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Append a float as `json.dumps` writes it (Python `repr`; `NaN`, `Infinity`, `-Infinity`).
pub fn write_json_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        push_float_repr(out, f);
    }
}

/// Python `repr(f)` (also `str(f)`, and what redis-py stores for a float).
///
/// Shortest round-trip digits; positional notation when the decimal exponent is in [-4, 16),
/// always with a fractional part (`3600.0`); otherwise `d.ddde±XX` (`3e-06`, `1e+16`).
pub fn float_repr(f: f64) -> String {
    let mut out = String::with_capacity(24);
    push_float_repr(&mut out, f);
    out
}

/// [`float_repr`] appended to `out`, without allocating.
pub fn push_float_repr(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    if !push_micros_repr(out, f) {
        push_general_repr(out, f);
    }
}

/// [`push_float_repr`] of a finite non-zero `f`, from Ryū's shortest digits.
fn push_general_repr(out: &mut String, f: f64) {
    let mut ryu = ryu::Buffer::new();
    // Ryū's text is Python's wherever both write the number without an exponent, which is
    // from 1e-4 (Ryū goes down to 1e-5: `0.00001` is Python's `1e-05`) to below 1e16.
    let text = ryu.format_finite(f);
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if !unsigned.contains('e') && !unsigned.starts_with("0.0000") {
        out.push_str(text);
        return;
    }
    // The shortest round-trip digits (Ryū, as Python's repr) and the decimal exponent.
    let (digits, exp) = shortest_digits(unsigned);
    let digits = digits.as_str();
    if f < 0.0 {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Python's repr of `f` when it is a whole number of microseconds from 1e-4 to below 2^33
/// (Zeek's times and durations): the decimal `n / 10^6` rounds to `f`, and no other decimal of
/// as few digits does, since below 2^33 an f64's spacing is under 10^-6 — so that decimal,
/// without its trailing zeros, is the shortest that round-trips, which is what repr writes
/// (without an exponent from 1e-4 to 1e16). `false`, writing nothing, for any other `f`.
fn push_micros_repr(out: &mut String, f: f64) -> bool {
    const LIMIT: f64 = (1u64 << 33) as f64;
    let a = f.abs();
    if !(1e-4..LIMIT).contains(&a) {
        return false;
    }
    let n = (a * 1e6).round();
    if n / 1e6 != a {
        return false;
    }
    // Below 2^33 * 10^6 < 2^53: exact.
    let n = n as u64;
    if f < 0.0 {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(n / 1_000_000));
    out.push('.');
    // The six decimals without their trailing zeros (one `0` if all are).
    let mut digits = [b'0'; 6];
    let mut rest = n % 1_000_000;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let len = digits.iter().rposition(|d| *d != b'0').map_or(1, |i| i + 1);
    out.push_str(std::str::from_utf8(&digits[..len]).unwrap_or("0"));
    true
}

/// The significant digits and the decimal exponent of a positive float as Ryū prints it
/// (`"12.5"`, `"0.00012"`, `"1e30"`, `"1.2345e-7"`, `"100.0"`): `("125", 1)`, `("12", -4)`,
/// `("1", 30)`, `("12345", -7)`, `("1", 2)`.
fn shortest_digits(text: &str) -> (StackText, i32) {
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = StackText::default();
    let exp = if int.trim_start_matches('0').is_empty() {
        // 0.000ddd: the exponent is set by the zeros after the point.
        let zeros = frac.len() - frac.trim_start_matches('0').len();
        let _ = digits.write_str(&frac[zeros..]);
        exp - zeros as i32 - 1
    } else {
        let int = int.trim_start_matches('0');
        let _ = digits.write_str(int);
        let _ = digits.write_str(frac);
        exp + int.len() as i32 - 1
    };
    while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    (digits, exp)
}

/// A short text on the stack (a float's digits); what does not fit is dropped.
struct StackText {
    buf: [u8; 40],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Python `repr(s)` of a str: single quotes unless the text has `'` and no `"`.
pub fn py_str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_py_str_repr(&mut out, s);
    out
}

/// [`py_str_repr`] appended to `out`.
pub fn push_py_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_py_printable(c) => out.push(c),
            c => {
                let n = c as u32;
                let _ = if n < 0x100 {
                    write!(out, "\\x{n:02x}")
                } else if n < 0x10000 {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// Python `str(list_of_str)`: `['a', 'b']`, `[]`.
pub fn py_list_repr<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_py_str_repr(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// An approximation of Python's `str.isprintable()` per character: control, format, surrogate,
/// private-use, unassigned-looking and separator characters (other than the ASCII space) are not.
fn is_py_printable(c: char) -> bool {
    let n = c as u32;
    if n < 0x20 || (0x7f..0xa0).contains(&n) || n == 0xad {
        return false;
    }
    if c == ' ' {
        return true;
    }
    // Zs/Zl/Zp separators other than ' ' and a few format (Cf) characters.
    !matches!(n,
        0xa0 | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f
        | 0x3000 | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x110bd | 0xe0001 | 0xe0020..=0xe007f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octet_is_written_as_its_standard_text() {
        for o in 0..=255u8 {
            for a in [
                [o, 0, 0, 0],
                [1, o, 2, 3],
                [255, 255, o, 10],
                [9, 99, 199, o],
            ] {
                let a = std::net::IpAddr::from(a);
                let mut s = String::new();
                push_ip(&mut s, a);
                assert_eq!(s, a.to_string());
            }
        }
    }

    #[test]
    fn addresses_are_written_as_their_standard_text() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "8.8.8.8",
            "100.64.9.10",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            let a: std::net::IpAddr = ip.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, a);
            assert_eq!(s, a.to_string());
            assert_eq!(IpText(a).to_string(), a.to_string());
        }
    }

    #[test]
    fn float_repr_matches_python() {
        for (f, want) in [
            (3600.0, "3600.0"),
            (1582810002.0, "1582810002.0"),
            (1582810000.123456, "1582810000.123456"),
            (0.0001, "0.0001"),
            (0.020135, "0.020135"),
            (3e-06, "3e-06"),
            (1.5e-05, "1.5e-05"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-05, "1e-05"),
            (0.00012, "0.00012"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (12.5, "12.5"),
            (100.0, "100.0"),
            (-1.5e-05, "-1.5e-05"),
            (-0.0001, "-0.0001"),
            (1.234e-05, "1.234e-05"),
            (1e15, "1000000000000000.0"),
            (-1e16, "-1e+16"),
            (-1582810000.5, "-1582810000.5"),
        ] {
            assert_eq!(float_repr(f), want, "{f:?}");
        }
    }

    /// `json.dumps` (ensure_ascii) of a string, one char at a time: the reference for the
    /// run-copying [`write_json_str`].
    fn json_str_reference(s: &str) -> String {
        let mut out = String::from('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                ' '..='~' => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn ips_and_ints_are_written_as_their_text() {
        for ip in ["10.0.0.1", "2001:db8::1", "::ffff:1.2.3.4"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            write_json_ip(&mut out, ip);
            assert_eq!(out, json_str_reference(&ip.to_string()));
        }
        for v in [0, -1, 42, i64::MIN, i64::MAX] {
            let mut out = String::new();
            write_int(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }

    #[test]
    fn float_repr_matches_python_on_2000_doubles_with_halfway_cases() {
        // Generated by Python 3.11 (fixtures/python/float_repr.txt). 300 are halfway cases:
        // Rust's own `{:e}` rounds them up where Python rounds to even.
        let text = include_str!("../fixtures/python/float_repr.txt");
        let mut checked = 0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (hex, want) = line.split_once(' ').unwrap();
            let x = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
            assert_eq!(float_repr(x), want, "{hex}");
            checked += 1;
        }
        assert_eq!(checked, 2000);
    }

    proptest::proptest! {
        #[test]
        fn json_str_matches_the_char_by_char_reference(s in "\\PC*|[ -~\"\\\\\n\t\u{0}-\u{1f}\u{7f}é€😀]*") {
            let mut out = String::from("x");
            write_json_str(&mut out, &s);
            proptest::prop_assert_eq!(out, format!("x{}", json_str_reference(&s)));
        }

        /// The microseconds' short path writes what the general one writes, for every value
        /// it takes (and declines the others).
        #[test]
        fn micros_repr_is_the_general_repr(
            micros in 0u64..(1u64 << 33) * 1_000_000,
            neg in proptest::bool::ANY,
            f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL
                | proptest::num::f64::NEGATIVE | proptest::num::f64::POSITIVE,
        ) {
            let m = micros as f64 / 1e6;
            for x in [if neg { -m } else { m }, f, (f * 1e6).round() / 1e6] {
                let mut fast = String::new();
                if push_micros_repr(&mut fast, x) {
                    let mut general = String::new();
                    push_general_repr(&mut general, x);
                    proptest::prop_assert_eq!(&fast, &general, "{:?}", x);
                }
            }
        }

        /// A built key writes what the same text as a key writes.
        #[test]
        fn built_keys_are_written_as_text_keys(n in proptest::num::i64::ANY) {
            let mut built = ObjectWriter::new();
            built.int(json_key!("totalflows"), n).int(json_key!("ts"), 1);
            let mut text = ObjectWriter::new();
            text.int("totalflows", n).int("ts", 1);
            proptest::prop_assert_eq!(built.finish(), text.finish());
        }

        #[test]
        fn float_repr_round_trips_and_is_appended_in_place(
            f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL
                | proptest::num::f64::NEGATIVE | proptest::num::f64::POSITIVE,
        ) {
            let text = float_repr(f);
            proptest::prop_assert_eq!(text.parse::<f64>().ok(), Some(f));
            let mut out = String::from("x");
            push_float_repr(&mut out, f);
            proptest::prop_assert_eq!(out, format!("x{text}"));
        }
    }

    #[test]
    fn json_matches_python_dumps() {
        let v = PyValue::Object(vec![
            ("ts".into(), PyValue::Float(1582810000.123456)),
            ("dur".into(), PyValue::Int(0)),
            (
                "answers".into(),
                PyValue::List(vec![PyValue::Str("93.184.216.34".into())]),
            ),
            ("ttls".into(), PyValue::Str(CompactString::default())),
            ("resumed".into(), PyValue::Bool(false)),
            ("x".into(), PyValue::Null),
            ("e".into(), PyValue::List(vec![])),
        ]);
        assert_eq!(
            v.to_json(),
            r#"{"ts": 1582810000.123456, "dur": 0, "answers": ["93.184.216.34"], "ttls": "", "resumed": false, "x": null, "e": []}"#
        );
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c/d\n\u{7f}\u{e9}\u{1f600}\u{1}");
        assert_eq!(s, r#""a\"b\\c/d\n\u007f\u00e9\ud83d\ude00\u0001""#);
    }

    #[test]
    fn str_repr_matches_python() {
        assert_eq!(py_list_repr(&["93.184.216.34"]), "['93.184.216.34']");
        assert_eq!(py_list_repr::<&str>(&[]), "[]");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_str_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(py_str_repr("caf\u{e9} \u{2019}"), "'caf\u{e9} \u{2019}'");
        assert_eq!(py_str_repr("\u{0}\u{85}\u{200b}"), "'\\x00\\x85\\u200b'");
        assert_eq!(py_str_repr("\u{e000}"), "'\\ue000'");
        // repr and str of nested values, appended in place.
        let v = PyValue::Object(vec![
            ("n".into(), PyValue::Int(-3)),
            ("f".into(), PyValue::Float(0.1)),
            (
                "it's".into(),
                PyValue::List(vec![PyValue::Null, PyValue::Bool(true)]),
            ),
            ("s".into(), PyValue::Str("x'y".into())),
        ]);
        assert_eq!(
            v.py_repr(),
            r#"{'n': -3, 'f': 0.1, "it's": [None, True], 's': "x'y"}"#
        );
        assert_eq!(PyValue::Str("x'y".into()).py_str(), "x'y");
        assert_eq!(PyValue::Float(1e16).py_str(), "1e+16");
    }

    #[test]
    fn object_keys_are_escaped_only_when_they_need_it() {
        let mut w = ObjectWriter::new();
        w.int("id_orig_h2", 1)
            .str("a\"b", "v")
            .bool("é", true)
            .raw("", "[]");
        assert_eq!(
            w.finish(),
            r#"{"id_orig_h2": 1, "a\"b": "v", "\u00e9": true, "": []}"#
        );
    }
}
