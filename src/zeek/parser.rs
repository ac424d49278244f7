//! Turns one complete line of a Zeek log into a record, a header change, or an error.
//!
//! The parser keeps the per-file state: the format (TSV or JSON lines, decided per header block:
//! `#` header → TSV, `{` → JSON), the current TSV header (separator, markers, `#fields`, `#types`,
//! which may change mid-file) and the log kind (from the file name, confirmed by `#path`/`_path`).
//! It does no I/O, so the batch reader and the live tailer share it.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::LineErrorKind;
use super::escape::{decode_str, decode_value, needs_decoding, unescape_bytes};
use super::logname::LogKind;
use super::record::{Record, Slots, Val, empty_slots, is_list_field, slot_of};

/// The two log formats Zeek's ASCII writer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Tab-separated values with `#` header lines.
    Tsv,
    /// One JSON object per line (`LogAscii::use_json=T`).
    Json,
}

impl Format {
    /// `tsv` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tsv => "tsv",
            Format::Json => "json",
        }
    }
}

/// What a line turned out to be.
// Records are returned by value on the hot path; boxing would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A record.
    Record(Record<'a>),
    /// A header, footer or comment line, or a blank line: nothing to deliver.
    Meta,
}

/// The TSV header block in force.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct TsvHeader {
    separator: Vec<u8>,
    set_separator: Vec<u8>,
    empty_field: Vec<u8>,
    unset_field: Vec<u8>,
    fields: Vec<String>,
    types: Vec<String>,
}

impl Default for TsvHeader {
    fn default() -> Self {
        TsvHeader {
            separator: b"\t".to_vec(),
            set_separator: b",".to_vec(),
            empty_field: b"(empty)".to_vec(),
            unset_field: b"-".to_vec(),
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// One wanted column of the TSV schema: where it is, which slot it fills, whether it is a list.
#[derive(Clone, Copy, Debug)]
struct PlannedColumn {
    column: usize,
    slot: usize,
    list: bool,
}

/// Per-file line parser (see the module doc).
#[derive(Debug)]
pub struct LineParser {
    /// What resuming needs (stored in checkpoints).
    st: ParserState,
    plan: Vec<PlannedColumn>,
    plan_stale: bool,
    columns: Vec<(usize, usize)>,
    json_fields: usize,
    changes: u64,
    /// When set, only these fields of a TSV line are converted (the others stay unset),
    /// except in lines whose `ts` is below the bound: [`LineParser::only_fields`].
    only: Option<(&'static [&'static str], Arc<TimeBound>)>,
    /// Every field, for the lines converted whole when `only` is set.
    full_plan: Vec<PlannedColumn>,
}

/// A time that only goes down, shared between threads ([`LineParser::only_fields`]).
#[derive(Debug)]
pub struct TimeBound(AtomicU64);

impl Default for TimeBound {
    fn default() -> Self {
        TimeBound(AtomicU64::new(f64::INFINITY.to_bits()))
    }
}

impl TimeBound {
    /// The bound now (`inf` until lowered).
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Acquire))
    }

    /// Lower the bound to `t` if `t` is below it.
    pub fn lower(&self, t: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (t < f64::from_bits(b)).then_some(t.to_bits())
            });
    }
}

/// What a [`LineParser`] knows of a file at a line boundary — the header in force, the format,
/// the log kind — without its scratch space: stored in a checkpoint, it lets a reader resume
/// at that line without reading anything before it ([`LineParser::from_state`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParserState {
    kind: Option<LogKind>,
    format: Option<Format>,
    last_format: Option<Format>,
    path: Option<String>,
    header: TsvHeader,
    meta_prefix: Vec<u8>,
}

impl LineParser {
    /// The state to resume with after the lines parsed so far.
    pub fn state(&self) -> ParserState {
        self.st.clone()
    }

