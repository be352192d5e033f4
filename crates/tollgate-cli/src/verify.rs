//! `tollgate verify`: the manual check (fetch the certs, decode, check signature, `iss`, `aud`,
//! times) in one step.

// Argument docs are the `--help` text, where a bare URL reads best.
#![allow(rustdoc::bare_urls)]

use std::sync::Arc;

use base64::Engine as _;
use clap::Args;
use tollgate_core::{ManualClock, TeamDomain};
use tollgate_verify::{RemoteKeySource, StaticKeySource, Verifier, VerifyConfig};

use crate::CliResult;

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The expected issuer, e.g. https://team.cloudflareaccess.com. Required unless --certs
    /// pins the keys (then it defaults to the token's own `iss`, with a warning): a token never
    /// gets to say where the keys that vouch for it live.
    #[arg(long, value_name = "URL")]
    team_domain: Option<TeamDomain>,
    /// An accepted AUD tag (repeatable) [default: the token's own `aud`, with a warning].
    #[arg(long = "aud", value_name = "TAG")]
    auds: Vec<String>,
    /// Where the keys are: a certs URL, or a file holding a JWK Set / certs document or PEM
    /// public keys [default: TEAM_DOMAIN/cdn-cgi/access/certs].
    #[arg(long, value_name = "URL|FILE")]
    certs: Option<String>,
    /// Check as of this time (unix seconds) instead of now.
    #[arg(long, value_name = "UNIX_TIME")]
    at: Option<i64>,
    /// The token (the CF_Authorization cookie or Cf-Access-Jwt-Assertion header value).
    token: String,
}

/// The token's claims, read without checking anything: only to default `iss` and `aud`.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) async fn run(args: VerifyArgs) -> CliResult {
    let token = args.token.trim();
    let claims = unverified_claims(token);
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).cloned();

    let certs_url = args.team_domain.as_ref().map(TeamDomain::certs_url);
    let issuer = match args.team_domain {
        Some(domain) => domain.as_str().to_owned(),
        None if args.certs.is_none() => {
            // Fetching keys from the token's own `iss` would let anyone sign a token with their
            // own key, host it, and pass (and would make us fetch a URL of the token's choosing).
            return Err(
                "pass --team-domain (the issuer to trust) or --certs (the keys to trust): \
                 the token's own iss is not trusted to say where its keys are"
                    .into(),
            );
        }
        None => {
            let Some(serde_json::Value::String(iss)) = claim("iss") else {
                return Err("token has no readable `iss`: pass --team-domain".into());
            };
            eprintln!(
                "tollgate: warning: issuer not pinned; accepting the token's iss {iss} as signed by the keys of --certs (pass --team-domain)"
            );
            iss
        }
    };
    let auds = if args.auds.is_empty() {
        let auds: Vec<String> = match claim("aud") {
            Some(serde_json::Value::String(aud)) => vec![aud],
            Some(serde_json::Value::Array(list)) => list
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        if auds.is_empty() {
            return Err("token has no readable `aud`: pass --aud".into());
        }
        eprintln!(
            "tollgate: warning: audience not checked; accepting the token's own aud (pass --aud)"
        );
        auds
    } else {
        args.auds
    };

    let mut config = VerifyConfig::new(issuer).audiences(auds);
    if let Some(at) = args.at {
        config = config.clock(Arc::new(ManualClock::at_unix(at)));
    }
    let Some(certs) = args.certs.or(certs_url) else {
        return Err("pass --team-domain or --certs".into());
    };
    let verifier = if certs.starts_with("https://") || certs.starts_with("http://") {
        Verifier::new(config, RemoteKeySource::new(&certs)?)?
    } else {
        let text = std::fs::read_to_string(&certs)
            .map_err(|e| format!("cannot read certs file {certs}: {e}"))?;
        let source = if text.trim_start().starts_with('{') {
            StaticKeySource::from_jwks_json(text.as_bytes())?
        } else {
            StaticKeySource::from_pem(&text)?
        };
        Verifier::new(config, source)?
    };
    let identity = verifier
        .verify(token)
        .await
        .map_err(|rejection| format!("token rejected: {rejection}"))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&identity).map_err(|e| e.to_string())?
    );
    Ok(())
}
