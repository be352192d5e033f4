//! Scrape-time collectors: what is read from live state when `/metrics` is scraped, not
//! counted on the request path — verifier caches and key fetches, the issuer's key ring,
//! signing times, expiring tokens, snapshot freshness, and counters from elsewhere
//! ([`Metrics::register_counter_source`](crate::Metrics::register_counter_source)).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tollgate_issue::{Issuer, SIGNING_BUCKETS};
use tollgate_verify::{Verifier, VerifyStats};

use crate::auth::AuthCounters;

/// How far ahead `tollgate_service_tokens_expiring_within_7d` looks.
pub(crate) const EXPIRY_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// What the one live collector reads at scrape.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) auth: Arc<AuthCounters>,
    pub(crate) issuer: Mutex<Option<Issuer>>,
    pub(crate) verifiers: Mutex<Vec<(String, Verifier)>>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// A counter read from a function at scrape.
pub(crate) struct CounterSource {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) read: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl fmt::Debug for CounterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Collector for CounterSource {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let metric =
            encoder.encode_descriptor(&self.name, &self.help, None, MetricType::Counter)?;
        ConstCounter::new((self.read)()).encode(metric)
    }
}

/// Writes one family of `(label, value)` series.
fn family<T>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    rows: &[(&str, Option<T>)],
    label: &str,
    write: impl Fn(T, prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), fmt::Error>,
) -> Result<(), fmt::Error>
where
    T: Copy,
{
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (value_label, value) in rows {
        if let Some(value) = value {
            let labels = [(label, *value_label)];
            write(*value, metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn counter(
    value: u64,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), fmt::Error> {
    ConstCounter::new(value).encode(encoder)
}

fn gauge_f64(
    value: f64,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), fmt::Error> {
    ConstGauge::new(value).encode(encoder)
}

fn gauge_u64(
    value: u64,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), fmt::Error> {
    ConstGauge::new(value).encode(encoder)
}

/// A gauge without labels.
fn scalar(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// Seconds from `then` to `now` (0 if `then` is later).
fn seconds_between(then: i64, now: i64) -> f64 {
    // i64 seconds to f64: exact for any plausible time.
    #[allow(clippy::cast_precision_loss)]
    let secs = now.saturating_sub(then).max(0) as f64;
    secs
}

impl Live {
    fn verifier_rows(&self) -> Vec<(String, VerifyStats)> {
        let mut rows = match self
            .issuer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(issuer) => issuer.verifier_stats(),
            None => Vec::new(),
        };
        rows.extend(
            self.verifiers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(name, verifier)| (name.clone(), verifier.stats())),
        );
        rows
    }

    fn encode_verifiers(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let rows = self.verifier_rows();
        let now = SystemTime::now();
        let pick = |f: &dyn Fn(&VerifyStats) -> Option<u64>| -> Vec<(&str, Option<u64>)> {
            rows.iter().map(|(name, s)| (name.as_str(), f(s))).collect()
        };
        family(
            encoder,
            "tollgate_verify_cache_hits",
            "Application tokens answered from the verified-token cache, by application.",
            MetricType::Counter,
            &pick(&|s| Some(s.cache_hits)),
            "app",
            counter,
        )?;
        family(
            encoder,
            "tollgate_verify_signature_checks",
            "Application-token signatures checked (verified-token cache misses that reached a \
             signature), by application.",
            MetricType::Counter,
            &pick(&|s| Some(s.signature_checks)),
            "app",
            counter,
        )?;
        family(
            encoder,
            "tollgate_verify_cached_tokens",
            "Entries in the verified-token cache, by application.",
            MetricType::Gauge,
            &pick(&|s| u64::try_from(s.cached_tokens).ok()),
            "app",
            gauge_u64,
        )?;
        family(
            encoder,
            "tollgate_key_fetches",
            "Signing-key fetches started by a verifier, by application.",
            MetricType::Counter,
            &pick(&|s| Some(s.key_fetches)),
            "app",
            counter,
        )?;
        family(
            encoder,
            "tollgate_key_fetch_failures",
            "Signing-key fetches that failed (unreachable, timed out, no usable key), by \
             application.",
            MetricType::Counter,
            &pick(&|s| Some(s.key_fetch_failures)),
            "app",
            counter,
        )?;
        let ages: Vec<(&str, Option<f64>)> = rows
            .iter()
            .map(|(name, s)| {
                let age = s
                    .last_key_fetch_success
                    .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64());
                (name.as_str(), age)
            })
            .collect();
        family(
            encoder,
            "tollgate_key_fetch_last_success_age_seconds",
            "Seconds since a verifier's last good key fetch, by application (absent before the \
             first).",
            MetricType::Gauge,
            &ages,
            "app",
            gauge_f64,
        )
    }

    fn encode_issuer(
        &self,
        issuer: &Issuer,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), fmt::Error> {
        let ring = issuer.key_ring_status();
        // usize to f64: exact below 2^53 keys.
        #[allow(clippy::cast_precision_loss)]
        let published = ring.published as f64;
        scalar(
            encoder,
            "tollgate_signing_keys_published",
            "Signing keys in the published certs document.",
            published,
        )?;
        scalar(
            encoder,
            "tollgate_signing_key_available",
            "1 if a signing key can sign now, 0 if not (every exchange fails).",
            if ring.signing_since.is_some() {
                1.0
            } else {
                0.0
            },
        )?;
        if let Some(since) = ring.signing_since {
            scalar(
                encoder,
                "tollgate_signing_key_age_seconds",
                "Seconds since the current signing key started signing.",
                seconds_between(since, ring.now),
            )?;
        }
        if let Some(next) = ring.next_rotation_at {
            scalar(
                encoder,
                "tollgate_signing_key_rotation_in_seconds",
                "Seconds until the next signing key takes over (0: due now).",
                seconds_between(ring.now, next),
            )?;
        }

        let stats = issuer.signing_stats();
        let mut buckets = Vec::with_capacity(SIGNING_BUCKETS.len());
        let mut below = 0;
        for (bound, cumulative) in SIGNING_BUCKETS.iter().zip(stats.buckets) {
            buckets.push((*bound, cumulative.saturating_sub(below)));
            below = cumulative;
        }
        buckets.push((f64::INFINITY, stats.count.saturating_sub(below)));
        let mut metric = encoder.encode_descriptor(
            "tollgate_signing_seconds",
            "Time to sign an application token, waiting for a signing permit included.",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<NoLabelSet>(stats.sum_seconds, stats.count, &buckets, None)?;

        // usize to f64: exact below 2^53 tokens.
        #[allow(clippy::cast_precision_loss)]
        let expiring = issuer.tokens_expiring_within(EXPIRY_WINDOW) as f64;
        scalar(
            encoder,
            "tollgate_service_tokens_expiring_within_7d",
            "Service tokens that expire within 7 days (and have not expired yet).",
            expiring,
        )?;
        if let Some(age) = issuer.since_last_sync() {
            scalar(
                encoder,
                "tollgate_snapshot_age_seconds",
                "Seconds since the issuer last confirmed its snapshot current against the store \
                 (a poll with no change, or a reload).",
                age.as_secs_f64(),
            )?;
        }
        Ok(())
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        self.auth.encode(&mut encoder)?;
        self.encode_verifiers(&mut encoder)?;
        let issuer = self
            .issuer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(issuer) = issuer {
            self.encode_issuer(&issuer, &mut encoder)?;
        }
        Ok(())
    }
}
