//! The records tollgate keeps — service tokens, applications, signing keys — and everything
//! they know about themselves: expiry, which secrets a token accepts, which identities an
//! application's policy admits. Managers change records; the request path only asks them.

use tollgate_core::{AccessIdentity, Rejection, RejectionKind};

use crate::policy::{AppPolicy, Subject, Verdict, evaluate};
use crate::secret::secret_matches;

/// How long a service token lives from creation or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenDuration {
    /// A fixed number of seconds (Cloudflare's default is `8760h`, one year).
    Seconds(u64),
    /// Never expires.
    Forever,
}

/// A service token as stored. Holds only hashes of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenRecord {
    /// Stable identifier (a UUID string), reported as `service_token_id` by get-identity.
    pub id: String,
    /// Human name. Not unique (Cloudflare allows duplicates): address tokens by client ID or id.
    pub name: String,
    /// `<32 lowercase hex>.access`, unique.
    pub client_id: String,
    /// SHA-256 of the current secret.
    pub secret_hash: [u8; 32],
    /// SHA-256 of the previous secret, still accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<[u8; 32]>,
    /// End of the previous secret's grace period.
    pub previous_secret_expires_at: Option<i64>,
    /// Lifetime applied at creation and on every refresh.
    pub duration: TokenDuration,
    /// Creation time.
    pub created_at: i64,
    /// Last change of any field (other than `last_seen_at`).
    pub updated_at: i64,
    /// Expiry; `None` for [`TokenDuration::Forever`].
    pub expires_at: Option<i64>,
    /// Last successful use, flushed in batches (see [`TokenStore::record_last_seen`](crate::TokenStore::record_last_seen)).
    pub last_seen_at: Option<i64>,
    /// Whether the token works at all. A disabled token keeps its record and secrets, but its
    /// current and previous secret are refused (`service_token_disabled`) and its application
    /// tokens (cookies) stop riding, as a deleted token's do.
    pub enabled: bool,
    /// Cloudflare's `client_secret_version`: starts at 1; bumping it rotates the secret.
    pub client_secret_version: u64,
}

/// What an API token may do with the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiPermission {
    /// Read only (`GET`).
    Read,
    /// Read and change everything.
    Edit,
}

impl ApiPermission {
    /// The stored and printed spelling: `read` or `edit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Edit => "edit",
        }
    }

    /// The permission spelled `text` (`read` or `edit`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "edit" => Some(Self::Edit),
            _ => None,
        }
    }

    /// Whether this permission allows changes.
    pub fn can_edit(self) -> bool {
        self == Self::Edit
    }
}

impl std::fmt::Display for ApiPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token for the admin API, as stored: only the SHA-256 of the token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Stable identifier (a UUID string); the CLI deletes tokens by it.
    pub id: String,
    /// Human name (audit logs name the caller by it); not unique.
    pub name: String,
    /// SHA-256 of the token (`tga_…`), which is shown once and never stored.
    pub token_hash: [u8; 32],
    /// What the token may do.
    pub permission: ApiPermission,
    /// Creation time.
    pub created_at: i64,
    /// Last successful use, if any.
    pub last_used_at: Option<i64>,
}

/// A signing key as stored. Its `Debug` output leaves the private key out.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub kid: String,
    /// The RSA private key, PKCS#8 DER (decrypted; backends encrypt at rest if configured).
    pub private_key_pkcs8: Vec<u8>,
    /// Creation time (the key is published from then on).
    pub created_at: i64,
    /// When the key starts signing; before that it is only published ("next").
    pub activates_at: i64,
    /// When the key stops signing (the next key's activation); `None` while it is the newest.
    pub retires_at: Option<i64>,
    /// When the key leaves the published set and stops being accepted
    /// (`retires_at` + 7 days by default); `None` while it is the newest.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("private_key_pkcs8", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The one Service Auth policy an application is given by
/// [`AppSettings::policy`](crate::AppSettings::policy): the shorthand for what were
/// allow-lists before policies (and what the CLI's `--allow-token` sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAuthPolicy {
    /// Any valid service token of the store (`any_valid_service_token`).
    AnyValidServiceToken,
    /// Only these service tokens, each named by client ID or id (valid tokens not listed get
    /// 403).
    Tokens(Vec<String>),
}

