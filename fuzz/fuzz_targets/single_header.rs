//! The single-header JSON credentials (`find_credentials` with the application's header set to
//! `authorization`) over arbitrary header values, against the documented rules: a value that
//! does not start with `{` is ignored; over 4 KiB is refused before parsing; otherwise accepted
//! exactly when it is one JSON object of strings with nothing after it, no key twice, and one
//! client ID and one secret key (any case, `_` for `-`) whose trimmed values are non-empty —
//! and then those are the credentials. The same line twice is the same answer; two different
//! lines are ambiguous.
#![no_main]

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;
use tollgate_core::RejectionKind;
use tollgate_core::request::{MAX_SINGLE_HEADER_BYTES, find_credentials};
use tollgate_fuzz::normalised_key;

/// Every member of a JSON object, in order, duplicates kept.
struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<(String, Value)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(members)
    }
}

/// The credentials the rules read from `json`, or `None` for a refusal.
fn expected(json: &[u8]) -> Option<(String, String)> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let members = de.deserialize_map(Members).ok()?;
    de.end().ok()?;
    let (mut ids, mut secrets) = (Vec::new(), Vec::new());
    for (i, (key, value)) in members.iter().enumerate() {
        let Value::String(value) = value else {
            return None;
        };
        if members[..i].iter().any(|(k, _)| k == key) {
            return None;
        }
        match normalised_key(key).as_str() {
            "cf-access-client-id" => ids.push(value.trim().to_owned()),
            "cf-access-client-secret" => secrets.push(value.trim().to_owned()),
            _ => {}
        }
    }
    match (ids.as_slice(), secrets.as_slice()) {
        ([id], [secret]) if !id.is_empty() && !secret.is_empty() => {
            Some((id.clone(), secret.clone()))
        }
        _ => None,
    }
}

fn read(headers: &HeaderMap, name: &HeaderName) -> Result<Option<(String, String)>, RejectionKind> {
    find_credentials(headers, Some(name))
        .map(|found| found.map(|c| (c.client_id().to_owned(), c.expose_secret().to_owned())))
        .map_err(|r| r.kind())
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let name = HeaderName::from_static("authorization");
    let mut headers = HeaderMap::new();
    headers.append(&name, value.clone());
    let result = read(&headers, &name);
    let json = data.trim_ascii();
    let want = if !json.starts_with(b"{") {
        Ok(None)
    } else if json.len() > MAX_SINGLE_HEADER_BYTES {
        Err(RejectionKind::InvalidCredentials)
    } else {
        expected(json)
            .map(Some)
            .ok_or(RejectionKind::InvalidCredentials)
    };
    assert_eq!(result, want);

    headers.append(&name, value);
    assert_eq!(read(&headers, &name), want, "the same line twice");
    if json.starts_with(b"{") {
        let mut other = json.to_vec();
        other.push(b' ');
        other.push(b'x');
        if let Ok(other) = HeaderValue::from_bytes(&other) {
            headers.append(&name, other);
            assert_eq!(
                read(&headers, &name),
                Err(RejectionKind::AmbiguousCredentials)
            );
        }
    }
});
