//! Access JWT claims, in every shape Cloudflare emits.
//!
//! Cloudflare writes `aud` as a plain string in service-token application tokens and as an
//! array in user tokens; service tokens carry `common_name` (the client ID) and `sub:""`, user
//! tokens carry `email`, `sub`, `nbf`, `identity_nonce`, `country`, sometimes `policy_id`, and
//! custom claims from the identity provider. [`AccessClaims`] accepts all of them, keeps unknown
//! claims, and rejects a payload that names a claim twice (JSON parsers disagree on which copy
//! wins, which is how duplicate claims become an attack).
//!
//! ```
//! use tollgate_core::AccessClaims;
//!
//! let service = br#"{"type":"app","aud":"4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2","exp":1700086400,"iss":"https://team.cloudflareaccess.com","common_name":"5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access","iat":1700000000,"sub":""}"#;
//! let claims = AccessClaims::from_json(service)?;
//! assert_eq!(claims.common_name(), Some("5a1b4f0cbd6df4b22b11c8ffb5d4b4a9.access"));
//! assert!(claims.audience().contains("4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"));
//!
//! let duplicated = br#"{"aud":"a","iss":"i","exp":1,"exp":99999999999}"#;
//! assert!(AccessClaims::from_json(duplicated).is_err());
//! # Ok::<(), tollgate_core::claims::ClaimsError>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `aud` claim: one audience or several, remembered in the form it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A single string, as Cloudflare writes it in service-token application tokens.
    One(String),
    /// An array, as Cloudflare writes it in user tokens.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `tag` is one of the audiences.
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|aud| aud == tag)
    }

    /// The audiences, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice = match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many.as_slice(),
        };
        slice.iter().map(String::as_str)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Audience::One(one) => serializer.serialize_str(one),
            Audience::Many(many) => many.serialize(serializer),
        }
    }
}

/// Why a claim set was refused by [`AccessClaims::from_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsError {
    kind: ClaimsErrorKind,
    claim: Option<String>,
}

/// The category of a [`ClaimsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsErrorKind {
    /// The payload is not a JSON object.
    NotAnObject,
    /// A claim appears more than once.
    DuplicateClaim,
    /// A required claim (`aud`, `iss`, `exp`) is absent.
    MissingClaim,
    /// A claim has the wrong JSON type or an out-of-range value.
    InvalidClaim,
}

impl ClaimsError {
    /// The category of the error.
    pub fn kind(&self) -> ClaimsErrorKind {
        self.kind
    }

    /// The claim at fault, when there is one.
    pub fn claim(&self) -> Option<&str> {
        self.claim.as_deref()
    }

