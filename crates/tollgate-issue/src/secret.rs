//! Service-token secrets and client IDs.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// The prefix of every secret tollgate generates.
pub const SECRET_PREFIX: &str = "tgs_";

const RANDOM_LEN: usize = 32;
const ENCODED_LEN: usize = 58; // base32 of 36 bytes, unpadded
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A service token's client secret. `Debug` and `Display` never show it; read it with
/// [`expose_secret`](ClientSecret::expose_secret) exactly where it must leave the process (shown
/// once to the operator, or sent in `CF-Access-Client-Secret`).
///
/// A client ID is `<32 lowercase hex>.access`, as Cloudflare writes it. A client secret is shown
/// once, at creation, and stored only as its SHA-256 hash (right for a 256-bit random value: no
/// salt or slow hash is needed when the input cannot be guessed). Hashes are compared in
/// constant time.
///
/// ## The secret format
///
/// ```text
/// tgs_ 6qcl4gqg…  (58 characters of base32)
/// └─┬┘ └──────────────┬───────────────┘
/// prefix   base32 (RFC 4648 alphabet, lowercase, no padding) of
///          32 random bytes ‖ CRC-32 (IEEE) of those bytes, big-endian
/// ```
///
/// 62 characters in all, letters and digits only (a double click selects the whole secret).
/// Like GitHub's `ghp_` tokens and Cloudflare's `cfast_` secrets, the prefix lets secret scanners
/// find leaked secrets and the checksum lets any tool reject a mistyped or truncated secret
/// offline ([`ClientSecret::parse`]), without a lookup. Legacy Cloudflare secrets (64 hex) are
/// accepted on import.
///
/// ```
/// use tollgate_issue::ClientSecret;
///
/// let secret = ClientSecret::generate();
/// assert!(secret.expose_secret().starts_with("tgs_"));
/// assert_eq!(format!("{secret}"), "tgs_[redacted]");
/// assert!(ClientSecret::parse(secret.expose_secret()).is_ok());
/// assert!(secret.matches(&secret.hash()));
/// ```
#[derive(Clone)]
pub struct ClientSecret(String);

/// Why a string is not an acceptable client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFormatError {
    /// Neither `tgs_` + 58 base32 characters nor 64 hex digits.
    #[error("secret is neither a tgs_ secret nor 64 hex digits")]
    UnknownFormat,
    /// A `tgs_` secret whose checksum does not match: mistyped or truncated.
    #[error("secret checksum does not match (mistyped or truncated)")]
    BadChecksum,
}

impl ClientSecret {
    /// A new random secret in the `tgs_` format, from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(generate_prefixed(SECRET_PREFIX))
    }

    /// Checks the format of a secret given by an operator (import, CLI): a `tgs_` secret with a
    /// valid checksum, or a legacy 64-hex Cloudflare secret (any case). Surrounding whitespace
    /// is ignored.
    pub fn parse(secret: &str) -> Result<Self, SecretFormatError> {
        let secret = secret.trim();
        if let Some(body) = secret.strip_prefix(SECRET_PREFIX) {
            let bytes = base32_decode(body).ok_or(SecretFormatError::UnknownFormat)?;
            if bytes.len() != RANDOM_LEN + 4 {
                return Err(SecretFormatError::UnknownFormat);
            }
            let (random, sum) = bytes.split_at(RANDOM_LEN);
            if crc32(random).to_be_bytes() != sum {
                return Err(SecretFormatError::BadChecksum);
            }
            return Ok(Self(secret.to_owned()));
        }
        if secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self(secret.to_owned()));
        }
        Err(SecretFormatError::UnknownFormat)
    }

    /// The secret itself. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the secret: what a store keeps.
    pub fn hash(&self) -> [u8; 32] {
        hash_secret(&self.0)
    }

    /// Whether this secret hashes to `hash`, compared in constant time.
    pub fn matches(&self, hash: &[u8; 32]) -> bool {
        secret_matches(&self.0, hash)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.starts_with(SECRET_PREFIX) {
            f.write_str("tgs_[redacted]")
        } else {
            f.write_str("[redacted]")
        }
    }
}

