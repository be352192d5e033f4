//! Webhook signatures: HMAC-SHA256 over `"<timestamp>.<body>"`, sent as
//! `Tollgate-Signature: v1=<hex>` beside `Tollgate-Timestamp`.

use std::fmt;

use aws_lc_rs::hmac;

use crate::error::{NotifyError, NotifyErrorKind};

/// The header with the signature: `v1=<64 lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "tollgate-signature";
/// The header with the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "tollgate-timestamp";
/// The header with the event's id, the same on every retry (receivers dedupe on it).
pub const EVENT_ID_HEADER: &str = "tollgate-event-id";
/// The header with the event's kind (`token.expiring`, …).
pub const EVENT_HEADER: &str = "tollgate-event";

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The secret webhooks are signed with. Its `Debug` output does not show it.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl WebhookSecret {
    /// A secret of at least [`MIN_SECRET_LEN`] bytes.
    ///
    /// # Errors
    /// [`NotifyErrorKind::InvalidSecret`] if it is shorter.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, NotifyError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(NotifyError::new(
                NotifyErrorKind::InvalidSecret,
                format!("the webhook secret must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `Tollgate-Signature` value for `body` signed at `timestamp` (Unix seconds):
/// `v1=` and the lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"`.
///
/// ```
/// use tollgate_notify::{WebhookSecret, sign, verify_signature};
///
/// let secret = WebhookSecret::new("0123456789abcdef")?;
/// let signature = sign(&secret, 1_700_000_000, b"{}");
/// assert!(signature.starts_with("v1="));
/// assert!(verify_signature(&secret, "1700000000", &signature, b"{}", 1_700_000_100, 300));
/// assert!(!verify_signature(&secret, "1700000000", &signature, b"{ }", 1_700_000_100, 300));
/// # Ok::<(), tollgate_notify::NotifyError>(())
/// ```
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    let mut context = hmac::Context::with_key(&secret.0);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1={}", hex::encode(context.sign().as_ref()))
}

/// A receiver's check: `signature` (the `Tollgate-Signature` value, possibly several
/// comma-separated `v1=` entries) is a valid signature of `body` at `timestamp` (the
/// `Tollgate-Timestamp` value), and that time is within `tolerance_secs` of `now` (replays of
/// old requests fail). The comparison is constant-time.
pub fn verify_signature(
    secret: &WebhookSecret,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let Ok(at) = timestamp.parse::<i64>() else {
        return false;
    };
    if now.abs_diff(at) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    signature
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("v1="))
        .filter_map(|hex_tag| hex::decode(hex_tag).ok())
        .any(|tag| hmac::verify(&secret.0, &message, &tag).is_ok())
}
