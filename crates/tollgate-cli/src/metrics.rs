//! `tollgate serve --metrics-addr ADDR`: Prometheus metrics, `/healthz` and `/readyz` on a
//! listener of their own, never the public one.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use tollgate_core::events::Events;
use tollgate_issue::{AuthLog, Issuer, Revision};
use tollgate_metrics::{MeasuredStore, Metrics, Readiness, metrics_router};
use tollgate_notify::{Notifier, NotifyStats};

use crate::CliResult;

/// Reads one counter of a notifier's stats.
type ReadStat = fn(&NotifyStats) -> u64;

#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Serve GET /metrics (Prometheus), /healthz and /readyz on this address: an internal
    /// one, never the public --addr. Off unless given.
    #[arg(long, env = "TOLLGATE_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
}

/// The metrics of one `serve`: the registry always (the store is measured either way, which
/// costs a timer per store call), the sink and the listener only when asked for.
pub(crate) struct ServeMetrics {
    metrics: Metrics,
    listener: Option<tokio::net::TcpListener>,
}

/// Whether `metrics` could be the public listener `public`: the same port (not 0) on the same
/// address, or on every address of either.
pub(crate) fn overlaps(metrics: SocketAddr, public: SocketAddr) -> bool {
    metrics.port() != 0
        && metrics.port() == public.port()
        && (metrics.ip() == public.ip()
            || metrics.ip().is_unspecified()
            || public.ip().is_unspecified())
}

impl ServeMetrics {
    /// Binds the metrics listener if one is asked for; refuses the public address.
    pub(crate) async fn bind(args: &MetricsArgs, public: SocketAddr) -> CliResult<Self> {
        let listener = match args.metrics_addr {
            None => None,
            Some(addr) if overlaps(addr, public) => {
                return Err(format!(
                    "--metrics-addr {addr} is the public listener (--addr {public}); give metrics an internal address of their own"
                )
                .into());
            }
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?,
            ),
        };
        Ok(Self {
            metrics: Metrics::new(),
            listener,
        })
    }

    /// `store`, timed call by call.
    pub(crate) fn measure<S: ?Sized>(&self, store: Arc<S>) -> Arc<MeasuredStore<S>> {
        self.metrics.measure_store(store)
    }

    /// `events` with the exchange and refusal counters, when metrics are served.
    pub(crate) fn events(&self, events: Events) -> Events {
        match self.listener {
            Some(_) => events.with(self.metrics.sink()),
            None => events,
        }
    }

    /// Starts serving (if asked) and prints where. `log` is the authentication log, whose
    /// dropped and written events are counted.
    pub(crate) fn start(
        self,
        issuer: &Issuer,
        store: Arc<dyn Revision>,
        log: &AuthLog,
        notifier: Option<&Notifier>,
    ) -> CliResult {
        let Some(listener) = self.listener else {
            return Ok(());
        };
        let addr = listener.local_addr()?;
        self.metrics.watch_issuer(issuer);
        let dropped = log.clone();
        self.metrics.register_counter_source(
            "tollgate_log_events_dropped",
            "Authentication-log events dropped (queue full, or the store failed past retries).",
            Arc::new(move || dropped.dropped()),
        );
        let written = log.clone();
        self.metrics.register_counter_source(
            "tollgate_log_events_written",
            "Authentication-log events written to the store.",
            Arc::new(move || written.written()),
        );
        if let Some(notifier) = notifier {
            let counters: [(&str, &str, ReadStat); 3] = [
                (
                    "tollgate_notifications_delivered",
                    "Webhook deliveries a receiver accepted (2xx).",
                    |s| s.delivered,
                ),
                (
                    "tollgate_notifications_retried",
                    "Webhook attempts that failed and will be retried.",
                    |s| s.retried,
                ),
                (
                    "tollgate_notifications_given_up",
                    "Webhook deliveries given up (24 h of failures, or refused 3 times).",
                    |s| s.given_up,
                ),
            ];
            for (name, help, read) in counters {
                let notifier = notifier.clone();
                self.metrics.register_counter_source(
                    name,
                    help,
                    Arc::new(move || read(&notifier.stats())),
                );
            }
        }
        let readiness = Readiness::new()
            .with_store(store)
            .with_issuer(issuer.clone());
        let router = metrics_router(self.metrics, readiness);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the metrics listener failed");
            }
        });
        println!("tollgate: metrics on http://{addr}/metrics");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn the_public_address_is_refused() {
        let addr = |s: &str| s.parse().unwrap_or_else(|_| unreachable!());
        assert!(overlaps(addr("127.0.0.1:8080"), addr("127.0.0.1:8080")));
        assert!(overlaps(addr("0.0.0.0:8080"), addr("127.0.0.1:8080")));
        assert!(overlaps(addr("127.0.0.1:8080"), addr("[::]:8080")));
        assert!(!overlaps(addr("127.0.0.1:9090"), addr("127.0.0.1:8080")));
        assert!(
            !overlaps(addr("127.0.0.1:0"), addr("127.0.0.1:0")),
            "two free ports differ"
        );
        assert!(!overlaps(addr("127.0.0.2:8080"), addr("127.0.0.1:8080")));
    }
}