/// `prefix` followed by the base32 of 32 random bytes and their CRC-32: the format of every
/// secret tollgate generates (client secrets `tgs_`, API tokens `tga_`).
pub(crate) fn generate_prefixed(prefix: &str) -> String {
    let mut bytes = [0u8; RANDOM_LEN + 4];
    fill_random(&mut bytes[..RANDOM_LEN]);
    let crc = crc32(&bytes[..RANDOM_LEN]);
    bytes[RANDOM_LEN..].copy_from_slice(&crc.to_be_bytes());
    let mut out = String::with_capacity(prefix.len() + ENCODED_LEN);
    out.push_str(prefix);
    base32_encode(&bytes, &mut out);
    out
}

/// SHA-256 of a presented secret.
pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
    out
}

/// Whether a presented secret hashes to `hash` (constant-time comparison of the hashes).
pub(crate) fn secret_matches(secret: &str, hash: &[u8; 32]) -> bool {
    hash_secret(secret).ct_eq(hash).into()
}

/// A new client ID: `<32 lowercase hex>.access`.
pub fn generate_client_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    format!("{}.access", hex::encode(bytes))
}

/// A random version-4 UUID, lowercase and hyphenated: what record ids (tokens, applications,
/// policies) are.
///
/// ```
/// let id = tollgate_issue::random_uuid();
/// assert_eq!(id.len(), 36);
/// assert_eq!(&id[14..15], "4");
/// ```
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `len` random bytes as lowercase hex (AUD tags).
pub(crate) fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    // SystemRandom reads the OS CSPRNG; it only fails if the OS has no randomness at all, in
    // which case nothing secure can be done and continuing would mint guessable secrets.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random number generator failed");
}

fn base32_encode(bytes: &[u8], out: &mut String) {
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() != ENCODED_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    // Leftover bits must be zero padding.
    if buffer & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let a = ClientSecret::generate();
        let b = ClientSecret::generate();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 62);
        assert!(
            a.expose_secret()[4..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
        assert_eq!(
            ClientSecret::parse(a.expose_secret())
                .expect("valid")
                .expose_secret(),
            a.expose_secret()
        );
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let secret = ClientSecret::generate();
        let mut typo = secret.expose_secret().as_bytes().to_vec();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert_eq!(
            ClientSecret::parse(&typo).map(|_| ()),
            Err(SecretFormatError::BadChecksum)
        );
        let truncated = &secret.expose_secret()[..40];
        assert_eq!(
            ClientSecret::parse(truncated).map(|_| ()),
            Err(SecretFormatError::UnknownFormat)
        );
    }

    #[test]
    fn legacy_hex_secrets_are_accepted_on_import() {
        let legacy = "0f6e4b4c9a1d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7";
        let secret = ClientSecret::parse(legacy).expect("legacy hex");
        assert!(secret.matches(&hash_secret(legacy)));
        assert_eq!(secret.to_string(), "[redacted]");
        assert!(ClientSecret::parse("nothex").is_err());
    }

    #[test]
    fn debug_and_display_redact() {
        let secret = ClientSecret::generate();
        let shown = format!("{secret:?} {secret} {:?}", Some(&secret));
        assert!(!shown.contains(&secret.expose_secret()[4..]));
    }

    #[test]
    fn hashes_compare() {
        let secret = ClientSecret::generate();
        let hash = secret.hash();
        assert!(secret_matches(secret.expose_secret(), &hash));
        assert!(!secret_matches("tgs_other", &hash));
    }

    #[test]
    fn ids() {
        let id = generate_client_id();
        use tollgate_core::request::is_client_id;
        assert!(is_client_id(&id), "{id}");
        assert!(!is_client_id("abc.access"));
        assert!(!is_client_id(&id.to_uppercase()));
        let uuid = random_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_eq!(random_hex(32).len(), 64);
    }
}
