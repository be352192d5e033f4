//! [`IssuerKeySource`]: an issuer's published keys as a tollgate-verify [`KeySource`], with
//! no HTTP in between.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tollgate_core::SharedClock;
use tollgate_verify::{FetchError, KeySet, KeySource};

use super::snapshot::Snapshot;

/// A [`KeySource`] over an [`Issuer`](crate::Issuer)'s published keys, in-process. See
/// [`Issuer::key_source`](crate::Issuer::key_source).
#[derive(Clone)]
pub struct IssuerKeySource {
    pub(super) snapshot: Arc<ArcSwap<Snapshot>>,
    pub(super) clock: SharedClock,
}

impl fmt::Debug for IssuerKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKeySource").finish_non_exhaustive()
    }
}

impl KeySource for IssuerKeySource {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<KeySet, FetchError>> + Send + '_>> {
        let snapshot = self.snapshot.load();
        let now = self.clock.unix_now();
        let jwks: Vec<serde_json::Value> = snapshot
            .ring
            .published(now)
            .map(|k| k.jwk_value.clone())
            .collect();
        // Re-read every second: retired keys stop being accepted promptly.
        let set = KeySet::from_jwks(jwks).with_max_age(Duration::from_secs(1));
        Box::pin(std::future::ready(Ok(set)))
    }

    fn is_local(&self) -> bool {
        true
    }
}
