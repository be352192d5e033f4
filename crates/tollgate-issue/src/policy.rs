//! Access policies, as Cloudflare models them (DESIGN.md §6): who may reach an application.
//!
//! A [`PolicyRecord`] has a [`PolicyDecision`] and three rule lists. It *matches* a request
//! when at least one `include` rule matches, every `require` rule matches and no `exclude` rule
//! does. An application holds its policies in precedence order ([`AppPolicy`]); each is either
//! *reusable* (an account-level policy several applications link to) or *scoped* to the one
//! application (Cloudflare's legacy per-application policies).
//!
//! # Order of evaluation
//!
//! As Cloudflare orders them ([`evaluate`]):
//! 1. `bypass` and `non_identity` (Service Auth) policies, in precedence order;
//! 2. then `deny` and `allow` policies, in precedence order.
//!
//! The first policy that matches and applies decides:
//! - `bypass` applies to every request, authenticated or not: it passes with no identity
//!   required;
//! - `non_identity` applies to service tokens only: it admits one;
//! - `deny` applies to everyone: it refuses (403);
//! - `allow` applies to user identities only (an email): it admits one. A service token never
//!   passes an `allow` policy, as at Cloudflare (where it would be sent to a login page).
//!
//! When no policy decides, a valid identity is refused with 403 and a request without one with
//! 401: an application with no policies admits nobody.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a matching policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyDecision {
    /// Admits a user identity its rules match.
    Allow,
    /// Refuses whoever its rules match.
    Deny,
    /// Service Auth: admits a service token its rules match.
    NonIdentity,
    /// Lets requests its rules match through with no identity at all.
    Bypass,
}

impl PolicyDecision {
    /// Cloudflare's spelling: `allow`, `deny`, `non_identity`, `bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::NonIdentity => "non_identity",
            Self::Bypass => "bypass",
        }
    }

    /// Evaluated in the first pass (`bypass`, `non_identity`) rather than the second.
    fn first_pass(self) -> bool {
        matches!(self, Self::Bypass | Self::NonIdentity)
    }
}

impl fmt::Display for PolicyDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyDecision {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            "non_identity" => Ok(Self::NonIdentity),
            "bypass" => Ok(Self::Bypass),
            other => Err(PolicyError(format!(
                "unknown decision {other:?} (allow, deny, non_identity or bypass)"
            ))),
        }
    }
}

/// One rule of a policy, in Cloudflare's JSON shape (`{"service_token":{"token_id":"…"}}`,
/// `{"any_valid_service_token":{}}`, `{"ip":{"ip":"10.0.0.0/8"}}`, `{"everyone":{}}`,
/// `{"email":{"email":"…"}}`, `{"email_domain":{"domain":"…"}}`). Unknown rule types and
/// unknown fields are refused when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyRule {
    /// The service token with this id (its UUID, not its client ID).
    ServiceToken {
        /// The token's id.
        token_id: String,
    },
    /// Any valid service token of the store.
    AnyValidServiceToken {},
    /// A client address in this network.
    Ip {
        /// The network (`10.0.0.0/8`, `2001:db8::/32`, or one address).
        ip: IpNetwork,
    },
    /// Everyone.
    Everyone {},
    /// A user identity with this email address (compared case-insensitively).
    Email {
        /// The address.
        email: String,
    },
    /// A user identity whose email address is in this domain (case-insensitively).
    EmailDomain {
        /// The domain, without `@`.
        domain: String,
    },
}

