//! Rows as the schema stores them, and their conversion to and from the issuer's records.

use tollgate_issue::{
    ApiPermission, ApiTokenRecord, AppPolicy, ApplicationRecord, PolicyDecision, PolicyRecord,
    PolicyRules, ServiceTokenRecord, SigningKeyRecord, TokenDuration,
};

use crate::error::{Error, ErrorKind};
use crate::master_key::MasterKey;

pub(crate) const ENCRYPTION_NONE: &str = "none";
pub(crate) const ENCRYPTION_AES_256_GCM: &str = "aes-256-gcm";

fn corrupt(what: &str) -> Error {
    Error::new(ErrorKind::CorruptData, format!("stored {what} is invalid"))
}

fn out_of_range(what: &str) -> Error {
    Error::new(
        ErrorKind::CorruptData,
        format!("{what} is too large to store (more than 2^63-1)"),
    )
}

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| out_of_range(what))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

fn hash(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], Error> {
    bytes.try_into().map_err(|_| corrupt(what))
}

/// The columns of [`TokenRow`], as a literal for `concat!`.
macro_rules! token_columns {
    () => {
        "id, name, client_id, secret_hash, previous_secret_hash, previous_secret_expires_at, \
         duration_seconds, created_at, updated_at, expires_at, last_seen_at, enabled, \
         client_secret_version"
    };
}
pub(crate) use token_columns;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    name: String,
    client_id: String,
    secret_hash: Vec<u8>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    duration_seconds: Option<i64>,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    last_seen_at: Option<i64>,
    enabled: bool,
    client_secret_version: i64,
}

impl TokenRow {
    pub(crate) fn into_record(self) -> Result<ServiceTokenRecord, Error> {
        Ok(ServiceTokenRecord {
            secret_hash: hash(self.secret_hash, "secret hash")?,
            previous_secret_hash: self
                .previous_secret_hash
                .map(|h| hash(h, "previous secret hash"))
                .transpose()?,
            duration: match self.duration_seconds {
                Some(seconds) => TokenDuration::Seconds(to_u64(seconds, "token duration")?),
                None => TokenDuration::Forever,
            },
            id: self.id,
            name: self.name,
            client_id: self.client_id,
            previous_secret_expires_at: self.previous_secret_expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            last_seen_at: self.last_seen_at,
            enabled: self.enabled,
            client_secret_version: to_u64(self.client_secret_version, "client secret version")?,
        })
    }
}

pub(crate) fn duration_seconds(duration: TokenDuration) -> Result<Option<i64>, Error> {
    match duration {
        TokenDuration::Seconds(seconds) => to_i64(seconds, "token duration").map(Some),
        TokenDuration::Forever => Ok(None),
    }
}

