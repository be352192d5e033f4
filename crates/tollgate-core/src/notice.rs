//! Notices: what an operator should hear about even when no request fails — a service token
//! about to expire, a signing key that rotated, a team domain whose keys cannot be fetched.
//!
//! The issuer and the verifier raise them (as `tracing` warnings and on their subscription
//! channels); a notifier delivers them, e.g. as signed webhooks. Each notice has a
//! [`kind`](Notice::kind) (`token.expiring`, …), a [`dedupe_key`](Notice::dedupe_key) naming
//! the one occurrence it reports (every instance, before and after a restart, computes the same
//! key for the same occurrence, so a shared outbox delivers it once), and a JSON
//! [`data`](Notice::data) object. A notice never holds a secret or a token.
//!
//! ```
//! use tollgate_core::notice::{Notice, TokenNotice};
//!
//! let notice = Notice::TokenExpiring(TokenNotice {
//!     token_id: "6f1e7c1e-0000-4000-8000-000000000001".into(),
//!     client_id: format!("{}.access", "a".repeat(32)),
//!     name: "ci-bot".into(),
//!     expires_at: 1_700_000_000,
//! });
//! assert_eq!(notice.kind(), "token.expiring");
//! assert_eq!(
//!     notice.dedupe_key(),
//!     "token.expiring:6f1e7c1e-0000-4000-8000-000000000001:1700000000"
//! );
//! assert_eq!(notice.data()["name"], "ci-bot");
//! ```

use std::fmt;

use serde_json::{Value, json};

use crate::clock::rfc3339;

/// A service token a [`Notice`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenNotice {
    /// The token's id (a UUID).
    pub token_id: String,
    /// Its client ID.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// When it expires (or expired), in seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Something an operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A service token expires within the warning window (7 days): refresh it.
    TokenExpiring(TokenNotice),
    /// A service token expired (reported once, within a week of its expiry).
    TokenExpired(TokenNotice),
    /// A new signing key started signing.
    KeyRotated {
        /// The new signing key's `kid`.
        kid: String,
        /// The key that signed before it.
        previous_kid: String,
        /// When the switch was seen, in seconds since the Unix epoch.
        at: i64,
    },
    /// Fetching a team domain's signing keys failed this many times in a row.
    KeyFetchFailing {
        /// Where the keys are fetched from (the certs URL).
        source: String,
        /// Consecutive failed fetches so far.
        failures: u32,
        /// When the first of them failed, in seconds since the Unix epoch.
        since: i64,
        /// The last failure, as an operator-facing message (never key material).
        error: String,
    },
    /// Fetching a team domain's signing keys works again after a [`Notice::KeyFetchFailing`].
    KeyFetchRecovered {
        /// Where the keys are fetched from.
        source: String,
        /// How many fetches had failed in a row.
        failures: u32,
        /// When the first of them failed, in seconds since the Unix epoch (the failing
        /// notice's `since`).
        since: i64,
    },
}

impl Notice {
    /// Every kind, as [`kind`](Self::kind) spells it.
    pub const KINDS: [&'static str; 5] = [
        "token.expiring",
        "token.expired",
        "key.rotated",
        "key_fetch.failing",
        "key_fetch.recovered",
    ];

