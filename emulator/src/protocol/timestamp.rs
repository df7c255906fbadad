//! Timestamps: handlers see epoch seconds (a JSON number); each codec converts to its wire form.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// ISO 8601 as the query and ec2 protocols write it: `2026-01-01T00:00:00.000Z`.
pub fn to_iso8601(epoch_seconds: f64) -> String {
    let millis = (epoch_seconds * 1000.0).round() as i64;
    match Utc.timestamp_millis_opt(millis).single() {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Parses what clients send in query/rest requests: ISO 8601 / RFC 3339, or epoch seconds.
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_millis() as f64 / 1000.0);
    }
    // RFC 3339 without a zone (some clients omit the Z).
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let t = 1_767_225_600.5;
        let s = to_iso8601(t);
        assert_eq!(s, "2026-01-01T00:00:00.500Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(parse("1767225600"), Some(1_767_225_600.0));
        assert_eq!(parse("yesterday"), None);
    }
}
