//! The store contract (`tollgate_test::store_contract`, the suite tollgate-store's SQLite and
//! PostgreSQL backends run) against `MemoryStore`.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use tollgate::issue::MemoryStore;
use tollgate_test::store_contract::Database;

/// One test's store: every handle is the same `Arc<MemoryStore>`, as instances of one process
/// would share it.
struct Memory(Arc<MemoryStore>);

impl Database for Memory {
    type Store = MemoryStore;

    fn open(&self) -> impl Future<Output = Arc<MemoryStore>> + Send {
        let store = self.0.clone();
        async move { store }
    }
}

async fn on_memory<F, Fut>(_name: &str, test: F)
where
    F: FnOnce(Memory) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Memory(Arc::new(MemoryStore::new()))).await;
}

mod memory {
    tollgate_test::store_contract!(super::on_memory);
}
