//! How the CLI prints: times, durations, tables.

use std::time::Duration;

use std::collections::HashMap;
use tollgate_issue::format_duration;

use tollgate_issue::{ApplicationRecord, PolicyDecision, PolicyRule, ServiceTokenRecord};

pub(crate) use tollgate_core::clock::rfc3339;

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
        "enabled": token.enabled,
        "client_secret_version": token.client_secret_version,
    })
}

/// An application as JSON. `policies` is the whole truth; `allowed_service_tokens` stays for
/// scripts of the allow-list days: `null` when a Service Auth policy admits any valid token
/// unconditionally, else the client IDs Service Auth policies include (`client_ids` maps token
/// ids to client IDs).
pub(crate) fn app_json(
    app: &ApplicationRecord,
    client_ids: &HashMap<String, String>,
) -> serde_json::Value {
    let service_auth = app
        .policies
        .iter()
        .map(|p| &p.policy)
        .filter(|p| p.decision == PolicyDecision::NonIdentity);
    let any = service_auth.clone().any(|p| {
        p.rules.require.is_empty()
            && p.rules.exclude.is_empty()
            && p.rules
                .include
                .contains(&PolicyRule::AnyValidServiceToken {})
    });
    let allowed = if any {
        serde_json::Value::Null
    } else {
        let named: Vec<&str> = service_auth
            .flat_map(|p| p.rules.include.iter())
            .filter_map(PolicyRule::token_id)
            .map(|id| client_ids.get(id).map_or(id, String::as_str))
            .collect();
        serde_json::json!(named)
    };
    let policies: Vec<serde_json::Value> = app
        .policies
        .iter()
        .map(|p| crate::policies::policy_json(&p.policy, Some(p.precedence), None))
        .collect();
    serde_json::json!({
        "id": app.id,
        "type": "self_hosted",
        "name": app.name,
        "aud": app.aud,
        "session_duration": session(app.session_duration),
        "read_service_tokens_from_header": app.read_service_tokens_from_header,
        "cookie_http_only": app.cookie_http_only,
        "cookie_secure": app.cookie_secure,
        "allowed_service_tokens": allowed,
        "policies": policies,
        "domain": app.domain,
        "origin": app.origin,
        "created_at": rfc3339(app.created_at),
        "updated_at": rfc3339(app.updated_at),
        "tokens_revoked_before": app.tokens_revoked_before.map(rfc3339),
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
