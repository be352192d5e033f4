//! Writes the seed corpus, `fuzz/seeds/<target>/`, from the repository's own test fixtures:
//! tollgate-test's claims (`service_payload`, `user_claims`), the Wycheproof vectors in
//! `tests/fixtures/wycheproof/` (their JWS tokens and JWK sets), tokens signed with the
//! fixture key, and the header, cookie and single-header examples of `tollgate_core::request`'s
//! docs and unit tests.
//!
//! Run with: `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (rewrites the folder).
#![allow(
    clippy::unwrap_used,
    reason = "a generator: failing loudly is the point"
)]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate_fuzz::{AUD, CLIENT_ID, ISS, KID, NOW, header, public_jwk, sign};
use tollgate_test::claims::{service_claims, user_claims};
use tollgate_test::{service_payload, user_payload, wycheproof};

struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Self {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        Self { dir, count: 0 }
    }

    fn add(&mut self, name: &str, bytes: impl AsRef<[u8]>) {
        self.count += 1;
        fs::write(self.dir.join(format!("{:03}-{name}", self.count)), bytes).unwrap();
    }
}

/// Every compact JWS in the Wycheproof JWS vectors.
fn wycheproof_tokens() -> Vec<String> {
    let mut tokens = Vec::new();
    for group in wycheproof::json_web_signature_test()["testGroups"]
        .as_array()
        .unwrap()
    {
        for test in group["tests"].as_array().unwrap() {
            if let Some(jws) = test["jws"].as_str() {
                tokens.push(jws.to_owned());
            }
        }
    }
    tokens
}