/// An application (what Cloudflare calls a self-hosted Access application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRecord {
    /// Stable identifier: a UUID (lowercase, hyphenated v4 form), unique, never changed by an
    /// update. Cloudflare's API paths key on it (`/access/apps/{id}`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// AUD tag: 64 random lowercase hex, stable for the application's life.
    pub aud: String,
    /// Session (application token) lifetime in seconds; 0 = no cookie, every request
    /// re-authenticates.
    pub session_duration: u64,
    /// Header holding both credentials as JSON, if enabled (e.g. `Authorization`).
    pub read_service_tokens_from_header: Option<String>,
    /// `HttpOnly` on the cookie (default true).
    pub cookie_http_only: bool,
    /// `Secure` on the cookie; `None` = follow the request's scheme.
    pub cookie_secure: Option<bool>,
    /// Its Access policies in precedence order (ascending, unique), reusable ones as they are
    /// now; see [`policy`](crate::policy) for how they are evaluated. None: nobody is admitted.
    pub policies: Vec<AppPolicy>,
    /// Creation time.
    pub created_at: i64,
    /// Last change of any field, set by [`Applications`](crate::Applications) on every change
    /// (`created_at` until the first one).
    pub updated_at: i64,
    /// Cloudflare's `revoke_tokens`: application tokens (cookies, `cf-access-token`,
    /// `Cf-Access-Jwt-Assertion`) minted for this application with an `iat` before this
    /// instant (unix seconds) are refused as revoked; `None` until the first revocation.
    /// [`Applications::revoke_tokens`](crate::Applications::revoke_tokens) sets it to one second
    /// after the call's, and explains why.
    pub tokens_revoked_before: Option<i64>,
    /// Where the application lives, as [`AppDomain`](tollgate_core::AppDomain)'s canonical
    /// spelling (`host`, `host/path`, `*.host`); `None`: not routed by domain. Unique per store.
    pub domain: Option<String>,
    /// The origin the gateway proxies the application's requests to (an `http://` or
    /// `https://` URL, canonical); `None`: tollgate answers them itself.
    pub origin: Option<String>,
}

impl ServiceTokenRecord {
    /// Whether the token has expired at `now` (unix seconds).
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|exp| exp <= now)
    }

    /// Whether `secret` is the token's current secret, or its previous secret within the grace
    /// period, at `now`. Hashes are compared in constant time. Does not check expiry.
    pub fn accepts_secret(&self, secret: &str, now: i64) -> bool {
        let current = secret_matches(secret, &self.secret_hash);
        let previous = match (self.previous_secret_hash, self.previous_secret_expires_at) {
            (Some(hash), Some(until)) => secret_matches(secret, &hash) && now < until,
            _ => false,
        };
        current | previous
    }
}

impl ServiceTokenRecord {
    /// Whether the token expires after `now` but within `within` of it.
    pub(crate) fn expires_within(&self, now: i64, within: std::time::Duration) -> bool {
        let within = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
        self.expires_at
            .is_some_and(|exp| exp > now && exp <= now.saturating_add(within))
    }
}

