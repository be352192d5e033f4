//! Header rules of the gateway: hop-by-hop fields (RFC 9110 §7.6.1), what a proxy owns, and
//! which headers are secrets in logs.

use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, FORWARDED, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::names::{
    CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET, CF_ACCESS_JWT_ASSERTION, CF_ACCESS_TOKEN,
};

/// Headers to mark sensitive in request and response logs (for tower-http's
/// `SetSensitiveHeadersLayer` in front of a `TraceLayer`): every header through which a
/// credential or a token passes a gateway.
///
/// An application that takes service-token credentials in a single header of its own naming
/// should add that name too.
///
/// ```
/// use tollgate_gateway::SENSITIVE_HEADERS;
/// use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
///
/// let layer = SetSensitiveHeadersLayer::new(SENSITIVE_HEADERS);
/// # let _ = layer;
/// assert!(SENSITIVE_HEADERS.iter().any(|h| h == "cf-access-client-secret"));
/// ```
pub const SENSITIVE_HEADERS: [HeaderName; 7] = [
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    COOKIE,
    SET_COOKIE,
    CF_ACCESS_CLIENT_SECRET,
    CF_ACCESS_JWT_ASSERTION,
    CF_ACCESS_TOKEN,
];

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The fields that describe one connection, not the message (RFC 9110 §7.6.1, and RFC 7230's
/// `Trailer`, `Proxy-Authenticate` and `Proxy-Authorization`, which peers strip too).
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
    TRAILER,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
];

/// The headers a gateway sets itself and so removes from what the client sent (in every
/// `-`/`_` spelling), with the credentials that must never reach the origin and the headers
/// an origin behind Cloudflare trusts to come from its edge (`CF-Connecting-IP`,
/// `True-Client-IP`, `CF-IPCountry`, `CF-Ray`, `CF-Visitor`, `CF-Worker`): a client must not
/// be able to claim them through the gateway either.
pub(crate) const OWNED_REQUEST_HEADERS: [HeaderName; 14] = [
    CF_ACCESS_CLIENT_ID,
    CF_ACCESS_CLIENT_SECRET,
    CF_ACCESS_TOKEN,
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    FORWARDED,
    HeaderName::from_static("x-real-ip"),
    CF_CONNECTING_IP,
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-ipcountry"),
    HeaderName::from_static("cf-ray"),
    HeaderName::from_static("cf-visitor"),
    HeaderName::from_static("cf-worker"),
];

/// `CF-Connecting-IP`: the client's address, as Cloudflare's edge sets it.
pub(crate) const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");

/// `X-Forwarded-For`.
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Host`.
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Proto`.
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What [`strip_hop_by_hop`] found before it removed the fields.
#[derive(Debug, Default)]
pub(crate) struct HopByHop {
    /// `Connection` listed `upgrade`: the `Upgrade` values offered.
    pub(crate) upgrade: Option<Vec<HeaderValue>>,
    /// `TE` included `trailers`.
    pub(crate) te_trailers: bool,
}

/// Removes the hop-by-hop fields and every field `Connection` names, answering whether the
/// message asked for an upgrade and accepted trailers, so the caller can put those back.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> HopByHop {
    let mut found = HopByHop::default();
    // One pass over the names (most messages carry none of these), then lookups only for
    // what is there.
    let mut present = [false; 9];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present[i] = true;
        }
    }
    let has = |name: &HeaderName| {
        HOP_BY_HOP
            .iter()
            .zip(present)
            .any(|(hop, present)| present && hop == name)
    };
    if !present.contains(&true) {
        return found;
    }
    if has(&CONNECTION) {
        let mut listed: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(CONNECTION) {
            // A value that is not text names nothing we could match.
            let Ok(value) = value.to_str() else { continue };
            for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("upgrade") {
                    if found.upgrade.is_none() && has(&UPGRADE) {
                        found.upgrade = Some(headers.get_all(UPGRADE).iter().cloned().collect());
                    }
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    listed.push(name);
                }
            }
        }
        for name in listed {
            headers.remove(name);
        }
    }
    found.te_trailers = has(&TE)
        && headers.get_all(TE).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .filter_map(|t| t.split(';').next())
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            })
        });
    for (name, present) in HOP_BY_HOP.iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
    found
}

/// Puts an upgrade back on a message whose hop-by-hop fields were stripped:
/// `Connection: upgrade` and the `Upgrade` values.
pub(crate) fn restore_upgrade(headers: &mut HeaderMap, upgrade: &[HeaderValue]) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    for value in upgrade {
        headers.append(UPGRADE, value.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn hop_by_hop_and_listed_fields_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "other-hop"),
            ("x-secret-hop", "1"),
            ("other-hop", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("trailer", "x-checksum"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-end-to-end", "kept"),
        ]);
        let found = strip_hop_by_hop(&mut headers);
        assert!(
            found.upgrade.is_none(),
            "no upgrade without `Connection: upgrade`"
        );
        assert!(!found.te_trailers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["x-end-to-end"], "kept");
    }

    #[test]
    fn upgrades_and_trailers_are_reported() {
        let mut headers = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "deflate;q=0.5, trailers"),
        ]);
        let found = strip_hop_by_hop(&mut headers);
        assert_eq!(
            found.upgrade.as_deref(),
            Some(&[HeaderValue::from_static("websocket")][..])
        );
        assert!(found.te_trailers);
        assert!(headers.is_empty());
        restore_upgrade(&mut headers, &found.upgrade.unwrap());
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");

        let mut no_offer = map(&[("connection", "upgrade")]);
        assert!(strip_hop_by_hop(&mut no_offer).upgrade.is_none());
    }
}
