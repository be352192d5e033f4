//! [`Throttle`]: failed exchanges counted per source, and answered 429 past a limit.
//!
//! A service-token secret has 256 random bits, so guessing is hopeless; but a client that
//! hammers the exchange with wrong secrets still costs a hash per attempt and floods the logs.
//! The exchange counts failures (wrong or unknown credentials, ambiguous ones) in fixed windows,
//! per (source address, client ID) and per source address, in bounded memory. Past a limit, the
//! source gets **429** with `Retry-After` until its window ends — checked before any secret is
//! hashed — while everyone else goes on: a correct secret from another address is never locked
//! out by an attacker, and other clients behind the same address are throttled only when the
//! whole address is.
//!
//! The source address is the socket's peer, from axum's `ConnectInfo<SocketAddr>` (serve with
//! `into_make_service_with_connect_info`); when the peer is a [trusted proxy](Throttle::trust_proxy),
//! the nearest untrusted hop of `X-Forwarded-For` instead. A request without `ConnectInfo` is
//! not throttled: without an address, counting per client ID would let anyone lock a bot out.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request};
use tollgate_core::Rejection;
use tollgate_core::request::is_client_id;

/// How failed exchanges are throttled. [`Default`]: 30 failures a minute for one
/// (address, client ID) pair, 300 a minute from one address, 100,000 sources remembered.
///
/// ```
/// use std::time::Duration;
/// use tollgate_issue::exchange::Throttle;
///
/// let throttle = Throttle::default()
///     .per_client(10)
///     .window(Duration::from_secs(300))
///     .trust_proxy("10.0.0.0/8")?;
/// # let _ = (throttle, Throttle::disabled());
/// # Ok::<(), tollgate_issue::ManageError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct Throttle {
    per_client: u32,
    per_address: u32,
    window: Duration,
    capacity: usize,
    trusted: Vec<Cidr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            per_client: 30,
            per_address: 300,
            window: Duration::from_secs(60),
            capacity: 100_000,
            trusted: Vec::new(),
        }
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("per_client", &self.per_client)
            .field("per_address", &self.per_address)
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .field("trusted_proxies", &self.trusted.len())
            .finish()
    }
}

impl Throttle {
    /// No throttling.
    pub fn disabled() -> Self {
        Self {
            per_client: 0,
            per_address: 0,
            ..Self::default()
        }
    }

    /// Failures allowed per window for one (address, client ID) pair (default 30; 0: no limit).
    pub fn per_client(mut self, failures: u32) -> Self {
        self.per_client = failures;
        self
    }

    /// Failures allowed per window from one address, all client IDs together (default 300;
    /// 0: no limit).
    pub fn per_address(mut self, failures: u32) -> Self {
        self.per_address = failures;
        self
    }

    /// The counting window (default one minute, at least one second).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_secs(1));
        self
    }

    /// How many sources are remembered at most (default 100,000, at least 16); beyond it the
    /// stalest are forgotten first.
    pub fn capacity(mut self, sources: usize) -> Self {
        self.capacity = sources.max(SHARDS);
        self
    }

    /// Trusts the proxies in `cidr` (`10.0.0.0/8`, `::1/128`, or one address) to say who their
    /// client is in `X-Forwarded-For`. Fails on a malformed CIDR.
    pub fn trust_proxy(mut self, cidr: &str) -> Result<Self, crate::ManageError> {
        let parsed = Cidr::parse(cidr).ok_or_else(|| {
            crate::ManageError::invalid(format!(
                "{cidr:?} is not an address or CIDR block such as 10.0.0.0/8"
            ))
        })?;
        self.trusted.push(parsed);
        Ok(self)
    }

    fn enabled(&self) -> bool {
        self.per_client > 0 || self.per_address > 0
    }
}

