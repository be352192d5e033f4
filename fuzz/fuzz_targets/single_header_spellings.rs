//! Single-header JSON credentials written from a structure the fuzzer picks: members with the
//! client ID and secret keys in any mix of case, `_`/`-` and `\u` escapes, other members,
//! repeats, whitespace; values with surrounding whitespace. The expected answer is computed
//! from the structure by the documented rules, then checked alone, beside the same
//! credentials as a header pair (`Both`), and beside a different pair (ambiguous).
#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tollgate_core::RejectionKind;
use tollgate_core::request::{CredentialSource, MAX_SINGLE_HEADER_BYTES, find_credentials};
use tollgate_fuzz::normalised_key;

#[derive(Debug, Arbitrary)]
enum Key {
    /// `cf-access-client-id`, spelled by the bits: upper case per letter, `_` per dash.
    Id(u64),
    /// `cf-access-client-secret`, spelled by the bits.
    Secret(u64),
    /// Some other member.
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Member {
    key: Key,
    /// Which ASCII letters of the key are written as `\u00XX` escapes.
    escapes: u32,
    value: String,
}

#[derive(Debug, Arbitrary)]
struct Input {
    members: Vec<Member>,
    /// Whitespace around the object and between tokens.
    padding: u8,
}

fn spell(base: &str, bits: u64) -> String {
    base.chars()
        .enumerate()
        .map(|(i, c)| match (c, bits >> (i % 64) & 1) {
            ('-', 1) => '_',
            (c, 1) => c.to_ascii_uppercase(),
            (c, _) => c,
        })
        .collect()
}

/// `key` as a JSON string, with the letters `escapes` picks written as `\u00XX`.
fn json_key(key: &str, escapes: u32) -> String {
    let mut out = String::from("\"");
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_alphabetic() && escapes >> (i % 32) & 1 == 1 {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            let quoted = serde_json::to_string(&c.to_string()).expect("a string serializes");
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
    }
    out.push('"');
    out
}

fuzz_target!(|input: Input| {
    let pad = " ".repeat(usize::from(input.padding % 4));
    let mut keys = Vec::new();
    let mut json = format!("{pad}{{");
    for (i, member) in input.members.iter().enumerate() {
        let key = match &member.key {
            Key::Id(bits) => spell("cf-access-client-id", *bits),
            Key::Secret(bits) => spell("cf-access-client-secret", *bits),
            Key::Other(name) => name.clone(),
        };
        if i > 0 {
            json.push(',');
        }
        let value = serde_json::to_string(&member.value).expect("a string serializes");
        json.push_str(&format!(
            "{pad}{}{pad}:{pad}{value}",
            json_key(&key, member.escapes)
        ));
        keys.push((key, member.value.trim().to_owned()));
    }
    json.push_str(&format!("}}{pad}"));

    let duplicate = keys
        .iter()
        .enumerate()
        .any(|(i, (k, _))| keys[..i].iter().any(|(e, _)| e == k));
    let of = |name: &str| -> Vec<&String> {
        keys.iter()
            .filter(|(k, _)| normalised_key(k) == name)
            .map(|(_, v)| v)
            .collect()
    };
    let want = match (
        of("cf-access-client-id").as_slice(),
        of("cf-access-client-secret").as_slice(),
    ) {
        _ if json.trim().len() > MAX_SINGLE_HEADER_BYTES || duplicate => None,
        ([id], [secret]) if !id.is_empty() && !secret.is_empty() => {
            Some(((*id).clone(), (*secret).clone()))
        }
        _ => None,
    };

    let Ok(value) = HeaderValue::from_str(&json) else {
        return; // DEL, which JSON need not escape, is not a header value
    };
    let name = HeaderName::from_static("x-access-credentials");
    let mut headers = HeaderMap::new();
    headers.insert(&name, value);
    let found = find_credentials(&headers, Some(&name));
    let Some((id, secret)) = want else {
        assert_eq!(
            found.map(|f| f.is_some()).map_err(|r| r.kind()),
            Err(RejectionKind::InvalidCredentials),
            "{json}"
        );
        return;
    };
    let found = found.expect("accepted").expect("found");
    assert_eq!(
        (found.client_id(), found.expose_secret()),
        (id.as_str(), secret.as_str()),
        "{json}"
    );
    assert_eq!(
        found.source(),
        &CredentialSource::SingleHeader(name.clone())
    );

    // The pair is read as visible ASCII only (`HeaderValue::from_str` also takes bytes past
    // 0x7f, which the pair refuses), so only such credentials can be repeated that way.
    let visible = |text: &str| text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if !visible(&id) || !visible(&secret) {
        return;
    }
    let (Ok(id_value), Ok(secret_value)) =
        (HeaderValue::from_str(&id), HeaderValue::from_str(&secret))
    else {
        return;
    };
    let mut both = headers.clone();
    both.insert("cf-access-client-id", id_value);
    both.insert("cf-access-client-secret", secret_value.clone());
    let found = find_credentials(&both, Some(&name))
        .expect("the same credentials twice")
        .expect("found");
    assert_eq!(found.source(), &CredentialSource::Both(name.clone()));
    both.insert(
        "cf-access-client-id",
        HeaderValue::from_static("someone-else"),
    );
    if id != "someone-else" {
        assert_eq!(
            find_credentials(&both, Some(&name))
                .map(|f| f.is_some())
                .map_err(|r| r.kind()),
            Err(RejectionKind::AmbiguousCredentials)
        );
    }
});
