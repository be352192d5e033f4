//! When signing keys rotate, and the manager that rotates them: [`RotationPolicy`],

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cas;
use crate::error::ManageError;
use crate::key_ring::generate_key;
use crate::records::SigningKeyRecord;
use crate::store::KeyStore;

const DAY: u64 = 86_400;

/// When keys rotate. Build with [`RotationPolicy::default`] and the `with`-style setters.
///
/// ```
/// use std::time::Duration;
/// use tollgate_issue::RotationPolicy;
///
/// let policy = RotationPolicy::default().every(Duration::from_secs(30 * 86_400));
/// assert_eq!(policy.rotation_period(), Duration::from_secs(30 * 86_400));
/// assert_eq!(policy.previous_key_lifetime(), Duration::from_secs(7 * 86_400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RotationPolicy {
    every: Duration,
    keep_previous: Duration,
    publish_ahead: Duration,
    rotate_now_lead: Duration,
}

impl Default for RotationPolicy {
    /// Every 42 days; previous key kept 7 days; next key published 1 day ahead.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(42 * DAY),
            keep_previous: Duration::from_secs(7 * DAY),
            publish_ahead: Duration::from_secs(DAY),
            rotate_now_lead: Duration::from_secs(1),
        }
    }
}

impl RotationPolicy {
    /// How long each key signs (default 42 days). At least one minute.
    pub fn every(mut self, period: Duration) -> Self {
        self.every = period.max(Duration::from_secs(60));
        self
    }

    /// How long a key stays published and accepted after it stops signing (default 7 days).
    pub fn keep_previous(mut self, overlap: Duration) -> Self {
        self.keep_previous = overlap;
        self
    }

    /// How long before it signs the next key is published (default 1 day; capped at the
    /// rotation period).
    pub fn publish_ahead(mut self, ahead: Duration) -> Self {
        self.publish_ahead = ahead;
        self
    }

    /// How long after a manual rotation the new key starts signing (default 1 s). Until then it
    /// is only published, so every instance sharing the store (each polling it, every 250 ms by
    /// default) knows the key before any token signed with it reaches it. Keep it above the
    /// slowest instance's poll interval.
    pub fn rotate_now_lead(mut self, lead: Duration) -> Self {
        self.rotate_now_lead = lead;
        self
    }

    /// The rotation period.
    pub fn rotation_period(&self) -> Duration {
        self.every
    }

    /// How long a retired key stays accepted.
    pub fn previous_key_lifetime(&self) -> Duration {
        self.keep_previous
    }

    fn secs(d: Duration) -> i64 {
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A signing key's public facts: no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub kid: String,
    /// When it was created (and published).
    pub created_at: i64,
    /// When it starts (or started) signing.
    pub activates_at: i64,
    /// When it stops signing, once a successor is scheduled.
    pub retires_at: Option<i64>,
    /// When it leaves the published set.
    pub expires_at: Option<i64>,
}

impl From<&SigningKeyRecord> for KeyInfo {
    fn from(record: &SigningKeyRecord) -> Self {
        Self {
            kid: record.kid.clone(),
            created_at: record.created_at,
            activates_at: record.activates_at,
            retires_at: record.retires_at,
            expires_at: record.expires_at,
        }
    }
}

/// The state of an issuer's key ring at one moment, for metrics and readiness
/// ([`Issuer::key_ring_status`](crate::Issuer::key_ring_status)). Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRingStatus {
    /// When this was read, by the issuer's clock.
    pub now: i64,
    /// Keys published in the certs document (and accepted) now.
    pub published: usize,
    /// When the key signing now started signing; `None`: no key can sign (exchanges fail).
    pub signing_since: Option<i64>,
    /// When the next key takes over signing: the successor's activation if one is published,
    /// else when the rotation policy schedules it.
    pub next_rotation_at: Option<i64>,
}