    /// A number that changes whenever [`LineParser::state`] may have (a header line, the
    /// format or log kind found by a data line): a reader hands the state on only then.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// A parser that goes on where the one whose [`LineParser::state`] this is stopped.
    pub fn from_state(st: ParserState) -> LineParser {
        LineParser {
            st,
            plan: Vec::new(),
            plan_stale: true,
            columns: Vec::new(),
            json_fields: 0,
            changes: 0,
            only: None,
            full_plan: Vec::new(),
        }
    }

    /// Convert only the fields `names` (by their canonical names) of TSV lines, leaving the
    /// others unset: for a pass that needs a few values of every line (the conn scan of a
    /// `--once` run), not for records that are profiled. The columns are still split and
    /// counted, so a line with the wrong column count is still an error; a bad value in a
    /// field not converted is not — except in a line whose `ts` is below `whole_below`, which
    /// is converted whole (the scan lowers it to the earliest conn it has kept, so that a
    /// line bad in another field cannot become the earliest). JSON lines are parsed whole.
    pub fn only_fields(&mut self, names: &'static [&'static str], whole_below: Arc<TimeBound>) {
        self.only = Some((names, whole_below));
        self.plan_stale = true;
    }

    /// A parser for a file whose name suggests `kind` (`None`: unknown until `#path`/`_path`).
    pub fn new(kind: Option<LogKind>) -> LineParser {
        LineParser::from_state(ParserState {
            kind,
            format: None,
            last_format: None,
            path: None,
            header: TsvHeader::default(),
            meta_prefix: b"#".to_vec(),
        })
    }

    /// The log kind records are parsed as (`None`: another log; only `ts` is read).
    pub fn kind(&self) -> Option<LogKind> {
        self.st.kind
    }

    /// The format of the current (or, after `#close`, the last) block, once known.
    pub fn format(&self) -> Option<Format> {
        self.st.format.or(self.st.last_format)
    }

    /// The Zeek `#path` (TSV) or `_path` (JSON) value, when the file has one.
    pub fn path(&self) -> Option<&str> {
        self.st.path.as_deref()
    }

    /// Fields per record: `#fields` count (TSV) or keys of the last JSON record.
    pub fn field_count(&self) -> usize {
        match self.format() {
            Some(Format::Json) => self.json_fields,
            _ => self.st.header.fields.len(),
        }
    }

    /// Parse one complete line (without its newline).
    pub fn parse_line<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, LineErrorKind> {
        if self.meta_line(line) {
            return Ok(Parsed::Meta);
        }
        self.data_line(line).map(Parsed::Record)
    }

    /// Take in a header, footer, comment or blank line; `false` if the line is data.
    pub fn meta_line(&mut self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return true;
        }
        if line[0] == b'#' || line.starts_with(&self.st.meta_prefix) {
            self.header_line(line);
            return true;
        }
        let trimmed = trim_start(line);
        if trimmed.starts_with(b"#separator ") {
            // A header line with stray leading white space (seen in real logs): still a header.
            self.header_line(trimmed);
            return true;
        }
        if self.st.header.fields.is_empty() && self.st.format.is_none() {
            // `LogAscii::meta_prefix` other than `#`: the first header line names it.
            if let Some(at) = memchr::memmem::find(line, b"separator ") {
                if (1..=16).contains(&at) && !line[..at].contains(&b'{') {
                    self.st.meta_prefix = line[..at].to_vec();
                    self.header_line(line);
                    return true;
                }
            }
        }
        false
    }

    /// Parse a data line (one for which [`LineParser::meta_line`] returned `false`).
    pub fn data_line<'a>(&mut self, line: &'a [u8]) -> Result<Record<'a>, LineErrorKind> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match self.st.format {
            Some(Format::Tsv) => self.tsv_record(line),
            Some(Format::Json) => self.json_record(line),
            None if line.first() == Some(&b'{') => {
                self.changes += 1;
                self.st.format = Some(Format::Json);
                self.json_record(line)
            }
            None if !self.st.header.fields.is_empty() => {
                self.changes += 1;
                self.st.format = Some(Format::Tsv);
                self.tsv_record(line)
            }
            None => Err(LineErrorKind::NoHeader),
        }
    }

    fn header_line(&mut self, line: &[u8]) {
        self.changes += 1;
        let Some(rest) = line
            .strip_prefix(self.st.meta_prefix.as_slice())
            .or_else(|| line.strip_prefix(b"#"))
        else {
            return;
        };
        if let Some(value) = rest.strip_prefix(b"separator ") {
            // A new header block: Zeek writes the separator itself escaped (`\x09`).
            self.st.header = TsvHeader {
                separator: unescape_bytes(value),
                ..TsvHeader::default()
            };
            if self.st.header.separator.is_empty() {
                self.st.header.separator = b"\t".to_vec();
            }
            self.st.format = Some(Format::Tsv);
            self.plan_stale = true;
            return;
        }
        let sep = self.st.header.separator.clone();
        let Some(at) = find(rest, &sep) else {
            return; // `#close` with no value, a canonified `#open XXXX`, or a comment
        };
        let (name, value) = (&rest[..at], &rest[at + sep.len()..]);
        match name {
            b"set_separator" if !value.is_empty() => {
                self.st.header.set_separator = unescape_bytes(value)
            }
            b"empty_field" => self.st.header.empty_field = unescape_bytes(value),
            b"unset_field" => self.st.header.unset_field = unescape_bytes(value),
            b"path" => {
                let path = String::from_utf8_lossy(value).into_owned();
                self.set_kind_from_path(&path);
                self.st.path = Some(path);
            }
            b"fields" => {
                self.st.header.fields = split_all(value, &sep)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                self.st.header.types.clear();
                self.st.format = Some(Format::Tsv);
                self.plan_stale = true;
            }
            b"types" => {
                self.st.header.types = split_all(value, &sep)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                self.plan_stale = true;
            }
            b"close" => {
                // End of a block: a JSON run or a new header block may follow.
                self.st.last_format = self.st.format.take().or(self.st.last_format);
            }
            _ => {}
        }
    }

    fn set_kind_from_path(&mut self, path: &str) {
        let kind = LogKind::from_path(path);
        if kind != self.st.kind {
            self.st.kind = kind;
            self.plan_stale = true;
        }
    }

    fn compile_plan(&mut self) {
        let only = self.only.as_ref().map(|(names, _)| *names);
        self.plan = self.plan_for(only);
        self.full_plan = match only {
            Some(_) => self.plan_for(None),
            None => Vec::new(),
        };
        self.plan_stale = false;
    }

    /// The columns to convert, into which slots: those of `only` (by name), or every one.
    fn plan_for(&self, only: Option<&[&str]>) -> Vec<PlannedColumn> {
        let mut plan = Vec::new();
        let mut used = [false; super::record::MAX_SLOTS];
        let mut wanted = [only.is_none(); super::record::MAX_SLOTS];
        for name in only.unwrap_or_default() {
            if let Some(slot) = slot_of(self.st.kind, name) {
                wanted[slot] = true;
            }
        }
        for (column, name) in self.st.header.fields.iter().enumerate() {
            let Some(slot) = slot_of(self.st.kind, name) else {
                continue;
            };
            if used[slot] || !wanted[slot] {
                continue;
            }
            used[slot] = true;
            let list = match self.st.header.types.get(column) {
                Some(t) => {
                    t.starts_with("set[") || t.starts_with("vector[") || t.starts_with("table[")
                }
                None => is_list_field(name),
            };
            plan.push(PlannedColumn { column, slot, list });
        }
        plan
    }

    fn tsv_record<'a>(&mut self, line: &'a [u8]) -> Result<Record<'a>, LineErrorKind> {
        if self.st.header.fields.is_empty() {
            return Err(LineErrorKind::NoHeader);
        }
        if self.plan_stale {
            self.compile_plan();
        }
        self.columns.clear();
        split_positions(line, &self.st.header.separator, &mut self.columns);
        if self.columns.len() != self.st.header.fields.len() {
            return Err(LineErrorKind::ColumnCount {
                expected: self.st.header.fields.len(),
                found: self.columns.len(),
            });
        }
        let record = convert_tsv(
            self.st.kind,
            &self.st.header,
            &self.plan,
            &self.columns,
            line,
        );
        match (&self.only, &record) {
            (Some((_, bound)), Ok(r)) if r.ts().is_some_and(|t| t < bound.get()) => convert_tsv(
                self.st.kind,
                &self.st.header,
                &self.full_plan,
                &self.columns,
                line,
            ),
            _ => record,
        }
    }

    fn json_record<'a>(&mut self, line: &'a [u8]) -> Result<Record<'a>, LineErrorKind> {
        let mut slots: Slots<'a> = empty_slots();
        let (path, keys) = parse_json_object(line, self.st.kind, &mut slots)?;
        self.json_fields = keys;
        if let Some(path) = path {
            let kind = LogKind::from_path(&path);
            if self.st.path.as_deref() != Some(&*path) {
                self.changes += 1;
                self.st.path = Some(path.into_owned());
            }
            if kind != self.st.kind {
                self.changes += 1;
                // `_path` names another log than the file name did: it wins; parse again.
                self.st.kind = kind;
                slots = empty_slots();
                parse_json_object(line, self.st.kind, &mut slots)?;
            }
        }
        Record::from_slots(self.st.kind, &mut slots)
    }
}