    fn new(kind: ClaimsErrorKind, claim: &str) -> Self {
        // Claim names come from the token; keep them short so an error never carries a payload.
        let claim: String = claim.chars().take(64).collect();
        Self {
            kind,
            claim: Some(claim),
        }
    }
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ClaimsErrorKind::NotAnObject => "claims are not a JSON object",
            ClaimsErrorKind::DuplicateClaim => "duplicate claim",
            ClaimsErrorKind::MissingClaim => "missing required claim",
            ClaimsErrorKind::InvalidClaim => "invalid claim",
        };
        match &self.claim {
            Some(claim) => write!(f, "{what} `{claim}`"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for ClaimsError {}

/// The claims of a Cloudflare Access JWT.
///
/// Build the claims of a service-token application token with [`AccessClaims::service_token`],
/// of a user token with [`AccessClaims::user`]; parse any with [`AccessClaims::from_json`].
#[derive(Debug, Clone, PartialEq)]
pub struct AccessClaims {
    token_type: Option<String>,
    aud: Audience,
    email: Option<String>,
    exp: i64,
    iat: Option<i64>,
    nbf: Option<i64>,
    iss: String,
    common_name: Option<String>,
    identity_nonce: Option<String>,
    sub: String,
    country: Option<String>,
    policy_id: Option<String>,
    extra: Map<String, Value>,
}

impl AccessClaims {
    /// The claims Cloudflare writes into an application token minted for a service token:
    /// `type:"app"`, `aud` as a plain string, `exp`, `iss`, `common_name` (the client ID), `iat`
    /// and `sub:""`.
    pub fn service_token(
        aud: impl Into<String>,
        iss: impl Into<String>,
        client_id: impl Into<String>,
        iat: i64,
        exp: i64,
    ) -> Self {
        Self {
            token_type: Some("app".to_owned()),
            aud: Audience::One(aud.into()),
            email: None,
            exp,
            iat: Some(iat),
            nbf: None,
            iss: iss.into(),
            common_name: Some(client_id.into()),
            identity_nonce: None,
            sub: String::new(),
            country: None,
            policy_id: None,
            extra: Map::new(),
        }
    }

    /// The claims of a user token: `type:"app"`, `aud` as an array, `email`, `sub`, `iat`,
    /// `nbf` (= `iat`) and `exp`. Add the rest with the `with_*` methods.
    pub fn user(
        aud: Vec<String>,
        iss: impl Into<String>,
        email: impl Into<String>,
        sub: impl Into<String>,
        iat: i64,
        exp: i64,
    ) -> Self {
        Self {
            token_type: Some("app".to_owned()),
            aud: Audience::Many(aud),
            email: Some(email.into()),
            exp,
            iat: Some(iat),
            nbf: Some(iat),
            iss: iss.into(),
            common_name: None,
            identity_nonce: None,
            sub: sub.into(),
            country: None,
            policy_id: None,
            extra: Map::new(),
        }
    }

    /// Sets `nbf`.
    #[must_use]
    pub fn with_not_before(mut self, nbf: Option<i64>) -> Self {
        self.nbf = nbf;
        self
    }

    /// Sets `identity_nonce`.
    #[must_use]
    pub fn with_identity_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.identity_nonce = Some(nonce.into());
        self
    }

    /// Sets `country`.
    #[must_use]
    pub fn with_country(mut self, country: impl Into<String>) -> Self {
        self.country = Some(country.into());
        self
    }

    /// Sets `policy_id`.
    #[must_use]
    pub fn with_policy_id(mut self, policy_id: impl Into<String>) -> Self {
        self.policy_id = Some(policy_id.into());
        self
    }

    /// Adds a custom claim. Names of the standard claims are ignored here: set those through
    /// their own methods.
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if !KNOWN.contains(&name.as_str()) {
            self.extra.insert(name, value);
        }
        self
    }

    /// Parses a JWT payload (the decoded JSON bytes): one pass, the standard claims read
    /// straight into their fields, only custom claims kept as JSON values. A syntax error or a
    /// claim named twice is reported first; then the first claim of the wrong type; then a
    /// missing `aud`, `exp` or `iss`.
    pub fn from_json(payload: &[u8]) -> Result<Self, ClaimsError> {
        let mut fault = None;
        let mut de = serde_json::Deserializer::from_slice(payload);
        let partial = match de.deserialize_map(ClaimsVisitor { fault: &mut fault }) {
            Ok(partial) => partial,
            Err(err) => return Err(decode_error(&err)),
        };
        if de.end().is_err() {
            return Err(ClaimsError {
                kind: ClaimsErrorKind::NotAnObject,
                claim: None,
            });
        }
        match fault {
            Some(fault) => Err(fault),
            None => partial.finish(),
        }
    }

    /// `type` (`"app"` for application tokens).
    pub fn token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }
    /// `aud`.
    pub fn audience(&self) -> &Audience {
        &self.aud
    }
    /// `email` (user tokens).
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// `exp`, seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.exp
    }
    /// `iat`, seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<i64> {
        self.iat
    }
    /// `nbf`, seconds since the Unix epoch.
    pub fn not_before(&self) -> Option<i64> {
        self.nbf
    }
    /// `iss`.
    pub fn issuer(&self) -> &str {
        &self.iss
    }
    /// `common_name`: the client ID of a service token.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }
    /// `identity_nonce` (user tokens).
    pub fn identity_nonce(&self) -> Option<&str> {
        self.identity_nonce.as_deref()
    }
    /// `sub`: the user's ID, or `""` for service tokens.
    pub fn subject(&self) -> &str {
        &self.sub
    }
    /// `country` (user tokens).
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    /// `policy_id`, when present.
    pub fn policy_id(&self) -> Option<&str> {
        self.policy_id.as_deref()
    }
    /// A claim by name: standard claims as their JSON value, else a custom claim.
    pub fn get(&self, name: &str) -> Option<Value> {
        match name {
            "type" => self.token_type.clone().map(Value::from),
            "aud" => serde_json::to_value(&self.aud).ok(),
            "email" => self.email.clone().map(Value::from),
            "exp" => Some(Value::from(self.exp)),
            "iat" => self.iat.map(Value::from),
            "nbf" => self.nbf.map(Value::from),
            "iss" => Some(Value::from(self.iss.clone())),
            "common_name" => self.common_name.clone().map(Value::from),
            "identity_nonce" => self.identity_nonce.clone().map(Value::from),
            "sub" => Some(Value::from(self.sub.clone())),
            "country" => self.country.clone().map(Value::from),
            "policy_id" => self.policy_id.clone().map(Value::from),
            other => self.extra.get(other).cloned(),
        }
    }
    /// The claims tollgate does not model, as they were written.
    pub fn custom(&self) -> &Map<String, Value> {
        &self.extra
    }
}

