//! The gateway's application matching over arbitrary text: the first line is a request's
//! `Host`, the second its path, every further line an application domain. Never panics; a
//! domain that parses spells itself canonically (its spelling parses to the same domain, upper
//! case is the same domain) and the table refuses it exactly when its spelling is in already;
//! a path that normalises is normal (normalising it again changes nothing; no empty, `.` or
//! `..` segment, no backslash, no escape of `/`, `\`, NUL or an unreserved character, hex in
//! upper case); and `find` answers what a plain reading of the rules does: the domains whose
//! host, port and path (on segment boundaries, case-insensitively) cover the request, the most
//! specific of them — an exact host over a wildcard, then the longer path, then a named port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::app_domain::{AppDomain, DomainTable, normalize_path, request_host};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let host = lines.next().unwrap_or_default();
    let raw_path = lines.next().unwrap_or_default();

    let mut table = DomainTable::new();
    let mut domains: Vec<AppDomain> = Vec::new();
    for line in lines.take(16) {
        let Ok(domain) = AppDomain::parse(line) else {
            continue;
        };
        let again = AppDomain::parse(domain.as_str()).expect("a canonical spelling parses");
        assert_eq!(again, domain);
        assert_eq!(domain.to_string(), domain.as_str());
        if let Ok(upper) = AppDomain::parse(&line.to_ascii_uppercase()) {
            // Paths keep their case in the spelling; the host does not.
            assert_eq!(upper.host(), domain.host());
            assert_eq!(upper.port(), domain.port());
            assert!(upper.path().eq_ignore_ascii_case(domain.path()));
        }
        let known = domains.iter().any(|d| d.as_str() == domain.as_str());
        assert_eq!(
            table.insert(domain.clone(), domains.len()).is_err(),
            known,
            "refused exactly when its spelling is in already: {domain}"
        );
        if !known {
            domains.push(domain);
        }
    }
    assert_eq!(table.len(), domains.len());

    let Ok(path) = normalize_path(raw_path) else {
        return;
    };
    assert_normal(&path);
    assert_eq!(
        normalize_path(&path).ok().as_deref(),
        Some(path.as_ref()),
        "idempotent"
    );

    let found = table.find(host, &path).map(|(d, i)| {
        assert_eq!(&domains[*i], d, "the value stored with the domain");
        d.as_str().to_owned()
    });
    let expected = request_host(host).and_then(|(host, port)| {
        let covering = domains.iter().filter(|d| {
            let host_matches = if d.is_wildcard() {
                host.split_once('.')
                    .is_some_and(|(label, parent)| !label.is_empty() && parent == d.host())
            } else {
                host == d.host()
            };
            let port_matches = d.port().is_none() || d.port() == port;
            let prefix = d.path();
            let path_matches = path.len() >= prefix.len()
                && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
                && (path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/');
            host_matches && port_matches && path_matches
        });
        covering
            .max_by_key(|d| (!d.is_wildcard(), d.path().len(), d.port().is_some()))
            .map(|d| d.as_str().to_owned())
    });
    // Among equally specific covers (same host kind, path length and port presence) the
    // table's choice is one of them: compare the specificity, and the cover itself.
    match (&found, &expected) {
        (Some(found), Some(expected)) if found != expected => {
            let spec = |s: &str| {
                let d = AppDomain::parse(s).expect("a table domain");
                (!d.is_wildcard(), d.path().len(), d.port().is_some())
            };
            assert_eq!(
                spec(found),
                spec(expected),
                "{found} chosen over {expected}"
            );
        }
        _ => assert_eq!(
            found.is_some(),
            expected.is_some(),
            "{found:?} vs {expected:?}"
        ),
    }
});

fn assert_normal(path: &str) {
    assert!(path.starts_with('/'), "{path}");
    assert!(!path.contains('\\'), "{path}");
    assert!(!path.contains("//"), "{path}");
    for segment in path[1..].split('/') {
        let name = segment.split(';').next().unwrap_or(segment);
        assert!(!matches!(name, "." | ".."), "{path}");
    }
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let hex = bytes
            .get(i + 1..i + 3)
            .expect("two characters after each %");
        assert!(
            hex.iter()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
            "{path}"
        );
        let value = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16)
            .expect("two hex digits");
        assert!(
            !(value.is_ascii_alphanumeric()
                || matches!(value, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | 0)),
            "{path}: %{value:02X} left encoded"
        );
    }
}