/// Manages the key ring of a [`KeyStore`] on its own, with no server running (the CLI's
/// `keys` commands). An [`Issuer`](crate::Issuer) does the same in its background task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tollgate_core::SystemClock;
/// use tollgate_issue::MemoryStore;
/// use tollgate_issue::SigningKeys;
///
/// let keys = SigningKeys::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock));
/// assert!(keys.list().await?.is_empty());
/// let ring = keys.maintain().await?; // creates the first key
/// assert_eq!(ring.len(), 1);
/// let ring = keys.rotate_now().await?; // emergency rotation: the old key stays accepted 7 days
/// assert_eq!(ring.len(), 2);
/// let ring = keys.rotate_now_revoking().await?; // compromised key: the old ones expire now
/// assert_eq!(ring.iter().filter(|k| k.expires_at.is_none()).count(), 1);
/// # Ok(()) }
/// ```
///
/// [`SigningKeys`], and the maintenance pass the issuer's background task runs.
///
/// - [`RotationPolicy`]: a new key every 42 days by default. The next key is added to the ring
///   (and so published on the certs endpoint) [`publish_ahead`](RotationPolicy::publish_ahead)
///   before it signs anything, so verifiers that cache the certs already know it; the previous
///   key stays published and accepted for [`keep_previous`](RotationPolicy::keep_previous)
///   (7 days) after it stops signing.
/// - The ring is persisted whole through [`KeyStore::swap_ring`], a compare-and-swap on its
///   generation, so two instances sharing a store never both rotate: the loser reloads and uses
///   the winner's keys.
#[derive(Clone)]
pub struct SigningKeys {
    store: Arc<dyn KeyStore>,
    clock: tollgate_core::SharedClock,
    policy: RotationPolicy,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// A manager over `store` with the default [`RotationPolicy`].
    pub fn new(store: Arc<dyn KeyStore>, clock: tollgate_core::SharedClock) -> Self {
        Self {
            store,
            clock,
            policy: RotationPolicy::default(),
        }
    }

    /// Uses `policy` instead of the default.
    #[must_use]
    pub fn with_policy(mut self, policy: RotationPolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn run(&self, rotation: Rotation) -> Result<Vec<KeyInfo>, ManageError> {
        let now = self.clock.unix_now();
        let (_, ring) = maintain(self.store.as_ref(), now, &self.policy, rotation).await?;
        Ok(infos(&ring))
    }

    /// The ring as stored, oldest activation first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, ManageError> {
        let (_, ring) = self.store.load_ring().await?;
        Ok(infos(&ring))
    }

    /// Brings the ring up to date now: creates the first key, schedules (publishes) the next
    /// one when due, drops expired ones. Returns the ring afterwards.
    pub async fn maintain(&self) -> Result<Vec<KeyInfo>, ManageError> {
        self.run(Rotation::Scheduled).await
    }

    /// Emergency rotation: a new key is published now and signs after the policy's
    /// [`rotate_now_lead`](RotationPolicy::rotate_now_lead) (1 s, so every instance sharing the
    /// store loads it first); the previous one stays published and accepted for the overlap.
    /// Returns the ring afterwards.
    pub async fn rotate_now(&self) -> Result<Vec<KeyInfo>, ManageError> {
        self.run(Rotation::Now).await
    }

    /// Emergency rotation for a compromised key: a new key signs from now on and every
    /// previous key leaves the published set at once (`expires_at` = now), so tokens they
    /// signed stop verifying. Returns the ring afterwards.
    ///
    /// The trade-off against [`rotate_now`](Self::rotate_now): every cookie signed by the old
    /// keys is refused (401) and its client exchanges its credentials again; and the new key
    /// cannot be published ahead of signing (the old one must not sign meanwhile), so an
    /// instance sharing the store that has not yet polled it (250 ms by default) refuses
    /// tokens signed by the new key, and still signs with the old one, for under a second.
    pub async fn rotate_now_revoking(&self) -> Result<Vec<KeyInfo>, ManageError> {
        self.run(Rotation::NowRevoking).await
    }
}

