//! Header, cookie and path names of the Cloudflare Access wire contract.
//!
//! Header names are lowercase [`HeaderName`]s (HTTP header names are case-insensitive, so
//! `CF-Access-Client-Id` on the wire matches [`CF_ACCESS_CLIENT_ID`]).

use http::{HeaderMap, HeaderName};

/// `CF-Access-Client-Id`: a service token's client ID, sent by a bot on its first request.
pub const CF_ACCESS_CLIENT_ID: HeaderName = HeaderName::from_static("cf-access-client-id");

/// `CF-Access-Client-Secret`: a service token's secret, sent alongside [`CF_ACCESS_CLIENT_ID`].
pub const CF_ACCESS_CLIENT_SECRET: HeaderName = HeaderName::from_static("cf-access-client-secret");

/// `Cf-Access-Jwt-Assertion`: the application token as the origin receives it.
pub const CF_ACCESS_JWT_ASSERTION: HeaderName = HeaderName::from_static("cf-access-jwt-assertion");

/// `cf-access-token`: an application token a client presents instead of the cookie.
pub const CF_ACCESS_TOKEN: HeaderName = HeaderName::from_static("cf-access-token");

/// `Cf-Access-Authenticated-User-Email`: the verified e-mail of a user identity.
pub const CF_ACCESS_AUTHENTICATED_USER_EMAIL: HeaderName =
    HeaderName::from_static("cf-access-authenticated-user-email");

/// `CF_Authorization`: the cookie holding the application token.
pub const COOKIE_NAME: &str = "CF_Authorization";

/// Path of the signing-key set (`{"keys":[…],"public_cert":…,"public_certs":[…]}`).
pub const CERTS_PATH: &str = "/cdn-cgi/access/certs";

/// Path answering the caller's identity as JSON.
pub const GET_IDENTITY_PATH: &str = "/cdn-cgi/access/get-identity";

/// Headers that carry identity to the origin. A client must never be able to set them: see
/// [`strip_identity_headers`].
pub const IDENTITY_HEADERS: [HeaderName; 2] =
    [CF_ACCESS_JWT_ASSERTION, CF_ACCESS_AUTHENTICATED_USER_EMAIL];

/// Removes every client-supplied copy of the identity headers ([`IDENTITY_HEADERS`]), in any
/// spelling that a proxy might fold into them: `-` and `_` are treated alike, so
/// `cf_access_jwt_assertion` and `Cf-Access_Authenticated-User-Email` go too.
///
/// ```
/// use http::HeaderMap;
/// use tollgate_core::names::{strip_identity_headers, CF_ACCESS_JWT_ASSERTION};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CF_ACCESS_JWT_ASSERTION, "forged".parse().unwrap());
/// headers.insert("cf_access_authenticated_user_email", "admin@example.com".parse().unwrap());
/// headers.insert("accept", "*/*".parse().unwrap());
/// strip_identity_headers(&mut headers);
/// assert_eq!(headers.len(), 1);
/// ```
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let present = strip_other_spellings(headers);
    for (name, present) in IDENTITY_HEADERS.iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
}

/// Removes every header spelled like one of `names`, `-` and `_` treated alike (header names
/// are already lowercase): `cf_access_client_secret` goes with `CF-Access-Client-Secret`. For a
/// proxy taking credentials and the headers it sets itself off a request, so no spelling a
/// server behind it might fold into the same name gets through.
///
/// ```
/// use http::{HeaderMap, HeaderName};
/// use tollgate_core::names::{strip_header_spellings, CF_ACCESS_CLIENT_SECRET};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("cf_access_client_secret", "s3cret".parse().unwrap());
/// headers.insert("x-forwarded_for", "10.0.0.1".parse().unwrap());
/// headers.insert("accept", "*/*".parse().unwrap());
/// strip_header_spellings(&mut headers, &[CF_ACCESS_CLIENT_SECRET, HeaderName::from_static("x-forwarded-for")]);
/// assert_eq!(headers.len(), 1);
/// ```
pub fn strip_header_spellings(headers: &mut HeaderMap, names: &[HeaderName]) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            names
                .iter()
                .any(|wanted| spelled_alike(name.as_str(), wanted.as_str()))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Whether `name` spells `wanted`, `_` standing for `-`.
fn spelled_alike(name: &str, wanted: &str) -> bool {
    name.len() == wanted.len()
        && name
            .bytes()
            .zip(wanted.bytes())
            .all(|(got, want)| got == want || (got == b'_' && want == b'-'))
}

/// Removes the spellings of the identity headers other than the canonical ones (`_` for a
/// `-`), and answers which canonical ones are present — so a caller about to set them
/// replaces them without another lookup. One pass over the names; only a request carrying an
/// odd spelling pays for a list.
pub(crate) fn strip_other_spellings(headers: &mut HeaderMap) -> [bool; 2] {
    let mut canonical = [false; 2];
    let mut odd_spelling = false;
    for name in headers.keys() {
        if let Some(i) = identity_header_index(name.as_str()) {
            if *name == IDENTITY_HEADERS[i] {
                canonical[i] = true;
            } else {
                odd_spelling = true;
            }
        }
    }
    if odd_spelling {
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| {
                identity_header_index(name.as_str()).is_some_and(|i| **name != IDENTITY_HEADERS[i])
            })
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(name);
        }
    }
    canonical
}

/// Which of [`IDENTITY_HEADERS`] `name` spells, `_` standing for `-`.
fn identity_header_index(name: &str) -> Option<usize> {
    IDENTITY_HEADERS
        .iter()
        .position(|wanted| spelled_alike(name, wanted.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_spelling_and_keeps_the_rest() {
        let mut headers = HeaderMap::new();
        for name in [
            "cf-access-jwt-assertion",
            "cf_access_jwt_assertion",
            "cf-access_jwt-assertion",
            "cf-access-authenticated-user-email",
            "cf_access_authenticated_user_email",
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                http::HeaderValue::from_static("x"),
            );
        }
        headers.insert("cf-access-token", http::HeaderValue::from_static("keep"));
        headers.insert(
            "cf-access-jwt-assertions",
            http::HeaderValue::from_static("keep"),
        );
        strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert!(headers.contains_key("cf-access-token"));
        assert!(headers.contains_key("cf-access-jwt-assertions"));
    }

    #[test]
    fn strips_named_headers_in_every_spelling() {
        let mut headers = HeaderMap::new();
        for name in [
            "cf-access-client-id",
            "cf_access_client_id",
            "cf-access_client-id",
            "cf-access-client-ids",
            "cf-access-client",
            "accept",
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                http::HeaderValue::from_static("x"),
            );
        }
        strip_header_spellings(&mut headers, &[CF_ACCESS_CLIENT_ID]);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "cf-access-client", "cf-access-client-ids"]);
    }
}