/// The values of a split TSV line that `plan` names, converted into a record of `kind`.
fn convert_tsv<'a>(
    kind: Option<LogKind>,
    h: &TsvHeader,
    plan: &[PlannedColumn],
    columns: &[(usize, usize)],
    line: &'a [u8],
) -> Result<Record<'a>, LineErrorKind> {
    let mut slots: Slots<'a> = empty_slots();
    // One UTF-8 check for the whole line lets every field borrow as `&str` (separators
    // are ASCII, so splits fall on character boundaries); otherwise decode per field.
    let text = std::str::from_utf8(line).ok();
    // The usual line has nothing to decode in any value: checked once for the whole line.
    let plain = text.is_some() && !needs_decoding(line);
    let decode = |start: usize, end: usize| -> Cow<'a, str> {
        // `get`: a non-ASCII separator byte may split inside a character.
        match text.and_then(|t| t.get(start..end)) {
            Some(t) if plain => Cow::Borrowed(t),
            Some(t) => decode_str(t),
            None => decode_value(&line[start..end]),
        }
    };
    for p in plan {
        let (start, end) = columns[p.column];
        let raw = &line[start..end];
        if raw == h.unset_field.as_slice() {
            continue;
        }
        let val = if p.list {
            if raw == h.empty_field.as_slice() {
                Val::List(Vec::new())
            } else {
                let mut items = Vec::new();
                let mut at = start;
                for item in split_all(raw, &h.set_separator) {
                    items.push(Val::Str(decode(at, at + item.len())));
                    at += item.len() + h.set_separator.len();
                }
                Val::List(items)
            }
        } else if raw == h.empty_field.as_slice() {
            Val::Str(Cow::Borrowed(""))
        } else {
            Val::Str(decode(start, end))
        };
        slots[p.slot] = Some(val);
    }
    Record::from_slots(kind, &mut slots)
}

