//! Time as the Docker API spells it: RFC 3339 with nanoseconds in UTC for timestamps,
//! and the `since`/`until` forms clients send (Unix seconds with an optional fraction,
//! RFC 3339, or a duration back from now such as `10m`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use berth_types::time::{parse_rfc3339, rfc3339};

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i128 {
    to_ns(SystemTime::now())
}

/// A `SystemTime` as nanoseconds since the Unix epoch (negative before it).
pub fn to_ns(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The current time as Docker prints it: `2026-11-23T10:11:12.123456789Z`.
pub fn now_rfc3339() -> String {
    rfc3339(now_ns())
}

/// Docker's "zero time", used for a container that never started or finished.
pub const ZERO: &str = "0001-01-01T00:00:00Z";

/// Parses a `since`/`until` value as Docker's clients send it: `1700000000`,
/// `1700000000.123456789`, an RFC 3339 time, or a Go duration (`10m`, `1h30m`) meaning that
/// long before now.
pub fn parse_timestamp(s: &str, now: i128) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(ns) = parse_rfc3339(s) {
        return Some(ns);
    }
    if let Some(d) = parse_go_duration(s) {
        return Some(now - d.as_nanos() as i128);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let secs: i128 = whole.parse().ok()?;
    let mut f = frac.to_string();
    while f.len() < 9 {
        f.push('0');
    }
    Some(secs * 1_000_000_000 + f.parse::<i128>().ok()?)
}

/// Parses a Go duration string (`300ms`, `1h2m3s`, `1.5s`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * mult;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_clients_send_them() {
        let now = 2_000_000_000_000_000_000;
        assert_eq!(
            parse_timestamp("1700000000", now),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("1700000000.5", now),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_timestamp("10m", now), Some(now - 600_000_000_000));
        assert_eq!(parse_timestamp("1h30m", now), Some(now - 5_400_000_000_000));
        assert_eq!(parse_timestamp("x", now), None);
        assert_eq!(parse_timestamp("-5", now), None);
    }
}
