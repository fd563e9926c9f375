//! Time as the Docker API spells it: RFC 3339 with nanoseconds in UTC for timestamps,
//! and the `since`/`until` forms clients send (Unix seconds with an optional fraction,
//! RFC 3339, or a duration back from now such as `10m`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Nanoseconds since the epoch as RFC 3339 UTC with nine fractional digits.
pub fn rfc3339(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parses RFC 3339 (`Z` or `±hh:mm` offsets, optional fraction) into nanoseconds since the
/// epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset: i64 = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

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

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let ns = 1_763_892_672_123_456_789i128;
        let s = rfc3339(ns);
        assert_eq!(s, "2025-11-23T10:11:12.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(ns));
        assert_eq!(
            parse_rfc3339("2025-11-23T11:11:12+01:00"),
            Some(1_763_892_672_000_000_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }

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
