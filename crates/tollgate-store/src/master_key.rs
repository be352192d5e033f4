//! Encryption of signing keys at rest.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;

use crate::error::{Error, ErrorKind};

/// The key that encrypts private signing keys at rest (AES-256-GCM).
///
/// Each private key is sealed with a fresh random nonce, and its `kid` is bound in as associated
/// data, so a sealed key cannot be swapped onto another row unnoticed. Opening with the wrong
/// master key fails with [`ErrorKind::WrongMasterKey`]; it never yields a garbage key.
///
/// Written as 32 bytes in 64 hex digits or in base64, e.g. the output of `openssl rand -hex 32`.
///
/// ```
/// use tollgate_store::MasterKey;
///
/// let key = MasterKey::parse(&"ab".repeat(32))?;
/// assert_eq!(format!("{key:?}"), "MasterKey(..)");
/// assert!(MasterKey::parse("too short").is_err());
/// # Ok::<(), tollgate_store::Error>(())
/// ```
pub struct MasterKey {
    key: RandomizedNonceKey,
}

impl MasterKey {
    /// The environment variable [`from_env`](MasterKey::from_env) reads.
    pub const ENV: &'static str = "TOLLGATE_MASTER_KEY";

    /// A master key from its 32 raw bytes.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidMasterKey`] if the cipher rejects the key (it accepts any 32 bytes).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map(|key| Self { key })
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidMasterKey,
                    "master key rejected by AES-256-GCM",
                )
            })
    }

    /// Parses 64 hex digits or base64 (standard or URL-safe, padded or not) of 32 bytes.
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidMasterKey`]; the message never repeats the text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
        };
        let mut bytes: [u8; 32] =
            decoded
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidMasterKey,
                        "master key must be 32 bytes written as 64 hex digits or base64 \
                     (e.g. `openssl rand -hex 32`)",
                    )
                })?;
        let key = Self::from_bytes(&bytes);
        bytes.fill(0);
        key
    }

    /// The master key in `TOLLGATE_MASTER_KEY`, or `None` when it is unset or empty.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidMasterKey`] if it is set but malformed (or not Unicode).
    pub fn from_env() -> Result<Option<Self>, Error> {
        match std::env::var(Self::ENV) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Self::parse(&text)
                .map(Some)
                .map_err(|e| Error::new(e.kind(), format!("{}: {e}", Self::ENV))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(
                ErrorKind::InvalidMasterKey,
                format!("{} is not valid Unicode", Self::ENV),
            )),
        }
    }

    /// Seals `plaintext` for the row of `kid`: `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| Error::new(ErrorKind::Database, "encrypting a signing key failed"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.append(&mut in_out);
        Ok(sealed)
    }

    /// Opens what [`seal`](Self::seal) made for `kid`.
    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let wrong = || {
            Error::new(
                ErrorKind::WrongMasterKey,
                format!(
                    "signing key {kid} does not decrypt: {} is not the key it was stored with \
                     (or the row is corrupt)",
                    Self::ENV
                ),
            )
        };
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(wrong());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| wrong())?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hex_and_base64_spell_the_same_key() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let sealed = MasterKey::parse(&hex::encode(bytes))
            .unwrap()
            .seal("kid", b"secret key")
            .unwrap();
        for text in [
            base64::engine::general_purpose::STANDARD.encode(bytes),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            format!("  {}\n", hex::encode_upper(bytes)),
        ] {
            let key = MasterKey::parse(&text).unwrap();
            assert_eq!(key.open("kid", &sealed).unwrap(), b"secret key");
        }
    }

    #[test]
    fn rejects_wrong_lengths_without_echoing_them() {
        for text in [
            "",
            "abcd",
            &"a".repeat(63),
            &"a".repeat(66),
            "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0",
        ] {
            let error = MasterKey::parse(text).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidMasterKey);
            if !text.is_empty() {
                assert!(!error.to_string().contains(text));
            }
        }
    }

    #[test]
    fn nonces_are_fresh_and_kid_is_bound() {
        let key = MasterKey::from_bytes(&[9; 32]).unwrap();
        let a = key.seal("kid-a", b"pkcs8").unwrap();
        let b = key.seal("kid-a", b"pkcs8").unwrap();
        assert_ne!(a, b, "two seals of one key must differ (random nonce)");
        assert_eq!(key.open("kid-a", &b).unwrap(), b"pkcs8");
        let moved = key.open("kid-b", &a).unwrap_err();
        assert_eq!(moved.kind(), ErrorKind::WrongMasterKey);
        let other = MasterKey::from_bytes(&[8; 32]).unwrap();
        assert_eq!(
            other.open("kid-a", &a).unwrap_err().kind(),
            ErrorKind::WrongMasterKey
        );
        assert_eq!(
            key.open("kid-a", &a[..20]).unwrap_err().kind(),
            ErrorKind::WrongMasterKey
        );
    }
}
