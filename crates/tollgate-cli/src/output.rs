//! How the CLI prints: times, durations, tables.

use std::time::Duration;

use tollgate_issue::duration::format_duration;
use tollgate_issue::{ApplicationRecord, ServiceAuthPolicy, ServiceTokenRecord};

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-23T15:45:00Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub(crate) fn opt_time(unix: Option<i64>, none: &str) -> String {
    unix.map_or_else(|| none.to_owned(), rfc3339)
}

pub(crate) fn token_json(token: &ServiceTokenRecord) -> serde_json::Value {
    serde_json::json!({
        "id": token.id,
        "name": token.name,
        "client_id": token.client_id,
        "duration": token.duration.to_string(),
        "created_at": rfc3339(token.created_at),
        "updated_at": rfc3339(token.updated_at),
        "expires_at": token.expires_at.map(rfc3339),
        "last_seen_at": token.last_seen_at.map(rfc3339),
        "previous_secret_expires_at": token.previous_secret_expires_at.map(rfc3339),
    })
}

pub(crate) fn app_json(app: &ApplicationRecord) -> serde_json::Value {
    let allowed = match &app.policy {
        ServiceAuthPolicy::AnyValidServiceToken => serde_json::Value::Null,
        ServiceAuthPolicy::Tokens(ids) => serde_json::json!(ids),
    };
    serde_json::json!({
        "name": app.name,
        "aud": app.aud,
        "session_duration": session(app.session_duration),
        "read_service_tokens_from_header": app.read_service_tokens_from_header,
        "cookie_http_only": app.cookie_http_only,
        "cookie_secure": app.cookie_secure,
        "allowed_service_tokens": allowed,
        "created_at": rfc3339(app.created_at),
    })
}

pub(crate) fn session(seconds: u64) -> String {
    if seconds == 0 {
        "0s".to_owned()
    } else {
        format_duration(Duration::from_secs(seconds))
    }
}

pub(crate) fn print_json(value: &serde_json::Value) {
    // Serialising a `Value` cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints rows as left-aligned columns under a header.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
