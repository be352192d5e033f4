//! The [`EventSink`] that counts exchanges and refusals: `tollgate_exchanges_total{app, result}`
//! and `tollgate_refusals_total{app, kind, reason}`.
//!
//! Counting an event is a read lock, one hash lookup by `&str` and one atomic add: nothing is
//! allocated except the first time an application is seen. Labels are bounded: the application
//! (at most [`MAX_APP_LABELS`] names, then `app=""`), the event kind (two) and the reason
//! ([`RejectionKind`], a closed list). Client IDs and addresses never become labels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use tollgate_core::RejectionKind;
use tollgate_core::events::{AuthEvent, EventKind, EventSink};

/// Distinct application names kept as labels; events for further names count under `app=""`.
pub const MAX_APP_LABELS: usize = 1_000;

const REASONS: usize = RejectionKind::ALL.len() + 1;
/// The reason label of a refusal that names none (not expected from tollgate's layers).
const UNSPECIFIED: &str = "unspecified";
/// Event kinds counted as refusals, by index.
const KINDS: [EventKind; 2] = [EventKind::Exchange, EventKind::Token];

/// One application's counters.
#[derive(Debug)]
struct AppCounters {
    /// Exchange attempts: `[allowed, refused]`.
    exchanges: [AtomicU64; 2],
    /// Refusals by kind (index in [`KINDS`]) and reason (index in `RejectionKind::ALL`, then
    /// unspecified).
    refusals: [[AtomicU64; REASONS]; KINDS.len()],
}

