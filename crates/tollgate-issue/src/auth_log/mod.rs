//! The authentication log: every exchange attempt, refused token and management change, kept
//! in the store and queried by `tollgate logs`.
//!
//! - [`AuthLog`] (`writer.rs`) is the [`EventSink`](tollgate_core::events::EventSink) to hand
//!   the issuer (`Issuer::builder(..).events(Events::none().with(Arc::new(log)))`): it never
//!   waits, queues events for a background writer that stores them in batches, folds identical
//!   refusals into one row with a count, counts and reports what it has to drop, and prunes
//!   events past their retention.
//! - [`AuthLogStore`] (`store.rs`) is where the log is kept: [`MemoryStore`](crate::MemoryStore)
//!   here, `tollgate-store` in SQLite and PostgreSQL. [`LogQuery`] selects events;
//!   [`LoggedEvent`] is one as stored, with the name of a since-deleted token filled in.

mod memory;
mod store;
mod writer;

pub(crate) use memory::MemoryLog;
pub use store::{
    AuthLogStore, LogQuery, LoggedEvent, MAX_DETAIL_LEN, MAX_FIELD_LEN, Order, bound_event,
};
pub use writer::{
    AuthLog, AuthLogBuilder, DEFAULT_LOG_BATCH_INTERVAL, DEFAULT_LOG_BATCH_SIZE,
    DEFAULT_LOG_CAPACITY, DEFAULT_LOG_PRUNE_INTERVAL, DEFAULT_LOG_RETENTION, DROPPED_ACTION,
};