/// An address block, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self {
            network: addr,
            prefix,
        })
    }

    fn contains(&self, addr: IpAddr) -> bool {
        let (network, addr, bits) = match (self.network, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u128::from(n.to_bits()), u128::from(a.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits(), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (network >> shift) == (addr >> shift)
    }
}

const SHARDS: usize = 16;

/// A fixed window of failures.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

/// A bounded map of windows, sharded so concurrent exchanges rarely share a lock.
struct Windows<K> {
    shards: Vec<Mutex<HashMap<K, Window>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq> Windows<K> {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, Window>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds until `key`'s window ends, if it holds `limit` failures or more.
    fn blocked(&self, key: &K, limit: u32, now: i64, window: i64) -> Option<i64> {
        if limit == 0 {
            return None;
        }
        let shard = self.shard(key);
        let entry = shard.get(key)?;
        let ends = entry.start.saturating_add(window);
        (now < ends && entry.count >= limit).then_some(ends - now)
    }

    fn record(&self, key: K, now: i64, window: i64) {
        let mut shard = self.shard(&key);
        if !shard.contains_key(&key) && shard.len() >= self.per_shard {
            // Full: forget the windows that ended, else the stalest ones.
            shard.retain(|_, w| now < w.start.saturating_add(window));
            if shard.len() >= self.per_shard
                && let Some(stalest) = shard.values().map(|w| w.start).min()
            {
                shard.retain(|_, w| w.start != stalest);
            }
        }
        let entry = shard.entry(key).or_insert(Window {
            start: now,
            count: 0,
        });
        if now >= entry.start.saturating_add(window) {
            *entry = Window {
                start: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }
}

/// The failure counters of one exchange layer.
pub(crate) struct Failures {
    config: Throttle,
    pairs: Windows<(IpAddr, Box<str>)>,
    addresses: Windows<IpAddr>,
}

impl fmt::Debug for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failures")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Failures {
    pub(crate) fn new(config: Throttle) -> Self {
        Self {
            pairs: Windows::new(config.capacity),
            addresses: Windows::new(config.capacity),
            config,
        }
    }

    fn window(&self) -> i64 {
        i64::try_from(self.config.window.as_secs()).unwrap_or(i64::MAX)
    }

    /// The source address of `request`, if throttling applies to it.
    pub(crate) fn source<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        if !self.config.enabled() {
            return None;
        }
        self.address(request)
    }

    /// The client's address: the socket peer, or the address a trusted proxy forwarded (the
    /// throttle's rule, also what authentication events record).
    pub(crate) fn address<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()?
            .0
            .ip();
        Some(client_address(
            peer,
            request.headers(),
            &self.config.trusted,
        ))
    }

    /// 429 with `Retry-After` if `source` (with `client_id`, when known) is throttled.
    pub(crate) fn check(
        &self,
        source: IpAddr,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<(), Rejection> {
        let window = self.window();
        let address = self
            .addresses
            .blocked(&source, self.config.per_address, now, window);
        let pair = client_id.filter(|id| is_client_id(id)).and_then(|id| {
            self.pairs
                .blocked(&(source, id.into()), self.config.per_client, now, window)
        });
        match address.max(pair) {
            Some(retry_after) => Err(Rejection::throttled(retry_after)),
            None => Ok(()),
        }
    }

    /// Counts a failed exchange from `source` (for `client_id`, when known).
    pub(crate) fn record(&self, source: IpAddr, client_id: Option<&str>, now: i64) {
        let window = self.window();
        if self.config.per_address > 0 {
            self.addresses.record(source, now, window);
        }
        // Only well-formed client IDs get a pair of their own: a request-chosen string of any
        // length must not be what the bounded map holds. Malformed ones count per address.
        if self.config.per_client > 0
            && let Some(id) = client_id.filter(|id| is_client_id(id))
        {
            self.pairs.record((source, id.into()), now, window);
        }
    }
}

/// The client's address: the socket peer, or — when the peer is a trusted proxy — the nearest
/// `X-Forwarded-For` hop that is not trusted (the last one, if all are).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |addr: IpAddr| trusted.iter().any(|cidr| cidr.contains(addr));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks() {
        let block = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(block.contains(ip("10.1.2.3")) && !block.contains(ip("11.0.0.1")));
        assert!(!block.contains(ip("::1")));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        for bad in ["", "10.0.0.0/33", "::/129", "x/8", "10.0.0.0/"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_hops() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.5".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.5"),
            "the nearest untrusted hop, not the client-chosen first one"
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1"),
            "an untrusted peer's X-Forwarded-For is ignored"
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn windows_count_block_and_reset() {
        let failures = Failures::new(Throttle::default().per_client(3).per_address(5));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let id = |n: u8| format!("{n:032x}.access");
        let (bot, other, x, new) = (id(1), id(2), id(3), id(4));
        let (bot, other, x, new) = (bot.as_str(), other.as_str(), x.as_str(), new.as_str());
        for _ in 0..3 {
            assert!(failures.check(a, Some(bot), 100).is_ok());
            failures.record(a, Some(bot), 100);
        }
        let refused = failures.check(a, Some(bot), 110).unwrap_err();
        assert_eq!(refused.retry_after(), Some(50));
        assert!(
            failures.check(a, Some(other), 110).is_ok(),
            "another client"
        );
        assert!(failures.check(b, Some(bot), 110).is_ok(), "another address");
        assert!(
            failures.check(a, Some(bot), 160).is_ok(),
            "the window ended"
        );
        failures.record(a, Some(x), 110);
        failures.record(a, None, 110);
        assert!(
            failures.check(a, Some(new), 110).is_err(),
            "the whole address"
        );
        assert!(failures.check(b, None, 110).is_ok());
    }

    #[test]
    fn malformed_client_ids_count_per_address_only() {
        let failures = Failures::new(Throttle::default().per_client(1).per_address(3));
        let a = ip("192.0.2.9");
        let long = "x".repeat(8_000);
        failures.record(a, Some(&long), 0);
        assert!(
            failures
                .pairs
                .shards
                .iter()
                .all(|s| s.lock().unwrap().is_empty())
        );
        assert!(
            failures.check(a, Some(&long), 0).is_ok(),
            "one failure, limit 3"
        );
        failures.record(a, Some(&long), 0);
        failures.record(a, Some(&long), 0);
        assert!(
            failures.check(a, Some(&long), 0).is_err(),
            "the address is throttled"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let failures = Failures::new(Throttle::default().capacity(64));
        for i in 0..10_000u32 {
            let source = IpAddr::from(std::net::Ipv4Addr::from(i));
            failures.record(source, Some(&format!("{i:032x}.access")), i64::from(i));
        }
        let held: usize = failures
            .pairs
            .shards
            .iter()
            .map(|s| s.lock().unwrap().len())
            .sum();
        assert!(held <= 64, "{held}");
    }
}
