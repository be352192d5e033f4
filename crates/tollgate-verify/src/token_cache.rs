//! The verified-token cache: a bot that reuses one JWT pays a hash and a lock-free lookup
//! instead of an RSA verification.
//!
//! - **Lookup**: the length and the last 32 bytes of the token — its signature's, random for
//!   every token a key signs — are hashed with a per-process random seed (foldhash), and a
//!   hit must equal the cached token byte for byte, compared in constant time. Exact
//!   comparison needs no collision argument, so the hash only has to spread entries, and
//!   only verified tokens are ever inserted, so nobody can crowd one slot; this costs about a
//!   tenth of the SHA-256 of the whole token the cache used to key on. The cache holds the
//!   tokens it answers for (at most `capacity` of them, each at most the verifier's
//!   `max_token_bytes`), as any session cache holds its sessions.
//! - **Shards**: the map is split into shards, each an immutable table behind an [`ArcSwap`]:
//!   a lookup is an atomic load and a probe, with no lock. Inserts (only after a full
//!   verification, which costs far more) copy the shard under a per-shard mutex.
//! - **Admission**: until a shard has been full every verified token goes in. From then on a
//!   token is admitted on its second verification within a while (a one-slot-per-hash
//!   "doorkeeper", as TinyLFU's): a flood of distinct tokens, each seen once, then costs a
//!   table probe rather than a shard copy each, and cannot push out the tokens bots reuse.
//! - **Eviction**: an admitted insert into a full shard first drops expired entries and those
//!   whose key left the set, then, if that freed nothing, the eighth of the shard closest to
//!   expiry, so the next inserts find room without another sweep.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use hashbrown::HashTable;
use tollgate_core::AccessIdentity;

use crate::public_key::PublicKey;

/// A verified token.
pub(crate) struct CachedToken {
    pub(crate) identity: AccessIdentity,
    pub(crate) exp: i64,
    pub(crate) key: Arc<PublicKey>,
}

/// One entry: the token itself (for the exact comparison), its hash, what it verified to.
struct Entry {
    hash: u64,
    token: Box<str>,
    verified: CachedToken,
}

type Table = HashTable<Arc<Entry>>;

struct Shard {
    table: ArcSwap<Table>,
    write: Mutex<()>,
    /// Set once the shard has been full: from then on only tokens the doorkeeper has seen
    /// before get in, also into the room an eviction made (else every eviction would let the
    /// next distinct tokens of a flood straight in, each a shard copy).
    saturated: AtomicBool,
}

/// How many of a token's last bytes are hashed: its signature's, random for every token a key
/// signed (only verified tokens are ever inserted, so nobody can crowd one slot).
const HASHED_TAIL: usize = 32;

/// A token's place in the cache: its seeded hash.
#[derive(Clone, Copy)]
pub(crate) struct TokenHash(u64);

pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    shard_capacity: usize,
    hasher: foldhash::fast::RandomState,
    /// Hash tags of tokens verified once while their shard was full.
    doorkeeper: Box<[AtomicU64]>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache of about `capacity` entries (0 disables it).
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (capacity / 128).clamp(1, 64);
        let shard_capacity = capacity.div_ceil(shards);
        let doorkeeper = if capacity == 0 {
            0
        } else {
            capacity.next_power_of_two().max(64)
        };
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    table: ArcSwap::from_pointee(Table::new()),
                    write: Mutex::new(()),
                    saturated: AtomicBool::new(false),
                })
                .collect(),
            shard_capacity,
            hasher: foldhash::fast::RandomState::default(),
            doorkeeper: (0..doorkeeper).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    /// Where `token` lives in the cache.
    pub(crate) fn hash(&self, token: &str) -> TokenHash {
        let bytes = token.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(HASHED_TAIL)..];
        TokenHash(self.hasher.hash_one((bytes.len(), tail)))
    }

    fn shard(&self, hash: TokenHash) -> &Shard {
        // The table uses the low bits; the shard comes from the high ones.
        let index = ((hash.0 >> 40) as usize) % self.shards.len();
        &self.shards[index]
    }

    /// The identity cached for `token`, if `live` says the entry still holds.
    pub(crate) fn get(
        &self,
        token: &str,
        hash: TokenHash,
        live: impl FnOnce(&CachedToken) -> bool,
    ) -> Option<AccessIdentity> {
        let table = self.shard(hash).table.load();
        let entry = table.find(hash.0, |entry| {
            entry.hash == hash.0
                && verify_slices_are_equal(entry.token.as_bytes(), token.as_bytes()).is_ok()
        })?;
        live(&entry.verified).then(|| entry.verified.identity.clone())
    }

    /// Remembers a verified token (see the module docs for when a full shard admits it).
    /// `live` judges existing entries when the shard is full.
    pub(crate) fn insert(
        &self,
        token: &str,
        hash: TokenHash,
        verified: CachedToken,
        live: impl Fn(&CachedToken) -> bool,
    ) {
        if !self.enabled() {
            return;
        }
        let shard = self.shard(hash);
        let saturated = shard.saturated.load(Ordering::Relaxed)
            || shard.table.load().len() >= self.shard_capacity;
        if saturated {
            shard.saturated.store(true, Ordering::Relaxed);
            if !self.admit_when_full(hash) {
                return;
            }
        }
        let _writer = shard.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = shard.table.load_full();
        let same = |entry: &Arc<Entry>| entry.hash == hash.0 && *entry.token == *token;
        let mut next = Table::with_capacity(self.shard_capacity.min(current.len() + 1));
        let full = current.len() >= self.shard_capacity;
        for entry in current.iter() {
            if same(entry) || (full && !live(&entry.verified)) {
                continue;
            }
            next.insert_unique(entry.hash, entry.clone(), |e| e.hash);
        }
        if next.len() >= self.shard_capacity {
            self.evict_soonest(&mut next);
        }
        let entry = Arc::new(Entry {
            hash: hash.0,
            token: token.into(),
            verified,
        });
        next.insert_unique(hash.0, entry, |e| e.hash);
        shard.table.store(Arc::new(next));
    }

    /// A full shard admits a token on its second verification: the first leaves its tag.
    fn admit_when_full(&self, hash: TokenHash) -> bool {
        let slot = &self.doorkeeper[(hash.0 as usize) & (self.doorkeeper.len() - 1)];
        let tag = hash.0 | 1;
        if slot.load(Ordering::Relaxed) == tag {
            slot.store(0, Ordering::Relaxed);
            true
        } else {
            slot.store(tag, Ordering::Relaxed);
            false
        }
    }

    /// Drops the eighth of `table` (at least one entry) closest to expiry.
    fn evict_soonest(&self, table: &mut Table) {
        let mut exps: Vec<i64> = table.iter().map(|e| e.verified.exp).collect();
        let drop = (self.shard_capacity / 8).max(1).min(exps.len());
        let (_, threshold, _) = exps.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        let mut dropped = 0;
        table.retain(|entry| {
            if dropped < drop && entry.verified.exp <= threshold {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }

    /// Entries held (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.table.load().len()).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tollgate_core::AccessClaims;

    use super::*;
    use crate::algorithm::Algorithm;

    fn key() -> Arc<PublicKey> {
        // RFC 8037 §A.2's Ed25519 public key.
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        Arc::new(PublicKey::from_jwk(&jwk, &[Algorithm::EdDSA]).unwrap())
    }

    fn verified(exp: i64) -> CachedToken {
        let claims = AccessClaims::service_token("aud", "https://team.example", "a.access", 0, exp);
        CachedToken {
            identity: AccessIdentity::from_claims(claims).unwrap(),
            exp,
            key: key(),
        }
    }

    fn put(cache: &TokenCache, token: &str, exp: i64) {
        cache.insert(token, cache.hash(token), verified(exp), |e| e.exp > 0);
    }

    fn has(cache: &TokenCache, token: &str) -> bool {
        cache.get(token, cache.hash(token), |_| true).is_some()
    }

    #[test]
    fn a_hit_is_the_same_token_byte_for_byte() {
        let cache = TokenCache::new(16);
        put(&cache, "token-one", 100);
        assert!(has(&cache, "token-one"));
        assert!(!has(&cache, "token-onf"));
        assert!(!has(&cache, "token-on"));
        assert!(!has(&cache, "token-one "));
    }

    #[test]
    fn a_full_shard_admits_a_token_on_its_second_verification() {
        let cache = TokenCache::new(8); // one shard of 8
        for i in 0..8 {
            put(&cache, &format!("kept-{i}"), 1_000 + i);
        }
        assert_eq!(cache.len(), 8);
        put(&cache, "newcomer", 5_000);
        assert!(
            !has(&cache, "newcomer"),
            "seen once while full: not admitted"
        );
        assert!((0..8).all(|i| has(&cache, &format!("kept-{i}"))));
        put(&cache, "newcomer", 5_000);
        assert!(has(&cache, "newcomer"), "seen twice: admitted");
        assert!(
            !has(&cache, "kept-0"),
            "the entry closest to expiry made room"
        );
        assert_eq!(cache.len(), 8);
    }

    #[test]
    fn a_flood_of_distinct_tokens_stays_within_capacity_and_keeps_reused_ones() {
        let cache = TokenCache::new(256);
        put(&cache, "the-bot", 10_000);
        for i in 0..20_000 {
            put(&cache, &format!("flood-{i}"), 1_000);
            if i % 100 == 0 {
                put(&cache, "the-bot", 10_000);
            }
        }
        assert!(cache.len() <= 256 + cache.shards.len(), "{}", cache.len());
        assert!(has(&cache, "the-bot"));
    }

    #[test]
    fn dead_entries_go_first() {
        let cache = TokenCache::new(4);
        for (i, exp) in [(0, 1_000), (1, -1), (2, 2_000), (3, 3_000)] {
            put(&cache, &format!("t{i}"), exp);
        }
        put(&cache, "t4", 4_000);
        put(&cache, "t4", 4_000);
        assert!(has(&cache, "t0") && has(&cache, "t2") && has(&cache, "t3") && has(&cache, "t4"));
        assert!(!has(&cache, "t1"), "the dead entry was swept");
    }

    #[test]
    fn disabled_holds_nothing() {
        let cache = TokenCache::new(0);
        put(&cache, "t", 100);
        assert!(!has(&cache, "t"));
        assert_eq!(cache.len(), 0);
    }
}
