//! The timestamp prefix `YYYY/MM/DD HH:MM:SS.ffffff` (reference §6.1): Python's
//! `datetime.fromtimestamp(ts)` — microseconds rounded half-to-even — in the chosen zone.

use std::str::FromStr;

use chrono::{DateTime, Local, TimeZone, Utc};

/// The zone timestamps are written in (`--timezone`).
#[derive(Clone, Debug, PartialEq)]
pub enum Clock {
    /// UTC.
    Utc,
    /// The host's local zone (`TZ`, `/etc/localtime`), as Slips did.
    Local,
    /// An IANA zone such as `Europe/Prague`.
    Named(chrono_tz::Tz),
}

impl FromStr for Clock {
    type Err = String;
    fn from_str(s: &str) -> Result<Clock, String> {
        match s {
            "UTC" | "utc" => Ok(Clock::Utc),
            "local" => Ok(Clock::Local),
            name => name.parse::<chrono_tz::Tz>().map(Clock::Named).map_err(|_| {
                format!("unknown time zone {name:?}: use UTC, local, or an IANA name such as Europe/Prague")
            }),
        }
    }
}

/// Seconds and microseconds of a float timestamp, as CPython splits it: `modf`, the fraction
/// times 10^6 rounded half-to-even, carried into the seconds when it reaches 10^6.
pub fn split_micros(ts: f64) -> (i64, u32) {
    let mut secs = ts.trunc();
    let mut us = ((ts - secs) * 1e6).round_ties_even();
    if us >= 1e6 {
        secs += 1.0;
        us -= 1e6;
    } else if us < 0.0 {
        secs -= 1.0;
        us += 1e6;
    }
    (secs as i64, us as u32)
}

fn format<Tz: TimeZone>(t: DateTime<Tz>) -> String {
    use chrono::{Datelike, Timelike};
    // Written by hand, digit by digit: chrono's format string is parsed on every call, and
    // every timeline line needs one.
    let mut out = String::with_capacity(26);
    let year = t.year();
    if (0..=9999).contains(&year) {
        push_digits(&mut out, year as u32, 4);
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{year:04}");
    }
    out.push('/');
    push_digits(&mut out, t.month(), 2);
    out.push('/');
    push_digits(&mut out, t.day(), 2);
    out.push(' ');
    push_digits(&mut out, t.hour(), 2);
    out.push(':');
    push_digits(&mut out, t.minute(), 2);
    out.push(':');
    push_digits(&mut out, t.second(), 2);
    out.push('.');
    push_digits(&mut out, t.nanosecond() / 1000, 6);
    out
}

/// The last `width` decimal digits of `v`, zero-padded.
fn push_digits(out: &mut String, v: u32, width: u32) {
    for i in (0..width).rev() {
        let d = (v / 10u32.pow(i)) % 10;
        out.push(char::from(b'0' + d as u8));
    }
}

impl Clock {
    /// `YYYY/MM/DD HH:MM:SS.ffffff` of `ts` (epoch seconds).
    pub fn format(&self, ts: f64) -> String {
        let (secs, us) = split_micros(ts);
        let Some(utc) = DateTime::<Utc>::from_timestamp(secs, us * 1000) else {
            return crate::pyjson::float_repr(ts);
        };
        match self {
            Clock::Utc => format(utc),
            Clock::Local => format(utc.with_timezone(&Local)),
            Clock::Named(tz) => format(utc.with_timezone(tz)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_datetime_fromtimestamp() {
        let c = Clock::Utc;
        assert_eq!(c.format(1582810000.123456), "2020/02/27 13:26:40.123456");
        assert_eq!(c.format(1582806000.0), "2020/02/27 12:20:00.000000");
        assert_eq!(c.format(1571784183.0), "2019/10/22 22:43:03.000000");
        assert_eq!(c.format(0.5), "1970/01/01 00:00:00.500000");
        assert_eq!(c.format(18.836741), "1970/01/01 00:00:18.836741");
        // Half-to-even on the binary value, and a carry into the seconds.
        // (values checked with CPython's datetime.fromtimestamp)
        assert_eq!(split_micros(1.9999995), (1, 999_999));
        assert_eq!(split_micros(0.9999996), (1, 0));
        assert_eq!(split_micros(2.5e-06), (0, 2));
        assert_eq!(split_micros(1.5e-06), (0, 2));
        assert_eq!(split_micros(1582810000.1234565), (1582810000, 123_456));
        assert_eq!(split_micros(-0.25), (-1, 750_000));
    }

    #[test]
    fn zones() {
        let prague: Clock = "Europe/Prague".parse().unwrap();
        assert_eq!(prague.format(1582810000.0), "2020/02/27 14:26:40.000000");
        assert_eq!("UTC".parse::<Clock>(), Ok(Clock::Utc));
        assert!("Mars/Olympus".parse::<Clock>().is_err());
    }
}