fn infos(ring: &[SigningKeyRecord]) -> Vec<KeyInfo> {
    let mut infos: Vec<KeyInfo> = ring.iter().map(KeyInfo::from).collect();
    infos.sort_by_key(|k| k.activates_at);
    infos
}

async fn generate_off_thread(now: i64, activates_at: i64) -> Result<SigningKeyRecord, ManageError> {
    tokio::task::spawn_blocking(move || generate_key(now, activates_at))
        .await
        .map_err(|e| ManageError::crypto("key generation task failed", e))?
}

/// What a maintenance pass must do to the ring at `now`.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Nothing,
    /// Drop expired keys only.
    Prune(Vec<SigningKeyRecord>),
    /// Add a key activating at the given time; the ring has been updated to retire the current.
    Add(Vec<SigningKeyRecord>, i64),
}

fn plan(records: &[SigningKeyRecord], now: i64, policy: &RotationPolicy) -> Plan {
    let mut ring: Vec<SigningKeyRecord> = records
        .iter()
        .filter(|k| k.expires_at.is_none_or(|exp| exp > now))
        .cloned()
        .collect();
    ring.sort_by_key(|k| k.activates_at);
    let pruned = ring.len() != records.len();
    let period = RotationPolicy::secs(policy.every);
    let ahead = RotationPolicy::secs(policy.publish_ahead.min(policy.every));
    let overlap = RotationPolicy::secs(policy.keep_previous);

    let current = ring.iter().rposition(|k| k.activates_at <= now);
    let Some(current) = current else {
        // No signing key at all (fresh store, or everything expired): one that signs now.
        return Plan::Add(ring, now);
    };
    let has_next = ring[current + 1..].iter().any(|k| k.activates_at > now);
    let due = ring[current].activates_at.saturating_add(period);
    if !has_next && now >= due.saturating_sub(ahead) {
        let activates_at = due.max(now.saturating_add(ahead));
        let key = &mut ring[current];
        key.retires_at = Some(activates_at);
        key.expires_at = Some(activates_at.saturating_add(overlap));
        return Plan::Add(ring, activates_at);
    }
    if pruned {
        Plan::Prune(ring)
    } else {
        Plan::Nothing
    }
}

/// Whether a maintenance pass at `now` would change the ring.
pub(crate) fn needs_work(records: &[SigningKeyRecord], now: i64, policy: &RotationPolicy) -> bool {
    plan(records, now, policy) != Plan::Nothing
}

/// What a call to [`maintain`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// Follow the policy: add the next key when due, drop expired ones.
    Scheduled,
    /// Rotate now; the previous key stays accepted for the overlap.
    Now,
    /// Rotate now and drop every previous key from the published set at once.
    NowRevoking,
}

