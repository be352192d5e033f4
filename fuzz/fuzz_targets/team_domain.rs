//! `TeamDomain::parse` over arbitrary text: never panics; a parsed domain's canonical
//! spelling parses to the same domain (and `Display` writes it); it is `http(s)://host[:port]`
//! with a lowercase host, no default port and no trailing slash; the input in upper case is
//! the same domain; an https domain on the default port is also its bare host name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::TeamDomain;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(domain) = TeamDomain::parse(input) else {
        return;
    };
    let spelled = domain.as_str();
    assert_eq!(domain.to_string(), spelled);
    let again = TeamDomain::parse(spelled).expect("the canonical spelling parses");
    assert_eq!(again, domain);
    assert_eq!(again.as_str(), spelled);

    let scheme = if domain.is_https() {
        "https://"
    } else {
        "http://"
    };
    let host = domain.host();
    assert!(!host.is_empty());
    assert_eq!(host, host.to_ascii_lowercase());
    let expected = match domain.port() {
        Some(port) => {
            assert_ne!(port, if domain.is_https() { 443 } else { 80 });
            format!("{scheme}{host}:{port}")
        }
        None => format!("{scheme}{host}"),
    };
    assert_eq!(spelled, expected);
    assert!(!spelled.ends_with('/'));
    assert_eq!(
        domain.certs_url(),
        format!("{spelled}/cdn-cgi/access/certs")
    );
    let _ = domain.is_loopback();

    assert_eq!(
        TeamDomain::parse(&input.to_ascii_uppercase()).as_ref(),
        Ok(&domain),
        "upper case is the same domain"
    );
    if domain.is_https() && domain.port().is_none() {
        assert_eq!(TeamDomain::parse(host).as_ref(), Ok(&domain));
    }
});