    /// What happened: `token.expiring`, `token.expired`, `key.rotated`, `key_fetch.failing`
    /// or `key_fetch.recovered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::TokenExpiring(_) => Self::KINDS[0],
            Notice::TokenExpired(_) => Self::KINDS[1],
            Notice::KeyRotated { .. } => Self::KINDS[2],
            Notice::KeyFetchFailing { .. } => Self::KINDS[3],
            Notice::KeyFetchRecovered { .. } => Self::KINDS[4],
        }
    }

    /// Names the one occurrence this notice reports: the same for every instance and every
    /// restart that sees it (a token's id and expiry, a key's `kid`, a failure episode's
    /// start), different for the next occurrence (a refreshed token's new expiry).
    pub fn dedupe_key(&self) -> String {
        match self {
            Notice::TokenExpiring(token) | Notice::TokenExpired(token) => {
                format!("{}:{}:{}", self.kind(), token.token_id, token.expires_at)
            }
            Notice::KeyRotated { kid, .. } => format!("{}:{kid}", self.kind()),
            Notice::KeyFetchFailing { source, since, .. }
            | Notice::KeyFetchRecovered { source, since, .. } => {
                format!("{}:{source}:{since}", self.kind())
            }
        }
    }

    /// The notice's details as a JSON object (times as RFC 3339 strings).
    pub fn data(&self) -> Value {
        match self {
            Notice::TokenExpiring(token) | Notice::TokenExpired(token) => json!({
                "token_id": token.token_id,
                "client_id": token.client_id,
                "name": token.name,
                "expires_at": rfc3339(token.expires_at),
            }),
            Notice::KeyRotated {
                kid,
                previous_kid,
                at,
            } => json!({
                "kid": kid,
                "previous_kid": previous_kid,
                "rotated_at": rfc3339(*at),
            }),
            Notice::KeyFetchFailing {
                source,
                failures,
                since,
                error,
            } => json!({
                "source": source,
                "failures": failures,
                "failing_since": rfc3339(*since),
                "error": error,
            }),
            Notice::KeyFetchRecovered {
                source,
                failures,
                since,
            } => json!({
                "source": source,
                "failures": failures,
                "failing_since": rfc3339(*since),
            }),
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::TokenExpiring(token) => write!(
                f,
                "service token {:?} ({}) expires at {}; refresh it",
                token.name,
                token.client_id,
                rfc3339(token.expires_at)
            ),
            Notice::TokenExpired(token) => write!(
                f,
                "service token {:?} ({}) expired at {}",
                token.name,
                token.client_id,
                rfc3339(token.expires_at)
            ),
            Notice::KeyRotated {
                kid, previous_kid, ..
            } => write!(f, "signing key {kid} replaced {previous_kid}"),
            Notice::KeyFetchFailing {
                source,
                failures,
                error,
                ..
            } => write!(
                f,
                "{failures} signing key fetches from {source} failed in a row: {error}"
            ),
            Notice::KeyFetchRecovered {
                source, failures, ..
            } => write!(
                f,
                "signing key fetch from {source} works again after {failures} failures"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: i64) -> TokenNotice {
        TokenNotice {
            token_id: "id-1".into(),
            client_id: "c.access".into(),
            name: "bot".into(),
            expires_at,
        }
    }

    #[test]
    fn one_occurrence_one_key() {
        let first = Notice::TokenExpiring(token(100));
        assert_eq!(
            first.dedupe_key(),
            Notice::TokenExpiring(token(100)).dedupe_key()
        );
        assert_ne!(
            first.dedupe_key(),
            Notice::TokenExpiring(token(200)).dedupe_key(),
            "a refreshed token's next expiry is a new occurrence"
        );
        assert_ne!(
            first.dedupe_key(),
            Notice::TokenExpired(token(100)).dedupe_key()
        );
        let failing = Notice::KeyFetchFailing {
            source: "https://t/cdn-cgi/access/certs".into(),
            failures: 3,
            since: 5,
            error: "timed out".into(),
        };
        let more = Notice::KeyFetchFailing {
            source: "https://t/cdn-cgi/access/certs".into(),
            failures: 4,
            since: 5,
            error: "refused".into(),
        };
        assert_eq!(failing.dedupe_key(), more.dedupe_key(), "one episode");
    }

    #[test]
    fn kinds_and_data() {
        let rotated = Notice::KeyRotated {
            kid: "new".into(),
            previous_kid: "old".into(),
            at: 0,
        };
        assert_eq!(rotated.kind(), "key.rotated");
        assert_eq!(rotated.data()["rotated_at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            Notice::TokenExpired(token(0)).data()["client_id"],
            "c.access"
        );
        assert!(Notice::KINDS.contains(&rotated.kind()));
        assert!(rotated.to_string().contains("replaced old"));
    }
}
