//! Wire formats of streamed responses: JSON lines (events, stats, pull/import progress) and
//! container logs (optionally timestamped, stdcopy-framed unless the container has a tty).

use axum::body::Body;
use berth_api_types::stdcopy;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use crate::backend::{ItemStream, LogStream, Logs};

/// How an error that happens after the response started is reported in-band.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ErrorLine {
    /// `{"message": "..."}` (events, stats).
    Message,
    /// `{"errorDetail": {"message": "..."}, "error": "..."}`, which the CLI's progress
    /// display turns into an error and a non-zero exit (pull, import).
    Progress,
}

/// One JSON document per item, each followed by a newline; an error ends the stream after a
/// line describing it.
pub(crate) fn json_lines<T: Serialize + Send + 'static>(
    items: ItemStream<T>,
    on_error: ErrorLine,
) -> Body {
    let s = items
        .scan(false, |failed, item| {
            if *failed {
                return std::future::ready(None);
            }
            *failed = item.is_err();
            std::future::ready(Some(item))
        })
        .map(move |item| {
            let mut line = match item {
                Ok(v) => serde_json::to_vec(&v).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
            .unwrap_or_else(|m| {
                let v = match on_error {
                    ErrorLine::Message => serde_json::json!({ "message": m }),
                    ErrorLine::Progress => {
                        serde_json::json!({ "errorDetail": { "message": m }, "error": m })
                    }
                };
                v.to_string().into_bytes()
            });
            line.push(b'\n');
            Ok::<_, std::io::Error>(Bytes::from(line))
        });
    Body::from_stream(s)
}

/// The body of `GET /containers/{id}/logs`.
pub(crate) fn logs_body(logs: Logs, timestamps: bool) -> Body {
    let tty = logs.tty;
    let s = logs.entries.map(move |item| {
        let chunk = match item {
            Ok(entry) => {
                let data = if timestamps {
                    let mut v = format_rfc3339_nano(entry.time_ns).into_bytes();
                    v.push(b' ');
                    v.extend_from_slice(&entry.data);
                    Bytes::from(v)
                } else {
                    entry.data
                };
                if tty {
                    data
                } else {
                    let stream = match entry.stream {
                        LogStream::Stdout => stdcopy::Stream::Stdout,
                        LogStream::Stderr => stdcopy::Stream::Stderr,
                    };
                    Bytes::from(stdcopy::frame(stream, &data))
                }
            }
            Err(e) => {
                if tty {
                    return Err(std::io::Error::other(e.to_string()));
                }
                Bytes::from(stdcopy::frame(
                    stdcopy::Stream::System,
                    e.to_string().as_bytes(),
                ))
            }
        };
        Ok::<_, std::io::Error>(chunk)
    });
    Body::from_stream(s)
}

/// Formats Unix nanoseconds as Docker's log timestamps: RFC 3339 in UTC with exactly nine
/// fractional digits (`2024-05-01T12:00:00.000000001Z`).
pub(crate) fn format_rfc3339_nano(ns: i128) -> String {
    berth_types::time::rfc3339(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_nano(1_714_564_800_000_000_001),
            "2024-05-01T12:00:00.000000001Z"
        );
        assert_eq!(
            format_rfc3339_nano(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
    }
}
