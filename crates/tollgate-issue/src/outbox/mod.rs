//! The notification outbox: notices waiting to be delivered (e.g. as webhooks), kept in the
//! store so that delivery survives a restart and instances sharing a store deliver each notice
//! once.
//!
//! - [`NotificationStore`] (`store.rs`) is the contract: [`enqueue`](NotificationStore::enqueue)
//!   adds one delivery per target unless the notice's dedupe key is already there,
//!   [`claim_due`](NotificationStore::claim_due) leases due deliveries to one deliverer,
//!   [`finish_delivery`](NotificationStore::finish_delivery) records the outcome.
//!   [`MemoryStore`](crate::MemoryStore) implements it here (`memory.rs`), `tollgate-store` in
//!   SQLite and PostgreSQL.
//! - `tollgate-notify`'s `Notifier` is the deliverer that drives it.

mod memory;
mod store;

pub(crate) use memory::MemoryOutbox;
pub use store::{Delivery, DeliveryOutcome, NotificationStore, OutboxEntry};