/// Parse a JSON object line into slots; returns its `_path` (if any) and its key count.
fn parse_json_object<'a>(
    line: &'a [u8],
    kind: Option<LogKind>,
    slots: &mut Slots<'a>,
) -> Result<(Option<Cow<'a, str>>, usize), LineErrorKind> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let visitor = ObjectVisitor {
        kind,
        slots,
        path: None,
        keys: 0,
    };
    let (path, keys) = de
        .deserialize_map(visitor)
        .map_err(|e| LineErrorKind::Json(e.to_string()))?;
    de.end().map_err(|e| LineErrorKind::Json(e.to_string()))?;
    Ok((path, keys))
}

struct ObjectVisitor<'s, 'a> {
    kind: Option<LogKind>,
    slots: &'s mut Slots<'a>,
    path: Option<Cow<'a, str>>,
    keys: usize,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = (Option<Cow<'de, str>>, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(BorrowedStr(key)) = map.next_key()? {
            self.keys += 1;
            if key == "_path" {
                if let Some(Val::Str(p)) = map.next_value::<Option<Val<'de>>>()? {
                    self.path = Some(p);
                }
            } else if let Some(slot) = slot_of(self.kind, &key) {
                // JSON `null` counts as absent.
                self.slots[slot] = map.next_value::<Option<Val<'de>>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((self.path, self.keys))
    }
}