/// Every JWK set (public and private) in the Wycheproof JWK vectors.
fn wycheproof_key_sets() -> Vec<Value> {
    let mut sets = Vec::new();
    for group in wycheproof::json_web_key_test()["testGroups"]
        .as_array()
        .unwrap()
    {
        for member in ["private", "public"] {
            if group[member].get("keys").is_some() {
                sets.push(group[member].clone());
            }
        }
        for test in group["tests"].as_array().into_iter().flatten() {
            if let Some(keys) = test.get("keys").or_else(|| test.get("jwks")) {
                sets.push(json!({ "keys": keys }));
            }
        }
    }
    sets
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let head = header();
    let service = service_payload(NOW, 3600);
    let user = user_claims(ISS, "jane@example.com", NOW, 3600).to_string();
    let claims = [
        ("service", service.clone()),
        ("user", user.clone()),
        ("user-custom", {
            let mut c = user_claims(ISS, "jane@example.com", NOW, 3600);
            c["groups"] = json!(["eng"]);
            c["custom"] = json!({"team": "core", "n": 1.5});
            c["policy_id"] = json!("5c1e2b21-2b9c-4ea8-a1c6-b2f26ad1e1f3");
            c.to_string()
        }),
        ("expired", service_payload(NOW - 7200, 3600)),
        ("future", service_payload(NOW + 3600, 3600)),
        ("long-lived", service_payload(NOW, 40 * 86_400)),
        (
            "other-issuer",
            service_claims("https://evil.example.com", NOW, 3600).to_string(),
        ),
        (
            "float-times",
            format!(
                r#"{{"aud":"{AUD}","exp":{}.5,"iat":{NOW}.25,"iss":"{ISS}","common_name":"{CLIENT_ID}"}}"#,
                NOW + 60
            ),
        ),
        (
            "duplicate-exp",
            format!(
                r#"{{"aud":"{AUD}","exp":{},"exp":{},"iss":"{ISS}","sub":"u"}}"#,
                NOW + 60,
                NOW + 99
            ),
        ),
        (
            "null-nbf",
            format!(
                r#"{{"aud":["{AUD}"],"exp":{},"nbf":null,"iss":"{ISS}","sub":"u"}}"#,
                NOW + 60
            ),
        ),
        (
            "org-type",
            format!(
                r#"{{"type":"org","aud":["{AUD}"],"exp":{},"iss":"{ISS}","email":"a@b.c"}}"#,
                NOW + 60
            ),
        ),
    ];

    let mut set = Corpus::new(&root, "claims");
    for (name, payload) in &claims {
        set.add(name, payload);
    }
    set.add("not-object", "[1,2]");
    set.add("trailing", format!("{service} x"));

    let mut set = Corpus::new(&root, "jws_signed");
    for (name, payload) in &claims {
        set.add(name, payload); // under the standard header
        set.add(&format!("{name}-with-header"), format!("{head}\0{payload}"));
    }
    for (name, h) in [
        ("no-typ", format!(r#"{{"alg":"RS256","kid":"{KID}"}}"#)),
        (
            "typ-lower",
            format!(r#"{{"alg":"RS256","kid":"{KID}","typ":"jwt"}}"#),
        ),
        (
            "crit",
            format!(r#"{{"alg":"RS256","kid":"{KID}","crit":["exp"]}}"#),
        ),
        (
            "b64-false",
            format!(r#"{{"alg":"RS256","kid":"{KID}","b64":false}}"#),
        ),
        (
            "jku",
            format!(r#"{{"alg":"RS256","kid":"{KID}","jku":"https://evil.example/certs"}}"#),
        ),
        (
            "dup-alg",
            format!(r#"{{"alg":"HS256","alg":"RS256","kid":"{KID}"}}"#),
        ),
        ("none", format!(r#"{{"alg":"none","kid":"{KID}"}}"#)),
        ("other-kid", r#"{"alg":"RS256","kid":"key-a"}"#.to_owned()),
    ] {
        set.add(name, format!("{h}\0{service}"));
    }

    let mut set = Corpus::new(&root, "jws_verify");
    for (name, payload) in &claims {
        set.add(name, sign(head.as_bytes(), payload.as_bytes()));
    }
    set.add(
        "user-payload",
        sign(
            head.as_bytes(),
            user_payload("jane@example.com", NOW, 60).as_bytes(),
        ),
    );
    for (i, token) in wycheproof_tokens().iter().enumerate().step_by(8) {
        set.add(&format!("wycheproof-{i}"), token);
    }
    set.add("two-dots", "a.b.c");
    set.add(
        "unsigned",
        format!(
            "{}.{}.",
            tollgate_fuzz::b64(&head),
            tollgate_fuzz::b64(&service)
        ),
    );

    let mut set = Corpus::new(&root, "jwks");
    let fixture = public_jwk().clone();
    set.add("fixture", json!({ "keys": [fixture] }).to_string());
    set.add(
        "cloudflare-shape",
        json!({
            "keys": [fixture, tollgate_test::keys()[0].jwk()],
            "public_cert": {"kid": KID, "cert": "-----BEGIN CERTIFICATE-----\n…"},
            "public_certs": [],
        })
        .to_string(),
    );
    let mut bare = fixture.clone();
    bare.as_object_mut()
        .unwrap()
        .retain(|k, _| ["kid", "kty", "n", "e"].contains(&k.as_str()));
    set.add("bare", json!({ "keys": [bare] }).to_string());
    let mut private = wycheproof::signing_key();
    set.add("private", json!({ "keys": [private.clone()] }).to_string());
    private
        .as_object_mut()
        .unwrap()
        .insert("use".into(), json!("enc"));
    set.add("enc", json!({ "keys": [private] }).to_string());
    set.add("same-kid-twice", json!({ "keys": [fixture, tollgate_test::keys()[1].jwk().as_object().unwrap().clone().into_iter().map(|(k, v)| if k == "kid" { (k, json!(KID)) } else { (k, v) }).collect::<serde_json::Map<_, _>>()] }).to_string());
    set.add(
        "oct",
        r#"{"keys":[{"kid":"a","kty":"oct","k":"c2VjcmV0"}]}"#,
    );
    set.add("empty", r#"{"keys":[]}"#);
    for (i, keys) in wycheproof_key_sets().iter().enumerate() {
        set.add(&format!("wycheproof-{i}"), keys.to_string());
    }

    let token = sign(head.as_bytes(), service.as_bytes());
    let json =
        format!(r#"{{"cf-access-client-id":"{CLIENT_ID}","cf-access-client-secret":"s3cret"}}"#);
    let mut set = Corpus::new(&root, "request");
    // First byte: bits 0-2 pick the locations read, bit 3 reads `authorization` as the single header.
    for (config, name, text) in [
        (
            0u8,
            "assertion-and-cookie",
            format!(
                "cf-access-jwt-assertion: {token}\ncookie: theme=dark; CF_Authorization={token}\n"
            ),
        ),
        (
            1,
            "two-cookie-lines",
            format!("cookie: theme=dark; CF_Authorization=\ncookie: CF_Authorization={token}\n"),
        ),
        (
            0,
            "different",
            "cf-access-token: eyJ.eyJ.sig\ncf-access-token: two\n".to_owned(),
        ),
        (
            2,
            "quoted-cookie",
            "cookie: CF_Authorization=\"q\"; a=b\ncookie:  CF_Authorization = q ; c=d\n".to_owned(),
        ),
        (
            0,
            "pair",
            format!(
                "cf-access-client-id: {CLIENT_ID}\ncf-access-client-secret: s3cret\ncookie: CF_Authorization=stale\n"
            ),
        ),
        (8, "single-header", format!("authorization: {json}\n")),
        (
            9,
            "single-and-pair",
            format!(
                "authorization: {json}\ncf-access-client-id: {CLIENT_ID}\ncf-access-client-secret: s3cret\n"
            ),
        ),
        (
            8,
            "bearer",
            "authorization: Bearer x\ncf-access-token: t\n".to_owned(),
        ),
        (0, "pair-half", "cf-access-client-id: id\n".to_owned()),
        (
            1,
            "spellings",
            "CF-Access-Client-Id: id\nCf-Access-Client-Secret:  s \nCF-ACCESS-TOKEN: t\n"
                .to_owned(),
        ),
    ] {
        let mut bytes = vec![config];
        bytes.extend_from_slice(text.as_bytes());
        set.add(name, bytes);
    }

    let mut set = Corpus::new(&root, "single_header");
    for (name, text) in [
        ("docs", json.clone()),
        ("title-case", r#"{"CF-Access-Client-Id":"i","CF-Access-Client-Secret":"s"}"#.to_owned()),
        ("underscores", r#" {"cf_access_client_id":"i","cf_access_client_secret":"s"}"#.to_owned()),
        ("two-spellings", r#"{"cf-access-client-id":"i","cf_access_client_id":"j","cf-access-client-secret":"s"}"#.to_owned()),
        ("duplicate", r#"{"cf-access-client-id":"i","cf-access-client-id":"i","cf-access-client-secret":"s"}"#.to_owned()),
        ("nested", r#"{"cf-access-client-id":"i","cf-access-client-secret":"s","x":{"nested":"v"}}"#.to_owned()),
        ("trailing", r#"{"cf-access-client-id":"i","cf-access-client-secret":"s"} trailing"#.to_owned()),
        ("escaped", r#"{"cf-access-client-\u0069d":"i","cf-access-client-secret":" s "}"#.to_owned()),
        ("number", r#"{"cf-access-client-id":1,"cf-access-client-secret":"s"}"#.to_owned()),
        ("bearer", "Bearer x".to_owned()),
    ] {
        set.add(name, text);
    }

    // Structured: `arbitrary` reads these bytes as members; a few random-looking starts.
    let mut set = Corpus::new(&root, "single_header_spellings");
    for (i, bytes) in [
        &b"\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00i\x01\x00\x00\x00\x00\x00\x00\x00\x00s"[..],
        b"\x00",
        b"\xff\xff\xff\xff",
    ]
    .iter()
    .enumerate()
    {
        set.add(&format!("start-{i}"), bytes);
    }

    let mut set = Corpus::new(&root, "team_domain");
    for (name, text) in [
        ("bare", "team.cloudflareaccess.com"),
        ("mixed-case", "https://Team.CloudflareAccess.com/"),
        ("http-port", "http://LOCALHOST:8080"),
        ("ipv4", "http://127.0.0.1:8080"),
        ("ipv6", "http://[::1]:3000"),
        ("default-port", "https://team.example.com:443"),
        ("path", "https://team.example.com/path"),
        ("user", "https://user@team.example.com"),
        ("spaces", "  team.example.com/ "),
    ] {
        set.add(name, text);
    }
    println!("seeds written to {}", root.display());
}