impl ApplicationRecord {
    /// Whether a token minted for this application at `issued_at` (its `iat`; `None` when it
    /// has none) is revoked: `iat < tokens_revoked_before`. A token without `iat` is revoked
    /// once anything is, since nothing shows it was minted after.
    pub fn revokes_token_issued_at(&self, issued_at: Option<i64>) -> bool {
        match (self.tokens_revoked_before, issued_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(before), Some(iat)) => iat < before,
        }
    }

    /// [`revokes_token_issued_at`](Self::revokes_token_issued_at) for `identity`'s token, as a
    /// [`Revoked`](RejectionKind::Revoked) refusal.
    pub(crate) fn check_not_revoked(&self, identity: &AccessIdentity) -> Result<(), Rejection> {
        if self.revokes_token_issued_at(identity.claims().issued_at()) {
            return Err(Rejection::new(RejectionKind::Revoked)
                .with_detail("the application's tokens were revoked after this one was issued"));
        }
        Ok(())
    }

    /// The `iat` to mint a token with at `now`: `now`, or the revocation instant if that is
    /// later, so a fresh token is never in the revoked range (see
    /// [`Applications::revoke_tokens`](crate::Applications::revoke_tokens)).
    pub(crate) fn issue_time(&self, now: i64) -> i64 {
        self.tokens_revoked_before
            .map_or(now, |before| now.max(before))
    }

    /// What the application's policies decide for `subject`: `Ok` when a policy admits or
    /// bypasses it, 403 otherwise.
    pub(crate) fn authorize(&self, subject: &Subject<'_>) -> Result<(), Rejection> {
        match evaluate(&self.policies, subject) {
            Verdict::Admit(_) | Verdict::Bypass(_) => Ok(()),
            Verdict::Deny(_) => Err(Rejection::new(RejectionKind::Forbidden)
                .with_detail("refused by a deny policy of the application")),
            Verdict::NoMatch if subject.service_token_id.is_some() => {
                Err(Rejection::new(RejectionKind::Forbidden)
                    .with_detail("service token not allowed by the application's policy"))
            }
            Verdict::NoMatch => Err(Rejection::new(RejectionKind::Forbidden)
                .with_detail("no policy of the application admits this identity")),
        }
    }

    /// Whether any of its policies is a `bypass` one (without, the request path skips looking).
    pub(crate) fn has_bypass(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.policy.decision == crate::policy::PolicyDecision::Bypass)
    }

    /// Whether any of its policies has an `ip` rule: without, the request path does not look
    /// up the client's address for them.
    pub(crate) fn needs_ip(&self) -> bool {
        self.policies.iter().any(|p| {
            let rules = &p.policy.rules;
            [&rules.include, &rules.require, &rules.exclude]
                .into_iter()
                .flatten()
                .any(|rule| matches!(rule, crate::policy::PolicyRule::Ip { .. }))
        })
    }

    /// Whether a `bypass` policy lets a request from `ip` through with no credentials at all.
    pub(crate) fn bypasses(&self, ip: Option<std::net::IpAddr>) -> bool {
        let subject = Subject {
            ip,
            ..Subject::default()
        };
        matches!(evaluate(&self.policies, &subject), Verdict::Bypass(_))
    }

    /// Whether any of the application's policies names the service token `token_id`.
    pub fn names_token(&self, token_id: &str) -> bool {
        self.policies
            .iter()
            .any(|p| p.policy.rules.token_ids().any(|id| id == token_id))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::key_ring::tests::test_keys;
    use crate::policy::{PolicyDecision, PolicyRecord, PolicyRule, PolicyRules};
    use crate::signing_keys::KeyInfo;

    #[test]
    fn debug_never_shows_the_private_key() {
        let record = test_keys()[0].clone();
        let shown = format!("{record:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains(&format!("{:?}", &record.private_key_pkcs8[..8])));
        assert_eq!(KeyInfo::from(&record).kid, record.kid);
    }

    fn token(expires_at: Option<i64>) -> ServiceTokenRecord {
        ServiceTokenRecord {
            id: "id".into(),
            name: "bot".into(),
            client_id: "c.access".into(),
            secret_hash: crate::secret::hash_secret("s"),
            previous_secret_hash: Some(crate::secret::hash_secret("old")),
            previous_secret_expires_at: Some(100),
            duration: TokenDuration::Forever,
            created_at: 0,
            updated_at: 0,
            expires_at,
            last_seen_at: None,
            enabled: true,
            client_secret_version: 1,
        }
    }

    #[test]
    fn tokens_know_their_expiry_and_secrets() {
        let t = token(Some(1_000));
        assert!(!t.is_expired_at(999) && t.is_expired_at(1_000));
        assert!(t.expires_within(500, std::time::Duration::from_secs(500)));
        assert!(!t.expires_within(400, std::time::Duration::from_secs(500)));
        assert!(
            !t.expires_within(1_000, std::time::Duration::from_secs(500)),
            "expired already"
        );
        assert!(!token(None).expires_within(0, std::time::Duration::MAX));
        assert!(t.accepts_secret("s", 5_000));
        assert!(t.accepts_secret("old", 99) && !t.accepts_secret("old", 100));
        assert!(!t.accepts_secret("wrong", 0));
    }

    #[test]
    fn applications_know_whom_their_policies_admit() {
        let alice = "00000000-0000-4000-8000-00000000000a";
        let service_auth = |include| AppPolicy {
            precedence: 1,
            policy: PolicyRecord {
                id: "00000000-0000-4000-8000-0000000000f1".into(),
                name: "bots".into(),
                decision: PolicyDecision::NonIdentity,
                rules: PolicyRules::including(include),
                reusable: false,
                created_at: 0,
                updated_at: 0,
            },
        };
        let mut app = ApplicationRecord {
            id: "00000000-0000-4000-8000-000000000001".into(),
            name: "api".into(),
            aud: "aud".into(),
            session_duration: 60,
            read_service_tokens_from_header: None,
            cookie_http_only: true,
            cookie_secure: None,
            policies: vec![],
            created_at: 0,
            updated_at: 0,
            tokens_revoked_before: None,
            domain: None,
            origin: None,
        };
        let bot = |id| Subject {
            service_token_id: Some(id),
            ..Subject::default()
        };
        let forbidden =
            |r: Result<(), Rejection>| r.unwrap_err().kind() == RejectionKind::Forbidden;
        assert!(forbidden(app.authorize(&bot(alice))), "no policies: nobody");
        app.policies = vec![service_auth(vec![PolicyRule::AnyValidServiceToken {}])];
        assert!(app.authorize(&bot(alice)).is_ok());
        assert!(forbidden(app.authorize(&Subject::default())));
        assert!(!app.names_token(alice));
        app.policies = vec![service_auth(vec![PolicyRule::ServiceToken {
            token_id: alice.into(),
        }])];
        assert!(app.authorize(&bot(alice)).is_ok());
        assert!(forbidden(
            app.authorize(&bot("00000000-0000-4000-8000-00000000000b"))
        ));
        assert!(app.names_token(alice));
        assert!(!app.bypasses(Some("127.0.0.1".parse().unwrap())));
    }
}
