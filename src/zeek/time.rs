//! Zeek timestamps: epoch seconds as text, or ISO-8601 (`LogAscii::json_timestamps`).

use chrono::{DateTime, NaiveDateTime};

/// Parse a timestamp given as epoch-seconds text or as ISO-8601 (a value without a zone is UTC).
///
/// ISO values are turned into the decimal text of their epoch seconds before parsing, so that
/// `2018-03-24T17:15:20.865716Z` gives exactly the f64 that `1521911720.865716` gives.
pub fn parse_timestamp_text(s: &str) -> Option<f64> {
    if let Ok(f) = s.parse::<f64>() {
        return f.is_finite().then_some(f);
    }
    let (secs, nanos) = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        (dt.timestamp(), dt.timestamp_subsec_nanos())
    } else {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()?;
        let utc = naive.and_utc();
        (utc.timestamp(), utc.timestamp_subsec_nanos())
    };
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    let sign = if total < 0 { "-" } else { "" };
    let abs = total.unsigned_abs();
    let text = format!("{sign}{}.{:09}", abs / 1_000_000_000, abs % 1_000_000_000);
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_text() {
        assert_eq!(
            parse_timestamp_text("1582810000.123456"),
            Some(1582810000.123456)
        );
        assert_eq!(parse_timestamp_text("XXXXXXXXXX.XXXXXX"), None);
        assert_eq!(parse_timestamp_text("nan"), None);
    }

    #[test]
    fn iso_matches_epoch_text_exactly() {
        assert_eq!(
            parse_timestamp_text("2018-03-24T17:15:20.865716Z"),
            Some(1521911720.865716)
        );
        assert_eq!(
            parse_timestamp_text("2018-03-24T17:15:20.865716"),
            Some(1521911720.865716)
        );
        assert_eq!(
            parse_timestamp_text("2018-03-24T19:15:20.865716+02:00"),
            Some(1521911720.865716)
        );
        assert_eq!(
            parse_timestamp_text("1969-12-31T23:59:59.600000Z"),
            Some(-0.4)
        );
        assert_eq!(
            parse_timestamp_text("1960-01-01T00:00:00.000000Z"),
            Some(-315619200.0)
        );
    }
}