/// Brings the stored ring up to date at `now` (adding the next key when due, dropping expired
/// ones), or rotates at once (see [`Rotation`]). Returns the ring as stored afterwards. Safe to
/// run on several instances at once: the store's compare-and-swap picks one writer.
pub(crate) async fn maintain(
    store: &dyn KeyStore,
    now: i64,
    policy: &RotationPolicy,
    rotation: Rotation,
) -> Result<(u64, Vec<SigningKeyRecord>), ManageError> {
    cas::retry("the key ring", || async move {
        let (generation, records) = store.load_ring().await?;
        // `now` was read before this attempt: when another instance wrote the ring since, with
        // a clock read a second later, its fresh key would look not yet active and a second
        // one would be added. Plan no earlier than the newest key was made.
        let now = records.iter().map(|k| k.created_at).fold(now, i64::max);
        let (mut ring, activates_at) = if rotation == Rotation::NowRevoking {
            // Every published key, a pending next one too, leaves the published set now (and
            // is pruned on the next pass); the new key signs at once, as nothing else may sign
            // meanwhile.
            let ring: Vec<SigningKeyRecord> = records
                .iter()
                .filter(|k| k.expires_at.is_none_or(|exp| exp > now))
                .cloned()
                .map(|mut key| {
                    key.retires_at = Some(key.retires_at.map_or(now, |r| r.min(now)));
                    key.expires_at = Some(now);
                    key
                })
                .collect();
            (ring, now)
        } else if rotation == Rotation::Now {
            let overlap = RotationPolicy::secs(policy.keep_previous);
            let mut ring: Vec<SigningKeyRecord> = records
                .iter()
                .filter(|k| k.expires_at.is_none_or(|exp| exp > now) && k.activates_at <= now)
                .cloned()
                .collect();
            // The new key is published now and signs after the lead; the current key signs
            // until then, and stays accepted for the overlap after. `now` is whole seconds,
            // up to 1 s behind the real time: round up so the lead is never shorter than set.
            // With no key signing yet (a fresh ring) there is nothing to overlap: sign at once.
            let activates_at = if ring.is_empty() {
                now
            } else {
                now.saturating_add(1)
                    .saturating_add(RotationPolicy::secs(policy.rotate_now_lead))
            };
            for key in &mut ring {
                key.retires_at = Some(key.retires_at.map_or(activates_at, |r| r.min(activates_at)));
                let exp = activates_at.saturating_add(overlap);
                key.expires_at = Some(key.expires_at.map_or(exp, |e| e.min(exp)));
            }
            (ring, activates_at)
        } else {
            match plan(&records, now, policy) {
                Plan::Nothing => return Ok(Some((generation, records))),
                Plan::Prune(ring) => {
                    let landed = store.swap_ring(generation, &ring).await?;
                    return Ok(landed.then(|| (generation + 1, ring)));
                }
                Plan::Add(ring, activates_at) => (ring, activates_at),
            }
        };
        let key = generate_off_thread(now, activates_at).await?;
        tracing::info!(kid = %key.kid, activates_at, "new signing key added to the ring");
        ring.push(key);
        // When another instance wrote the ring first, plan again on top of its ring (a manual
        // rotation still happens; a scheduled one usually finds nothing left to do).
        let landed = store.swap_ring(generation, &ring).await?;
        Ok(landed.then(|| (generation + 1, ring)))
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::key_ring::KeyRing;

    fn key(activates_at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: format!("k{activates_at}"),
            private_key_pkcs8: vec![],
            created_at: activates_at,
            activates_at,
            retires_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn plan_follows_the_policy() {
        let policy = RotationPolicy::default();
        let day = DAY as i64;
        // Empty ring: a key now.
        assert_eq!(plan(&[], 100, &policy), Plan::Add(vec![], 100));
        // Fresh key: nothing to do for 41 days.
        let ring = vec![key(0)];
        assert_eq!(plan(&ring, 40 * day, &policy), Plan::Nothing);
        // Day 41: the next key is published, activating on day 42.
        let Plan::Add(updated, at) = plan(&ring, 41 * day, &policy) else {
            panic!("expected a new key")
        };
        assert_eq!(at, 42 * day);
        assert_eq!(updated[0].retires_at, Some(42 * day));
        assert_eq!(updated[0].expires_at, Some(49 * day));
        // With the next key pending, nothing more happens.
        let mut ring = updated;
        ring.push(key(42 * day));
        assert_eq!(plan(&ring, 41 * day + 10, &policy), Plan::Nothing);
        // After the overlap the old key is dropped.
        let Plan::Prune(pruned) = plan(&ring, 49 * day, &policy) else {
            panic!("expected pruning")
        };
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned[0].kid, format!("k{}", 42 * day));
        // An instance down past the due date still publishes ahead of signing.
        let Plan::Add(_, at) = plan(&[key(0)], 100 * day, &policy) else {
            panic!("expected a new key")
        };
        assert_eq!(at, 101 * day);
    }

    #[tokio::test]
    async fn an_instance_whose_clock_read_earlier_adds_no_second_first_key() {
        let store = crate::MemoryStore::new();
        let policy = RotationPolicy::default();
        maintain(&store, 1001, &policy, Rotation::Scheduled)
            .await
            .unwrap();
        // The loser of the first-run race read its clock a second before the winner did.
        let (_, ring) = maintain(&store, 1000, &policy, Rotation::Scheduled)
            .await
            .unwrap();
        assert_eq!(ring.len(), 1, "{ring:?}");
    }

    #[tokio::test]
    async fn two_instances_never_both_rotate() {
        let store = crate::MemoryStore::new();
        let policy = RotationPolicy::default();
        let (a, b) = tokio::join!(
            maintain(&store, 1000, &policy, Rotation::Scheduled),
            maintain(&store, 1000, &policy, Rotation::Scheduled)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.1.len(), 1);
        assert_eq!(a.1, b.1, "both see the winner's single key");
        let (generation, ring) = store.load_ring().await.unwrap();
        assert_eq!((generation, ring.len()), (1, 1));
        // A manual rotation publishes the new key at once and lets it sign after the lead (1 s,
        // plus 1 s for the whole-second clock); the current key retires then and stays accepted
        // for the overlap.
        let (_, ring) = maintain(&store, 2000, &policy, Rotation::Now)
            .await
            .unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring[0].retires_at, Some(2002));
        assert_eq!(ring[0].expires_at, Some(2002 + 7 * DAY as i64));
        assert_eq!(ring[1].activates_at, 2002);
        let loaded = KeyRing::load(2, ring, &KeyRing::default()).unwrap();
        assert_eq!(
            loaded.signing_key(2000).unwrap().kid(),
            loaded.keys[0].kid()
        );
        assert_eq!(
            loaded.published(2000).count(),
            2,
            "published before it signs"
        );
        assert_eq!(loaded.next_change_after(2000), 2002);
        assert_eq!(
            loaded.signing_key(2002).unwrap().kid(),
            loaded.keys[1].kid()
        );
        // The certs change next when the retired key leaves the set.
        assert_eq!(loaded.next_change_after(2002), 2002 + 7 * DAY as i64);
        let certs = serde_json::to_value(loaded.certs(2002)).unwrap();
        assert_eq!(certs["keys"].as_array().unwrap().len(), 2);
        assert_eq!(certs["public_certs"].as_array().unwrap().len(), 2);
        assert_eq!(certs["public_cert"]["kid"], loaded.keys[1].kid());
    }

    #[tokio::test]
    async fn revoking_rotation_unpublishes_the_previous_keys_at_once() {
        let store = crate::MemoryStore::new();
        let policy = RotationPolicy::default();
        maintain(&store, 1000, &policy, Rotation::Scheduled)
            .await
            .unwrap();
        // A plain emergency rotation first: two keys, the new one still pending (it signs
        // from 1502), so it is revoked too.
        maintain(&store, 1500, &policy, Rotation::Now)
            .await
            .unwrap();
        let (generation, ring) = maintain(&store, 1501, &policy, Rotation::NowRevoking)
            .await
            .unwrap();
        assert_eq!(ring.len(), 3);
        let (revoked, fresh) = ring.split_at(2);
        for key in revoked {
            assert_eq!(key.expires_at, Some(1501), "{key:?}");
            assert!(key.retires_at.is_some_and(|at| at <= 1501));
        }
        assert_eq!((fresh[0].activates_at, fresh[0].expires_at), (1501, None));
        let loaded = KeyRing::load(generation, ring.clone(), &KeyRing::default()).unwrap();
        let published: Vec<&str> = loaded.published(1501).map(|k| k.kid()).collect();
        assert_eq!(
            published,
            [fresh[0].kid.as_str()],
            "only the new key is published"
        );
        assert_eq!(loaded.signing_key(1501).unwrap().kid(), fresh[0].kid);
        // The next pass prunes the revoked keys.
        assert!(needs_work(&ring, 1501, &policy));
        let (_, pruned) = maintain(&store, 1501, &policy, Rotation::Scheduled)
            .await
            .unwrap();
        assert_eq!(pruned.len(), 1);
    }
}