const KNOWN: [&str; 12] = [
    "type",
    "aud",
    "email",
    "exp",
    "iat",
    "nbf",
    "iss",
    "common_name",
    "identity_nonce",
    "sub",
    "country",
    "policy_id",
];

impl Serialize for AccessClaims {
    /// Writes the claims in the order Cloudflare does (`type`, `aud`, …, `sub`), custom claims
    /// last.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(t) = &self.token_type {
            map.serialize_entry("type", t)?;
        }
        map.serialize_entry("aud", &self.aud)?;
        if let Some(email) = &self.email {
            map.serialize_entry("email", email)?;
        }
        map.serialize_entry("exp", &self.exp)?;
        if self.common_name.is_some() {
            // Service tokens: Cloudflare's order is type, aud, exp, iss, common_name, iat, sub.
            map.serialize_entry("iss", &self.iss)?;
            map.serialize_entry("common_name", &self.common_name)?;
            if let Some(iat) = self.iat {
                map.serialize_entry("iat", &iat)?;
            }
            if let Some(nbf) = self.nbf {
                map.serialize_entry("nbf", &nbf)?;
            }
        } else {
            if let Some(iat) = self.iat {
                map.serialize_entry("iat", &iat)?;
            }
            if let Some(nbf) = self.nbf {
                map.serialize_entry("nbf", &nbf)?;
            }
            map.serialize_entry("iss", &self.iss)?;
        }
        if let Some(nonce) = &self.identity_nonce {
            map.serialize_entry("identity_nonce", nonce)?;
        }
        map.serialize_entry("sub", &self.sub)?;
        if let Some(country) = &self.country {
            map.serialize_entry("country", country)?;
        }
        if let Some(policy_id) = &self.policy_id {
            map.serialize_entry("policy_id", policy_id)?;
        }
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AccessClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fault = None;
        let partial = deserializer.deserialize_map(ClaimsVisitor { fault: &mut fault })?;
        match fault {
            Some(fault) => Err(de::Error::custom(fault)),
            None => partial.finish().map_err(de::Error::custom),
        }
    }
}

/// The claims read so far.
#[derive(Default)]
struct Partial {
    token_type: Option<String>,
    aud: Option<Audience>,
    email: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    iss: Option<String>,
    common_name: Option<String>,
    identity_nonce: Option<String>,
    sub: Option<String>,
    country: Option<String>,
    policy_id: Option<String>,
    extra: Map<String, Value>,
}

