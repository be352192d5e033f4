//! Token and credential lookup over a header map built from fuzzer text (several lines, several
//! `Cookie` lines; first byte picks the locations read and whether the single header is
//! `authorization`), against the rules of `tollgate_core::request`:
//!
//! - `find_token`: a token found is non-empty, trimmed, from a location read, and every token
//!   presented in those locations is byte-identical to it; none found means none presented;
//!   `AmbiguousCredentials` means two different ones were; `MalformedToken` means a token
//!   header was not visible ASCII. Every header line sent twice changes nothing.
//! - `strip_tokens`: afterwards nothing is found there, other headers and other cookies are
//!   untouched. `set_token_cookie`: afterwards one `Cookie` line, the token found there alone,
//!   the other cookies kept in order.
//! - `find_credentials`: found ones are non-empty and trimmed; `remove_credentials` leaves no
//!   credential header and nothing to find; `find` is credentials first, then the token.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderName};
use libfuzzer_sys::fuzz_target;
use tollgate_core::RejectionKind;
use tollgate_core::names::{
    CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET, CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN,
};
use tollgate_core::request::{
    Presented, TokenLocation, find, find_credentials, find_token, remove_credentials,
    set_token_cookie, strip_tokens,
};
use tollgate_fuzz::header_map;

const ORDERS: [&[TokenLocation]; 8] = [
    &TokenLocation::DEFAULT_ORDER,
    &TokenLocation::CLIENT_ORDER,
    &[TokenLocation::Cookie],
    &[TokenLocation::JwtAssertionHeader],
    &[],
    &[
        TokenLocation::Cookie,
        TokenLocation::AccessTokenHeader,
        TokenLocation::JwtAssertionHeader,
    ],
    &[TokenLocation::AccessTokenHeader],
    &[TokenLocation::Cookie, TokenLocation::JwtAssertionHeader],
];

fn header_of(location: TokenLocation) -> Option<HeaderName> {
    match location {
        TokenLocation::JwtAssertionHeader => Some(CF_ACCESS_JWT_ASSERTION),
        TokenLocation::AccessTokenHeader => Some(CF_ACCESS_TOKEN),
        _ => None,
    }
}

/// `CF_Authorization` values on the visible-ASCII `Cookie` lines, trimmed, quotes dropped,
/// empty ones left out.
fn cookie_tokens(headers: &HeaderMap) -> Vec<String> {
    let mut found = Vec::new();
    for line in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|l| l.to_str().ok())
    {
        for pair in line.split(';') {
            if let Some((key, value)) = pair.split_once('=')
                && key.trim() == "CF_Authorization"
            {
                let value = value.trim();
                let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    // Spaces inside the quotes are not part of the token either.
                    Some(inner) => inner.trim(),
                    None => value,
                };
                if !value.is_empty() {
                    found.push(value.to_owned());
                }
            }
        }
    }
    found
}

/// The other cookies, as `set_token_cookie` keeps them: trimmed non-empty pairs in order.
fn other_cookies(headers: &HeaderMap) -> Vec<String> {
    let mut others = Vec::new();
    for line in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|l| l.to_str().ok())
    {
        for pair in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if pair
                .split_once('=')
                .is_none_or(|(key, _)| key.trim() != "CF_Authorization")
            {
                others.push(pair.to_owned());
            }
        }
    }
    others
}

/// Every token presented at `order`, and whether a token header there is not visible ASCII.
fn presented(headers: &HeaderMap, order: &[TokenLocation]) -> (Vec<String>, bool) {
    let mut tokens = Vec::new();
    let mut not_ascii = false;
    for &location in order {
        match header_of(location) {
            Some(name) => {
                for value in headers.get_all(name) {
                    match value.to_str() {
                        Ok(text) if !text.trim().is_empty() => tokens.push(text.trim().to_owned()),
                        Ok(_) => {}
                        Err(_) => not_ascii = true,
                    }
                }
            }
            None => tokens.extend(cookie_tokens(headers)),
        }
    }
    (tokens, not_ascii)
}

fn without_token_headers(headers: &HeaderMap) -> HeaderMap {
    let mut rest = headers.clone();
    for name in [CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN, COOKIE] {
        rest.remove(name);
    }
    rest
}

