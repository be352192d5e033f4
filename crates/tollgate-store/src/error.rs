//! The error of opening a store, and how backend failures become [`StoreError`]s.

use std::fmt;

use tollgate_issue::StoreError;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database URL names no backend this build supports.
    UnsupportedUrl,
    /// The master key is not 32 bytes written as 64 hex digits or base64.
    InvalidMasterKey,
    /// The database could not be opened or reached.
    Connect,
    /// The schema could not be created or brought up to date.
    Migrate,
    /// Stored private keys are encrypted, but no master key is configured.
    MasterKeyMissing,
    /// A stored private key did not decrypt with the configured master key.
    WrongMasterKey,
    /// Stored data breaks the schema's promises (wrong length, out of range).
    CorruptData,
    /// A query failed.
    Database,
}

/// Opening or using a SQL store failed.
///
/// Opaque: look at [`kind`](Error::kind). The message is one line fit for an operator; it never
/// holds key material or a database password.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    /// The message and, when there is one, the underlying cause, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for StoreError {
    fn from(error: Error) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// Why a store method failed, before it becomes a [`StoreError`]; lets `?` work on both sqlx
/// results and the store's own outcomes inside one method body.
#[derive(Debug)]
pub(crate) enum Failure {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Store(error.into())
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Store(error) => error,
            // A unique key raced past the explicit existence check (another instance inserted
            // between our check and our insert on PostgreSQL): still a conflict.
            Failure::Sql(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                StoreError::Conflict(match db.constraint() {
                    Some(constraint) => format!("a record with the same key ({constraint})"),
                    None => "a record with the same key".to_owned(),
                })
            }
            Failure::Sql(error) => {
                Error::with_source(ErrorKind::Database, "database query failed", error).into()
            }
        }
    }
}
