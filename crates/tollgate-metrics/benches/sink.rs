//! What counting one authentication event costs (`Metrics::sink`), against an empty sink.
//!
//! Run with: `cargo bench -p tollgate-metrics --bench sink`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_core::RejectionKind;
use tollgate_core::events::{AuthEvent, EventKind};
use tollgate_metrics::Metrics;

fn sink(c: &mut Criterion) {
    let metrics = Metrics::new();
    let sink = metrics.sink();
    let allowed = AuthEvent::new(EventKind::Exchange, 0).with_app("api");
    let refused = AuthEvent::new(EventKind::Exchange, 0)
        .with_app("api")
        .refused(RejectionKind::InvalidCredentials);
    sink.record(&allowed);
    c.bench_function("sink/allowed exchange", |b| {
        b.iter(|| sink.record(black_box(&allowed)))
    });
    c.bench_function("sink/refused exchange", |b| {
        b.iter(|| sink.record(black_box(&refused)))
    });
}

criterion_group!(benches, sink);
criterion_main!(benches);