impl AppCounters {
    fn new() -> Self {
        Self {
            exchanges: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    fn record(&self, event: &AuthEvent) {
        let Some(kind) = KINDS.iter().position(|k| *k == event.kind) else {
            return; // admin changes are not counted here
        };
        let count = u64::from(event.count.max(1));
        if event.kind == EventKind::Exchange {
            let slot = usize::from(!event.allowed);
            self.exchanges[slot].fetch_add(count, Ordering::Relaxed);
        }
        if !event.allowed {
            let reason = event
                .reason
                .and_then(|r| RejectionKind::ALL.iter().position(|k| *k == r))
                .unwrap_or(REASONS - 1);
            self.refusals[kind][reason].fetch_add(count, Ordering::Relaxed);
        }
    }
}

/// Counts [`AuthEvent`]s by application, result, kind and reason. Get it from
/// [`Metrics::sink`](crate::Metrics::sink) and add it to the issuer's
/// [`Events`](tollgate_core::events::Events).
#[derive(Debug)]
pub struct AuthCounters {
    apps: RwLock<HashMap<Box<str>, AppCounters>>,
    /// `app=""`: events without an application, and applications past [`MAX_APP_LABELS`].
    other: AppCounters,
}

impl Default for AuthCounters {
    fn default() -> Self {
        Self {
            apps: RwLock::new(HashMap::new()),
            other: AppCounters::new(),
        }
    }
}

impl EventSink for AuthCounters {
    fn record(&self, event: &AuthEvent) {
        if event.kind == EventKind::Admin {
            return;
        }
        let Some(app) = event.app.as_deref().filter(|a| !a.is_empty()) else {
            self.other.record(event);
            return;
        };
        {
            let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(counters) = apps.get(app) {
                counters.record(event);
                return;
            }
            if apps.len() >= MAX_APP_LABELS {
                self.other.record(event);
                return;
            }
        }
        let mut apps = self.apps.write().unwrap_or_else(PoisonError::into_inner);
        if apps.len() >= MAX_APP_LABELS && !apps.contains_key(app) {
            self.other.record(event);
            return;
        }
        apps.entry(app.into())
            .or_insert_with(AppCounters::new)
            .record(event);
    }
}

impl AuthCounters {
    /// Exchange attempts counted for `app` (`""`: without an application or past the label
    /// bound): `(allowed, refused)`.
    pub fn exchanges(&self, app: &str) -> (u64, u64) {
        self.with(app, |c| {
            (
                c.exchanges[0].load(Ordering::Relaxed),
                c.exchanges[1].load(Ordering::Relaxed),
            )
        })
        .unwrap_or_default()
    }

    /// Refusals counted for `app`, of `kind` (exchange or token), for `reason`.
    pub fn refusals(&self, app: &str, kind: EventKind, reason: RejectionKind) -> u64 {
        let kind = KINDS.iter().position(|k| *k == kind);
        let reason = RejectionKind::ALL.iter().position(|k| *k == reason);
        let (Some(kind), Some(reason)) = (kind, reason) else {
            return 0;
        };
        self.with(app, |c| c.refusals[kind][reason].load(Ordering::Relaxed))
            .unwrap_or_default()
    }

    fn with<T>(&self, app: &str, f: impl FnOnce(&AppCounters) -> T) -> Option<T> {
        if app.is_empty() {
            return Some(f(&self.other));
        }
        let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
        apps.get(app).map(f)
    }

    /// Writes both families, applications sorted; refusal series only once non-zero.
    pub(crate) fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<(&str, &AppCounters)> =
            apps.iter().map(|(name, c)| (name.as_ref(), c)).collect();
        rows.sort_by_key(|(name, _)| *name);
        rows.push(("", &self.other));

        let mut family = encoder.encode_descriptor(
            "tollgate_exchanges",
            "Service-token exchange attempts, by application and result (allowed, refused).",
            None,
            MetricType::Counter,
        )?;
        for (app, counters) in &rows {
            for (slot, result) in ["allowed", "refused"].into_iter().enumerate() {
                let value = counters.exchanges[slot].load(Ordering::Relaxed);
                if value == 0 && app.is_empty() {
                    continue;
                }
                let labels = [("app", *app), ("result", result)];
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "tollgate_refusals",
            "Refused exchanges and application tokens, by application, kind (exchange, token) \
             and reason.",
            None,
            MetricType::Counter,
        )?;
        for (app, counters) in &rows {
            for (kind_index, kind) in KINDS.iter().enumerate() {
                for (reason_index, counter) in counters.refusals[kind_index].iter().enumerate() {
                    let value = counter.load(Ordering::Relaxed);
                    if value == 0 {
                        continue;
                    }
                    let reason = RejectionKind::ALL
                        .get(reason_index)
                        .map_or(UNSPECIFIED, |r| r.as_str());
                    let labels = [("app", *app), ("kind", kind.as_str()), ("reason", reason)];
                    ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn exchange(app: &str) -> AuthEvent {
        AuthEvent::new(EventKind::Exchange, 0).with_app(app)
    }

    #[test]
    fn counts_by_app_result_kind_and_reason() {
        let counters = AuthCounters::default();
        counters.record(&exchange("api"));
        counters.record(&exchange("api"));
        counters.record(&exchange("api").refused(RejectionKind::InvalidCredentials));
        let mut aggregated = AuthEvent::new(EventKind::Token, 0)
            .with_app("api")
            .refused(RejectionKind::Expired);
        aggregated.count = 5;
        counters.record(&aggregated);
        counters
            .record(&AuthEvent::new(EventKind::Token, 0).refused(RejectionKind::MalformedToken));
        counters.record(&AuthEvent::new(EventKind::Admin, 0).with_app("api"));

        assert_eq!(counters.exchanges("api"), (2, 1));
        assert_eq!(
            counters.refusals(
                "api",
                EventKind::Exchange,
                RejectionKind::InvalidCredentials
            ),
            1
        );
        assert_eq!(
            counters.refusals("api", EventKind::Token, RejectionKind::Expired),
            5
        );
        assert_eq!(
            counters.refusals("", EventKind::Token, RejectionKind::MalformedToken),
            1,
            "no application: app=\"\""
        );
        assert_eq!(counters.exchanges("other"), (0, 0));
    }

    #[test]
    fn application_labels_are_bounded() {
        let counters = AuthCounters::default();
        for i in 0..MAX_APP_LABELS + 10 {
            counters.record(&exchange(&format!("app{i}")));
        }
        assert_eq!(counters.apps.read().unwrap().len(), MAX_APP_LABELS);
        assert_eq!(counters.exchanges(""), (10, 0));
        assert_eq!(counters.exchanges("app0"), (1, 0));
    }
}