impl Partial {
    /// Reads standard claim number `index` of [`KNOWN`].
    fn set(&mut self, index: usize, value: Value) -> Result<(), ClaimsError> {
        let claim = KNOWN[index];
        match claim {
            "type" => self.token_type = string(value, claim)?,
            "aud" => self.aud = Some(audience(value)?),
            "email" => self.email = string(value, claim)?,
            "exp" => self.exp = Some(numeric_date(value, claim)?),
            "iat" => self.iat = Some(numeric_date(value, claim)?),
            "nbf" => self.nbf = Some(numeric_date(value, claim)?),
            "iss" => self.iss = string(value, claim)?,
            "common_name" => self.common_name = string(value, claim)?,
            "identity_nonce" => self.identity_nonce = string(value, claim)?,
            "sub" => self.sub = string(value, claim)?,
            "country" => self.country = string(value, claim)?,
            _ => self.policy_id = string(value, claim)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<AccessClaims, ClaimsError> {
        let missing = |claim| ClaimsError::new(ClaimsErrorKind::MissingClaim, claim);
        let aud = self.aud.ok_or_else(|| missing("aud"))?;
        let exp = self.exp.ok_or_else(|| missing("exp"))?;
        let iss = self.iss.ok_or_else(|| missing("iss"))?;
        Ok(AccessClaims {
            token_type: self.token_type,
            aud,
            email: self.email,
            exp,
            iat: self.iat,
            nbf: self.nbf,
            iss,
            common_name: self.common_name,
            identity_nonce: self.identity_nonce,
            sub: self.sub.unwrap_or_default(),
            country: self.country,
            policy_id: self.policy_id,
            extra: self.extra,
        })
    }
}

/// Reads a JSON object of claims, refusing any claim named twice. A claim of the wrong type
/// is remembered in `fault` (the first one) while the rest is still read, so a syntax error
/// or a duplicate later in the payload is what gets reported.
struct ClaimsVisitor<'f> {
    fault: &'f mut Option<ClaimsError>,
}

const DUPLICATE_MARKER: &str = "tollgate: duplicate claim ";

fn duplicate<E: de::Error>(claim: &str) -> E {
    let shown: String = claim.chars().take(64).collect();
    E::custom(format_args!("{DUPLICATE_MARKER}{shown}"))
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Partial;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Partial, A::Error> {
        let mut partial = Partial::default();
        let mut seen = 0u16;
        while let Some(ClaimName(name)) = access.next_key::<ClaimName<'de>>()? {
            match KNOWN.iter().position(|known| *known == name) {
                Some(index) => {
                    if seen & (1 << index) != 0 {
                        return Err(duplicate(&name));
                    }
                    seen |= 1 << index;
                    let value: Value = access.next_value()?;
                    if let Err(fault) = partial.set(index, value)
                        && self.fault.is_none()
                    {
                        *self.fault = Some(fault);
                    }
                }
                None => {
                    if partial.extra.contains_key(name.as_ref()) {
                        return Err(duplicate(&name));
                    }
                    let value: Value = access.next_value()?;
                    partial.extra.insert(name.into_owned(), value);
                }
            }
        }
        Ok(partial)
    }
}