/// A string that borrows from the input when it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> de::Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Zeek field value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val<'de>, E> {
        Ok(if v >= 0 {
            Val::Uint(v as u64)
        } else {
            Val::Int(v)
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(Val::Uint(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val<'de>, E> {
        Ok(Val::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValSeed)? {
            items.push(item);
        }
        Ok(Val::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Object)
    }
}

struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

fn trim_start(line: &[u8]) -> &[u8] {
    let n = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &line[n..]
}

/// Position of `needle` in `hay` (single-byte needles use memchr).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [b] => memchr::memchr(*b, hay),
        _ => memchr::memmem::find(hay, needle),
    }
}

/// Iterate the pieces of `s` split on `sep` (at least one piece).
fn split_all<'a, 'b>(s: &'a [u8], sep: &'b [u8]) -> Split<'a, 'b> {
    Split { rest: Some(s), sep }
}

/// Iterator of [`split_all`]: the pieces borrow from the input, not from the separator.
struct Split<'a, 'b> {
    rest: Option<&'a [u8]>,
    sep: &'b [u8],
}

impl<'a> Iterator for Split<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let cur = self.rest?;
        if self.sep.is_empty() {
            self.rest = None;
            return Some(cur);
        }
        match find(cur, self.sep) {
            Some(at) => {
                self.rest = Some(&cur[at + self.sep.len()..]);
                Some(&cur[..at])
            }
            None => {
                self.rest = None;
                Some(cur)
            }
        }
    }
}

