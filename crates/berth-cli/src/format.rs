//! Docker's ways of showing things: sizes (`4.26MB`), durations (`3 seconds`), times,
//! truncated ids and tab-aligned tables (Go's tabwriter as docker configures it), and the
//! `--format` switch between a named format, a `table …` template and a plain template.

use crate::template::{self, Template};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// `units.HumanSizeWithPrecision(n, 3)`: decimal units, three significant digits.
pub fn human_size(n: f64) -> String {
    human_size_prec(n, 3)
}

/// `units.HumanSizeWithPrecision(n, prec)` (`units.HumanSize` is precision 4).
pub fn human_size_prec(n: f64, prec: i32) -> String {
    const U: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", g(v, prec), U[i])
}

/// `units.BytesSize`: binary units (`1.5GiB`), as `docker stats` shows memory.
pub fn bytes_size(n: f64) -> String {
    const U: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", g3(v), U[i])
}

fn g3(v: f64) -> String {
    g(v, 3)
}

/// Go's `%.<prec>g` for values below 1000: `prec` significant digits, no trailing zeros.
fn g(v: f64, prec: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let dec = (prec - digits).max(0) as usize;
    let s = format!("{v:.dec$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    // 999.9 at three digits rounds up to Go's exponent form.
    if prec == 3 && s == "1000" {
        "1e+03".into()
    } else {
        s
    }
}

/// `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let s = secs as i64;
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (secs / 3600.0 + 0.5) as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as i64)
}

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `"<duration> ago"` for a unix time.
pub fn ago(unix: f64) -> String {
    format!("{} ago", human_duration((now() - unix).max(0.0)))
}

/// Parses RFC 3339 (`2024-05-01T10:00:00.123456789Z`, offsets allowed) to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        frac = format!("0.{}", &r[..end]).parse().unwrap_or(0.0);
        rest = &r[end..];
    }
    let off = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() >= 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86400 + h * 3600 + mi * 60 + se - off) as f64 + frac)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `time.Time.String()` in UTC: `2024-05-01 10:00:00 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86400));
    let s = unix.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// RFC 3339 with nanoseconds, as `docker logs -t` and events print.
pub fn rfc3339_nano(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let nanos = ((unix - unix.floor()) * 1e9) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Docker's `--since`/`--until` values: unix seconds (`1700000000.5`), RFC 3339 times or
/// durations relative to now (`10m`, `1h30m`, `90s`); returns the API's form (seconds).
pub fn parse_time_arg(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    if s.parse::<f64>().is_ok() {
        return Ok(s.to_string());
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(format!("{t:.9}"));
    }
    if let Some(t) = parse_rfc3339(&format!("{s}Z")) {
        return Ok(format!("{t:.9}"));
    }
    if let Some(d) = parse_go_duration(s) {
        return Ok(format!("{:.9}", now() - d));
    }
    Err(format!("invalid value for time: {s:?}"))
}

/// Go durations: `1h2m3s`, `1.5s`, `300ms`.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let uend = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..uend] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[uend..];
    }
    Some(total)
}

/// The first 12 characters of an id, without a `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut o: String = s.chars().take(max - 1).collect();
    o.push('…');
    o
}

/// Go's tabwriter as docker sets it up: min width 10, padding 3, spaces; cells end at tabs,
/// the last cell of a line is not aligned.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    // Columns are aligned in blocks of consecutive lines that have that column.
    let widths_for = |start: usize, col: usize, lines: &[Vec<&str>]| -> usize {
        let mut w = 10;
        let mut i = start;
        while i < lines.len() && lines[i].len() > col + 1 {
            w = w.max(width(lines[i][col]) + 3);
            i += 1;
        }
        w
    };
    let mut col_width: Vec<(usize, usize)> = Vec::new(); // (block end line, width) per column
    for (li, l) in lines.iter().enumerate() {
        for (ci, cell) in l.iter().enumerate() {
            if ci + 1 == l.len() {
                out.push_str(cell.trim_end_matches(' ').trim_end_matches('\r'));
                if cell.is_empty() && ci > 0 {
                    // Trailing empty cell: tabwriter drops the padding of the last column.
                    let t = out.trim_end_matches(' ').len();
                    out.truncate(t);
                }
                break;
            }
            if col_width.len() <= ci {
                col_width.push((0, 0));
            }
            if col_width[ci].0 <= li {
                let w = widths_for(li, ci, &lines);
                let mut end = li;
                while end < lines.len() && lines[end].len() > ci + 1 {
                    end += 1;
                }
                col_width[ci] = (end, w);
            }
            let w = col_width[ci].1;
            out.push_str(cell);
            out.push_str(&" ".repeat(w.saturating_sub(width(cell))));
        }
        out.push('\n');
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// JSON as Go's encoder writes it: compact, with `<`, `>` and `&` escaped.
pub fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// How rows are printed: `table` (with headers, aligned), a raw template, or `json`.
pub enum Output {
    Table(Template),
    Plain(Template),
    Json,
}

impl Output {
    /// Parses `--format`: `""` uses `default` (a `table …` template), `table` alone is the
    /// default table, `json` is one JSON object per line.
    pub fn parse(format: &str, default: &str) -> Result<Output, template::Error> {
        let f = if format.is_empty() || format == "table" {
            default
        } else {
            format
        };
        if f == "json" {
            return Ok(Output::Json);
        }
        let unescape = |s: &str| s.replace("\\t", "\t").replace("\\n", "\n");
        if let Some(t) = f.strip_prefix("table") {
            let t = t.trim_start();
            return Ok(Output::Table(Template::parse(&unescape(t))?));
        }
        Ok(Output::Plain(Template::parse(&unescape(f))?))
    }

    /// Renders rows; `header` maps field names to column titles.
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, template::Error> {
        match self {
            Output::Json => {
                let mut s = String::new();
                for r in rows {
                    s.push_str(&go_json(r));
                    s.push('\n');
                }
                Ok(s)
            }
            Output::Plain(t) => {
                let mut s = String::new();
                for r in rows {
                    s.push_str(&t.execute(r)?);
                    s.push('\n');
                }
                Ok(s)
            }
            Output::Table(t) => {
                let mut s = String::new();
                let h = t.execute(header)?;
                if !h.trim().is_empty() {
                    s.push_str(&h);
                    s.push('\n');
                }
                for r in rows {
                    s.push_str(&t.execute(r)?);
                    s.push('\n');
                }
                Ok(tabwrite(&s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_and_durations_as_docker() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_980_000.0), "1.98MB");
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(12_345.0), "12.3kB");
        assert_eq!(human_size(123_456.0), "123kB");
        assert_eq!(human_size(5_000_000.0), "5MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(3.2), "3 seconds");
        assert_eq!(human_duration(90.0), "About a minute");
        assert_eq!(human_duration(150.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 86400.0), "5 days");
    }

    #[test]
    fn times() {
        let t = parse_rfc3339("2024-05-01T10:00:00.5Z").unwrap();
        assert_eq!(t, 1714557600.5);
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00+02:00").unwrap(),
            1714557600.0
        );
        assert_eq!(go_time(1714557600), "2024-05-01 10:00:00 +0000 UTC");
        assert_eq!(
            rfc3339_nano(1714557600.25),
            "2024-05-01T10:00:00.250000000Z"
        );
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400.0);
        assert!(parse_time_arg("yesterday").is_err());
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let t = tabwrite("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tweb\n");
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   web\n"
        );
        assert_eq!(ellipsis("sh -c 'exit 3' more", 10), "sh -c 'ex…");
    }
}