/// A claim name, borrowed from the payload when it has no escapes.
struct ClaimName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for ClaimName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = ClaimName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(ClaimName(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(ClaimName(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
                Ok(ClaimName(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

fn decode_error(err: &serde_json::Error) -> ClaimsError {
    let text = err.to_string();
    match text.strip_prefix(DUPLICATE_MARKER) {
        Some(rest) => {
            let claim = rest.split(" at line ").next().unwrap_or_default();
            ClaimsError::new(ClaimsErrorKind::DuplicateClaim, claim)
        }
        None => ClaimsError {
            kind: ClaimsErrorKind::NotAnObject,
            claim: None,
        },
    }
}

/// A string claim; `null` reads as absent.
fn string(value: Value, claim: &str) -> Result<Option<String>, ClaimsError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(ClaimsError::new(ClaimsErrorKind::InvalidClaim, claim)),
    }
}

/// `aud`: a string or an array of strings.
fn audience(value: Value) -> Result<Audience, ClaimsError> {
    let invalid = || ClaimsError::new(ClaimsErrorKind::InvalidClaim, "aud");
    match value {
        Value::String(one) => Ok(Audience::One(one)),
        Value::Array(many) => many
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid()),
            })
            .collect::<Result<_, _>>()
            .map(Audience::Many),
        _ => Err(invalid()),
    }
}

/// A JWT `NumericDate`: an integer or a finite non-integer number of seconds (floored).
/// `null` is not a time and is refused, never read as absent.
fn numeric_date(value: Value, claim: &str) -> Result<i64, ClaimsError> {
    let invalid = || ClaimsError::new(ClaimsErrorKind::InvalidClaim, claim);
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.floor() as i64),
                _ => Err(invalid()),
            }
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A user token payload as Cloudflare writes it (values made up, shape observed).
    const USER: &str = r#"{
        "aud":["4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"],
        "email":"jane@example.com",
        "exp":1700086400,"iat":1700000000,"nbf":1700000000,
        "iss":"https://team.cloudflareaccess.com",
        "type":"app",
        "identity_nonce":"6ei69kawdKzMIAPF",
        "sub":"7335d417-61da-459d-899c-0a01c76a2f94",
        "country":"NL",
        "policy_id":"5c1e2b21-2b9c-4ea8-a1c6-b2f26ad1e1f3",
        "groups":["eng"],
        "custom":{"team":"core"}
    }"#;

    #[test]
    fn user_token_round_trips_with_custom_claims() {
        let claims = AccessClaims::from_json(USER.as_bytes()).expect("parses");
        assert_eq!(claims.email(), Some("jane@example.com"));
        assert_eq!(claims.not_before(), Some(1_700_000_000));
        assert_eq!(claims.country(), Some("NL"));
        assert_eq!(claims.identity_nonce(), Some("6ei69kawdKzMIAPF"));
        assert!(matches!(claims.audience(), Audience::Many(_)));
        assert_eq!(claims.get("groups"), Some(json!(["eng"])));
        assert_eq!(claims.custom().len(), 2);
        let again = serde_json::to_vec(&claims).expect("serializes");
        assert_eq!(AccessClaims::from_json(&again).expect("reparses"), claims);
    }

    #[test]
    fn service_token_serializes_in_cloudflare_order() {
        let claims = AccessClaims::service_token("aud1", "https://t.example", "id.access", 10, 20);
        let text = serde_json::to_string(&claims).expect("serializes");
        assert_eq!(
            text,
            r#"{"type":"app","aud":"aud1","exp":20,"iss":"https://t.example","common_name":"id.access","iat":10,"sub":""}"#
        );
    }

    #[test]
    fn optional_type_and_sub() {
        let claims = AccessClaims::from_json(br#"{"aud":"a","iss":"i","exp":5}"#).expect("minimal");
        assert_eq!(claims.token_type(), None);
        assert_eq!(claims.subject(), "");
    }

    #[test]
    fn rejects_bad_shapes() {
        let cases: &[(&str, ClaimsErrorKind, Option<&str>)] = &[
            (
                r#"{"aud":"a","iss":"i","exp":1,"aud":"b"}"#,
                ClaimsErrorKind::DuplicateClaim,
                Some("aud"),
            ),
            (
                r#"{"aud":"a","iss":"i"}"#,
                ClaimsErrorKind::MissingClaim,
                Some("exp"),
            ),
            (
                r#"{"iss":"i","exp":1}"#,
                ClaimsErrorKind::MissingClaim,
                Some("aud"),
            ),
            (
                r#"{"aud":"a","exp":1}"#,
                ClaimsErrorKind::MissingClaim,
                Some("iss"),
            ),
            (
                r#"{"aud":"a","iss":"i","exp":"1"}"#,
                ClaimsErrorKind::InvalidClaim,
                Some("exp"),
            ),
            (
                r#"{"aud":[1],"iss":"i","exp":1}"#,
                ClaimsErrorKind::InvalidClaim,
                Some("aud"),
            ),
            (
                r#"{"aud":"a","iss":"i","exp":1e400}"#,
                ClaimsErrorKind::NotAnObject,
                None,
            ),
            (r#"["aud"]"#, ClaimsErrorKind::NotAnObject, None),
            // A wrong type early does not hide a duplicate or a syntax error later.
            (
                r#"{"aud":[1],"iss":"i","exp":1,"aud":"b"}"#,
                ClaimsErrorKind::DuplicateClaim,
                Some("aud"),
            ),
            (
                r#"{"iss":5,"aud":"a","exp":1} trailing"#,
                ClaimsErrorKind::NotAnObject,
                None,
            ),
            // An escaped name is the same claim.
            (
                r#"{"\u0061ud":"a","iss":"i","exp":1,"aud":"b"}"#,
                ClaimsErrorKind::DuplicateClaim,
                Some("aud"),
            ),
            (
                r#"{"aud":"a","iss":"i","exp":1,"x":1,"\u0078":2}"#,
                ClaimsErrorKind::DuplicateClaim,
                Some("x"),
            ),
            (
                r#"{"aud":"a","iss":"i","exp":null}"#,
                ClaimsErrorKind::InvalidClaim,
                Some("exp"),
            ),
            (
                r#"{"aud":"a","iss":"i","exp":1} trailing"#,
                ClaimsErrorKind::NotAnObject,
                None,
            ),
        ];
        for (payload, kind, claim) in cases {
            let err = AccessClaims::from_json(payload.as_bytes()).expect_err(payload);
            assert_eq!(err.kind(), *kind, "{payload}: {err}");
            assert_eq!(err.claim(), *claim, "{payload}");
        }
    }

    #[test]
    fn fractional_dates_floor() {
        let claims = AccessClaims::from_json(br#"{"aud":"a","iss":"i","exp":5.9,"iat":1.2}"#)
            .expect("fractional NumericDate");
        assert_eq!(claims.expires_at(), 5);
        assert_eq!(claims.issued_at(), Some(1));
    }

    #[test]
    fn deserialize_impl_checks_duplicates_too() {
        let err = serde_json::from_str::<AccessClaims>(r#"{"aud":"a","iss":"i","exp":1,"exp":2}"#);
        assert!(err.is_err());
    }
}