/// Record the (start, end) of every column of `line` split on `sep`.
fn split_positions(line: &[u8], sep: &[u8], out: &mut Vec<(usize, usize)>) {
    let mut start = 0;
    if let [b] = sep {
        // Fields are short (a tab every ~8 bytes): eight bytes at a time, each separator
        // found by its bit in an exact per-byte mask, costs less than a search per field.
        const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let pattern = 0x0101_0101_0101_0101u64 * u64::from(*b);
        let mut words = line.chunks_exact(8);
        let mut base = 0;
        for word in &mut words {
            let v = u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default()) ^ pattern;
            // High bit set in each byte of `v` that is zero (a separator), and only there.
            let mut found = !(((v & LOW) + LOW) | v) & !LOW;
            while found != 0 {
                let at = base + (found.trailing_zeros() / 8) as usize;
                out.push((start, at));
                start = at + 1;
                found &= found - 1;
            }
            base += 8;
        }
        for (i, c) in words.remainder().iter().enumerate() {
            if c == b {
                out.push((start, base + i));
                start = base + i + 1;
            }
        }
    } else {
        for at in memchr::memmem::find_iter(line, sep) {
            if at >= start {
                out.push((start, at));
                start = at + sep.len();
            }
        }
    }
    out.push((start, line.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zeek::record::ConnRecord;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n";

    fn parse_all(
        p: &mut LineParser,
        text: &str,
    ) -> Vec<Result<Option<Record<'static>>, LineErrorKind>> {
        text.lines()
            .map(|l| match p.parse_line(l.as_bytes()) {
                Ok(Parsed::Record(r)) => Ok(Some(r.into_owned())),
                Ok(Parsed::Meta) => Ok(None),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// The records of `text`, every line expected to parse.
    fn records(p: &mut LineParser, text: &str) -> Vec<Record<'static>> {
        parse_all(p, text)
            .into_iter()
            .filter_map(|r| r.unwrap())
            .collect()
    }

    fn conn(r: &Record<'_>) -> ConnRecord<'static> {
        match r.clone().into_owned() {
            Record::Conn(c) => c,
            other => panic!("not conn: {other:?}"),
        }
    }

    #[test]
    fn tsv_conn_line() {
        let mut p = LineParser::new(None);
        let text = format!(
            "{HEADER}1582810000.123456\tC1\t192.168.1.10\t51000\t8.8.8.8\t53\tudp\tdns\t0.020135\t30\t94\tSF\n"
        );
        let out = parse_all(&mut p, &text);
        let rec = out.last().unwrap().as_ref().unwrap().as_ref().unwrap();
        let c = conn(rec);
        assert_eq!(c.ts, Some(1582810000.123456));
        assert_eq!(c.uid.as_deref(), Some("C1"));
        assert_eq!(c.id.resp_p, Some(53));
        assert_eq!(c.duration, Some(0.020135));
        assert_eq!(c.conn_state.as_deref(), Some("SF"));
        assert_eq!(c.orig_pkts, None);
        assert_eq!(p.kind(), Some(LogKind::Conn));
        assert_eq!(p.format(), Some(Format::Tsv));
    }

    proptest::proptest! {
        /// The word-at-a-time split finds what a byte-by-byte one does.
        #[test]
        fn split_positions_is_the_plain_split(
            line in proptest::collection::vec(proptest::sample::select(vec![b'\t', b'a', 0x08, 0x89, 0, b'-']), 0..80),
            sep in proptest::sample::select(vec![b'\t', 0x89, 0]),
        ) {
            let mut out = Vec::new();
            split_positions(&line, &[sep], &mut out);
            let mut expected = Vec::new();
            let mut start = 0;
            for (i, c) in line.iter().enumerate() {
                if *c == sep {
                    expected.push((start, i));
                    start = i + 1;
                }
            }
            expected.push((start, line.len()));
            proptest::prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn only_fields_converts_those_alone() {
        // A bad count in a field not converted does not make the line an error; a wrong
        // column count still does.
        let text = format!(
            "{HEADER}1582810000.5\tC1\t192.168.1.10\t51000\t8.8.8.8\t53\tudp\tdns\t0.5\tbad\t94\tSF\n1.0\tC2\n"
        );
        let mut whole = LineParser::new(None);
        let out = parse_all(&mut whole, &text);
        assert!(matches!(out[7], Err(LineErrorKind::BadValue { .. })));
        let bound = Arc::new(TimeBound::default());
        bound.lower(1582810000.5);
        let mut p = LineParser::new(None);
        p.only_fields(&["ts", "id.orig_h", "id.resp_h", "proto"], bound.clone());
        let out = parse_all(&mut p, &text);
        let c = conn(out[7].as_ref().unwrap().as_ref().unwrap());
        assert_eq!(c.ts, Some(1582810000.5));
        assert_eq!(c.id.orig_h, "192.168.1.10".parse().ok());
        assert_eq!(c.id.resp_h, "8.8.8.8".parse().ok());
        assert_eq!(c.proto.as_deref(), Some("udp"));
        assert_eq!(
            (c.uid, c.id.orig_p, c.orig_bytes, c.duration),
            (None, None, None, None)
        );
        assert!(matches!(out[8], Err(LineErrorKind::ColumnCount { .. })));
        // Below the bound the line is converted whole (the bad count is an error again): in a
        // parser whose bound is still where it starts (no conn kept yet) ...
        let later = Arc::new(TimeBound::default());
        let mut p = LineParser::new(None);
        p.only_fields(&["ts", "id.orig_h", "id.resp_h", "proto"], later.clone());
        let out = parse_all(&mut p, &text);
        assert!(matches!(out[7], Err(LineErrorKind::BadValue { .. })));
        // ... not once the bound it holds is lowered to the line's time; the bound only goes
        // down.
        later.lower(1582810000.5);
        later.lower(1582900000.0);
        assert_eq!(later.get(), 1582810000.5);
        let data = text.lines().nth(7).unwrap_or_default().as_bytes();
        assert!(matches!(p.parse_line(data), Ok(Parsed::Record(_))));
    }

    #[test]
    fn tsv_and_json_give_the_same_record() {
        let mut t = LineParser::new(Some(LogKind::Conn));
        let text = format!(
            "{HEADER}1582810000.5\tC2\t2001:db8::1\t51001\t2001:db8::2\t80\ttcp\t-\t-\t400\t1200\tS0\n"
        );
        let tsv = parse_all(&mut t, &text).pop().unwrap().unwrap().unwrap();
        let mut j = LineParser::new(Some(LogKind::Conn));
        let json = br#"{"ts":1582810000.5,"uid":"C2","id.orig_h":"2001:db8::1","id.orig_p":51001,"id.resp_h":"2001:db8::2","id.resp_p":80,"proto":"tcp","orig_bytes":400,"resp_bytes":1200,"conn_state":"S0","missed_bytes":0,"tunnel_parents":[]}"#;
        let Parsed::Record(rec) = j.parse_line(json).unwrap() else {
            panic!()
        };
        assert_eq!(rec, tsv);
    }

    #[test]
    fn errors_are_typed() {
        let mut p = LineParser::new(Some(LogKind::Conn));
        assert_eq!(
            p.parse_line(b"1\t2\t3").unwrap_err(),
            LineErrorKind::NoHeader
        );
        parse_all(&mut p, HEADER);
        assert!(matches!(
            p.parse_line(b"1\t2\t3").unwrap_err(),
            LineErrorKind::ColumnCount {
                expected: 12,
                found: 3
            }
        ));
        let bad_ip = b"1.0\tC\t1.2.3.999\t1\t1.2.3.4\t2\ttcp\t-\t-\t-\t-\tSF";
        assert!(matches!(
            p.parse_line(bad_ip).unwrap_err(),
            LineErrorKind::BadValue {
                field: "id.orig_h",
                ..
            }
        ));
        let mut j = LineParser::new(Some(LogKind::Conn));
        assert!(matches!(
            j.parse_line(b"{\"ts\":1.0,").unwrap_err(),
            LineErrorKind::Json(_)
        ));
        assert!(matches!(
            j.parse_line(b"{\"ts\":\"x\"}").unwrap_err(),
            LineErrorKind::BadValue { field: "ts", .. }
        ));
        assert!(matches!(
            j.parse_line(b"{} x").unwrap_err(),
            LineErrorKind::Json(_)
        ));
    }

    #[test]
    fn json_path_overrides_the_name_and_null_is_absent() {
        let mut p = LineParser::new(None);
        let line = br#"{"_path":"dns","_write_ts":"2018-03-24T17:15:20.865716Z","ts":"2018-03-24T17:15:20.865716Z","uid":"Cx","id.orig_h":"10.0.0.1","id.orig_p":5353,"id.resp_h":"224.0.0.251","id.resp_p":5353,"query":null,"answers":["a","b"],"TTLs":[120.0,120.0]}"#;
        let Parsed::Record(Record::Dns(d)) = p.parse_line(line).unwrap() else {
            panic!("not dns")
        };
        assert_eq!(d.ts, Some(1521911720.865716));
        assert_eq!(d.query, None);
        assert_eq!(d.answers.unwrap(), vec!["a", "b"]);
        assert_eq!(d.ttls, Some(vec![120.0, 120.0]));
        assert_eq!(p.path(), Some("dns"));
    }

    #[test]
    fn header_block_mid_file_switches_schema() {
        let mut p = LineParser::new(Some(LogKind::Conn));
        let text = format!(
            "{HEADER}1.0\tC1\t1.1.1.1\t1\t2.2.2.2\t2\ttcp\t-\t-\t-\t-\tSF\n#close\t2020-01-01-00-00-00\n#separator \\x09\n#fields\tuid\tts\tproto\n#types\tstring\ttime\tenum\nC2\t2.0\tudp\n"
        );
        let recs = records(&mut p, &text);
        assert_eq!(recs.len(), 2);
        let c = conn(&recs[1]);
        assert_eq!(
            (c.uid.as_deref(), c.ts, c.proto.as_deref()),
            (Some("C2"), Some(2.0), Some("udp"))
        );
    }

    #[test]
    fn sets_split_before_decoding() {
        let mut p = LineParser::new(Some(LogKind::Dns));
        let text = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#fields\tts\tuid\tquery\tanswers\tTTLs\n#types\ttime\tstring\tstring\tvector[string]\tvector[interval]\n1.0\tC\ta\\x2cb\tx\\x2cy,z\t1.0,2.0\n2.0\tD\t\\x2d\t(empty)\t-\n";
        let recs = records(&mut p, text);
        let Record::Dns(d) = &recs[0] else { panic!() };
        assert_eq!(d.query.as_deref(), Some("a,b"));
        assert_eq!(d.answers.as_ref().unwrap(), &vec!["x,y", "z"]);
        let Record::Dns(d) = &recs[1] else { panic!() };
        assert_eq!(d.query.as_deref(), Some("-"));
        assert_eq!(d.answers.as_ref().unwrap().len(), 0);
        assert_eq!(d.ttls, None);
    }

    #[test]
    fn other_separators() {
        let mut p = LineParser::new(Some(LogKind::Conn));
        let text = "#separator ||\n#set_separator||,\n#fields||ts||uid||proto\n#types||time||string||enum\n5.0||a\\x7c\\x7cb||tcp\n";
        let recs: Vec<_> = records(&mut p, text);
        let c = conn(&recs[0]);
        assert_eq!(c.uid.as_deref(), Some("a||b"));
    }

    #[test]
    fn empty_set_separator_does_not_loop() {
        // Found by fuzzing: `#set_separator` with an empty value under a `,` separator.
        let mut p = LineParser::new(Some(LogKind::Dns));
        let text = "#separator ,\n#set_separator,\n#fields,ts,answers\n#types,time,vector[string]\n1.0,a\n";
        let recs: Vec<_> = records(&mut p, text);
        assert_eq!(recs.len(), 1);
        assert_eq!(split_all(b"abc", b"").collect::<Vec<_>>(), [b"abc"]);
    }

    #[test]
    fn non_ascii_separator_never_splits_a_character_badly() {
        // Separator byte 0xc3 also starts `é` (c3 a9): the split lands inside the character.
        let mut p = LineParser::new(Some(LogKind::Conn));
        let mut text = b"#separator \\xc3\n#fields\xc3ts\xc3uid\xc3proto\xc3service\n".to_vec();
        // Valid UTF-8 as a whole ("1.0écafétcpéx"), yet every column after the first starts
        // with the continuation byte of an `é`.
        text.extend_from_slice("1.0\u{e9}caf\u{e9}tcp\u{e9}x\n".as_bytes());
        let recs: Vec<_> = text
            .split(|&b| b == b'\n')
            .filter_map(|l| match p.parse_line(l) {
                Ok(Parsed::Record(r)) => Some(r.into_owned()),
                _ => None,
            })
            .collect();
        let c = conn(&recs[0]);
        assert_eq!(c.uid.as_deref(), Some("\\xa9caf"));
        assert_eq!(c.proto.as_deref(), Some("\\xa9tcp"));
    }

    #[test]
    fn custom_meta_prefix() {
        let mut p = LineParser::new(Some(LogKind::Conn));
        let text = "PREFIX<>separator |\nPREFIX<>unset_field|NOT-SET\nPREFIX<>fields|ts|uid|proto\nPREFIX<>types|time|string|enum\n5.0|NOT-SET|tcp\n";
        let recs: Vec<_> = records(&mut p, text);
        let c = conn(&recs[0]);
        assert_eq!((c.ts, c.uid), (Some(5.0), None));
    }
}