/// The columns of [`ApiTokenRow`], as a literal for `concat!`.
macro_rules! api_token_columns {
    () => {
        "id, name, token_hash, permission, created_at, last_used_at"
    };
}
pub(crate) use api_token_columns;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApiTokenRow {
    id: String,
    name: String,
    token_hash: Vec<u8>,
    permission: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl ApiTokenRow {
    pub(crate) fn into_record(self) -> Result<ApiTokenRecord, Error> {
        Ok(ApiTokenRecord {
            token_hash: hash(self.token_hash, "API token hash")?,
            permission: ApiPermission::parse(&self.permission)
                .ok_or_else(|| corrupt("API token permission"))?,
            id: self.id,
            name: self.name,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// The columns of [`KeyRow`], as a literal for `concat!`.
macro_rules! key_columns {
    () => {
        "kid, key_encryption, private_key, created_at, activates_at, retires_at, expires_at"
    };
}
pub(crate) use key_columns;

/// A signing key as stored. Its `Debug` output leaves the private key out.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    key_encryption: String,
    private_key: Vec<u8>,
    created_at: i64,
    activates_at: i64,
    retires_at: Option<i64>,
    expires_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("key_encryption", &self.key_encryption)
            .field("private_key", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl KeyRow {
    /// Decrypts the private key if it was stored encrypted.
    pub(crate) fn into_record(
        self,
        master_key: Option<&MasterKey>,
    ) -> Result<SigningKeyRecord, Error> {
        let private_key_pkcs8 = match (self.key_encryption.as_str(), master_key) {
            (ENCRYPTION_NONE, _) => self.private_key,
            (ENCRYPTION_AES_256_GCM, Some(key)) => key.open(&self.kid, &self.private_key)?,
            (ENCRYPTION_AES_256_GCM, None) => {
                return Err(Error::new(
                    ErrorKind::MasterKeyMissing,
                    format!(
                        "signing key {} is encrypted at rest; set {} to the key it was stored with",
                        self.kid,
                        MasterKey::ENV
                    ),
                ));
            }
            _ => return Err(corrupt("key encryption scheme")),
        };
        Ok(SigningKeyRecord {
            kid: self.kid,
            private_key_pkcs8,
            created_at: self.created_at,
            activates_at: self.activates_at,
            retires_at: self.retires_at,
            expires_at: self.expires_at,
        })
    }
}

/// A signing key ready to insert: encrypted when a master key is configured. Its `Debug`
/// output leaves the private key out (it is plaintext when no master key is configured).
pub(crate) struct NewKeyRow<'a> {
    pub(crate) record: &'a SigningKeyRecord,
    pub(crate) key_encryption: &'static str,
    pub(crate) private_key: Vec<u8>,
}

impl std::fmt::Debug for NewKeyRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKeyRow")
            .field("record", &self.record)
            .field("key_encryption", &self.key_encryption)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl<'a> NewKeyRow<'a> {
    pub(crate) fn seal(
        record: &'a SigningKeyRecord,
        master_key: Option<&MasterKey>,
    ) -> Result<Self, Error> {
        Ok(match master_key {
            Some(key) => Self {
                record,
                key_encryption: ENCRYPTION_AES_256_GCM,
                private_key: key.seal(&record.kid, &record.private_key_pkcs8)?,
            },
            None => Self {
                record,
                key_encryption: ENCRYPTION_NONE,
                private_key: record.private_key_pkcs8.clone(),
            },
        })
    }
}

/// The columns of [`AppRow`], as a literal for `concat!`.
macro_rules! app_columns {
    () => {
        "name, aud, session_duration, read_service_tokens_from_header, cookie_http_only, \
         cookie_secure, created_at, domain, origin, id, updated_at, tokens_revoked_before"
    };
}
pub(crate) use app_columns;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AppRow {
    pub(crate) name: String,
    aud: String,
    session_duration: i64,
    read_service_tokens_from_header: Option<String>,
    cookie_http_only: bool,
    cookie_secure: Option<bool>,
    created_at: i64,
    domain: Option<String>,
    origin: Option<String>,
    id: String,
    updated_at: i64,
    tokens_revoked_before: Option<i64>,
}

impl AppRow {
    /// The application's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// `policies` are the application's, in precedence order.
    pub(crate) fn into_record(self, policies: Vec<AppPolicy>) -> Result<ApplicationRecord, Error> {
        Ok(ApplicationRecord {
            id: self.id,
            name: self.name,
            aud: self.aud,
            session_duration: to_u64(self.session_duration, "session duration")?,
            read_service_tokens_from_header: self.read_service_tokens_from_header,
            cookie_http_only: self.cookie_http_only,
            cookie_secure: self.cookie_secure,
            policies,
            created_at: self.created_at,
            updated_at: self.updated_at,
            tokens_revoked_before: self.tokens_revoked_before,
            domain: self.domain,
            origin: self.origin,
        })
    }
}

/// The columns of [`PolicyRow`], as a literal for `concat!` (prefixed by the table alias `p`).
macro_rules! policy_columns {
    () => {
        "p.id, p.name, p.decision, p.rules, p.application, p.created_at, p.updated_at"
    };
}
pub(crate) use policy_columns;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PolicyRow {
    id: String,
    name: String,
    decision: String,
    rules: String,
    /// NULL: reusable.
    pub(crate) application: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl PolicyRow {
    pub(crate) fn into_record(self) -> Result<PolicyRecord, Error> {
        let decision: PolicyDecision = self
            .decision
            .parse()
            .map_err(|_| corrupt("policy decision"))?;
        let rules: PolicyRules =
            serde_json::from_str(&self.rules).map_err(|_| corrupt("policy rules"))?;
        Ok(PolicyRecord {
            id: self.id,
            name: self.name,
            decision,
            rules,
            reusable: self.application.is_none(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A policy row linked to an application: `(application id, precedence, policy)`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LinkRow {
    pub(crate) link_application: String,
    precedence: i64,
    #[sqlx(flatten)]
    policy: PolicyRow,
}

impl LinkRow {
    pub(crate) fn into_policy(self) -> Result<AppPolicy, Error> {
        Ok(AppPolicy {
            precedence: u32::try_from(self.precedence).map_err(|_| corrupt("policy precedence"))?,
            policy: self.policy.into_record()?,
        })
    }
}

/// The rules as stored: Cloudflare's JSON.
pub(crate) fn rules_json(rules: &PolicyRules) -> String {
    serde_json::to_string(rules).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The debug form of a byte vector, as a derived `Debug` would print it.
    fn bytes_debug(bytes: &[u8]) -> String {
        format!("{bytes:?}").trim_matches(['[', ']']).to_owned()
    }

    #[test]
    fn key_rows_redact_private_keys_in_debug() {
        let secret = b"PRIVATE-KEY-MATERIAL".to_vec();
        let record = SigningKeyRecord {
            kid: "ab".repeat(32),
            private_key_pkcs8: secret.clone(),
            created_at: 1,
            activates_at: 2,
            retires_at: None,
            expires_at: None,
        };
        let new_row = NewKeyRow::seal(&record, None).unwrap();
        assert_eq!(
            new_row.private_key, secret,
            "stored plain without a master key"
        );
        let row = KeyRow {
            kid: record.kid.clone(),
            key_encryption: ENCRYPTION_NONE.to_owned(),
            private_key: secret.clone(),
            created_at: 1,
            activates_at: 2,
            retires_at: None,
            expires_at: None,
        };
        let leaked = bytes_debug(&secret);
        for debug in [format!("{new_row:?}"), format!("{row:?}")] {
            assert!(!debug.contains(&leaked), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(debug.contains(&record.kid), "{debug}");
        }
    }
}
