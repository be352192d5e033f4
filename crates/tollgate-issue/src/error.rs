//! [`ManageError`]: why a management operation (tokens, applications, keys) failed.

use std::fmt;

use crate::store::StoreError;

/// The category of a [`ManageError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManageErrorKind {
    /// No token / application with that identifier.
    NotFound,
    /// A token / application with that name or identifier already exists, or the record kept
    /// changing under a compare-and-swap update (other writers won every retry).
    Conflict,
    /// An argument is out of range or malformed (empty name, grace period outside 1 h–30 d,
    /// malformed client ID or secret, session duration too long).
    InvalidArgument,
    /// The store failed.
    Store,
    /// Key generation or certificate creation failed.
    Crypto,
    /// The record is still referenced and cannot be deleted: a policy names the service token,
    /// or an application links the reusable policy.
    InUse,
}

/// A management operation failed. Opaque: inspect it with [`kind`](ManageError::kind); its
/// message names the object (client ID, application name) but never a secret.
#[derive(Debug)]
pub struct ManageError {
    kind: ManageErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ManageError {
    pub(crate) fn new(kind: ManageErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// [`NotFound`](ManageErrorKind::NotFound): `what` (a record, named) does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(ManageErrorKind::NotFound, format!("{what} not found"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ManageErrorKind::InvalidArgument, message)
    }

    pub(crate) fn crypto(
        message: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: ManageErrorKind::Crypto,
            message: message.to_owned(),
            source: Some(source.into()),
        }
    }

    /// The category.
    pub fn kind(&self) -> ManageErrorKind {
        self.kind
    }
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<StoreError> for ManageError {
    fn from(err: StoreError) -> Self {
        let kind = match &err {
            StoreError::Conflict(_) => ManageErrorKind::Conflict,
            StoreError::NotFound(_) => ManageErrorKind::NotFound,
            StoreError::InUse(_) => ManageErrorKind::InUse,
            _ => ManageErrorKind::Store,
        };
        Self {
            kind,
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}
