//! The handle a manager holds to have its issuer reload after a change.
//!
//! [`ServiceTokens`](crate::ServiceTokens) and [`Applications`](crate::Applications) work on a
//! store alone (the CLI uses them so). Handed out by an [`Issuer`](crate::Issuer), they also
//! hold a [`ReloadHandle`]: a weak reference to something that can reload, so a change made
//! through them shows in the issuer's snapshot at once — without the managers knowing the
//! issuer, and without keeping it alive.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;

/// Something that reloads its view of the store (the issuer's runtime).
pub(crate) trait Reload: Send + Sync {
    /// Reloads, logging a failure (the next poll retries).
    fn reload(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A weak handle to a [`Reload`], or none (a manager on its own).
#[derive(Clone, Default)]
pub(crate) struct ReloadHandle(Option<Weak<dyn Reload>>);

impl ReloadHandle {
    /// A handle to `target`.
    pub(crate) fn new(target: Weak<dyn Reload>) -> Self {
        Self(Some(target))
    }

    /// Reloads the target if there is one and it is still alive.
    pub(crate) async fn reload(&self) {
        if let Some(target) = self.0.as_ref().and_then(Weak::upgrade) {
            target.reload().await;
        }
    }
}

impl fmt::Debug for ReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReloadHandle")
            .field(&self.0.as_ref().map(|_| "issuer"))
            .finish()
    }
}
