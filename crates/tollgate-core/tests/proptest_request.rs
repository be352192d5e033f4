//! Property tests of the request rules (`tollgate_core::request`) and of `TeamDomain`, the same
//! parsers the `fuzz/` targets drive, here on generated inputs in every `cargo test`.
#![allow(clippy::unwrap_used)]

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tollgate_core::request::{
    CredentialSource, Presented, TokenLocation, find, find_credentials, find_token,
    remove_credentials, set_token_cookie, strip_tokens,
};
use tollgate_core::{RejectionKind, TeamDomain};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A token's characters (base64url and dots).
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}(\\.[A-Za-z0-9_-]{1,12}){0,2}"
}

/// A cookie that is not `CF_Authorization`.
fn other_cookie() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}=[A-Za-z0-9]{0,6}".prop_filter("not the token cookie", |c| {
        !c.starts_with("CF_Authorization=")
    })
}

/// `name` with each letter in a case the bits pick.
fn respell(name: &str, bits: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if bits >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn location() -> impl Strategy<Value = TokenLocation> {
    prop_oneof![
        Just(TokenLocation::JwtAssertionHeader),
        Just(TokenLocation::AccessTokenHeader),
        Just(TokenLocation::Cookie),
    ]
}

/// Puts `token` at `location`, as a header line or as a cookie among `others`.
fn present(headers: &mut HeaderMap, location: TokenLocation, token: &str, others: &[String]) {
    let (name, value) = match location {
        TokenLocation::JwtAssertionHeader => ("cf-access-jwt-assertion", token.to_owned()),
        TokenLocation::AccessTokenHeader => ("cf-access-token", token.to_owned()),
        _ => {
            let mut pairs = others.to_vec();
            pairs.push(format!("CF_Authorization={token}"));
            ("cookie", pairs.join("; "))
        }
    };
    headers.append(name, HeaderValue::from_str(&value).unwrap());
}

fn found(headers: &HeaderMap) -> Result<Option<String>, RejectionKind> {
    find_token(headers, &TokenLocation::DEFAULT_ORDER)
        .map(|t| t.map(|t| t.as_str().to_owned()))
        .map_err(|r| r.kind())
}

/// The trimmed pairs of every `Cookie` line, but `CF_Authorization`.
fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|line| line.to_str().unwrap().split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with("CF_Authorization="))
        .map(str::to_owned)
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// One token in any number of locations and lines is that token; a second, different
    /// one anywhere makes the request ambiguous.
    #[test]
    fn identical_tokens_agree_different_ones_are_ambiguous(
        token in token(),
        other in token(),
        places in prop::collection::vec(location(), 1..5),
        odd_place in location(),
        others in prop::collection::vec(other_cookie(), 0..3),
    ) {
        let mut headers = HeaderMap::new();
        for &place in &places {
            present(&mut headers, place, &token, &others);
        }
        prop_assert_eq!(found(&headers), Ok(Some(token.clone())));
        present(&mut headers, odd_place, &other, &others);
        let want = if other == token { Ok(Some(token)) } else { Err(RejectionKind::AmbiguousCredentials) };
        prop_assert_eq!(found(&headers), want);
    }

    /// Whatever tokens a request carries, after `strip_tokens` over every location nothing is
    /// found, and the other cookies and headers are still there, in order.
    #[test]
    fn strip_then_find_finds_nothing(
        tokens in prop::collection::vec((location(), token()), 0..5),
        others in prop::collection::vec(other_cookie(), 0..4),
        extra in "[a-z]{1,8}",
    ) {
        let mut headers = HeaderMap::new();
        headers.insert("x-extra", HeaderValue::from_str(&extra).unwrap());
        for (place, token) in &tokens {
            present(&mut headers, *place, token, &others);
        }
        if tokens.iter().all(|(place, _)| *place != TokenLocation::Cookie) && !others.is_empty() {
            headers.append(COOKIE, HeaderValue::from_str(&others.join("; ")).unwrap());
        }
        let before = cookies(&headers);
        strip_tokens(&mut headers, &TokenLocation::DEFAULT_ORDER);
        prop_assert_eq!(found(&headers), Ok(None));
        prop_assert_eq!(cookies(&headers), before);
        prop_assert_eq!(headers.get("x-extra").unwrap(), extra.as_str());
    }

    /// `set_token_cookie` leaves one `Cookie` line whose `CF_Authorization` is the token, the
    /// other cookies kept in order.
    #[test]
    fn set_token_cookie_makes_the_token_the_cookie(
        old in prop::collection::vec(token(), 0..3),
        new in token(),
        lines in prop::collection::vec(prop::collection::vec(other_cookie(), 0..3), 0..3),
    ) {
        let mut headers = HeaderMap::new();
        for (i, line) in lines.iter().enumerate() {
            let mut pairs = line.clone();
            if let Some(token) = old.get(i) {
                pairs.insert(0, format!("CF_Authorization={token}"));
            }
            if !pairs.is_empty() {
                headers.append(COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
            }
        }
        let before = cookies(&headers);
        set_token_cookie(&mut headers, Some(&new));
        prop_assert_eq!(headers.get_all(COOKIE).iter().count(), 1);
        prop_assert_eq!(cookies(&headers), before);
        let cookie_only = find_token(&headers, &[TokenLocation::Cookie]).unwrap().unwrap();
        prop_assert_eq!(cookie_only.as_str(), new.as_str());
    }

    /// The credential pair is found whatever the case of its header names, with the values
    /// trimmed; `find` puts it before a token; `remove_credentials` takes it all away.
    #[test]
    fn credentials_in_any_case_spelling_are_found(
        id_bits in any::<u64>(),
        secret_bits in any::<u64>(),
        id in "[a-f0-9]{8}\\.access",
        secret in "[A-Za-z0-9]{1,16}",
        pad in " {0,2}",
        stale in token(),
    ) {
        let mut headers = HeaderMap::new();
        let name = |base: &str, bits| HeaderName::from_bytes(respell(base, bits).as_bytes()).unwrap();
        headers.append(name("cf-access-client-id", id_bits), HeaderValue::from_str(&format!("{pad}{id}{pad}")).unwrap());
        headers.append(name("cf-access-client-secret", secret_bits), HeaderValue::from_str(&format!("{pad}{secret}")).unwrap());
        headers.append(COOKIE, HeaderValue::from_str(&format!("CF_Authorization={stale}")).unwrap());
        let Presented::Credentials(found) = find(&headers, None, &TokenLocation::CLIENT_ORDER).unwrap() else {
            panic!("credentials come first");
        };
        prop_assert_eq!(found.client_id(), id.as_str());
        prop_assert_eq!(found.expose_secret(), secret.as_str());
        prop_assert_eq!(found.source(), &CredentialSource::HeaderPair);
        remove_credentials(&mut headers, &found);
        prop_assert!(find_credentials(&headers, None).unwrap().is_none());
    }

    /// Single-header JSON with its keys in any accepted spelling (any case, `_` for `-`, in
    /// any order, beside other members) gives the credentials back; the same key twice, in
    /// two spellings, is refused.
    #[test]
    fn single_header_json_in_any_spelling_round_trips(
        id_bits in any::<u64>(),
        secret_bits in any::<u64>(),
        underscores in any::<(bool, bool)>(),
        id in "[a-f0-9]{8}\\.access",
        // Not blank: a secret that trims to nothing is no secret, and refused (credential_rules).
        secret in "[ -~&&[^\"\\\\]]{1,24}".prop_filter("not blank", |s| !s.trim().is_empty()),
        secret_first in any::<bool>(),
        extra in prop::option::of(("[a-z]{1,6}", "[a-z]{0,6}")),
        twice in any::<bool>(),
    ) {
        let key = |base: &str, bits, underscore: bool| {
            let spelled = respell(base, bits);
            if underscore { spelled.replace('-', "_") } else { spelled }
        };
        let id_key = key("cf-access-client-id", id_bits, underscores.0);
        let secret_key = key("cf-access-client-secret", secret_bits, underscores.1);
        let mut members = vec![
            format!("{}:{}", serde_json::to_string(&id_key).unwrap(), serde_json::to_string(&id).unwrap()),
            format!("{}:{}", serde_json::to_string(&secret_key).unwrap(), serde_json::to_string(&secret).unwrap()),
        ];
        if secret_first {
            members.reverse();
        }
        if let Some((name, value)) = &extra {
            members.insert(1, format!("{}:{}", serde_json::to_string(name).unwrap(), serde_json::to_string(value).unwrap()));
        }
        if twice {
            // The client ID again, in the other spelling of its dashes.
            let again = if underscores.0 { id_key.replace('_', "-") } else { id_key.replace('-', "_") };
            members.push(format!("{}:\"{id}\"", serde_json::to_string(&again).unwrap()));
        }
        let json = format!("{{{}}}", members.join(","));
        let name = HeaderName::from_static("authorization");
        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_str(&json).unwrap());
        let result = find_credentials(&headers, Some(&name));
        if twice {
            prop_assert_eq!(result.unwrap_err().kind(), RejectionKind::InvalidCredentials);
        } else {
            let found = result.unwrap().unwrap();
            prop_assert_eq!(found.client_id(), id.as_str());
            prop_assert_eq!(found.expose_secret(), secret.trim());
            prop_assert_eq!(found.source(), &CredentialSource::SingleHeader(name.clone()));
        }
    }

    /// A team domain written any way (scheme or none, any case, trailing slash, default port
    /// or another) is one domain, whose canonical spelling parses back to itself.
    #[test]
    fn team_domain_spellings_are_one_domain(
        labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
        bits in any::<u64>(),
        scheme in prop_oneof![Just(""), Just("https://"), Just("HTTPS://"), Just("http://")],
        port in prop_oneof![Just(None), Just(Some(443u16)), Just(Some(80)), (1u16..).prop_map(Some)],
        slash in any::<bool>(),
    ) {
        let host = labels.join(".");
        let https = !scheme.eq_ignore_ascii_case("http://");
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        let written = format!("{scheme}{}{port_text}{}", respell(&host, bits), if slash { "/" } else { "" });
        let domain = TeamDomain::parse(&written).unwrap();
        let default = if https { 443 } else { 80 };
        let canonical_port = port.filter(|p| *p != default);
        let canonical = format!(
            "{}{host}{}",
            if https { "https://" } else { "http://" },
            canonical_port.map(|p| format!(":{p}")).unwrap_or_default()
        );
        prop_assert_eq!(domain.as_str(), canonical.as_str());
        prop_assert_eq!(domain.host(), host.as_str());
        prop_assert_eq!(domain.port(), canonical_port);
        prop_assert_eq!(&TeamDomain::parse(domain.as_str()).unwrap(), &domain);
        prop_assert_eq!(domain.to_string(), canonical);
    }

    /// A team domain with a path, query, fragment or user name is refused, however written.
    #[test]
    fn team_domain_with_more_than_an_origin_is_refused(
        host in "[a-z]{1,8}\\.example\\.com",
        extra in prop_oneof![Just("/path"), Just("?q=1"), Just("#f"), Just("//")],
        user in any::<bool>(),
    ) {
        let written = if user { format!("https://user@{host}") } else { format!("https://{host}{extra}") };
        prop_assert!(TeamDomain::parse(&written).is_err(), "{}", written);
    }
}
