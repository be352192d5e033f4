//! The verified-token cache: a bot that reuses one JWT pays a SHA-256 and a lock-free lookup
//! instead of an RSA verification.
//!
//! Keys are SHA-256 digests of the token (so the cache never holds a token). The map is split
//! into shards, each an immutable `HashMap` behind an [`ArcSwap`]: a lookup is an atomic load
//! and a probe, with no lock. Inserts (only after a full verification, which costs far more)
//! copy the shard under a per-shard mutex. Each shard is bounded; when full, expired entries
//! and entries whose key left the set go first, then the one closest to expiry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use tollgate_core::AccessIdentity;

use crate::public_key::PublicKey;

/// A SHA-256 of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(crate) fn of(token: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        Self(out)
    }

    fn shard(&self, shards: usize) -> usize {
        usize::from(self.0[31]) % shards
    }
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly distributed; only verified tokens are ever inserted, so an attacker
        // cannot shape the table.
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(prefix));
    }
}

/// Passes a `u64` through: see [`TokenDigest`]'s `Hash`.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<TokenDigest, Arc<CachedToken>, BuildHasherDefault<PassThrough>>;

/// A verified token.
pub(crate) struct CachedToken {
    pub(crate) identity: AccessIdentity,
    pub(crate) exp: i64,
    pub(crate) key: Arc<PublicKey>,
}

struct Shard {
    map: ArcSwap<Map>,
    write: Mutex<()>,
}

pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    shard_capacity: usize,
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
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    map: ArcSwap::from_pointee(Map::default()),
                    write: Mutex::new(()),
                })
                .collect(),
            shard_capacity,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    /// The identity cached under `digest`, if `live` says the entry still holds.
    pub(crate) fn get(
        &self,
        digest: &TokenDigest,
        live: impl FnOnce(&CachedToken) -> bool,
    ) -> Option<AccessIdentity> {
        let shard = &self.shards[digest.shard(self.shards.len())];
        let map = shard.map.load();
        let entry = map.get(digest)?;
        live(entry).then(|| entry.identity.clone())
    }

    /// Remembers a verified token. `live` judges existing entries when the shard is full.
    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        token: CachedToken,
        live: impl Fn(&CachedToken) -> bool,
    ) {
        if !self.enabled() {
            return;
        }
        let shard = &self.shards[digest.shard(self.shards.len())];
        let _writer = shard.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = shard.map.load_full();
        let mut next: Map = if current.len() >= self.shard_capacity {
            current
                .iter()
                .filter(|(_, entry)| live(entry))
                .map(|(k, v)| (*k, v.clone()))
                .collect()
        } else {
            (*current).clone()
        };
        if next.len() >= self.shard_capacity
            && !next.contains_key(&digest)
            && let Some(soonest) = next
                .iter()
                .min_by_key(|(_, entry)| entry.exp)
                .map(|(k, _)| *k)
        {
            next.remove(&soonest);
        }
        next.insert(digest, Arc::new(token));
        shard.map.store(Arc::new(next));
    }

    /// Entries held (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.load().len()).sum()
    }
}
