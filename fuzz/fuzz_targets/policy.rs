//! Access policies over arbitrary input: the first line is a CIDR or address for
//! `IpNetwork::from_str`, the rest a JSON document for `PolicyRules`, then the bytes left make a
//! client address to evaluate against. Never panics; a network that parses prints back to
//! itself and holds its own address; rules that parse survive their JSON (what stores keep and
//! the API serves); evaluation of what parsed follows the written rule: a policy matches when
//! one include, every require and no exclude rule match.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use tollgate_issue::policy::{Subject, Verdict, evaluate};
use tollgate_issue::{AppPolicy, IpNetwork, PolicyDecision, PolicyRecord, PolicyRule, PolicyRules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(net) = first.parse::<IpNetwork>() {
        let again: IpNetwork = net.to_string().parse().expect("a network's spelling parses");
        assert_eq!(again, net);
        let base: IpAddr = net
            .to_string()
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("the network address");
        assert!(net.contains(base), "{net} holds its own address");
    }
    let Ok(rules) = serde_json::from_str::<PolicyRules>(rest) else {
        return;
    };
    let json = serde_json::to_string(&rules).expect("rules serialise");
    assert_eq!(serde_json::from_str::<PolicyRules>(&json).ok(), Some(rules.clone()));
    let _ = rules.validate();

    let ip: IpAddr = if data.len() >= 4 {
        let b = &data[data.len() - 4..];
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        IpAddr::from([127, 0, 0, 1])
    };
    let token = rules.token_ids().next().map(str::to_owned);
    let subject = Subject {
        service_token_id: token.as_deref(),
        email: Some("ann@example.com"),
        ip: Some(ip),
    };
    let matches = |rule: &PolicyRule| match rule {
        PolicyRule::ServiceToken { token_id } => Some(token_id.as_str()) == token.as_deref(),
        PolicyRule::AnyValidServiceToken {} => token.is_some(),
        PolicyRule::Ip { ip: net } => net.contains(ip),
        PolicyRule::Everyone {} => true,
        PolicyRule::Email { email } => email.eq_ignore_ascii_case("ann@example.com"),
        PolicyRule::EmailDomain { domain } => domain.eq_ignore_ascii_case("example.com"),
    };
    let expected = rules.include.iter().any(matches)
        && rules.require.iter().all(matches)
        && !rules.exclude.iter().any(matches);
    for decision in [PolicyDecision::Deny, PolicyDecision::Bypass] {
        let policies = [AppPolicy {
            precedence: 1,
            policy: PolicyRecord {
                id: "00000000-0000-4000-8000-000000000001".into(),
                name: "fuzzed".into(),
                decision,
                rules: rules.clone(),
                reusable: true,
                created_at: 0,
                updated_at: 0,
            },
        }];
        let verdict = evaluate(&policies, &subject);
        assert_eq!(verdict != Verdict::NoMatch, expected, "{decision}: {rules:?}");
    }
});
