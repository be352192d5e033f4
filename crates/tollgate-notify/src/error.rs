//! [`NotifyError`]: a notifier could not be configured.

use std::fmt;

/// What is wrong with a notifier's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyErrorKind {
    /// A webhook URL is not an absolute `http://` or `https://` URL without credentials.
    InvalidUrl,
    /// Webhooks are configured without a signing secret, or the secret is too short.
    InvalidSecret,
    /// The HTTP client could not be built.
    HttpClient,
    /// `start` was called outside a tokio runtime.
    NoRuntime,
}

/// A notifier could not be configured: the kind and a message naming what (never a secret).
#[derive(Debug)]
pub struct NotifyError {
    kind: NotifyErrorKind,
    message: String,
}

impl NotifyError {
    pub(crate) fn new(kind: NotifyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> NotifyErrorKind {
        self.kind
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}