impl PolicyRule {
    /// The service token a rule names, if it names one.
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Self::ServiceToken { token_id } => Some(token_id),
            _ => None,
        }
    }

    fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Self::ServiceToken { token_id } => subject.service_token_id == Some(token_id.as_str()),
            Self::AnyValidServiceToken {} => subject.service_token_id.is_some(),
            Self::Ip { ip } => subject.ip.is_some_and(|addr| ip.contains(addr)),
            Self::Everyone {} => true,
            Self::Email { email } => subject
                .email
                .is_some_and(|have| have.eq_ignore_ascii_case(email)),
            Self::EmailDomain { domain } => subject
                .email
                .and_then(|have| have.rsplit_once('@'))
                .is_some_and(|(_, have)| have.eq_ignore_ascii_case(domain)),
        }
    }

    fn validate(&self, list: &str) -> Result<(), PolicyError> {
        match self {
            Self::ServiceToken { token_id } if !is_uuid(token_id) => Err(PolicyError(format!(
                "{list}: service_token.token_id {token_id:?} is not a service token id (a UUID)"
            ))),
            Self::Email { email }
                if email.len() > 320
                    || !email
                        .split_once('@')
                        .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty()) =>
            {
                Err(PolicyError(format!(
                    "{list}: email {email:?} is not an email address"
                )))
            }
            Self::EmailDomain { domain }
                if domain.is_empty() || domain.len() > 253 || domain.contains(['@', ' ']) =>
            {
                Err(PolicyError(format!(
                    "{list}: email_domain.domain {domain:?} is not a domain (no @)"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Whether `s` is a UUID in its hyphenated form (any case): the shape of every record id.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An IP network: an address and a prefix length, host bits zero.
///
/// ```
/// use tollgate_issue::IpNetwork;
///
/// let net: IpNetwork = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.1.2.3".parse()?));
/// assert!(!net.contains("11.0.0.1".parse()?));
/// assert_eq!("192.0.2.7".parse::<IpNetwork>()?.to_string(), "192.0.2.7");
/// assert!("10.0.0.1/8".parse::<IpNetwork>().is_err(), "host bits set");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `addr` is in the network (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                mask32(u32::from(addr), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                mask128(u128::from(addr), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask32(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask128(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    }
}

impl FromStr for IpNetwork {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PolicyError(format!("{s:?} is not an IP address or CIDR network"));
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        let network = Self { addr, prefix };
        let masked = match addr {
            IpAddr::V4(v4) => IpAddr::V4(mask32(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask128(u128::from(v6), prefix).into()),
        };
        if masked != addr {
            return Err(PolicyError(format!(
                "{s:?} has host bits set (the network is {masked}/{prefix})"
            )));
        }
        Ok(network)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A policy's rules were malformed; the message says which and why (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub(crate) String);

/// The most rules one list of a policy may hold.
pub const MAX_POLICY_RULES: usize = 1_000;

/// A policy's decision and rules: what [`Policies`](crate::Policies) and
/// [`Applications`](crate::Applications) create and replace policies from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// At least one must match (and the list must not be empty).
    pub include: Vec<PolicyRule>,
    /// Every one must match.
    #[serde(default)]
    pub require: Vec<PolicyRule>,
    /// None may match.
    #[serde(default)]
    pub exclude: Vec<PolicyRule>,
}

impl PolicyRules {
    /// Only `include`.
    pub fn including(include: Vec<PolicyRule>) -> Self {
        Self {
            include,
            require: Vec::new(),
            exclude: Vec::new(),
        }
    }

    /// Checks the lists: `include` not empty, at most [`MAX_POLICY_RULES`] per list, every rule
    /// well formed.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.include.is_empty() {
            return Err(PolicyError(
                "include: a policy needs at least one include rule".into(),
            ));
        }
        for (list, rules) in self.lists() {
            if rules.len() > MAX_POLICY_RULES {
                return Err(PolicyError(format!(
                    "{list}: at most {MAX_POLICY_RULES} rules"
                )));
            }
            for rule in rules {
                rule.validate(list)?;
            }
        }
        Ok(())
    }

    fn lists(&self) -> [(&'static str, &[PolicyRule]); 3] {
        [
            ("include", &self.include),
            ("require", &self.require),
            ("exclude", &self.exclude),
        ]
    }

    /// Every service token id the rules name.
    pub fn token_ids(&self) -> impl Iterator<Item = &str> {
        self.lists()
            .into_iter()
            .flat_map(|(_, rules)| rules.iter().filter_map(PolicyRule::token_id))
    }

    /// Removes every rule naming the token `token_id`; whether any did (what a store does to
    /// the policies of a token deleted with `detach`).
    pub fn forget_token(&mut self, token_id: &str) -> bool {
        let mut changed = false;
        for rules in [&mut self.include, &mut self.require, &mut self.exclude] {
            let before = rules.len();
            rules.retain(|rule| rule.token_id() != Some(token_id));
            changed |= rules.len() != before;
        }
        changed
    }

    fn matches(&self, subject: &Subject<'_>) -> bool {
        self.include.iter().any(|rule| rule.matches(subject))
            && self.require.iter().all(|rule| rule.matches(subject))
            && !self.exclude.iter().any(|rule| rule.matches(subject))
    }
}

/// An Access policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// A UUID, unique across reusable and scoped policies, never changed.
    pub id: String,
    /// Its name (not unique, as at Cloudflare).
    pub name: String,
    /// What it does when it matches.
    pub decision: PolicyDecision,
    /// Its rules.
    pub rules: PolicyRules,
    /// `true`: an account-level policy applications link to; `false`: scoped to the one
    /// application that holds it, and deleted with it.
    pub reusable: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl PolicyRecord {
    /// Whether it matches `subject`, whatever its decision.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        self.rules.matches(subject)
    }
}

/// One of an application's policies, at its precedence (unique per application; lower first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPolicy {
    /// Its place in the order, from 1.
    pub precedence: u32,
    /// The policy: a reusable one as it is now, or one scoped to the application.
    pub policy: PolicyRecord,
}

/// What a request presents to the policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The id of the service token it authenticated as (live: exists, enabled, unexpired).
    pub service_token_id: Option<&'a str>,
    /// The email of the user identity it carries.
    pub email: Option<&'a str>,
    /// The client's address.
    pub ip: Option<IpAddr>,
}

/// What the policies decided about a [`Subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// A `non_identity` or `allow` policy admits the identity.
    Admit(&'a PolicyRecord),
    /// A `bypass` policy lets the request through, identity or not.
    Bypass(&'a PolicyRecord),
    /// A `deny` policy refuses it.
    Deny(&'a PolicyRecord),
    /// No policy decided: refused.
    NoMatch,
}

/// Evaluates `policies` (in precedence order, as an application holds them) for `subject`,
/// in Cloudflare's order (see the [module docs](self)).
pub fn evaluate<'a>(policies: &'a [AppPolicy], subject: &Subject<'_>) -> Verdict<'a> {
    for first_pass in [true, false] {
        for AppPolicy { policy, .. } in policies {
            if policy.decision.first_pass() != first_pass {
                continue;
            }
            let applies = match policy.decision {
                PolicyDecision::Bypass | PolicyDecision::Deny => true,
                PolicyDecision::NonIdentity => subject.service_token_id.is_some(),
                PolicyDecision::Allow => subject.email.is_some(),
            };
            if !applies || !policy.matches(subject) {
                continue;
            }
            return match policy.decision {
                PolicyDecision::Bypass => Verdict::Bypass(policy),
                PolicyDecision::Deny => Verdict::Deny(policy),
                PolicyDecision::NonIdentity | PolicyDecision::Allow => Verdict::Admit(policy),
            };
        }
    }
    Verdict::NoMatch
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ALICE: &str = "00000000-0000-4000-8000-00000000000a";
    const BOB: &str = "00000000-0000-4000-8000-00000000000b";

    fn policy(decision: PolicyDecision, rules: PolicyRules) -> AppPolicy {
        AppPolicy {
            precedence: 1,
            policy: PolicyRecord {
                id: format!("{decision}"),
                name: format!("{decision}"),
                decision,
                rules,
                reusable: false,
                created_at: 0,
                updated_at: 0,
            },
        }
    }

    fn token(id: &str) -> PolicyRule {
        PolicyRule::ServiceToken {
            token_id: id.into(),
        }
    }

    fn ip(net: &str) -> PolicyRule {
        PolicyRule::Ip {
            ip: net.parse().unwrap(),
        }
    }

    fn bot<'a>(id: &'a str, addr: &str) -> Subject<'a> {
        Subject {
            service_token_id: Some(id),
            email: None,
            ip: Some(addr.parse().unwrap()),
        }
    }

    fn verdict(policies: &[AppPolicy], subject: &Subject<'_>) -> &'static str {
        match evaluate(policies, subject) {
            Verdict::Admit(_) => "admit",
            Verdict::Bypass(_) => "bypass",
            Verdict::Deny(_) => "deny",
            Verdict::NoMatch => "none",
        }
    }

    #[test]
    fn rules_parse_and_print_in_cloudflare_shape() {
        let json = r#"[{"service_token":{"token_id":"00000000-0000-4000-8000-00000000000a"}},
            {"any_valid_service_token":{}},{"ip":{"ip":"10.0.0.0/8"}},{"everyone":{}},
            {"email":{"email":"a@example.com"}},{"email_domain":{"domain":"example.com"}}]"#;
        let rules: Vec<PolicyRule> = serde_json::from_str(json).unwrap();
        assert_eq!(rules[0], token(ALICE));
        assert_eq!(rules[2], ip("10.0.0.0/8"));
        let back = serde_json::to_string(&rules).unwrap();
        let again: Vec<PolicyRule> = serde_json::from_str(&back).unwrap();
        assert_eq!(rules, again);
        assert!(back.contains(r#"{"any_valid_service_token":{}}"#), "{back}");
        for bad in [
            r#"[{"login_method":{"id":"x"}}]"#,
            r#"[{"everyone":{"extra":1}}]"#,
            r#"[{"ip":{"ip":"10.0.0.1/8"}}]"#,
            r#"[{"ip":{"ip":"300.0.0.0"}}]"#,
            r#"[{"everyone":{},"ip":{"ip":"1.2.3.4"}}]"#,
        ] {
            assert!(
                serde_json::from_str::<Vec<PolicyRule>>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        let net: IpNetwork = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: IpNetwork = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::".parse().unwrap()));
        assert_eq!("::/0".parse::<IpNetwork>().unwrap().to_string(), "::/0");
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "::1/129",
            "10.0.0.0/08x",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn service_auth_admits_listed_tokens_only() {
        let policies = [policy(
            PolicyDecision::NonIdentity,
            PolicyRules::including(vec![token(ALICE)]),
        )];
        assert_eq!(verdict(&policies, &bot(ALICE, "10.0.0.1")), "admit");
        assert_eq!(verdict(&policies, &bot(BOB, "10.0.0.1")), "none");
        assert_eq!(verdict(&policies, &Subject::default()), "none");
    }

    #[test]
    fn require_and_exclude_narrow_include() {
        let rules = PolicyRules {
            include: vec![PolicyRule::AnyValidServiceToken {}],
            require: vec![ip("10.0.0.0/8")],
            exclude: vec![token(BOB)],
        };
        let policies = [policy(PolicyDecision::NonIdentity, rules)];
        assert_eq!(verdict(&policies, &bot(ALICE, "10.2.3.4")), "admit");
        assert_eq!(verdict(&policies, &bot(ALICE, "192.0.2.1")), "none");
        assert_eq!(verdict(&policies, &bot(BOB, "10.2.3.4")), "none");
    }

    #[test]
    fn service_auth_and_bypass_come_before_deny() {
        let deny_all = policy(
            PolicyDecision::Deny,
            PolicyRules::including(vec![PolicyRule::Everyone {}]),
        );
        let service = policy(
            PolicyDecision::NonIdentity,
            PolicyRules::including(vec![token(ALICE)]),
        );
        let bypass = policy(
            PolicyDecision::Bypass,
            PolicyRules::including(vec![ip("127.0.0.0/8")]),
        );
        let policies = [deny_all, service, bypass];
        assert_eq!(verdict(&policies, &bot(ALICE, "10.0.0.1")), "admit");
        assert_eq!(verdict(&policies, &bot(BOB, "10.0.0.1")), "deny");
        let local = Subject {
            ip: Some("127.0.0.1".parse().unwrap()),
            ..Subject::default()
        };
        assert_eq!(verdict(&policies, &local), "bypass");
    }

    #[test]
    fn allow_admits_users_never_service_tokens() {
        let policies = [policy(
            PolicyDecision::Allow,
            PolicyRules::including(vec![
                PolicyRule::Everyone {},
                PolicyRule::EmailDomain {
                    domain: "example.com".into(),
                },
            ]),
        )];
        assert_eq!(verdict(&policies, &bot(ALICE, "10.0.0.1")), "none");
        let user = Subject {
            email: Some("Ann@Example.COM"),
            ..Subject::default()
        };
        assert_eq!(verdict(&policies, &user), "admit");
        let narrow = [policy(
            PolicyDecision::Allow,
            PolicyRules::including(vec![PolicyRule::Email {
                email: "ann@example.com".into(),
            }]),
        )];
        assert_eq!(verdict(&narrow, &user), "admit");
        let other = Subject {
            email: Some("bob@example.com"),
            ..Subject::default()
        };
        assert_eq!(verdict(&narrow, &other), "none");
    }

    #[test]
    fn first_matching_policy_in_a_pass_decides() {
        let allow = policy(
            PolicyDecision::Allow,
            PolicyRules::including(vec![PolicyRule::Everyone {}]),
        );
        let deny = policy(
            PolicyDecision::Deny,
            PolicyRules::including(vec![PolicyRule::Everyone {}]),
        );
        let user = Subject {
            email: Some("a@b.c"),
            ..Subject::default()
        };
        assert_eq!(verdict(&[allow.clone(), deny.clone()], &user), "admit");
        assert_eq!(verdict(&[deny, allow], &user), "deny");
        assert_eq!(verdict(&[], &user), "none");
    }

    mod properties {
        use std::net::{Ipv4Addr, Ipv6Addr};

        use proptest::prelude::*;

        use super::super::*;

        fn rule() -> impl Strategy<Value = PolicyRule> {
            let token = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
            prop_oneof![
                token.prop_map(|token_id| PolicyRule::ServiceToken { token_id }),
                Just(PolicyRule::AnyValidServiceToken {}),
                Just(PolicyRule::Everyone {}),
                (any::<u32>(), 0_u8..=32).prop_map(|(bits, prefix)| PolicyRule::Ip {
                    ip: format!("{}/{prefix}", Ipv4Addr::from(mask32(bits, prefix)))
                        .parse()
                        .unwrap(),
                }),
                "[a-z]{1,8}@[a-z]{1,8}\\.com".prop_map(|email| PolicyRule::Email { email }),
                "[a-z]{1,8}\\.com".prop_map(|domain| PolicyRule::EmailDomain { domain }),
            ]
        }

        proptest! {
            /// Any text: parsing never panics, and what parses prints back to itself (a
            /// full-length prefix printed bare).
            #[test]
            fn any_text_parses_or_is_refused_and_networks_round_trip(text in "\\PC{0,48}") {
                if let Ok(net) = text.parse::<IpNetwork>() {
                    prop_assert_eq!(net.to_string().parse::<IpNetwork>().unwrap(), net);
                }
            }

            /// A network holds exactly the addresses that agree with it on its prefix bits.
            #[test]
            fn networks_hold_what_their_prefix_says(net in any::<u32>(), prefix in 0_u8..=32, probe in any::<u32>()) {
                let network: IpNetwork = format!("{}/{prefix}", Ipv4Addr::from(mask32(net, prefix))).parse().unwrap();
                let inside = mask32(probe, prefix) == mask32(net, prefix);
                prop_assert_eq!(network.contains(IpAddr::V4(probe.into())), inside);
                let mapped = IpAddr::V6(Ipv4Addr::from(probe).to_ipv6_mapped());
                prop_assert_eq!(network.contains(mapped), inside, "IPv4-mapped as IPv4");
            }

            #[test]
            fn v6_networks_hold_what_their_prefix_says(net in any::<u128>(), prefix in 0_u8..=128, probe in any::<u128>()) {
                let base = Ipv6Addr::from(mask128(net, prefix));
                prop_assume!(base.to_ipv4_mapped().is_none());
                let network: IpNetwork = format!("{base}/{prefix}").parse().unwrap();
                let probe_addr = Ipv6Addr::from(probe);
                prop_assume!(probe_addr.to_ipv4_mapped().is_none());
                let inside = mask128(probe, prefix) == mask128(net, prefix);
                prop_assert_eq!(network.contains(IpAddr::V6(probe_addr)), inside);
            }

            /// Rule lists survive the JSON they are stored and served as.
            #[test]
            fn rules_round_trip_through_json(include in prop::collection::vec(rule(), 1..5),
                                             require in prop::collection::vec(rule(), 0..3),
                                             exclude in prop::collection::vec(rule(), 0..3)) {
                let rules = PolicyRules { include, require, exclude };
                prop_assert!(rules.validate().is_ok());
                let json = serde_json::to_string(&rules).unwrap();
                prop_assert_eq!(serde_json::from_str::<PolicyRules>(&json).unwrap(), rules);
            }

            /// Arbitrary JSON never panics the rule parser.
            #[test]
            fn any_json_parses_or_is_refused(text in "\\PC{0,64}") {
                let _ = serde_json::from_str::<PolicyRules>(&text);
                let _ = serde_json::from_str::<Vec<PolicyRule>>(&text);
            }
        }
    }

    #[test]
    fn validation_names_the_list_and_the_rule() {
        let empty = PolicyRules::including(vec![]);
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("include")
        );
        let bad_token = PolicyRules {
            include: vec![PolicyRule::Everyone {}],
            require: vec![],
            exclude: vec![token("abc.access")],
        };
        let err = bad_token.validate().unwrap_err().to_string();
        assert!(err.starts_with("exclude: "), "{err}");
        let bad_email = PolicyRules::including(vec![PolicyRule::Email {
            email: "nobody".into(),
        }]);
        assert!(bad_email.validate().is_err());
        let mut forget = PolicyRules::including(vec![token(ALICE), token(BOB)]);
        assert!(forget.forget_token(ALICE));
        assert!(!forget.forget_token(ALICE));
        assert_eq!(forget.token_ids().collect::<Vec<_>>(), [BOB]);
    }
}