fn check_tokens(headers: &HeaderMap, order: &[TokenLocation]) {
    let result = find_token(headers, order);
    let (tokens, not_ascii) = presented(headers, order);
    match &result {
        Ok(Some(found)) => {
            let token = found.as_str();
            assert!(!token.is_empty() && token.trim() == token);
            assert!(order.contains(&found.location()));
            assert!(
                tokens.iter().all(|t| t == token),
                "{token:?} among {tokens:?}"
            );
            assert!(!not_ascii);
        }
        Ok(None) => assert!(tokens.is_empty() && !not_ascii, "{tokens:?} {not_ascii}"),
        Err(rejection) => match rejection.kind() {
            RejectionKind::AmbiguousCredentials => {
                assert!(tokens.iter().any(|t| *t != tokens[0]), "{tokens:?}");
            }
            RejectionKind::MalformedToken => assert!(not_ascii),
            other => panic!("find_token refused with {other:?}"),
        },
    }

    let mut doubled = headers.clone();
    for (name, value) in headers {
        doubled.append(name, value.clone());
    }
    let again = find_token(&doubled, order);
    assert_eq!(
        result
            .as_ref()
            .map(|t| t.as_ref().map(|t| (t.as_str(), t.location())))
            .map_err(|r| r.kind()),
        again
            .as_ref()
            .map(|t| t.as_ref().map(|t| (t.as_str(), t.location())))
            .map_err(|r| r.kind()),
        "every line sent twice"
    );

    let mut stripped = headers.clone();
    strip_tokens(&mut stripped, order);
    assert!(
        matches!(find_token(&stripped, order), Ok(None)),
        "found a token after stripping"
    );
    assert_eq!(
        without_token_headers(&stripped),
        without_token_headers(headers)
    );
    assert_eq!(other_cookies(&stripped), other_cookies(headers));
    for &location in TokenLocation::DEFAULT_ORDER
        .iter()
        .filter(|l| !order.contains(l))
    {
        if let Some(name) = header_of(location) {
            assert!(
                stripped
                    .get_all(&name)
                    .iter()
                    .eq(headers.get_all(&name).iter())
            );
        }
    }

    let replacement = match &result {
        Ok(Some(found))
            if found
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            found.as_str().to_owned()
        }
        _ => "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".to_owned(),
    };
    let mut rewritten = headers.clone();
    set_token_cookie(&mut rewritten, Some(&replacement));
    assert_eq!(rewritten.get_all(COOKIE).iter().count(), 1);
    assert_eq!(cookie_tokens(&rewritten), [replacement]);
    assert_eq!(other_cookies(&rewritten), other_cookies(headers));
    assert_eq!(
        without_token_headers(&rewritten),
        without_token_headers(headers)
    );
}

fn check_credentials(headers: &HeaderMap, single: Option<&HeaderName>, order: &[TokenLocation]) {
    let result = find_credentials(headers, single);
    match &result {
        Ok(Some(credentials)) => {
            for text in [credentials.client_id(), credentials.expose_secret()] {
                assert!(!text.is_empty() && text.trim() == text);
            }
            let mut removed = headers.clone();
            remove_credentials(&mut removed, credentials);
            assert!(!removed.contains_key(CF_ACCESS_CLIENT_ID));
            assert!(!removed.contains_key(CF_ACCESS_CLIENT_SECRET));
            assert!(
                matches!(find_credentials(&removed, single), Ok(None)),
                "credentials left after remove_credentials"
            );
            let Ok(Presented::Credentials(first)) = find(headers, single, order) else {
                panic!("find does not put credentials first");
            };
            assert_eq!(first.client_id(), credentials.client_id());
        }
        Ok(None) => match (find(headers, single, order), find_token(headers, order)) {
            (Ok(Presented::Token(a)), Ok(Some(b))) => assert_eq!(a, b),
            (Ok(Presented::Nothing), Ok(None)) => {}
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
            (a, b) => panic!("find {a:?} but find_token {b:?}"),
        },
        Err(rejection) => {
            assert!(matches!(
                rejection.kind(),
                RejectionKind::InvalidCredentials | RejectionKind::AmbiguousCredentials
            ));
            assert!(find(headers, single, order).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, text)) = data.split_first() else {
        return;
    };
    let order = ORDERS[usize::from(config & 7)];
    let authorization = HeaderName::from_static("authorization");
    let single = (config & 8 != 0).then_some(&authorization);
    let headers = header_map(text);
    check_tokens(&headers, order);
    check_credentials(&headers, single, order);
});
